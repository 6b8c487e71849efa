"""Instructor-side tools: reference outputs, release, grading. Never shipped to students."""
import os
import sys
from pathlib import Path

# nbgrader shells out to `alembic` and `jupyter`; make the interpreter's own
# bin/ folder (the .venv) win even when the venv is not activated.
_BIN = str(Path(sys.executable).parent)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
RELEASE = ROOT / "assignments"
HIDDEN_REFERENCES = Path(__file__).resolve().parent / "references"


def assignments() -> list:
    """Assignment names, in course order (folders of solutions/)."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if (p / f"{p.name}.ipynb").exists())


class MissingAuthorFile(FileNotFoundError):
    """An assignment of solutions/ without its cases, mutants or variants file."""


def load_module(kind: str, assignment: str):
    """Import grader/author/<kind>/<assignment>.py (file names start with digits, so
    they are loaded by path). Every assignment has all three files (cases, mutants,
    variants; `make assignment` creates them): a missing one is an error naming it,
    never a silent "no self-checks"."""
    import importlib.util

    path = Path(__file__).resolve().parent / "author" / kind / f"{assignment}.py"
    if not path.exists():
        known = assignments() if SOLUTIONS.is_dir() else []
        why = (f"{assignment} is an assignment (solutions/{assignment}/) but has no {kind} file"
               if assignment in known else f"{assignment} is not an assignment (folders of solutions/: {', '.join(known)})")
        raise MissingAuthorFile(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} is missing: {why}. "
                                f"`make assignment NAME=<NN_name>` creates the cases, mutants and variants files "
                                f"(docs/authoring.md, Add an assignment).")
    spec = importlib.util.spec_from_file_location(f"grader_{kind}_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # inspect.getsource needs it for classes
    spec.loader.exec_module(module)
    return module
