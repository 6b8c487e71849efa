"""Limits for running untrusted notebooks under ``make grade``.

Each limit is applied where the operating system allows it and reported
either way (``describe()``), so an instructor knows what was enforced:

- per-cell timeout: nbgrader's own (``VAELAB_CELL_TIMEOUT``, seconds);
- memory cap: RLIMIT_AS (via ``prlimit``) on the grading process and its
  kernel (``VAELAB_MEMORY_CAP_MB``); an allocation past it fails inside the kernel;
- no network: a fresh network namespace (``unshare --net``) with only a
  loopback interface, which the kernel needs to talk to nbgrader;
- exit guard: a first cell, added to the grader's copy only, that turns
  ``os._exit``/``os.abort`` into an ordinary exception, so a submission
  cannot kill its kernel that way.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess

CELL_TIMEOUT = int(os.environ.get("VAELAB_CELL_TIMEOUT", "120"))
MEMORY_CAP_MB = int(os.environ.get("VAELAB_MEMORY_CAP_MB", "3072"))

GUARD_CELL = """\
# Added by the grader (not part of your submission): os._exit and os.abort are
# disabled while grading, so one call cannot end the whole run.
import os as _grader_os


def _grader_blocked(*args, **kwargs):
    raise SystemExit("os._exit/os.abort are disabled while grading")


_grader_os._exit = _grader_os.abort = _grader_blocked
del _grader_blocked
"""


@functools.lru_cache(maxsize=1)
def network_isolation() -> list:
    """The command prefix that isolates the network, or [] where unavailable."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        return []
    inner = ["sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    for prefix in (["unshare", "--net"], ["unshare", "--net", "--map-root-user"]):
        try:
            probe = subprocess.run([*prefix, *inner, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return [*prefix, *inner]
    return []


def _memory_cap_mb() -> int:
    return int(os.environ.get("VAELAB_MEMORY_CAP_MB", MEMORY_CAP_MB))


def memory_limit() -> list:
    """``prlimit --as=...`` (inherited by the kernel), or [] where unavailable.
    A command prefix rather than a preexec_fn, which is unsafe with threads."""
    cap_mb = _memory_cap_mb()
    if cap_mb <= 0 or not shutil.which("prlimit"):
        return []
    return ["prlimit", f"--as={cap_mb * 1024 * 1024}", "--"]


def wrap(command: list) -> list:
    """The command with every available limit applied."""
    return [*memory_limit(), *network_isolation(), *command]


def describe() -> dict:
    net = network_isolation()
    return {
        "cell_timeout_s": int(os.environ.get("VAELAB_CELL_TIMEOUT", CELL_TIMEOUT)),
        "memory_cap_mb": _memory_cap_mb() if memory_limit() else "not enforced (prlimit unavailable)",
        "network": ("isolated (" + " ".join(net[:3]) + ")") if net else "not isolated (unshare unavailable here)",
        "exit_guard": True,
    }
