"""A large class with several graders keeps the gradebook in PostgreSQL.
This test starts a real PostgreSQL server of its own (Debian's postgresql
package), grades into it, and checks the grades equal the SQLite run's."""
import csv
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


import pytest

from grader.grade.batch import main as grade_main
from grader.notebooks import make_submission

from .adversarial import A, FULL, HALF, KL
from .samples import alternative

pytestmark = pytest.mark.slow


def _pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


def _as_postgres(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture
def postgres():
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (Debian package `postgresql`); cannot start a server")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: initdb refuses to run as root")
    # Under /tmp itself: the server's user must be able to reach its folders
    # (pytest's own temporary folders are private to root).
    home = Path(tempfile.mkdtemp(prefix="vae-pg-"))
    data, sockets = home / "pgdata", home / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (home, sockets):
            shutil.chown(path, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for step in ([f"{bindir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust"],
                 [f"{bindir}/pg_ctl", "-D", str(data), "-w", "-l", str(home / "log"), "-o",
                  f"-k {sockets} -p {port} -c listen_addresses=''", "start"]):
        result = subprocess.run(_as_postgres(step), capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(home, ignore_errors=True)
            pytest.skip(f"could not start PostgreSQL here ({Path(step[0]).name}: {result.stderr.strip()[-200:]})")
    try:
        subprocess.run(_as_postgres([f"{bindir}/createdb", "-h", str(sockets), "-p", str(port), "-U", "postgres",
                                     "gradebook"]), check=True, capture_output=True)
        yield f"postgresql+psycopg2://postgres@/gradebook?host={sockets}&port={port}"
    finally:
        subprocess.run(_as_postgres([f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def _scores(out):
    with open(out / "grades.csv") as fh:
        return {row["student_id"]: row["score"] for row in csv.DictReader(fh)}


def test_grading_into_postgresql_matches_sqlite(postgres, tmp_path):
    subs = tmp_path / "subs"
    good = alternative(A)
    make_submission(A, good, subs, "good")
    make_submission(A, {**good, "kl_standard_normal": HALF}, subs, "half")
    assert grade_main([str(subs), "--out", str(tmp_path / "pg"), "--assignment", A, "--jobs", "2",
                       "--db-url", postgres]) == 0
    assert grade_main([str(subs), "--out", str(tmp_path / "sqlite"), "--assignment", A]) == 0
    # FULL and KL come from the released notebook's nbgrader metadata (tests/points.py)
    assert _scores(tmp_path / "pg") == _scores(tmp_path / "sqlite") == {"good": str(FULL), "half": str(FULL - KL)}

    from nbgrader.api import Gradebook

    with Gradebook(postgres) as gb:  # the grades really live in PostgreSQL
        assert gb.find_submission(A, "half").score == FULL - KL
