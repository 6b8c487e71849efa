"""Processes of the hub test (tests/test_hub.py): a git server on loopback for
the student edition, a JupyterHub with tests/hub/jupyterhub_config.py, and a
kernel client over the Jupyter websocket API. Each process starts in its own
process group and carries the marker ``VAE_HUB_TEST=<id>`` in its environment,
so that :func:`leftovers` finds anything of the test still running (the
proxy, the student's server and kernels included: they inherit it)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG = Path(__file__).resolve().parent / "jupyterhub_config.py"
VENV_BIN = ROOT / ".venv" / "bin"


def proxy_command() -> str | None:
    local = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
    if os.access(local, os.X_OK):
        return str(local)
    from shutil import which

    return which("configurable-http-proxy")


def memory_cgroup_available() -> bool:
    from tests.hub.quota_spawner import _own_memory_group

    group = _own_memory_group()
    return group is not None and (group / "memory.limit_in_bytes").exists()


def _stop_group(process: subprocess.Popen, grace: float = 20.0) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    # the group may outlive its leader (children of a leader that exited)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def marked(marker: str) -> list:
    """(pid, command line) of every process whose environment holds ``VAE_HUB_TEST=marker``."""
    needle = f"VAE_HUB_TEST={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                state = next((line.split()[1] for line in (entry / "status").read_text().splitlines()
                              if line.startswith("State:")), "?")
                if state != "Z":
                    found.append((int(entry.name), cmdline))
        except OSError:
            continue
    return found


def leftovers(marker: str, wait: float = 10.0) -> list:
    """The test's processes still running after ``wait`` seconds (an empty list when all ended)."""
    deadline = time.monotonic() + wait
    while True:
        found = marked(marker)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


class GitServer:
    """``git daemon`` serving the folders under ``base`` read-only on loopback:
    ``git://127.0.0.1:PORT/<name>``."""

    def __init__(self, base: Path, port: int, env: dict, log: Path):
        self.base, self.port = Path(base), port
        self.url = f"git://127.0.0.1:{port}"
        self._log = open(log, "w")
        self.process = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--informative-errors", f"--base-path={self.base}",
             "--listen=127.0.0.1", f"--port={port}"],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_ready(self, name: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            probe = subprocess.run(["git", "ls-remote", f"{self.url}/{name}"], capture_output=True, text=True)
            if probe.returncode == 0:
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"git daemon not serving {name}: {probe.stderr.strip()}")
            time.sleep(0.2)

    def close(self) -> None:
        _stop_group(self.process)
        self._log.close()


class Hub:
    """JupyterHub started with tests/hub/jupyterhub_config.py, in its own process group."""

    def __init__(self, state: Path, ports: dict, password: str, env: dict, log: Path):
        self.state = Path(state)
        self.state.mkdir(parents=True, exist_ok=True)
        self.url = f"http://127.0.0.1:{ports['hub']}"
        self.token = uuid.uuid4().hex
        self.log_path = log
        environment = dict(env)
        environment.update({
            "VAE_HUB_STATE": str(self.state), "VAE_HUB_PASSWORD": password, "VAE_HUB_TOKEN": self.token,
            "VAE_HUB_PORT": str(ports["hub"]), "VAE_HUB_API_PORT": str(ports["hub_api"]),
            "VAE_HUB_PROXY_API_PORT": str(ports["proxy_api"]),
            "VAE_HUB_CGROUP_LEDGER": str(self.state / "cgroups.txt"),
        })
        self._log = open(log, "w")
        self.process = subprocess.Popen([str(VENV_BIN / "jupyterhub"), "-f", str(CONFIG)], cwd=self.state,
                                        stdout=self._log, stderr=subprocess.STDOUT, env=environment,
                                        start_new_session=True)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterHub exited with code {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                if self.api("GET", "/hub/api/")["version"]:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"JupyterHub did not answer within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.5)

    def api(self, method: str, path: str, body=None, timeout: float = 60.0):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            text = reply.read()
        return json.loads(text) if text else None

    def log_tail(self, n: int = 60) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-n:])
        return ""

    def close(self) -> None:
        """SIGTERM: the hub stops the student's server (cleanup_servers) and its proxy. Then
        anything left (the proxy runs in a session of its own) is ended by its pid file."""
        _stop_group(self.process, grace=60.0)
        self._log.close()
        pid_file = self.state / "proxy.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self.remove_cgroups()

    def remove_cgroups(self) -> None:
        from tests.hub.quota_spawner import _empty_and_remove

        ledger = self.state / "cgroups.txt"
        if ledger.exists():
            # children first (a QuotaGroup's user-server child, then the group)
            for line in reversed(ledger.read_text().split()):
                group = Path(line)
                for child in sorted(group.glob("*/"), reverse=True) if group.is_dir() else []:
                    if (child / "cgroup.procs").exists():
                        _empty_and_remove(child)
                _empty_and_remove(group)


class Kernel:
    """Run code in a kernel of the student's server over the websocket API, with a token."""

    def __init__(self, server_url: str, kernel_id: str, token: str):
        self.url = server_url.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
        self.token = token

    def run(self, code: str, timeout: float = 120.0) -> dict:
        # in a thread of its own: Playwright's sync API keeps an event loop running in the caller's
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, asyncio.wait_for(self._run(code), timeout)).result()

    async def _run(self, code: str) -> dict:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        request = HTTPRequest(self.url, headers={"Authorization": f"token {self.token}"})
        connection = await websocket_connect(request)
        msg_id = uuid.uuid4().hex
        connection.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": "course-test", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        out = {"stdout": "", "stderr": "", "error": None, "status": None}
        idle = False
        try:
            while out["status"] is None or not idle:
                raw = await connection.read_message()
                if raw is None:
                    raise ConnectionError("the kernel's websocket closed")
                message = json.loads(raw)
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["header"]["msg_type"], message["content"]
                if kind == "stream":
                    out[content["name"]] += content["text"]
                elif kind == "error":
                    out["error"] = "\n".join(content.get("traceback", [])) or content.get("evalue")
                elif kind == "execute_reply":
                    out["status"] = content["status"]
                elif kind == "status" and content["execution_state"] == "idle":
                    idle = True
        finally:
            connection.close()
        return out

