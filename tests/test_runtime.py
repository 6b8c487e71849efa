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


def test_threads_follow_a_quota_on_an_ancestor_cgroup_as_on_a_jupyterhub():
    """The Littlest JupyterHub's layout: the quota on the user's cgroup, the
    server in a child, the whole hierarchy visible (no cgroup namespace)."""
    from tests import cpu_quota

    if not cpu_quota.available():
        pytest.skip("no cgroup CPU controller to make a quota with (needs root)")
    with cpu_quota.QuotaGroup(1.0, hub=True) as group:
        assert _threads_in_subprocess(group.prefix()) == (1, 1)


def _fixture_tree(tmp_path, cgroup, mountinfo, files):
    (tmp_path / "proc" / "self").mkdir(parents=True)
    (tmp_path / "proc" / "self" / "cgroup").write_text(cgroup)
    (tmp_path / "proc" / "self" / "mountinfo").write_text(mountinfo)
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return str(tmp_path)


def test_cgroup_v2_quota_is_the_smallest_along_the_path(tmp_path):
    root = _fixture_tree(
        tmp_path, "0::/user.slice/user-1000.slice/jupyter-ann.service\n",
        "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
        {"sys/fs/cgroup/cpu.max": "max 100000\n",
         "sys/fs/cgroup/user.slice/cpu.max": "max 100000\n",
         "sys/fs/cgroup/user.slice/user-1000.slice/cpu.max": "150000 100000\n",  # 1.5 CPUs for the user
         "sys/fs/cgroup/user.slice/user-1000.slice/jupyter-ann.service/cpu.max": "max 100000\n"})
    assert runtime.cgroup_cpu_limit(root) == pytest.approx(1.5)


def test_cgroup_v2_in_a_container_sees_its_own_root(tmp_path):
    # without a cgroup namespace the container's own path is shown, and mounted as the root
    root = _fixture_tree(tmp_path, "0::/kubepods/pod1/c1\n",
                         "30 23 0:26 /kubepods/pod1/c1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
                         {"sys/fs/cgroup/cpu.max": "200000 100000\n", "sys/fs/cgroup/cpuset.cpus.effective": "0-3\n"})
    assert runtime.cgroup_cpu_limit(root) == pytest.approx(2.0)


def test_cgroup_v1_hybrid_quota_and_cpuset(tmp_path):
    root = _fixture_tree(
        tmp_path, "5:cpuset:/hub/ann\n4:cpu,cpuacct:/hub/ann\n0::/hub/ann\n",
        "31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "32 25 0:28 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n"
        "33 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        {"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
         "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
         "sys/fs/cgroup/cpu,cpuacct/hub/cpu.cfs_quota_us": "300000\n",
         "sys/fs/cgroup/cpu,cpuacct/hub/cpu.cfs_period_us": "100000\n",
         "sys/fs/cgroup/cpu,cpuacct/hub/ann/cpu.cfs_quota_us": "-1\n",
         "sys/fs/cgroup/cpu,cpuacct/hub/ann/cpu.cfs_period_us": "100000\n",
         "sys/fs/cgroup/cpuset/hub/ann/cpuset.cpus": "0,2\n"})
    assert runtime.cgroup_cpu_limit(root) == pytest.approx(2.0)  # the cpuset (2) is below the quota (3)


def test_no_cgroup_files_means_no_limit(tmp_path):
    assert runtime.cgroup_cpu_limit(str(tmp_path)) is None


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
