"""Pairs of submissions whose TODO answers are unusually alike, for the class report.

Only the answer cells are compared (nbgrader solution cells), and only what
the student wrote: lines of the released template are removed first. Each
answer is tokenized with Python's own tokenizer; comments, docstrings and
blank lines are dropped, every identifier that is not a keyword or a builtin
becomes ``ID``, numbers ``NUM`` and strings ``STR``, so renaming variables and
rewording comments changes nothing. Overlapping runs of K tokens
(fingerprints) are collected per submission, minus every run that the
reference solution also contains (correct code that many students write
alike). Two submissions are listed when the Jaccard index of what remains is
at least THRESHOLD and they share at least MIN_SHARED runs.

This flags for a human to look at; it proves nothing by itself.
"""
from __future__ import annotations

import builtins
import io
import itertools
import keyword
import tokenize
from dataclasses import dataclass
from pathlib import Path

from grader.notebooks import answer_cells

K = 6
THRESHOLD = 0.6
MIN_SHARED = 25
_KEEP = set(keyword.kwlist) | set(dir(builtins)) | {"torch", "F", "nn", "sp", "np", "math"}


@dataclass
class Pair:
    assignment: str
    first: str
    second: str
    similarity: float
    shared: int


def tokens(source: str) -> list:
    """Normalised tokens of Python source (unparseable text falls back to words)."""
    out, previous = [], None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                            tokenize.ENDMARKER):
                previous = tok.type if tok.type in (tokenize.NEWLINE, tokenize.INDENT) else previous
                continue
            if tok.type == tokenize.STRING:
                if previous in (tokenize.NEWLINE, tokenize.INDENT, None) or out[-1:] == [":"]:
                    previous = tok.type
                    continue  # a docstring or a bare string statement: prose, like a comment
                out.append("STR")
            elif tok.type == tokenize.NUMBER:
                out.append("NUM")
            elif tok.type == tokenize.NAME:
                out.append(tok.string if tok.string in _KEEP else "ID")
            else:
                out.append(tok.string)
            previous = tok.type
    except (tokenize.TokenError, IndentationError, SyntaxError):
        out = source.split()
    return out


def fingerprints(source: str) -> set:
    toks = tokens(source)
    return {tuple(toks[i:i + K]) for i in range(len(toks) - K + 1)}


def student_part(answer: str, template: str) -> str:
    """The answer without the lines it shares with the released template."""
    given = {line.strip() for line in template.splitlines() if line.strip()}
    return "\n".join(line for line in answer.splitlines() if line.strip() not in given)


def submission_prints(path: Path, template: dict, reference: set) -> set:
    found = set()
    for cell, source in answer_cells(path, code_only=True).items():
        found |= fingerprints(student_part(source, template.get(cell, "")))
    return found - reference


def similar_pairs(out: Path, release: Path, solutions: Path) -> list:
    """Pairs above THRESHOLD among the submissions under ``out/submitted``."""
    pairs = []
    for assignment_dir in sorted(p for p in release.iterdir() if p.is_dir()):
        a = assignment_dir.name
        template = answer_cells(assignment_dir / f"{a}.ipynb", code_only=True)
        reference = set()
        for cell, source in answer_cells(solutions / a / f"{a}.ipynb", code_only=True).items():
            reference |= fingerprints(student_part(source, template.get(cell, "")))
        prints = {}
        for path in sorted(out.glob(f"submitted/*/{a}/{a}.ipynb")):
            prints[path.parts[-3]] = submission_prints(path, template, reference)
        for (s1, p1), (s2, p2) in itertools.combinations(sorted(prints.items()), 2):
            shared = len(p1 & p2)
            union = len(p1 | p2)
            if shared >= MIN_SHARED and union and shared / union >= THRESHOLD:
                pairs.append(Pair(a, s1, s2, shared / union, shared))
    return sorted(pairs, key=lambda p: -p.similarity)
