"""What a student's terminal shows for `make check` (vaelab.smoke): the notebooks' own results, not the
kernel's log. ipykernel warns on every TCP kernel that it runs "without encryption" (ipykernel/kernelapp.py,
init_sockets), which says nothing to a student on their own laptop."""
import subprocess
import sys

import nbformat


def test_make_check_prints_the_notebooks_errors_but_not_the_kernels_log(tmp_path):
    for name, source in (("good", "print('fine')"), ("bad", "raise ValueError('a real error, shown')")):
        (tmp_path / name).mkdir()
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
        nbformat.write(nb, str(tmp_path / name / f"{name}.ipynb"))
    run = subprocess.run([sys.executable, "-m", "vaelab.smoke", str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    text = run.stdout + run.stderr
    assert run.returncode == 1
    assert "ok      " in text and "good.ipynb" in text
    assert "FAILED" in text and "a real error, shown" in text
    assert "without encryption" not in text and "WARNING" not in text, text
