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
from pathlib import Path

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
            status = row.get("status", "final")
            submitted = bool(row.get("timestamp"))
            scores[(s, a)] = (float(row["score"]) if submitted else None, status if submitted else "no submission")
    from grader import assignments

    order = [a for a in assignments() if a in maxima]
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Export the course gradebook for an LMS.")
    parser.add_argument("--lms", required=True, choices=("canvas", "moodle", "csv"))
    parser.add_argument("--roster", required=True, type=Path, help="CSV: student_id,lms_id,name,email")
    parser.add_argument("--out", type=Path, default=Path("build/grading"), help="the folder `make grade` wrote")
    args = parser.parse_args(argv)
    try:
        path, problems = export(args.out, args.lms, args.roster)
    except ExportError as err:
        print(f"export: {err}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"  ! {problem}")
    print(f"wrote {path} ({args.lms}); {len(problems)} problem(s) listed above" if problems else f"wrote {path} ({args.lms})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
