"""Reference outputs are reproducible and their staleness check cannot flap.

``make references`` records with one thread, generic kernels and MKL's
reproducible mode (grader.author.record.REPRODUCIBLE_ENV), and ``--check``
compares recomputed outputs within 1/100 of each case's grading tolerance,
plus a fingerprint of everything that determines them. These tests drive the
real command in subprocesses, as ``make references`` and CI run it.
"""
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from grader import HIDDEN_REFERENCES, ROOT, assignments
from grader.author.record import CHECK_FRACTION, Drift, compare_references
from vaelab import references

pytestmark = pytest.mark.slow


def _run(args, cwd=ROOT, threads=None, pythonpath=None, timeout=600):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-m", "grader.author.record", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_stored_references_are_up_to_date_under_the_callers_threads():
    """The CI gate: the committed references pass the check with the
    caller's default thread count, and the check names its worst difference."""
    done = _run(["--check"])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "references are up to date" in done.stdout
    assert "recomputed outputs equal the stored ones" in done.stdout or "largest difference" in done.stdout


def test_regenerating_under_one_and_two_threads_gives_what_is_stored(tmp_path):
    """`OMP_NUM_THREADS=1 make references` and `OMP_NUM_THREADS=2 make
    references` both reproduce the committed files within the check's
    tolerance (bitwise, in fact, on x86-64), with the same fingerprints."""
    def regenerate(threads):
        out = tmp_path / f"threads{threads}"
        done = _run(["--public-dir", str(out / "public"), "--hidden-dir", str(out / "hidden")], threads=threads)
        assert done.returncode == 0, done.stderr[-3000:]
        return out

    with ThreadPoolExecutor(2) as pool:
        folders = list(pool.map(regenerate, (1, 2)))
    for folder in folders:
        drift = Drift()
        for name in assignments():
            for kind, stored_path in (("public", references.public_path(name)),
                                      ("hidden", HIDDEN_REFERENCES / f"{name}.pt")):
                stored = torch.load(stored_path, weights_only=True)
                fresh = torch.load(folder / kind / f"{name}.pt", weights_only=True)
                assert fresh["meta"]["threads"] == 1 and fresh["meta"]["environment"]["OMP_NUM_THREADS"] == "1"
                assert stored["meta"]["fingerprint"] == fresh["meta"]["fingerprint"], (folder, name, kind)
                compare_references(stored, fresh, f"{name} {kind}", drift)
        assert drift.problems == [], (folder.name, drift.problems[:5])
        assert drift.ratio <= 1.0


def test_the_comparison_uses_a_fraction_of_each_cases_tolerance():
    """A change of half the allowed amount passes, twice the allowed amount
    fails and is reported with its size and place (on the float64 case, where
    1/100 of the tolerance is far above float rounding)."""
    stored = torch.load(HIDDEN_REFERENCES / "01_elbo.pt", weights_only=True)
    case = stored["functions"]["kl_standard_normal"]["cases"][1]
    assert case["expected"].dtype == torch.float64
    expected = case["expected"].double()
    allowed = CHECK_FRACTION * (case["atol"] + case["rtol"] * expected.abs())

    def perturbed(scale):
        fresh = torch.load(HIDDEN_REFERENCES / "01_elbo.pt", weights_only=True)
        target = fresh["functions"]["kl_standard_normal"]["cases"][1]
        target["expected"] = (expected + scale * allowed).to(case["expected"].dtype)
        return fresh

    small = compare_references(stored, perturbed(0.5), "01 hidden")
    assert small.problems == [] and 0.3 < small.ratio <= 1.0
    large = compare_references(stored, perturbed(2.0), "01 hidden")
    assert any("kl_standard_normal case 2 expected" in p for p in large.problems), large.problems
    assert large.ratio > 1.5


def _copy_course(tmp_path):
    """A copy of the grader and the 01 solution, so edits stay out of the repository."""
    root = tmp_path / "course"
    shutil.copytree(ROOT / "grader", root / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "solutions" / "01_elbo", root / "solutions" / "01_elbo")
    shutil.copytree(references.PUBLIC_DIR, root / "public")
    return root


#: Appended to a copied cases file: the first kl_standard_normal case of each file
#: gets its first input moved by 0.01, through the case objects that public() and
#: hidden() return, so the edit does not depend on how the file is written.
CASE_EDIT = """


def _moved(build):
    def wrapped():
        spec = build()
        first = spec["kl_standard_normal"]["cases"][0]
        first["args"][0] = first["args"][0] + 0.01
        return spec
    return wrapped


public, hidden = _moved(public), _moved(hidden)
"""


def _edit_case(root):
    path = root / "grader" / "author" / "cases" / "01_elbo.py"
    path.write_text(path.read_text() + CASE_EDIT)


EDITS = {
    # one solution line changes an output
    "solution": ("solutions/01_elbo/01_elbo.ipynb", "solution code", "kl_standard_normal case 1 expected"),
    # one case input changes
    "case input": ("grader/author/cases/01_elbo.py", "case definitions", "kl_standard_normal case 1 args"),
    # one mutant changes
    "mutant": ("grader/author/mutants/01_elbo.py", "mutant catalogue", "kl_standard_normal case 1 mutant"),
}


@pytest.mark.parametrize("what", list(EDITS))
def test_the_check_catches_a_real_change(tmp_path, what):
    root = _copy_course(tmp_path)
    path, fingerprint_part, drift_place = EDITS[what]
    if what == "solution":
        import nbformat

        nb = nbformat.read(str(root / path), as_version=4)
        cell = next(c for c in nb.cells if c.get("id") == "kl_standard_normal")
        body = cell.source.split("### BEGIN SOLUTION\n")[1].split("### END SOLUTION")[0]
        last = [line for line in body.splitlines() if line.strip().startswith("return")][-1]
        cell.source = cell.source.replace(last, last + " + 1e-3")
        nbformat.write(nb, str(root / path))
    elif what == "case input":
        _edit_case(root)
    else:
        text = (root / path).read_text()
        start = text.index('@mutant("kl_standard_normal", "missing_half"')
        ret = text.index("return", start)
        end = text.index("\n", ret)
        (root / path).write_text(text[:end] + " * 1.01" + text[end:])
    done = _run(["--check", "01_elbo", "--public-dir", str(root / "public")], cwd=root, pythonpath=root)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"{fingerprint_part} changed since the references were recorded" in done.stderr, done.stderr[-2000:]
    assert drift_place in done.stderr, done.stderr[-3000:]
    assert "largest difference" in done.stdout and "run `make references ASSIGNMENT=01_elbo`" in done.stderr


def test_an_unchanged_copy_passes_the_same_check(tmp_path):
    """The control for the test above: the copied course, unedited, passes."""
    root = _copy_course(tmp_path)
    done = _run(["--check", "01_elbo", "--public-dir", str(root / "public")], cwd=root, pythonpath=root)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _files(root):
    return {kind: path.read_bytes() for kind, path in (("public", root / "public" / "01_elbo.pt"),
                                                        ("hidden", root / "grader" / "references" / "01_elbo.pt"))}


def test_regeneration_touches_only_what_changed(tmp_path):
    """An assignment whose fingerprint is unchanged is not rewritten (the
    round-off of another CPU cannot churn its files); once a case changes,
    `make release` refuses with the command that fixes it, and that command
    records the assignment; `--force` records an unchanged one again."""
    root = _copy_course(tmp_path)
    refs = ["01_elbo", "--public-dir", str(root / "public")]
    before = _files(root)
    done = _run(refs, cwd=root, pythonpath=root)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "01_elbo: unchanged since its references were recorded" in done.stdout and "wrote" not in done.stdout
    assert _files(root) == before

    _edit_case(root)
    release = subprocess.run([sys.executable, "-m", "grader.publish.release", "--check"], cwd=root, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(root)}, timeout=300)
    assert release.returncode == 1, release.stdout[-2000:] + release.stderr[-2000:]
    assert "01_elbo: case definitions changed since its references were recorded" in release.stdout, release.stdout
    assert "make references ASSIGNMENT=01_elbo" in release.stdout

    done = _run(refs, cwd=root, pythonpath=root)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "01_elbo: recording (case definitions changed)" in done.stdout and "wrote" in done.stdout
    edited = _files(root)
    assert edited["public"] != before["public"] and edited["hidden"] != before["hidden"]
    again = _run(refs, cwd=root, pythonpath=root)
    assert "unchanged since its references were recorded" in again.stdout and _files(root) == edited
    forced = _run([*refs, "--force"], cwd=root, pythonpath=root)
    assert forced.returncode == 0 and "01_elbo: recording (--force)" in forced.stdout, forced.stdout


def test_stale_references_are_named_with_the_command_that_fixes_them(tmp_path):
    """The shared refusal of make release, make grade and make student-edition:
    reads fingerprints only and names each stale assignment and the command."""
    from grader.author.record import refuse_if_stale, stale_assignments, stale_message

    hidden = tmp_path / "hidden"
    shutil.copytree(HIDDEN_REFERENCES, hidden)
    assert stale_assignments(hidden_dir=hidden) == [] and stale_message(hidden_dir=hidden) == ""
    refuse_if_stale(hidden_dir=hidden)  # current: returns quietly
    data = torch.load(hidden / "03_vae.pt", weights_only=True)
    data["meta"]["fingerprint"]["case definitions"] = "0" * 64  # recorded from other cases
    torch.save(data, hidden / "03_vae.pt")
    assert stale_assignments(hidden_dir=hidden) == ["03_vae"]
    assert stale_assignments(["01_elbo"], hidden_dir=hidden) == []
    message = stale_message(hidden_dir=hidden)
    assert "03_vae: case definitions changed since its references were recorded" in message
    assert "make references ASSIGNMENT=03_vae\n" in message and "01_elbo" not in message
    with pytest.raises(SystemExit, match="make references ASSIGNMENT=03_vae"):
        refuse_if_stale(["03_vae", "04_generation"], hidden_dir=hidden)
    (hidden / "04_generation.pt").unlink()
    assert 'make references ASSIGNMENT="03_vae 04_generation"' in stale_message(hidden_dir=hidden)
    assert "04_generation: no hidden file" in stale_message(hidden_dir=hidden)
