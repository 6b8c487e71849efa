"""grader/sandbox/supervise.py owns every process its command starts: daemons that
leave the session, processes that ignore signals and bounded fork bombs all
end with it, and no pipe can keep the caller waiting."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.grade.attempt import SUPERVISOR
from grader.sandbox.supervise import descendants

MARK = "vaelab-supervise-test"


def _alive(tag: str) -> list:
    """PIDs of processes whose command line carries ``tag`` (what `ps` shows)."""
    out = subprocess.run(["ps", "-ewwo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if tag in line and "ps -ewwo" not in line]


def _supervise(tmp_path, script: str, timeout: float, tag: str, wait: float = 120):
    log, status = tmp_path / "log", tmp_path / "status.json"
    started = time.monotonic()
    # stdout is a pipe here on purpose: the daemon below inherits nothing from it
    proc = subprocess.run([sys.executable, str(SUPERVISOR), "--timeout", str(timeout), "--log", str(log),
                           "--status", str(status), "--", sys.executable, "-c", script, tag],
                          capture_output=True, text=True, timeout=wait)
    return proc.returncode, json.loads(status.read_text()), log.read_text(), time.monotonic() - started


DAEMON = """
import os, sys, time
if os.fork() == 0:            # detach twice, new session, keep stdout (the log) open
    os.setsid()
    if os.fork() == 0:
        os.execvp(sys.executable, [sys.executable, "-c", "import time; time.sleep(3600)", sys.argv[1] + "-daemon"])
    os._exit(0)
print("parent done", flush=True)
"""

DEAF = """
import signal, sys, time
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
print("ignoring signals", flush=True)
while True:
    time.sleep(0.1)
"""

FORK_BOMB = """
import os, sys, time
for _ in range(6):            # bounded: 2**6 = 64 processes, all sleeping
    if os.fork() == 0:
        continue
time.sleep(3600)
"""


def test_a_daemon_that_left_the_session_is_killed_when_the_command_ends(tmp_path):
    tag = f"{MARK}-{os.getpid()}-a"
    code, status, log, seconds = _supervise(tmp_path, DAEMON, 60, tag)
    assert code == 0 and "parent done" in log
    assert status["subreaper"] and status["killed"] >= 1
    assert seconds < 30, "the daemon held the caller"
    assert _alive(tag) == []


def test_a_command_that_ignores_signals_is_killed_at_its_timeout(tmp_path):
    tag = f"{MARK}-{os.getpid()}-b"
    code, status, log, seconds = _supervise(tmp_path, DEAF, 3, tag)
    assert code == 124 and status["timed_out"]
    assert "ignoring signals" in log
    assert 2.5 < seconds < 30
    assert _alive(tag) == []


def test_a_bounded_fork_bomb_is_swept(tmp_path):
    tag = f"{MARK}-{os.getpid()}-c"
    code, status, _, _ = _supervise(tmp_path, FORK_BOMB, 5, tag)
    assert code == 124 and status["killed"] >= 32
    assert _alive(tag) == []


def test_stopping_the_supervisor_ends_its_whole_tree(tmp_path):
    tag = f"{MARK}-{os.getpid()}-d"
    log, status = tmp_path / "log", tmp_path / "status.json"
    proc = subprocess.Popen([sys.executable, str(SUPERVISOR), "--log", str(log), "--status", str(status), "--",
                             sys.executable, "-c", DEAF + "", tag], start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "ignoring" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.1)
    assert descendants(proc.pid), "the command did not start"
    proc.send_signal(signal.SIGTERM)  # what the batch does on Ctrl-C
    assert proc.wait(timeout=30) == 130
    assert json.loads(status.read_text())["stopped"]
    assert _alive(tag) == []


def test_the_supervisor_dies_with_its_parent_and_takes_the_tree(tmp_path):
    """The coordinator itself is killed (kill -9): the supervisor gets
    PR_SET_PDEATHSIG and still ends the command's tree."""
    tag = f"{MARK}-{os.getpid()}-e"
    log = tmp_path / "log"
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, time\n"
                               f"subprocess.Popen([sys.executable, {str(SUPERVISOR)!r}, '--log', {str(log)!r}, '--',"
                               f" sys.executable, '-c', {DEAF!r}, {tag!r}])\n"
                               "time.sleep(3600)\n"], start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _alive(tag):
        time.sleep(0.1)
    assert _alive(tag), "the command did not start"
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(tag):
        time.sleep(0.2)
    assert _alive(tag) == []


@pytest.fixture(autouse=True)
def _nothing_left(request):
    yield
    leftovers = _alive(f"{MARK}-{os.getpid()}")
    for pid in leftovers:  # never leave a test's processes behind, even when it failed
        os.kill(pid, signal.SIGKILL)
