"""``make check`` in the student edition: run every notebook under
``assignments/`` top to bottom in a scratch copy and report.

A blank notebook must run to the end (cells that need an unfinished TODO say
so in one line), so an error here means the set-up is broken, not your
answers. Your notebooks are never modified.

    python -m vaelab.smoke [folder]
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path


def run(folder: Path) -> int:
    import nbformat
    from nbconvert.preprocessors import ExecutePreprocessor

    notebooks = sorted(folder.glob("*/*.ipynb"))
    if not notebooks:
        print(f"no notebooks under {folder}/")
        return 1
    failed = 0
    with tempfile.TemporaryDirectory(prefix="vaelab-smoke-") as tmp:
        for path in notebooks:
            copy = Path(tmp) / path.parent.name
            shutil.copytree(path.parent, copy, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "checkpoints"))
            nb = nbformat.read(str(copy / path.name), as_version=4)
            start = time.perf_counter()
            try:
                # the kernel's own log (its "running over TCP without encryption" warning) says nothing
                # to a student; what the notebooks print and raise still shows
                ExecutePreprocessor(timeout=600, kernel_name="python3",
                                    extra_arguments=["--IPKernelApp.log_level=ERROR"]).preprocess(
                    nb, {"metadata": {"path": str(copy)}})
                print(f"ok      {path.relative_to(folder.parent)} ({time.perf_counter() - start:.1f} s)", flush=True)
            except Exception as err:  # report and go on with the next notebook
                failed += 1
                first = str(err).strip().splitlines()[-1:] or [type(err).__name__]
                print(f"FAILED  {path.relative_to(folder.parent)}: {first[0][:200]}", flush=True)
    print(f"{len(notebooks) - failed} of {len(notebooks)} notebooks ran top to bottom")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1] if len(sys.argv) > 1 else "assignments").resolve()))
