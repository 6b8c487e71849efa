"""The LMS boundary (issue 32) checked against the LMSs' own rules.

Every download below is laid out by ``tests/lms_oracles.py``, which
re-implements Canvas's and Moodle's own code (each function cites its source
file); the feedback bundle and the grade files our grader writes are then read
back with the same oracles: a file lands on the student it belongs to, or it
is refused; a grade file changes only what it means to change; no time is
ever taken from a zip entry.
"""
import csv
import datetime as dt
import io
import json
import zipfile

import pytest

from grader import lms

from grader.grade import times
from grader.after.export import export, feedback_bundle
from grader.grade.batch import DEFAULT_NAME_PATTERN, collect, submission_times
from tests import lms_oracles as oracle

NOTEBOOK = b'{"cells": [{"cell_type": "markdown", "metadata": {}, "source": "x"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'

# (sortable name, user id, attachment id, display name, late): two students share a slug, one name is not
# ASCII, one file is a re-upload Canvas renamed, one is late
CANVAS_CLASS = [("Lee, Ann", 101, 5001, "01_elbo.ipynb", False),
                ("Lee, Ann", 102, 5002, "01_elbo.ipynb", True),     # another Ann Lee: the same slug
                ("Núñez, José", 103, 5003, "01_elbo-1.ipynb", False),  # a re-upload Canvas renamed
                ("O'Brien-Smith, Zoë", 104, 5004, "01_elbo.ipynb", False)]
MOODLE_CLASS = [("Ann Lee", 7, 2001), ("Ann Lee", 8, 2002), ("José Núñez", 9, 2003)]  # (name, participant, user id)


def _canvas_zip(path, anonymous=False):
    with zipfile.ZipFile(path, "w") as zf:
        for number, (name, user, attachment, display, late) in enumerate(CANVAS_CLASS):
            anon = f"a{number}B2c" if anonymous else None
            zf.writestr(oracle.canvas_download_name(name, user, attachment, display, late=late, anonymous_id=anon),
                        NOTEBOOK)
    return path


def _moodle_zip(path, as_folders=True):
    with zipfile.ZipFile(path, "w") as zf:
        for name, participant, _ in MOODLE_CLASS:
            zf.writestr(oracle.moodle_download_path(name, participant, "01_elbo.ipynb", as_folders=as_folders),
                        NOTEBOOK)
            zf.writestr(oracle.moodle_download_path(name, participant, "onlinetext.html", as_folders=as_folders,
                                                    plugintype="onlinetext"), "<p>hi</p>")
    return path


def _collect(tmp_path, archive):
    out = tmp_path / "out"
    out.mkdir()
    pairs, problems = collect(archive, out, ["01_elbo"], DEFAULT_NAME_PATTERN)
    return out, pairs, problems


def _fake_feedback(out, pairs):
    for student, assignment in pairs:
        page = out / "feedback" / student / assignment / f"{assignment}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(f"<p>feedback for {student}</p>")


def test_canvas_download_names_are_read_as_canvas_writes_them():
    for name, user, attachment, display, late in CANVAS_CLASS:
        entry = oracle.canvas_download_name(name, user, attachment, display, late=late)
        origin = lms.canvas(entry)
        assert (origin.student, origin.assignment, origin.ids["attachment_id"], origin.ids["late"]) == \
            (str(user), "01_elbo", str(attachment), late), entry
        anonymous = lms.canvas(oracle.canvas_download_name(name, user, attachment, display, late=late,
                                                           anonymous_id="x1Y2z"))
        assert anonymous.student == "anon_x1Y2z" and anonymous.ids["attachment_id"] == str(attachment)


@pytest.mark.parametrize("anonymous", [False, True])
def test_canvas_round_trip_feedback_lands_on_each_student(tmp_path, anonymous):
    out, pairs, problems = _collect(tmp_path, _canvas_zip(tmp_path / "submissions.zip", anonymous))
    assert len(pairs) == len(CANVAS_CLASS) and not problems  # the shared slug clashes with nothing
    _fake_feedback(out, pairs)
    (bundle,), refused = feedback_bundle(out, "canvas")
    assert not refused
    submissions = {user: {attachment} for _, user, attachment, _, _ in CANVAS_CLASS}
    anonymous_ids = {f"a{n}B2c": user for n, (_, user, *_) in enumerate(CANVAS_CLASS)}
    with zipfile.ZipFile(bundle) as zf:
        for name in zf.namelist():
            match = oracle.canvas_feedback_match(name, submissions, anonymous_ids=anonymous_ids)
            assert match is not None, name
            user, attachment = match
            expected = f"anon_{next(a for a, u in anonymous_ids.items() if u == user)}" if anonymous else str(user)
            assert zf.read(name).decode() == f"<p>feedback for {expected}</p>"
            assert attachment in submissions[user]


def test_a_canvas_bundle_is_refused_for_work_that_did_not_come_from_canvas(tmp_path):
    out = tmp_path / "out"
    _fake_feedback(out, [("ann", "01_elbo")])
    paths, problems = feedback_bundle(out, "canvas")
    assert paths == [] and any("ann/01_elbo" in p and "attachment id" in p for p in problems)


@pytest.mark.parametrize("as_folders", [True, False])
def test_moodle_round_trip_feedback_lands_on_each_participant(tmp_path, as_folders):
    out, pairs, problems = _collect(tmp_path, _moodle_zip(tmp_path / "submissions.zip", as_folders))
    assert sorted(pairs) == sorted((f"participant-{p}", "01_elbo") for _, p, _ in MOODLE_CLASS) and not problems
    _fake_feedback(out, pairs)
    (bundle,), refused = feedback_bundle(out, "moodle")
    assert not refused
    participants = {p: user for _, p, user in MOODLE_CLASS}
    with zipfile.ZipFile(bundle) as zf:
        for name in zf.namelist():
            user = oracle.moodle_feedback_import_match(name, participants)
            participant = next(p for p, u in participants.items() if u == user)
            assert zf.read(name).decode() == f"<p>feedback for participant-{participant}</p>"
    # the roster's user id is not the participant number: a bundle for work from elsewhere is refused
    _fake_feedback(out, [("ann", "01_elbo")])
    _, problems = feedback_bundle(out, "moodle")
    assert any("ann/01_elbo" in p and "participant number" in p for p in problems)


def test_a_zip_downloaded_a_week_late_makes_nobody_late(tmp_path, monkeypatch):
    """Canvas stamps every entry with the moment the zip was built; make grade never reads it."""
    from grader.grade import attempt
    from grader.late import Policy, read_timestamp

    archive = tmp_path / "submissions.zip"
    week_after = (2026, 10, 12, 9, 0, 0)
    with zipfile.ZipFile(archive, "w") as zf:
        for name, user, attachment, display, late in CANVAS_CLASS:
            info = zipfile.ZipInfo(oracle.canvas_download_name(name, user, attachment, display, late=late),
                                   date_time=week_after)
            zf.writestr(info, NOTEBOOK)
    due = dt.datetime(2026, 10, 5, 23, 59, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(attempt, "POLICY", Policy(unit="day", penalty_percent=10, due={"01_elbo": due}))
    out, pairs, _ = _collect(tmp_path, archive)
    sources, notes = submission_times(out, pairs, None)
    assert all(read_timestamp(out / "submitted" / s / a) is None for s, a in pairs)
    assert set(sources.values()) == {""}
    by_student = {n.student: n.message for n in notes}
    assert "LATE" in by_student["102"] and "no late penalty" in by_student["102"]  # Canvas's own mark, reported
    assert all("no trustworthy submission time" in by_student[str(u)] for _, u, _, _, late in CANVAS_CLASS if not late)
    # with Canvas's own times (its submissions API, saved by the instructor) the policy applies
    api = [{"user_id": user, "submitted_at": ("2026-10-06T08:00:00Z" if late else "2026-10-05T20:00:00Z")}
           for _, user, _, _, late in CANVAS_CLASS]
    (tmp_path / "times.json").write_text(json.dumps(api))
    sources, notes = submission_times(out, pairs, tmp_path / "times.json")
    assert read_timestamp(out / "submitted" / "102" / "01_elbo") == dt.datetime(2026, 10, 6, 8, tzinfo=dt.timezone.utc)
    assert set(sources.values()) == {"Canvas submissions API (TIMES)"} and not notes


def test_moodle_worksheet_times_are_read_in_the_downloaders_zone():
    zone = "Australia/Perth"
    submitted = int(dt.datetime(2026, 10, 6, 14, 5, tzinfo=dt.timezone.utc).timestamp())
    header = oracle.moodle_worksheet_header()
    rows = [oracle.moodle_worksheet_row(p, name, f"u{p}@example.org", submitted_ts=submitted if p != 9 else None,
                                        tz=zone) for name, p, _ in MOODLE_CLASS]
    path_text = oracle.moodle_worksheet_csv(header, rows)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "worksheet.csv"
        path.write_text(path_text, encoding="utf-8")
        found = times.load(path, ["01_elbo"], zone)
    assert set(found) == {("participant-7", "01_elbo"), ("participant-8", "01_elbo")}  # 9 has not submitted ("-")
    when, source = found[("participant-7", "01_elbo")]
    assert int(when.timestamp()) == submitted and "Moodle grading worksheet" in source
    with pytest.raises(times.TimesError, match="one assignment"):
        times.load(_write(path_text), ["01_elbo", "02_reparameterization"], zone)


def _write(text):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "worksheet.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def graded_folder(tmp_path):
    """A grades.csv as make grade writes it: ann 8/9, bob handed nothing in, cyd 9/9."""
    out = tmp_path / "grading"
    out.mkdir()
    with open(out / "grades.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["assignment", "student_id", "score", "max_score", "status"])
        writer.writerow(["01_elbo", "ann", "8", "9", "final"])
        writer.writerow(["01_elbo", "bob", "0", "9", "no submission"])
        writer.writerow(["01_elbo", "cyd", "9", "9", "final"])
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,lms_id,name,email\nann,101,Ann Lee,ann@example.org\n"
                      "bob,102,Bob Roy,bob@example.org\ncyd,103,Cyd Poe,cyd@example.org\n")
    return out, roster


def test_canvas_import_changes_only_what_was_graded(graded_folder):
    out, roster = graded_folder
    (path,), _ = export(out, "canvas", roster)
    existing = {(102, 77): "EX", (101, 77): 1.0}  # bob was excused in Canvas, and has no submission here
    result = oracle.canvas_import(path.read_text(), {77: "01_elbo"}, existing)
    assert result["created"] == []  # the column is matched to the existing assignment by its exact title
    assert {k: float(v) for k, v in result["changes"].items()} == {(101, 77): 8.0, (103, 77): 9.0}


def test_moodle_import_maps_every_row_and_keeps_scores_in_range(graded_folder):
    out, roster = graded_folder
    (path,), _ = export(out, "moodle", roster)
    rows = list(csv.reader(io.StringIO(path.read_text())))
    users = [{"id": i, "username": f"u{i}", "idnumber": "", "email": f"{n}@example.org"}
             for i, n in ((101, "ann"), (102, "bob"), (103, "cyd"))]
    # map from "Moodle user id" to userid, as the file's header says
    result = oracle.moodle_import([[r[0], r[3]] for r in rows[1:]], "userid", users, grademax=9)
    assert result == {"changes": {101: 8.0, 103: 9.0}}
    (percent,), _ = export(out, "moodle", roster, percent=True)
    rows = list(csv.reader(io.StringIO(percent.read_text())))
    result = oracle.moodle_import([[r[1], r[3]] for r in rows[1:]], "useremail", users, grademax=100)
    assert result["changes"][101] == pytest.approx(100 * 8 / 9, abs=0.01)


def test_a_canvas_download_is_its_own_roster(tmp_path):
    out, pairs, _ = _collect(tmp_path, _canvas_zip(tmp_path / "submissions.zip"))
    with open(out / "grades.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["assignment", "student_id", "score", "max_score", "status"])
        for n, (student, assignment) in enumerate(sorted(pairs)):
            writer.writerow([assignment, student, str(n + 5), "9", "final"])
    (path,), problems = export(out, "canvas", None)
    result = oracle.canvas_import(path.read_text(), {77: "01_elbo"}, {})
    expected = {(int(s), 77): float(n + 5) for n, (s, _) in enumerate(sorted(pairs))}
    assert {k: float(v) for k, v in result["changes"].items()} == expected
    assert problems == [p for p in problems if "exact title" in p]  # only the advice on column titles
    with pytest.raises(Exception, match="no roster"):
        export(_empty(tmp_path), "canvas", None)


def _empty(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    (out / "grades.csv").write_text("assignment,student_id,score,max_score,status\n01_elbo,ann,1,9,final\n")
    return out


def test_canvas_columns_name_existing_assignments_by_id(graded_folder, tmp_path):
    out, roster = graded_folder
    gradebook = tmp_path / "canvas_export.csv"
    gradebook.write_text("Student,ID,SIS User ID,SIS Login ID,Section,01 ELBO (77),Quiz 1 (78),Current Score\n"
                         "Points Possible,,,,,9,5,\n")
    (path,), _ = export(out, "canvas", roster, canvas_gradebook=gradebook)
    # the title in the file differs from Canvas's; the id decides (lib/gradebook_importer.rb)
    result = oracle.canvas_import(path.read_text(), {77: "01 ELBO", 78: "Quiz 1"}, {})
    assert result["created"] == [] and {a for _, a in result["changes"]} == {77}
    gradebook.write_text("Student,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (78)\n")
    with pytest.raises(Exception, match="0 Canvas assignment columns"):
        export(out, "canvas", roster, canvas_gradebook=gradebook)


def test_moodle_round_trip_download_in_grade_file_out(tmp_path):
    """Moodle's download names participants, its grade import wants users: the roster maps one to the other."""
    out, pairs, _ = _collect(tmp_path, _moodle_zip(tmp_path / "submissions.zip"))
    with open(out / "grades.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["assignment", "student_id", "score", "max_score", "status"])
        for student, assignment in sorted(pairs):
            writer.writerow([assignment, student, "7", "9", "final"])
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,lms_id,name,email\n" + "".join(
        f"participant-{p},{user},{name},u{user}@example.org\n" for name, p, user in MOODLE_CLASS))
    (path,), problems = export(out, "moodle", roster)
    rows = list(csv.reader(io.StringIO(path.read_text())))
    users = [{"id": user, "username": f"u{user}", "idnumber": "", "email": f"u{user}@example.org"}
             for _, _, user in MOODLE_CLASS]
    result = oracle.moodle_import([[r[0], r[3]] for r in rows[1:]], "userid", users, grademax=9)
    assert result == {"changes": {user: 7.0 for _, _, user in MOODLE_CLASS}} and not problems
