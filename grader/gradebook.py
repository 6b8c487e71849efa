"""Copy one graded submission from a worker's private gradebook into the
course gradebook. Workers never share a database, so parallel grading has no
write contention by design; only the coordinator writes to the course
gradebook (SQLite or PostgreSQL), one submission at a time."""
from __future__ import annotations

from nbgrader.api import Gradebook, MissingEntry


def merge(worker_url: str, main_url: str, assignment: str, student: str) -> None:
    import warnings

    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings(), Gradebook(worker_url) as src, Gradebook(main_url) as dst:
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's own ORM relationships warn on re-adding
        sub = src.find_submission(assignment, student)
        dst.update_or_create_student(student)
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
        dst.db.commit()


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
