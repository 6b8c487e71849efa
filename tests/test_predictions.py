"""The "Predict, then run" questions keep their answers off the page.

Each explanation sits in a locked ``explain(...)`` cell (vaelab/reveal.py), encoded, and shows only
once the student's prediction returns a letter and the experiment has run. The leak scan of
``make release`` refuses a released notebook that states an answer or holds an explanation in plain
text; every released notebook passes it.
"""
import shutil

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader import RELEASE, SOLUTIONS, assignments

from grader.publish import leakscan
from vaelab import reveal

EXPLANATION = ("**The answer: (b).** All three are unbiased, but unbiased says nothing about spread, "
               "and the pathwise estimator averages a gentle function of the noise.")
BLOB = reveal.encode(EXPLANATION)
HINT = "Make your prediction in predict_spread() and run the experiment above; the explanation appears here."


def _blank():
    raise NotImplementedError()


@pytest.fixture
def shown(monkeypatch):
    """What explain() displays as Markdown, with the display captured (and outside nbgrader)."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    displayed = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj: displayed.append(obj.data))
    return displayed


def test_encoding_round_trips_and_hides_the_text():
    assert reveal.decode(BLOB) == EXPLANATION
    assert "answer" not in BLOB and "(b)" not in BLOB
    wrapped = '"' + BLOB[:30] + '"\n        "' + BLOB[30:] + '"'  # as the helper prints it for a notebook cell
    assert reveal.decode(wrapped) == EXPLANATION


def test_a_blank_prediction_shows_only_the_hint(shown, capsys):
    reveal.explain("predict_spread", _blank, "spread", BLOB, namespace={"spread": [1.0]})
    reveal.explain("predict_spread", _blank, "spread", BLOB, namespace={})
    out = capsys.readouterr().out
    assert shown == []
    assert out.splitlines()[1] == HINT
    assert "(b)" not in out and "unbiased" not in out and len(out.splitlines()) == 2


@pytest.mark.parametrize("answer", ["B", "(b)", None, 2])
def test_an_invalid_letter_shows_only_a_hint(shown, capsys, answer):
    reveal.explain("predict_spread", lambda: answer, "spread", BLOB, namespace={"spread": [1.0]})
    assert shown == []
    assert "predict_spread()" in capsys.readouterr().out


@pytest.mark.parametrize("result", [None, {}, []], ids=["None", "empty-dict", "empty-list"])
def test_an_answer_without_the_experiment_shows_only_a_hint(shown, capsys, result):
    """An experiment stopped by a blank TODO leaves its result missing or empty (``sweep = {}``)."""
    reveal.explain("predict_spread", lambda: "c", "spread", BLOB, namespace={"spread": result})
    reveal.explain("predict_spread", lambda: "c", "spread", BLOB, namespace={})
    assert shown == []
    assert capsys.readouterr().out.splitlines() == [
        "Run the experiment above, then this cell again; the explanation appears here."] * 2


@pytest.mark.parametrize("result", [0.42, torch.tensor(0.1), torch.ones(3), {"d = 2": 1.0}],
                         ids=["float", "0-d-tensor", "tensor", "dict"])
def test_any_result_of_the_experiment_counts(shown, result):
    reveal.explain("predict_spread", lambda: "d", "spread", BLOB, namespace={"spread": result})
    assert shown == [f"You predicted (d).\n\n{EXPLANATION}"]


def test_an_answer_after_the_experiment_shows_the_explanation_with_the_students_letter(shown, capsys):
    reveal.explain("predict_spread", lambda: "c", "spread", BLOB, namespace={"spread": [1.0]})
    assert shown == [f"You predicted (c).\n\n{EXPLANATION}"]
    assert capsys.readouterr().out == ""


def test_explain_reads_the_experiment_from_the_callers_globals(shown):
    globals()["spread_for_the_test"] = [1.0]
    try:
        reveal.explain("predict_spread", lambda: "a", "spread_for_the_test", BLOB)
    finally:
        del globals()["spread_for_the_test"]
    assert shown and shown[0].startswith("You predicted (a).")


def test_explain_is_silent_while_grading(monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.delenv("VAELAB_FULL_RUN", raising=False)
    reveal.explain("predict_spread", _blank, "spread", BLOB, namespace={})
    assert capsys.readouterr().out == ""


def test_the_helper_prints_a_literal_that_decodes(monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(EXPLANATION + "\n"))
    assert reveal._main(["encode"]) == 0
    assert reveal.decode(capsys.readouterr().out) == EXPLANATION


def _notebook(*cells):
    nb = new_notebook()
    nb.cells = list(cells)
    return nb


KNOWN = {"predict_spread": EXPLANATION}


@pytest.mark.parametrize("cell", [
    new_markdown_cell("**The answer: (b).** The pathwise estimator wins."),
    new_markdown_cell("**The answer to the prediction: c** because..."),
    new_markdown_cell("So the answer is (d)."),
    new_code_cell("# The answer: (b)\nprint('done')"),
    new_code_cell('explain("predict_spread", predict_spread, "spread", "The pathwise one, (b): it is smoother")'),
    new_code_cell('print("All three are unbiased, but unbiased says nothing about spread, and the pathwise '
                  'estimator averages a gentle function of the noise.")'),
    new_markdown_cell("All three are unbiased, but unbiased says nothing about spread, and the\npathwise estimator "
                      "averages a gentle function of the noise."),
], ids=["markdown", "markdown-no-parentheses", "answer-is", "comment", "unencoded-explain", "string-literal",
        "explanation-in-markdown"])
def test_a_notebook_that_gives_an_answer_away_is_refused(cell):
    nb = _notebook(new_markdown_cell("### Predict, then run"), cell)
    leaks = leakscan.answer_leaks(nb, "tmp.ipynb", KNOWN)
    assert leaks and all(leak.startswith("tmp.ipynb cell 2") for leak in leaks)


def test_a_notebook_with_an_encoded_explanation_passes():
    nb = _notebook(new_markdown_cell("Before you run the experiment, make `predict_spread()` return your letter; "
                                     "the hidden test grades it, and the cell after it explains the answer."),
                   new_code_cell(f'explain("predict_spread", predict_spread, "spread",\n        "{BLOB}")'))
    assert leakscan.answer_leaks(nb, "tmp.ipynb", KNOWN) == []


def test_a_release_with_a_stated_answer_is_refused(tmp_path, monkeypatch):
    fake_release = tmp_path / "assignments"
    shutil.copytree(RELEASE, fake_release)
    path = fake_release / "02_reparameterization" / "02_reparameterization.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    first = next(iter(leakscan.explanations()["predict_estimator_variance"].split(". ")))
    nb.cells.append(new_markdown_cell(first + "."))
    nbformat.write(nb, str(path))
    monkeypatch.setattr(leakscan, "RELEASE", fake_release)
    leaks = "\n".join(leakscan.scan())
    assert "02_reparameterization.ipynb cell" in leaks and "states a prediction's answer" in leaks


def test_every_prediction_has_an_encoded_explanation_in_a_locked_cell():
    known = leakscan.explanations()
    for name in assignments():
        nb = nbformat.read(str(SOLUTIONS / name / f"{name}.ipynb"), as_version=4)
        predictions = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                       if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith("predict_")]
        for prediction in predictions:
            (cell,) = [c for c in nb.cells if c.get("id") == f"explain-{prediction}"]
            meta = cell.metadata["nbgrader"]
            assert meta["locked"] and not meta["grade"] and not meta["solution"]
            assert meta["grade_id"] == f"explain-{prediction}"
            assert known[prediction].startswith("**The answer: (")
            # after the experiment: the cell before it is the (demo) experiment, not the prediction
            before = nb.cells[nb.cells.index(cell) - 1]
            assert "demo" in before.metadata.get("tags", [])


@pytest.mark.parametrize("name", assignments())
def test_every_released_notebook_passes_the_answer_scan(name):
    nb = nbformat.read(str(RELEASE / name / f"{name}.ipynb"), as_version=4)
    assert leakscan.answer_leaks(nb, name) == []


@pytest.mark.parametrize("name", assignments())
def test_hidden_test_cells_open_with_a_comment_not_a_docstring(name):
    """A docstring is the released cell's last expression and would echo as Out[n]."""
    nb = nbformat.read(str(SOLUTIONS / name / f"{name}.ipynb"), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            assert cell.source.startswith("# Hidden test: "), cell.get("id")
