"""``make export``: the gradebook in Canvas's and Moodle's import formats,
mapped through a roster, with every mismatch reported, never dropped."""
import csv
import subprocess
import sys

import pytest

from grader import ROOT
from grader.after.export import CANVAS_FIXED, MOODLE_FIXED, ExportError, export, read_roster

# nbgrader's own export columns (nbgrader.plugins.export.CsvExportPlugin), plus make grade's status
NBGRADER_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score", "status"]
GRADES = [  # (assignment, student, submitted?, score, max, status)
    ("01_elbo", "ann", True, 8.0, 9.0, "final"),
    ("01_elbo", "bob", True, 6.0, 9.0, "pending manual grade: proof-elbo-tight"),
    ("01_elbo", "eve", True, 9.0, 9.0, "final"),
    ("02_reparameterization", "ann", True, 6.5, 7.0, "final"),
    ("02_reparameterization", "bob", False, 0.0, 7.0, "final"),
    ("02_reparameterization", "eve", True, 7.0, 7.0, "final"),
]


@pytest.fixture
def grading(tmp_path):
    out = tmp_path / "grading"
    out.mkdir()
    with open(out / "grades.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, NBGRADER_COLUMNS)
        writer.writeheader()
        for a, s, submitted, score, top, status in GRADES:
            # as nbgrader writes it: every student under every assignment, and no timestamp without a
            # timestamp.txt; make grade's status column says which rows have no submission
            writer.writerow({"assignment": a, "student_id": s, "timestamp": "",
                             "raw_score": score, "late_submission_penalty": 0.0, "score": score, "max_score": top,
                             "status": status if submitted else "no submission"})
        writer.writerow({"assignment": "03_vae", "student_id": "ann", "timestamp": "", "raw_score": 0.0,
                         "late_submission_penalty": 0.0, "score": 0.0, "max_score": 9.0, "status": "no submission"})
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,lms_id,name,email\nann,101,Ann Lee,ann@example.org\n"
                      "bob,102,Bob Roy,bob@example.org\ncyd,103,Cyd Poe,cyd@example.org\n")
    return out, roster


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def _expected(student, assignment):
    for a, s, submitted, score, *_ in GRADES:
        if (a, s) == (assignment, student):
            return f"{score:g}" if submitted else ""
    return ""


def test_canvas_files_have_canvas_columns_and_only_students_who_handed_in(grading):
    out, roster = grading
    paths, problems = export(out, "canvas", roster)
    assignments = ["01_elbo", "02_reparameterization"]  # 03_vae: nobody handed it in, no file
    assert [p.name for p in paths] == [f"grades_canvas_{a}.csv" for a in assignments]
    for path, a in zip(paths, assignments):
        rows = _rows(path)
        assert rows[0] == CANVAS_FIXED + [a]
        assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
        top = next(m for aa, _, _, _, m, _ in GRADES if aa == a)
        assert rows[1][0] == "Points Possible" and rows[1][5:] == [f"{top:g}"]
        by_id = {r[1]: r for r in rows[2:]}
        lms = {"ann": "101", "bob": "102", "cyd": "103"}
        handed_in = {s for aa, s, submitted, *_ in GRADES if aa == a and submitted and s in lms}
        # Canvas clears a score under an empty cell (lib/gradebook_importer.rb): no row may carry one
        assert set(by_id) == {lms[s] for s in handed_in}
        assert all(r[5] != "" for r in rows[2:])
        for s in handed_in:
            assert by_id[lms[s]][5:] == [_expected(s, a)]
    assert any("eve" in p and "not in the roster" in p for p in problems)
    assert any("cyd" in p and "no submission" in p and "keeps what it has" in p for p in problems)
    assert any("bob" in p and "pending" in p for p in problems)


def test_moodle_files_say_which_user_field_they_carry(grading):
    out, roster = grading
    paths, _ = export(out, "moodle", roster)
    rows = _rows(paths[0])
    assert rows[0] == MOODLE_FIXED + ["01_elbo"]
    assert rows[0][:2] == ["Moodle user id", "Email address"]
    ann = next(r for r in rows[1:] if r[0] == "101")
    assert ann[1] == "ann@example.org" and ann[3:] == ["8"]
    assert len(rows) == 1 + 2  # ann and bob handed 01 in; cyd did not, eve is not in the roster
    percent, _ = export(out, "moodle", roster, percent=True)
    ann = next(r for r in _rows(percent[0])[1:] if r[0] == "101")
    assert float(ann[3]) == pytest.approx(100 * 8 / 9, abs=0.01)


def test_plain_csv_keeps_the_pending_state(grading):
    out, roster = grading
    (path,), _ = export(out, "csv", roster)
    rows = {r["student_id"]: r for r in csv.DictReader(open(path))}
    assert rows["bob"]["status"] == "01_elbo: pending manual grade: proof-elbo-tight; 02_reparameterization: no submission"
    assert rows["ann"]["status"] == "final" and rows["cyd"]["status"] == "no submission"


def test_bad_rosters_are_refused_with_the_line(tmp_path, grading):
    out, _ = grading
    bad = tmp_path / "bad.csv"
    bad.write_text("student,id\nann,1\n")
    with pytest.raises(ExportError, match="lacks the column"):
        read_roster(bad)
    bad.write_text("student_id,lms_id\nann,1\nann,2\n")
    with pytest.raises(ExportError, match="line 3.*twice"):
        read_roster(bad)
    with pytest.raises(ExportError, match="does not exist"):
        export(tmp_path / "nowhere", "canvas", bad)


def test_make_export_command_line(grading):
    out, roster = grading
    done = subprocess.run([sys.executable, "-m", "grader.after.export", "--lms", "canvas", "--roster", str(roster),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and "eve has grades but is not in the roster" in done.stdout
    assert (out / "grades_canvas_01_elbo.csv").exists()
    refused = subprocess.run([sys.executable, "-m", "grader.after.export", "--lms", "canvas", "--roster",
                              str(out / "missing.csv"), "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2 and "does not exist" in refused.stderr


def test_status_column_tells_a_missing_submission_from_a_zero(tmp_path):
    """nbgrader's export lists every student under every assignment with an
    empty timestamp when there is no timestamp.txt: only the gradebook knows
    who handed in what, and the status column says it."""
    from nbgrader.api import Gradebook

    from grader.after.report import add_manual_status

    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    (tmp_path / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.db_url = '{url}'\n")
    with Gradebook(url) as gb:
        for name in ("a1", "a2"):
            gb.add_assignment(name)
        gb.add_student("ann")
        gb.add_submission("a1", "ann")
    grades = tmp_path / "grades.csv"
    with open(grades, "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["assignment", "timestamp", "student_id", "score", "max_score"])
        writer.writeheader()
        writer.writerow({"assignment": "a1", "timestamp": "", "student_id": "ann", "score": 0.0, "max_score": 0.0})
        writer.writerow({"assignment": "a2", "timestamp": "", "student_id": "ann", "score": 0.0, "max_score": 0.0})
    assert add_manual_status(tmp_path, grades) == 0
    assert {r["assignment"]: r["status"] for r in csv.DictReader(open(grades))} == {"a1": "final",
                                                                                    "a2": "no submission"}
