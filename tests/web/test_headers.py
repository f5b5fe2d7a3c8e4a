"""Security headers on every response of both sites, a CSP per page as strict as the page allows,
and cookies only where a page needs one, each HttpOnly, SameSite=Strict and session-only.

The CSP of each page is parsed into directives and compared with what the page's HTML uses:
a page that loads no script gets no script-src, a page that links no image gets no img-src.
Every route of each site's URL map is visited, so a page added later is checked too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from html.parser import HTMLParser
from http.cookies import SimpleCookie

import pyotp
import pytest
from conftest import MINIMAL_REPORT, csrf_token, receipt_of
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal import create_app
from portal.web import headers, i18n

BASELINE = {
    "default-src": {"'none'"},
    "form-action": {"'self'"},
    "frame-ancestors": {"'none'"},
    "base-uri": {"'none'"},
}
PLAIN_BASELINE = {**BASELINE, "form-action": {"'none'"}}
OTHER_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
NEVER = ("Server", "X-Powered-By", "ETag", "Last-Modified")


def parse_csp(value: str) -> dict[str, set[str]]:
    """A Content-Security-Policy as directive -> set of sources; each directive once."""
    directives: dict[str, set[str]] = {}
    for part in value.split(";"):
        words = part.split()
        if not words:
            continue
        name = words[0].lower()
        assert name not in directives, f"{name} twice in {value!r}"
        directives[name] = set(words[1:])
    return directives


class _Uses(HTMLParser):
    """What a page's HTML asks the browser to load, run or send."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.inline_scripts = 0
        self.styles: list[str] = []
        self.icons: list[str] = []
        self.inline_styles = 0
        self.images = 0
        self.frames = 0
        self.forms: list[str] = []
        self.integrity: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if "style" in values:
            self.inline_styles += 1
        if any(name.startswith("on") for name in values):
            self.inline_scripts += 1
        if tag == "script":
            if values.get("src"):
                self.scripts.append(values["src"] or "")
                self.integrity.append(values.get("integrity") or "")
            else:
                self.inline_scripts += 1
        elif tag == "style":
            self.inline_styles += 1
        elif tag == "link" and "stylesheet" in (values.get("rel") or "").split():
            self.styles.append(values.get("href") or "")
        elif tag == "link" and "icon" in (values.get("rel") or "").split():
            self.icons.append(values.get("href") or "")
        elif tag in ("img", "picture", "video", "audio", "source", "svg"):
            self.images += 1
        elif tag in ("iframe", "frame", "object", "embed"):
            self.frames += 1
        elif tag == "form":
            self.forms.append(values.get("action") or "")
        for name in ("href", "src", "action"):
            target = values.get(name) or ""
            assert not target.lower().startswith("javascript:"), target


def needed_policy(html: str) -> dict[str, set[str]]:
    """The strictest policy this page can work under."""
    uses = _Uses()
    uses.feed(html)
    assert uses.inline_scripts == 0, "inline script or event handler: the CSP would block it"
    assert uses.inline_styles == 0, "inline style: the CSP would block it"
    assert uses.images == 0, "media the CSP does not allow"
    assert uses.frames == 0, "frames the CSP does not allow"
    for source in [*uses.scripts, *uses.styles, *uses.forms]:
        assert source.startswith("/"), f"{source} is not ours"
        assert not source.startswith("//"), f"{source} is not ours"
    assert all(value.startswith("sha384-") for value in uses.integrity), "script without SRI"
    policy = {name: set(sources) for name, sources in BASELINE.items()}
    if uses.styles:
        policy["style-src"] = {"'self'"}
    # The empty icon is the only image a page may load: an inline empty data: URL.
    assert set(uses.icons) <= {"data:,"}, uses.icons
    if uses.icons:
        policy["img-src"] = {"data:"}
    if uses.scripts:
        policy["script-src"] = {"'self'"}
        policy["connect-src"] = {"'self'"}
    return policy


def check_response(response: TestResponse, what: str) -> None:
    """Every header rule, for one response."""
    for name, value in OTHER_HEADERS.items():
        assert response.headers.get(name) == value, f"{what}: {name}"
    features = response.headers["Permissions-Policy"].split(", ")
    assert all(re.fullmatch(r"[a-z-]+=\(\)", feature) for feature in features), what
    assert {"camera", "microphone", "geolocation", "payment", "usb"} <= {
        f.split("=")[0] for f in features
    }
    for name in NEVER:
        assert name not in response.headers, f"{what}: {name}"
    policy = parse_csp(response.headers["Content-Security-Policy"])
    if response.mimetype == "text/html":
        assert policy == needed_policy(response.get_data(as_text=True)), what
    elif response.status_code >= 400 and response.mimetype == "text/plain":
        assert policy == PLAIN_BASELINE, what
    else:
        for name, sources in BASELINE.items():
            assert policy[name] == sources, f"{what}: {name}"
        assert set(policy) <= set(BASELINE) | {"style-src", "script-src", "connect-src"}, what
    check_cookies(response, what)


def check_cookies(response: TestResponse, what: str) -> None:
    """Every cookie HttpOnly, SameSite=Strict, gone when the browser closes."""
    for header in response.headers.getlist("Set-Cookie"):
        value = header.split(";", 1)[0].split("=", 1)[1]
        attributes = [a.strip().lower() for a in header.split(";")[1:]]
        if value == "" and "max-age=0" in attributes:
            continue  # a cookie being deleted
        assert "httponly" in attributes, f"{what}: {header}"
        assert "samesite=strict" in attributes, f"{what}: {header}"
        assert not any(a.startswith(("expires=", "max-age=")) for a in attributes), (
            f"{what}: {header} outlives the browser session"
        )
        assert "path=/" in attributes, f"{what}: {header}"


def cookie_names(response: TestResponse) -> list[str]:
    """The names of the cookies a response sets."""
    names = []
    for header in response.headers.getlist("Set-Cookie"):
        names.extend(SimpleCookie(header).keys())
    return names


# ---------------------------------------------------------------------------------------------
# The public site


def public_get_pages(app: Flask) -> Iterator[str]:
    """Every GET page of the public site's URL map, in every language."""
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()):
            continue
        if rule.endpoint == "static":
            yield from ("/static/portal.css", "/static/portal.js")
            continue
        if rule.endpoint == "public.upload_offsets":
            continue  # JSON for the sealing script about one upload (test_resumable.py)
        arguments = set(rule.arguments)
        assert arguments <= {"lang"}, f"{rule.rule}: a new kind of page for this test to fill in"
        if "lang" in arguments:
            for lang in i18n.LANGUAGES:
                yield rule.rule.replace("<lang>", lang)
        else:
            yield rule.rule


def test_every_get_page_of_the_public_site(app: Flask) -> None:
    pages = list(public_get_pages(app))
    assert len(pages) > 40
    for path in pages:
        # A fresh browser each time: a cookie set by an earlier page would hide a missing one.
        response = app.test_client().get(path)
        if path == "/static/portal.js" and response.status_code == 404:
            continue  # not built here; the bundle's own tests need it
        assert response.status_code in (200, 204), path
        check_response(response, path)
        needs_session = re.search(r"/(submit|follow-up|sealed-case)$", path) is not None
        assert bool(cookie_names(response)) == needs_session, (
            f"{path}: a cookie where none is needed, or none where the form needs one"
        )
        response.close()


@contextmanager
def public_site(initialised: dict[str, str], **overrides: str) -> Iterator[FlaskClient]:
    """A client of the public site with some settings changed."""
    app = create_app("public", {**initialised, **overrides})
    app.config.update(TESTING=True, RATELIMIT_ENABLED=False)
    try:
        yield app.test_client()
    finally:
        app.extensions["portal"].engine.dispose()


def _report(client: FlaskClient, **fields: str) -> TestResponse:
    return client.post(
        "/en/submit", data={**MINIMAL_REPORT, "csrf_token": csrf_token(client), **fields}
    )


POSTED: dict[str, Callable[[FlaskClient], TestResponse]] = {
    "receipt": lambda c: _report(c),
    "form with a problem": lambda c: _report(c, description=""),
    "expired form": lambda c: _report(c, csrf_token="expired"),
    "honeypot": lambda c: _report(c, website="http://spam.example"),
    "reply key and ticket": lambda c: c.post(
        "/en/submit/prepare", data={"csrf_token": csrf_token(c)}
    ),
    "ticket refused": lambda c: c.post("/en/submit/prepare", data={"csrf_token": "expired"}),
    "sealed upload refused": lambda c: c.post(
        "/en/submit/sealed", data={"csrf_token": csrf_token(c), "file_count": "0"}
    ),
    "unknown receipt": lambda c: c.post(
        "/en/follow-up", data={"receipt": "1" * 25, "csrf_token": csrf_token(c, "/en/follow-up")}
    ),
    "case page": lambda c: c.post(
        "/en/follow-up",
        data={
            "receipt": receipt_of(_report(c).get_data(as_text=True)),
            "csrf_token": csrf_token(c, "/en/follow-up"),
        },
    ),
    "follow-up sent": lambda c: c.post(
        "/en/follow-up",
        data={
            "receipt": receipt_of(_report(c).get_data(as_text=True)),
            "step": "add",
            "message": "More about the travel ban.",
            "csrf_token": csrf_token(c, "/en/follow-up"),
        },
    ),
    "page not found": lambda c: c.get("/en/nothing-here"),
    "method not allowed": lambda c: c.delete("/en/submit"),
    "unknown host": lambda c: c.get("/en/", headers={"Host": "portal.example.org"}),
    "static file missing": lambda c: c.get("/static/../portal/config.py"),
}


@pytest.mark.parametrize("name", POSTED)
def test_every_answer_to_a_form_or_a_mistake(client: FlaskClient, name: str) -> None:
    response = POSTED[name](client)
    assert response.status_code < 500, name
    check_response(response, name)


def test_a_limited_report_a_too_large_one_and_a_full_store(initialised: dict[str, str]) -> None:
    with public_site(initialised, PORTAL_REPORT_RATE_LIMIT="1 per minute") as client:
        client.application.config["RATELIMIT_ENABLED"] = True
        _report(client)
        limited = _report(client)
        assert limited.status_code == 429
        check_response(limited, "limited")
    with public_site(initialised, PORTAL_MAX_UPLOAD_BYTES=str(1024 * 1024)) as client:
        # The body as bytes: the test client would spool a dict this large to a temporary file.
        too_large = client.post(
            "/en/submit",
            data=b"--x\r\n" + b"x" * 2 * 1024 * 1024,
            content_type="multipart/form-data; boundary=x",
        )
        assert too_large.status_code == 413
        check_response(too_large, "too large")
    with public_site(initialised, PORTAL_STORAGE_QUOTA_BYTES="1") as client:
        full = _report(client)
        assert full.status_code == 503
        check_response(full, "full")


def test_an_unexpected_error_page(initialised: dict[str, str]) -> None:
    app = create_app("public", initialised)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("a secret in an error message")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert "a secret" not in response.get_data(as_text=True)
    check_response(response, "500")
    app.extensions["portal"].engine.dispose()


def test_a_script_page_allows_the_script_and_its_upload_and_nothing_more(
    client: FlaskClient,
) -> None:
    policy = parse_csp(client.get("/en/submit").headers["Content-Security-Policy"])
    assert policy["script-src"] == {"'self'"}
    assert policy["connect-src"] == {"'self'"}
    assert "'unsafe-inline'" not in str(policy)
    assert "'unsafe-eval'" not in str(policy)


def test_the_onion_location_header_points_a_clearnet_visitor_to_the_same_page(
    initialised: dict[str, str],
) -> None:
    onion = "http://" + "a" * 56 + ".onion"
    with public_site(
        initialised,
        PORTAL_ONION_LOCATION=onion,
        PORTAL_HOSTNAMES="portal.example.org," + "a" * 56 + ".onion",
    ) as client:
        clearnet = client.get("/en/key?x=1", headers={"Host": "portal.example.org"})
        assert clearnet.headers["Onion-Location"] == onion + "/en/key"
        over_tor = client.get("/en/key", headers={"Host": "a" * 56 + ".onion"})
        assert "Onion-Location" not in over_tor.headers
    assert (
        "Onion-Location" not in create_app("public", initialised).test_client().get("/en/").headers
    )


# ---------------------------------------------------------------------------------------------
# The staff site


def staff_get_pages(app: Flask) -> list[str]:
    """Every GET page of the staff site's URL map."""
    pages = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()):
            continue
        if rule.endpoint == "static":
            pages.append("/static/portal.css")
            continue
        assert not rule.arguments, f"{rule.rule}: a new kind of page for this test to fill in"
        pages.append(rule.rule)
    return pages


def signed_in(app: Flask) -> FlaskClient:
    """A client signed in to the staff site with a new account."""
    from portal.server import accounts

    services = app.extensions["portal"]
    with services.sessions() as session:
        credentials = accounts.create(session, "amina", date.today())
        session.commit()
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = client.post(
        "/login",
        data={
            "name": "amina",
            "passphrase": credentials.passphrase,
            "csrf_token": token.group(1),
            "code": pyotp.TOTP(credentials.totp_secret).now(),
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    check_response(response, "signed in")
    return client


def test_every_get_page_of_the_staff_site_signed_out_and_in(staff_app: Flask) -> None:
    pages = staff_get_pages(staff_app)
    assert "/login" in pages
    for path in pages:
        response = staff_app.test_client().get(path)
        assert response.status_code in (200, 204, 303), path
        check_response(response, f"signed out: {path}")
        response.close()
    client = signed_in(staff_app)
    for path in pages:
        response = client.get(path)
        assert response.status_code in (200, 204, 303), path
        check_response(response, f"signed in: {path}")
        response.close()


def test_the_staff_sites_mistakes(staff_app: Flask) -> None:
    client = staff_app.test_client()
    for response, what in (
        (client.get("/nothing-here"), "404"),
        (client.put("/login"), "405"),
        (client.get("/login", headers={"Host": "elsewhere.example"}), "host"),
        (client.post("/login", data={"name": "x"}), "no CSRF token"),
    ):
        assert 400 <= response.status_code < 500, what
        check_response(response, what)


def test_the_headers_module_denies_every_feature_it_lists() -> None:
    value = headers.HEADERS["Permissions-Policy"]
    assert value.count("=()") == len(headers.DENIED_FEATURES)
