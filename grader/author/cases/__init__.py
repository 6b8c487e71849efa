"""Inputs on which reference outputs are recorded: ``grader/author/cases/<assignment>.py``
defines ``public()`` and ``hidden()``, each returning
``{function: {"kind": ..., "cases": [case(label, *args, **kwargs), ...]}}``.

Hidden inputs differ from public ones in shape and values (e.g. batch 97
rather than 4), so an answer hard-coded for the visible cases fails.

A case states inputs, never a tolerance. ``make references`` writes each
case's ``rtol`` and ``atol``: for a numeric case they are derived from the
correct variants (grader/author/variants/) and the mistakes (grader/author/mutants/) by
grader/author/tolerances.py; for an estimator (a ``"stochastic": True`` function)
``atol`` is SIGMAS standard deviations of the reference's own spread and
``rtol`` is 0 (grader/author/record.py); symbolic and multiple-choice cases
are compared exactly. What a case may add: ``c["floors"] = {component: value}``,
an absolute floor under a derived ``atol`` for a component that is a Monte
Carlo statistic (grader/author/tolerances.py), and ``c["expected"]``, an oracle.
"""

#: What a record holds until ``make references`` writes the case's real
#: tolerance (symbolic and multiple-choice cases keep it, unused).
UNSET_RTOL, UNSET_ATOL = 1e-5, 1e-6


def case(label, *args, rtol=None, atol=None, **kwargs):
    """One case: ``label`` (shown to the student), the positional ``args`` and
    keyword ``kwargs`` the TODO is called with. ``rtol=``/``atol=`` are refused:
    the tolerance is derived, and a stated one would only look like it counts."""
    if rtol is not None or atol is not None:
        stated = ", ".join(f"{k}={v!r}" for k, v in (("rtol", rtol), ("atol", atol)) if v is not None)
        raise TypeError(
            f"case({label!r}, ..., {stated}): a case does not set its tolerance. `make references` derives it "
            "from the correct variants (grader/author/variants/) and the mistakes (grader/author/mutants/) in "
            "grader/author/tolerances.py, and measures an estimator's from its spread (grader/author/record.py). "
            "Remove the argument; for a Monte Carlo statistic give an absolute floor with "
            "c['floors'] = {component: value} (see docs/authoring.md).")
    return {"label": label, "args": list(args), "kwargs": kwargs, "rtol": UNSET_RTOL, "atol": UNSET_ATOL}
