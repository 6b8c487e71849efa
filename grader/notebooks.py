"""Reading solution notebooks and filling released ones with answers.

The graded TODOs are nbgrader *solution* cells that define one function or
class each. Code cells tagged ``given`` hold the setup and helper code those
definitions rely on. Together they are the code that ``make references`` runs.
"""
from __future__ import annotations

import ast
import copy
import symtable
import textwrap
from pathlib import Path

import nbformat

__all__ = ["read", "is_solution", "is_test", "defined_names", "solution_code", "fill", "exec_solution",
           "DEMO_TAG", "skipped_while_grading", "demo_problems"]


def read(path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def _nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_solution(cell) -> bool:
    return cell.cell_type == "code" and _nbg(cell).get("solution", False) and not _nbg(cell).get("grade", False)


def answer_cells(path, code_only: bool = False) -> dict:
    """{grade_id: source} of a notebook's nbgrader solution cells (what the
    student wrote: code TODOs and, unless ``code_only``, written answers such
    as a proof). An unreadable notebook has none."""
    try:
        nb = read(path)
    except Exception:
        return {}
    return {_nbg(c)["grade_id"]: c.source for c in nb.cells
            if _nbg(c).get("solution") and "grade_id" in _nbg(c) and (c.cell_type == "code" or not code_only)}


def is_test(cell) -> bool:
    return cell.cell_type == "code" and _nbg(cell).get("grade", False)


def is_given(cell) -> bool:
    return cell.cell_type == "code" and "given" in cell.get("metadata", {}).get("tags", [])


def defined_names(source: str) -> list:
    """Top-level functions and classes a cell defines (empty if it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


#: Tag for a code cell that only demonstrates (plots, small experiments, sympy derivations to
#: read). Grading does not run it: nothing it makes can change a grade, and it is most of a
#: notebook's seconds. ``demo_problems`` checks that no cell which does run reads what it makes.
DEMO_TAG = "demo"


def _tags(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def is_demo(cell) -> bool:
    return cell.cell_type == "code" and DEMO_TAG in _tags(cell) and not _nbg(cell)


def is_self_check(cell) -> bool:
    """A locked, ungraded cell that is one ``check(...)`` call: the student's self-check."""
    nbg = _nbg(cell)
    if cell.cell_type != "code" or not nbg or nbg.get("grade") or nbg.get("solution"):
        return False
    try:
        body = ast.parse(cell.source).body
    except SyntaxError:
        return False
    return (len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Call)
            and isinstance(body[0].value.func, ast.Name) and body[0].value.func.id == "check")


def cell_key(cell) -> str:
    """A cell's stable name: its nbgrader grade_id, else its notebook id (as the grader's trail)."""
    return str(_nbg(cell).get("grade_id") or cell.get("id") or "")


def skipped_while_grading(nb) -> list:
    """Keys of the cells grading leaves out: those tagged ``demo`` and the
    self-checks (the hidden tests grade the same functions)."""
    return [cell_key(c) for c in nb.cells if (is_demo(c) or is_self_check(c)) and cell_key(c)]


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
           ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def python_source(source: str) -> str | None:
    """A cell as plain Python: IPython's magics (``%time f()``, ``!ls``) become
    the calls IPython runs for them. None if it still does not parse."""
    try:
        ast.parse(source)
        return source
    except SyntaxError:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
        tree = ast.parse(source)
    except Exception:
        return None
    # code a magic runs (``%time model = fit()``, a ``%%capture`` cell) counts as the cell's own
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("run_line_magic", "run_cell_magic")):
            for arg in node.args[1:]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    code = _magic_code(arg.value)
                    if code:
                        source += "\n" + code
    return source


def _magic_code(line: str) -> str | None:
    """The Python in a magic's argument, after its options (``-n1 -r 3 f(x)``: ``f(x)``)."""
    words = line.split(" ")
    for start in range(len(words)):
        if start and not any(w.startswith("-") for w in words[:start]):
            break  # only options come before the code
        code = python_source(" ".join(words[start:]))
        if code is not None and code.strip():
            return code
    return None


def stored_names(source: str) -> set:
    """Global names a cell binds or changes in place: assignments (also inside
    ``with``, ``for``, ``if``), imports, definitions, and ``x[...] = `` or
    ``x.attr = `` (counted as changing ``x``)."""
    source = python_source(source)
    if source is None:
        return set()
    tree = ast.parse(source)
    names: set = set()

    def base(node):
        while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    def visit(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        if isinstance(node, ast.Global):
            names.update(node.names)
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        if isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(base(node))
        if isinstance(node, ast.NamedExpr):
            names.add(node.target.id)
        if isinstance(node, _SCOPES):
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    names.discard(None)
    return names


def read_names(source: str) -> set:
    """The global names a cell reads: at top level, and inside the functions
    and classes it defines (a helper reads its globals when it is called),
    but not their parameters and locals (Python's own ``symtable`` scopes)."""
    source = python_source(source)
    if source is None:
        return set()
    table = symtable.symtable(source, "<cell>", "exec")
    names: set = set()

    def visit(scope, top):
        for sym in scope.get_symbols():
            if sym.is_referenced() and (top or sym.is_global()):
                names.add(sym.get_name())
        for child in scope.get_children():
            visit(child, False)

    visit(table, True)
    return names


def _statements(source: str) -> list:
    """A cell's top-level statements as source (the whole cell if it does not parse)."""
    python = python_source(source)
    return [ast.unparse(node) for node in ast.parse(python).body] if python is not None else [source]


def demo_problems(nb, name: str = "") -> list:
    """Why leaving out the cells tagged ``demo`` could change what grading
    sees: a tag on a cell nbgrader owns, or a name a demo cell binds (or
    changes) that a later cell which still runs reads. Empty when safe."""
    problems, made = [], {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        key = cell_key(cell)
        if DEMO_TAG in _tags(cell) and _nbg(cell):
            problems.append(f"{name} {key}: an nbgrader cell cannot be tagged {DEMO_TAG!r}")
            continue
        if is_demo(cell):
            if python_source(cell.source) is None:
                problems.append(f"{name} {key}: tagged {DEMO_TAG!r} but it does not parse, so what it makes "
                                f"cannot be checked")
            for var in stored_names(cell.source):
                made[var] = key
            continue
        if is_self_check(cell):
            continue
        for statement in _statements(cell.source):  # in order: a name rebound before it is read is safe
            for var in sorted(read_names(statement) & made.keys()):
                problems.append(f"{name} {key} reads `{var}`, which the {DEMO_TAG} cell {made[var]} makes or "
                                f"changes; grading skips {made[var]}, so untag it or move `{var}` out of it")
            for var in stored_names(statement):
                made.pop(var, None)  # rebound by a cell that runs: later readers see this one
    return problems


def solution_code(nb) -> str:
    """The ``given`` and solution code cells, in notebook order, as one program."""
    return "\n\n".join(c.source for c in nb.cells if is_solution(c) or is_given(c))


def exec_solution(path) -> dict:
    """Execute a solution notebook's definitions and return its namespace."""
    namespace: dict = {"__name__": "__solution__"}
    exec(compile(solution_code(read(path)), str(path), "exec"), namespace)  # noqa: S102
    return namespace


def fill(nb, answers: dict) -> nbformat.NotebookNode:
    """Return a copy of ``nb`` whose solution cells defining a name in
    ``answers`` hold that answer's source instead."""
    nb = copy.deepcopy(nb)
    remaining = dict(answers)
    for cell in nb.cells:
        if cell.cell_type != "code" or not _nbg(cell).get("solution"):
            continue
        names = defined_names(cell.source) or stub_names(cell.source)
        for name in names:
            if name in remaining:
                cell.source = textwrap.dedent(remaining.pop(name)).strip("\n")
                break
    if remaining:
        raise KeyError(f"no solution cell defines {sorted(remaining)}")
    return nb


def stub_names(source: str) -> list:
    return [line.split()[1].split("(")[0].rstrip(":") for line in source.splitlines()
            if line.startswith(("def ", "class "))]


def write(nb, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def answers_from_file(path) -> dict:
    """``{name: cell source}`` from a Python file of answers: each top-level
    def/class, plus any top-level statements before the next one (a stray
    statement that raises is part of that cell, as it would be in Jupyter)."""
    source = Path(path).read_text()
    tree = ast.parse(source)
    lines = source.splitlines()
    starts = []
    for i, node in enumerate(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            begin = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
            # statements directly above a def (after the previous def) belong to its cell
            j = i - 1
            while j >= 0 and not isinstance(tree.body[j], (ast.FunctionDef, ast.ClassDef)):
                begin = tree.body[j].lineno - 1
                j -= 1
            starts.append((node.name, begin))
    out = {}
    for k, (name, begin) in enumerate(starts):
        end = starts[k + 1][1] if k + 1 < len(starts) else len(lines)
        out[name] = "\n".join(lines[begin:end]).strip("\n")
    return out


def make_submission(assignment: str, answers: dict, folder, student: str) -> Path:
    """Write <folder>/<student>/<assignment>/<assignment>.ipynb: the released
    notebook with ``answers`` filled into its TODO cells."""
    from grader import RELEASE

    nb = read(RELEASE / assignment / f"{assignment}.ipynb")
    return write(fill(nb, answers), Path(folder) / student / assignment / f"{assignment}.ipynb")
