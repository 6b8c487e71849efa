"""Canvas's and Moodle's own file names, read and written by their rules.

Both LMSs are open source; each rule below names the file it follows, and
``tests/lms_oracles.py`` re-implements the LMS side so the tests can check
this module against it.

**Canvas** ("Download Submissions", ``lib/content_zipper.rb``) names each file
``<name slug>[_LATE]_<user id>_<attachment id>_<file name>``, or, for an
anonymously graded assignment, ``[LATE_]anon_<anonymous id>_<attachment
id>_<file name>``. The slug keeps letters of every script and drops the rest,
so two students can share one; the ids cannot. A file the student uploaded
again is renamed ``01_elbo-1.ipynb`` (``app/models/attachment.rb``). The
zip's entry times are when the zip was built, so the only lateness Canvas
writes into the download is the ``LATE`` token. Canvas's bulk "Upload
Submission Comments" reads a file name the same way
(``app/models/abstract_assignment.rb``, ``infer_comment_context_from_filename``):
split on ``_``, drop ``LATE``, the first two all-digit parts are the user id
and the attachment id, and the file is skipped unless that attachment is in
the student's current submission.

**Moodle** ("Download all submissions", ``mod/assign/classes/downloader.php``)
writes ``<Full Name>_<participant number>_assignsubmission_file/<file>``
(Moodle 4.1+; 3.1 to 4.0 add a trailing ``_``; "download submissions in
folders" off gives the flat ``..._assignsubmission_file_<file>``). The number
is the participant number of this assignment (``get_uniqueid_for_user``),
never the user id, and Moodle's feedback-zip import reads it back from the
same place (``mod/assign/feedback/file/importziplib.php``).

A batch from a Canvas download is graded under Canvas user ids (``anon_<id>``
when anonymous), from a Moodle download under ``participant-<n>``; names
that neither LMS writes fall back to ``grade.DEFAULT_NAME_PATTERN``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

# 01_elbo.ipynb, and Canvas's renamed re-uploads 01_elbo-1.ipynb / 01_elbo-<uuid>.ipynb
NOTEBOOK = re.compile(r"(?P<assignment>\d\d_[A-Za-z0-9_]+?)(?:-(?:\d+|[0-9a-f]{8}-[0-9a-f-]{27}))?\.ipynb",
                      re.IGNORECASE)
MOODLE_FOLDER = re.compile(r"(?P<name>.*)_(?P<participant>\d+)_assignsubmission_file_?")
MOODLE_FLAT = re.compile(r"(?P<name>.*?)_(?P<participant>\d+)_assignsubmission_file_(?P<file>.+)")


@dataclass
class Origin:
    """Where one submitted notebook came from, in the LMS's own terms."""
    lms: str                      # "canvas", "moodle" or "pattern"
    student: str                  # the id it is graded under
    assignment: str
    entry: str                    # the zip entry's full name
    file: str                     # the file's own name (Canvas: its display name)
    ids: dict = field(default_factory=dict)  # canvas: user_id/anonymous_id, attachment_id, slug, late; moodle: participant, name


def canvas(name: str) -> Origin | None:
    """Read a Canvas download name (the entry's last path part), or None."""
    base = PurePosixPath(name.replace("\\", "/")).name
    parts = base.split("_")
    late = "LATE" in parts
    rest = [p for p in parts if p != "LATE"]
    if len(rest) >= 4 and rest[0] == "anon":
        anonymous_id, attachment_id, display = rest[1], rest[2], "_".join(rest[3:])
        if not (anonymous_id.isalnum() and attachment_id.isdigit()):
            return None
        match = NOTEBOOK.fullmatch(display)
        if not match:
            return None
        return Origin("canvas", f"anon_{anonymous_id}", match["assignment"], name, display,
                      {"anonymous_id": anonymous_id, "attachment_id": attachment_id, "late": late, "slug": ""})
    digits = [i for i, p in enumerate(rest) if p.isascii() and p.isdigit()]
    if len(digits) < 2 or digits[1] != digits[0] + 1 or digits[0] == 0:
        return None  # Canvas writes <slug>_<user id>_<attachment id>_<file>, the ids side by side
    user_id, attachment_id = rest[digits[0]], rest[digits[1]]
    display = "_".join(rest[digits[1] + 1:])
    match = NOTEBOOK.fullmatch(display)
    if not match:
        return None
    return Origin("canvas", user_id, match["assignment"], name, display,
                  {"user_id": user_id, "attachment_id": attachment_id, "late": late,
                   "slug": "_".join(rest[:digits[0]])})


def moodle(name: str) -> Origin | None:
    """Read a Moodle download path (folder or flat form), or None."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if len(parts) >= 2:
        folder = MOODLE_FOLDER.fullmatch(parts[0])
        if folder:
            match = NOTEBOOK.fullmatch(parts[-1])
            if not match:
                return None
            return Origin("moodle", f"participant-{folder['participant']}", match["assignment"], name, parts[-1],
                          {"participant": folder["participant"], "name": folder["name"]})
    if len(parts) == 1:
        flat = MOODLE_FLAT.fullmatch(parts[0])
        if flat:
            match = NOTEBOOK.fullmatch(flat["file"])
            if not match:
                return None
            return Origin("moodle", f"participant-{flat['participant']}", match["assignment"], name, flat["file"],
                          {"participant": flat["participant"], "name": flat["name"]})
    return None


def by_pattern(name: str, regexp: re.Pattern) -> Origin | None:
    match = regexp.match("/" + name.replace("\\", "/").lstrip("/"))
    if not match:
        return None
    file_id = match.group("file_id")
    return Origin("pattern", match.group("student_id"), PurePosixPath(file_id).stem, name, file_id)


def read_name(name: str, regexp: re.Pattern, lms: str = "auto") -> Origin | None:
    """The origin of one zip entry: Moodle's and Canvas's own layouts first
    (``lms="auto"``), then the name pattern; ``lms="pattern"`` uses only the
    pattern (``make grade NAME_PATTERN=...``)."""
    if lms in ("auto", "moodle"):
        found = moodle(name)
        if found or lms == "moodle":
            return found
    if lms in ("auto", "canvas"):
        found = canvas(name)
        if found or lms == "canvas":
            return found
    return by_pattern(name, regexp)


def newest_first_key(origin: Origin, info) -> tuple:
    """How two different notebooks of one student are ordered, newest last:
    Canvas by attachment id (Canvas numbers attachments as they are uploaded),
    Moodle by the file's own time, which its zip writer stores
    (``files/classes/local/archive_writer/zip_writer.php``), otherwise by name."""
    if origin.lms == "canvas":
        return (int(origin.ids["attachment_id"]), origin.entry)
    if origin.lms == "moodle":
        return (tuple(info.date_time), origin.entry)
    return (origin.entry,)


def rule(lms: str) -> str:
    return {"canvas": "the newest upload (highest Canvas attachment id)",
            "moodle": "the newest file (its time in the Moodle zip)"}.get(lms, "the one whose name sorts last")


# ---------------------------------------------------------- feedback names
def canvas_feedback_name(origin: dict) -> str:
    """A feedback file Canvas's comment upload attaches to this submission:
    the two ids first, as its download wrote them."""
    if origin.get("anonymous_id"):
        return f"anon_{origin['anonymous_id']}_{origin['attachment_id']}_feedback.html"
    slug = origin.get("slug") or "student"
    return f"{slug}_{origin['user_id']}_{origin['attachment_id']}_feedback.html"


def moodle_feedback_name(origin: dict, assignment: str) -> str:
    """The folder form Moodle's feedback-zip import reads: the participant
    number in the second ``_`` field, the submission plugin in the next two."""
    name = (origin.get("name") or "Participant").replace("_", " ")
    return f"{name}_{origin['participant']}_assignsubmission_file/{assignment}_feedback.html"
