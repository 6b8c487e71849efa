"""Safe in (issue 30): submissions are collected without trusting their files.

Unit tests of grader/grade/intake.py on hostile folders and zips, then two real
``make grade`` batches with every default: a folder batch whose students
plant links, a fifo, slow and crashing cells of their own, careless but
honest settings, a patch in a cell tagged like the grader's guard, and a
notebook of 100,000 cells, and an LMS zip with traversal, absolute, link, nested-archive,
bomb and duplicate entries. Honest work keeps its points; nothing outside a
submission's own regular files reaches ``feedback/`` or a bundle.
"""
import csv
import html
import io
import json
import os
import re
import stat
import zipfile

import nbformat
import pytest

from grader import HIDDEN_REFERENCES

from grader.grade import intake
from grader.grade.batch import DEFAULT_NAME_PATTERN, main as grade_main
from grader.notebooks import make_submission

from .samples import alternative

CANARY = "canary-4f1d9e-not-for-students"
DEFAULTS = intake.Limits()


def _zip_link(zf, name, target):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, target)


def _every_byte_under(folder):
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path, path.read_bytes()


# ------------------------------------------------------------------ folders
def test_copy_follows_no_link_and_reports_each(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(CANARY)
    src = tmp_path / "sub"
    (src / "data").mkdir(parents=True)
    (src / "01_elbo.ipynb").write_text("{}")
    (src / "data" / "notes.txt").write_text("mine")
    (src / "aa_feedback.html").symlink_to(secret)
    (src / "refs").symlink_to(HIDDEN_REFERENCES)
    (src / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(src / "pipe")
    notes = intake.copy_submission(src, tmp_path / "dest")
    copied = sorted(str(p.relative_to(tmp_path / "dest")) for p in (tmp_path / "dest").rglob("*") if p.is_file())
    assert copied == ["01_elbo.ipynb", "data/notes.txt"]
    assert not any(p.is_symlink() for p in (tmp_path / "dest").rglob("*"))
    for name in ("aa_feedback.html", "refs", "dangling"):
        assert any(f"'{name}' is a symbolic link" in n for n in notes), notes
    assert any("'pipe' is not a regular file" in n for n in notes)
    # a submission folder that is itself a link is not entered
    (tmp_path / "linked").symlink_to(src)
    assert "symbolic link" in intake.copy_submission(tmp_path / "linked", tmp_path / "dest2")[0]
    assert not (tmp_path / "dest2").exists()


def test_copy_limits_files_and_sizes(tmp_path):
    src = tmp_path / "sub"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}.txt").write_text("x")
    (src / "big.bin").write_bytes(b"\0" * (2 << 20))
    notes = intake.copy_submission(src, tmp_path / "dest", intake.Limits(files=3, file_bytes=1 << 20))
    assert len(list((tmp_path / "dest").iterdir())) == 3
    assert any("'big.bin' is 2.0 MB, over the 1.0 MB limit" in n for n in notes)
    assert sum("at most 3 files" in n for n in notes) == 2


def test_plain_dirs_skip_links_and_odd_names(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "bad name").mkdir()
    (tmp_path / "evil").symlink_to(tmp_path / "ann")
    kept, notes = intake.plain_dirs(tmp_path)
    assert [p.name for p in kept] == ["ann"]
    assert len(notes) == 2 and any("'evil' is a symbolic link" in n for n in notes)
    assert all(intake.plain_id(n) for n in ("ann", "a.b-c_d", "A1")) and not any(
        intake.plain_id(n) for n in ("..", ".", "", ".hidden", "a/b", "a b", "x" * 101))


# --------------------------------------------------------------------- zips
def _hostile_zip(path, good, other):
    """Canvas's download names (grader/lms.py): <slug>_<user id>_<attachment id>_<file>."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zoe_1234_5678_01_elbo.ipynb", good)
        zf.writestr("../evil_1_2_01_elbo.ipynb", good)
        zf.writestr("/abs_1_2_01_elbo.ipynb", good)
        _zip_link(zf, "link_1_2_01_elbo.ipynb", "/etc/passwd")
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as nested:
            nested.writestr("x_1_2_01_elbo.ipynb", good)
        zf.writestr("nested_1_2_01_elbo.zip", inner.getvalue())
        zf.writestr("disguised_1_2_01_elbo.ipynb", inner.getvalue())
        # a bomb by ratio (20 MB of zeros) and one by size (over the per-file limit)
        zf.writestr("bomb_1_2_01_elbo.ipynb", b"\0" * (20 << 20))
        zf.writestr("huge_1_2_01_elbo.ipynb", b" " * (DEFAULTS.file_bytes + 1))
        zf.writestr("bob_22_902_01_elbo-1.ipynb", good)      # two different notebooks for Canvas user 22:
        zf.writestr("bob_22_901_01_elbo.ipynb", other)       # the newer upload (higher attachment id) is graded
        zf.writestr("cat_33_1_01_elbo.ipynb", good)          # two identical ones for user 33: one submission
        zf.writestr("cat_33_2_01_elbo.ipynb", good)
        zf.writestr("zoe_1234_5679_notes.pdf", "a PDF is not a submission to grade")


def test_read_zip_rejects_each_bad_entry_and_keeps_the_rest(tmp_path):
    archive = tmp_path / "download.zip"
    _hostile_zip(archive, b'{"good": 1}', b'{"other": 1}')
    result = intake.read_zip(archive, ["01_elbo"], DEFAULT_NAME_PATTERN, tmp_path / "submitted")
    assert sorted(result.collected) == [("1234", "01_elbo"), ("22", "01_elbo"), ("33", "01_elbo")]
    for student in ("1234", "22", "33"):
        assert (tmp_path / "submitted" / student / "01_elbo" / "01_elbo.ipynb").read_bytes() == b'{"good": 1}'
    (dup,) = result.duplicates
    assert dup[:4] == ("22", "01_elbo", "bob_22_902_01_elbo-1.ipynb", ["bob_22_901_01_elbo.ipynb"])
    why = {r.entry: r.why for r in result.rejected}
    assert "climbs out" in why["../evil_1_2_01_elbo.ipynb"]
    assert "absolute" in why["/abs_1_2_01_elbo.ipynb"]
    assert "symbolic link" in why["link_1_2_01_elbo.ipynb"]
    assert "archive inside" in why["nested_1_2_01_elbo.zip"] and "archive inside" in why["disguised_1_2_01_elbo.ipynb"]
    assert "zip bomb" in why["bomb_1_2_01_elbo.ipynb"]
    assert f"over the {DEFAULTS.file_bytes >> 20}.0 MB limit" in why["huge_1_2_01_elbo.ipynb"]
    assert "zoe_1234_5679_notes.pdf" not in why  # not a notebook: passed over, not an error
    # nothing was written outside submitted/, and only the accepted students' folders exist
    assert sorted(p.name for p in tmp_path.iterdir()) == ["download.zip", "submitted"]
    assert sorted(p.name for p in (tmp_path / "submitted").iterdir()) == ["1234", "22", "33"]


def test_a_student_id_that_is_not_a_plain_name_is_refused(tmp_path):
    archive = tmp_path / "custom.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("dotdot/.._x_01_elbo.ipynb", "{}")
        zf.writestr("ok/ann_x_01_elbo.ipynb", "{}")
    result = intake.read_zip(archive, ["01_elbo"], DEFAULT_NAME_PATTERN, tmp_path / "submitted", lms_layout="pattern")
    assert list(result.collected) == [("ann", "01_elbo")]
    assert "not a plain name" in result.rejected[0].why
    assert sorted(p.name for p in (tmp_path / "submitted").iterdir()) == ["ann"]


def test_a_zip_directory_that_lies_about_sizes_is_cut_off(tmp_path):
    """The sizes are checked before extracting; an entry whose directory
    understates its size stops at the stated size and is rejected."""
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("liar_1_2_01_elbo.ipynb", b"{" + b" " * 5000 + b"}")
    data = bytearray(archive.read_bytes())
    # patch the uncompressed size in the local header (offset 22) and the central directory (offset 24)
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    for offset in (local + 22, central + 24):
        data[offset:offset + 4] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    result = intake.read_zip(archive, ["01_elbo"], DEFAULT_NAME_PATTERN, tmp_path / "submitted")
    assert not result.collected
    assert len(result.rejected) == 1 and ("could not be unpacked" in result.rejected[0].why or
                                          "more than its zip directory says" in result.rejected[0].why)
    assert not (tmp_path / "submitted" / "liar").exists()


def test_entry_count_limit_is_checked_before_reading(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(30):
            zf.writestr(f"s{i}_1_2_01_elbo.ipynb", "{}")
    with pytest.raises(ValueError, match="at most 20 are read"):
        intake.read_zip(archive, ["01_elbo"], DEFAULT_NAME_PATTERN, tmp_path / "s", intake.Limits(zip_entries=20))
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------- real make grade runs
def _with_cells(path, *sources, tags=()):
    nb = nbformat.read(str(path), as_version=4)
    for source in sources:
        cell = nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.insert(len(nb.cells) // 2, cell)
    nbformat.write(nb, str(path))
    return path


def _scores(out):
    with open(out / "grades.csv") as fh:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(fh)}


def _problems(out):
    with open(out / "report.csv") as fh:
        return [row for row in csv.reader(fh) if row and row[0] == "problem"]


def _feedback(out, student):
    return re.sub(r"<[^>]+>", "", (out / "feedback" / student / "01_elbo" / "01_elbo.html").read_text())


@pytest.mark.slow
def test_a_hostile_folder_batch_grades_every_honest_answer(tmp_path):
    answers = alternative("01_elbo")
    subs, out = tmp_path / "subs", tmp_path / "out"
    secret = tmp_path / "secret.txt"
    secret.write_text(CANARY)
    honest = make_submission("01_elbo", answers, subs, "honest")
    folder = honest.parent
    (folder / "aa_feedback.html").symlink_to(secret)
    (folder / "refs").symlink_to(HIDDEN_REFERENCES)
    (folder / "dangling").symlink_to(tmp_path / "nowhere")
    (subs / "mallory" / "01_elbo").mkdir(parents=True)
    (subs / "mallory" / "01_elbo" / "01_elbo.ipynb").symlink_to(honest)   # another student's notebook
    (subs / "linkstudent").symlink_to(subs / "honest")
    # a slow cell and a crashing cell of the student's own: each costs only itself
    _with_cells(make_submission("01_elbo", answers, subs, "slow"),
                "import time\ntime.sleep(60)", "import ctypes\nctypes.string_at(0)  # a segfault")
    # careless but honest: a cuDNN flag and a helper named like a grading function
    _with_cells(make_submission("01_elbo", answers, subs, "careless"),
                "import torch\ntorch.backends.cudnn.benchmark = True",
                "def run(x):\n    return x\n\nrun(1)")
    # a patch hidden in a cell the student tagged like the grader's own guard cell
    _with_cells(make_submission("01_elbo", answers, subs, "guard_patch"),
                "import torch\ntorch.allclose = lambda *a, **k: True", tags=["grader-guard"])
    huge = make_submission("01_elbo", answers, subs, "huge")
    nb = json.loads(huge.read_text())
    nb["cells"] += [{"cell_type": "markdown", "metadata": {}, "source": "x"}] * 100_000
    huge.write_text(json.dumps(nb))
    huge_cells = f"{len(nb['cells']):,}"

    assert grade_main([str(subs), "--out", str(out), "--assignment", "01_elbo"]) == 0

    full = _scores(out)["honest"]
    assert full > 0 and _scores(out)["slow"] == full and _scores(out)["careless"] == full
    assert _scores(out)["guard_patch"] == 0
    assert "line 2: torch.allclose = lambda *a, **k: True replaces torch.allclose" in \
        html.unescape(_feedback(out, "guard_patch"))
    assert "Integrity" not in _feedback(out, "careless")
    feedback = _feedback(out, "slow")
    assert "time.sleep(60)" in feedback and "ctypes.string_at(0)" in feedback and "Everything else was graded" in feedback
    assert "'aa_feedback.html' is a symbolic link" in _feedback(out, "honest")
    problems = {(row[2], row[1]): row[3] for row in _problems(out)}
    assert "no 01_elbo.ipynb" in problems[("mallory", "01_elbo")]
    assert f"has {huge_cells} cells" in problems[("huge", "01_elbo")]
    assert f"more than {DEFAULTS.cells:,}" in problems[("huge", "01_elbo")]
    assert any("'linkstudent' is a symbolic link" in m for m in problems.values())
    for path, data in _every_byte_under(out):
        assert CANARY.encode() not in data, path
    assert sorted(p.name for p in (out / "feedback" / "honest" / "01_elbo").iterdir()) == ["01_elbo.html"]
    assert not list((out / "feedback").rglob("*.pt"))


@pytest.mark.slow
def test_a_hostile_lms_zip_grades_every_honest_entry(tmp_path):
    answers = alternative("01_elbo")
    good = make_submission("01_elbo", answers, tmp_path / "s", "x").read_bytes()
    blank = make_submission("01_elbo", {}, tmp_path / "s", "y").read_bytes()
    archive = tmp_path / "download.zip"
    _hostile_zip(archive, good, blank)
    out = tmp_path / "out"
    assert grade_main([str(archive), "--out", str(out), "--assignment", "01_elbo"]) == 0
    scores = _scores(out)
    assert scores["1234"] > 0 and scores["22"] == scores["1234"] == scores["33"]  # 22's newer upload is graded
    feedback = _feedback(out, "22")
    assert "bob_22_902_01_elbo-1.ipynb" in feedback and "bob_22_901_01_elbo.ipynb" in feedback
    messages = " ".join(row[3] for row in _problems(out))
    for entry in ("../evil_1_2_01_elbo.ipynb", "/abs_1_2_01_elbo.ipynb", "link_1_2_01_elbo.ipynb",
                  "nested_1_2_01_elbo.zip", "bomb_1_2_01_elbo.ipynb", "huge_1_2_01_elbo.ipynb"):
        assert f"'{entry}'" in messages
    assert not (out / "01_elbo").exists() and not (tmp_path / "evil").exists()
    origin = json.loads((out / "collected.json").read_text())["1234/01_elbo"]
    assert (origin["entry"], origin["user_id"], origin["attachment_id"]) == ("zoe_1234_5678_01_elbo.ipynb", "1234", "5678")
    # unpacked once, into submitted/ only: nothing bigger than the notebooks was written
    assert sum(p.stat().st_size for p in (out / "submitted").rglob("*") if p.is_file()) < 4 * len(good) + 4096
