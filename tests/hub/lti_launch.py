"""The LMS's side of an LTI 1.1 launch, for tests/test_lti.py: the form an LMS
(Canvas, Moodle) posts to the hub's ``/hub/lti/launch``, signed the way the
LMS signs it.

LTI 1.1 (IMS "Learning Tools Interoperability Implementation Guide", 1.1.1)
carries the launch as an ``application/x-www-form-urlencoded`` POST whose
body holds the LTI parameters and the OAuth 1.0a parameters, signed with
HMAC-SHA1 over the consumer secret. The signature below is written from RFC
5849 itself (section 3.4), not with oauthlib or the authenticator's code, so
that the test checks the hub against the specification rather than against
the library it uses:

- 3.6: percent-encode the UTF-8 bytes of every name and value, leaving only
  ``ALPHA / DIGIT / "-" / "." / "_" / "~"`` as they are, hex digits upper case;
- 3.4.1.3: all parameters of the request (query, form body, OAuth parameters
  less ``oauth_signature``), each name and value encoded, sorted by name then
  value, joined as ``name=value`` with ``&``;
- 3.4.1.2: the base string URI: scheme and host in lower case, the port only
  when it is not the scheme's default, the path, no query or fragment;
- 3.4.1.1: ``METHOD & encode(URI) & encode(normalized parameters)``;
- 3.4.2: HMAC-SHA1 with the key ``encode(consumer secret) & encode(token
  secret)`` (LTI 1.1 has no token: the key ends in ``&``), base64.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from urllib.parse import urlsplit, parse_qsl

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
DEFAULT_PORTS = {"http": 80, "https": 443}


def percent_encode(value: str) -> str:
    """RFC 5849 3.6."""
    return "".join(chr(byte) if byte in UNRESERVED else f"%{byte:02X}" for byte in str(value).encode("utf-8"))


def base_string_uri(url: str) -> str:
    """RFC 5849 3.4.1.2."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    authority = host if parts.port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{parts.port}"
    return f"{scheme}://{authority}{parts.path or '/'}"


def normalized_parameters(params: list[tuple[str, str]]) -> str:
    """RFC 5849 3.4.1.3.2: every parameter but oauth_signature, encoded, sorted, joined."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in params if k != "oauth_signature")
    return "&".join(f"{k}={v}" for k, v in encoded)


def signature_base_string(method: str, url: str, params: list[tuple[str, str]]) -> str:
    """RFC 5849 3.4.1.1; the URL's own query parameters count too (3.4.1.3.1)."""
    everything = list(params) + parse_qsl(urlsplit(url).query, keep_blank_values=True)
    return "&".join((method.upper(), percent_encode(base_string_uri(url)),
                     percent_encode(normalized_parameters(everything))))


def hmac_sha1(base_string: str, consumer_secret: str, token_secret: str = "") -> str:
    """RFC 5849 3.4.2."""
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode("ascii"), base_string.encode("ascii"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def launch_form(url: str, key: str, secret: str, lti: dict, *, timestamp: int | None = None,
                nonce: str | None = None) -> dict:
    """The signed form of a basic LTI 1.1 launch: ``lti`` (user_id, roles, resource_link_id, custom_*
    fields...) with the message type and version the specification requires and the OAuth parameters."""
    form = {
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
        **lti,
        "oauth_consumer_key": key,
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(int(time.time()) if timestamp is None else timestamp),
        "oauth_nonce": nonce or uuid.uuid4().hex,
        "oauth_version": "1.0",
        "oauth_callback": "about:blank",
    }
    form["oauth_signature"] = hmac_sha1(signature_base_string("POST", url, list(form.items())), secret)
    return form
