"""Static integrity scan of a submission before it is graded.

The real protection is structural: under ``make grade`` the hidden tests'
answers never enter the kernel, and their verdicts are decided outside it
(grader/seal.py), so tampering cannot earn points. This scan is a second,
visible line: it names the attempt in the feedback and flags the notebook
for the instructor, by flagging code that:

- assigns to, deletes or ``setattr``s attributes of torch, numpy, vaelab,
  builtins, sys or the check helpers;
- redefines the names the test cells use (``check``, ``grade``, ``run``, ...);
- looks for the hidden references (their environment variable, folder or
  loader) or reaches into the caller's frames or the garbage collector.

A flagged notebook gets 0 autograded points and is flagged for manual review,
with a feedback line naming the offending line.
"""
from __future__ import annotations

import ast

PROTECTED_MODULES = {"torch", "np", "numpy", "vaelab", "builtins", "sys", "checks", "references", "F", "nn"}
PROTECTED_NAMES = {"check", "grade", "run", "compare", "needs", "equivalent", "torch", "np", "vaelab",
                   "print", "isinstance", "float", "abs", "AssertionError", "__import__"}
SUSPICIOUS_STRINGS = ("VAELAB_HIDDEN_REFERENCES", "hidden_path", "grader/references", "HIDDEN_REFERENCES")
SUSPICIOUS_CALLS = {("gc", "get_objects"), ("gc", "get_referrers"), ("inspect", "stack"), ("inspect", "currentframe"),
                    ("sys", "_getframe"), ("inspect", "getouterframes"), ("builtins", "setattr")}


def _root_name(node) -> str:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def _spines(target):
    """The objects an assignment target writes into (not the index expressions
    inside it): ``a.b[f(x)] = ...`` writes into ``a.b``."""
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _spines(element)
    elif isinstance(target, ast.Starred):
        yield from _spines(target.value)
    elif isinstance(target, (ast.Attribute, ast.Subscript)):
        yield target


def scan_source(source: str) -> list:
    """Problems found in one cell's source: ``[(line, message), ...]``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []  # a syntax error costs its own points when the cell runs
    problems = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            for spine in _spines(target):
                if isinstance(spine, ast.Attribute) and _root_name(spine) in PROTECTED_MODULES:
                    problems.append((node.lineno, f"changes {ast.unparse(spine)}"))
                elif isinstance(spine, ast.Subscript) and _root_name(spine.value) in {"sys", "builtins"}:
                    problems.append((node.lineno, f"changes {ast.unparse(spine)}"))
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in PROTECTED_NAMES:
            problems.append((node.lineno, f"redefines {node.name}, which the tests use"))
        if isinstance(node, (ast.Assign,)) and any(isinstance(t, ast.Name) and t.id in PROTECTED_NAMES
                                                   for t in node.targets):
            problems.append((node.lineno, "reassigns a name the tests use"))
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in {"setattr", "delattr"} and node.args:
                if _root_name(node.args[0]) in PROTECTED_MODULES:
                    problems.append((node.lineno, f"{func.id} on {ast.unparse(node.args[0])}"))
            if isinstance(func, ast.Attribute) and (_root_name(func), func.attr) in SUSPICIOUS_CALLS:
                problems.append((node.lineno, f"calls {ast.unparse(func)}"))
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if any(s in node.value for s in SUSPICIOUS_STRINGS):
                problems.append((node.lineno, "looks for the hidden reference files"))
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names]
            module = getattr(node, "module", "") or ""
            if module.startswith("grader") or any(n.startswith("grader") for n in names):
                problems.append((node.lineno, "imports the instructors' grader package"))
    return sorted(set(problems))


def scan_notebook(nb) -> list:
    """Problems in the cells a student may edit: ``["cell <id>, line <n>: <what>", ...]``."""
    found = []
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("locked") or "grader-guard" in cell.get("metadata", {}).get("tags", []):
            continue  # locked cells are restored by nbgrader before grading
        for line, message in scan_source(cell.source):
            found.append(f"cell {meta.get('grade_id', index)}, line {line}: {message}")
    return found
