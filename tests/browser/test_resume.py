"""A 50 MiB attachment sealed in the browser reaches the team although the connection is cut
three times on the way: the script asks the server how far each file came and goes on from
there, sending little more than the sealed size, and the file decrypts byte for byte.

Both browsers talk to the site through a loopback forwarder that counts the bytes they send
(headers included). Chromium's network is set offline for a few seconds at a time
(Playwright); for Firefox at Tor Browser's Safer level the test closes the forwarder, dropping
every connection, and opens it again.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import LiveSite
from .harness import Chromium, Firefox
from .test_journeys import (
    RECEIPT,
    Answers,
    Offline,
    assert_files_came_back,
    attachment,
    fill_answers,
    levels,
    offline,  # noqa: F401 (a fixture)
    sealed_by,
)

pytestmark = pytest.mark.browser

SIZE = 50 << 20
SEALED = -(-SIZE // 65536) * 65552
CUTS = (0.2, 0.45, 0.7)
OUTAGE_SECONDS = 3.0
# At most this much may go over the wire, counting every request of the upload.
ALLOWED = 1.2


class Forwarder:
    """A loopback TCP forwarder to the site that can drop every connection and refuse new ones
    for a while; it counts the bytes the browser sent through it."""

    def __init__(self, target: tuple[str, int]) -> None:
        """Forward a fresh loopback port to `target`."""
        self.target = target
        self.sent = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self.start()

    def start(self) -> None:
        """Accept connections (again)."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Drop every connection and refuse new ones until `start`."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            dropping, self._open = self._open, set()
        for sock in dropping:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self._open |= {client, server}
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while data := source.recv(1 << 16):
                if upstream:
                    with self._lock:
                        self.sent += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def forwarded(site: LiveSite) -> Iterator[Forwarder]:
    """A forwarder to the live site."""
    host, port = site.url.removeprefix("http://").split(":")
    forwarder = Forwarder((host, int(port)))
    try:
        yield forwarder
    finally:
        forwarder.cut()


def received(site: LiveSite) -> int:
    """Bytes of the sealed blob the server holds so far."""
    uploads = site.app.extensions["portal"].store.uploads
    return sum(p.stat().st_size for p in uploads.glob("*/files/0.blob"))


def cut_three_times(
    site: LiveSite, outage: Callable[[bool], None], pause: Callable[[float], None]
) -> list[float]:
    """Cut the connection each time the server holds the next share of the blob; the times.

    `pause` waits: Chromium's requests pass through the harness's interception, which runs
    only while Playwright is called, so its pause is one of Playwright's.
    """
    times = []
    deadline = time.monotonic() + 300
    for share in CUTS:
        while received(site) < share * SEALED:
            assert time.monotonic() < deadline, f"the upload stalled at {received(site)} bytes"
            pause(0.01)
        outage(True)
        times.append(time.monotonic())
        pause(OUTAGE_SECONDS)
        outage(False)
    return times


@levels("chromium-standard", "firefox-safer")
def test_a_50_mib_upload_survives_three_cuts_and_comes_back_whole(
    browser: Firefox | Chromium,
    live_site: LiveSite,
    offline: Offline,  # noqa: F811
    tmp_path: Path,
) -> None:
    marker = f"MARK{secrets.token_hex(6)}"
    answers: Answers = {
        "description": f"{marker} A recording of the threats, sent over a bad connection.",
        "consent_of": "self",
        "consent_raise": "yes",
        "consent_report": "no",
        "consent_share_un": "no",
        "consent_contact": "portal",
    }
    big = attachment(tmp_path, "recording.bin", SIZE, marker, "application/octet-stream")
    with forwarded(live_site) as forwarder:
        # Both browsers reach the site through the forwarder, which counts what they send.
        base = f"http://127.0.0.1:{forwarder.port}"
        if isinstance(browser, Chromium):
            context = browser.page.context

            def outage(on: bool) -> None:
                context.set_offline(on)

            def pause(seconds: float) -> None:
                browser.page.wait_for_timeout(seconds * 1000)
        else:

            def outage(on: bool) -> None:
                forwarder.cut() if on else forwarder.start()

            pause = time.sleep

        browser.goto(f"{base}/en/submit")
        fill_answers(browser, answers)
        browser.set_files("#attachments", [big.path])
        live_site.recorder.clear()
        forwarder.sent = 0
        started = time.monotonic()
        browser.click("#report-form button[type=submit]")
        cut_three_times(live_site, outage, pause)
        browser.wait_for(RECEIPT, timeout=300)
        seconds = time.monotonic() - started
    assert sealed_by(browser) == "browser"
    records = live_site.recorder.records()
    # Each cut was noticed: the script asked where the upload stood and went on from there.
    asked = [r for r in records if r.method == "GET" and "/submit/uploads/" in r.path]
    assert len(asked) >= len(CUTS), f"{len(asked)} offset questions"
    sent = forwarder.sent
    ratio = sent / SEALED
    print(
        f"\n{browser.name}: 50 MiB with {len(CUTS)} cuts of {OUTAGE_SECONDS:.0f} s in "
        f"{seconds:.1f} s; sent {sent} bytes for {SEALED} sealed ({ratio:.3f}x); "
        f"{len(asked)} offset questions"
    )
    assert ratio <= ALLOWED
    [report] = offline.export_and_decrypt()
    assert report["fields"] == answers
    assert_files_came_back(report, [big])
