"""The misconception catalogue: known-wrong implementations ("mutants") of every
graded TODO, each with the one-sentence hint a student gets when their answer
behaves like it; and beside it the catalogue of *correct variants*
(``grader/author/variants/<assignment>.py``): implementations a careful student may
legitimately write (a stabiliser inside a log, probabilities instead of
logits, ``torch.distributions``, float32 arithmetic, another summation order).
Every variant must pass every case with no hint, and ``make references``
derives each case's tolerance from the two catalogues (grader/author/tolerances.py).

A catalogue file ``grader/author/mutants/<assignment>.py`` defines functions with the
*student's* function name, each decorated with :func:`mutant`. Because the
name matches, a mutant's source can be pasted into a released notebook as a
realistic wrong submission (the mutation tests do exactly that).
"""
from __future__ import annotations

import inspect
import sys
import textwrap
from dataclasses import dataclass


@dataclass
class Mutant:
    target: str  # the TODO it imitates, e.g. "kl_standard_normal"
    name: str  # short id, e.g. "missing_half"
    hint: str  # the sentence a matching student answer receives (for a variant: why it is correct)
    source: str  # definition with the student's name, decorator removed
    kind: str = "mutant"  # or "variant": a correct implementation


_CURRENT: list = []


def _class_source(obj, filename: str, after_line: int) -> str:
    """Source of the class defined right after ``after_line`` (inspect.getsource
    would return the *first* class of that name in the file)."""
    import ast

    text = open(filename).read()
    nodes = [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ClassDef) and n.name == obj.__name__
             and n.lineno >= after_line]
    node = min(nodes, key=lambda n: n.lineno)
    return "\n".join(text.splitlines()[node.lineno - 1:node.end_lineno])


def mutant(target: str, name: str, hint: str, _kind: str = "mutant", _depth: int = 1):
    caller = sys._getframe(_depth)
    filename, line = caller.f_code.co_filename, caller.f_lineno

    def register(obj):
        source = _class_source(obj, filename, line) if inspect.isclass(obj) else inspect.getsource(obj)
        lines = textwrap.dedent(source).splitlines()
        while lines and not lines[0].startswith(("def ", "class ")):
            lines.pop(0)  # drop the decorator (it may span several lines)
        _CURRENT.append(Mutant(target, name, hint, "\n".join(lines), _kind))
        return obj

    return register


def variant(target: str, name: str, why: str):
    """Register a *correct* implementation of ``target`` (grader/author/variants/):
    ``why`` says in one sentence why a careful student may write it."""
    return mutant(target, name, why, _kind="variant", _depth=2)


def source_variant(target: str, name: str, source: str, why: str) -> None:
    _CURRENT.append(Mutant(target, name, why, textwrap.dedent(source).strip("\n"), "variant"))


def source_mutant(target: str, name: str, source: str, hint: str) -> None:
    """Register a mutant given as source text (for families of near-identical
    mutants generated from one template)."""
    _CURRENT.append(Mutant(target, name, hint, textwrap.dedent(source).strip("\n")))


def catalogue(assignment: str, kind: str = "mutants") -> list:
    """All mutants (or, with ``kind="variants"``, all correct variants) of one
    assignment, in file order."""
    from grader import load_module

    _CURRENT.clear()
    load_module(kind, assignment)
    found = list(_CURRENT)
    _CURRENT.clear()
    return found
