"""Reading solution notebooks and filling released ones with answers.

The graded TODOs are nbgrader *solution* cells that define one function or
class each. Code cells tagged ``given`` hold the setup and helper code those
definitions rely on. Together they are the code that ``make references`` runs.
"""
from __future__ import annotations

import ast
import copy
import textwrap
from pathlib import Path

import nbformat

__all__ = ["read", "is_solution", "is_test", "defined_names", "solution_code", "fill", "exec_solution"]


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
        names = defined_names(cell.source) or _stub_names(cell.source)
        for name in names:
            if name in remaining:
                cell.source = textwrap.dedent(remaining.pop(name)).strip("\n")
                break
    if remaining:
        raise KeyError(f"no solution cell defines {sorted(remaining)}")
    return nb


def _stub_names(source: str) -> list:
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
