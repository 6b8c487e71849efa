"""Run one command as the owner of everything it starts, then end it all.

    python supervise.py --timeout SECONDS --log FILE [--status FILE] -- COMMAND ...

Why a process of its own: grading starts nbgrader, which starts a sandboxed
kernel launcher (``unshare``) in a session of its own, which starts the
kernel, which runs student code that may fork, daemonize or ignore signals.
Process groups and sessions do not contain such a tree: a child that calls
``setsid`` leaves both. This supervisor makes itself a *child subreaper*
(``PR_SET_CHILD_SUBREAPER``), so every descendant that is orphaned, however
it detached, is re-parented to it rather than to init and stays findable as
a descendant. When the command exits, times out, or the supervisor is told
to stop (SIGTERM/SIGINT/SIGHUP, or its own parent dying: ``PR_SET_PDEATHSIG``),
it kills every descendant with SIGKILL, sweeping until none is left, and
reaps them. The kernel's PID namespace (grader/sandbox/kernel_launcher.py) dies with
its first process, which ``unshare --kill-child`` ties to unshare.

Output never goes through a pipe: the command writes to --log, so a
descendant that keeps its inherited stdout open cannot block anyone. Exit
status: the command's, or 124 after a timeout, 130 when stopped. --status
gets a JSON line saying which. A standalone script: it imports nothing from
the course.
"""
import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def descendants(root: int) -> list:
    """PIDs whose parent chain leads to ``root`` (read from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        # the command name may hold spaces and parentheses: the fields start after the last ')'
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1:
            parents[int(entry)] = int(fields[1])
    found, frontier = [], [root]
    children = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    while frontier:
        pid = frontier.pop()
        for child in children.get(pid, []):
            found.append(child)
            frontier.append(child)
    return found


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_tree(root: int, patience: float = 30.0) -> int:
    """SIGKILL every descendant of ``root`` until none is left (a fork bomb
    is outpaced: each sweep kills all that exist, and the killed cannot fork).
    Returns how many processes were killed."""
    killed, deadline = set(), time.monotonic() + patience
    while time.monotonic() < deadline:
        pids = descendants(root)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        _reap()
        time.sleep(0.01)
    _reap()
    return len(killed)


class _Stop(Exception):
    pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=0, help="seconds; 0 for none")
    parser.add_argument("--log", required=True)
    parser.add_argument("--status", default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")

    subreaper = _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # the coordinator died: clean up, then go
    if os.getppid() == 1:  # it died before the line above took effect
        return 130

    def stop(number, _frame):
        raise _Stop(number)

    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, stop)
    status = {"subreaper": subreaper, "timed_out": False, "stopped": False}
    code = 130
    start = time.monotonic()
    try:
        with open(args.log, "ab", buffering=0) as log:
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            code = child.wait(timeout=args.timeout or None)
        except subprocess.TimeoutExpired:
            status["timed_out"] = True
            code = 124
    except _Stop:
        status["stopped"] = True
        code = 130
    finally:
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(number, signal.SIG_IGN)  # finish the sweep whatever arrives now
        status["killed"] = kill_tree(os.getpid())
        status["seconds"] = round(time.monotonic() - start, 3)
        status["returncode"] = code
        if args.status:
            with open(args.status, "w") as fh:
                json.dump(status, fh)
    return code


if __name__ == "__main__":
    sys.exit(main())
