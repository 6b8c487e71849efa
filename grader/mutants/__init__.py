"""The misconception catalogue: known-wrong implementations ("mutants") of every
graded TODO, each with the one-sentence hint a student gets when their answer
behaves like it.

A catalogue file ``grader/mutants/<assignment>.py`` defines functions with the
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
    hint: str  # the sentence a matching student answer receives
    source: str  # definition with the student's name, decorator removed


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


def mutant(target: str, name: str, hint: str):
    caller = sys._getframe(1)
    filename, line = caller.f_code.co_filename, caller.f_lineno

    def register(obj):
        source = _class_source(obj, filename, line) if inspect.isclass(obj) else inspect.getsource(obj)
        lines = textwrap.dedent(source).splitlines()
        while lines and not lines[0].startswith(("def ", "class ")):
            lines.pop(0)  # drop the decorator (it may span several lines)
        _CURRENT.append(Mutant(target, name, hint, "\n".join(lines)))
        return obj

    return register


def source_mutant(target: str, name: str, source: str, hint: str) -> None:
    """Register a mutant given as source text (for families of near-identical
    mutants generated from one template)."""
    _CURRENT.append(Mutant(target, name, hint, textwrap.dedent(source).strip("\n")))


def catalogue(assignment: str) -> list:
    """All mutants of one assignment, in file order."""
    from grader import load_module

    _CURRENT.clear()
    load_module("mutants", assignment)
    found = list(_CURRENT)
    _CURRENT.clear()
    return found
