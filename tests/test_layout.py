"""The grader is laid out by the instructor's week (grader/author, publish, grade, sandbox, after, with the
shared modules at its top): imports run one way, with no circle and no private name taken from another module.
Read from the source with ast, so a new import that breaks the layout fails here before anyone runs it."""
import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GRADER = ROOT / "grader"
DATA = ("cases", "mutants", "variants")  # author data loaded by path, not modules of the layout
SUBPACKAGES = sorted(p.name for p in GRADER.iterdir() if (p / "__init__.py").is_file() and p.name not in DATA)
# what each part may import besides the shared modules ("base") and itself: the week runs author -> publish ->
# grade -> after; grade uses the sandbox; after reads what a batch wrote and never imports grade
MAY_IMPORT = {"author": set(), "publish": {"author"}, "grade": {"author", "sandbox", "after"}, "sandbox": set(),
              "after": set(), "base": set()}


def _modules() -> dict:
    mods = {}
    for path in GRADER.rglob("*.py"):
        parts = path.relative_to(GRADER).with_suffix("").parts
        if len(parts) > 1 and parts[1] in DATA or parts[0] in DATA:
            continue
        name = ".".join(("grader",) + parts)
        mods[name.removesuffix(".__init__")] = path
    return mods


def _imports(path: Path, mods: dict) -> list:
    """(imported module, imported name or None) for every import of grader code in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "grader":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.append((full, None) if full in mods else (node.module, alias.name))
        elif isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names if a.name.split(".")[0] == "grader"]
    return found


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 2 and pieces[1] in SUBPACKAGES else "base"


def test_the_layout_is_the_one_this_test_knows():
    assert set(SUBPACKAGES) == set(MAY_IMPORT) - {"base"}, "a new grader subpackage needs its row in MAY_IMPORT"


def test_imports_run_down_the_week():
    mods = _modules()
    wrong = [f"{m} imports {target}" for m, path in mods.items() for target, _ in _imports(path, mods)
             if part(target) not in {part(m), "base"} | MAY_IMPORT[part(m)]]
    assert not wrong, wrong


def test_the_shared_modules_import_no_subpackage():
    mods = _modules()
    wrong = [f"{m} imports {t}" for m, p in mods.items() if part(m) == "base" for t, _ in _imports(p, mods)
             if part(t) != "base"]
    assert not wrong, wrong


def test_no_private_name_crosses_a_module():
    mods = _modules()
    taken = [f"{m} takes {t}.{name}" for m, p in mods.items() for t, name in _imports(p, mods)
             if name and name.startswith("_") and t != m]
    assert not taken, taken


def test_no_import_circle():
    mods = _modules()
    graph = {m: {t for t, _ in _imports(p, mods) if t in mods and t != m} for m, p in mods.items()}
    state, circles = {}, []

    def visit(m, path):
        state[m] = "open"
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                circles.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not circles, " ; ".join(" -> ".join(c) for c in circles)


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_each_subpackage_says_what_lives_there_and_what_it_may_import(name):
    doc = ast.get_docstring(ast.parse((GRADER / name / "__init__.py").read_text())) or ""
    assert len(doc) > 80 and "May import" in doc, f"grader/{name}/__init__.py needs its docstring"


def test_the_student_library_imports_nothing_of_the_grader():
    users = [str(p.relative_to(ROOT)) for p in (ROOT / "source_lib" / "vaelab").rglob("*.py")
             if any(t.split(".")[0] == "grader" for t, _ in _imports(p, {}))]
    assert not users, users


def test_a_circle_and_a_private_import_are_caught(tmp_path, monkeypatch):
    """The checks above can fail: a fake grader with after -> grade and a circle between two modules."""
    fake = tmp_path / "grader"
    for sub in ("after", "grade"):
        (fake / sub).mkdir(parents=True)
        (fake / sub / "__init__.py").write_text('"""x"""\n')
    (fake / "__init__.py").write_text("")
    (fake / "after" / "report.py").write_text("from grader.grade.batch import _secret\n")
    (fake / "grade" / "batch.py").write_text("from grader.after import report\n_secret = 1\n")
    monkeypatch.setattr(sys.modules[__name__], "GRADER", fake)
    mods = _modules()
    assert any(name == "_secret" for t, name in _imports(fake / "after" / "report.py", mods))
    with pytest.raises(AssertionError, match="grader.after.report -> grader.grade.batch -> grader.after.report"):
        test_no_import_circle()
    with pytest.raises(AssertionError, match="takes grader.grade.batch._secret"):
        test_no_private_name_crosses_a_module()
