"""The kernel fork server (grader/sandbox/zygote.py): a kernel forked from the
pre-imported template gets the same sandbox as one started the plain way,
dies with its client, hears its client's signals, and a missing zygote
costs only the plain start."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from grader.grade import seal

PROBE = r"""
import ctypes, json, os, socket
libc = ctypes.CDLL(None, use_errno=True)
found = {{}}
found["fds"] = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
found["netns"] = os.readlink("/proc/self/ns/net")
found["pid"] = os.getpid()
found["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
found["socket_visible"] = os.path.exists({sock!r})
found["secret_visible"] = os.path.exists({secret!r})
found["unshare"] = libc.unshare(0x00020000)  # a new mount namespace: needs a capability
found["mount"] = libc.mount(b"none", b"/", None, ctypes.c_ulong(16384 | (1 << 18)), None)
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
found["caps"] = [int(status[k], 16) for k in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb")]
found["no_new_privs"] = status["NoNewPrivs"].strip()
found["cwd"] = os.getcwd()
found["home"] = os.environ["HOME"]
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect({sock!r})
    found["connected"] = True
except OSError as err:
    found["connected"] = type(err).__name__
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def zygote():
    path, why = seal.zygote()
    if path is None:
        if seal._zygote_wanted():  # not root, or switched off
            pytest.skip(f"no zygote here: {seal._zygote_wanted()}")
        pytest.fail(f"the zygote should run here but was refused: {why}")
    yield path
    seal.cleanup()


def _request(tmp_path, sock, code):
    # as seal.prepare does: the home is inside the batch's kernel root, which also holds the zygote's socket
    home = seal._kernel_root() / f"home-{tmp_path.name}"
    home.mkdir()
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "answer").write_text("42")
    (tmp_path / "conn.json").write_text("{}")
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"socket": str(sock), "home": str(home), "hide": [str(tmp_path / "secret")],
                                   "kernels_root": str(seal._kernel_root()), "exec": code,
                                   "fallback": [sys.executable, "-c", "print('plain start')"]}))
    return [sys.executable, "-I", "-S", str(seal.CLIENT), str(request), str(tmp_path / "conn.json")]


def _zygote_descendants(zygote_pid):
    from grader.sandbox.supervise import descendants

    return descendants(zygote_pid)


def _alive(pids):
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(pid)
        except OSError:
            pass
    return alive


def test_a_forked_kernel_is_sealed_like_a_plain_one(tmp_path, zygote):
    """Every property the plain launcher gives, checked from inside, in the
    network namespace of the process that asked (here: an isolated one)."""
    secret = str(tmp_path / "secret" / "answer")
    argv = _request(tmp_path, zygote, PROBE.format(sock=str(zygote), secret=secret))
    run = subprocess.run(["unshare", "--net", *argv], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    asking = subprocess.run(["unshare", "--net", "readlink", "/proc/self/ns/net"], capture_output=True,
                            text=True).stdout.strip()
    assert found["netns"] != os.readlink("/proc/self/ns/net")  # not the grader's network
    assert found["netns"].startswith("net:") and asking.startswith("net:")
    assert found["fds"][:3] == [0, 1, 2] and len(found["fds"]) <= 4  # stdio and listdir's own descriptor
    assert found["pid"] == 2 and found["processes"] == [1, 2]  # the namespace's init and the kernel
    assert not found["socket_visible"] and found["connected"] != True  # noqa: E712
    assert not found["secret_visible"]
    assert found["unshare"] == -1 and found["mount"] == -1
    assert found["caps"] == [0, 0, 0, 0, 0] and found["no_new_privs"] == "1"
    assert found["cwd"] == found["home"] == str(seal._kernel_root() / f"home-{tmp_path.name}")


def test_the_kernel_ends_with_its_client_whatever_it_started(tmp_path, zygote):
    code = ("import os, sys, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    time.sleep(600)\n"
            "print('ready', flush=True)\n"
            "time.sleep(600)\n")
    [zpid] = [proc.pid for proc, _, _ in seal._ZYGOTE]
    client = subprocess.Popen(_request(tmp_path, zygote, code), stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "ready"
        started = _zygote_descendants(zpid)
        assert len(started) >= 4  # handler, init, kernel, the kernel's daemon
        client.kill()
        client.wait()
        deadline = time.monotonic() + 30
        while _alive(started) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _alive(started) == []  # gone, not merely re-parented away from the zygote
    finally:
        client.kill()
        client.wait()


def test_signals_reach_the_kernel_and_its_status_comes_back(tmp_path, zygote):
    code = ("import sys, time\n"
            "try:\n"
            "    print('ready', flush=True)\n"  # inside the try: the signal may come as soon as it is read
            "    time.sleep(600)\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted', flush=True)\n"
            "    sys.exit(3)\n")
    client = subprocess.Popen(_request(tmp_path, zygote, code), stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "ready"
        client.send_signal(signal.SIGINT)
        assert client.stdout.readline().strip() == "interrupted"
        assert client.wait(timeout=30) == 3
    finally:
        client.kill()
        client.wait()


def test_without_a_zygote_the_kernel_starts_the_plain_way(tmp_path):
    argv = _request(tmp_path, tmp_path / "no-such.sock", "print('forked')")
    run = subprocess.run([*argv, "--extra-option"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0
    assert run.stdout.strip() == "plain start"


def test_switching_it_off_is_honoured(monkeypatch):
    monkeypatch.setenv("VAELAB_ZYGOTE", "off")
    path, why = seal.zygote()
    assert path is None and "VAELAB_ZYGOTE" in why


def _nbgrader_client(tmp_path, sock):
    from grader.grade.attempt import NBGRADER_CLI

    request = tmp_path / "nbgrader-request.json"
    request.write_text(json.dumps({"kind": "nbgrader", "socket": str(sock),
                                   "fallback": [sys.executable, str(NBGRADER_CLI)]}))
    return [sys.executable, "-I", "-S", str(seal.CLIENT), str(request)]


def test_a_forked_nbgrader_answers_as_the_plain_one(tmp_path, zygote):
    from grader.grade.attempt import NBGRADER_CLI

    forked = subprocess.run([*_nbgrader_client(tmp_path, zygote), "--version"], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    plain = subprocess.run([sys.executable, str(NBGRADER_CLI), "--version"], capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)
    assert forked.returncode == plain.returncode == 0
    assert forked.stdout == plain.stdout and forked.stdout.strip()


def test_what_a_forked_nbgrader_leaves_behind_is_swept(tmp_path, zygote):
    """nbgrader runs the course's config file: here it starts a daemon that
    leaves its session. The handler, its subreaper, kills it when nbgrader ends."""
    mark = f"vaelab-zygote-test-{tmp_path.name}"
    (tmp_path / "nbgrader_config.py").write_text(
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execvp(sys.executable, [sys.executable, '-c', 'import time; time.sleep(3600)', {mark!r}])\n"
        "    os._exit(0)\n")
    run = subprocess.run([*_nbgrader_client(tmp_path, zygote), "db", "student", "list"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "There are 0 students in the database" in run.stdout
    deadline = time.monotonic() + 30
    while _marked(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marked(mark) == []


def _marked(tag):
    out = subprocess.run(["ps", "-ewwo", "pid=,stat=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if tag in line and "ps -ewwo" not in line and " Z" not in line]
