"""Executable oracles of Canvas' and Moodle's own file-name / import rules.

Small, stdlib-only Python re-implementations (written from reading the LMS
sources, no code copied) of the rules a grader must agree with when it reads
an LMS "download all submissions" zip, writes a feedback zip back, or writes a
grade CSV for the LMS to import.  Each function names the source file and
function it follows; uncertainties are marked "UNCERTAIN".  Tests of our grader
can build names/files with these oracles and check the grader against them.

Sources read: instructure/canvas-lms (lib/content_zipper.rb,
app/models/abstract_assignment.rb, app/models/attachment.rb,
lib/gradebook_importer.rb, ui/features/gradebook_uploads/jquery/*.js) and
moodle/moodle 4.1 (mod/assign/classes/downloader.php, mod/assign/locallib.php,
mod/assign/feedback/file/importziplib.php, mod/assign/gradingtable.php,
mod/assign/feedback/offline/*, grade/import/csv/classes/load_data.php,
grade/import/lib.php, lib/moodlelib.php, files/classes/local/archive_writer/
zip_writer.php, lib/zipstream/src/File.php, lib/tablelib.php).
See the FACTS section at the end of the file for a one-line summary per rule.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import re
import unicodedata
import uuid
from decimal import ROUND_HALF_UP, Decimal

__all__ = [
    # Canvas
    "canvas_sanitize_user_name", "canvas_slug", "canvas_sanitize_attachment_filename",
    "canvas_download_name", "canvas_make_unique_filename", "canvas_zip_entry_names",
    "canvas_resubmission_display_name", "canvas_feedback_match",
    "canvas_feedback_comment_display_name", "canvas_title_and_id", "canvas_import",
    "canvas_zip_entry_time",
    # Moodle
    "moodle_fullname", "moodle_clean_filename", "moodle_clean_path",
    "moodle_zipstream_filter", "moodle_download_prefix", "moodle_team_download_prefix",
    "moodle_download_path", "moodle_zip_entry_time", "moodle_feedback_import_parse",
    "moodle_feedback_import_match", "moodle_feedback_is_modified", "moodle_import",
    "moodle_format_time", "moodle_worksheet_status", "moodle_worksheet_header",
    "moodle_worksheet_row", "moodle_worksheet_csv", "moodle_userdate",
    "parse_moodle_userdate", "moodle_worksheet_parse", "MOODLE_WORKSHEET_DATE_FORMAT",
]


# =============================================================================
# helpers emulating Ruby / PHP primitives
# =============================================================================

def _ruby_split(s: str, sep: str) -> list[str]:
    """Ruby String#split(sep) with a string separator: trailing empty fields
    are dropped (leading/middle ones are kept); "" splits to []."""
    parts = s.split(sep)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _is_ruby_word_char(ch: str) -> bool:
    """Onigmo [[:word:]] on a UTF-8 string: Letter | Mark | Decimal_Number |
    Connector_Punctuation.  UNCERTAIN: Ruby's own docs say "Number" (all N*),
    Onigmo's doc/RE says Decimal_Number; they differ only for chars like '²'
    or 'Ⅻ'.  We follow Onigmo (Nd)."""
    cat = unicodedata.category(ch)
    return cat[0] in "LM" or cat in ("Nd", "Pc")


def _php_is_numeric(s: str) -> bool:
    """PHP 8 is_numeric() on a string: optional surrounding whitespace, sign,
    decimal digits with optional fraction and exponent (no hex, no '_')."""
    return re.fullmatch(r"[ \t\n\r\v\f]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
                        r"(?:[eE][+-]?[0-9]+)?[ \t\n\r\v\f]*", s) is not None


def _php_number(s: str):
    """`$x += 0` on a numeric string: int when it looks integral, else float."""
    s = s.strip()
    if re.fullmatch(r"[+-]?[0-9]+", s):
        return int(s)
    return float(s)


def _php_fputcsv_line(fields, delimiter: str = ",", enclosure: str = '"') -> str:
    """PHP fputcsv() with escape_char '' (what Box\\Spout passes on PHP>=7.4):
    a field is enclosed when it contains the delimiter, the enclosure, \\n, \\r,
    \\t or a space; enclosure chars inside are doubled; lines end with "\\n"."""
    out = []
    for f in fields:
        f = "" if f is None else str(f)
        if any(c in f for c in (delimiter, enclosure, "\n", "\r", "\t", " ")):
            f = enclosure + f.replace(enclosure, enclosure * 2) + enclosure
        out.append(f)
    return delimiter.join(out) + "\n"


def _tzinfo(tz):
    """Accept a tzinfo, an IANA name (needs the system tz database) or None=UTC."""
    if tz is None:
        return _dt.timezone.utc
    if isinstance(tz, _dt.tzinfo):
        return tz
    if tz in ("UTC", "Etc/UTC", "GMT"):
        return _dt.timezone.utc
    from zoneinfo import ZoneInfo  # stdlib (3.9+); needs tzdata on the host
    return ZoneInfo(tz)


def _dos_time(ts: float, tz) -> _dt.datetime:
    """What a DOS date/time field in a zip entry holds: wall-clock time in the
    writer's local zone, seconds rounded DOWN to even, years < 1980 clamped to
    1980-01-01 00:00:00 (ZipStream File::dosTime; rubyzip DOSTime likewise)."""
    local = _dt.datetime.fromtimestamp(ts, _tzinfo(tz)).replace(tzinfo=None)
    if local.year < 1980:
        return _dt.datetime(1980, 1, 1, 0, 0, 0)
    return local.replace(second=local.second - local.second % 2, microsecond=0)


# =============================================================================
# CANVAS
# =============================================================================

# --- 1. "Download Submissions" zip entry names --------------------------------

def canvas_sanitize_user_name(sortable_name: str) -> str:
    """Follows ContentZipper#sanitize_user_name (lib/content_zipper.rb) and
    AbstractAssignment#sanitize_user_name (app/models/abstract_assignment.rb):
    1. gsub(/_(\\d+)_/, '\\1')   -- "_123_" inside the name loses its underscores
       (so the name can't yield a spurious all-digit token; \\d is ASCII in Ruby)
    2. gsub(/^(\\d+)$/, '\\1')    -- a no-op as written
    3. (abstract_assignment.rb version only) drop every non-[[:word:]] char
    4. downcase (Unicode-aware in Ruby >= 2.4)
    We apply step 3 too: ContentZipper#get_filename strips the same characters
    from the whole joined prefix anyway, so the resulting zip names agree."""
    s = re.sub(r"_([0-9]+)_", r"\1", sortable_name)
    s = "".join(ch for ch in s if _is_ruby_word_char(ch))
    return s.lower()


def canvas_slug(sortable_name: str) -> str:
    """The user part of a Canvas download name: sortable name ("Last, First"),
    lowercased, with every char that is not a Unicode letter/mark/decimal
    digit/underscore removed.  Spaces and commas vanish, non-ASCII letters stay,
    underscores stay.  "Smith, John" -> "smithjohn"; "Núñez, José" ->
    "núñezjosé"; "O'Brien-Day, Ann" -> "obriendayann".
    (ContentZipper#get_user_name + #sanitize_user_name + #sanitize_file_name)"""
    return canvas_sanitize_user_name(sortable_name)


def canvas_sanitize_attachment_filename(display_name: str) -> str:
    """ContentZipper#sanitize_attachment_filename (lib/content_zipper.rb):
    each RUN of NUL / \\ : * ? " < > | is replaced by ONE '_'.  Everything
    else in the display name (spaces, case, unicode, dots) is kept."""
    return re.sub(r'[\x00/\\:*?"<>|]+', "_", display_name)


def canvas_download_name(sortable_name, user_id, attachment_id, display_name,
                         late=False, anonymous_id=None) -> str:
    """Name of one uploaded file inside Canvas' "Download Submissions" zip.

    Follows ContentZipper#add_submission / #get_filename / #add_upload_submission
    (lib/content_zipper.rb):
        prefix = [user_slug, ("LATE" if late), id].compact.join("_")
                 then every non-[[:word:]] char removed (sanitize_file_name)
        id     = submission.user_id, or "anon_<anonymous_id>" when the
                 assignment anonymizes students (then user_slug is nil, i.e.
                 omitted: "anon_x1Y2z_9_essay.pdf" / "LATE_anon_x1Y2z_9_...")
        entry  = "#{prefix}_#{attachment.id}_#{sanitize_attachment_filename(display_name)}"
    e.g. ("Smith, John", 42, 9001, "My Essay.pdf", late=True)
         -> "smithjohn_LATE_42_9001_My Essay.pdf"
    Duplicate entry names inside one zip get "-1", "-2"... via
    canvas_make_unique_filename (see canvas_zip_entry_names).
    Text entries are "<prefix>_text.html", URL entries "<prefix>_link.html"
    (#add_text_or_url).  Group assignments use the group name as sortable name.
    """
    users_name = None if anonymous_id is not None else canvas_sanitize_user_name(sortable_name)
    ident = f"anon_{anonymous_id}" if anonymous_id is not None else str(user_id)
    parts = [p for p in (users_name, "LATE" if late else None, ident) if p is not None]
    prefix = "".join(ch for ch in "_".join(parts) if _is_ruby_word_char(ch))
    return f"{prefix}_{attachment_id}_{canvas_sanitize_attachment_filename(display_name)}"


_CANVAS_EXT_RE = re.compile(r"(\.[A-Za-z][A-Za-z0-9]*)*(\.[A-Za-z0-9]*)$")


def _ruby_file_basename(path: str, suffix: str = "") -> str:
    base = path.rstrip("/").rsplit("/", 1)[-1] if path.rstrip("/") else path
    if suffix and base.endswith(suffix) and base != suffix:
        base = base[: -len(suffix)]
    return base


def canvas_make_unique_filename(filename: str, existing, attempts: int = 1) -> str:
    """Attachment.make_unique_filename (app/models/attachment.rb, current):
    - returned unchanged when not in `existing` (and attempts <= 1)
    - else "<dir>/<base>-<n><ext>" for n = 1, 2, ... 7; when n would reach 8
      the name becomes "<base>-<random uuid><ext>"
    - <ext> is the LEFTMOST match of /(\\.[A-Za-z][A-Za-z0-9]*)*(\\.[A-Za-z0-9]*)$/,
      so multi-part extensions stay together: "report.final.pdf" -> "report-1.final.pdf",
      "a.tar.gz" -> "a-1.tar.gz", "v1.2.pdf" -> "v1.2-1.pdf" ('.2' starts
      with a digit so it cannot be in the repeated group), no dot -> "name-1".
    (Older Canvas used File.extname, i.e. only the last extension.)"""
    existing = set(existing)
    if attempts <= 1 and filename not in existing:
        return filename
    addition = attempts or 1
    d = filename.rsplit("/", 1)[0] + "/" if "/" in filename.rstrip("/") else ""
    m = _CANVAS_EXT_RE.search(filename)
    extname = m.group(0) if m else ""
    basename = _ruby_file_basename(filename, extname)
    random_backup = f"{d}{basename}-{uuid.uuid4()}{extname}"
    if attempts >= 8:
        return random_backup
    while True:
        new_name = f"{d}{basename}-{addition}{extname}"
        if new_name not in existing:
            return new_name
        addition += 1
        if addition >= 8:
            return random_backup


def canvas_zip_entry_names(names):
    """Entry names as actually written to the zip, in order: ContentZipper
    #add_attachment_to_zip runs every name through make_unique_filename
    against the names already in this zip (@files_in_zip)."""
    seen, out = set(), []
    for n in names:
        u = canvas_make_unique_filename(n, seen)
        seen.add(u)
        out.append(u)
    return out


def canvas_resubmission_display_name(uploaded_name: str, active_names_in_folder) -> str:
    """Where "essay-1.pdf", "essay-2.pdf" come from: Attachment#handle_duplicates
    (app/models/attachment.rb) forces method :rename whenever the file's folder
    is a submissions folder (folder.for_submissions?), and renames with
    make_unique_filename against the display names of the OTHER ACTIVE files
    in that folder.  Student submission uploads land in the student's
    "Submissions" folder (one sub-folder per course -- UNCERTAIN: per-course
    sub-folder read from memory of User#submissions_folder, only the Group
    version was verified), so a re-upload of "essay.pdf" is shown (and zipped)
    as "essay-1.pdf", then "essay-2.pdf" ... up to "-7", then "essay-<uuid>.pdf"."""
    return canvas_make_unique_filename(uploaded_name, active_names_in_folder)


def canvas_zip_entry_time(zip_built_at: float, server_tz=None) -> _dt.datetime:
    """Time stamped on Canvas zip entries: ContentZipper writes every entry with
    zipfile.get_output_stream(name) without a time, and rubyzip's Entry then
    uses Zip::DOSTime.now -- i.e. the moment the zip was BUILT, in the server's
    local zone (Canvas servers normally run UTC), 2-second DOS resolution.
    It is NOT the submission time; lateness is only visible via the "LATE"
    token.  UNCERTAIN: whether a rubyzip version adds an extended-timestamp
    (UT) extra field; the DOS field is as described either way."""
    return _dos_time(zip_built_at, server_tz)


# --- 2. bulk "Upload Submission Comments" (feedback zip) ------------------------

def canvas_feedback_match(filename, submissions, anonymous_ids=None, group_names=()):
    """Which (user_id, attachment_id) a file in a re-uploaded feedback zip is
    attached to, or None when Canvas ignores it.

    Follows AbstractAssignment#infer_comment_context_from_filename
    (app/models/abstract_assignment.rb; formerly app/models/assignment.rb) as
    called by #generate_comments_from_files:
      - only File.basename(path) is looked at (folders in the zip don't matter)
      - a leading "<sanitized group name>_" is removed first (group assignments;
        group_names are raw names, sanitized with canvas_sanitize_user_name)
      - tokens = basename.split("_") minus every token exactly "LATE"
      - if tokens[0] == "anon": anonymous_id = tokens[1], attachment_id = tokens[2]
      - else: the FIRST TWO all-ASCII-digit tokens are user_id, attachment_id
        (anything after them -- the display name -- is irrelevant)
      - attachment_id is dropped (=> file ignored) when the last token starts
        with "link" or the basename starts with "._"
      - ignored unless the user has an active submission for this assignment
        AND that submission's CURRENT attachments include attachment_id (a file
        of an older submission version is ignored), and the user may read it.
    `submissions` = {user_id: set(attachment_ids of the current submission)};
    `anonymous_ids` = {anonymous_id: user_id}.
    Pitfall reproduced: a slug ending "_<digits>" (e.g. sortable name "x_12")
    is not cleaned by sanitize_user_name and yields a wrong user id."""
    base = filename.rstrip("/").rsplit("/", 1)[-1]
    for g in group_names:
        g = canvas_sanitize_user_name(g)
        if base.startswith(g + "_"):
            base = base[len(g) + 1:]
            break
    tokens = [t for t in _ruby_split(base, "_") if t != "LATE"]
    user_id = attachment_id = None
    if tokens and tokens[0] == "anon":
        anon_id = tokens[1] if len(tokens) > 1 else None
        attachment_id = tokens[2] if len(tokens) > 2 else None
        user_id = (anonymous_ids or {}).get(anon_id)
    else:
        digits = [t for t in tokens if re.fullmatch(r"[0-9]+", t)][:2]
        if digits:
            user_id = int(digits[0])
        if len(digits) > 1:
            attachment_id = digits[1]
    if (tokens and tokens[-1].startswith("link")) or base.startswith("._"):
        attachment_id = None
    if user_id is None or attachment_id is None or not re.fullmatch(r"[0-9]+", str(attachment_id)):
        return None
    attachment_id = int(attachment_id)
    if attachment_id not in submissions.get(user_id, ()):
        return None
    return (user_id, attachment_id)


def canvas_feedback_comment_display_name(matched_attachment_display_name: str) -> str:
    """Name the STUDENT sees for an uploaded feedback file: generate_comments_from_files
    calls FileInContext.attach(self, path, display_name: attachment.display_name)
    with the display name of the ORIGINAL submitted attachment that the file
    name pointed at -- not the uploaded file's own name.  (The stored
    attachment's `filename` is the uploaded basename; its display_name is the
    original.)  All files for one user go into ONE comment "See attached
    file(s)"; for group assignments the comment goes to every group member."""
    return matched_attachment_display_name


# --- 3. gradebook CSV import ---------------------------------------------------

CANVAS_RESERVED_COLUMNS = ("Student", "LastName", "FirstName", "ID", "SIS User ID",
                           "SIS Login ID", "Section", "Integration ID", "Root Account")
CANVAS_NON_ASSIGNMENT_COLUMNS = ("Current Score", "Current Points", "Current Grade",
                                 "Final Score", "Final Points", "Final Grade",
                                 "Override Score", "Override Grade", "Override Status")


def canvas_title_and_id(header: str):
    """Assignment.title_and_id: /\\A(.*)\\s\\((\\d+)\\)\\z/ -> (title, id) else (header, None)."""
    m = re.fullmatch(r"(.*)\s\(([0-9]+)\)", header)
    return (m.group(1), m.group(2)) if m else (header, None)


def _canvas_decimal_comma_to_period(field):
    """GradebookImporter CSV converter :decimal_comma_to_period, applied to
    EVERY field: a field matching /^-?[0-9.,]+%?$/ is split on [,.] and the
    last part becomes the fraction: "7,5"->"7.5", "1,234.5"->"1234.5",
    "1.234,5"->"1234.5", "1,234"->"1.234" (!)."""
    if field is None or not re.fullmatch(r"-?[0-9.,]+%?", field):
        return field
    parts = re.split(r"[,.]", field)
    last = parts.pop()
    return last if not parts else "".join(parts) + "." + last


def _canvas_identify_delimiter(lines):
    """GradebookImporter#identify_delimiter: for ';' and ',' count fields per
    line over the first <=3 lines; a separator scores its field count only if
    that count is the same on every line; ';' wins only if strictly higher."""
    counts = {}
    for sep in (";", ","):
        counts[sep] = 0
        try:
            per_line = [len(next(csv.reader([ln], delimiter=sep), [])) for ln in lines]
        except csv.Error:
            continue
        if len(set(per_line)) == 1:
            counts[sep] = per_line[0]
    return ";" if counts[";"] > counts[","] else ","


def _canvas_no_score(v):
    return v is None or str(v).strip() == "" or v == "-"


def _canvas_no_change(new, cur, consider_excused=True):
    """GradebookImporter#no_change_to_value?"""
    if new == cur:
        return True
    if _canvas_no_score(cur) and _canvas_no_score(new):
        return True
    if _canvas_no_score(cur) or (new is None or str(new).strip() == ""):
        return False  # one side blank, the other not => a change (blank CLEARS)
    if consider_excused and (str(new).upper() == "EX" or str(cur).upper() == "EX"):
        return False
    try:  # I18n.n(x, precision: 2) on both sides, compared as strings
        return (Decimal(str(cur)).quantize(Decimal("0.01"), ROUND_HALF_UP)
                == Decimal(str(new)).quantize(Decimal("0.01"), ROUND_HALF_UP))
    except Exception:
        return str(cur) == str(new)


def canvas_import(csv_text, existing_assignments, existing_scores, students=None):
    """Simplified oracle of Canvas' gradebook CSV import.

    Follows GradebookImporter#parse! / #process_header / #parse_assignments /
    #process_student / #check_for_non_student_row / #no_change_to_value?
    (lib/gradebook_importer.rb) plus what the browser then POSTs
    (ui/features/gradebook_uploads/jquery/process_gradebook_upload.js).

    existing_assignments: {assignment_id: title} (published, gradeable ones)
    existing_scores:      {(user_id, assignment_id): score (number/str) or "EX"}
    students: optional {user_id: {"name":..., "sortable_name":..., "sis_user_id":...,
              "login_id":...}}; when None, any integer in the ID column is
              taken as an existing student.
    Returns {"created": [titles of new assignments],
             "points_possible": {title: value from the "Points Possible" row},
             "changes": {(user_id, assignment_id_or_new_title): new value or None},
             "unmatched_students": [student cells that matched nobody]}
    (None = grade removed; "EX" = excused.)  Raises ValueError("Invalid header row").

    Rules:
    * header: row[0] contains "Student" and row[1] contains "ID" (len > 3),
      then optional "SIS User ID","SIS Login ID"[,"Integration ID"][,"Root Account"]
      or just "SIS Login ID", then "Section" (must be there). Every later
      column whose header CONTAINS one of CANVAS_NON_ASSIGNMENT_COLUMNS
      (substring! also "Unposted ...") is not an assignment.
    * assignment column: "<title> (<id>)" with id of an existing assignment ->
      that assignment; else an existing assignment whose title == the WHOLE
      header text; else a NEW assignment titled <title> (the " (id)" stripped).
      New ones need the teacher's choice in a resolution dialog (new / ignore /
      map to existing; no default) -- this oracle assumes "new"; they are
      created with points from the "Points Possible" row and published.
      A column's cells are read from the FIRST column with that header text.
    * student: ID column (int) first, then SIS User ID, then SIS Login ID, then
      Student cell == user's name or sortable_name (first match wins).
    * rows whose first cell contains "Points Possible" set points; rows whose
      every non-nil cell matches /^\\s*(Muted|Manual Posting.*)?\\s*$/i are skipped;
      lines of only ';', ',' and spaces are skipped.  Delimiter ';' or ','
      auto-detected; decimal commas converted (see _canvas_decimal_comma_to_period).
    * an EMPTY cell over an existing score IS a change: the score is removed
      (posted_grade null).  Blank over blank, or values equal at 2 decimals,
      are no change.  "EX"/"excused" (any case) excuses.
    * a column whose "Points Possible" cell matches /read\\s+only/ is dropped.
    Not modelled: override/custom columns, pass_fail translation, closed
    grading periods, per-student visibility (unassigned -> cell treated blank).
    UNCERTAIN: what Canvas stores for a cell "-" over an existing score
    (importer treats "-" as blank for change detection, the browser then posts "-").
    """
    text = csv_text.lstrip("\ufeff")
    lines = text.splitlines()
    sep = _canvas_identify_delimiter([ln + "\n" for ln in lines[:3]]) if lines else ","
    rows = []
    for row in csv.reader(io.StringIO(text), delimiter=sep):
        if not row:
            continue
        raw_line = sep.join(row)
        if re.fullmatch(r"[;, ]+", raw_line):
            continue
        rows.append([_canvas_decimal_comma_to_period(c) for c in row])
    if not rows:
        raise ValueError("Invalid header row")

    header = rows[0]
    if not (len(header) > 3 and "Student" in header[0] and "ID" in header[1]):
        raise ValueError("Invalid header row")
    n = 3
    sis_user_col = sis_login_col = None
    if re.search(r"SIS\s+Login\s+ID", header[2] or ""):
        sis_login_col, n = 2, n + 1
    elif re.search(r"SIS\s+User\s+ID", header[2] or "") and len(header) > 3 and \
            re.search(r"SIS\s+Login\s+ID", header[3] or ""):
        i = 1 if len(header) > 4 and re.search(r"Integration\s+ID", header[4] or "") else 0
        sis_user_col, sis_login_col = 2, 3
        n += 2 + i
        if len(header) > 4 + i and re.search(r"Root\s+Account", header[4 + i] or ""):
            n += 1
    if len(header) < n or "Section" not in (header[n - 1] or ""):
        raise ValueError("Invalid header row")

    non_assign = re.compile("|".join(CANVAS_NON_ASSIGNMENT_COLUMNS))
    columns = []  # (key, title, is_new, col_index)
    title_to_id = {}
    for aid, title in existing_assignments.items():
        title_to_id.setdefault(title, aid)
    for h in header[n:]:
        if h is None or non_assign.search(h):
            continue
        title, sid = canvas_title_and_id(h)
        if sid is not None and int(sid) in existing_assignments:
            key, is_new = int(sid), False
        elif h in title_to_id:
            key, is_new = title_to_id[h], False
        else:
            key, is_new = title, True
        columns.append((key, title if is_new else existing_assignments[key], is_new, header.index(h)))

    points, readonly = {}, set()
    by_sis = {s.get("sis_user_id"): u for u, s in (students or {}).items() if s.get("sis_user_id")}
    by_login = {s.get("login_id"): u for u, s in (students or {}).items() if s.get("login_id")}
    changes, unmatched = {}, []
    for row in rows[1:]:
        if row[0] is not None and "Points Possible" in row[0]:
            for key, title, is_new, idx in columns:
                if idx < len(row) and row[idx] is not None:
                    points[title] = row[idx]
                    if re.search(r"read\s+only", row[idx]):
                        readonly.add(key)
            continue
        if all(re.fullmatch(r"\s*(Muted|Manual Posting.*)?\s*", c, re.I) for c in row if c is not None):
            continue
        uid = None
        sid = row[1] if len(row) > 1 else None
        if sid and re.match(r"\s*[+-]?[0-9]", sid):
            cand = int(re.match(r"\s*([+-]?[0-9]+)", sid).group(1))  # String#to_i
            if students is None or cand in students:
                uid = cand
        if uid is None and sis_user_col is not None and len(row) > sis_user_col and row[sis_user_col]:
            uid = by_sis.get(row[sis_user_col])
        if uid is None and sis_login_col is not None and len(row) > sis_login_col and row[sis_login_col]:
            uid = by_login.get(row[sis_login_col])
        if uid is None and students:
            for u, s in students.items():
                if row[0] in (s.get("name"), s.get("sortable_name")):
                    uid = u
                    break
        if uid is None:
            unmatched.append(row[0])
            continue
        for key, title, is_new, idx in columns:
            if key in readonly:
                continue
            cell = row[idx].strip() if idx < len(row) and row[idx] is not None else None
            cur = None if is_new else existing_scores.get((uid, key))
            cur = None if cur is None else str(cur)
            if cell is not None and cell.upper() in ("EX", "EXCUSED"):
                cell_norm = "EX"
            else:
                cell_norm = cell
            if _canvas_no_change(cell_norm, cur):
                continue
            changes[(uid, key)] = None if (cell_norm is None or cell_norm == "") else cell_norm
    created = [t for k, t, is_new, _ in columns if is_new and k not in readonly]
    return {"created": created, "points_possible": {t: points[t] for t in created if t in points},
            "changes": changes, "unmatched_students": unmatched}


# =============================================================================
# MOODLE
# =============================================================================

def moodle_fullname(firstname: str, lastname: str) -> str:
    """fullname() (lib/moodlelib.php) with the default $CFG->fullnamedisplay
    'language' -> lang/en/moodle.php 'fullnamedisplay' = '{$a->firstname} {$a->lastname}'.
    Sites can change the template (e.g. "lastname firstname")."""
    return f"{firstname} {lastname}"


def moodle_clean_filename(s: str) -> str:
    """clean_filename() == clean_param($s, PARAM_FILE) (lib/moodlelib.php):
    removes (not replaces) control chars (Unicode Cc, PHP /u => UCP) and
    & < > " ` | ' : \\ / ; "." and ".." become "".  Spaces, unicode, '*', '?',
    '#', '%', ',' etc. are KEPT."""
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Cc" and ch not in "&<>\"`|':\\/")
    return "" if s in (".", "..") else s


def moodle_clean_path(s: str) -> str:
    """clean_param($s, PARAM_PATH): '\\'->'/', every segment cleaned as
    PARAM_FILE (except a leading '.'), then '//+'->'/' and '/(./)+'->'/'."""
    parts = s.replace("\\", "/").split("/")
    parts = [p if (p == "." and i == 0) else moodle_clean_filename(p) for i, p in enumerate(parts)]
    s = "/".join(parts)
    s = re.sub(r"//+", "/", s)
    return re.sub(r"/(\./)+", "/", s)


def moodle_zipstream_filter(path: str) -> str:
    """core_files\\local\\archive_writer\\zip_writer::sanitise_filepath =
    PARAM_PATH, then ZipStream\\File::filterFilename: strip leading '/'s and
    replace each of \\ : * ? " < > | by '_' (so '*' and '?' become '_')."""
    path = re.sub(r"^/+", "", moodle_clean_path(path))
    for ch in '\\:*?"<>|':
        path = path.replace(ch, "_")
    return path


def moodle_download_prefix(fullname: str, participant_id, blind: bool = False,
                           legacy_groupname: str = "") -> str:
    """mod_assign\\downloader::get_student_prefix (4.1+):
       clean_filename(str_replace('_', ' ', NAME) . '_' . get_uniqueid_for_user(userid))
    NAME = fullname(), or "Participant" when blind marking.
    <id> is ALWAYS assign::get_uniqueid_for_user() -- the row id of
    assign_user_mapping for (assignment, user), i.e. the "Participant N"
    number -- blind marking or not; it is NOT the Moodle user id.
    Underscores in the name become spaces, so the first '_' ends the name.
    legacy_groupname: Moodle < 4.1 (assign::download_submissions in
    locallib.php) put "<group name>-" before the name in group mode
    (UNCERTAIN: from memory, not re-read)."""
    name = "Participant" if blind else fullname
    return moodle_clean_filename((legacy_groupname + name).replace("_", " ") + "_" + str(participant_id))


def moodle_team_download_prefix(group_name=None, group_id=None) -> str:
    """Team submissions: clean_filename(str_replace('_',' ',group name) . '_' . groupid),
    or "Default group" (no id) for users in no group."""
    if group_name is None:
        return moodle_clean_filename("Default group")
    return moodle_clean_filename(group_name.replace("_", " ") + "_" + str(group_id))


def moodle_download_path(fullname, participant_id, plugin_filename, filepath="/",
                         as_folders=True, blind=False, subtype="assignsubmission",
                         plugintype="file", prefix=None, legacy=False) -> str:
    """Path of one file in Moodle's assignment "Download all submissions" zip.

    Follows mod_assign\\downloader::load_submissionplugin_filelist (4.1+,
    mod/assign/classes/downloader.php) and zip_writer::add_file_from_stored_file:
      folders (default; user pref assign_downloadasfolders=1):
        clean_filename(PREFIX.'_assignsubmission_file') . filepath . filename
        -> "Jane Doe_123_assignsubmission_file/essay.pdf"
           (sub-folders the student made are kept: ".../sub/dir/x.py")
        other plugins: PREFIX_assignsubmission_onlinetext/onlinetext.html
        (UNCERTAIN: online-text file name not re-read)
      flat (pref off; the pre-3.1 layout):
        clean_filename(PREFIX.'_assignsubmission_file_'.filename)
        -> "Jane Doe_123_assignsubmission_file_essay.pdf" (sub-folders lost)
      then sanitised by the zip writer (moodle_zipstream_filter).
    legacy=True: Moodle 3.1-4.0 folder name had a trailing '_':
      "Jane Doe_123_assignsubmission_file_/essay.pdf" (per the comment in
      mod/assign/feedback/file/importziplib.php); no ZipStream filter then.
    `prefix` overrides the computed student prefix (e.g. team prefix)."""
    if prefix is None:
        prefix = moodle_download_prefix(fullname, participant_id, blind=blind)
    if as_folders:
        folder = moodle_clean_filename(prefix + "_" + subtype + "_" + plugintype + ("_" if legacy else ""))
        name = plugin_filename.rsplit("/", 1)[-1]
        if plugintype == "file":
            path = folder + filepath + name
        else:
            path = folder + "/" + name
        path = moodle_clean_path(path)
    else:
        path = moodle_clean_filename(prefix + "_" + subtype + "_" + plugintype + "_" + plugin_filename)
    return path if legacy else moodle_zipstream_filter(path)


def moodle_zip_entry_time(file_timemodified: int, server_tz=None) -> _dt.datetime:
    """Time on a Moodle (4.1+) download zip entry: zip_writer::add_file_from_stored_file
    sets the entry time to the stored file's timemodified (when the student
    uploaded/saved that file -- NOT the submission's "Last modified" time);
    ZipStream (v2) File::dosTime writes it as a DOS time via getdate(), i.e.
    in PHP's default zone = the SERVER timezone (core_date::set_default_server_timezone),
    2-second resolution, no extended-timestamp extra field.  Entries added
    from strings (online text) get "now".  UNCERTAIN: ZipStream v3 (Moodle
    4.4+) and Moodle < 4.1 (zip_packer) not checked."""
    return _dos_time(file_timemodified, server_tz)


MOODLE_DEFAULT_PLUGINS = {("assignsubmission", "file"), ("assignsubmission", "onlinetext"),
                          ("assignsubmission", "comments"), ("assignfeedback", "file"),
                          ("assignfeedback", "comments"), ("assignfeedback", "editpdf"),
                          ("assignfeedback", "offline")}


def moodle_feedback_import_parse(zip_path, participants, plugins=MOODLE_DEFAULT_PLUGINS):
    """assignfeedback_file_zip_importer::is_valid_filename_for_import
    (mod/assign/feedback/file/importziplib.php) on one path in the uploaded
    feedback zip.  Returns (participant_key, users, (subtype, type), inner_filename)
    or None when the file is ignored.

    - directories are ignored; files whose NAME starts with '.' or '~' are ignored
    - the stored path is "/import/<path in zip>"; it is split on '/', and each
      segment in turn is exploded on '_' into at most 5 pieces
      [name, participant, subtype, type, rest]; segments with < 4 pieces, a
      non-numeric 2nd piece (PHP is_numeric), an unknown participant, or an
      unknown plugin (subtype,type) are SKIPPED and the next segment is tried
    - participant = assign_user_mapping id ("Participant N"), or the GROUP id
      for team submissions (participants = get_participant_mapping)
    - inner_filename = rest-of-segment + remaining segments joined by '/':
      folder form "Jane Doe_123_assignsubmission_file/essay.pdf" -> "/essay.pdf";
      flat form "Jane Doe_123_assignsubmission_file_essay.pdf" -> "essay.pdf".
    participants: {participant_key: user_id or [user_ids]}."""
    if zip_path.endswith("/"):
        return None
    name = zip_path.rsplit("/", 1)[-1]
    if name.startswith(".") or name.startswith("~"):
        return None
    parts = ("/import/" + zip_path.lstrip("/")).split("/")
    while parts:
        part = parts.pop(0)
        info = part.split("_", 4)
        if len(info) < 4 or not _php_is_numeric(info[1]):
            continue
        key = _php_number(info[1])
        key = int(key) if isinstance(key, float) else key  # PHP float array key -> int
        if not participants.get(key):
            continue
        if (info[2], info[3]) not in plugins:
            continue
        rest = info[4] if len(info) == 5 else ""
        return key, participants[key], (info[2], info[3]), "/".join([rest] + parts)
    return None


def moodle_feedback_import_match(filename, participants):
    """User id(s) a feedback-zip entry is imported for, or None (ignored).
    participants: {participant_id: user_id} (or {group_id: [user_ids]} for teams).
    See moodle_feedback_import_parse for the rule."""
    r = moodle_feedback_import_parse(filename, participants)
    return None if r is None else r[1]


def moodle_feedback_is_modified(inner_filename, content_sha1, current_files) -> bool:
    """assignfeedback_file_zip_importer::is_file_modified: a file is imported only
    if no current file of that plugin has the SAME KEY (get_files key =
    filepath.filename, e.g. "/essay.pdf") with the same content hash.
    Consequence: in the folder form an unedited submission file is skipped;
    in the FLAT form the key "essay.pdf" never equals "/essay.pdf", so every
    file counts as modified.  current_files: {key: sha1} of the user's
    submission (subtype assignsubmission) or feedback files (assignfeedback);
    no submission/grade at all -> modified."""
    if current_files is None:
        return True
    if inner_filename in current_files:
        return current_files[inner_filename] != content_sha1
    return True


def moodle_import(rows, map_field, users, grademax, *, grademin=0.0, gradepointmax=100,
                  unlimitedgrades=False, decsep="."):
    """Oracle of Moodle's gradebook CSV import for ONE existing grade item.

    Follows gradeimport_csv_load_data::prepare_import_grade_data /
    map_user_data_with_value / check_user_exists / update_grade_item /
    insert_grade_record (grade/import/csv/classes/load_data.php) and
    grade_import_commit (grade/import/lib.php) + grade_item::bounded_grade.

    rows: list of [identifier, grade_cell] (header already removed; a line
          with <= 1 field is skipped).
    map_field: 'userid' | 'username' | 'useridnumber' | 'useremail'
          (the only "Map to" options; fields id, username, idnumber, email).
    users: list of {"id", "username", "idnumber", "email"} -- ALL site users:
          users need not be enrolled (their grades are imported and merely
          listed in a notice afterwards).
    Returns {"error": message} (the WHOLE import is aborted, nothing saved)
         or {"changes": {user_id: float or None}} (None = grade cleared).
    - user not found -> 'User mapping error: Could not find user with <label> of "<value>".'
      (labels: id, username, idnumber, email address); >1 match -> "Multiple users found" error.
      username/email are matched case-insensitively, id/idnumber exactly.
    - cell '' or '-' -> grade set to NULL (an existing grade IS cleared).
    - non-numeric cell -> "Supplied grade is invalid" (abort).
    - grade > 100 (or > $CFG->gradepointmax when unlimitedgrades) -> abort with
      "One of the grade values is larger than the allowed grade maximum of 100".
    - grade > the item's grademax but <= 100 is NOT rejected: it is silently
      clamped to grademax at commit (bounded_grade; grademax*10 when
      unlimitedgrades); below grademin is clamped up.
    - same user twice: the later line wins.
    Not modelled: scales, feedback columns, locked items/grades, group mode,
    the "last exported" time check, new grade items."""
    fields = {"userid": ("id", "id"), "useridnumber": ("idnumber", "idnumber"),
              "useremail": ("email", "email address"), "username": ("username", "username")}
    if map_field not in fields:
        raise ValueError("map_field must be one of " + ", ".join(fields))
    field, label = fields[map_field]
    limit = gradepointmax if unlimitedgrades else 100
    pending = []
    for line in rows:
        if len(line) <= 1:
            continue
        ident = str(line[0]).strip()
        if field == "id":  # non-numeric id -> the "could not find" error
            matches = ([u for u in users if float(ident) == float(u["id"])]
                       if _php_is_numeric(ident) else [])
        elif field in ("username", "email"):
            matches = [u for u in users if str(u.get(field, "")).lower() == ident.lower()]
        else:
            matches = [u for u in users if str(u.get(field, "")) == ident]
        if len(matches) > 1:
            return {"error": f'User mapping error: Multiple users found with {label} of "{ident}". '
                             f"Please use a more unique mapping field."}
        if not matches:
            return {"error": f'User mapping error: Could not find user with {label} of "{ident}".'}
        cell = str(line[1]).strip()
        if cell == "" or cell == "-":
            value = None
        else:
            v = cell.replace(" ", "").replace(decsep, ".")
            if not _php_is_numeric(v):
                return {"error": "Supplied grade is invalid"}
            value = float(v)
        if value is not None and value > limit:
            return {"error": f"One of the grade values is larger than the allowed grade maximum of {limit}"}
        pending.append((matches[0]["id"], value))
    top = grademax * 10 if unlimitedgrades else grademax
    changes = {}
    for uid, value in pending:
        changes[uid] = None if value is None else float(min(max(value, grademin), top))
    return {"changes": changes}


# --- 7. offline grading worksheet ---------------------------------------------

MOODLE_WORKSHEET_DATE_FORMAT = "%A, %d %B %Y, %I:%M %p"  # langconfig strftimedaydatetime
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def moodle_userdate(ts: int, tz=None, ampm=("AM", "PM")) -> str:
    """userdate($ts) with the default format (lib/moodlelib.php userdate ->
    core_calendar gregorian structure::timestamp_to_date_string):
    format = get_string('strftimedaydatetime','langconfig') = '%A, %d %B %Y, %I:%M %p'
    with "fixday"/"fixhour": the leading zero of %d and %I is removed.
    -> "Monday, 6 March 2023, 2:05 PM".  Rendered in the DOWNLOADING user's
    timezone (no zone in the text!), minutes only (no seconds).
    UNCERTAIN: %p comes from strftime with the en_AU.UTF-8 locale; it is
    "AM"/"PM" in the PHP/glibc builds we know of, but some locales give
    "am"/"pm" -- parse case-insensitively."""
    d = _dt.datetime.fromtimestamp(ts, _tzinfo(tz))
    hour12 = d.hour % 12 or 12
    return (f"{_WEEKDAYS[d.weekday()]}, {d.day} {_MONTHS[d.month - 1]} {d.year}, "
            f"{hour12}:{d.minute:02d} {ampm[0] if d.hour < 12 else ampm[1]}")


_USERDATE_RE = re.compile(
    r"\s*(?:(?:%s),\s*)?(\d{1,2}) (%s) (\d{4}), (\d{1,2}):(\d{2})(?::(\d{2}))? ?([AaPp]\.?[Mm]\.?)\s*"
    % ("|".join(_WEEKDAYS), "|".join(_MONTHS)))


def parse_moodle_userdate(text: str, tz=None):
    """Inverse of moodle_userdate: "Monday, 6 March 2023, 2:05 PM" -> POSIX
    seconds (start of that minute) interpreting the wall time in `tz` (the
    timezone of the user who downloaded the worksheet).  '-' or '' -> None
    (no submission / never graded).  Moodle itself reads the "Last modified
    (grade)" column back with PHP strtotime() in the offline importer."""
    if text is None or text.strip() in ("", "-"):
        return None
    m = _USERDATE_RE.fullmatch(text)
    if not m:
        raise ValueError(f"not a Moodle userdate: {text!r}")
    day, month, year, hour, minute, sec, ap = m.groups()
    hour = int(hour) % 12 + (12 if ap[0] in "Pp" else 0)
    naive = _dt.datetime(int(year), _MONTHS.index(month) + 1, int(day), hour, int(minute), int(sec or 0))
    return int(naive.replace(tzinfo=_tzinfo(tz)).timestamp())


def moodle_format_time(secs: int) -> str:
    """format_time() (lib/moodlelib.php): the two biggest non-zero units,
    e.g. "2 days 3 hours", "1 hour 5 mins", "45 secs" (reproduces its
    quirk of computing hours from the total minus days, ignoring years --
    harmless because with years only "years days" is printed)."""
    secs = abs(int(secs))
    years = secs // (365 * 86400)                 # YEARSECS = 365 days
    days = (secs - years * 365 * 86400) // 86400
    rem = secs - days * 86400                     # sic: from the total
    hours, rem = divmod(rem, 3600)
    mins, s = divmod(rem, 60)

    def unit(v, one, many):
        return f"{v} {one if v == 1 else many}" if v else ""
    oy, od, oh = unit(years, "year", "years"), unit(days, "day", "days"), unit(hours, "hour", "hours")
    om, os_ = unit(mins, "min", "mins"), unit(s, "sec", "secs")
    if years:
        return f"{oy} {od}".strip()
    if days:
        return f"{od} {oh}".strip()
    if hours:
        return f"{oh} {om}".strip()
    if mins:
        return f"{om} {os_}".strip()
    return os_ if s else "now"


_STATUS_TEXT = {"new": "No submission", "": "No submission", "draft": "Draft (not submitted)",
                "submitted": "Submitted for grading", "reopened": "Reopened", "marked": "Graded"}


def moodle_worksheet_status(status="submitted", submitted_ts=None, due_ts=None, graded=False,
                            graded_ts=None, locked=False, extension_text=None) -> str:
    """Status cell of the downloaded worksheet: assign_grading_table::col_status
    (mod/assign/gradingtable.php) builds <div>s, then for downloads does
    strip_tags(rtrim(str_replace('</div>', ' - ', $o), '- ')):
      "Submitted for grading - 1 day 2 hours late - Graded"
    pieces: submission status; "<format_time> late" when submitted after the
    (extension/override) due date; "Submission changes not allowed" if locked;
    (no marking workflow) "Graded" or "Graded - follow-up submission received"
    when graded before the last submission, or "Assignment is overdue by: ..."
    for no submission after the due date; "Extension granted until: <date>".
    Not modelled: marking workflow state, time limits."""
    pieces = [_STATUS_TEXT.get(status, status)]
    if due_ts and submitted_ts and submitted_ts > due_ts and status != "new":
        pieces.append(moodle_format_time(submitted_ts - due_ts) + " late")
    if locked:
        pieces.append("Submission changes not allowed")
    if graded:
        if graded_ts is not None and submitted_ts is not None and graded_ts < submitted_ts:
            pieces.append("Graded - follow-up submission received")
        else:
            pieces.append("Graded")
    if extension_text:
        pieces.append("Extension granted until: " + extension_text)
    return re.sub(r"[- ]+$", "", " - ".join(pieces))


def moodle_worksheet_header(blind=False, can_view_blind=False, identity_fields=("Email address",),
                            scale=False, markingworkflow=False, onlinetext=False,
                            feedback_comments=True, teamsubmission=False, date_columns=False,
                            marker=False):
    """Header of "Download grading worksheet" (assignfeedback_offline::download_grades ->
    assign_grading_table downloaded as CSV).  Default (file submissions +
    feedback comments, showuseridentity=email):
      Identifier, Full name, Email address, Status, Grade, Maximum Grade,
      Grade can be changed, Last modified (submission), Last modified (grade),
      Feedback comments
    Blind marking without 'viewblinddetails': only "Identifier" (no name/email).
    "Online text" follows "Last modified (submission)" when online text is on;
    "Allow submissions from","Due date","Cut-off date" after Status when there
    are overrides; "Group" for team submissions; "Marker" with allocation;
    "Scale" instead of "Maximum Grade" for scale grading; "Marking workflow
    state" before "Grade can be changed".  ('maxgrade' is defined twice in
    mod/assign/lang/en/assign.php; the later 'Maximum Grade' wins.)"""
    h = ["Identifier"]
    if not blind or can_view_blind:
        h.append("Full name")
        h.extend(identity_fields)
    h.append("Status")
    if date_columns:
        h += ["Allow submissions from", "Due date", "Cut-off date"]
    if teamsubmission:
        h.append("Group")
    if marker:
        h.append("Marker")
    h.append("Grade")
    h.append("Scale" if scale else "Maximum Grade")
    if markingworkflow:
        h.append("Marking workflow state")
    h.append("Grade can be changed")
    h.append("Last modified (submission)")
    if onlinetext:
        h.append("Online text")
    h.append("Last modified (grade)")
    if feedback_comments:
        h.append("Feedback comments")
    return h


def _php_format_float(x, decimals=2, decsep="."):
    q = Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP)
    return f"{q:.{decimals}f}".replace(".", decsep)


def moodle_worksheet_row(participant_id, fullname="", email="", status="Submitted for grading",
                         grade=None, grademax=100, can_change=True, submitted_ts=None,
                         graded_ts=None, feedback="", tz=None, blind=False, can_view_blind=False,
                         onlinetext=None, decimals=2):
    """One data row matching moodle_worksheet_header() defaults:
    - Identifier: get_string('hiddenuser','assign') . id = "Participant 123"
      (col_recordid; id = assign_user_mapping id, same number as in the zip)
    - Grade: '' when none/-1, else format_float(grade, item decimals=2) -> "80.00"
    - Maximum Grade: format_float(assign grade) -> "100.00"
    - Grade can be changed: "Yes"/"No"
    - Last modified (submission): userdate(submission timemodified) or "-"
      (submission status 'new' => "-")
    - Last modified (grade): userdate(grade timemodified) or "-" (always
      printed in downloads when set)
    - Feedback comments: text with HTML tags stripped (table format_text)
    `status` is the already-built Status text (see moodle_worksheet_status)."""
    row = ["Participant " + str(participant_id)]
    if not blind or can_view_blind:
        row += [fullname, email]
    row.append(status)
    row.append("" if grade is None or grade == -1 else _php_format_float(grade, decimals))
    row.append(_php_format_float(grademax, decimals) if grademax and grademax > 0 else "")
    row.append("Yes" if can_change else "No")
    row.append(moodle_userdate(submitted_ts, tz) if submitted_ts else "-")
    if onlinetext is not None:
        row.append(onlinetext)
    row.append(moodle_userdate(graded_ts, tz) if graded_ts else "-")
    row.append(feedback)
    return row


def moodle_worksheet_csv(header, rows) -> str:
    """The CSV file as Moodle streams it (dataformat_csv = Box\\Spout CSV writer):
    UTF-8 BOM first, ',' delimiter, '"' enclosure, PHP fputcsv quoting (only
    fields with space/comma/quote/newline/tab are quoted), "\\n" line ends:
      \\ufeffIdentifier,"Full name","Email address",Status,Grade,"Maximum Grade",..."""
    return "\ufeff" + "".join(_php_fputcsv_line(r) for r in [header, *rows])


def moodle_worksheet_parse(csv_text: str, tz=None):
    """Read a grading worksheet back: list of dicts with participant_id (the
    text after the literal 12-char prefix "Participant ", as the offline
    importer's substr() does), the raw cells by header, and
    'submitted'/'graded' as POSIX seconds (or None for '-')."""
    text = csv_text.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    out = []
    for cells in reader:
        if not cells:
            continue
        rec = dict(zip(header, cells))
        ident = rec.get("Identifier", "")
        pid = ident[len("Participant "):]
        rec["participant_id"] = int(pid) if pid.strip().isdigit() else pid
        rec["submitted"] = parse_moodle_userdate(rec.get("Last modified (submission)"), tz)
        rec["graded"] = parse_moodle_userdate(rec.get("Last modified (grade)"), tz)
        out.append(rec)
    return out


# =============================================================================
# FACTS (one rule per item; path = file in the LMS repository read)
# =============================================================================
# CANVAS (instructure/canvas-lms)
# C1 lib/content_zipper.rb get_filename/add_upload_submission: zip entry =
#    "<slug>[_LATE]_<user_id>_<attachment_id>_<display name>", anonymized:
#    "[LATE_]anon_<anonymous_id>_<attachment_id>_<display name>".
# C2 content_zipper.rb sanitize_user_name/sanitize_file_name: slug = sortable
#    name "Last, First", "_<digits>_" -> "<digits>", lowercased, all chars not
#    Unicode letter/mark/digit/'_' removed (spaces, commas, apostrophes,
#    hyphens gone; accents and other scripts kept; '_' kept).
# C3 content_zipper.rb sanitize_attachment_filename: runs of NUL / \ : * ? " < > |
#    in the display name -> one '_'; nothing else changed.
# C4 app/models/attachment.rb make_unique_filename (+ content_zipper
#    add_attachment_to_zip): duplicate names get "-1".."-7" before the
#    (multi-part) extension, then "-<uuid>".
# C5 attachment.rb handle_duplicates: files in a submissions folder are always
#    renamed, so re-submitting "essay.pdf" shows up as "essay-1.pdf", "essay-2.pdf".
# C6 rubyzip Entry default time (content_zipper passes none): entry time = zip
#    build time ("now", server local = UTC), not the submission time.
# C7 app/models/abstract_assignment.rb infer_comment_context_from_filename:
#    feedback file -> basename, optional "<group>_" removed, split on "_",
#    drop "LATE"; "anon" -> (anon id, attachment id) else first two all-digit
#    tokens = (user id, attachment id); skipped if "._" prefix, last token
#    "link...", no active submission, or attachment not in the submission's
#    current attachments.
# C8 abstract_assignment.rb generate_comments_from_files: one comment per user
#    "See attached file(s)", file shown under the ORIGINAL attachment's
#    display name; group assignments: comment to every group member.
# C9 lib/gradebook_importer.rb parse_assignments: column "<title> (<id>)" ->
#    existing id; else exact title == whole header; else new assignment (needs
#    "new" in the resolution dialog; points from "Points Possible" row).
# C10 gradebook_importer.rb process_student: student by ID, then SIS User ID,
#    then SIS Login ID, then name/sortable name; header must be Student, ID,
#    [SIS User ID, SIS Login ID[, Integration ID][, Root Account] | SIS Login ID], Section.
# C11 gradebook_importer.rb no_change_to_value? + process_gradebook_upload.js:
#    empty cell over a score = change -> grade removed; equal at 2 decimals =
#    no change; "EX" excuses; decimal commas converted; ';' auto-detected.
# MOODLE (moodle/moodle, read at 4.1)
# M1 mod/assign/classes/downloader.php get_student_prefix: PREFIX =
#    clean_filename(fullname with '_'->' ' . "_" . participant id) where the id
#    is assign_user_mapping.id (get_uniqueid_for_user, locallib.php) ALWAYS, and
#    the name is "Participant" under blind marking; team: "<group>_<groupid>".
# M2 downloader.php load_submissionplugin_filelist: folders (default):
#    "PREFIX_assignsubmission_file/<subdirs>/<file>"; flat:
#    "PREFIX_assignsubmission_file_<file>"; Moodle 3.1-4.0 folder had a
#    trailing '_' ("..._assignsubmission_file_/<file>").
# M3 lib/moodlelib.php clean_param PARAM_FILE: removes control chars and
#    & < > " ` | ' : \ / (spaces, unicode kept); zip_writer.php +
#    lib/zipstream/src/File.php filterFilename then turn * and ? into '_'.
# M4 files/classes/local/archive_writer/zip_writer.php add_file_from_stored_file:
#    entry time = stored file timemodified, DOS time in the SERVER timezone.
# M5 mod/assign/feedback/file/importziplib.php is_valid_filename_for_import:
#    skip dirs and names starting '.' or '~'; per path segment explode('_',5):
#    2nd piece numeric participant id (or group id for teams) + known
#    subtype_type plugin -> match, else try next segment; is_file_modified
#    skips files identical (same key + hash) to the current ones.
# M6 grade/import/csv/classes/load_data.php: map by userid|username|
#    useridnumber|useremail (any site user, enrolled or not); any unknown user,
#    ambiguous user, non-numeric grade or grade > 100 (gradepointmax) aborts
#    the WHOLE import; '' or '-' clears the grade; > grademax is silently
#    clamped (lib/grade/grade_item.php bounded_grade).
# M7 mod/assign/gradingtable.php (+ feedback/offline/locallib.php download_grades):
#    worksheet header Identifier,"Full name","Email address",Status,Grade,
#    "Maximum Grade","Grade can be changed","Last modified (submission)",
#    ["Online text",]"Last modified (grade)","Feedback comments"; BOM, fputcsv
#    quoting; Identifier "Participant <mapping id>"; dates userdate() =
#    '%A, %d %B %Y, %I:%M %p' without leading zeros ("Monday, 6 March 2023,
#    2:05 PM") in the downloader's timezone, '-' when absent.
# M8 mod/assign/feedback/offline/importgradeslib.php: re-import finds columns
#    by header text, id = substr after "Participant ", "Last modified (grade)"
#    read with strtotime; locallib.php process_import_grades skips empty grades
#    (unlike the gradebook CSV import) and grades changed > 60 s after that time.
