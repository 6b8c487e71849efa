"""A local spawner that limits each user the way The Littlest JupyterHub does.

TLJH starts every user's server as a systemd unit in a per-user slice and puts
``limits.cpu`` / ``limits.memory`` (``c.Spawner.cpu_limit`` / ``mem_limit``) on
that cgroup: the quota sits on a parent cgroup, the server runs in a child
without a quota, and there is no cgroup namespace, so ``/sys/fs/cgroup`` shows
the machine's whole hierarchy. This spawner does the same with plain cgroup
files (no systemd needed), for the hub test (tests/test_hub.py):

- CPU: a ``tests.cpu_quota.QuotaGroup(cpu_limit, hub=True)``, the quota on the
  per-user group, the server in its ``user-server`` child;
- memory (cgroup v1): a child of the hub's own memory cgroup with
  ``memory.limit_in_bytes = mem_limit`` (so it stays inside whatever limits the
  hub itself runs under).

The server process joins both groups before it drops to the user's id and
executes (``preexec_fn``), so its kernels, terminals and ``nbgrader`` commands
inherit them. ``stop()`` ends whatever is still in the groups and removes them.
It runs every server as the hub's own Unix user (``SimpleLocalProcessSpawner``,
home ``home_dir_template``), unlike TLJH, which runs hub user NAME as the Unix
user ``jupyter-NAME``: the test's Python lives under a private /root, which
another user cannot execute. For tests only: on a real course TLJH or Zero to
JupyterHub set the same limits themselves (docs/jupyterhub.md).
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner

from tests.cpu_quota import QuotaGroup

MEMORY_V1 = Path("/sys/fs/cgroup/memory")


def _own_memory_group() -> Path | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return MEMORY_V1 / path.lstrip("/")
    return None


def _empty_and_remove(group: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while group.exists() and time.monotonic() < deadline:
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # processes left in it: end them
            for pid in (group / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            time.sleep(0.1)


class QuotaSpawner(SimpleLocalProcessSpawner):
    """``SimpleLocalProcessSpawner`` + the per-user CPU quota and memory limit."""

    quota = None
    memory_group = None
    _joins = ()

    def _record(self, path: Path) -> None:
        # every cgroup made, so that a test can remove them even after a crash of the hub
        ledger = os.environ.get("VAE_HUB_CGROUP_LEDGER")
        if ledger:
            with open(ledger, "a") as fh:
                fh.write(f"{path}\n")

    def _make_groups(self) -> list:
        joins = []
        if self.cpu_limit:
            self.quota = QuotaGroup(self.cpu_limit, hub=True).__enter__()
            self._record(self.quota.path)
            joins.append(self.quota.child / "cgroup.procs")
        if self.mem_limit:
            parent = _own_memory_group()
            if parent is None or not parent.is_dir():
                raise OSError("mem_limit is set but there is no cgroup v1 memory controller here")
            self.memory_group = parent / f"vaelab-user-{self.user.name}-{uuid.uuid4().hex[:8]}"
            self.memory_group.mkdir()
            self._record(self.memory_group)
            (self.memory_group / "memory.limit_in_bytes").write_text(str(int(self.mem_limit)))
            joins.append(self.memory_group / "cgroup.procs")
        return joins

    def make_preexec_fn(self, name):
        base = super().make_preexec_fn(name)  # cd to the user's home
        joins = [str(path) for path in self._joins]

        def preexec():
            for procs in joins:  # join the user's groups before the server executes
                with open(procs, "w") as fh:
                    fh.write(str(os.getpid()))
            base()

        return preexec

    async def start(self):
        self._joins = self._make_groups()
        try:
            return await super().start()
        except BaseException:
            self._remove_groups()
            raise

    async def stop(self, now=False):
        try:
            await super().stop(now=now)
        finally:
            self._remove_groups()

    def _remove_groups(self) -> None:
        if self.quota is not None:
            self.quota.__exit__(None, None, None)  # kills what is left in it, then removes it
            self.quota = None
        if self.memory_group is not None:
            _empty_and_remove(self.memory_group)
            self.memory_group = None
