# JupyterHub configuration of the LTI test (tests/test_lti.py): the course's hub
# (tests/hub/jupyterhub_config.py, loaded as it is) with students arriving from the
# LMS through an LTI 1.1 launch instead of a password. docs/jupyterhub.md
# ("Arriving from the LMS (LTI)") gives the same lines for a course hub and the
# LMS settings that go with them.
import os
from pathlib import Path

c = get_config()  # noqa: F821 (defined by JupyterHub when it loads this file)
load_subconfig(str(Path(__file__).resolve().parent / "jupyterhub_config.py"))  # noqa: F821

# ---- the course's LTI settings -------------------------------------------------------------------
c.JupyterHub.authenticator_class = "ltiauthenticator.lti11.auth.LTI11Authenticator"
# The consumer key and shared secret entered in the LMS's external-tool settings
# (several LMSs: one key/secret pair each).
c.LTI11Authenticator.consumers = {os.environ["VAE_LTI_KEY"]: os.environ["VAE_LTI_SECRET"]}
# Canvas's numeric user id (sent with privacy "Public"), the id of Canvas's submission downloads that
# `make grade` grades under (grader/lms.py); a launch without it (Moodle) falls back to the LTI user_id.
c.LTI11Authenticator.username_key = "custom_canvas_user_id"
# Whoever the LMS signs a launch for may use the hub (JupyterHub 5+ admits nobody by default).
c.Authenticator.allow_all = True
c.Authenticator.allowed_users = set()

# ---- the test's own --------------------------------------------------------------------------------
# The test starts no user server (the quota spawner needs root and cgroups): land on /hub/home.
c.JupyterHub.redirect_to_server = False
