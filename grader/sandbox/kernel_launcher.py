"""Start a grading kernel in a sandbox of its own (the kernel command of the
worker's ``python3`` kernelspec, written by grader/grade/seal.py).

    [unshare --mount --pid ...] python kernel_launcher.py --home DIR
        [--rootfs DIR --allow PATH ... --tmp-mb N --home-mb N --cgroups JSON] [--file-mb N]
        [--hide PATH ...] [--kernels-root DIR] --drop-capabilities PYTHON CONNECTION_FILE

Inside a private mount and PID namespace (when ``unshare`` put it there):
the process joins a cgroup of its own (``--cgroups``), hands the home to a
fresh unprivileged user (when the grader is the machine's root), builds an
allow-list file system on --rootfs (:func:`build_root`: the --allow paths
read-only, the home writable (with --home-mb it must be the capped mount
the grader made on it: seal.prepare), a private /tmp and /dev/shm) and pivots into
it. ipykernel is then started through ``setpriv`` as that user, with every
capability dropped and no way to gain one, so the kernel can neither undo
the mounts nor look at other processes. This script stays as the
namespace's first process (PID 1, whose special signal rules the kernel must
not inherit): it passes signals on and exits with the kernel's status.
Without a namespace only the home and environment change. A standalone
script on purpose: it imports nothing from the course; grader/sandbox/zygote.py
builds the same sandbox with the functions here.
"""
import argparse
import ctypes
import os
import platform
import secrets
import shutil
import signal

_libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}.get(platform.machine())
# The devices a kernel may open; everything else of /dev is absent.
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
# A kernel's own user when the grader is root: above every ordinary and system user, below 2**31.
FIRST_KERNEL_UID = 1 << 20


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def sys_mount(source, target, fstype=None, flags=0, data=None) -> None:
    """mount(2) through libc: no ``mount`` process per call."""
    enc = (lambda v: None if v is None else os.fsencode(v))
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


# statvfs flags a bind mount must keep when remounted (in a user namespace the kernel refuses to clear them)
_KEPT = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
         (getattr(os, "ST_NOATIME", 1024), 1024), (getattr(os, "ST_NODIRATIME", 2048), 2048),
         (getattr(os, "ST_RELATIME", 4096), 1 << 21))


def _remount(target, flags) -> None:
    kept = os.statvfs(target).f_flag
    for st, ms in _KEPT:
        if kept & st:
            flags |= ms
    sys_mount(None, target, None, MS_BIND | MS_REMOUNT | flags)


def _bind(source, target, writable=False) -> None:
    """Bind ``source`` at ``target``, with every mount below it, read-only unless ``writable``."""
    sys_mount(source, target, None, MS_BIND | MS_REC)
    flags = MS_NOSUID | MS_NODEV | (0 if writable else MS_RDONLY)
    _remount(target, flags)
    if writable:
        return
    with open("/proc/self/mountinfo") as fh:
        below = [line.split()[4] for line in fh]
    for point in below:
        if point.startswith(target.rstrip("/") + "/"):
            try:
                _remount(point.replace("\\040", " "), flags)
            except OSError:  # a mount that cannot be made read-only (it stays as the system has it)
                pass


def _mountpoint_for(source, target) -> None:
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if os.path.isdir(source):
        os.makedirs(target, mode=0o755, exist_ok=True)
    elif not os.path.exists(target):
        with open(target, "w"):
            pass


def real_root() -> bool:
    """Whether this process is the machine's root: uid 0 with the identity uid
    map (in a user namespace only root is mapped, so no other user exists)."""
    try:
        with open("/proc/self/uid_map") as fh:
            whole = fh.read().split() == ["0", "0", "4294967295"]
    except OSError:
        whole = False
    return os.geteuid() == 0 and whole


def kernel_uid() -> int | None:
    """A fresh, unprivileged user for one kernel where :func:`real_root`, else
    None (the read-only mounts then do the work alone)."""
    if not real_root():
        return None
    return FIRST_KERNEL_UID + secrets.randbelow((1 << 31) - FIRST_KERNEL_UID - 1)


def give_home(home, uid) -> None:
    """Hand the kernel's home (and what the grader put in it) to its user."""
    if uid is None:
        return
    for folder, dirs, files in os.walk(home):
        os.chown(folder, uid, uid, follow_symlinks=False)
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)


def cgroup_dirs(controllers=("memory", "pids", "cpu")) -> dict:
    """controller -> this process's own cgroup folder, for each cgroup v1
    hierarchy mounted here that has the controller (read from
    /proc/self/cgroup and /proc/self/mountinfo, so a container's or a hub
    user's own cgroup is found, not the hierarchy's root)."""
    own = {}
    try:
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                _, names, path = line.rstrip("\n").split(":", 2)
                for name in names.split(","):
                    own[name] = path
        with open("/proc/self/mountinfo") as fh:
            mounts = [line.split() for line in fh]
    except OSError:
        return {}
    found = {}
    for fields in mounts:
        dash = fields.index("-")
        if fields[dash + 1] != "cgroup":
            continue
        root, point, options = fields[3], fields[4], fields[dash + 3].split(",")
        for name in controllers:
            path = own.get(name)
            if name in options and path is not None and name not in found:
                if path == root or path.startswith(root.rstrip("/") + "/"):
                    rel = path[len(root.rstrip("/")):].lstrip("/")
                    folder = os.path.join(point, rel)
                    if os.path.exists(os.path.join(folder, "cgroup.procs")):
                        found[name] = folder
    return found


def cgroup2_dir(cgroup_file="/proc/self/cgroup", mountinfo="/proc/self/mountinfo") -> str | None:
    """This process's own folder in the unified (cgroup v2) hierarchy: its
    ``0::PATH`` line of /proc/self/cgroup under the cgroup2 mount whose root
    holds it; None where no cgroup2 file system is mounted here."""
    try:
        with open(cgroup_file) as fh:
            path = next((line.rstrip("\n")[3:] for line in fh if line.startswith("0::")), None)
        with open(mountinfo) as fh:
            mounts = [line.split() for line in fh]
    except OSError:
        return None
    if path is None:
        return None
    for fields in mounts:
        dash = fields.index("-")
        root, point = fields[3], fields[4].replace("\\040", " ")
        if fields[dash + 1] == "cgroup2" and (path == root or path.startswith(root.rstrip("/") + "/")):
            folder = os.path.join(point, path[len(root.rstrip("/")):].lstrip("/"))
            if os.path.exists(os.path.join(folder, "cgroup.procs")):
                return folder
    return None


class CgroupFS:
    """The three operations every cgroup change here goes through (v1 and v2):
    a test of the v2 rules replaces them with a simulation of cgroupfs
    (tests/test_sandbox_walls.py, a fake tree in a temporary folder)."""

    @staticmethod
    def mkdir(path):
        os.mkdir(path, 0o755)

    @staticmethod
    def write(path, value):
        with open(path, "w") as fh:
            fh.write(str(value))

    @staticmethod
    def read(path):
        with open(path) as fh:
            return fh.read()


CGFS = CgroupFS


def enter_cgroup(cgroups: dict, limits: dict, back: dict | None = None) -> list:
    """Move this process into a new cgroup of its own under each batch
    folder in ``cgroups`` (controller -> folder), with ``limits``
    (controller -> {file: value}), so the whole process tree that it starts
    shares one memory cap, one pid cap and one CPU quota. Returns what
    :func:`leave_cgroup` and :func:`remove_cgroup` need (descriptors opened
    now, so they still work after the pivot). ``back`` (controller ->
    folder) is where :func:`leave_cgroup` returns: the batch folder itself
    by default (cgroup v1); a leaf for cgroup v2, whose batch folder, having
    controllers for its children, may hold no process."""
    name = f"kernel-{os.getpid()}-{secrets.token_hex(3)}"
    held = []
    for controller, batch in sorted(cgroups.items()):
        child = os.path.join(batch, name)
        CGFS.mkdir(child)
        home = (back or {}).get(controller, batch)
        held.append((os.open(batch, os.O_RDONLY | os.O_DIRECTORY), name,
                     os.open(os.path.join(home, "cgroup.procs"), os.O_WRONLY)))
        for key, value in limits.get(controller, {}).items():
            CGFS.write(os.path.join(child, key), value)
    for controller, batch in sorted(cgroups.items()):
        CGFS.write(os.path.join(batch, name, "cgroup.procs"), os.getpid())
    return held


def leave_cgroup(held) -> None:
    """This process back into the batch's cgroups (its children stay)."""
    for _, _, back in held:
        os.write(back, str(os.getpid()).encode())


def remove_cgroup(held, attempts=50) -> None:
    """Remove the kernel's cgroups once every process in them has ended."""
    import time

    for batch_fd, name, back in held:
        for _ in range(attempts):
            try:
                os.rmdir(name, dir_fd=batch_fd)
                break
            except FileNotFoundError:
                break
            except OSError:  # still busy: processes of the namespace are being reaped
                time.sleep(0.02)
        os.close(batch_fd)
        os.close(back)


def build_root(rootfs, home, allow, hide=(), tmp_mb=256, proc=False) -> None:
    """In a private mount namespace (the caller's, already unshared and
    private): an allow-list file system, then pivot into it.

    ``rootfs`` (an empty folder) gets a small tmpfs holding only: every path
    in ``allow``, bound read-only at its own path (the Python environment, the
    vaelab package, /usr, /etc ...); the kernel's ``home``, bound writable; a
    private ``/tmp`` and ``/dev/shm`` of ``tmp_mb`` MB each; a ``/dev`` with
    the DEVICES only; an empty ``/proc`` (the PID namespace's init mounts its
    own; ``proc=True`` mounts it here). Paths in ``hide`` that lie inside an
    allowed path are covered. Nothing else of the machine exists in it: other
    checkouts, /root, /home, other kernels' homes, the grading folders."""
    rootfs = os.path.abspath(rootfs)
    sys_mount("tmpfs", rootfs, "tmpfs", MS_NOSUID | MS_NODEV, "size=2m,mode=755")
    os.makedirs(rootfs + "/dev", mode=0o755)
    sys_mount("tmpfs", rootfs + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    for device in DEVICES:
        if os.path.exists("/dev/" + device):
            _mountpoint_for("/dev/" + device, rootfs + "/dev/" + device)
            sys_mount("/dev/" + device, rootfs + "/dev/" + device, None, MS_BIND)
    for name, link in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                       ("stderr", "/proc/self/fd/2")):
        os.symlink(link, rootfs + "/dev/" + name)
    for folder in ("/tmp", "/dev/shm"):  # private, size-capped, gone with the namespace; first, so
        # that an allowed path or a home under /tmp (a checkout in /tmp) is bound on top of it
        os.makedirs(rootfs + folder, mode=0o755, exist_ok=True)
        sys_mount("tmpfs", rootfs + folder, "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(tmp_mb)}m,mode=1777")
    covered = []
    for path in sorted({os.path.abspath(p) for p in allow}, key=len):
        if not os.path.lexists(path) or any(path == c or path.startswith(c + "/") for c in covered):
            continue
        target = rootfs + path
        if os.path.islink(path) and os.path.dirname(path) == "/":  # /bin -> usr/bin on a merged /usr
            os.symlink(os.readlink(path), target)
            continue
        _mountpoint_for(path, target)
        _bind(path, target)
        covered.append(path)
    for path in hide:
        path = os.path.abspath(path)
        if any(path.startswith(c + "/") or path == c for c in covered) and os.path.lexists(rootfs + path):
            if os.path.isdir(rootfs + path):
                sys_mount("tmpfs", rootfs + path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=755")
            else:
                sys_mount("/dev/null", rootfs + path, None, MS_BIND)
                sys_mount(None, rootfs + path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    home = os.path.abspath(home)  # after /tmp: a home under /tmp stays visible on the private one
    os.makedirs(rootfs + home, mode=0o755, exist_ok=True)
    _bind(home, rootfs + home, writable=True)
    os.makedirs(rootfs + "/proc", mode=0o555, exist_ok=True)
    os.chdir(rootfs)
    if _PIVOT_ROOT is not None:
        _check(_libc.syscall(_PIVOT_ROOT, b".", b"."), "pivot_root")
        _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    else:  # an architecture whose pivot_root number is not known here: chroot (no capability is left to undo it)
        os.chroot(".")
    os.chdir("/")
    sys_mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=2m,mode=755")
    if proc:
        sys_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def seal_mounts(home, hide=(), kernels_root=None, sandbox=None) -> None:
    """In a private mount namespace: the kernel's file system. With
    ``sandbox`` ({"rootfs", "allow", "tmp_mb"}, from grader/grade/seal.py) it is the
    allow-list root of :func:`build_root`; the probe and older requests
    without one get the same root with nothing but the Python environment."""
    sandbox = dict(sandbox or {})
    rootfs = sandbox.get("rootfs") or os.path.join(kernels_root or os.path.dirname(home), "rootfs")
    os.makedirs(rootfs, mode=0o755, exist_ok=True)
    build_root(rootfs, home, sandbox.get("allow") or default_allow(), hide, sandbox.get("tmp_mb", 256),
               proc=sandbox.get("proc", False))


def is_mount(path) -> bool:
    """Whether ``path`` is a mount point in this process's mount namespace."""
    path = os.path.abspath(path)
    with open("/proc/self/mountinfo") as fh:
        return any(line.split()[4].replace("\\040", " ") == path for line in fh)


def mount_home(home, size_mb: int, files: int) -> None:
    """The disk cap of a kernel's writable space: a tmpfs of ``size_mb`` MB
    and at most ``files`` files and folders, mounted by the grader on the
    (empty) home before the kernel's namespace is made, so the kernel's copy
    of the mount table has it, whichever way it starts. A write past it fails
    in the kernel (ENOSPC) and nowhere else; the grader reads the recorded
    outputs straight from it and unmounts it with the home."""
    sys_mount("tmpfs", home, "tmpfs", MS_NOSUID | MS_NODEV,
              f"size={int(size_mb)}m,nr_inodes={int(files)},mode=700")


def unmount_below(folder) -> None:
    """Detach every mount at or below ``folder`` (deepest first)."""
    folder = os.path.abspath(folder)
    with open("/proc/self/mountinfo") as fh:
        points = [line.split()[4].replace("\\040", " ") for line in fh]
    for point in sorted({p for p in points if p == folder or p.startswith(folder + "/")}, key=len, reverse=True):
        _libc.umount2(os.fsencode(point), MNT_DETACH)


def enter_sandbox(home, hide=(), kernels_root=None, sandbox=None, cgroups=None) -> tuple:
    """What only a privileged process can do for a kernel, in this order: its
    cgroup (``cgroups``: {"dirs", "limits"}), its user (owner of ``home``),
    its file system (:func:`seal_mounts`). The caller then drops privileges
    and becomes the kernel. Returns ``(uid or None, held cgroups)``. Used by
    :func:`main` and by grader/sandbox/zygote.py, so both starts build one sandbox."""
    if (sandbox or {}).get("home_mb") and not is_mount(home):
        # the grader mounted a size-capped file system on the home before asking for this kernel; a
        # process that does not see it (a mount namespace made apart from the grader's, where the
        # mount did not propagate) would let the kernel write the host's disk: refuse, the caller
        # starts the kernel the plain way, whose namespace is made after the mount
        raise OSError(f"the kernel's home {home} is not its capped file system in this mount namespace")
    held = enter_cgroup(cgroups["dirs"], cgroups["limits"], cgroups.get("back")) if cgroups else []
    uid = kernel_uid()
    give_home(home, uid)
    seal_mounts(home, hide, kernels_root, sandbox)
    return uid, held


def default_allow() -> list:
    """What a kernel needs to run Python and nothing of the course: the
    system's programs and libraries, /etc, /sys and the interpreter's prefixes."""
    import sys
    import sysconfig

    paths = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc", "/sys"]
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
              sysconfig.get_paths().get("purelib"), sysconfig.get_paths().get("platlib")):
        if p:
            paths += [p, os.path.realpath(p)]
    return paths


# The kernel's environment is built from this allow-list, never copied from the grader's:
# an instructor's variables (a database URL with its password, tokens) stay out of it.
KERNEL_ENV = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TZ", "PYTHONUNBUFFERED",
              "PYTHONHASHSEED", "MPLBACKEND", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "NUMEXPR_NUM_THREADS", "VAELAB_THREADS", "VAELAB_DEVICE",
              "VAELAB_DATA", "VAELAB_FULL_RUN", "NBGRADER_EXECUTION", "JPY_PARENT_PID", "JPY_SESSION_NAME",
              "CUDA_VISIBLE_DEVICES", "PYDEVD_DISABLE_FILE_VALIDATION")


def kernel_env(environ, home):
    """The kernel's environment: the allow-listed variables of the grader's,
    with every per-user path inside ``home`` and a private /tmp."""
    env = {k: environ[k] for k in KERNEL_ENV if k in environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(HOME=home, USER="student", LOGNAME="student", TMPDIR="/tmp",
               VAELAB_CACHE=os.path.join(home, "cache"),
               MPLCONFIGDIR=os.path.join(home, ".matplotlib"), IPYTHONDIR=os.path.join(home, ".ipython"),
               VAELAB_HIDDEN_REFERENCES=os.path.join(home, "inputs"),
               VAELAB_SEALED_RESULTS=os.path.join(home, "results"))
    return env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", required=True)
    parser.add_argument("--hide", action="append", default=[])
    parser.add_argument("--kernels-root", default=None)
    parser.add_argument("--rootfs", default=None)
    parser.add_argument("--allow", action="append", default=[])
    parser.add_argument("--tmp-mb", type=int, default=256)
    parser.add_argument("--home-mb", type=int, default=0, help="the home is a capped mount of that size (checked)")
    parser.add_argument("--file-mb", type=int, default=0, help="RLIMIT_FSIZE where the home has no capped mount")
    parser.add_argument("--cgroups", default=None, help="JSON: {dirs: {controller: folder}, limits: {...}}")
    parser.add_argument("--drop-capabilities", action="store_true")
    parser.add_argument("python")
    parser.add_argument("connection_file")
    args, extra = parser.parse_known_args()  # extra: options nbclient adds for ipykernel

    home = os.path.abspath(args.home)
    connection = os.path.join(home, "kernel-connection.json")
    shutil.copyfile(args.connection_file, connection)
    os.chmod(connection, 0o600)
    env = kernel_env(os.environ, home)
    kernel = [args.python, "-m", "ipykernel_launcher", "-f", connection, *extra]
    if args.drop_capabilities:  # in the namespaces: the allow-list root, then a powerless (unprivileged) user
        import json

        uid, _ = enter_sandbox(home, args.hide, args.kernels_root,
                               {"rootfs": args.rootfs, "allow": args.allow, "tmp_mb": args.tmp_mb,
                                "proc": os.getpid() == 1, "home_mb": args.home_mb}, json.loads(args.cgroups) if args.cgroups else None)
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        user = ["--reuid", str(uid), "--regid", str(uid), "--clear-groups"] if uid is not None else []
        kernel = [setpriv, *user, "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all",
                  "--no-new-privs", "--", *kernel]
    if args.file_mb > 0:  # no capped mount could be had: no file of the kernel's grows past it
        import resource

        cap = args.file_mb * 2**20
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # inherited through exec: a write fails, nothing dies
    os.chdir(home)
    if os.getpid() != 1:
        os.execve(kernel[0], kernel, env)
    # First process of a new PID namespace: stay as its init (signals without a handler never
    # reach PID 1, so the kernel must not be it), run the kernel as a child, pass signals on,
    # reap orphans, and end with the kernel's status, so a kernel death is seen as one.
    env.pop("JPY_PARENT_PID", None)  # the kernel's parent is this PID 1, not the launching process
    relay = init_signals()
    child = os.fork()
    if child == 0:
        os.execve(kernel[0], kernel, env)
    serve_as_init(child, relay)


RELAYED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def init_signals() -> tuple:
    """Catch the relayed signals in a namespace's first process *before* it
    forks the kernel: one that comes while the kernel does not exist yet is
    kept, and passed on by :func:`serve_as_init`, rather than ending the init."""
    target, pending = [], []

    def relay(number, _frame):
        if target:
            os.kill(target[0], number)
        else:
            pending.append(number)

    for signum in RELAYED:
        signal.signal(signum, relay)
    return target, pending


def serve_as_init(child: int, relay: tuple) -> None:
    """The rest of a PID namespace's first process (never returns): pass
    signals on to ``child``, reap every orphan, and exit with ``child``'s
    status (128 + N for a signal). Also used by grader/sandbox/zygote.py."""
    target, pending = relay
    target.append(child)
    for number in pending:
        os.kill(child, number)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(1)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)


if __name__ == "__main__":
    main()
