"""Stylesheets and scripts go gzip-compressed to a browser that accepts it; pages never do."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from flask import Flask
from test_headers import check_response, public_get_pages

from portal.web import compression, resources

TOR_BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}


def test_pages_go_plain_and_stylesheets_and_scripts_compressed(app: Flask) -> None:
    compressed = []
    for path in public_get_pages(app):
        response = app.test_client().get(path, headers=TOR_BROWSER)
        if path == "/static/portal.js" and response.status_code == 404:
            continue  # not built here; the bundle's own tests need it
        assert response.status_code in (200, 204), path
        check_response(response, path)
        if path.startswith("/static/"):
            assert response.headers["Content-Encoding"] == "gzip", path
            assert "Accept-Encoding" in response.vary
            on_disk = (resources.STATIC / path.removeprefix("/static/")).read_bytes()
            body = response.get_data()
            assert gzip.decompress(body) == on_disk
            assert len(body) < len(on_disk) / 2
            assert int(response.headers["Content-Length"]) == len(body)
            compressed.append(path)
        else:
            # A page may hold a token or a receipt beside what the person typed (BREACH).
            assert "Content-Encoding" not in response.headers, path
        response.close()
    assert "/static/portal.css" in compressed


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
