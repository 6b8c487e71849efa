"""Inputs on which reference outputs are recorded: ``grader/cases/<assignment>.py``
defines ``public()`` and ``hidden()``, each returning
``{function: {"kind": ..., "cases": [{"label", "args", "kwargs", "rtol", "atol"}]}}``.

Hidden inputs differ from public ones in shape and values (e.g. batch 97
rather than 4), so an answer hard-coded for the visible cases fails.
"""


def case(label, *args, rtol=1e-5, atol=1e-6, **kwargs):
    return {"label": label, "args": list(args), "kwargs": kwargs, "rtol": rtol, "atol": atol}
