"""Slow clients against `portal serve`: 1,000 at once (gevent) and 32 (the threaded worker).

Each slow client sends a report's body at 1.5 KB/s, above the minimum rate, so it is never
dropped: about what a real Tor upload of a large file looks like, and what an attacker can
afford by the thousand. Meanwhile another client asks, again and again, for a page (`GET
/en/`), a follow-up lookup with a receipt and a small report; printed are the 95th percentile
and the worst of each, and the public site's peak memory (its arbiter and workers, VmHWM).
The same is measured with 32 slow clients on the threaded worker (`--worker-class gthread`,
32 threads, as the portal was served before): the figure the gevent worker is compared with.
Loopback only; each run stops by itself. `PORTAL_BENCH_SLOW_CLIENTS` and
`PORTAL_BENCH_SLOW_SECONDS` change the number of clients and how long the after-run lasts.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import MINIMAL_REPORT, Served, children, connect, csrf, deployment, multipart  # noqa: E402

CLIENTS = int(os.environ.get("PORTAL_BENCH_SLOW_CLIENTS", "1000"))
SECONDS = float(os.environ.get("PORTAL_BENCH_SLOW_SECONDS", "90"))
BEFORE_CLIENTS = 32
BEFORE_SECONDS = 40
RATE = 1500  # bytes a second per slow client
TICK = 0.2
PROBE_TIMEOUT = 10.0
UNLIMITED = "1000000 per minute"
REPORT = {
    **MINIMAL_REPORT,
    "description": "Benchmark: a small report sent while many others upload slowly.",
}


@dataclass
class Probes:
    """How long each kind of request took; None for one that did not answer in time."""

    times: dict[str, list[float | None]] = field(
        default_factory=lambda: {"page": [], "lookup": [], "report": []}
    )

    def line(self, kind: str) -> str:
        """The 95th percentile and worst of one kind, and how many timed out."""
        values = self.times[kind]
        answered = sorted(v for v in values if v is not None)
        missed = len(values) - len(answered)
        if not answered:
            return f"{kind:7} no answer within {PROBE_TIMEOUT:.0f} s ({missed} tries)"
        p95 = answered[min(len(answered) - 1, int(0.95 * len(answered)))]
        p95_text = f"p95 > {PROBE_TIMEOUT:.0f} s" if missed else f"p95 {p95:.2f} s"
        return (
            f"{kind:7} {p95_text}, worst {answered[-1]:.2f} s, median "
            f"{statistics.median(answered):.2f} s ({len(values)} tries, {missed} timed out)"
        )


def _form(fields: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode()


def _post(served: Served, path: str, fields: dict[str, str]) -> str:
    token, cookie = csrf(served, path)
    answer = served.request(
        "POST",
        path,
        headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
        body=_form({**fields, "csrf_token": token}),
        timeout=PROBE_TIMEOUT,
    )
    if answer.status != 200:
        raise RuntimeError(f"{path} answered {answer.status}")
    return answer.text


def _receipt(page: str) -> str:
    found = re.search(r'class="receipt-number"[^>]*><code>([0-9 ]+)</code>', page)
    if not found:
        raise RuntimeError("no receipt")
    return found.group(1)


def _timed(call: object) -> float | None:
    assert callable(call)
    started = time.perf_counter()
    try:
        call()
    except (OSError, RuntimeError):
        return None
    return time.perf_counter() - started


def _slow_clients(served: Served, count: int, stop: threading.Event) -> threading.Thread:
    """`count` connections sending report bodies at RATE until `stop`; half form, half sealed."""
    token, cookie = csrf(served)
    socks = []
    for i in range(count):
        path = "/en/submit" if i % 2 == 0 else "/en/submit/sealed"
        head, _tail, content_type = multipart(
            {**REPORT, "csrf_token": token}, {"attachments": ("evidence.bin", 0)}
        )
        sock = connect(served.sockets["public"], 10)
        sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(head) + 100_000_000}"
                "\r\n\r\n"
            ).encode()
            + head
        )
        sock.setblocking(False)
        socks.append(sock)
    piece = os.urandom(int(RATE * TICK))

    def trickle() -> None:
        while not stop.wait(TICK):
            for sock in socks:
                # A full buffer skips a beat rather than stalling every other client.
                with contextlib.suppress(OSError):
                    sock.send(piece)
        for sock in socks:
            sock.close()

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    return sender


def _public_pids(served: Served) -> list[int]:
    """The public site's arbiter and its workers."""
    assert served.process is not None
    found = []
    for pid in children(served.process.pid):
        if b'"public"' in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" "):
            found = [pid, *children(pid)]
    return found


def _peak_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        found = re.search(r"VmHWM:\s+(\d+) kB", status)
        total += int(found.group(1)) if found else 0
    return total / 1024


def measure(args: list[str], clients: int, seconds: float) -> tuple[Probes, float]:
    """Serve with `args`, run `clients` slow clients for `seconds`, probe meanwhile."""
    probes = Probes()
    with tempfile.TemporaryDirectory() as folder:
        env = deployment(
            Path(folder),
            PORTAL_RECEIPT_COST="interactive",
            PORTAL_REPORT_RATE_LIMIT=UNLIMITED,
            PORTAL_FOLLOW_UP_RATE_LIMIT=UNLIMITED,
        )
        with Served(Path(folder), env, args) as served:
            receipt = _receipt(_post(served, "/en/submit", REPORT))
            stop = threading.Event()
            sender = _slow_clients(served, clients, stop)
            try:
                time.sleep(3)  # every slow client is in the middle of its body
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    probes.times["page"].append(
                        _timed(lambda: served.request("GET", "/en/", timeout=PROBE_TIMEOUT))
                    )
                    probes.times["lookup"].append(
                        _timed(
                            lambda: _post(
                                served, "/en/follow-up", {"receipt": receipt, "step": "open"}
                            )
                        )
                    )
                    probes.times["report"].append(
                        _timed(lambda: _post(served, "/en/submit", REPORT))
                    )
                    time.sleep(0.5)
                peak = _peak_mib(_public_pids(served))
            finally:
                stop.set()
                sender.join()
    return probes, peak


def run() -> None:
    """Measure before (threaded, 32 clients) and after (gevent, 1,000 clients) in one run."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, CLIENTS * 2 + 512))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < CLIENTS + 256:
        raise SystemExit(f"the open-file limit ({hard}) is too low for {CLIENTS} clients")
    runs = [
        (
            f"before: threaded worker (32 threads), {BEFORE_CLIENTS} slow clients",
            ["--worker-class", "gthread", "--threads", "32"],
            BEFORE_CLIENTS,
            BEFORE_SECONDS,
        ),
        (f"after: gevent worker, {CLIENTS} slow clients", [], CLIENTS, SECONDS),
    ]
    for title, args, clients, seconds in runs:
        probes, peak = measure(args, clients, seconds)
        print(f"   {title}:")
        for kind in ("page", "lookup", "report"):
            print(f"     {probes.line(kind)}")
        print(f"     peak memory of the public site: {peak:.0f} MiB")
