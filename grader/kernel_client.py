"""The kernel command of a grading kernelspec when grader/zygote.py runs.

    python -I -S kernel_client.py REQUEST_FILE CONNECTION_FILE [ipykernel options]

It asks the zygote for a kernel forked from its pre-imported template,
inside the same sandbox grader/kernel_launcher.py builds, and then stands in
for that kernel: nbgrader's signals are passed on, and it exits with the
kernel's status. Its socket closing (however it ends) ends the kernel. When
the zygote cannot be reached or cannot build the sandbox, it starts the
kernel the plain way instead (the request's ``fallback`` command), so a
missing zygote costs seconds, never a grade. Standard library only, and
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
    request_file, connection_file, *extra = sys.argv[1:]
    with open(request_file) as fh:
        request = json.load(fh)
    reply = b""
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.connect(request["socket"])
        message = {"home": request["home"], "hide": request["hide"], "kernels_root": request["kernels_root"],
                   "connection_file": os.path.abspath(connection_file), "extra": extra, "env": dict(os.environ),
                   "rlimit_as": list(resource.getrlimit(resource.RLIMIT_AS))}
        if "exec" in request:  # code run in the kernel's place (tests of the sandbox)
            message["exec"] = request["exec"]
        netns = os.open("/proc/self/ns/net", os.O_RDONLY)
        socket.send_fds(sock, [json.dumps(message).encode()], [netns, 0, 1, 2])
        os.close(netns)
        reply = sock.recv(1024)
    except OSError:
        pass
    if reply != b"started":  # no kernel was started: start it the plain way
        if reply:
            print(f"kernel_client: the zygote could not start this kernel ({reply.decode(errors='replace')});"
                  " starting it the plain way", file=sys.stderr, flush=True)
        command = [*request["fallback"], connection_file, *extra]
        os.execvp(command[0], command)

    def relay(number, _frame):
        try:
            sock.send(b"signal %d" % number)
        except OSError:
            pass

    for signum in RELAYED:
        signal.signal(signum, relay)
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
