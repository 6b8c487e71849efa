"""Where code runs and how reproducibly: device choice, seeding, progress bars,
and whether nbgrader is autograding (which switches notebooks to a short
configuration)."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["get_device", "seed_everything", "progress", "autograding", "pick", "short_run", "cpu_budget",
           "configure_threads"]


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def _cgroup_dirs(root: str = "") -> list[tuple[str, str, str]]:
    """``(version, own cgroup folder, mount point)`` for the CPU controllers of
    this process's own cgroup: the path comes from ``/proc/self/cgroup`` and is
    placed under the controller's mount from ``/proc/self/mountinfo`` (relative
    to that mount's root). A hub that limits a user's cgroup without a cgroup
    namespace shows the whole hierarchy at ``/sys/fs/cgroup``; the limit is on
    the process's own folder or one of its ancestors, not at the mount's top."""
    own = {}
    for line in (_read(root + "/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in (parts[1].split(",") if parts[1] else [""]):
                own[controller] = parts[2]
    found = []
    for line in (_read(root + "/proc/self/mountinfo") or "").splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        mount_root, mountpoint = fields[3], fields[4]
        fstype, _, options = line.split(" - ", 1)[1].partition(" ")
        superoptions = options.split(" ")[-1].split(",") if options else []
        if fstype == "cgroup2" and "" in own:
            version, path = "v2", own[""]
        elif fstype == "cgroup" and ("cpu" in superoptions or "cpuset" in superoptions):
            controller = "cpu" if "cpu" in superoptions else "cpuset"
            if controller not in own:
                continue
            version, path = f"v1-{controller}", own[controller]
        else:
            continue
        relative = os.path.relpath(path, mount_root) if mount_root != "/" else path.lstrip("/")
        if relative.startswith(".."):  # our cgroup lies outside what this mount shows
            continue
        found.append((version, os.path.normpath(os.path.join(root + mountpoint, relative)), root + mountpoint))
    return found


def _ancestors(folder: str, top: str):
    while True:
        yield folder
        if os.path.normpath(folder) == os.path.normpath(top) or len(folder) <= len(top):
            return
        folder = os.path.dirname(folder)


def _cpuset_count(text: str | None) -> int | None:
    if not text or not text.strip():
        return None
    count = 0
    for part in text.strip().split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count


def cgroup_cpu_limit(root: str = "") -> float | None:
    """The smallest CPU quota (in CPUs) on this process's own cgroup and its
    ancestors, cgroup v1 (``cpu.cfs_quota_us / cpu.cfs_period_us``) or v2
    (``cpu.max``), also capped by its ``cpuset``; None when nothing limits it.
    ``root`` prefixes every path read (for tests on fixture trees)."""
    limits = []
    for version, folder, top in _cgroup_dirs(root):
        for level in _ancestors(folder, top):
            if version == "v2":
                text = (_read(os.path.join(level, "cpu.max")) or "").split()
                if len(text) == 2 and text[0] != "max":
                    limits.append(int(text[0]) / int(text[1]))
                cpus = _cpuset_count(_read(os.path.join(level, "cpuset.cpus.effective")))
                if cpus and level == folder:
                    limits.append(float(cpus))
            elif version == "v1-cpu":
                quota = (_read(os.path.join(level, "cpu.cfs_quota_us")) or "").strip()
                period = (_read(os.path.join(level, "cpu.cfs_period_us")) or "").strip()
                if quota.lstrip("-").isdigit() and period.isdigit() and int(quota) > 0 and int(period) > 0:
                    limits.append(int(quota) / int(period))
            elif version == "v1-cpuset" and level == folder:
                cpus = _cpuset_count(_read(os.path.join(level, "cpuset.cpus")))
                if cpus:
                    limits.append(float(cpus))
    return min(limits) if limits else None


def cpu_budget() -> int:
    """How many CPUs this process may really use: the affinity mask and the
    CPU quota of its *own* cgroup and every ancestor (v1 and v2, as on Binder,
    Kubernetes and The Littlest JupyterHub, which limits a user's cgroup
    without a cgroup namespace), not the number of cores the machine shows.
    A fractional quota rounds up (the kernel lets it burst). joblib's answer
    (which also honours ``LOKY_MAX_CPU_COUNT``) is kept as a further cap."""
    import math

    from joblib import cpu_count

    budget = max(1, int(cpu_count(only_physical_cores=False)))
    try:
        budget = min(budget, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        pass
    try:
        limit = cgroup_cpu_limit()
    except (OSError, ValueError):
        limit = None
    if limit is not None:
        budget = min(budget, max(1, math.ceil(limit - 1e-9)))
    return max(1, budget)


def _explicit_threads() -> int | None:
    for name in ("VAELAB_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def configure_threads(threads: int | None = None) -> int:
    """Size PyTorch's thread pool to the CPU budget and return the count.

    An explicit ``threads``, ``VAELAB_THREADS`` or ``OMP_NUM_THREADS`` wins;
    otherwise :func:`cpu_budget`. Two threads on a one-CPU quota make a training
    step slower than one thread, and far slower when another process is busy,
    so ``import vaelab`` calls this once."""
    threads = threads or _explicit_threads() or cpu_budget()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` (or the environment variable ``VAELAB_DEVICE``) forces one, e.g.
    ``"cpu"`` to compare speeds; asking for a device that is missing is an error
    rather than a silent fallback.
    """
    prefer = prefer or os.environ.get("VAELAB_DEVICE")
    if prefer:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("VAELAB_DEVICE asks for CUDA, but torch.cuda.is_available() is False")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError("VAELAB_DEVICE asks for MPS, but it is not available on this machine")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python's, NumPy's and PyTorch's generators (all devices).

    Returns a fresh CPU ``torch.Generator`` seeded the same way, for code that
    prefers an explicit generator to the global one.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def autograding() -> bool:
    """True while nbgrader executes the notebook (``nbgrader autograde`` or
    ``validate`` set ``NBGRADER_EXECUTION``). Slow cells switch to a short
    configuration then, so a submission grades in seconds. ``VAELAB_FULL_RUN=1``
    keeps the full configuration (benchmarks time both)."""
    if os.environ.get("VAELAB_FULL_RUN"):
        return False
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def pick(normal, short):
    """``short`` while autograding, ``normal`` otherwise: ``epochs = pick(10, 1)``."""
    return short if autograding() else normal


def short_run(config: dict, **short) -> dict:
    """``config`` with the entries of ``short`` replacing its own while
    autograding, ``config`` itself otherwise: the grader's short run lives
    here, not in an ``if`` in the student's set-up cell::

        CONFIG = short_run(CONFIG, epochs=1, sweep_epochs=1)
    """
    return {**config, **short} if autograding() else config


def progress(iterable=None, **kwargs):
    """A tqdm progress bar that renders as a widget in Jupyter and as text in a
    terminal. It is silent while autograding, so feedback files stay clean."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", autograding() or None)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
