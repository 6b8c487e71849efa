"""Sample submissions built from the course's own sources, so that a new TODO needs no hand-written test file.

- :func:`alternative`: a correct submission written differently from the solution: for every TODO of the
  released notebook, the first correct variant of ``grader/author/variants/<A>.py`` (they are recorded against
  every public and hidden case by ``make references``), else the solution cell's own code (predictions, TODOs
  without a variant).
- :func:`raising`: the same, with the first TODO's cell raising before it defines anything, as a student who ran
  out of time might leave it; every other answer is correct.
"""
from __future__ import annotations

from functools import lru_cache

from grader import SOLUTIONS
from grader.author.mutants import catalogue
from grader.notebooks import defined_names, read

from .points import todos

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
RAISE = 'raise ValueError("I ran out of time on this one")'


def _solution_sources(assignment: str) -> dict:
    """``{TODO name: the solution cell's source without nbgrader's markers}``."""
    nb = read(SOLUTIONS / assignment / f"{assignment}.ipynb")
    out = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution") and not meta.get("grade"):
            source = "\n".join(line for line in cell.source.splitlines() if line.strip() not in SOLUTION_MARKERS)
            for name in defined_names(source):
                out.setdefault(name, source)
    return out


@lru_cache(maxsize=None)
def _alternative(assignment: str) -> tuple:
    names = todos(assignment)
    variants = {}
    for v in catalogue(assignment, "variants"):
        variants.setdefault(v.target, v.source)
    solution = _solution_sources(assignment)
    missing = [n for n in names if n not in variants and n not in solution]
    assert not missing, f"{assignment}: no variant and no solution cell defines the TODO(s) {missing}"
    return tuple((n, variants.get(n) or solution[n]) for n in names)


def alternative(assignment: str) -> dict:
    """A correct submission of every TODO, different from the solution where a variant exists."""
    return dict(_alternative(assignment))


def variant_todos(assignment: str) -> list:
    """The TODOs :func:`alternative` answers with a variant (not the solution's own code)."""
    targets = {v.target for v in catalogue(assignment, "variants")}
    return [n for n in todos(assignment) if n in targets]


def raising(assignment: str) -> tuple[dict, str]:
    """(answers, the TODO whose cell raises): the first TODO raises at the top of its cell."""
    answers = alternative(assignment)
    first = todos(assignment)[0]
    answers[first] = RAISE + "\n\n\n" + answers[first]
    return answers, first
