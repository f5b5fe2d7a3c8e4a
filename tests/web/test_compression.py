"""Stylesheets, scripts and the public pages a GET fetches go gzip-compressed to a browser that
accepts it; answers to a POST and the staff site's pages never do, and no compressed page shows
anything the request chose (BREACH)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from conftest import MINIMAL_REPORT, csrf_token, receipt_of
from flask import Flask
from flask.testing import FlaskClient
from test_headers import OTHER_HEADERS, check_response, public_get_pages

from portal.web import compression, resources

TOR_BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}


def test_every_public_get_page_goes_compressed_and_reads_the_same(app: Flask) -> None:
    compressed = []
    for path in public_get_pages(app):
        plain = app.test_client().get(path)
        response = app.test_client().get(path, headers=TOR_BROWSER)
        if path == "/static/portal.js" and response.status_code == 404:
            continue  # not built here; the bundle's own tests need it
        assert response.status_code in (200, 204), path
        check_response(plain, path)
        for name in ("Content-Security-Policy", *OTHER_HEADERS):
            assert response.headers.get(name) == plain.headers.get(name), (path, name)
        if response.status_code == 204 or "Content-Disposition" in response.headers:
            # No body, or a download made as it is sent (the offline sealer): as it is.
            assert "Content-Encoding" not in response.headers, path
            plain.close()
            response.close()
            continue
        assert "Accept-Encoding" in response.vary, path
        assert response.headers["Content-Encoding"] == "gzip", path
        body = response.get_data()
        assert int(response.headers["Content-Length"]) == len(body)
        decoded = gzip.decompress(body)
        if path.startswith("/static/"):
            assert decoded == (resources.STATIC / path.removeprefix("/static/")).read_bytes()
        else:
            # The same page but for its form token, under the same security policy.
            assert _without_token(decoded) == _without_token(plain.get_data()), path
            assert (
                response.headers["Content-Security-Policy"]
                == (plain.headers["Content-Security-Policy"])
            )
        assert len(body) < len(decoded), path
        if path in ("/en/submit", "/static/portal.css", "/static/portal.js"):
            assert len(body) < len(decoded) / 2, path
        compressed.append(path)
        plain.close()
        response.close()
    assert {"/en/submit", "/ar/follow-up", "/static/portal.css"} <= set(compressed)


def _without_token(page: bytes) -> bytes:
    return re.sub(rb'name="csrf_token" value="[^"]*"', b"", page)


def test_no_compressed_page_shows_what_the_request_chose(app: Flask) -> None:
    # BREACH needs text of the attacker's choosing in the same compressed answer as a secret:
    # a query string, a header, a cookie. A public GET page shows none of them.
    canary = "zq7canary"
    for path in public_get_pages(app):
        client = app.test_client()
        client.set_cookie("portal_public_extra", canary)
        response = client.get(
            f"{path}?q={canary}&next={canary}",
            headers={
                **TOR_BROWSER,
                "Accept-Language": f"{canary},fr",
                "Referer": f"http://{canary}.onion/",
                "User-Agent": canary,
                "X-Forwarded-For": canary,
            },
        )
        if response.status_code == 404 and path == "/static/portal.js":
            continue
        assert response.status_code in (200, 204), path
        body = response.get_data()
        if response.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        assert canary.encode() not in body, path
        response.close()


def test_answers_to_a_post_go_plain(app: Flask, client: FlaskClient) -> None:
    # The form shown again with a problem: what the person typed, beside a new form token.
    response = client.post(
        "/en/submit",
        data={"csrf_token": csrf_token(client), "description": "typed by the person"},
        headers=TOR_BROWSER,
    )
    assert response.status_code == 400
    assert "Content-Encoding" not in response.headers
    assert b"typed by the person" in response.get_data()
    # A receipt page.
    answer = client.post(
        "/en/submit", data={**MINIMAL_REPORT, "csrf_token": csrf_token(client)}, headers=TOR_BROWSER
    )
    assert answer.status_code == 200
    assert "Content-Encoding" not in answer.headers
    assert receipt_of(answer.get_data(as_text=True))


def test_the_staff_site_sends_its_pages_plain(staff_app: Flask) -> None:
    response = staff_app.test_client().get("/", headers=TOR_BROWSER, follow_redirects=True)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "Content-Encoding" not in response.headers


def test_a_browser_that_does_not_accept_gzip_gets_the_file_as_it_is(app: Flask) -> None:
    on_disk = (resources.STATIC / "portal.css").read_bytes()
    for headers in ({}, {"Accept-Encoding": "gzip;q=0, identity"}, {"Accept-Encoding": "br"}):
        response = app.test_client().get("/static/portal.css", headers=headers)
        assert response.status_code == 200
        assert "Content-Encoding" not in response.headers
        assert response.get_data() == on_disk
        assert "Accept-Encoding" in response.vary
        assert response.headers["Content-Type"].startswith("text/css")
        response.close()
    compressed = app.test_client().get("/static/portal.css", headers=TOR_BROWSER)
    assert compressed.headers["Content-Type"] == response.headers["Content-Type"]
    head = app.test_client().head("/static/portal.css", headers=TOR_BROWSER)
    assert head.status_code == 200
    assert head.headers["Content-Encoding"] == "gzip"
    assert head.get_data() == b""


def test_the_staff_stylesheet_is_compressed_too(staff_app: Flask) -> None:
    response = staff_app.test_client().get("/static/staff.css", headers=TOR_BROWSER)
    assert response.status_code == 200
    assert gzip.decompress(response.get_data()) == (resources.STATIC / "staff.css").read_bytes()
    response.close()


@pytest.mark.parametrize(
    "path", ["/static/nothing.css", "/static/../formats/crypto.py", "/static/%2e%2e/wsgi.py"]
)
def test_what_is_not_a_static_file_is_not_found_compressed_or_not(app: Flask, path: str) -> None:
    response = app.test_client().get(path, headers=TOR_BROWSER)
    assert response.status_code == 404
    assert "Content-Encoding" not in response.headers
    assert b"import" not in response.get_data()


def test_a_file_changed_on_disk_is_compressed_again(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_text("body { color: black }\n" * 100)
    made = compression.Compressed(tmp_path)
    first = made.get("a.css")
    assert first is not None
    assert made.get("a.css") is first
    (tmp_path / "a.css").write_text("body { color: navy }\n" * 200)
    again = made.get("a.css")
    assert again is not None
    assert gzip.decompress(again) == (tmp_path / "a.css").read_bytes()
    assert made.get("../a.css") is None
    assert made.get("missing.js") is None
    (tmp_path / "page.html").write_text("<p>no</p>")
    assert made.get("page.html") is None
