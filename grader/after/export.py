"""``make export LMS=canvas|moodle|csv ROSTER=roster.csv [PERCENT=1]``: the
course gradebook as files the LMS imports.

The roster maps the ids used in the submissions (``student_id``: a folder
name, a Canvas user id from a Canvas download, ``participant-<n>`` from a
Moodle one) to the LMS's own user ids. It is a CSV with a header row and the
columns ``student_id, lms_id, name, email`` (``name`` and ``email`` may be
empty). Scores are nbgrader's ``score`` (after any late penalty), manual marks
included. Nothing is dropped silently: a graded student missing from the
roster, and a roster entry with no submission, are both reported.

Formats (each follows the LMS's importer, cited in :func:`export`):

- ``canvas``: ``grades_canvas_<assignment>.csv``, Canvas's gradebook import:
  ``Student, ID, SIS User ID, SIS Login ID, Section``, the assignment's
  column and a ``Points Possible`` row. ``ID`` is the roster's ``lms_id``
  (Canvas matches students by it first). Canvas matches the column to an
  existing assignment by an exact title (or a trailing `` (id)``) and
  otherwise asks whether to create one.
- ``moodle``: ``grades_moodle_<assignment>.csv`` for "Import grades from
  CSV": ``Moodle user id, Email address, Full name`` and the assignment's
  column; at import, map from *Moodle user id* to *userid* (or from *Email
  address* to *useremail*) and the column to its grade item.
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
# Moodle maps a column of the user's choice to userid, username, useridnumber or useremail
# (grade/import/csv/classes/load_data.php); the roster's lms_id is the Moodle user id, so say so
MOODLE_FIXED = ["Moodle user id", "Email address", "Full name"]


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


def canvas_columns(path: Path, assignments: list) -> dict:
    """{assignment: the header of its column in a Canvas gradebook export}.

    Canvas matches an import column to an assignment by a trailing `` (id)``
    first, then by the exact title (``lib/gradebook_importer.rb``,
    ``Assignment.title_and_id``); an export writes ``Title (id)``. A Canvas
    assignment matches ours when its title is our name, compared without case
    and punctuation (``01_elbo`` = ``01 ELBO``); none or two is an error, so no
    column can ever create a new assignment by accident."""
    import re

    if not path.is_file():
        raise ExportError(f"Canvas gradebook export {path} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), [])
    titled = []
    for column in header:
        match = re.fullmatch(r"(.*)\s\(([0-9]+)\)", column)
        if match:
            titled.append((match.group(1), column))

    def key(text):
        return "".join(ch for ch in text.lower() if ch.isalnum())

    found = {}
    for a in assignments:
        hits = [column for title, column in titled if key(title) == key(a)]
        if len(hits) != 1:
            raise ExportError(f"{path.name}: {len(hits)} Canvas assignment columns are titled like {a!r}"
                              + (f" ({', '.join(hits)})" if hits else "") +
                              "; name exactly one Canvas assignment after it")
        found[a] = hits[0]
    return found


def canvas_roster(grading: Path) -> dict:
    """The roster a Canvas download carries itself: each student's Canvas user
    id and name slug (anonymous submissions carry no user id)."""
    from grader.gradebook import origins

    return {student: {"lms_id": o["user_id"], "name": o.get("slug", ""), "email": ""}
            for (student, _), o in origins(grading).items() if o.get("lms") == "canvas" and o.get("user_id")}


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


def export(grading: Path, lms: str, roster_path: Path, dest: Path | None = None,
           percent: bool = False, canvas_gradebook: Path | None = None) -> tuple[list, list]:
    """Write the LMS file(s); return (their paths, the problems found).

    Canvas and Moodle get one file per assignment holding only the students who
    handed it in: an empty cell is not "no change" to either LMS (Canvas clears
    the score it has, ``lib/gradebook_importer.rb``; Moodle clears the grade,
    ``grade/import/csv/classes/load_data.php``), so a manual 0 or an excused
    mark entered there must never meet one. ``percent`` writes 100 x score /
    maximum, for a Moodle grade item left at its default maximum of 100
    (Moodle refuses the whole import for a grade above 100 and clamps one above
    the item's maximum)."""
    if lms not in ("canvas", "moodle", "csv"):
        raise ExportError(f"unknown LMS {lms!r}: choose canvas, moodle or csv")
    order, maxima, scores = gradebook_scores(grading)
    roster = read_roster(roster_path) if roster_path else canvas_roster(grading)
    if not roster:
        raise ExportError("no roster: give ROSTER=roster.csv (student_id,lms_id,name,email); only a batch graded "
                          "from Canvas's own download carries the Canvas user ids itself")
    graded_students = sorted({s for s, _ in scores if any(scores[(s, a)][0] is not None for a in order
                                                          if (s, a) in scores)})
    problems = [f"{s} has grades but is not in the roster {roster_path.name if roster_path else ''}: "
                "not exported"
                for s in graded_students if s not in roster]
    left = "left out of the file, so the LMS keeps what it has" if lms != "csv" else "exported with empty cells"
    problems += [f"{s} ({roster[s]['lms_id']}) is in the roster but has no submission: {left}"
                 for s in roster if s not in graded_students]
    pending = sorted({s for (s, a), (_, status) in scores.items() if status.startswith("pending") and s in roster})
    problems += [f"{s} has manual grading still pending: the exported score is not final" for s in pending]

    def value(s, a):
        score = scores.get((s, a), (None, ""))[0]
        if score is None:
            return ""
        if score > maxima[a] + 1e-9:
            problems.append(f"{s}/{a}: score {score:g} is above the maximum {maxima[a]:g}")
        return f"{100 * score / maxima[a]:.2f}" if percent and maxima[a] else f"{score:g}"

    paths = []
    columns = canvas_columns(canvas_gradebook, order) if lms == "canvas" and canvas_gradebook else {a: a for a in order}
    if lms == "canvas" and not canvas_gradebook:
        problems.append("Canvas matches each column by its exact title: name the Canvas assignments "
                        f"{', '.join(order)}, or give CANVAS_GRADEBOOK= a Canvas gradebook export to use their ids")
    if lms == "csv":
        dest = dest or grading / "grades_csv.csv"
        with open(dest, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(list(ROSTER_COLUMNS) + order + ["status"])
            for s, r in roster.items():
                states = [f"{a}: {scores[(s, a)][1]}" for a in order
                          if (s, a) in scores and scores[(s, a)][1] != "final"]
                writer.writerow([s, r["lms_id"], r["name"], r["email"]] + [value(s, a) for a in order]
                                + ["; ".join(states) or ("final" if s in graded_students else "no submission")])
        return [dest], problems
    for a in order:
        handed_in = [s for s in roster if scores.get((s, a), (None,))[0] is not None]
        path = (dest.with_name(f"{dest.stem}_{a}{dest.suffix}") if dest else grading / f"grades_{lms}_{a}.csv")
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            if lms == "canvas":
                writer.writerow(CANVAS_FIXED + [columns[a]])
                writer.writerow(["Points Possible", "", "", "", ""] + ["100" if percent else f"{maxima[a]:g}"])
                for s in handed_in:
                    r = roster[s]
                    writer.writerow([r["name"] or s, r["lms_id"], s, r["email"], "", value(s, a)])
            else:
                writer.writerow(MOODLE_FIXED + [a])
                for s in handed_in:
                    r = roster[s]
                    writer.writerow([r["lms_id"], r["email"], r["name"], value(s, a)])
        paths.append(path)
    return paths, problems


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
    parser.add_argument("--roster", type=Path, default=None,
                        help="CSV: student_id,lms_id,name,email (not needed for a batch from Canvas's download)")
    parser.add_argument("--canvas-gradebook", type=Path, default=None,
                        help="a Canvas gradebook export: columns are written as its 'Title (id)' headers")
    parser.add_argument("--percent", action="store_true",
                        help="scores as a percentage of each assignment's maximum (a Moodle item out of 100)")
    parser.add_argument("--out", type=Path, default=Path("build/grading"), help="the folder `make grade` wrote")
    args = parser.parse_args(argv)

    def work():
        return export(args.out, args.lms, args.roster, percent=args.percent, canvas_gradebook=args.canvas_gradebook)

    return _run("export", work)


# ------------------------------------------------------------ feedback bundle
def _origins(grading: Path) -> dict:
    """{(student, assignment): the LMS ids of the file it came from}, as
    ``make grade`` recorded them in ``collected.json`` (grader/lms.py)."""
    from grader.gradebook import origins

    return origins(grading)


def feedback_name(lms: str, assignment: str, origin: dict | None) -> tuple[str | None, str]:
    """(the bundle name the LMS's bulk feedback upload files under this
    student, '') or (None, why the LMS would misread any name we could give)."""
    from grader import lms as rules

    if lms == "canvas":
        if origin and origin.get("lms") == "canvas":
            return rules.canvas_feedback_name(origin), ""
        return None, ("Canvas files feedback by user id and attachment id, which only Canvas's own download "
                      "carries: grade the Canvas download zip (make grade SUBMISSIONS=submissions.zip)")
    if origin and origin.get("lms") == "moodle":
        return rules.moodle_feedback_name(origin, assignment), ""
    return None, ("Moodle files feedback by the assignment's participant number, which only Moodle's own "
                  "download carries: grade the Moodle download zip")


def feedback_bundle(grading: Path, lms: str, roster_path: Path | None = None) -> tuple[list, list]:
    """One zip per assignment, ``feedback_<assignment>_<lms>.zip``, holding each
    student's feedback HTML under the name the LMS's bulk feedback upload
    matches to that student (Canvas: "Upload Submission Comments"; Moodle:
    "Upload multiple feedback files in a zip"). A student whose submission did
    not come from that LMS's download is left out and reported: any name we
    built would be misread. ``roster_path`` is not needed (kept for the
    command line). Returns (zip paths, problems)."""
    import zipfile

    if lms not in ("canvas", "moodle"):
        raise ExportError(f"unknown LMS {lms!r}: choose canvas or moodle")
    feedback = grading / "feedback"
    if not feedback.exists():
        raise ExportError(f"{feedback} does not exist: run `make grade` first (OUT= the same folder)")
    origins = _origins(grading)
    bundles, problems = {}, []
    for html in sorted(feedback.glob("*/*/*.html")):
        student, assignment = html.parts[-3], html.parts[-2]
        if any(p.is_symlink() for p in (html, html.parent, html.parent.parent)) or not html.is_file():
            problems.append(f"{student}/{assignment}: {html.name} is not a regular file the grader wrote; left out")
            continue
        name, why = feedback_name(lms, assignment, origins.get((student, assignment)))
        if name is None:
            problems.append(f"{student}/{assignment}: left out of the {lms} bundle. {why}")
            continue
        bundles.setdefault(assignment, []).append((html, name))
    paths = []
    for assignment, files in sorted(bundles.items()):
        path = grading / f"feedback_{assignment}_{lms}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for html, name in files:
                zf.write(html, name)
        paths.append(path)
    if not paths:
        problems.append(f"no feedback could be named for {lms}: nothing was bundled")
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
