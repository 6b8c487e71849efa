"""Where code runs and how reproducibly: device choice, seeding, progress bars,
and whether nbgrader is autograding (which switches notebooks to a short
configuration)."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["get_device", "seed_everything", "progress", "autograding", "pick", "cpu_budget", "configure_threads"]


def cpu_budget() -> int:
    """How many CPUs this process may really use: the affinity mask and the
    cgroup CPU quota (v1 and v2, as on Binder and JupyterHub), not the number of
    cores the machine shows. Computed by joblib (loky), which also honours
    ``LOKY_MAX_CPU_COUNT``."""
    from joblib import cpu_count

    return max(1, int(cpu_count(only_physical_cores=False)))


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


def progress(iterable=None, **kwargs):
    """A tqdm progress bar that renders as a widget in Jupyter and as text in a
    terminal. It is silent while autograding, so feedback files stay clean."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", autograding() or None)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
