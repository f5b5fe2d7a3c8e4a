"""The offline sealer opened from disk: seal a case, save it, upload it, and open it offline.

`sealer.html` is made for the test deployment's key and opened from `file://` in Firefox ESR
at Tor Browser's Standard and Safer levels and in Chromium. A case is filled in, in English
and in Arabic, with two attachments (one of 20 MiB), sealed and saved; the saved file is
uploaded on the organisations' form of the public site, exported, and `portal decrypt` gives
back every answer and byte. While the file is open no request leaves the browser: Chromium
reports every request it makes, and Firefox sends everything but loopback to a proxy that
records each connection (loopback requests would reach the test site, which records them).
At Safest (no scripts) the file says it needs scripts and names `portal seal`.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.formats import crypto, receipts
from portal.offline import sealer, sealer_texts
from portal.server.models import Case

from .conftest import LEVEL_BROWSERS, LiveSite
from .harness import Chromium, Firefox, browser_unavailable, launch
from .test_journeys import Offline, offline  # noqa: F401 (the fixture)

pytestmark = pytest.mark.browser

BIG = 20 * 1024 * 1024
SEAL_TIMEOUT = 180.0
ANSWERS = {
    "en": "Threatened after speaking to the Human Rights Council in Geneva.",
    "ar": "تعرّضتُ للتهديد بعد حديثي أمام مجلس حقوق الإنسان في جنيف.",
}


class ConnectionRecorder:
    """A TCP listener on loopback that records every connection made to it (a proxy that is
    never a proxy): Firefox is told to send every request through it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections: list[bytes] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _address = self.server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(1)
                try:
                    self.connections.append(connection.recv(200))
                except OSError:
                    self.connections.append(b"")

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def sealer_browser(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Firefox | Chromium, Path, ConnectionRecorder]]:
    """A browser that saves downloads to a folder; Firefox's every request goes to a recorder."""
    spec = LEVEL_BROWSERS[request.param]
    reason = browser_unavailable(spec)
    if reason:
        pytest.skip(reason)
    downloads = tmp_path_factory.mktemp("downloads")
    recorder = ConnectionRecorder()
    options: dict[str, object] = {}
    if spec.startswith("firefox"):
        options["extra_prefs"] = {
            "browser.download.folderList": 2,
            "browser.download.dir": str(downloads),
            "browser.download.useDownloadDir": True,
            "browser.download.always_ask_before_handling_new_types": False,
            "browser.download.alwaysOpenPanel": False,
            "browser.helperApps.neverAsk.saveToDisk": "application/octet-stream",
            "network.proxy.type": 1,
            **{f"network.proxy.{kind}": "127.0.0.1" for kind in ("http", "ssl", "socks")},
            **{f"network.proxy.{kind}_port": recorder.port for kind in ("http", "ssl", "socks")},
            "network.proxy.socks_remote_dns": True,
        }
    try:
        with launch(spec, **options) as started:
            if isinstance(started, Chromium):
                # Headless Chromium cannot answer a save dialog: save through the link.
                started.page.add_init_script("delete window.showSaveFilePicker;")
            yield started, downloads, recorder
    finally:
        recorder.close()


def _saved(browser: Firefox | Chromium, downloads: Path) -> Path:
    """Click the sealed file's save link and return the saved file once it is complete."""
    name = browser.attribute("a[data-sealed-file]", "data-sealed-file")
    assert name
    assert name.startswith("CASE-")
    assert name.endswith(".sealed")
    target = downloads / name
    if isinstance(browser, Chromium):
        with browser.page.expect_download(timeout=SEAL_TIMEOUT * 1000) as download:
            browser.click("a[data-sealed-file]")
        download.value.save_as(target)
        return target
    browser.click("a[data-sealed-file]")
    # Firefox makes an empty placeholder first, then writes NAME.part and renames it over.
    deadline = time.monotonic() + SEAL_TIMEOUT
    last = -1
    while time.monotonic() < deadline:
        size = target.stat().st_size if target.is_file() else 0
        if size and size == last and not target.with_name(name + ".part").exists():
            return target
        last = size
        time.sleep(0.25)
    raise TimeoutError(f"{name} was not saved in {downloads}")


def _attachments(folder: Path, lang: str) -> list[Path]:
    small = folder / f"note-{lang}.txt"
    small.write_text(f"{ANSWERS[lang]}\n", encoding="utf-8")
    big = folder / "video.bin"
    big.write_bytes(
        bytes((i * 31 + 7) % 251 for i in range(251)) * (BIG // 251) + b"x" * (BIG % 251)
    )
    return [small, big]


@pytest.mark.parametrize(
    "sealer_browser", ["firefox-standard", "firefox-safer", "chromium-standard"], indirect=True
)
@pytest.mark.parametrize("lang", ["en", "ar"])
def test_a_case_sealed_from_disk_is_uploaded_and_opens_whole(
    sealer_browser: tuple[Firefox | Chromium, Path, ConnectionRecorder],
    lang: str,
    live_site: LiveSite,
    offline: Offline,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    browser, downloads, recorder = sealer_browser
    key = crypto.load_public_key(Path(live_site.env["PORTAL_TEAM_PUBLIC_KEY"]))
    page = tmp_path / "sealer.html"
    page.write_bytes(sealer.build(key))
    files = _attachments(tmp_path, lang)
    site_requests = len(live_site.recorder.records())
    recorded = len(recorder.connections)
    if isinstance(browser, Chromium):
        browser.clear_requests()

    browser.goto(page.as_uri())
    browser.wait_for("#sealer-form")
    browser.select("#sealer-language", lang)
    assert browser.attribute("html", "dir") == ("rtl" if lang == "ar" else "ltr")
    browser.fill("#description", ANSWERS[lang])
    browser.check("input[name=violations][value=threats]")
    browser.check("input[name=consent_of][value=self]")
    browser.check("input[name=consent_raise][value=no]")
    browser.check("input[name=consent_report][value=anonymous]")
    browser.check("input[name=consent_share_un][value=no]")
    browser.check("input[name=consent_contact][value=no]")
    browser.set_files("#attachments", files)
    browser.click("#sealer-form button[type=submit]")
    browser.wait_for("a[data-sealed-file]", SEAL_TIMEOUT)
    sealed = _saved(browser, downloads)

    # Nothing left the browser while the sealer was open.
    if isinstance(browser, Chromium):
        sent = [r.url for r in browser.requests()]
        assert [url for url in sent if not url.startswith("blob:")] == [page.as_uri()], sent
    else:
        assert recorder.connections[recorded:] == []
        # The recorder does see what Firefox sends out, so its silence above means something.
        with contextlib.suppress(Exception):
            browser.goto("http://sealer-check.invalid/")
        deadline = time.monotonic() + 10
        while len(recorder.connections) == recorded and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(recorder.connections) > recorded
    assert len(live_site.recorder.records()) == site_requests

    browser.goto(f"{live_site.url}/{lang}/sealed-case")
    browser.set_files("#case_file", [sealed])
    browser.submit_and_wait(
        "form[enctype='multipart/form-data'] button[type=submit]", wait_for=".receipt-number code"
    )

    [record] = offline.export_and_decrypt()
    assert record["sealed_by"] == "relay-tool"
    assert record["locale"] == lang
    assert record["fields"] == {
        "violations": ["threats"],
        "consent_of": "self",
        "consent_raise": "no",
        "consent_report": "anonymous",
        "consent_share_un": "no",
        "consent_contact": "no",
        "description": ANSWERS[lang],
    }
    assert record["attachments"] == {path.name: path.read_bytes() for path in files}


@pytest.mark.parametrize("browser", ["firefox-safest", "chromium-safest"], indirect=True)
def test_without_scripts_the_sealer_says_it_needs_them(
    browser: Firefox | Chromium, tmp_path: Path
) -> None:
    page = tmp_path / "sealer.html"
    page.write_bytes(sealer.build(bytes(range(32))))
    browser.goto(page.as_uri())
    text = browser.text("main")
    assert sealer_texts.NO_SCRIPT in text
    assert not browser.is_visible("#sealer-form")


@pytest.mark.parametrize("browser", ["firefox-safer", "chromium-standard"], indirect=True)
def test_a_changed_key_is_refused_and_nothing_can_be_sealed(
    browser: Firefox | Chromium, tmp_path: Path
) -> None:
    made = sealer.build(bytes(range(32))).decode()
    other = crypto.fingerprint(bytes(32))
    page = tmp_path / "sealer.html"
    page.write_text(made.replace(crypto.fingerprint(bytes(range(32))), other))
    browser.goto(page.as_uri())
    browser.wait_for("#sealer-refused")
    assert "does not match the fingerprint" in browser.text("#sealer-refused")
    assert not browser.is_visible("#sealer-form")


@pytest.mark.parametrize("browser", ["firefox-standard", "chromium-standard"], indirect=True)
def test_an_empty_required_answer_is_named_and_nothing_is_saved(
    browser: Firefox | Chromium, tmp_path: Path
) -> None:
    page = tmp_path / "sealer.html"
    page.write_bytes(sealer.build(bytes(range(32))))
    browser.goto(page.as_uri())
    browser.wait_for("#sealer-form")
    browser.select("#sealer-language", "fr")
    browser.fill("#description", "   ")
    browser.click("#sealer-form button[type=submit]")
    browser.wait_for("#sealer-problems")
    summary = browser.text("#sealer-problems")
    assert "Veuillez" in summary
    assert browser.count("a[data-sealed-file]") == 0
    with contextlib.suppress(Exception):
        assert not browser.is_visible("#sealer-done")


@pytest.mark.parametrize("sealer_browser", ["chromium-standard"], indirect=True)
def test_the_site_s_sealer_makes_the_receipt_and_seals_the_reply_key_inside(
    sealer_browser: tuple[Firefox | Chromium, Path, ConnectionRecorder],
    live_site: LiveSite,
    offline: Offline,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    browser, downloads, _recorder = sealer_browser
    page = tmp_path / "sealer.html"
    # The file the site offers, made from its key with its receipt salt and cost.
    page.write_bytes(live_site.app.test_client().get("/en/key/sealer.html").data)
    browser.goto(page.as_uri())
    browser.wait_for("#sealer-form")
    assert not browser.is_visible("#sealer-receipt-note")
    browser.fill("#description", ANSWERS["en"])
    browser.check("input[name=consent_of][value=self]")
    browser.check("input[name=consent_raise][value=no]")
    browser.check("input[name=consent_report][value=anonymous]")
    browser.check("input[name=consent_share_un][value=no]")
    browser.check("input[name=consent_contact][value=no]")
    browser.click("#sealer-form button[type=submit]")
    browser.wait_for("a[data-sealed-file]", SEAL_TIMEOUT)
    receipt = browser.attribute("code[data-receipt]", "data-receipt")
    assert receipt
    assert re.fullmatch(r"\d{5}( \d{5}){4}", receipt)
    assert "never sent anywhere" in browser.text("#sealer-saved")
    sealed = _saved(browser, downloads)
    assert receipt.replace(" ", "").encode() not in sealed.read_bytes()

    browser.goto(f"{live_site.url}/en/sealed-case")
    browser.set_files("#case_file", [sealed])
    browser.submit_and_wait(
        "form[enctype='multipart/form-data'] button[type=submit]", wait_for=".receipt-relayed"
    )
    assert browser.count(".receipt-number") == 0
    services = live_site.app.extensions["portal"]
    derived = receipts.derive(
        receipt, services.installation_secret, *services.config.receipt_limits
    )
    with services.sessions() as session:
        case = session.scalars(select(Case)).one()
        assert (case.receipt_lookup, case.reply_public_key) == (
            derived.lookup,
            derived.reply_public_key,
        )
    [record] = offline.export_and_decrypt()
    assert record["reply_public_key"] == crypto.b64encode(derived.reply_public_key)
    assert record["reply_public_key_from"] == "manifest"
