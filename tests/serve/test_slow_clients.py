"""Slow clients cost memory, not threads: the public site answers while many upload at Tor pace.

A real `portal serve` (the gevent worker, as deployed). One hundred clients trickle report
bodies at 1.5 KB/s, above the minimum rate, so they are never dropped; meanwhile a page, a
follow-up lookup and a small report from someone else must each answer within 2 seconds. Large
bodies take turns: with every turn taken, the next upload waits, and is told to send again,
with its text kept, when no turn comes in time. The figures for 1,000 clients are measured by
`make bench` (bench/bench_slow_clients.py).
"""

from __future__ import annotations

import html
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import receipt_of
from servers import (
    PORTAL,
    Served,
    connect,
    csrf,
    deployment,
    full_env,
    multipart,
    read_response,
    status_of,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
REPORT = {
    "description": "Detained at the airport on the way back from Geneva.",
    "consent_of": "self",
    "consent_raise": "no",
    "consent_report": "anonymous",
    "consent_share_un": "yes",
    "consent_contact": "portal",
}
SLOW_RATE = 1500  # bytes a second, about a Tor upload of a large file
ATTACHMENT = 50 * 1024 * 1024  # what each slow client says it will send
TURNS = 200  # the default of PORTAL_MAX_UPLOADS
WAIT = 3
UNLIMITED = "100000 per minute"


def _open_upload(served: Served, path: str, token: str, cookie: str, first: int) -> socket.socket:
    """Start a report with a large attachment; send its head and `first` bytes of the file."""
    head, _tail, content_type = multipart(
        {**REPORT, "csrf_token": token}, {"attachments": ("evidence.bin", ATTACHMENT)}
    )
    sock = connect(served.sockets["public"], 30)
    sock.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(head) + ATTACHMENT + 100}\r\n\r\n"
        ).encode()
        + head
        + os.urandom(first)
    )
    return sock


def _request(cookie: str, content_type: str, body: bytes) -> bytes:
    """A whole report request with `body`."""
    return (
        f"POST /en/submit HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _timed(call: object) -> float:
    started = time.monotonic()
    assert callable(call)
    call()
    return time.monotonic() - started


def _form(fields: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode()


def _small_report(served: Served) -> str:
    """Send a report without attachments; its receipt."""
    token, cookie = csrf(served)
    answer = served.request(
        "POST",
        "/en/submit",
        headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
        body=_form({**REPORT, "csrf_token": token}),
        timeout=10,
    )
    assert answer.status == 200, answer.text[:500]
    return receipt_of(answer.text)


def _lookup(served: Served, receipt: str) -> None:
    token, cookie = csrf(served, "/en/follow-up")
    answer = served.request(
        "POST",
        "/en/follow-up",
        headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
        body=_form({"csrf_token": token, "receipt": receipt, "step": "open"}),
        timeout=10,
    )
    assert answer.status == 200, answer.text[:500]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`portal serve` as deployed, with rate limits out of the way and a short wait for turns."""
    folder = tmp_path_factory.mktemp("slow")
    env = deployment(
        folder,
        PORTAL_REPORT_RATE_LIMIT=UNLIMITED,
        PORTAL_FOLLOW_UP_RATE_LIMIT=UNLIMITED,
        PORTAL_UPLOAD_WAIT_SECONDS=str(WAIT),
    )
    server = Served(folder, env).start()
    try:
        yield server
    finally:
        server.stop()


def test_pages_lookups_and_small_reports_answer_while_100_clients_upload_slowly(
    served: Served,
) -> None:
    receipt = _small_report(served)
    token, cookie = csrf(served)
    paths = ["/en/submit", "/en/submit/sealed"]
    slow = [_open_upload(served, paths[i % 2], token, cookie, 0) for i in range(100)]
    stop = threading.Event()

    def trickle() -> None:
        piece = os.urandom(SLOW_RATE // 10)
        while not stop.wait(0.1):
            for sock in slow:
                sock.sendall(piece)

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        time.sleep(2)  # every slow client is in the middle of its body by now
        times = {"page": [], "lookup": [], "report": []}  # type: dict[str, list[float]]
        for _ in range(3):
            times["page"].append(
                _timed(lambda: served.request("GET", "/en/", timeout=10).status == 200)
            )
            times["lookup"].append(_timed(lambda: _lookup(served, receipt)))
            times["report"].append(_timed(lambda: _small_report(served)))
        assert sender.is_alive(), "the slow clients could not keep sending"
    finally:
        stop.set()
        sender.join()
        for sock in slow:
            sock.close()
    assert max(max(seconds) for seconds in times.values()) < 2, times


def test_the_upload_past_the_limit_waits_and_is_told_to_send_again_with_its_text(
    served: Served,
) -> None:
    token, cookie = csrf(served)
    held = [_open_upload(served, "/en/submit", token, cookie, 1000) for _ in range(TURNS)]
    try:
        time.sleep(2)  # every one has its turn and is reading its body
        description = "Summoned by the security services after the session (text kept)."
        head, tail, content_type = multipart(
            {**REPORT, "description": description, "csrf_token": token},
            {"attachments": ("photo.jpg", 0)},
        )
        body = head + os.urandom(1_200_000) + tail
        with connect(served.sockets["public"], 30) as sock:
            started = time.monotonic()
            sock.sendall(_request(cookie, content_type, body))
            raw = read_response(sock)
            waited = time.monotonic() - started
        # It waited its turn for the whole wait, then was told, in its language, with its text.
        assert status_of(raw) == 503, raw[:300]
        assert WAIT * 0.8 < waited < WAIT + 5
        page = html.unescape(raw.decode("utf-8", errors="replace"))
        assert description in page
        assert "Too many reports are arriving right now, so yours was not sent yet." in page
        assert b"retry-after: 120" in raw.lower()
        # Pages and small reports do not wait meanwhile.
        assert _timed(lambda: _small_report(served)) < 2
        # A turn given back lets the next upload in before its wait is over.
        with connect(served.sockets["public"], 30) as sock:
            started = time.monotonic()
            # Sent from a thread: a body waiting for its turn is not read, so sending blocks.
            sending = threading.Thread(
                target=sock.sendall, args=(_request(cookie, content_type, body),)
            )
            sending.start()
            time.sleep(0.5)
            held.pop().close()
            raw = read_response(sock)
            waited = time.monotonic() - started
            sending.join()
        assert status_of(raw) == 200, raw[:300]
        assert b"receipt-number" in raw
        assert waited < WAIT
    finally:
        for sock in held:
            sock.close()


def test_a_stalled_upload_gives_its_turn_back(served: Served) -> None:
    token, cookie = csrf(served)
    held = [_open_upload(served, "/en/submit", token, cookie, 1000) for _ in range(TURNS)]
    for sock in held:
        sock.close()
    time.sleep(1)
    # Every turn is free again: a large report goes through at once.
    head, tail, content_type = multipart(
        {**REPORT, "csrf_token": token}, {"attachments": ("photo.jpg", 0)}
    )
    body = head + os.urandom(1_200_000) + tail
    answer = served.request(
        "POST",
        "/en/submit",
        headers={"Cookie": cookie, "Content-Type": content_type},
        body=body,
        timeout=WAIT + 10,
    )
    assert answer.status == 200, answer.text[:300]
    assert "receipt-number" in answer.text


def test_importing_the_portal_patches_nothing() -> None:
    # gevent patches the standard library in the gevent worker's process alone.
    script = textwrap.dedent(
        """
        import sys
        import portal, portal.cli, portal.serve.site, portal.serve.supervisor, portal.wsgi
        import portal.formats.receipts, portal.web.gate
        from portal import create_app
        assert "gevent" not in sys.modules, "gevent imported"
        import socket, threading
        assert socket.socket.__module__ == "socket", socket.socket.__module__
        assert threading.Lock.__module__ in ("_thread", "threading"), threading.Lock.__module__
        print("ok")
        """
    )
    done = subprocess.run(
        [*PORTAL[:1], "-c", script],
        env={**full_env({}), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_argon2id_leaves_the_event_loop_free() -> None:
    # Under gevent, a receipt derived at the interactive cost must not stop other greenlets: the
    # sites derive through `cases.derive_receipt`, which hands the stretch to `offload`.
    script = textwrap.dedent(
        """
        from gevent import monkey; monkey.patch_all()
        import gevent, time
        from portal.server import cases, config
        from portal.formats import receipts
        ticks = []
        def tick():
            while True:
                ticks.append(time.monotonic())
                gevent.sleep(0.01)
        ticker = gevent.spawn(tick)
        gevent.sleep(0.05)
        before = len(ticks)
        started = time.monotonic()
        receipt = receipts.new_receipt()
        cases.derive_receipt(receipt, b"s" * 32, *config.RECEIPT_COSTS["moderate"])
        took = time.monotonic() - started
        ticker.kill()
        print(len(ticks) - before, round(took, 2))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**full_env({}), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    ticks, took = done.stdout.split()
    # A tick every 10 ms while the derivation ran: the loop went on, not one tick then nothing.
    assert int(ticks) >= float(took) * 100 * 0.3, done.stdout
