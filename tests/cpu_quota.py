"""Run a command under a real CPU quota, seen the way a container sees it.

Binder and JupyterHub give a notebook a CFS quota (say 1 CPU) on a machine
with many visible cores. ``taskset`` or ``OMP_NUM_THREADS=1`` only imitate
that. Here a cgroup gets the quota (v1 ``cpu.cfs_quota_us`` or v2
``cpu.max``), the command joins it, and in a private mount namespace that
cgroup is bound over ``/sys/fs/cgroup[/cpu]``, where containers (and
joblib/loky, which vaelab asks) read their quota. Root only; ``available()``
says whether it works here.

    with QuotaGroup(cpus=1.0) as group:
        subprocess.run(group.prefix() + ["python", "-c", "..."])
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")
PERIOD_US = 100_000

JOIN_ONLY = r"""
import os, sys
group, command = sys.argv[1], sys.argv[2:]
with open(os.path.join(group, "cgroup.procs"), "w") as fh:
    fh.write(str(os.getpid()))
os.execvp(command[0], command)
"""

JOIN = r"""
import os, sys
group, mountpoint, command = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(os.path.join(group, "cgroup.procs"), "w") as fh:
    fh.write(str(os.getpid()))
inner = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner, "sh", group, mountpoint,
                      *command])
"""


def _layout():
    if (V1 / "cpu.cfs_quota_us").exists():
        return "v1", V1
    if "cpu" in (V2 / "cgroup.controllers").read_text().split() if (V2 / "cgroup.controllers").exists() else False:
        return "v2", V2
    return None, None


class QuotaGroup:
    """``hub=True``: the way The Littlest JupyterHub limits a user: the quota
    sits on a parent cgroup, the process runs in a child of it without a
    quota, and no cgroup namespace or bind hides the rest of the hierarchy
    (``/sys/fs/cgroup`` shows the machine's root, which has no quota)."""

    def __init__(self, cpus: float = 1.0, hub: bool = False):
        self.cpus = cpus
        self.hub = hub
        self.kind, self.root = _layout()
        self.path = None
        self.child = None

    def __enter__(self):
        if self.kind is None:
            raise OSError("no cgroup CPU controller here")
        self.path = self.root / f"vaelab-quota-{uuid.uuid4().hex[:8]}"
        self.path.mkdir()
        quota = int(self.cpus * PERIOD_US)
        if self.kind == "v1":
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        if self.hub:
            self.child = self.path / "user-server"
            self.child.mkdir()
        return self

    def prefix(self) -> list:
        if self.hub:
            return [sys.executable, "-c", JOIN_ONLY, str(self.child)]
        return [sys.executable, "-c", JOIN, str(self.path), str(self.root)]

    def describe(self) -> str:
        return f"CFS quota {self.cpus:g} CPU of {os.cpu_count()} visible (cgroup {self.kind})"

    def __exit__(self, *exc):
        for path in (self.child, self.path):
            if path is not None:
                self._remove(path)

    @staticmethod
    def _remove(path: Path) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:  # still has processes: end them
                procs = (path / "cgroup.procs").read_text().split()
                for pid in procs:
                    try:
                        os.kill(int(pid), 9)
                    except (ProcessLookupError, ValueError):
                        pass
                time.sleep(0.1)


def available() -> bool:
    """Whether a quota group can be made and joined here (tried once)."""
    if os.geteuid() != 0 or not shutil.which("unshare") or _layout()[0] is None:
        return False
    try:
        with QuotaGroup(1.0) as group:
            probe = subprocess.run(group.prefix() + ["cat", str(group.root / ("cpu.cfs_quota_us" if group.kind == "v1"
                                                                                  else "cpu.max"))],
                                   capture_output=True, text=True, timeout=30)
            return probe.returncode == 0 and str(int(PERIOD_US)) in probe.stdout
    except (OSError, subprocess.SubprocessError):
        return False
