"""vaelab.runtime: device choice, seeding, autograde mode, progress bars."""
import os
import random

import numpy as np
import pytest
import torch

from vaelab import runtime


def test_device_falls_back_to_cpu_without_accelerators(monkeypatch):
    monkeypatch.delenv("VAELAB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.get_device() == torch.device("cpu")


def test_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.delenv("VAELAB_DEVICE", raising=False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.get_device().type == "mps"


def test_forcing_a_missing_device_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("VAELAB_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="CUDA"):
        runtime.get_device()
    monkeypatch.setenv("VAELAB_DEVICE", "cpu")
    assert runtime.get_device() == torch.device("cpu")


def test_seed_everything_repeats_all_three_generators():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    runtime.seed_everything(7)
    first = draw()
    gen = runtime.seed_everything(7)
    assert draw() == first
    assert torch.equal(torch.rand(3, generator=gen), torch.rand(3, generator=torch.Generator().manual_seed(7)))


def test_autograde_mode_switches_configuration(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not runtime.autograding() and runtime.pick(10, 1) == 10
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert runtime.autograding() and runtime.pick(10, 1) == 1


def test_progress_counts_and_is_silent_when_autograding(monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    bar = runtime.progress(range(5), desc="x")
    assert list(bar) == [0, 1, 2, 3, 4]
    assert bar.disable
    assert capsys.readouterr().err == ""


def test_full_run_overrides_autograde_mode(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setenv("VAELAB_FULL_RUN", "1")
    assert not runtime.autograding() and runtime.pick(10, 1) == 10


# -- threads follow the CPU budget, not the visible core count -------------
def _threads_in_subprocess(prefix=(), **env_changes):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "VAELAB_THREADS")}
    env.update(env_changes)
    done = subprocess.run([*prefix, sys.executable, "-c",
                           "import vaelab, torch; print(torch.get_num_threads(), vaelab.cpu_budget())"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    threads, budget = map(int, done.stdout.split())
    return threads, budget


def test_threads_follow_the_affinity_mask():
    import shutil

    if not shutil.which("taskset"):
        pytest.skip("taskset is not installed")
    assert _threads_in_subprocess(["taskset", "-c", "0"]) == (1, 1)


def test_threads_follow_a_real_cpu_quota():
    """A 1-CPU CFS quota with every core visible, as on Binder."""
    from tests import cpu_quota

    if not cpu_quota.available():
        pytest.skip("no cgroup CPU controller to make a quota with (needs root)")
    with cpu_quota.QuotaGroup(1.0) as group:
        assert _threads_in_subprocess(group.prefix()) == (1, 1)
    if (os.cpu_count() or 1) >= 2:
        with cpu_quota.QuotaGroup(1.5) as group:  # a fractional quota rounds up, as the kernel lets it burst
            assert _threads_in_subprocess(group.prefix()) == (2, 2)


def test_threads_without_limits_use_every_allowed_core():
    allowed = len(os.sched_getaffinity(0))
    threads, budget = _threads_in_subprocess()
    assert budget <= allowed and threads == budget
    if not _quota_here():
        assert budget == allowed


def _quota_here() -> bool:
    for path in ("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"):
        try:
            text = open(path).read().split()[0]
        except (OSError, IndexError):
            continue
        if text not in ("max", "-1"):
            return True
    return False


def test_an_explicit_thread_count_wins():
    assert _threads_in_subprocess(OMP_NUM_THREADS="3")[0] == 3
    assert _threads_in_subprocess(VAELAB_THREADS="2", OMP_NUM_THREADS="5")[0] == 2
