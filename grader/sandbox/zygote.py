"""A kernel fork server ("zygote") for sealed grading.

    python zygote.py SOCKET        (started and owned by grader/grade/seal.py)

Every grading kernel started the plain way pays for a fresh Python, for
ipykernel's imports and then for the notebook's import cell (torch,
matplotlib, sympy, vaelab): about 3 s per notebook on two cores, paid again
by every notebook of every student. The zygote pays it once per batch: it
imports those libraries, stays single-threaded, and forks one *handler*
per kernel. The handler builds the same sandbox as grader/sandbox/kernel_launcher.py
before any student code runs:

1. it joins the network namespace of the nbgrader process that asked for the
   kernel (the client sends that descriptor), so the kernel has loopback to
   nbgrader and nothing else;
2. it enters a private mount namespace and pivots into the same
   allow-list root (``kernel_launcher.build_root``): the Python environment
   and vaelab read-only, its own home (the size- and file-capped tmpfs
   the grader mounted on it before the request; a handler that does not see
   that mount refuses, and the client starts the kernel the plain way), a
   private /tmp and /dev/shm, and
   nothing else of the machine (no answers, solutions, grading folders,
   other kernels' homes, other checkouts, nor this socket);
3. it creates a PID namespace whose first process (the namespace's init)
   mounts /proc, passes signals on and reaps;
4. the kernel, the init's child, takes the memory cap, drops every
   capability (bounding, ambient, effective, permitted), becomes a fresh
   unprivileged user that owns only its home, sets no_new_privs,
   moves into its home with the kernel environment and runs ipykernel
   in-process.

It also forks the grading nbgrader processes themselves (request kind
``nbgrader``), which saves nbgrader's own 1.5 s of imports per notebook:
the handler joins the asking process's network namespace, becomes a child
subreaper, forks nbgrader's command line with the asking process's
arguments, directory, environment, memory cap and stdio, and when it ends
or its client goes, kills whatever it left behind (grader/sandbox/supervise.py's
sweep), so ownership stays with the supervisor that started the client.

Protocol, over a SOCK_SEQPACKET unix socket: the client
(grader/sandbox/kernel_client.py) sends one JSON request with four descriptors
(network namespace, stdin, stdout, stderr). The handler answers ``started``
once the kernel's namespaces exist, or ``error ...`` if it could not build
them (the client then starts the kernel the plain way), and later
``exit N`` with the kernel's status. The client passes signals on as
``signal N``.

Ownership: seal.py holds the zygote's stdin and the zygote exits when it
closes. Each handler dies with the zygote (PR_SET_PDEATHSIG), each init with
its handler, and every process of a PID namespace with its init. A handler
kills its init when the client's socket closes, however the client ended
(nbgrader's shutdown, a SIGKILL, the supervisor's sweep).
A standalone script on purpose: it imports nothing from the course but
kernel_launcher, next to it.
"""
import atexit
import ctypes
import gc
import importlib
import json
import os
import resource
import select
import shutil
import signal
import socket
import sys
import traceback

import kernel_launcher  # this folder is sys.path[0]
import supervise

sys.modules.setdefault("rfc3987_syntax", None)  # as grader/nbgrader_cli.py: 0.85 s of nbformat's import, unused

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
from kernel_launcher import MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_REC  # noqa: E402
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
CAPABILITY_VERSION_3 = 0x20080522
RELAYED = kernel_launcher.RELAYED
# What the notebooks' import cells load; a module that fails to import is simply not preloaded.
PRELOAD = ("numpy", "torch", "torch.nn.functional", "matplotlib.pyplot", "sympy", "ipykernel.kernelapp",
           "ipywidgets", "vaelab", "vaelab.checks", "vaelab.data", "vaelab.plotting", "vaelab.training",
           "vaelab.widgets", "nbgrader.apps.nbgraderapp", "nbgrader.preprocessors", "nbclient",
           # what IPKernelApp.initialize would import in every kernel (ipykernel.debugger, with
           # debugpy, alone took 0.14 s of its 0.28 s)
           "ipykernel.ipkernel", "ipykernel.debugger", "IPython.core.debugger", "IPython.core.completerlib",
           "IPython.extensions.storemagic", "psutil", "sqlite3", "tornado.queues", "tornado.platform.asyncio")

_libc = kernel_launcher._libc
_check = kernel_launcher._check


def _prctl(option: int, arg2: int = 0) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)),
           f"prctl({option})")


def drop_capabilities(uid=None) -> None:
    """Every capability gone for good: bounding set, ambient, inheritable,
    permitted and effective, and no_new_privs (setpriv's --bounding-set=-all
    --inh-caps=-all --ambient-caps=-all --no-new-privs, without an exec).
    With ``uid``, the process also becomes that unprivileged user (no
    supplementary groups), so it owns no file of the machine's."""
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last = int(fh.read())
    for cap in range(last + 1):
        _prctl(PR_CAPBSET_DROP, cap)
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    header = (ctypes.c_uint32 * 2)(CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # two 32-bit halves of effective, permitted, inheritable: all zero
    _check(_libc.capset(header, data), "capset")


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _become(request: dict, stdio: tuple, body) -> None:
    """Turn this fork into the requested process (never returns): the asking
    process's stdio and memory cap, nothing else of the zygote's open,
    default signal handling, the given environment; then ``body()``, whose
    result (or SystemExit) is the exit status."""
    code = 1
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        os.closerange(3, 1 << 16)  # nothing of the zygote's or the handler's stays open
        for signum in (*RELAYED, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        soft, hard = request["rlimit_as"]
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        result = body()
        code = result if isinstance(result, int) else 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _environment(env: dict, cwd: str) -> None:
    import tempfile

    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    tempfile.tempdir = None  # computed again from TMPDIR


def _kernel(request: dict) -> int:
    """The kernel, in its namespaces: no capability left, its home, ipykernel."""
    drop_capabilities(request.get("uid"))
    home = request["home"]
    env = kernel_launcher.kernel_env(request["env"], home)
    env.pop("JPY_PARENT_PID", None)  # the kernel's parent is the namespace's init
    _environment(env, home)
    sys.path[0] = home
    threads = int(env.get("OMP_NUM_THREADS") or 0)
    if threads > 0 and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "exec" in request:  # the probe in grader/grade/seal.py, and tests
        exec(compile(request["exec"], "<probe>", "exec"), {"__name__": "__main__"})
        return 0
    sys.argv = ["ipykernel_launcher", "-f", os.path.join(home, "kernel-connection.json"), *request.get("extra", [])]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
    return 0


def _nbgrader(request: dict) -> int:
    """An nbgrader command line, as ``python nbgrader_cli.py ARGS`` would run it."""
    _environment(request["env"], request["cwd"])
    sys.argv = ["nbgrader", *request["args"]]
    from nbgrader.apps.nbgraderapp import main as nbgrader_main

    return nbgrader_main()


def _init(request: dict, stdio: tuple) -> None:
    """First process of the kernel's PID namespace (never returns): it mounts
    /proc, starts the kernel, passes signals on, reaps orphans and ends with
    the kernel's status."""
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        kernel_launcher.sys_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        relay = kernel_launcher.init_signals()
        kernel = os.fork()
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    if kernel == 0:
        _become(request, stdio, lambda: _kernel(request))
    for fd in stdio:
        os.close(fd)
    kernel_launcher.serve_as_init(kernel, relay)


def _handle(conn: socket.socket, zygote: int) -> None:
    """One request's handler, forked by the zygote (never returns)."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    held = []
    if os.getppid() != zygote:
        os._exit(1)
    try:
        message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 4)
        request = json.loads(message)
        netns, *stdio = fds
        _check(_libc.setns(netns, CLONE_NEWNET), "setns")
        os.close(netns)
        grading = request.get("kind") == "nbgrader"
        if grading:
            _prctl(PR_SET_CHILD_SUBREAPER, 1)  # what nbgrader leaves behind comes back to this handler
        else:
            _check(_libc.unshare(CLONE_NEWNS), "unshare(mount)")
            kernel_launcher.sys_mount("none", "/", None, MS_REC | MS_PRIVATE)
            home = request["home"]
            if request.get("connection_file"):
                connection = os.path.join(home, "kernel-connection.json")
                shutil.copyfile(request["connection_file"], connection)
                os.chmod(connection, 0o600)
            request["uid"], held = kernel_launcher.enter_sandbox(
                home, request.get("hide", []), request.get("kernels_root"), request.get("sandbox"),
                request.get("cgroups"))
            _check(_libc.unshare(CLONE_NEWPID), "unshare(pid)")
            for signum in RELAYED:  # the init keeps these until its own relay is in place
                signal.signal(signum, signal.SIG_IGN)
        child = os.fork()
    except BaseException as err:
        try:
            conn.send(f"error {type(err).__name__}: {err}".encode()[:1000])
        finally:
            os._exit(1)
    if child == 0:
        os.close(conn.detach())
        if grading:
            _become(request, tuple(stdio), lambda: _nbgrader(request))
        _init(request, tuple(stdio))
    for fd in stdio:
        os.close(fd)
    if held:
        kernel_launcher.leave_cgroup(held)  # the handler itself is not the kernel's
    conn.send(b"started")
    _watch(conn, child, sweep=grading, held=held)


def _watch(conn: socket.socket, child: int, sweep: bool, held=()) -> None:
    """Stand by ``child`` for the client (never returns): pass its signals on,
    report the child's status, and kill the child when the client goes.
    With ``sweep``, also kill whatever the child left behind (this handler is
    their subreaper); a kernel's init needs no sweep: its namespace dies with it."""
    watch = os.pidfd_open(child)
    while True:
        ready, _, _ = select.select([conn, watch], [], [])
        if watch in ready:
            _, status = os.waitpid(child, 0)
            if sweep:
                supervise.kill_tree(os.getpid())
            try:
                conn.send(b"exit %d" % _exit_code(status))
            except OSError:
                pass
            kernel_launcher.remove_cgroup(held)
            os._exit(0)
        try:
            note = conn.recv(64)
        except OSError:
            note = b""
        if not note:  # the client is gone: so is what it stood for
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            if sweep:
                supervise.kill_tree(os.getpid())
            kernel_launcher.remove_cgroup(held)
            os._exit(0)
        if note.startswith(b"signal "):
            try:
                os.kill(child, int(note[7:]))
            except (ValueError, OSError):
                pass


def main() -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(sys.argv[1])
    os.chmod(sys.argv[1], 0o600)
    listener.listen(128)  # clients that come while the imports run wait in the backlog
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # handlers are reaped by the system
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:
            pass
    gc.collect()
    gc.freeze()  # the preloaded objects stay shared between kernels, not copied on the collector's first pass
    threads = len(os.listdir("/proc/self/task"))
    print(json.dumps({"ready": True, "threads": threads, "preloaded": [n for n in PRELOAD if n in sys.modules]}),
          flush=True)
    if threads != 1:  # fork copies only the calling thread: refuse rather than fork half a library
        sys.exit(f"zygote: {threads} threads after the imports; kernels are started the plain way")
    zygote = os.getpid()
    while True:
        ready, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 1):
            break  # seal.py closed our stdin: the batch is over, or the grader died
        if listener in ready:
            conn, _ = listener.accept()
            if os.fork() == 0:
                listener.close()
                _handle(conn, zygote)
            conn.close()
    os._exit(0)


if __name__ == "__main__":
    main()
