"""Explanations of the "Predict, then run" experiments, shown only when they can no longer spoil anything.

Each prediction in a notebook (``predict_estimator_variance()`` and the like) is followed by the
experiment that settles it and then by one locked cell::

    explain("predict_estimator_variance", predict_estimator_variance, "closed",
            "eNqNU8Fu2zAM...")

It shows the explanation, as Markdown and opening with the student's own letter, once both hold:

- the prediction function returns one of "a", "b", "c" or "d";
- the experiment has run: the variable it binds when it finishes (``"closed"`` above) exists in the
  notebook and is not empty. It is named as a string, not passed, so a cell that runs before the
  experiment (a blank notebook, or grading, which skips demonstration cells) gets one line saying
  what to do instead of a NameError.

Until then it prints that one line. While nbgrader grades the notebook it returns at once, showing
nothing and looking up nothing: grading skips the experiments (they are ``demo`` cells), and this
cell cannot change what grading sees.

The explanation is stored *encoded* (zlib-compressed UTF-8 in base64) so that it cannot be read off
the page or the notebook's source before the experiment. It is not a secret from a determined
student (this module decodes it), only off the page; the leak scan of ``make release``
(grader/publish/leakscan.py) refuses a released notebook that states an answer in plain text.

**Writing or editing an explanation** (course authors):

1. Write the Markdown, beginning with the answer, e.g. ``**The answer: (b).** All three are ...``,
   in a file such as ``/tmp/answer.md`` (LaTeX with ``$...$`` works as in a Markdown cell).
2. ``.venv/bin/python -m vaelab.reveal encode < /tmp/answer.md`` prints the encoded text as string
   literals of 88 characters, one a line (Python joins them); paste them as the last argument of the
   ``explain(...)`` call in the solution notebook, then run ``make release``.
3. ``python -m vaelab.reveal decode < cell.txt`` (the encoded text, quotes and line breaks allowed)
   prints the Markdown back, to edit it and encode it again.
"""
from __future__ import annotations

import base64
import re
import sys
import zlib

__all__ = ["explain", "message", "encode", "decode", "LETTERS"]

LETTERS = ("a", "b", "c", "d")


def encode(text: str) -> str:
    """The stored form of an explanation: zlib-compressed UTF-8, in base64."""
    return base64.b64encode(zlib.compress(text.strip().encode("utf-8"), 9)).decode("ascii")


def decode(blob: str) -> str:
    """The explanation back from :func:`encode`'s output (whitespace and quotes ignored)."""
    return zlib.decompress(base64.b64decode(re.sub(r"[\s\"'()]", "", blob), validate=True)).decode("utf-8")


def _answer(prediction):
    """The student's letter, or None while the prediction is blank or not one of the letters."""
    try:
        letter = prediction()
    except Exception:  # NotImplementedError from the blank TODO, or any bug in it
        return None
    return letter if isinstance(letter, str) and letter in LETTERS else None


def _has_run(result) -> bool:
    """Whether the experiment's variable holds a result: not missing, None, or a container it
    made before a blank TODO stopped it (``sweep = {}`` filled in a loop that never ran)."""
    if result is None:
        return False
    try:
        return len(result) > 0
    except TypeError:  # a number or a 0-d tensor
        return True


def message(name: str, prediction, experiment: str, text: str, namespace: dict) -> tuple[str, str]:
    """What :func:`explain` shows: ``("hint", one line)`` or ``("markdown", the explanation)``.

    ``prediction`` is the student's prediction function (or None if it is not defined yet);
    ``experiment`` the name of the variable the experiment binds when it finishes, looked up in
    ``namespace``."""
    letter = _answer(prediction) if callable(prediction) else None
    ran = _has_run(namespace.get(experiment))
    if letter is None and not ran:
        return "hint", f"Make your prediction in {name}() and run the experiment above; the explanation appears here."
    if letter is None:
        return "hint", (f"Make your prediction in {name}() (return \"a\", \"b\", \"c\" or \"d\") and run this cell "
                        f"again; the explanation appears here.")
    if not ran:
        return "hint", "Run the experiment above, then this cell again; the explanation appears here."
    return "markdown", f"You predicted ({letter}).\n\n{decode(text)}"


def explain(name: str, prediction, experiment: str, text: str, namespace: dict | None = None) -> None:
    """Show the encoded explanation ``text`` of the prediction ``name`` as Markdown, with the
    student's letter, once ``prediction()`` returns a letter and the experiment has bound the
    variable named ``experiment``; otherwise print one line saying what to do. ``namespace`` is
    where to look for that variable: the calling notebook's globals by default."""
    from .runtime import autograding

    if autograding():
        return  # grading skips the experiments; the feedback shows no hint to act on
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    kind, shown = message(name, prediction, experiment, text, namespace)
    if kind == "hint":
        print(shown)
        return
    from IPython.display import Markdown, display

    display(Markdown(shown))


def _main(argv: list) -> int:
    if len(argv) != 1 or argv[0] not in ("encode", "decode"):
        print("usage: python -m vaelab.reveal encode < explanation.md\n"
              "       python -m vaelab.reveal decode < encoded.txt", file=sys.stderr)
        return 2
    data = sys.stdin.read()
    if argv[0] == "decode":
        print(decode(data))
        return 0
    blob = encode(data)
    print("\n".join(f'        "{blob[i:i + 88]}"' for i in range(0, len(blob), 88)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
