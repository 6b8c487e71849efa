"""Copy one graded submission from a worker's private gradebook into the
course gradebook. Workers never share a database, so parallel grading has no
write contention by design; only the coordinator writes to the course
gradebook (SQLite or PostgreSQL), one submission at a time."""
from __future__ import annotations

import json
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry


def _manual_marks(gb, assignment: str, student: str) -> tuple[dict, dict]:
    """The instructor's marks on a submission already in the gradebook:
    ``{(notebook, cell): (manual_score, extra_credit)}`` and
    ``{(notebook, cell): manual_comment}``."""
    grades, comments = {}, {}
    try:
        old = gb.find_submission(assignment, student)
    except MissingEntry:
        return grades, comments
    for nb in old.notebooks:
        for grade in nb.grades:
            if grade.manual_score is not None:
                grades[(nb.name, grade.name)] = (grade.manual_score, grade.extra_credit)
        for comment in nb.comments:
            if comment.manual_comment:
                comments[(nb.name, comment.name)] = comment.manual_comment
    return grades, comments


def merge(worker_url: str, main_url: str, assignment: str, student: str, unchanged=lambda cell: False) -> list:
    """Replace the submission in the course gradebook by the worker's, keeping
    every manual mark (score, extra credit, comment) whose cell is
    ``unchanged``; a mark on a changed answer is dropped, the cell is flagged
    as needing a manual grade again, and a warning says so. Returns the
    warnings."""
    import warnings

    from sqlalchemy.exc import SAWarning

    notes = []
    with warnings.catch_warnings(), Gradebook(worker_url) as src, Gradebook(main_url) as dst:
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's own ORM relationships warn on re-adding
        sub = src.find_submission(assignment, student)
        dst.update_or_create_student(student)
        kept_grades, kept_comments = _manual_marks(dst, assignment, student)
        try:
            dst.remove_submission(assignment, student)
        except MissingEntry:
            pass
        dst.add_submission(assignment, student, timestamp=sub.timestamp)
        for nb in sub.notebooks:
            dst_nb = dst.find_submission_notebook(nb.name, assignment, student)
            dst_nb.flagged = nb.flagged
            for grade in nb.grades:
                target = dst.find_grade(grade.name, nb.name, assignment, student)
                target.auto_score = grade.auto_score
                target.manual_score = grade.manual_score
                target.extra_credit = grade.extra_credit
                target.needs_manual_grade = grade.needs_manual_grade
            for comment in nb.comments:
                target = dst.find_comment(comment.name, nb.name, assignment, student)
                target.auto_comment = comment.auto_comment
                target.manual_comment = comment.manual_comment
        for (nb_name, cell), (score, extra) in kept_grades.items():
            try:
                target = dst.find_grade(cell, nb_name, assignment, student)
            except MissingEntry:
                notes.append(f"the marked cell '{cell}' no longer exists; its manual score "
                             f"{score:g} was dropped")
                continue
            if unchanged(cell):
                target.manual_score, target.extra_credit, target.needs_manual_grade = score, extra, False
            else:
                target.needs_manual_grade = target.cell_type != "code" or target.auto_score is None
                notes.append(f"the answer in '{cell}' changed since it was marked; its "
                             f"manual score {score:g} was dropped and the cell needs a manual grade again")
        for (nb_name, cell), text in kept_comments.items():
            try:
                target = dst.find_comment(cell, nb_name, assignment, student)
            except MissingEntry:
                continue
            if unchanged(cell):
                target.manual_comment = text
            elif (nb_name, cell) not in kept_grades:
                notes.append(f"the answer in '{cell}' changed since it was commented; "
                             f"the comment was dropped")
        dst.db.commit()
    return notes


def zero_and_flag(url: str, assignment: str, student: str) -> None:
    """Set every autograded score of a submission to 0 and flag it for review."""
    with Gradebook(url) as gb:
        sub = gb.find_submission(assignment, student)
        for nb in sub.notebooks:
            nb.flagged = True
            for grade in nb.grades:
                if grade.auto_score is not None:
                    grade.auto_score = 0.0
        gb.db.commit()


def origins(out: Path) -> dict:
    """{(student, assignment): what the coordinator recorded at collection (grader/grade/batch.py)}."""
    try:
        known = json.loads((out / "collected.json").read_text())
    except (OSError, ValueError):
        return {}
    return {tuple(key.split("/", 1)): value for key, value in known.items() if "/" in key}
