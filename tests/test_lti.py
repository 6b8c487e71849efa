"""Students arrive from the LMS (issue 34, item 4): an LTI 1.1 launch logs them into the hub.

A course link in Canvas or Moodle is an "external tool" that posts a signed
form to the hub's ``/hub/lti/launch`` (jupyterhub-ltiauthenticator's
``LTI11Authenticator``); the hub checks the OAuth 1.0a HMAC-SHA1 signature with
the shared secret and logs the student in under the LMS's id for them. With
``username_key = "custom_canvas_user_id"`` that is Canvas's numeric user id, the
id that Canvas's submission downloads carry and ``make grade`` grades under
(grader/lms.py), so the gradebook, the hub and the LMS name a student alike.

The launch is built here from the LMS's side (tests/hub/lti_launch.py: the LTI
1.1 parameters and the RFC 5849 signature, written from the RFC and checked
against its own examples, with oauthlib only as a cross-check), posted to a
real hub (tests/hub/lti_jupyterhub_config.py: the course's hub config plus the
LTI lines) started with the process discipline of tests/hub/harness.py: its
own process group, a marker in the environment of every process, nothing of it
left running at the end. Launches with a wrong secret, a field changed after
signing, a stale timestamp, an unknown key or a replayed nonce are refused and
create no user.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import unquote_plus, urlencode, urlsplit

import pytest

from tests import labdriver
from tests.hub import lti_launch

KEY = "vae-course-canvas"
CANVAS_USER_ID = "4820013"            # Canvas's numeric user id ($Canvas.user.id)
CANVAS_LTI_USER_ID = "535fa085f22b4655f48cd5a36a9215f64c062838"  # Canvas's opaque LTI user_id
MOODLE_USER_ID = "1207"


def canvas_launch(user_id: str = CANVAS_USER_ID, lti_user_id: str = CANVAS_LTI_USER_ID) -> dict:
    """What Canvas sends for a course link (an external tool with privacy "Public"), LTI fields only."""
    return {
        "resource_link_id": "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9",
        "resource_link_title": "VAE course: 01 The evidence lower bound",
        "context_id": "4dde05e8ca1973bcca9bffc13e1548820eee93a3",
        "context_title": "Variational Autoencoders — Spring term",
        "context_label": "VAE-101",
        "user_id": lti_user_id,
        "roles": "Learner",
        "lis_person_name_full": "Zoë Müller-Øberg",
        "lis_person_contact_email_primary": "zoe@example.edu",
        "tool_consumer_info_product_family_code": "canvas",
        "launch_presentation_return_url": "https://canvas.example.edu/courses/101/modules",
        "custom_canvas_user_id": user_id,
        "custom_canvas_course_id": "101",
        "custom_canvas_user_login_id": "zoe@example.edu",
    }


def moodle_launch(user_id: str = MOODLE_USER_ID) -> dict:
    """What Moodle's External tool sends with "Share launcher's name/email" on: no Canvas fields."""
    return {
        "resource_link_id": "17",
        "resource_link_title": "VAE course",
        "context_id": "4",
        "context_title": "Variational Autoencoders",
        "user_id": user_id,
        "roles": "Learner",
        "lis_person_name_given": "Ada",
        "lis_person_name_family": "Lovelace",
        "lis_person_name_full": "Ada Lovelace",
        "lis_person_contact_email_primary": "ada@example.edu",
        "tool_consumer_info_product_family_code": "moodle",
    }


# ---- the signature, against RFC 5849's own examples and oauthlib (no hub) -----------------------

def test_signature_matches_the_examples_of_rfc_5849():
    # 3.4.1.1: the base string of its example request (a query, a form body, an OAuth header)
    params = [("c2", ""), ("a3", "2 q"), ("oauth_consumer_key", "9djdj82h48djs9d2"),
              ("oauth_token", "kkk9d7dh3k39sjv7"), ("oauth_signature_method", "HMAC-SHA1"),
              ("oauth_timestamp", "137131201"), ("oauth_nonce", "7d8f3e4a"),
              ("oauth_signature", "djosJKDKJSD8743243%2Fjdk33klY%3D")]
    assert lti_launch.signature_base_string("post", "http://EXAMPLE.COM:80/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b",
                                            params) == (
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540"
        "%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method"
        "%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7")
    # 1.2: the two signed requests of its walk-through, with and without a token secret
    initiate = [("oauth_consumer_key", "dpf43f3p2l4k3l03"), ("oauth_signature_method", "HMAC-SHA1"),
                ("oauth_timestamp", "137131200"), ("oauth_nonce", "wIjqoS"),
                ("oauth_callback", "http://printer.example.com/ready")]
    assert lti_launch.hmac_sha1(lti_launch.signature_base_string("POST", "https://photos.example.net/initiate",
                                                                 initiate), "kd94hf93k423kf44") \
        == "74KNZJeDHnMBp0EMJ9ZHt/XKycU="
    photos = [("oauth_consumer_key", "dpf43f3p2l4k3l03"), ("oauth_token", "nnch734d00sl2jdk"),
              ("oauth_signature_method", "HMAC-SHA1"), ("oauth_timestamp", "137131202"), ("oauth_nonce", "chapoH")]
    assert lti_launch.hmac_sha1(lti_launch.signature_base_string(
        "GET", "http://photos.example.net/photos?file=vacation.jpg&size=original", photos),
        "kd94hf93k423kf44", "pfkkdhi9sl3r4s00") == "MdpQcU8iPSUjWoN/UDMsK2sui9I="
    # 3.6: UTF-8 bytes, upper-case hex, only the unreserved characters left alone
    assert lti_launch.percent_encode("Zoë ~-._*+/") == "Zo%C3%AB%20~-._%2A%2B%2F"


def test_launch_signature_agrees_with_oauthlib():
    oauth1 = pytest.importorskip("oauthlib.oauth1", reason="oauthlib (a dependency of the LTI authenticator)")
    url, secret = "http://127.0.0.1:8123/hub/lti/launch", "s3cr3t/+ key&"
    form = lti_launch.launch_form(url, KEY, secret, canvas_launch(), timestamp=1767225600, nonce="n0nce42")
    client = oauth1.Client(KEY, client_secret=secret, signature_type=oauth1.SIGNATURE_TYPE_BODY,
                           timestamp="1767225600", nonce="n0nce42", callback_uri="about:blank")
    lti_only = {k: v for k, v in form.items() if not k.startswith("oauth_")}
    _, _, body = client.sign(url, "POST", body=urlencode(lti_only),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    theirs = dict(pair.split("=", 1) for pair in body.split("&"))
    assert unquote_plus(theirs["oauth_signature"]) == form["oauth_signature"]


# ---- the hub ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hub():
    pytest.importorskip("jupyterhub", reason="jupyterhub is not installed (requirements-dev.txt)")
    pytest.importorskip("ltiauthenticator",
                        reason="jupyterhub-ltiauthenticator is not installed (requirements-dev.txt)")
    pytest.importorskip("requests", reason="requests (a dependency of jupyterhub) is not installed")
    from tests.hub import harness, lti_harness

    if harness.proxy_command() is None:
        pytest.skip("configurable-http-proxy is not installed: run `npm ci` at the repository root (package.json)")
    workdir = Path(tempfile.mkdtemp(prefix="vae-lti-test-"))
    marker = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "NBGRADER_EXECUTION", "VAELAB_CACHE")}
    env["VAE_HUB_TEST"] = marker
    ports = {"hub": labdriver.free_port(), "hub_api": labdriver.free_port(), "proxy_api": labdriver.free_port()}
    assert len(set(ports.values())) == 3
    secret = uuid.uuid4().hex
    left, ps, server = [], "", None
    try:
        t0 = time.monotonic()
        server = lti_harness.LtiHub(workdir / "hub", ports, KEY, secret, env, workdir / "jupyterhub.log")
        server.wait_ready()
        server.secret = secret
        server.start_s = round(time.monotonic() - t0, 1)
        yield server
    finally:
        try:
            if server is not None:
                server.close()
        finally:
            left = harness.leftovers(marker)
            ps = subprocess.run(["ps", "-eo", "pid,pgid,user,args"], capture_output=True, text=True).stdout
            for pid, _ in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            shutil.rmtree(workdir, ignore_errors=True)
    assert not left, f"processes of the LTI test still running after the hub stopped: {left}\n{ps}"


def _post(hub, form: dict, session=None):
    import requests

    session = session or requests.Session()
    reply = session.post(hub.launch_url, data=form, allow_redirects=True, timeout=60)
    return session, reply


def _logged_in_as(hub, session) -> str | None:
    """The hub's user of this browser session (GET /hub/api/user with its cookies), or None."""
    reply = session.get(f"{hub.url}/hub/api/user", timeout=30)
    return reply.json()["name"] if reply.status_code == 200 else None


@pytest.mark.slow
def test_canvas_launch_logs_the_student_in_under_the_canvas_user_id(hub):
    form = lti_launch.launch_form(hub.launch_url, KEY, hub.secret, canvas_launch())
    session, reply = _post(hub, form)
    assert reply.status_code == 200, (reply.status_code, reply.url, reply.text[:500], hub.log_tail())
    assert [r.status_code for r in reply.history] == [302], reply.history
    assert urlsplit(reply.url).path == "/hub/home", reply.url
    assert CANVAS_USER_ID in reply.text  # the hub's home page names the user
    assert _logged_in_as(hub, session) == CANVAS_USER_ID
    user = hub.user(CANVAS_USER_ID)
    assert user is not None and user["name"] == CANVAS_USER_ID and not user["admin"], user
    assert hub.user(CANVAS_LTI_USER_ID) is None  # the opaque LTI user_id is not the name
    # no server was started by the launch (this hub lands on /hub/home)
    assert not user["servers"], user


@pytest.mark.slow
def test_moodle_launch_without_canvas_fields_uses_the_lti_user_id(hub):
    form = lti_launch.launch_form(hub.launch_url, KEY, hub.secret, moodle_launch())
    session, reply = _post(hub, form)
    assert reply.status_code == 200 and urlsplit(reply.url).path == "/hub/home", (reply.status_code, reply.url)
    assert _logged_in_as(hub, session) == MOODLE_USER_ID
    assert hub.user(MOODLE_USER_ID) is not None


@pytest.mark.slow
def test_a_course_link_with_custom_next_goes_on_to_the_nbgitpuller_link(hub):
    # The LMS link's custom field next=... (sent as custom_next) sends the student on after the login:
    # the edition's nbgitpuller link, so one click in the LMS opens the assignment.
    link = ("/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgit.example.edu%2Fvae-course-student&branch=main"
            "&urlpath=lab%2Ftree%2Fvae-course-student%2Fassignments%2F01_elbo%2F01_elbo.ipynb")
    import requests

    form = lti_launch.launch_form(hub.launch_url, KEY, hub.secret, {**canvas_launch("5000020"), "custom_next": link})
    session = requests.Session()
    reply = session.post(hub.launch_url, data=form, allow_redirects=False, timeout=60)
    assert reply.status_code == 302 and reply.headers["Location"] == link, (reply.status_code, reply.headers)
    assert _logged_in_as(hub, session) == "5000020"


def _refused(hub, form: dict, reason: str, new_name: str | None = None):
    """Post ``form``: the hub answers 401 for ``reason`` (its own words), logs nobody in, creates no user."""
    before = hub.users()
    session, reply = _post(hub, form)
    assert reply.status_code == 401, (reply.status_code, reply.url, reply.text[:300])
    assert reason in reply.text, f"refused, but not for {reason!r}: {reply.text[:2000]}"
    assert not reply.history, f"a refused launch redirected: {reply.history}"
    assert "jupyterhub-hub-login" not in session.cookies and _logged_in_as(hub, session) is None
    assert hub.users() == before, "a refused launch created a user"
    if new_name is not None:
        assert hub.user(new_name) is None


@pytest.mark.slow
def test_forged_launches_are_refused_and_create_no_user(hub):
    url, bad = hub.launch_url, "Invalid oauth_signature"
    # signed with another secret
    _refused(hub, lti_launch.launch_form(url, KEY, hub.secret + "x", canvas_launch("5000001")), bad, "5000001")
    # a student changes the user id of their own (well-signed) launch to another student's
    form = lti_launch.launch_form(url, KEY, hub.secret, canvas_launch("5000002"))
    form["custom_canvas_user_id"] = "5000003"
    _refused(hub, form, bad, "5000003")
    # signed for another address (the signature covers the launch URL)
    _refused(hub, lti_launch.launch_form(url.replace("/hub/lti/launch", "/hub/lti/other"), KEY, hub.secret,
                                         canvas_launch("5000004")), bad, "5000004")
    # an unknown consumer key
    _refused(hub, lti_launch.launch_form(url, "another-course", hub.secret, canvas_launch("5000005")),
             "unknown oauth_consumer_key", "5000005")
    # a stale launch: well signed, two minutes old (the authenticator allows 30 s)
    _refused(hub, lti_launch.launch_form(url, KEY, hub.secret, canvas_launch("5000006"),
                                         timestamp=int(time.time()) - 120), "Timestamp given is invalid", "5000006")
    # the same launch, fresh: accepted (the refusals above were for the reasons given, nothing else)
    session, reply = _post(hub, lti_launch.launch_form(url, KEY, hub.secret, canvas_launch("5000006")))
    assert reply.status_code == 200 and _logged_in_as(hub, session) == "5000006"


@pytest.mark.slow
def test_a_replayed_launch_is_refused(hub):
    form = lti_launch.launch_form(hub.launch_url, KEY, hub.secret, canvas_launch("5000010"))
    first, reply = _post(hub, form)
    assert reply.status_code == 200 and _logged_in_as(hub, first) == "5000010"
    # the same form again (the same nonce and timestamp), from another browser: refused, not logged in
    _refused(hub, dict(form), "oauth_nonce + oauth_timestamp already used")
    assert hub.users().count("5000010") == 1
