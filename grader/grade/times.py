"""When each submission was handed in, from a source that knows.

A late penalty is only as right as the time it is computed from, and an LMS
zip does not carry submission times: Canvas stamps every entry with the
moment the zip was built (``lib/content_zipper.rb``), Moodle with the stored
file's own modification time (``files/classes/local/archive_writer/
zip_writer.php``), which is not the submission time either. So ``make grade``
never reads a time from a zip entry. It takes, for each submission, the
first of:

1. ``make grade TIMES=file``, one of
   - **Canvas**: the JSON list its submissions API returns
     (``GET /api/v1/courses/:course/assignments/:assignment/submissions``),
     saved to a file: ``user_id`` and ``submitted_at`` (ISO 8601) of each;
     a batch from a Canvas download is graded under those user ids;
   - **Moodle**: the assignment's grading worksheet ("Download grading
     worksheet"), whose ``Identifier`` is ``Participant <n>`` and whose
     ``Last modified (submission)`` is written in the downloading user's time
     zone (``lms_timezone`` in the course file), e.g. ``Monday, 6 March 2023,
     2:05 PM`` (``mod/assign/gradingtable.php``, ``userdate``);
   - **any other**: a CSV with the columns ``student_id, submitted_at`` (ISO
     8601 with a zone) and, for a batch of several assignments, ``assignment``;
2. the ``timestamp.txt`` beside the notebook, as ``nbgrader collect`` and
   nbgrader's exchange write it.

With neither, the submission has no known time: it gets no penalty, and when
a due date is set ``make grade`` names it. Canvas's ``LATE`` mark in a file
name says Canvas found the work late but not by how much: it is reported,
and the penalty waits for a time. Each time's source is in the class report.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
USERDATE = re.compile(r"\s*(?:[A-Za-z]+,\s*)?(\d{1,2}) ([A-Za-z]+) (\d{4}), (\d{1,2}):(\d{2}) ?([AaPp])\.?[Mm]\.?\s*")


class TimesError(ValueError):
    pass


def _iso(text: str, where: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TimesError(f"{where}: {text!r} is not an ISO 8601 time (e.g. 2026-10-05T23:10:00Z)") from None
    if when.tzinfo is None:
        raise TimesError(f"{where}: {text!r} has no time zone; write it with one (…Z or …+02:00)")
    return when


def moodle_userdate(text: str, timezone: str, where: str) -> dt.datetime | None:
    """Moodle's ``userdate`` text (``strftimedatetime``: ``%A, %d %B %Y, %I:%M
    %p`` with leading zeros dropped) read back in ``timezone``; None for ``-``."""
    from zoneinfo import ZoneInfo

    if text is None or text.strip() in ("", "-"):
        return None
    match = USERDATE.fullmatch(text)
    if not match or match[2] not in MONTHS:
        raise TimesError(f"{where}: {text!r} is not a Moodle date like 'Monday, 6 March 2023, 2:05 PM'")
    day, month, year, hour, minute, half = match.groups()
    hour = int(hour) % 12 + (12 if half in "Pp" else 0)
    return dt.datetime(int(year), MONTHS.index(month) + 1, int(day), hour, int(minute), tzinfo=ZoneInfo(timezone))


def load(path: Path, names: list, timezone: str = "UTC") -> dict:
    """{(student, assignment): (aware datetime, source)} from a TIMES file."""
    path = Path(path)
    if not path.is_file():
        raise TimesError(f"TIMES file {path} does not exist")
    text = path.read_text(encoding="utf-8-sig")
    if text.lstrip().startswith(("[", "{")):
        return _canvas_api(text, path, names)
    rows = list(csv.DictReader(io.StringIO(text)))
    header = set(rows[0]) if rows else set()
    if {"Identifier", "Last modified (submission)"} <= header:
        return _moodle_worksheet(rows, path, names, timezone)
    if {"student_id", "submitted_at"} <= header:
        return _plain_csv(rows, path, names)
    raise TimesError(f"{path}: not a Canvas submissions JSON, a Moodle grading worksheet, or a CSV with the "
                     f"columns student_id,submitted_at[,assignment]")


def _one_assignment(names: list, path: Path, kind: str) -> str:
    if len(names) != 1:
        raise TimesError(f"{path}: a {kind} holds one assignment's times; grade one assignment with it "
                         f"(ASSIGNMENT=...), not {len(names)}")
    return names[0]


def _canvas_api(text: str, path: Path, names: list) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise TimesError(f"{path}: not valid JSON ({err})") from None
    if isinstance(data, dict):
        data = data.get("submissions", [])
    assignment = _one_assignment(names, path, "Canvas submissions file")
    found = {}
    for number, item in enumerate(data, 1):
        if not isinstance(item, dict) or "user_id" not in item:
            raise TimesError(f"{path}: item {number} has no user_id (is this Canvas's submissions list?)")
        if item.get("submitted_at"):
            found[(str(item["user_id"]), assignment)] = (_iso(str(item["submitted_at"]), f"{path}, item {number}"),
                                                         "Canvas submissions API (TIMES)")
        if item.get("anonymous_id") and item.get("submitted_at"):
            found[(f"anon_{item['anonymous_id']}", assignment)] = found[(str(item["user_id"]), assignment)]
    return found


def _moodle_worksheet(rows: list, path: Path, names: list, timezone: str) -> dict:
    assignment = _one_assignment(names, path, "Moodle grading worksheet")
    found = {}
    for line, row in enumerate(rows, 2):
        ident = (row.get("Identifier") or "").strip()
        number = ident[len("Participant "):] if ident.startswith("Participant ") else ""
        if not number.isdigit():
            raise TimesError(f"{path}, line {line}: Identifier {ident!r} is not 'Participant <number>'")
        when = moodle_userdate(row.get("Last modified (submission)"), timezone, f"{path}, line {line}")
        if when is not None:
            found[(f"participant-{number}", assignment)] = (when, f"Moodle grading worksheet (TIMES, {timezone})")
    return found


def _plain_csv(rows: list, path: Path, names: list) -> dict:
    found = {}
    for line, row in enumerate(rows, 2):
        assignment = (row.get("assignment") or "").strip() or _one_assignment(names, path, "CSV without an "
                                                                                "assignment column")
        student = (row.get("student_id") or "").strip()
        if not student:
            raise TimesError(f"{path}, line {line}: no student_id")
        if (row.get("submitted_at") or "").strip():
            found[(student, assignment)] = (_iso(row["submitted_at"], f"{path}, line {line}"), "TIMES file")
    return found
