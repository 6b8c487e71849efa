# nbgrader settings for every user of the hub: on a real hub this file is
# /etc/jupyter/nbgrader_config.py (the hub test points JUPYTER_CONFIG_PATH at
# tests/hub/etc-jupyter instead). Students need nothing else: the Assignments
# tab of JupyterLab and `nbgrader fetch_assignment/submit/fetch_feedback` read it.
import os

c = get_config()  # noqa: F821 (defined by traitlets when it loads this file)

c.CourseDirectory.course_id = "vae-course"
# One folder that every user's server can read and write (mode 0777, as nbgrader asks).
c.Exchange.root = os.environ.get("VAE_HUB_EXCHANGE", "/srv/nbgrader/exchange")
