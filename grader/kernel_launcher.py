"""Start a grading kernel in a sandbox of its own (the kernel command of the
worker's ``python3`` kernelspec, written by grader/seal.py).

    [unshare --mount --pid ...] python kernel_launcher.py --home DIR
        [--hide PATH ...] [--kernels-root DIR] PYTHON CONNECTION_FILE

Inside a private mount and PID namespace (when ``unshare`` put it there):
an empty, read-only tmpfs is mounted over every --hide path (the hidden
answers, the solutions, the grading folder, ...), and over --kernels-root,
the folder of all kernels' homes, after which only this kernel's own home is
bound back. Then the connection file is copied into the home, the process
moves there, and ipykernel is started through ``setpriv`` with every
capability dropped and no way to gain one, so the kernel can neither undo
the mounts nor look at other processes. This script stays as the namespace's
first process (PID 1, whose special signal rules the kernel must not
inherit): it passes signals on and exits with the kernel's status. Without a namespace only the home and
environment change. A standalone script on purpose: it imports nothing from
the course.
"""
import argparse
import os
import shutil
import signal
import subprocess


def _mount(*args, pass_fds=()):
    subprocess.run(["mount", *args], check=True, pass_fds=pass_fds, capture_output=True)


def seal_mounts(home, hide=(), kernels_root=None):
    """In a private mount namespace: cover every ``hide`` path with an empty,
    read-only file system, and the kernels' root with an empty tmpfs into
    which only ``home`` is bound back. Also used by grader/zygote.py."""
    for path in hide:
        if os.path.isdir(path):
            _mount("-t", "tmpfs", "-o", "ro,size=4k,mode=755", "tmpfs", path)
        elif os.path.exists(path):
            _mount("--bind", "-o", "ro", "/dev/null", path)
    if kernels_root:
        keep = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
        _mount("-t", "tmpfs", "-o", "size=4k,mode=711", "tmpfs", kernels_root)
        os.makedirs(home, mode=0o700)
        # --no-canonicalize: bind the directory the descriptor holds, not the path it had
        _mount("--no-canonicalize", "--bind", f"/proc/self/fd/{keep}", home, pass_fds=(keep,))
        os.close(keep)


def kernel_env(environ, home):
    """The kernel's environment: the grader's, with every per-user path inside ``home``."""
    env = {k: v for k, v in environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP", "JUPYTER_PATH")}
    env.update(HOME=home, TMPDIR=os.path.join(home, "tmp"), VAELAB_CACHE=os.path.join(home, "cache"),
               MPLCONFIGDIR=os.path.join(home, ".matplotlib"), IPYTHONDIR=os.path.join(home, ".ipython"),
               VAELAB_HIDDEN_REFERENCES=os.path.join(home, "inputs"),
               VAELAB_SEALED_RESULTS=os.path.join(home, "results"))
    return env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", required=True)
    parser.add_argument("--hide", action="append", default=[])
    parser.add_argument("--kernels-root", default=None)
    parser.add_argument("--drop-capabilities", action="store_true")
    parser.add_argument("python")
    parser.add_argument("connection_file")
    args, extra = parser.parse_known_args()  # extra: options nbclient adds for ipykernel

    home = os.path.abspath(args.home)
    connection = os.path.join(home, "kernel-connection.json")
    shutil.copyfile(args.connection_file, connection)
    os.chmod(connection, 0o600)
    seal_mounts(home, args.hide, args.kernels_root)
    env = kernel_env(os.environ, home)
    os.chdir(home)
    kernel = [args.python, "-m", "ipykernel_launcher", "-f", connection, *extra]
    if args.drop_capabilities:
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        kernel = [setpriv, "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", "--no-new-privs",
                  "--", *kernel]
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
    status (128 + N for a signal). Also used by grader/zygote.py."""
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
