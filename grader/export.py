"""``make export LMS=canvas|moodle|csv ROSTER=roster.csv``: the course
gradebook as a file the LMS imports, one column per assignment.

The roster maps the ids used in the submissions (``student_id``, the folder
or LMS-zip name) to the LMS's own ids. It is a CSV with a header row and the
columns ``student_id, lms_id, name, email`` (``name`` and ``email`` may be
empty). Scores are nbgrader's ``score`` (after any late penalty), manual marks
included. Nothing is dropped silently: a graded student missing from the
roster, and a roster entry with no submission, are both reported (and the
latter exported with an empty cell, which every LMS reads as "not graded").

Formats:

- ``canvas``: Canvas's gradebook import: ``Student, ID, SIS User ID,
  SIS Login ID, Section``, one column per assignment, and a second row
  ``Points Possible``. ``ID`` is the roster's ``lms_id`` (Canvas's user id).
- ``moodle``: Moodle's "Import grades from CSV": ``ID number, Email address,
  Full name``, one column per assignment; at import, map users by ``ID number``
  (the roster's ``lms_id``) and each assignment column to its grade item.
- ``csv``: ``student_id, lms_id, name, email``, one column per assignment, and
  the pending state of manual grading.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path, PurePosixPath

ROSTER_COLUMNS = ("student_id", "lms_id", "name", "email")
CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_FIXED = ["ID number", "Email address", "Full name"]


class ExportError(ValueError):
    pass


def read_roster(path: Path) -> dict:
    """{student_id: {"lms_id", "name", "email"}}; refuses a roster without the
    required columns or with a student listed twice, naming the line."""
    if not path.exists():
        raise ExportError(f"roster {path} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in ROSTER_COLUMNS[:2] if c not in header]
        if missing:
            raise ExportError(f"roster {path} lacks the column(s) {', '.join(missing)}; "
                              f"its header must be {','.join(ROSTER_COLUMNS)}")
        roster = {}
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            sid = row.get("student_id", "")
            if not sid:
                raise ExportError(f"roster {path}, line {line}: no student_id")
            if sid in roster:
                raise ExportError(f"roster {path}, line {line}: student_id {sid!r} appears twice")
            if not row.get("lms_id"):
                raise ExportError(f"roster {path}, line {line}: no lms_id for {sid!r}")
            roster[sid] = {"lms_id": row["lms_id"], "name": row.get("name", ""), "email": row.get("email", "")}
    return roster


def gradebook_scores(grading: Path) -> tuple[list, dict, dict]:
    """(assignments in course order, {assignment: max score},
    {(student, assignment): (score, pending manual cells)}) from nbgrader's
    grades CSV written by ``make grade``."""
    path = grading / "grades.csv"
    if not path.exists():
        raise ExportError(f"{path} does not exist: run `make grade` first (OUT= the same folder)")
    scores, maxima = {}, {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            a, s = row["assignment"], row["student_id"]
            maxima[a] = float(row["max_score"])
            status = row.get("status", "final")  # make grade's column: "no submission" where there is none
            scores[(s, a)] = (None if status == "no submission" else float(row["score"]), status)
    from grader import assignments

    submitted = {a for (_, a), (score, _) in scores.items() if score is not None}
    order = [a for a in assignments() if a in submitted]  # assignments nobody handed in get no column
    return order, maxima, scores


def export(grading: Path, lms: str, roster_path: Path, dest: Path | None = None) -> tuple[Path, list]:
    """Write the LMS file; return (its path, the problems found)."""
    if lms not in ("canvas", "moodle", "csv"):
        raise ExportError(f"unknown LMS {lms!r}: choose canvas, moodle or csv")
    order, maxima, scores = gradebook_scores(grading)
    roster = read_roster(roster_path)
    graded_students = sorted({s for s, _ in scores if any(scores[(s, a)][0] is not None for a in order
                                                          if (s, a) in scores)})
    problems = [f"{s} has grades but is not in the roster {roster_path.name}: not exported"
                for s in graded_students if s not in roster]
    problems += [f"{s} ({roster[s]['lms_id']}) is in the roster but has no submission: exported with empty cells"
                 for s in roster if s not in graded_students]
    pending = sorted({s for (s, a), (_, status) in scores.items() if status.startswith("pending") and s in roster})
    problems += [f"{s} has manual grading still pending: the exported score is not final" for s in pending]

    def cell(s, a):
        score = scores.get((s, a), (None, ""))[0]
        return "" if score is None else f"{score:g}"

    dest = dest or grading / f"grades_{lms}.csv"
    with open(dest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if lms == "canvas":
            writer.writerow(CANVAS_FIXED + order)
            writer.writerow(["Points Possible", "", "", "", ""] + [f"{maxima[a]:g}" for a in order])
            for s, r in roster.items():
                writer.writerow([r["name"] or s, r["lms_id"], s, r["email"], ""] + [cell(s, a) for a in order])
        elif lms == "moodle":
            writer.writerow(MOODLE_FIXED + order)
            for s, r in roster.items():
                writer.writerow([r["lms_id"], r["email"], r["name"]] + [cell(s, a) for a in order])
        else:
            writer.writerow(list(ROSTER_COLUMNS) + order + ["status"])
            for s, r in roster.items():
                states = [f"{a}: {scores[(s, a)][1]}" for a in order
                          if (s, a) in scores and scores[(s, a)][1] != "final"]
                writer.writerow([s, r["lms_id"], r["name"], r["email"]] + [cell(s, a) for a in order]
                                + ["; ".join(states) or ("final" if s in graded_students else "no submission")])
    return dest, problems


def _run(label: str, work) -> int:
    """Run one command: print each problem and what was written; a clear
    error and exit status 2 for bad input."""
    try:
        paths, problems = work()
    except ExportError as err:
        print(f"{label}: {err}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"  ! {problem}")
    for path in paths:
        print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Export the course gradebook for an LMS.")
    parser.add_argument("--lms", required=True, choices=("canvas", "moodle", "csv"))
    parser.add_argument("--roster", required=True, type=Path, help="CSV: student_id,lms_id,name,email")
    parser.add_argument("--out", type=Path, default=Path("build/grading"), help="the folder `make grade` wrote")
    args = parser.parse_args(argv)

    def work():
        path, problems = export(args.out, args.lms, args.roster)
        return [path], problems

    return _run("export", work)


# ------------------------------------------------------------ feedback bundle
def _original_names(grading: Path) -> dict:
    """{(student, assignment): the file's name in the LMS zip it came from},
    read back from ``collected.json`` (written by ``make grade`` as it reads
    the zip), or from nbgrader's zip_collect folders of older batches; empty
    for folder batches."""
    import json
    import re

    from grader.grade import DEFAULT_NAME_PATTERN

    found = {}
    try:
        for key, origin in json.loads((grading / "collected.json").read_text()).items():
            student, _, assignment = key.partition("/")
            found[(student, assignment)] = PurePosixPath(origin["entry"].replace("\\", "/")).name
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        pass
    for path in sorted((grading / "downloaded").glob("*/extracted/**/*.ipynb")):
        assignment = path.relative_to(grading / "downloaded").parts[0]
        match = re.match(DEFAULT_NAME_PATTERN, "/" + path.name)
        if match:
            found[(match.group("student_id"), assignment)] = path.name
    return found


def _slug(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum()) or "student"


def feedback_name(lms: str, student: str, assignment: str, original: str | None, person: dict | None) -> str:
    """The name a feedback file gets in the bundle, so the LMS's bulk upload
    matches it to the student: the submission's own LMS file name (its
    ids first) when the batch came from an LMS zip, else built from the roster
    the way the LMS names its downloads (Canvas: ``name_userid_...``; Moodle:
    ``Full Name_id_assignsubmission_file_...``)."""
    if original:
        return original[:-len(".ipynb")] + "_feedback.html" if original.endswith(".ipynb") else original + ".html"
    if person is None:
        return f"{student}_{assignment}_feedback.html"
    if lms == "canvas":
        return f"{_slug(person['name'] or student)}_{person['lms_id']}_{assignment}_feedback.html"
    return f"{person['name'] or student}_{person['lms_id']}_assignsubmission_file_{assignment}_feedback.html"


def feedback_bundle(grading: Path, lms: str, roster_path: Path | None = None) -> tuple[list, list]:
    """One zip per assignment, ``feedback_<assignment>_<lms>.zip``, holding each
    student's feedback HTML under the name the LMS's bulk feedback upload
    expects. Returns (zip paths, problems)."""
    import zipfile

    if lms not in ("canvas", "moodle"):
        raise ExportError(f"unknown LMS {lms!r}: choose canvas or moodle")
    feedback = grading / "feedback"
    if not feedback.exists():
        raise ExportError(f"{feedback} does not exist: run `make grade` first (OUT= the same folder)")
    roster = read_roster(roster_path) if roster_path else {}
    originals = _original_names(grading)
    bundles, problems = {}, []
    for html in sorted(feedback.glob("*/*/*.html")):
        student, assignment = html.parts[-3], html.parts[-2]
        if any(p.is_symlink() for p in (html, html.parent, html.parent.parent)) or not html.is_file():
            problems.append(f"{student}/{assignment}: {html.name} is not a regular file the grader wrote; left out")
            continue
        original = originals.get((student, assignment))
        person = roster.get(student)
        if original is None and person is None:
            problems.append(f"{student}/{assignment}: neither an LMS file name nor a roster entry; "
                            f"named {student}_{assignment}_feedback.html, which the LMS may not match")
        bundles.setdefault(assignment, []).append((html, feedback_name(lms, student, assignment, original, person)))
    paths = []
    for assignment, files in sorted(bundles.items()):
        path = grading / f"feedback_{assignment}_{lms}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for html, name in files:
                zf.write(html, name)
        paths.append(path)
    return paths, problems


def bundle_main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Zip each student's feedback for the LMS's bulk upload.")
    parser.add_argument("--lms", required=True, choices=("canvas", "moodle"))
    parser.add_argument("--roster", type=Path, default=None, help="CSV: student_id,lms_id,name,email (optional)")
    parser.add_argument("--out", type=Path, default=Path("build/grading"), help="the folder `make grade` wrote")
    args = parser.parse_args(argv)
    return _run("feedback-bundle", lambda: feedback_bundle(args.out, args.lms, args.roster))

if __name__ == "__main__":
    if sys.argv[1:2] == ["bundle"]:
        sys.exit(bundle_main(sys.argv[2:]))
    sys.exit(main())
