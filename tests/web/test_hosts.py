"""The sites answer only to their configured host names (and loopback in the demo).

Anything else gets a bare 400 before any view, session or rate limit sees the request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from conftest import MINIMAL_REPORT, csrf_token
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app

ONION = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz2345.onion"


@contextmanager
def site(initialised: dict[str, str], name: str = "public", **overrides: str) -> Iterator[Flask]:
    """One site of the test deployment with some settings changed."""
    app = create_app(name, {**initialised, **overrides})
    app.config.update(TESTING=True, RATELIMIT_ENABLED=False)
    try:
        yield app
    finally:
        app.extensions["portal"].engine.dispose()


def refused(client: FlaskClient, host: str, path: str = "/en/", method: str = "GET") -> bool:
    """Whether a request for `host` gets the bare refusal, and nothing else."""
    response = client.open(path, method=method, environ_overrides={"HTTP_HOST": host})
    if response.status_code != 400:
        return False
    assert response.get_data() == b"Bad request.\n"
    assert response.mimetype == "text/plain"
    assert "Set-Cookie" not in response.headers
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert response.headers["X-Frame-Options"] == "DENY"
    return True


OTHER_HOSTS = [
    "portal.example.org", "evil.example", "localhost.evil.example", "localhost@evil.example",
    "evil.example#localhost", "localhost:80:80", "localhost:port", "local host", "localhost.",
    "", "[::1]", "127.0.0.2", "LOCALHOST\x00", ONION,
]  # fmt: skip


@pytest.mark.parametrize("name", ["public", "staff"])
def test_other_host_names_get_a_bare_400(initialised: dict[str, str], name: str) -> None:
    with site(initialised, name) as app:
        client = app.test_client()
        for host in OTHER_HOSTS:
            assert refused(client, host, "/en/" if name == "public" else "/login"), repr(host)


def test_the_configured_names_are_served_whatever_the_port(client: FlaskClient) -> None:
    for host in ("localhost", "127.0.0.1", "localhost:8080", "LocalHost", "127.0.0.1:1"):
        assert not refused(client, host), host


def test_an_onion_deployment_answers_to_its_onion_name_only(initialised: dict[str, str]) -> None:
    with site(initialised, PORTAL_HOSTNAMES=ONION) as app:
        client = app.test_client()
        assert not refused(client, ONION)
        assert not refused(client, ONION.upper() + ":80")
        assert refused(client, "localhost")
        assert refused(client, "127.0.0.1")


def test_the_demo_also_answers_to_loopback(initialised: dict[str, str]) -> None:
    with site(initialised, PORTAL_HOSTNAMES=ONION, PORTAL_DEMO="1") as app:
        client = app.test_client()
        for host in (ONION, "localhost:8000", "127.0.0.1:8000", "[::1]:8000"):
            assert not refused(client, host), host
        assert refused(client, "portal.example.org")


def test_a_refused_host_reaches_no_view_and_no_rate_limit(initialised: dict[str, str]) -> None:
    with site(initialised, PORTAL_REPORT_RATE_LIMIT="2 per minute") as app:
        app.config["RATELIMIT_ENABLED"] = True
        client = app.test_client()
        for _ in range(5):
            assert refused(client, "evil.example", "/en/submit", "POST")
        data = {**MINIMAL_REPORT, "csrf_token": csrf_token(client)}
        assert client.post("/en/submit", data=data).status_code == 200
        assert client.post("/en/submit", data=data).status_code == 200
        assert client.post("/en/submit", data=data).status_code == 429
