"""Correct variants: implementations of each graded TODO that a careful student
may legitimately write. ``grader/author/variants/<assignment>.py`` registers them with
:func:`grader.author.mutants.variant`, using the student's function name, so each one
can be pasted into a released notebook as a correct submission. Every variant
must pass every public and hidden case with no hint, and ``make references``
sets each case's tolerance above their largest deviation (grader/author/tolerances.py).
"""
