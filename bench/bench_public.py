"""The public site without JavaScript: a large upload, memory, reports per second, a cold load.

Everything runs over loopback against the site as `portal serve` runs it (gunicorn, the
portal's worker, one process of 32 threads), in a temporary deployment:

- a 1 GiB attachment posted with the report form, sealed on arrival, timed against a plain
  Flask view under gunicorn that only saves the same upload unencrypted; the peak resident
  memory (VmHWM) of the worker that sealed it, for 1 GiB and for 4 GiB;
- reports per second on the machine's two cores, against the bare Argon2id rate at the
  configured receipt cost on the same cores (each report derives one receipt);
- the requests and bytes a browser without JavaScript fetches for a cold load of /en/submit,
  asking for compression as Tor Browser does (see `portal.web.compression`): bytes on the wire,
  and once decoded.
"""

from __future__ import annotations

import gzip
import http.client
import json
import multiprocessing
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import nacl.pwhash

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import MINIMAL_REPORT, free_port  # noqa: E402

from portal.formats import crypto  # noqa: E402
from portal.server.config import load_config  # noqa: E402

GiB = 1024**3
MiB = 1024**2
BLOCK = 1024 * 1024
REPORT = MINIMAL_REPORT
PLAIN_APP = '''
"""A plain Flask view that saves an upload as it is: the baseline for the portal's upload."""
import os
from pathlib import Path
from flask import Flask, request

app = Flask(__name__)
SAVED = Path(os.environ["PLAIN_SAVE_DIR"])


@app.post("/upload")
def upload():
    request.files["attachments"].save(SAVED / "upload.bin")
    return "saved"
'''


# ---------------------------------------------------------------------------------------------
# Servers


@dataclass
class Server:
    """A gunicorn arbiter on a loopback port."""

    process: subprocess.Popen[bytes]
    port: int

    def workers(self) -> list[int]:
        """The process ids of the arbiter's workers."""
        pid = self.process.pid
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(p) for p in text.split()]

    def peak_memory(self) -> int:
        """The largest peak resident memory (VmHWM) of any worker, in bytes."""
        peaks = []
        for pid in self.workers():
            status = Path(f"/proc/{pid}/status").read_text()
            found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
            assert found
            peaks.append(int(found.group(1)) * 1024)
        return max(peaks)

    def stop(self) -> None:
        """Stop the arbiter and its workers."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int, ready: str) -> Iterator[Server]:
    """Run a server until the block ends; ready when GET `ready` answers 200."""
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    server = Server(process, port)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server stopped: {' '.join(command)}")
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                connection.request("GET", ready)
                if connection.getresponse().status in (200, 405):
                    break
            except OSError:
                pass
            finally:
                connection.close()
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        while not server.workers():
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


@dataclass
class Deployment:
    """A temporary deployment of the portal."""

    folder: Path
    env: dict[str, str]

    def portal(self, workers: int = 1, threads: int = 32) -> AbstractContextManager[Server]:
        """The public site as `portal serve` runs it."""
        port = free_port()
        options = {
            "site": "public",
            "bind": f"127.0.0.1:{port}",
            "workers": workers,
            "threads": threads,
            "log_level": "warning",
        }
        command = [sys.executable, "-m", "portal.serve.site", "public", json.dumps(options)]
        return serving([*command, str(os.getpid())], self.env, port, "/en/submit")

    def plain(self) -> AbstractContextManager[Server]:
        """The plain Flask baseline, under gunicorn's own threaded worker, like the portal."""
        port = free_port()
        (self.folder / "plain_app.py").write_text(PLAIN_APP)
        saved = self.folder / "plain"
        saved.mkdir(exist_ok=True)
        env = {
            **self.env,
            "PYTHONPATH": str(self.folder),
            "PLAIN_SAVE_DIR": str(saved),
            "TMPDIR": str(self.folder),
        }
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--worker-class",
            "gthread",
            "--workers",
            "1",
            "--threads",
            "32",
            "--timeout",
            "600",
            "--log-level",
            "warning",
            "--bind",
            f"127.0.0.1:{port}",
            "plain_app:app",
        ]
        return serving(command, env, port, "/upload")


@contextmanager
def deployment() -> Iterator[Deployment]:
    """A data folder, a team key, and `portal init`, all removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    try:
        _secret, public = crypto.generate_keypair()
        key = folder / "team.pub"
        key.write_text(crypto.format_public_key_file(public, date.today()))
        env = {
            **os.environ,
            "PORTAL_DATA_DIR": str(folder / "data"),
            "PORTAL_TEAM_PUBLIC_KEY": str(key),
            "PORTAL_MAX_UPLOAD_BYTES": str(5 * GiB),
            # The rate limits would stop the throughput figure; it measures the work itself.
            "PORTAL_REPORT_RATE_LIMIT": "1000000 per minute",
            "PYTHONPATH": str(ROOT),
        }
        env.pop("PORTAL_DATABASE_URL", None)
        subprocess.run(
            [sys.executable, "-c", "from portal.cli import main; main()", "init"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        yield Deployment(folder, env)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Clients


def _form(port: int) -> tuple[str, str]:
    """The report form's CSRF token and the session cookie it belongs to."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/en/submit")
        response = connection.getresponse()
        page = response.read().decode()
        cookie = (response.getheader("Set-Cookie") or "").split(";")[0]
    finally:
        connection.close()
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no form token"
    return found.group(1), cookie


def _upload(port: int, path: str, size: int, fields: dict[str, str], cookie: str) -> float:
    """Post `fields` and a `size`-byte attachment as multipart, streamed; seconds taken."""
    boundary = secrets.token_hex(16)
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; '
        f'filename="evidence.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    block = os.urandom(BLOCK)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        connection.putheader("Content-Length", str(len(head) + size + len(tail)))
        if cookie:
            connection.putheader("Cookie", cookie)
        connection.endheaders()
        connection.send(head)
        left = size
        while left > 0:
            piece = block if left >= BLOCK else block[:left]
            connection.send(piece)
            left -= len(piece)
        connection.send(tail)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"upload answered {response.status}: {body[:300]!r}")
    return elapsed


def portal_upload(server: Server, size: int) -> float:
    """Seconds to send a report with a `size`-byte attachment through the form."""
    token, cookie = _form(server.port)
    return _upload(server.port, "/en/submit", size, {"csrf_token": token, **REPORT}, cookie)


def _derive_for(seconds: float, opslimit: int, memlimit: int) -> float:
    """Derivations per second in this process, timed here so that starting it is not counted."""
    count, started = 0, time.perf_counter()
    while time.perf_counter() < started + seconds:
        nacl.pwhash.argon2id.kdf(64, b"1" * 25, b"s" * 16, opslimit=opslimit, memlimit=memlimit)
        count += 1
    return count / (time.perf_counter() - started)


def argon2_rate(cores: int, seconds: float, opslimit: int, memlimit: int) -> float:
    """Derivations per second with one process per core, all at once."""
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        return sum(pool.starmap(_derive_for, [(seconds, opslimit, memlimit)] * cores))


def report_rate(server: Server, clients: int, seconds: float) -> float:
    """Reports per second that `clients` senders get accepted, one after another each."""
    done = [0] * clients
    stop = time.perf_counter() + seconds

    def send(index: int) -> None:
        token, cookie = _form(server.port)
        body = "&".join(
            f"{k}={v.replace(' ', '+')}" for k, v in {"csrf_token": token, **REPORT}.items()
        )
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            while time.perf_counter() < stop:
                connection.request(
                    "POST",
                    "/en/submit",
                    body=body,
                    headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "Cookie": cookie,
                    },
                )
                response = connection.getresponse()
                page = response.read()
                if response.status != 200 or b"receipt-number" not in page:
                    raise RuntimeError(f"a report answered {response.status}")
                done[index] += 1
        finally:
            connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=send, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


class _Resources(HTMLParser):
    """What a browser without JavaScript fetches for a page."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "link" and found.get("rel") in ("stylesheet", "icon", "preload"):
            href = found.get("href") or ""
            if not href.startswith("data:"):
                self.fetched.append(href)
        elif tag in ("img", "iframe", "embed", "video", "audio", "source") and found.get("src"):
            self.fetched.append(found["src"] or "")
        elif tag == "object" and found.get("data"):
            self.fetched.append(found["data"] or "")
        elif tag == "script" and found.get("src"):
            self.scripts.append(found["src"] or "")


Fetched = tuple[str, int, int]  # the address, bytes on the wire, bytes once decoded


def cold_load(server: Server, path: str) -> tuple[list[Fetched], list[Fetched]]:
    """(what a browser without JavaScript fetches, what one with it adds), with body bytes."""

    def get(target: str) -> tuple[bytes, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            connection.request("GET", target, headers={"Accept-Encoding": "gzip, deflate, br"})
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200, (target, response.status)
            encoded = response.getheader("Content-Encoding")
            assert encoded in (None, "gzip"), encoded
            return body, gzip.decompress(body) if encoded else body
        finally:
            connection.close()

    def fetched(target: str) -> Fetched:
        wire, decoded = get(target)
        return target, len(wire), len(decoded)

    page = get(path)[1]
    parser = _Resources()
    parser.feed(page.decode())
    without = [fetched(path)] + [fetched(url) for url in parser.fetched]
    scripted = [fetched(url) for url in parser.scripts]
    return without, scripted


# ---------------------------------------------------------------------------------------------


def _mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def run() -> None:
    """Measure and print every figure of the public site's no-JavaScript path."""
    cores = len(os.sched_getaffinity(0))
    with deployment() as site:
        config = load_config(site.env)
        print(
            f"   {cores} cores; receipts at the {config.receipt_cost} Argon2id cost; "
            f"the portal served as `portal serve` does (1 worker, 32 threads)",
            flush=True,
        )

        with site.portal() as server:
            portal_1 = portal_upload(server, GiB)
            peak_1 = server.peak_memory()
        with site.plain() as plain:
            plain_1 = _upload(plain.port, "/upload", GiB, REPORT, "")
        ratio = portal_1 / plain_1
        print(
            f"   1 GiB upload, no JavaScript: portal {portal_1:.1f} s "
            f"({GiB / portal_1 / MiB:.0f} MiB/s), plain Flask saving it unencrypted "
            f"{plain_1:.1f} s: ratio {ratio:.2f} (target at most 1.25: {_verdict(ratio <= 1.25)})",
            flush=True,
        )
        with site.portal() as server:
            portal_4 = portal_upload(server, 4 * GiB)
            peak_4 = server.peak_memory()
        print(
            f"   4 GiB upload, no JavaScript: portal {portal_4:.1f} s "
            f"({4 * GiB / portal_4 / MiB:.0f} MiB/s)",
            flush=True,
        )
        steady = abs(peak_4 - peak_1) <= 10e6
        print(
            f"   peak resident memory of the worker (VmHWM): {_mb(peak_1)} for 1 GiB, "
            f"{_mb(peak_4)} for 4 GiB (target under 150 MB and the same for both: "
            f"{_verdict(max(peak_1, peak_4) < 150e6 and steady)})",
            flush=True,
        )

        opslimit, memlimit = config.receipt_limits
        bare = argon2_rate(cores, 10, opslimit, memlimit)
        with site.portal() as server:
            reports = report_rate(server, clients=2 * cores, seconds=15)
            flood_peak = server.peak_memory()
        ratio = reports / bare
        print(
            f"   reports per second on {cores} cores: {reports:.2f}; bare Argon2id at the "
            f"{config.receipt_cost} cost ({memlimit // MiB} MiB, {opslimit} passes): "
            f"{bare:.2f}/s; ratio {ratio:.2f} (target at least 0.7: {_verdict(ratio >= 0.7)}); "
            f"worker peak memory meanwhile {_mb(flood_peak)}",
            flush=True,
        )

        with site.portal() as server:
            without, scripted = cold_load(server, "/en/submit")
        total = sum(wire for _url, wire, _decoded in without)
        parts = ", ".join(f"{url} {wire:,} of {decoded:,}" for url, wire, decoded in without)
        ok = total <= 30 * 1024 and len(without) <= 2
        print(
            f"   cold load of /en/submit without JavaScript: {len(without)} requests, "
            f"{total:,} bytes on the wire ({parts} decoded) "
            f"(target at most 30 KB and 2 requests: {_verdict(ok)})",
            flush=True,
        )
        for url, wire, decoded in scripted:
            print(
                f"   with JavaScript on, the browser also fetches {url}: {wire:,} bytes on the "
                f"wire, {decoded:,} decoded"
            )
