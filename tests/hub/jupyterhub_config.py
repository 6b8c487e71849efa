# JupyterHub configuration of the hub test (tests/test_hub.py); docs/jupyterhub.md
# shows how the same course settings read on The Littlest JupyterHub and on
# Zero to JupyterHub. Everything the test varies comes from environment
# variables: ports, the state folder, the test password and token.
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent          # the course repository
VENV = ROOT / ".venv"
STATE = Path(os.environ["VAE_HUB_STATE"])
sys.path.insert(0, str(ROOT))      # for tests.hub.quota_spawner

c = get_config()  # noqa: F821 (defined by JupyterHub when it loads this file)

# ---- the course's settings (the same on TLJH / Zero to JupyterHub) -----------------------------
# One CPU and 2 GB per student, on the user's own cgroup, as TLJH's
# `tljh-config set limits.cpu 1` / `limits.memory 2G` do. vaelab sizes
# PyTorch's threads from that quota (vaelab.runtime.cpu_budget).
c.Spawner.cpu_limit = 1.0
c.Spawner.mem_limit = "2G"
# Students land in JupyterLab (nbgitpuller links carry their own urlpath).
c.Spawner.default_url = "/lab"
# nbgrader's exchange: one folder every user's server can see (the default is
# /srv/nbgrader/exchange; `c.Exchange.root` in nbgrader_config.py must match).
EXCHANGE = os.environ.get("VAE_HUB_EXCHANGE", "/srv/nbgrader/exchange")
c.Spawner.environment = {
    "PATH": f"{VENV / 'bin'}:/usr/local/bin:/usr/bin:/bin",
    "VAE_HUB_EXCHANGE": EXCHANGE,
    # nbgrader's settings for all users (on a real hub: /etc/jupyter/nbgrader_config.py)
    "JUPYTER_CONFIG_PATH": str(HERE / "etc-jupyter"),
}

# ---- this test's local stand-ins for what TLJH provides ----------------------------------------
from tests.hub.quota_spawner import QuotaSpawner  # noqa: E402  (TLJH: its systemd spawner)

c.JupyterHub.spawner_class = QuotaSpawner
c.Spawner.cmd = [str(VENV / "bin" / "jupyterhub-singleuser")]
# every server runs as the hub's user (root here: --allow-root), its home under the state folder
c.Spawner.args = ["--allow-root"] if os.geteuid() == 0 else []
c.SimpleLocalProcessSpawner.home_dir_template = str(STATE / "home" / "{username}")
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
if os.environ.get("VAE_HUB_TEST"):  # a marker in every process of the test's hub, for its leftover check
    c.Spawner.environment["VAE_HUB_TEST"] = os.environ["VAE_HUB_TEST"]
    c.Spawner.environment["VAE_HUB_CGROUP_LEDGER"] = os.environ.get("VAE_HUB_CGROUP_LEDGER", "")

# A fixed password for the test's one student (TLJH: its FirstUseAuthenticator or your own).
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = os.environ["VAE_HUB_PASSWORD"]
c.Authenticator.allowed_users = {"student"}

# Loopback only, on the ports the test picked; the proxy from the repository's node_modules.
c.JupyterHub.bind_url = f"http://127.0.0.1:{os.environ['VAE_HUB_PORT']}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{os.environ['VAE_HUB_API_PORT']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['VAE_HUB_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.command = [str(os.environ.get("VAE_HUB_PROXY", ROOT / "node_modules" / ".bin" /
                                                      "configurable-http-proxy"))]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.cleanup_servers = True   # stopping the hub stops the student's server
c.JupyterHub.cleanup_proxy = True

# The test talks to the student's server (contents, kernels) with a service token.
c.JupyterHub.services = [{"name": "course-test", "api_token": os.environ["VAE_HUB_TOKEN"]}]
c.JupyterHub.load_roles = [{"name": "course-test", "services": ["course-test"],
                            "scopes": ["admin:users", "admin:servers", "access:servers"]}]
