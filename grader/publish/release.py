"""``make release``: regenerate assignments/ from solutions/ with nbgrader.

Order of steps:
0. refuse references recorded from other course sources than the ones here
   (their fingerprints, grader/author/record.py: ``refuse_if_stale``), with
   the command that records them again (``make references ASSIGNMENT=03_vae``);
   check the cells tagged ``demo``, which grading leaves out: none may make
   or change a name that a cell grading does run reads;
1. copy solutions/ into a scratch course folder, so nbgrader's gradebook and
   temporary files never touch the repository;
2. run ``nbgrader generate_assignment`` there (it strips solutions, hidden
   tests and outputs, locks cells and records checksums);
3. stamp each released notebook's metadata with where it came from;
4. either copy the result over assignments/ (default) or, with ``--check``,
   compare it with what is committed and fail on any difference.
The leak scan (grader/publish/leakscan.py) runs last in both modes.
"""
from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from grader import RELEASE, ROOT, SOLUTIONS, assignments
from grader.nbgrader_api import api_for

NOTE = ("Generated from solutions/ by `make release`; do not edit by hand. "
        "Instructors edit the solution notebook and run `make release`.")
README = f"""# Student release

{NOTE}

Open `01_elbo/01_elbo.ipynb` first. Each notebook has TODO functions with a
self-check cell right after each one.
"""


def demo_tag_problems(folder: Path | None = None) -> list:
    """Cells tagged ``demo`` that grading could not leave out safely (see
    grader/notebooks.py: ``demo_problems``), in every solution notebook."""
    from grader.notebooks import demo_problems, read

    folder, problems = folder or SOLUTIONS, []
    for path in sorted(folder.glob("*/*.ipynb")):
        if ".ipynb_checkpoints" not in path.parts:
            problems += demo_problems(read(path), f"{path.parent.name}/{path.name}:")
    return problems


def generate(dest: Path) -> Path:
    """Generate every assignment's student version under ``dest``; return it."""
    with tempfile.TemporaryDirectory(prefix="vae-release-") as tmp:
        course = Path(tmp)
        shutil.copytree(SOLUTIONS, course / "solutions",
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pt", "data"))
        api = api_for(course)
        for name in assignments():
            result = api.generate_assignment(name, force=True, create=True)
            if not result["success"]:
                raise RuntimeError(f"nbgrader generate_assignment {name} failed:\n{result.get('error', '')}"
                                   f"\n{result.get('log', '')}")
            for path in sorted((course / "assignments" / name).glob("*.ipynb")):
                nb = nbformat.read(str(path), as_version=4)
                nb.metadata["vaelab"] = {"generated_from": f"solutions/{name}/{path.name}", "note": NOTE}
                nbformat.write(nb, str(path))
        (course / "assignments" / "README.md").write_text(README)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(course / "assignments", dest)
    return dest


def differences(a: Path, b: Path) -> list:
    cmp = filecmp.dircmp(a, b)
    out = [f"only in {cmp.left}: {n}" for n in cmp.left_only] + [f"only in {cmp.right}: {n}" for n in cmp.right_only]
    out += [f"differs: {n}" for n in cmp.diff_files]
    for sub in cmp.common_dirs:
        out += differences(a / sub, b / sub)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate assignments/ from solutions/.")
    parser.add_argument("--check", action="store_true", help="fail if assignments/ is not what make release produces")
    args = parser.parse_args(argv)
    from grader.publish.leakscan import scan
    from grader.author.record import stale_message

    stale = stale_message()
    if stale:  # a release must not ship self-check data that no longer matches its notebook
        print(stale)
        return 1
    tags = demo_tag_problems()
    if tags:
        print("Cells tagged 'demo' that grading cannot skip (it would change what the graded cells see):\n  " +
              "\n  ".join(tags))
        return 1
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = generate(Path(tmp) / "assignments")
            diff = differences(fresh, RELEASE) if RELEASE.exists() else ["assignments/ is missing"]
        if diff:
            print("assignments/ is out of date; run `make release` and commit it:\n  " + "\n  ".join(diff))
            return 1
        print("assignments/ matches solutions/")
    else:
        generate(RELEASE)
        print(f"regenerated {RELEASE.relative_to(ROOT)}/ for {', '.join(assignments())}")
    leaks = scan()
    if leaks:
        print("LEAKS in the student release:\n  " + "\n  ".join(leaks))
        return 1
    print("leak scan: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
