"""Collecting submissions without trusting a byte of them.

``make grade`` reads two kinds of input, and both are written by students:

- **a folder** ``<student>/<assignment>/...`` (nbgrader's exchange, a clone of
  the student's repository, a shared drive): :func:`copy_submission` copies
  only *regular files* and plain folders. A symbolic link is never followed
  (it could point at another student's notebook, the hidden references or
  ``/etc``); it is reported by name and the rest of the submission is graded.
  Fifos, sockets and devices are skipped the same way, so nothing blocks.
- **an LMS zip** (Canvas's or Moodle's "download all submissions"):
  :func:`read_zip` reads the archive entry by entry and writes each accepted
  notebook once per batch, straight to ``submitted/<student>/<assignment>/``.
  An entry is rejected, reported and skipped, while every other entry is
  graded, when its path is absolute or climbs out (``..``), when it is a
  symbolic link or an archive inside the archive, when its student id is not a
  plain name, or when it is over the size limits below. Sizes come from the
  zip's directory and are checked *before* anything is extracted; while
  extracting, no entry may produce more bytes than its directory claims.

The limits, each with an environment variable to change it:

========================  ==============================  =================
limit                     variable                        default
========================  ==============================  =================
files per submission      ``VAELAB_MAX_FILES``            200
bytes per file            ``VAELAB_MAX_FILE_MB``          64 MB
bytes per zip (in all)    ``VAELAB_MAX_ZIP_MB``           4096 MB
entries per zip           ``VAELAB_MAX_ZIP_ENTRIES``      20,000
compression ratio         ``VAELAB_MAX_ZIP_RATIO``        200 (files > 1 MB)
cells per notebook        ``VAELAB_MAX_CELLS``            2,000
========================  ==============================  =================

Two different notebooks for one student and assignment in one zip: the
newest is graded (Canvas: the highest attachment id; Moodle: the file's own
time; other names: the one that sorts last) and the others are reported by
name (identical copies are one submission). The rule is deterministic, so
grading the same zip twice grades the same files. Entries that are not
notebooks (a PDF, Moodle's online-text page) are passed over.
"""
from __future__ import annotations

import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,99}")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst", ".whl", ".jar")
ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"7z\xbc\xaf\x27\x1c", b"\xfd7zXZ\x00",
                 b"Rar!\x1a\x07", b"\x28\xb5\x2f\xfd")
CHUNK = 1 << 20
RATIO_FLOOR = 1 << 20  # compression ratio is only judged above 1 MB: small files compress as they like


def _env_int(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, default))
    except ValueError:
        raise SystemExit(f"{name}={os.environ[name]!r} is not a whole number") from None
    if value < 1:
        raise SystemExit(f"{name} must be at least 1")
    return value


@dataclass(frozen=True)
class Limits:
    files: int = 200
    file_bytes: int = 64 << 20
    zip_bytes: int = 4096 << 20
    zip_entries: int = 20_000
    zip_ratio: int = 200
    cells: int = 2_000

    @classmethod
    def from_env(cls) -> "Limits":
        d = cls()
        return cls(files=_env_int("VAELAB_MAX_FILES", d.files),
                   file_bytes=_env_int("VAELAB_MAX_FILE_MB", d.file_bytes >> 20) << 20,
                   zip_bytes=_env_int("VAELAB_MAX_ZIP_MB", d.zip_bytes >> 20) << 20,
                   zip_entries=_env_int("VAELAB_MAX_ZIP_ENTRIES", d.zip_entries),
                   zip_ratio=_env_int("VAELAB_MAX_ZIP_RATIO", d.zip_ratio),
                   cells=_env_int("VAELAB_MAX_CELLS", d.cells))

    def describe(self) -> str:
        return (f"{self.files} files and {self.file_bytes >> 20} MB per file per submission, "
                f"{self.cells} cells per notebook; zips: {self.zip_entries} entries, "
                f"{self.zip_bytes >> 20} MB in all, compression ratio {self.zip_ratio}")


def plain_id(name: str) -> bool:
    """A student or assignment name that is safe as one path component."""
    return bool(STUDENT_ID.fullmatch(name)) and set(name) != {"."}


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB"


# ------------------------------------------------------------------ folders
def _copy_regular(src_fd_dir: int, name: str, dest: Path, limit: int) -> str:
    """Copy one directory entry that lstat called a regular file; '' or why not.
    Opened relative to its parent's descriptor with O_NOFOLLOW, and checked
    again after opening, so a link swapped in meanwhile is refused too."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src_fd_dir)
    except OSError as err:
        return f"could not be read ({err.strerror})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return "is not a regular file"
        if info.st_size > limit:
            return f"is {_mb(info.st_size)}, over the {_mb(limit)} limit per file"
        written = 0
        with open(dest, "wb") as out:
            while chunk := os.read(fd, CHUNK):
                written += len(chunk)
                if written > limit:  # grew while being copied
                    out.close()
                    dest.unlink()
                    return f"is over the {_mb(limit)} limit per file"
                out.write(chunk)
    finally:
        os.close(fd)
    return ""


def copy_submission(src: Path, dest: Path, limits: Limits | None = None) -> list[str]:
    """Copy the regular files under ``src`` (itself checked not to be a link)
    to ``dest``; return one sentence per thing left behind."""
    limits = limits or Limits.from_env()
    notes: list[str] = []
    count = 0

    def walk(fd: int, rel: PurePosixPath, target: Path) -> None:
        nonlocal count
        target.mkdir(parents=True, exist_ok=True)
        with os.scandir(fd) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                shown = str(rel / entry.name)
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode):
                    notes.append(f"'{shown}' is a symbolic link: links are never followed, so it was not collected")
                elif stat.S_ISDIR(mode):
                    if entry.name in (".ipynb_checkpoints", "__pycache__", ".git"):
                        continue
                    try:
                        sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                    except OSError as err:
                        notes.append(f"folder '{shown}' could not be read ({err.strerror})")
                        continue
                    try:
                        walk(sub, rel / entry.name, target / entry.name)
                    finally:
                        os.close(sub)
                elif stat.S_ISREG(mode):
                    if count >= limits.files:
                        notes.append(f"'{shown}' was not collected: a submission holds at most {limits.files} files")
                        continue
                    why = _copy_regular(fd, entry.name, target / entry.name, limits.file_bytes)
                    if why:
                        notes.append(f"'{shown}' {why}: not collected")
                    else:
                        count += 1
                else:
                    notes.append(f"'{shown}' is not a regular file (a pipe, socket or device): not collected")

    if src.is_symlink() or not src.is_dir():
        return [f"'{src.name}' is a symbolic link or not a folder: not collected"]
    top = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        walk(top, PurePosixPath(), dest)
    finally:
        os.close(top)
    return notes


def plain_dirs(folder: Path) -> tuple[list[Path], list[str]]:
    """The sub-folders of ``folder`` that are real folders with plain names,
    and a sentence for each entry skipped (links, odd names); hidden entries
    (``.git``) are passed over silently."""
    kept, notes = [], []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_symlink():
            notes.append(f"'{path.name}' is a symbolic link: links are never followed, so it was not collected")
        elif not path.is_dir():
            continue
        elif not plain_id(path.name):
            notes.append(f"'{path.name[:60]}' is not a plain name (letters, digits, '.', '_', '-'): not collected")
        else:
            kept.append(path)
    return kept, notes


# --------------------------------------------------------------------- zips
@dataclass
class Rejected:
    entry: str
    why: str
    student: str = "-"
    assignment: str = "-"


@dataclass
class ZipResult:
    collected: dict = field(default_factory=dict)  # (student, assignment) -> (zipfile.ZipInfo, lms.Origin)
    rejected: list = field(default_factory=list)   # Rejected
    duplicates: list = field(default_factory=list)  # (student, assignment, kept entry, [other entries], rule)


def _unsafe_path(name: str) -> str:
    if "\x00" in name:
        return "its name holds a NUL byte"
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "its path is absolute"
    parts = re.split(r"[\\/]", name)
    if ".." in parts:
        return "its path climbs out of the archive ('..')"
    return ""


def _is_link(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _archive_name(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def read_zip(archive: Path, names: list, pattern: str, submitted: Path, limits: Limits | None = None,
             lms_layout: str = "auto") -> ZipResult:
    """Write every acceptable notebook in ``archive`` to
    ``submitted/<student>/<assignment>/<assignment>.ipynb``; see the module
    docstring for what is refused. Names are read by grader/lms.py: Canvas's
    and Moodle's download layouts, else ``pattern`` (a regular expression with
    groups ``student_id`` and ``file_id`` matched against ``'/' + entry name``).
    ``collected`` maps (student, assignment) to (ZipInfo, lms.Origin)."""
    from grader import lms

    limits = limits or Limits.from_env()
    result = ZipResult()
    regexp = re.compile(pattern)
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > limits.zip_entries:
            raise ValueError(f"{archive.name} has {len(infos):,} entries; at most {limits.zip_entries:,} are read "
                             f"(VAELAB_MAX_ZIP_ENTRIES): split the download")
        candidates: dict = {}
        for info in infos:
            name = info.filename
            if info.is_dir():
                continue
            why = _unsafe_path(name)
            if not why and _is_link(info):
                why = "it is a symbolic link"
            if not why and _archive_name(name):
                why = "it is an archive inside the archive (unpack it and grade the notebooks it holds)"
            origin = None if why else lms.read_name(name, regexp, lms_layout)
            student = origin.student if origin else "-"
            assignment = origin.assignment if origin else "-"
            if not why and origin is None:
                base = PurePosixPath(name).name
                if not base.lower().endswith(".ipynb") or base.startswith("."):
                    continue  # a PDF, an online-text page, macOS's ._ files: not a submission to grade
                why = ("its name is neither Canvas's nor Moodle's download form, nor "
                       "<student>_..._<assignment>.ipynb")
            if not why and not plain_id(student):
                why = f"its student id {student[:40]!r} is not a plain name"
            if not why and assignment not in names:
                why = f"{assignment!r} is not an assignment graded in this batch"
            if not why and info.file_size > limits.file_bytes:
                why = f"it unpacks to {_mb(info.file_size)}, over the {_mb(limits.file_bytes)} limit per file"
            if not why and info.file_size > RATIO_FLOOR and \
                    info.file_size > limits.zip_ratio * max(1, info.compress_size):
                why = (f"it is compressed {info.file_size / max(1, info.compress_size):,.0f} to 1 "
                       f"(a zip bomb?); at most {limits.zip_ratio} to 1 is unpacked")
            if why:
                result.rejected.append(Rejected(name, why, student, assignment))
                continue
            candidates.setdefault((student, assignment), []).append((info, origin))

        total = 0
        for (student, assignment), entries in sorted(candidates.items()):
            entries.sort(key=lambda pair: lms.newest_first_key(pair[1], pair[0]))
            distinct = {(i.CRC, i.file_size) for i, _ in entries}
            kept, origin = entries[-1]
            if len(distinct) > 1:
                result.duplicates.append((student, assignment, kept.filename,
                                          [i.filename for i, _ in entries[:-1]], lms.rule(origin.lms)))
            if total + kept.file_size > limits.zip_bytes:
                result.rejected.append(Rejected(kept.filename, f"the zip's {_mb(limits.zip_bytes)} budget "
                                                f"(VAELAB_MAX_ZIP_MB) was used up by the entries before it",
                                                student, assignment))
                continue
            folder = submitted / student / assignment
            why = _extract(zf, kept, folder, f"{assignment}.ipynb", limits)
            if why:
                result.rejected.append(Rejected(kept.filename, why, student, assignment))
                continue
            total += kept.file_size
            result.collected[(student, assignment)] = (kept, origin)
    return result


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, folder: Path, filename: str, limits: Limits) -> str:
    """Stream one entry to ``folder/filename``; '' or why not. The entry is
    unpacked to a temporary file first: a refused entry leaves nothing behind,
    and replaces no earlier submission."""
    import shutil
    import tempfile

    root = folder.parent.parent
    root.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".incoming-", dir=root)
    written = 0
    try:
        with zf.open(info) as src, os.fdopen(fd, "wb") as dst:
            first = True
            while chunk := src.read(CHUNK):
                if first and chunk.startswith(ARCHIVE_MAGIC):
                    raise _Refused("it is an archive inside the archive, named like a notebook")
                first = False
                written += len(chunk)
                if written > min(info.file_size, limits.file_bytes):
                    raise _Refused("it unpacks to more than its zip directory says")
                dst.write(chunk)
    except _Refused as err:
        os.unlink(temporary)
        return str(err)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, ValueError) as err:
        os.unlink(temporary)
        return f"it could not be unpacked ({type(err).__name__}: {str(err)[:80]})"
    if folder.is_symlink():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    os.replace(temporary, folder / filename)
    return ""


class _Refused(Exception):
    pass


def notebook_size_problem(path: Path, limits: Limits | None = None) -> str:
    """Why a notebook file is too large to grade ('' when it is not). Read
    without following links (collection never writes one)."""
    limits = limits or Limits.from_env()
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        return f"{path.name} is not a regular file: 0 points"
    if info.st_size > limits.file_bytes:
        return (f"{path.name} is {_mb(info.st_size)}; notebooks over {_mb(limits.file_bytes)} are not graded. "
                "Clear its outputs (Edit > Clear Outputs of All Cells), save and submit again: 0 points")
    return ""


def cell_count_problem(count: int, path: Path, limits: Limits | None = None) -> str:
    limits = limits or Limits.from_env()
    if count > limits.cells:
        return (f"{path.name} has {count:,} cells; notebooks with more than {limits.cells:,} are not graded. "
                "Delete the cells you added (or start again from the released notebook) and submit again: 0 points")
    return ""
