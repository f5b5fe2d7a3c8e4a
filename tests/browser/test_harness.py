"""Tests of the real-browser harness, against small static pages served on loopback."""

from __future__ import annotations

import http.client
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Request, Response

from .harness import (
    BROWSERS,
    LEVELS,
    SECURITY_LEVEL_PREFS,
    BodyRecorder,
    Chromium,
    Firefox,
    browser_unavailable,
    chromium_unavailable,
    firefox_prefs,
    firefox_unavailable,
    format_violations,
    group_alive,
    is_png,
    launch,
    layout_problems,
    run_axe,
    screenshot_dir,
    serve_wsgi,
    write_user_js,
)

pytestmark = pytest.mark.browser

FIREFOX_SPECS = [f"firefox-{level}" for level in LEVELS]
CHROMIUM_SPECS = ["chromium-js", "chromium-nojs"]
SCRIPTS_RUN = {
    "firefox-standard": True,
    "firefox-safer": True,
    "firefox-safest": False,
    "chromium-js": True,
    "chromium-nojs": False,
}

# --- The pages ----------------------------------------------------------------------------------


def page(title: str, body: str, head: str = "") -> str:
    """A small valid page that passes axe unless its body plants a problem."""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<link rel="stylesheet" href="/static/site.css">{head}</head>
<body><main><h1>{title}</h1>{body}</main></body></html>"""


FORM_PAGE = page(
    "Report",
    """
<p id="js-state">Scripts did not run.</p>
<form id="report-form" method="post" enctype="multipart/form-data" action="/submit">
  <input type="hidden" name="csrf_token" value="token">
  <p><label for="name">Name</label><input id="name" name="name" type="text"></p>
  <p><label for="account">What happened</label>
    <textarea id="account" name="account" rows="4"></textarea></p>
  <fieldset><legend>You are</legend>
    <label><input type="radio" name="role" value="victim" id="role-victim"> A victim</label>
    <label><input type="radio" name="role" value="witness" id="role-witness"> A witness</label>
  </fieldset>
  <fieldset><legend>What was done</legend>
    <label><input type="checkbox" name="kinds" value="threats" id="kind-threats"> Threats</label>
    <label><input type="checkbox" name="kinds" value="travel-ban" id="kind-travel">
      Travel ban</label>
    <label><input type="checkbox" name="kinds" value="detention" id="kind-detention">
      Detention</label>
  </fieldset>
  <p><label for="country">Country</label><select id="country" name="country">
    <option value="">Choose a country</option><option value="fr">France</option>
    <option value="ng">Nigeria</option></select></p>
  <p><label for="languages">Languages</label><select id="languages" name="languages" multiple>
    <option value="ar">Arabic</option><option value="en">English</option>
    <option value="zh">Chinese</option></select></p>
  <p><label for="attachments">Files</label>
    <input id="attachments" name="attachments" type="file" multiple></p>
  <p><button type="submit" id="send">Send</button></p>
</form>
<script src="/static/form.js"></script>""",
)
FORM_JS = """document.getElementById('js-state').textContent =
  'Scripts ran; WebAssembly ' + (typeof WebAssembly === 'object' ? 'on' : 'off') + '.';"""

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " form-action 'self'; base-uri 'none'"
)
CSP_PAGE = page(
    "Strict page",
    """<p id="csp-state">The script from this site did not run.</p>
<script>document.title = 'inline script ran';</script>""",
    head='<script src="/static/csp.js" defer></script>',
)
CSP_JS = "document.getElementById('csp-state').textContent = 'The script from this site ran.';"

WIDE_PAGE = page(
    "Wide",
    '<div id="too-wide">This box is far wider than any phone.</div>',
    head="<style>#too-wide { width: 2000px; }</style>",
)
OVERLAP_PAGE = page(
    "Overlap",
    """<p><label for="first">First</label> <label for="second">Second</label></p>
<div class="stack"><input id="first" name="first"><input id="second" name="second"></div>""",
    head="""<style>.stack { position: relative; height: 4rem; }
.stack input { position: absolute; top: 0; left: 0; width: 12rem; }</style>""",
)
INACCESSIBLE_PAGE = page(
    "Inaccessible", '<img src="/static/missing.png"><form><input name="q" id="q"></form>'
)
SITE_CSS = """body { font: 16px/1.5 sans-serif; margin: 0 auto; max-width: 40rem; padding: 1rem; }
input[type=text], textarea, select { box-sizing: border-box; display: block; width: 100%; }
fieldset label { display: block; }"""

PAGES: dict[str, tuple[str, str]] = {
    "/form": ("text/html", FORM_PAGE),
    "/csp": ("text/html", CSP_PAGE),
    "/wide": ("text/html", WIDE_PAGE),
    "/overlap": ("text/html", OVERLAP_PAGE),
    "/inaccessible": ("text/html", INACCESSIBLE_PAGE),
    "/static/site.css": ("text/css", SITE_CSS),
    "/static/form.js": ("text/javascript", FORM_JS),
    "/static/csp.js": ("text/javascript", CSP_JS),
}


class StaticSite:
    """The test pages, and every form posted to /submit (parsed) for the tests to inspect."""

    def __init__(self) -> None:
        self.submissions: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Answer one request."""
        # Closing the request deletes the spooled files of a multipart body.
        with Request(environ) as request:
            return self._respond(request)(environ, start_response)

    def _respond(self, request: Request) -> Response:
        if request.path == "/submit" and request.method == "POST":
            files: list[FileStorage] = request.files.getlist("attachments")
            self.submissions.append(
                {
                    "form": {key: request.form.getlist(key) for key in request.form},
                    "files": [(f.filename, f.read()) for f in files],
                }
            )
            return Response(
                page("Received", '<p id="received">Thank you.</p>'), mimetype="text/html"
            )
        if request.path == "/echo":
            request.get_data()
            return Response("ok", mimetype="text/plain")
        if request.path not in PAGES:
            return Response("not found", status=404)
        mimetype, text = PAGES[request.path]
        response = Response(text, mimetype=mimetype)
        if request.path == "/csp":
            response.headers["Content-Security-Policy"] = CSP
        return response


@pytest.fixture(scope="module")
def site() -> StaticSite:
    """The application behind the test server."""
    return StaticSite()


@pytest.fixture(scope="module")
def recorder(site: StaticSite) -> Iterator[BodyRecorder]:
    """Records every raw body the test server receives (spooling to disk above 4 KiB)."""
    with BodyRecorder(site, spool_bytes=4096) as recording:
        yield recording


@pytest.fixture(scope="module")
def base_url(recorder: BodyRecorder) -> Iterator[str]:
    """The test server's base URL."""
    with serve_wsgi(recorder) as url:
        yield url


@pytest.fixture(scope="module", params=BROWSERS)
def browser(request: pytest.FixtureRequest) -> Iterator[Firefox | Chromium]:
    """One browser per kind and level for the whole module."""
    reason = browser_unavailable(request.param)
    if reason:
        pytest.skip(reason)
    with launch(request.param) as started:
        yield started


@pytest.fixture(scope="module")
def axe_path() -> Path:
    """axe-core's axe.min.js: AXE_CORE_JS, or the project's node_modules."""
    default = Path(__file__).resolve().parents[2] / "node_modules/axe-core/axe.min.js"
    path = Path(os.environ.get("AXE_CORE_JS", default))
    if not path.is_file():
        pytest.skip(f"axe-core not found at {path}: run npm install (or set AXE_CORE_JS)")
    return path


# --- Without a browser --------------------------------------------------------------------------


def test_screenshot_dir_stays_under_test_artifacts() -> None:
    """Slashes make subfolders; nothing leads out of test-artifacts/screenshots."""
    root = screenshot_dir("harness").parent
    assert root.parts[-2:] == ("test-artifacts", "screenshots")
    assert screenshot_dir("harness/firefox-safer") == root / "harness" / "firefox-safer"
    assert screenshot_dir("../../etc/x[1]") == root / "etc" / "x_1"


def test_level_prefs_build_on_each_other(tmp_path: Path) -> None:
    """Safest holds every Safer pref; a SOCKS proxy takes loopback too; user.js is valid."""
    safer, safest = SECURITY_LEVEL_PREFS["safer"], SECURITY_LEVEL_PREFS["safest"]
    assert SECURITY_LEVEL_PREFS["standard"] == {}
    assert safer.items() <= safest.items()
    assert safest["javascript.enabled"] is False
    prefs = firefox_prefs("safer", socks_proxy=("127.0.0.1", 9050))
    assert prefs["network.proxy.type"] == 1
    assert prefs["network.proxy.socks_remote_dns"] is True
    assert prefs["network.proxy.allow_hijacking_localhost"] is True
    assert prefs["network.proxy.no_proxies_on"] == ""
    assert firefox_prefs("standard")["network.proxy.type"] == 0
    with pytest.raises(ValueError, match="unknown security level"):
        firefox_prefs("paranoid")
    text = write_user_js(tmp_path, {"javascript.enabled": False, "a.b": 'x"y', "c": 5}).read_text()
    assert text.splitlines() == [
        'user_pref("javascript.enabled", false);',
        'user_pref("a.b", "x\\"y");',
        'user_pref("c", 5);',
    ]


def test_body_recorder_keeps_what_the_app_did_not_read() -> None:
    """The app sees the body unchanged; the record holds every byte, found across chunk borders."""
    seen: list[bytes] = []

    def refusing_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        seen.append(environ["wsgi.input"].read(10))
        start_response("413 Content Too Large", [("Content-Type", "text/plain")])
        return [b"too large"]

    marker = b"PLAINTEXT-MARKER"
    body = os.urandom(10) + b"a" * ((1 << 20) - 18) + marker + os.urandom(2_000_000)
    with BodyRecorder(refusing_app, spool_bytes=1 << 16) as recorder, serve_wsgi(recorder) as url:
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
        connection.request("POST", "/upload", body=body)
        response = connection.getresponse()
        assert response.status == 413
        response.read()
        connection.close()
        deadline = time.monotonic() + 10
        while len(recorder.records()[0].body) < len(body) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == [body[:10]]
        assert recorder.bodies() == [("POST", "/upload", body)]
        assert recorder.contains(marker)
        assert not recorder.contains(b"NOT-SENT-" + marker)


# --- The form journey ---------------------------------------------------------------------------

NAME = "Maryam Ḿ 你好 مرحبا"
ACCOUNT = "Line one.\nLine two, with é."


def test_form_journey(
    browser: Firefox | Chromium,
    site: StaticSite,
    recorder: BodyRecorder,
    base_url: str,
    tmp_path: Path,
) -> None:
    """Every kind of control and two files reach the server intact, at every level."""
    text_file = tmp_path / "statement.txt"
    text_file.write_bytes(f"statement {browser.name} ".encode() + "ÄØ 证据".encode())
    binary_file = tmp_path / "photo.bin"
    binary_file.write_bytes(bytes(range(256)) * 64 + os.urandom(30_000))
    shots = screenshot_dir(f"harness/{browser.name}")

    browser.goto(f"{base_url}/form")
    browser.wait_for("#send")
    browser.wait_for("[name=csrf_token]", visible=False)
    assert browser.count("fieldset") == 2
    assert browser.is_visible("#name")
    assert not browser.is_visible("[name=csrf_token]")
    assert not browser.is_visible("#no-such-element")
    assert browser.attribute("#attachments", "multiple") is not None
    assert browser.attribute("#attachments", "accept") is None
    assert 'id="report-form"' in browser.page_source()
    browser.check("#kind-travel")
    browser.uncheck("#kind-travel")
    browser.fill("#name", "typed over")
    browser.execute(
        "document.querySelector('[name=csrf_token]').value = arguments[0]", browser.name
    )
    browser.fill("#name", NAME)
    browser.fill("#account", ACCOUNT)
    browser.check("#role-witness")
    browser.check("#kind-threats")
    browser.check("#kind-detention")
    browser.select("#country", "ng")
    browser.select("#languages", ["ar", "zh"])
    browser.set_files("#attachments", [text_file, binary_file])
    assert browser.value("#name") == NAME
    assert is_png(browser.screenshot(shots / "form.png"))
    browser.submit_and_wait("#send")
    assert browser.text("#received") == "Thank you."
    assert is_png(browser.screenshot(shots / "received.png", full_page=False))

    [submission] = [s for s in site.submissions if s["form"]["csrf_token"] == [browser.name]]
    form = submission["form"]
    assert form["name"] == [NAME]
    assert [v.replace("\r\n", "\n") for v in form["account"]] == [ACCOUNT]
    assert form["role"] == ["witness"]
    assert form["kinds"] == ["threats", "detention"]
    assert form["country"] == ["ng"]
    assert form["languages"] == ["ar", "zh"]
    assert submission["files"] == [
        ("statement.txt", text_file.read_bytes()),
        ("photo.bin", binary_file.read_bytes()),
    ]
    assert recorder.contains(binary_file.read_bytes()[-5000:])

    # A submission that replaces part of the page rather than loading a new one is awaited
    # through wait_for (here the page does load anew, which satisfies it too).
    browser.goto(f"{base_url}/form")
    browser.submit_and_wait("#send", wait_for="#received")
    with pytest.raises(TimeoutError, match="#report-form"):
        browser.wait_for("#report-form", timeout=0.2)


def test_scripts_run_where_the_level_allows(browser: Firefox | Chromium, base_url: str) -> None:
    """Page scripts run at Standard and Safer (no WebAssembly there) and not at Safest."""
    browser.goto(f"{base_url}/form")
    expected = {
        "firefox-standard": "Scripts ran; WebAssembly on.",
        "firefox-safer": "Scripts ran; WebAssembly off.",
        "firefox-safest": "Scripts did not run.",
        "chromium-js": "Scripts ran; WebAssembly on.",
        "chromium-nojs": "Scripts did not run.",
    }[browser.name]
    assert browser.text("#js-state") == expected


def test_strict_csp_is_enforced(browser: Firefox | Chromium, base_url: str) -> None:
    """A same-origin script runs under script-src 'self' where scripts run; inline never does."""
    browser.goto(f"{base_url}/csp")
    if SCRIPTS_RUN[browser.name]:
        expected = "The script from this site ran."
    else:
        expected = "The script from this site did not run."
    deadline = time.monotonic() + 5
    while browser.text("#csp-state") != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert browser.text("#csp-state") == expected
    assert browser.execute("return document.title") == "Strict page"


# --- Security level prefs -----------------------------------------------------------------------


@pytest.mark.parametrize("browser", FIREFOX_SPECS, indirect=True)
def test_security_level_prefs_are_in_effect(browser: Firefox) -> None:
    """Firefox itself reports each security level's prefs (and knows every one of them)."""
    for level in LEVELS:
        for name in SECURITY_LEVEL_PREFS[level]:
            assert browser.get_pref(name) is not None, f"Firefox does not know the pref {name}"
    for name, value in SECURITY_LEVEL_PREFS[browser.level].items():
        assert browser.get_pref(name) == value, name
    jit = (
        "javascript.options.ion",
        "javascript.options.baselinejit",
        "javascript.options.native_regexp",
        "javascript.options.wasm",
    )
    for name in jit:
        assert browser.get_pref(name) is (browser.level == "standard"), name
    assert browser.get_pref("javascript.enabled") is (browser.level != "safest")
    assert browser.get_pref("network.proxy.type") == 0
    assert browser.get_pref("privacy.resistFingerprinting") is True


@pytest.mark.parametrize("browser", ["firefox-standard"], indirect=True)
def test_firefox_viewport(browser: Firefox, base_url: str) -> None:
    """The window can be sized for a given viewport, and refuses what Firefox cannot do."""
    browser.goto(f"{base_url}/form")
    before = browser.execute("return [window.innerWidth, window.innerHeight]")
    try:
        browser.set_viewport(640, 700)
        assert browser.execute("return [window.innerWidth, window.innerHeight]") == [640, 700]
        with pytest.raises(RuntimeError, match="Chromium"):
            browser.set_viewport(360, 740)
    finally:
        browser.set_viewport(*before)


# --- Layout -------------------------------------------------------------------------------------


def test_layout_problems(browser: Firefox | Chromium, base_url: str) -> None:
    """Too-wide content and overlapping controls are found; a clean form gives nothing."""
    browser.goto(f"{base_url}/form")
    assert layout_problems(browser) == []
    browser.goto(f"{base_url}/wide")
    wide = layout_problems(browser)
    assert any("wider than the window" in p for p in wide), wide
    assert any(p.startswith("div#too-wide") and "right edge" in p for p in wide), wide
    browser.goto(f"{base_url}/overlap")
    [overlap] = layout_problems(browser)
    assert overlap.startswith('input#first[name="first"]'), overlap
    assert 'input#second[name="second"]' in overlap
    assert "overlap by" in overlap


@pytest.mark.skipif(bool(chromium_unavailable()), reason=str(chromium_unavailable()))
def test_narrow_viewport(base_url: str) -> None:
    """At 360x740 the form still fits and the wide page does not."""
    with Chromium(viewport=(360, 740)) as narrow:
        narrow.goto(f"{base_url}/form")
        assert narrow.execute("return window.innerWidth") == 360
        assert layout_problems(narrow) == []
        narrow.goto(f"{base_url}/wide")
        assert any("360 px window" in p for p in layout_problems(narrow))
        assert is_png(narrow.screenshot(screenshot_dir("harness/chromium-360") / "wide.png"))


# --- Accessibility ------------------------------------------------------------------------------


@pytest.mark.parametrize("browser", CHROMIUM_SPECS, indirect=True)
def test_axe(browser: Chromium, base_url: str, axe_path: Path) -> None:
    """axe finds the planted violations, none on clean pages (strict CSP included)."""
    browser.goto(f"{base_url}/inaccessible")
    found = run_axe(browser, axe_path)
    assert {"image-alt", "label"} <= {v["id"] for v in found}, format_violations(found)
    assert "#q" in format_violations(found)
    for path in ("/form", "/csp"):
        browser.goto(f"{base_url}{path}")
        violations = run_axe(browser, axe_path)
        assert violations == [], format_violations(violations)
    # The audit must leave a page without JavaScript without JavaScript.
    browser.goto(f"{base_url}/form")
    expected = "Scripts ran" if browser.javascript_enabled else "Scripts did not run"
    assert browser.text("#js-state").startswith(expected)


# --- Chromium's request log ---------------------------------------------------------------------


@pytest.mark.parametrize("browser", ["chromium-js"], indirect=True)
def test_request_log(browser: Chromium, base_url: str) -> None:
    """Bodies of script-sent requests are logged whole; form posts with files are flagged."""
    browser.goto(f"{base_url}/form")
    browser.clear_requests()
    browser.page.evaluate("""async () => {
      const data = new FormData();
      data.append('blob', new Blob([new Uint8Array([0, 255, 77, 65, 82, 75])]), '0.blob');
      await fetch('/echo', {method: 'POST', body: data});
    }""")
    [sent] = [r for r in browser.requests() if r.url.endswith("/echo")]
    assert sent.method == "POST"
    assert sent.body_complete
    assert sent.body is not None
    assert b"\x00\xffMARK" in sent.body
    browser.set_files("#attachments", [__file__])
    browser.submit_and_wait("#send")
    [posted] = [r for r in browser.requests() if r.url.endswith("/submit")]
    assert posted.resource_type == "document"
    assert not posted.body_complete


# --- Through a SOCKS proxy, and cleaning up -----------------------------------------------------


class Socks5Recorder:
    """A SOCKS5 proxy sending every connection to one local port, noting what was asked for."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.destinations: list[tuple[str, int]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        with client:
            _version, methods = client.recv(2)
            client.recv(methods)
            client.sendall(b"\x05\x00")
            _version, _command, _reserved, kind = client.recv(4)
            if kind == 3:
                host = client.recv(client.recv(1)[0]).decode()
            else:
                family, size = (socket.AF_INET, 4) if kind == 1 else (socket.AF_INET6, 16)
                host = socket.inet_ntop(family, client.recv(size))
            (port,) = struct.unpack("!H", client.recv(2))
            self.destinations.append((host, port))
            if port not in (80, self.target_port):
                client.sendall(b"\x05\x05\x00\x01" + bytes(6))  # refused, as by an http-only onion
                return
            with socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
                client.sendall(b"\x05\x00\x00\x01" + bytes(6))
                self._relay(client, upstream)

    @staticmethod
    def _relay(client: socket.socket, upstream: socket.socket) -> None:
        while True:
            ready, _, _ = select.select([client, upstream], [], [], 30)
            if not ready:
                return
            for source in ready:
                data = source.recv(65536)
                if not data:
                    return
                (upstream if source is client else client).sendall(data)

    def close(self) -> None:
        """Stop accepting connections."""
        self._listener.close()


def browse_onion_then_fail(proxy_port: int, base_url: str, seen: dict[str, Any]) -> None:
    """At Safest through the proxy, load an onion and a loopback page, then fail."""
    with Firefox("safest", socks_proxy=("127.0.0.1", proxy_port)) as firefox:
        seen["pid"], seen["profile"] = firefox.pid, firefox._profile
        firefox.goto("http://reprisalsportaltest.onion/csp")
        seen["onion text"] = firefox.text("#csp-state")
        seen["onion secure"] = firefox.execute("return window.isSecureContext")
        firefox.goto(f"{base_url}/form")
        seen["loopback title"] = firefox.text("h1")
        raise ZeroDivisionError("a test failing inside the with statement")


@pytest.mark.skipif(bool(firefox_unavailable()), reason=str(firefox_unavailable()))
def test_socks_proxy_and_cleanup(base_url: str) -> None:
    """Onion and loopback go through the proxy by name; a failing test still cleans up."""
    port = int(base_url.rsplit(":", 1)[1])
    proxy = Socks5Recorder(port)
    seen: dict[str, Any] = {}
    try:
        with pytest.raises(ZeroDivisionError):
            browse_onion_then_fail(proxy.port, base_url, seen)
    finally:
        proxy.close()
    assert seen["onion text"] == "The script from this site did not run."
    assert seen["onion secure"] is True
    assert seen["loopback title"] == "Report"
    assert ("reprisalsportaltest.onion", 80) in proxy.destinations
    assert ("127.0.0.1", port) in proxy.destinations
    # Nothing else was contacted. (Firefox also tries the favicon of an onion page, a secure
    # context, on port 443: it upgrades it as mixed display content.)
    assert {host for host, _ in proxy.destinations} == {"reprisalsportaltest.onion", "127.0.0.1"}
    assert not group_alive(seen["pid"])
    assert not seen["profile"].exists()
