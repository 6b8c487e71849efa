"""Scan everything that reaches students (assignments/ and the vaelab package,
including its public reference data) for solution code, hidden tests, hidden
reference data, mark schemes, and the answers of the "Predict, then run"
questions (stated in a cell, or an explanation left unencoded)."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import torch

from grader import HIDDEN_REFERENCES, RELEASE, ROOT, SOLUTIONS, assignments
from grader.notebooks import defined_names, is_solution, read

VAELAB = ROOT / "source_lib" / "vaelab"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
           "BEGIN MARK SCHEME", "Mark scheme", "Model answer", "from vaelab.checks import grade")


def _solution_lines() -> set:
    """Distinctive lines from inside solution regions (code and markdown
    answers), leaving out lines that the notebooks give away anyway (the same
    line in a cell students receive, such as ``with torch.no_grad():``)."""
    lines, given = set(), set()
    for name in assignments():
        nb = read(SOLUTIONS / name / f"{name}.ipynb")
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if not meta.get("solution"):
                given.update(line.strip() for line in cell.source.splitlines())
                continue
            text = cell.source
            if "### BEGIN SOLUTION" in text:
                text = "\n".join(re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", text, re.S))
            for line in text.splitlines():
                line = line.strip()
                if len(line) >= 16 and not line.startswith("#"):
                    lines.add(line)
    return lines - given


def graded_names() -> set:
    names = set()
    for name in assignments():
        for cell in read(SOLUTIONS / name / f"{name}.ipynb").cells:
            if is_solution(cell):
                names.update(defined_names(cell.source))
    return names


#: How a cell states a prediction's answer: "**The answer: (b).**", "the answer to the prediction: c", "the answer is (d)".
ANSWER_STATED = (re.compile(r"\bthe answer\b[^.\n]{0,80}?:\s*\**\s*\(?[a-d]\)?(?![\w'])", re.I),
                 re.compile(r"\banswer is\s*\**\s*\([a-d]\)", re.I))


def _explain_calls(source: str) -> list:
    """(prediction name, text argument) of every ``explain(...)`` call in a code cell (vaelab/reveal.py)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    calls = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "explain"
                and node.args and isinstance(node.args[0], ast.Constant)):
            text = node.args[3] if len(node.args) > 3 else next((k.value for k in node.keywords if k.arg == "text"), None)
            calls.append((node.args[0].value, text.value if isinstance(text, ast.Constant) else None))
    return calls


def explanations() -> dict:
    """{prediction name: explanation Markdown}, decoded from the solution notebooks' ``explain`` cells."""
    from vaelab.reveal import decode

    found = {}
    for name in assignments():
        for cell in read(SOLUTIONS / name / f"{name}.ipynb").cells:
            if cell.cell_type == "code":
                for prediction, text in _explain_calls(cell.source):
                    try:
                        found[prediction] = decode(text)
                    except Exception:
                        pass  # not encoded: answer_leaks reports it in the released notebook
    return found


def _flat(text: str) -> str:
    """Text with Markdown emphasis dropped and whitespace collapsed, to compare prose however it is wrapped."""
    return " ".join(text.replace("*", "").split())


def _sentences(text: str) -> list:
    """The distinctive sentences (and clauses after a colon or semicolon) of an explanation."""
    return [s for s in re.split(r"(?<=[.!?;:])\s+", _flat(text)) if len(s) >= 40]


def answer_leaks(nb, where, known: dict | None = None) -> list:
    """Cells of a released notebook that give away a prediction's answer: one
    that states it ("The answer: (b)"), an ``explain`` call whose text is not
    encoded, or a string literal or Markdown holding a sentence of an
    explanation. ``known`` is :func:`explanations` (read from solutions/ if None)."""
    from vaelab.reveal import decode

    sentences = [(name, s) for name, text in (explanations() if known is None else known).items()
                 for s in _sentences(text)]
    leaks = []
    for number, cell in enumerate(nb.cells, 1):
        here = f"{where} cell {number} ({cell.cell_type})"
        for pattern in ANSWER_STATED:
            match = pattern.search(cell.source)
            if match:
                leaks.append(f"{here}: states a prediction's answer {match.group(0)!r}")
        texts = [cell.source]
        if cell.cell_type == "code":
            for prediction, text in _explain_calls(cell.source):
                try:
                    decode(text or "")
                except Exception:
                    leaks.append(f"{here}: explain({prediction!r}, ...) holds its explanation unencoded "
                                 f"(encode it with `python -m vaelab.reveal encode`)")
            try:
                texts = [n.value for n in ast.walk(ast.parse(cell.source))
                         if isinstance(n, ast.Constant) and isinstance(n.value, str)] + [cell.source]
            except SyntaxError:
                pass
        flat = [_flat(t) for t in texts]
        for prediction, sentence in sentences:
            if any(sentence in t for t in flat):
                leaks.append(f"{here}: contains the explanation of {prediction} ({sentence[:50]!r}...)")
                break
    return leaks


def _student_files():
    for base in (RELEASE, VAELAB):
        for path in sorted(base.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                yield path


def _tensors_in(path: Path, min_numel: int = 0) -> list:
    """Every tensor stored in a reference file."""
    found, stack = [], [torch.load(path, weights_only=True)]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, torch.Tensor) and item.numel() >= min_numel:
            found.append(item)
    return found


def _hidden_tensors() -> list:
    return [t for path in sorted(HIDDEN_REFERENCES.glob("*.pt")) for t in _tensors_in(path, min_numel=8)]


def _file_leaks(path: Path, rel, hidden: list, hidden_bytes: set, markers, solution_lines: set, names: set,
                stored_answers: bool = False, known: dict | None = None) -> list:
    """What one student-facing file leaks: a copy of a hidden file, hidden
    tensors (and, with ``stored_answers``, stored symbolic answers) in a
    reference file; markers, solution lines and graded TODO definitions in text."""
    leaks = []
    data = path.read_bytes()
    if data in hidden_bytes:
        leaks.append(f"{rel}: is a copy of a hidden reference file")
    if path.suffix == ".pt":
        for t in _tensors_in(path):
            if any(t.shape == h.shape and torch.equal(t, h) for h in hidden):
                leaks.append(f"{rel}: contains hidden reference data")
                break
        if stored_answers:
            import sympy as sp

            leaks += [f"{rel}{where}: stores a symbolic answer" for where, text in _stored_expressions(path)
                      if sp.sympify(text).free_symbols]
        return leaks
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return leaks
    leaks += [f"{rel}: contains {marker!r}" for marker in markers if marker in text]
    leaks += [f"{rel}: contains solution code {line[:60]!r}" for line in solution_lines if line in text]
    if path.suffix == ".py":
        leaks += [f"{rel}: defines graded TODO {name}" for name in names
                  if re.search(rf"^\s*(def|class) {name}\b", text, re.M)]
    if path.suffix == ".ipynb":
        try:
            nb = read(path)
        except (json.JSONDecodeError, ValueError):
            return leaks
        leaks += answer_leaks(nb, rel, known)
    return leaks


def scan() -> list:
    """Return a list of leaks (empty when clean)."""
    leaks = []
    solution_lines = _solution_lines()
    names = graded_names()
    hidden = _hidden_tensors()
    hidden_bytes = {p.read_bytes() for p in HIDDEN_REFERENCES.glob("*.pt")}
    known = explanations()
    for path in _student_files():
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        leaks += _file_leaks(path, rel, hidden, hidden_bytes, MARKERS, solution_lines, names, known=known)
    return leaks


if __name__ == "__main__":
    import sys

    problems = scan()
    print("\n".join(problems) if problems else "leak scan: clean")
    sys.exit(1 if problems else 0)


# -- the student edition (grader/publish/edition.py) --------------------------------
def _stored_expressions(path: Path) -> list:
    """(where, expression text) for every sympy expression stored as an
    answer (an ``expected`` or ``mutants`` entry) in a reference file."""
    out, stack = [], [("", torch.load(path, weights_only=True), False)]
    while stack:
        where, item, answer = stack.pop()
        if isinstance(item, dict):
            if "__sympy__" in item:
                if answer:
                    out.append((where, item["__sympy__"]))
                continue
            for key, value in item.items():
                stack.append((f"{where}.{key}", value, answer or key in ("expected", "mutants")))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", v, answer) for i, v in enumerate(item))
    return out


def scan_edition(dest: Path, names: list) -> list:
    """Leaks in a student edition that releases ``names``: solution code of a
    released assignment (lines a released notebook gives away excepted),
    hidden reference data or copies, stored symbolic answers, solution and
    hidden-test markers, instructor-only text, and instructor files."""
    dest = Path(dest)
    leaks = []
    released = set(names)
    lines, given = set(), set()
    for name in assignments():
        for cell in read(SOLUTIONS / name / f"{name}.ipynb").cells:
            meta = cell.metadata.get("nbgrader", {})
            if not meta.get("solution"):
                if name in released:
                    given.update(line.strip() for line in cell.source.splitlines())
                continue
            if name not in released:
                continue
            text = cell.source
            if "### BEGIN SOLUTION" in text:
                text = "\n".join(re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", text, re.S))
            lines.update(line.strip() for line in text.splitlines()
                         if len(line.strip()) >= 16 and not line.strip().startswith("#"))
    lines -= given
    graded = graded_names()
    hidden = _hidden_tensors()
    hidden_bytes = {p.read_bytes() for p in HIDDEN_REFERENCES.glob("*.pt")}
    known = explanations()
    for top in ("solutions", "grader", "tests", "bench", "docs", "requirements-dev.txt"):
        if (dest / top).exists():
            leaks.append(f"{top}: instructor material in the edition")
    for path in sorted(p for p in dest.rglob("*") if p.is_file() and ".git" not in p.parts
                       and ".venv" not in p.parts and "__pycache__" not in p.parts):
        leaks += _file_leaks(path, path.relative_to(dest), hidden, hidden_bytes,
                             (*MARKERS, "<!-- instructor", "Release this notebook after"), lines, graded,
                             stored_answers=True, known=known)
    return leaks
