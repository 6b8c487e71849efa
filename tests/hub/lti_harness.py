"""The hub of the LTI test (tests/test_lti.py): :class:`tests.hub.harness.Hub`,
the same process discipline (own process group, the ``VAE_HUB_TEST`` marker,
stopped with its proxy in ``close``), started with
tests/hub/lti_jupyterhub_config.py and an LTI consumer key and secret."""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from tests.hub import harness

CONFIG = Path(__file__).resolve().parent / "lti_jupyterhub_config.py"


class LtiHub(harness.Hub):
    def __init__(self, state: Path, ports: dict, key: str, secret: str, env: dict, log: Path):
        self.state = Path(state)
        self.state.mkdir(parents=True, exist_ok=True)
        self.url = f"http://127.0.0.1:{ports['hub']}"
        self.launch_url = f"{self.url}/hub/lti/launch"
        self.token = uuid.uuid4().hex
        self.log_path = log
        environment = dict(env)
        environment.update({
            "VAE_HUB_STATE": str(self.state), "VAE_HUB_TOKEN": self.token,
            "VAE_HUB_PASSWORD": uuid.uuid4().hex,  # read by the course config; LTI has no password
            "VAE_HUB_PORT": str(ports["hub"]), "VAE_HUB_API_PORT": str(ports["hub_api"]),
            "VAE_HUB_PROXY_API_PORT": str(ports["proxy_api"]),
            "VAE_HUB_CGROUP_LEDGER": str(self.state / "cgroups.txt"),
            "VAE_LTI_KEY": key, "VAE_LTI_SECRET": secret,
        })
        proxy = harness.proxy_command()
        if proxy:
            environment.setdefault("VAE_HUB_PROXY", proxy)
        self._log = open(log, "w")
        self.process = subprocess.Popen([str(harness.VENV_BIN / "jupyterhub"), "-f", str(CONFIG)], cwd=self.state,
                                        stdout=self._log, stderr=subprocess.STDOUT, env=environment,
                                        start_new_session=True)

    def user(self, name: str) -> dict | None:
        """The hub's record of user ``name`` (service token), or None when there is none."""
        import urllib.error

        try:
            return self.api("GET", f"/hub/api/users/{name}")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def users(self) -> list[str]:
        return sorted(u["name"] for u in self.api("GET", "/hub/api/users"))
