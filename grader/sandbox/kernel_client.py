"""Ask grader/sandbox/zygote.py for a process forked from its pre-imported template.

    python -I -S kernel_client.py REQUEST_FILE CONNECTION_FILE [ipykernel options]
    python -I -S kernel_client.py REQUEST_FILE [nbgrader arguments]

The first form is the kernel command of a grading kernelspec (request kind
``kernel``): a kernel inside the same sandbox grader/sandbox/kernel_launcher.py
builds. The second replaces ``python nbgrader_cli.py`` in a grading worker's
command (kind ``nbgrader``). Either way the client then stands in for the
forked process: its signals are passed on, it exits with that process's
status, and its socket closing (however it ends) ends that process and all
it started. When the zygote cannot be reached or cannot build the sandbox, it
runs the request's ``fallback`` command with the same arguments instead, so
a missing zygote costs seconds, never a grade. Standard library only, and
started with ``-I -S`` so it is up in milliseconds.
"""
import json
import os
import resource
import signal
import socket
import sys

RELAYED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def main() -> None:
    request_file, *args = sys.argv[1:]
    with open(request_file) as fh:
        request = json.load(fh)
    kind = request.get("kind", "kernel")
    if kind == "kernel":
        connection_file, *extra = args
        message = {"home": request["home"], "hide": request["hide"], "kernels_root": request["kernels_root"],
                   "sandbox": request.get("sandbox"), "cgroups": request.get("cgroups"),
                   "connection_file": os.path.abspath(connection_file), "extra": extra}
        if "exec" in request:  # code run in the kernel's place (tests of the sandbox)
            message["exec"] = request["exec"]
    else:
        message = {"kind": "nbgrader", "args": args, "cwd": os.getcwd()}
    message.update(env=dict(os.environ), rlimit_as=list(resource.getrlimit(resource.RLIMIT_AS)))
    # Signals are caught from the start: one that comes before the forked process exists is passed on
    # once it does (or, if nothing was forked, delivered to this process again before the plain start).
    pending, started = [], []

    def relay(number, _frame):
        if not started:
            pending.append(number)
            return
        try:
            started[0].send(b"signal %d" % number)
        except OSError:
            pass

    for signum in RELAYED:
        signal.signal(signum, relay)
    reply = b""
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.connect(request["socket"])
        netns = os.open("/proc/self/ns/net", os.O_RDONLY)
        socket.send_fds(sock, [json.dumps(message).encode()], [netns, 0, 1, 2])
        os.close(netns)
        reply = sock.recv(1024)
    except OSError:
        pass
    if reply != b"started":  # nothing was started: start it the plain way
        if reply:
            print(f"kernel_client: the zygote could not start this {kind} ({reply.decode(errors='replace')});"
                  " starting it the plain way", file=sys.stderr, flush=True)
        for signum in RELAYED:
            signal.signal(signum, signal.SIG_DFL)
        for signum in pending:
            os.kill(os.getpid(), signum)
        command = [*request["fallback"], *args]
        os.execvp(command[0], command)
    started.append(sock)
    for signum in pending:
        relay(signum, None)
    while True:
        try:
            note = sock.recv(64)
        except OSError:
            note = b""
        if not note:
            os._exit(1)  # the handler is gone, and with it the kernel
        if note.startswith(b"exit "):
            os._exit(int(note[5:]))


if __name__ == "__main__":
    main()
