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
import textwrap
from dataclasses import dataclass


@dataclass
class Mutant:
    target: str  # the TODO it imitates, e.g. "kl_standard_normal"
    name: str  # short id, e.g. "missing_half"
    hint: str  # the sentence a matching student answer receives
    source: str  # definition with the student's name, decorator removed


_CURRENT: list = []


def mutant(target: str, name: str, hint: str):
    def register(obj):
        lines = textwrap.dedent(inspect.getsource(obj)).splitlines()
        while lines and not lines[0].startswith(("def ", "class ")):
            lines.pop(0)  # drop the decorator (it may span several lines)
        _CURRENT.append(Mutant(target, name, hint, "\n".join(lines)))
        return obj

    return register


def catalogue(assignment: str) -> list:
    """All mutants of one assignment, in file order."""
    from grader import load_module

    _CURRENT.clear()
    load_module("mutants", assignment)
    found = list(_CURRENT)
    _CURRENT.clear()
    return found
