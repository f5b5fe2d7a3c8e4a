"""Bundle download from the staff site: 1,000 submissions, then one 1 GiB submission.

Each case runs against a real `portal serve` (gunicorn, the staff site's own worker) in a fresh
deployment: a staff member signs in with passphrase and TOTP, then downloads the bundle of
everything not yet exported over the staff socket, reading it a megabyte at a time. Printed:
the staff worker's peak resident memory while it streamed (its high-water mark is reset after
sign-in, whose Argon2id takes 64 MiB on purpose) and over its whole life, against the target
of 150 MB; and the download's pace as a ratio to reading the same sealed files from disk in
the same run. Files are deleted as soon as they have served.
"""

from __future__ import annotations

import http.client
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import pyotp
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import Served, children, deployment  # noqa: E402

from portal.formats import bundle, crypto, envelope  # noqa: E402
from portal.server import accounts, cases, storage  # noqa: E402
from portal.server.config import load_config  # noqa: E402
from portal.server.models import Case, Submission  # noqa: E402
from portal.server.services import Services, load  # noqa: E402

MB = 1000**2
MIB = 1024**2
GIB = 1024**3
MEMORY_TARGET = 150 * MB
READ = 1 * MIB
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Measured:
    """One download: its size, time, and the staff worker's memory."""

    name: str
    submissions: int
    bundle_bytes: int
    seconds: float
    disk_seconds: float
    before: int
    streaming_peak: int
    lifetime_peak: int


# ---------------------------------------------------------------------------------------------
# Filling a deployment


def _store(services: Services, case: Case, blobs: list[int]) -> Submission:
    """A sealed submission whose blobs hold the given numbers of sealed chunks of noise."""
    staging = services.store.stage()
    noise = os.urandom(crypto.SEALED_CHUNK_SIZE)
    files = []
    for index, chunks in enumerate(blobs):
        with staging.open(bundle.stored_blob(index)) as out:
            # The server never opens what it stores: sealed noise of the right length is what
            # a download moves.
            for _ in range(chunks):
                out.write(noise)
        files.append(
            envelope.FileEntry(
                f"{index}.bin",
                "application/octet-stream",
                chunks * crypto.CHUNK_SIZE,
                crypto.new_file_key(),
            )
        )
    reply_key = case.reply_public_key
    manifest = envelope.Manifest(
        "report", "server", "en", {"description": "benchmark"}, tuple(files), reply_key
    )
    staging.write(
        bundle.STORED_MANIFEST, envelope.seal_manifest(manifest, services.team_public_key)
    )
    submission_id = storage.new_id()
    size = services.store.commit(staging, submission_id, date.today())
    return Submission(
        id=submission_id,
        case_id=case.id,
        seq=1,
        kind="report",
        sealed_by="server",
        source="form",
        recipient=None,
        received_day=date.today(),
        file_count=len(blobs),
        size_bytes=size,
    )


def fill(services: Services, count: int, chunks: int) -> None:
    """`count` reports of one blob of `chunks` sealed chunks each, one case each."""
    with services.sessions() as session:
        for _ in range(count):
            _receipt, case, _derived = cases.new_case(services, session)
            session.flush()
            session.add(_store(services, case, [chunks]))
        session.commit()


def add_staff(services: Services) -> accounts.Credentials:
    """A staff account at the production Argon2id cost."""
    with services.sessions() as session:
        credentials = accounts.create(session, "bench", date.today())
        session.commit()
    return credentials


# ---------------------------------------------------------------------------------------------
# Measuring the staff worker


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def staff_worker(serve_pid: int) -> int:
    """The gunicorn worker serving the staff site under `portal serve`: the one child of the
    staff site's arbiter (`python -m portal.serve.site staff ...`)."""
    stack = [serve_pid]
    while stack:
        pid = stack.pop()
        below = children(pid)
        command = _cmdline(pid)
        if "portal.serve.site" in command and "staff" in command:
            if len(below) != 1:
                raise RuntimeError(f"expected one staff worker, found {len(below)}")
            return below[0]
        stack += below
    raise RuntimeError("no staff worker found under portal serve")


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def rss(pid: int) -> int:
    """The process's resident memory now (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def reset_peak(pid: int) -> None:
    """Start the high-water mark again from the current resident memory."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


# ---------------------------------------------------------------------------------------------
# The staff member's side


class Browser:
    """Just enough of a browser for the staff site: one cookie, CSRF tokens."""

    def __init__(self, served: Served) -> None:
        """Talk to the staff site of `served`."""
        self.served = served
        self.cookie = ""

    def _keep(self, headers: http.client.HTTPMessage) -> None:
        for value in headers.get_all("Set-Cookie") or []:
            if value.startswith("portal_staff="):
                self.cookie = value.split(";", 1)[0]

    def token(self, path: str) -> str:
        """The CSRF token of a page."""
        answer = self.served.request("GET", path, site="staff", headers={"Cookie": self.cookie})
        self._keep(answer.headers)
        match = CSRF.search(answer.text)
        if not match:
            raise RuntimeError(f"no form on {path}: {answer.status}")
        return match.group(1)

    def sign_in(self, credentials: accounts.Credentials) -> None:
        """Sign in with passphrase and the current TOTP code."""
        body = urlencode(
            {
                "csrf_token": self.token("/login"),
                "name": credentials.name,
                "passphrase": credentials.passphrase,
                "code": pyotp.TOTP(credentials.totp_secret).now(),
            }
        ).encode()
        answer = self.served.request(
            "POST",
            "/login",
            site="staff",
            body=body,
            headers={"Cookie": self.cookie, "Content-Type": "application/x-www-form-urlencoded"},
        )
        self._keep(answer.headers)
        if answer.status != 303:
            raise RuntimeError(f"sign-in failed: {answer.status}")

    @contextmanager
    def download(self) -> Iterator[Iterator[bytes]]:
        """The bundle of everything not yet exported, as it arrives."""
        body = urlencode({"csrf_token": self.token("/"), "scope": "pending"}).encode()
        connection = self.served.connection("staff", timeout=600)
        try:
            connection.request(
                "POST",
                "/download",
                body=body,
                headers={
                    "Host": "localhost",
                    "Cookie": self.cookie,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            response = connection.getresponse()
            if response.status != 200:
                raise RuntimeError(f"download failed: {response.status}")
            length = int(response.headers["Content-Length"])

            def blocks() -> Iterator[bytes]:
                got = 0
                while block := response.read(READ):
                    got += len(block)
                    yield block
                if got != length:
                    raise RuntimeError(f"bundle cut short: {got} of {length} bytes")

            yield blocks()
        finally:
            connection.close()


def disk_seconds(services: Services) -> float:
    """How long reading every stored sealed file takes, a megabyte at a time."""
    started = time.perf_counter()
    for folder in sorted(services.store.root.iterdir()):
        if folder.name == storage.INCOMING:
            continue
        for path in sorted(folder.iterdir()):
            with path.open("rb") as handle:
                while handle.read(READ):
                    pass
    return time.perf_counter() - started


def measure(name: str, count: int, chunks: int) -> Measured:
    """Fill a fresh deployment, serve it, sign in, download; what was measured."""
    with tempfile.TemporaryDirectory(prefix="portal-bench-export-") as tmp:
        folder = Path(tmp)
        env = deployment(folder)
        services = load(load_config(env))
        try:
            fill(services, count, chunks)
            credentials = add_staff(services)
            disk = disk_seconds(services)
        finally:
            services.engine.dispose()
        with Served(folder, env) as served:
            assert served.process is not None
            worker = staff_worker(served.process.pid)
            browser = Browser(served)
            browser.sign_in(credentials)
            lifetime_before = peak_rss(worker)
            reset_peak(worker)
            before = rss(worker)
            received = 0
            started = time.perf_counter()
            with browser.download() as blocks:
                for block in blocks:
                    received += len(block)
            seconds = time.perf_counter() - started
            streaming = peak_rss(worker)
            lifetime = max(lifetime_before, streaming)
        services = load(load_config(env))
        try:
            with services.sessions() as session:
                exported = session.scalar(
                    select(func.count(Submission.id)).where(Submission.exported_day.is_not(None))
                )
        finally:
            services.engine.dispose()
        if exported != count:
            raise RuntimeError(f"{exported} of {count} submissions marked exported")
        return Measured(name, count, received, seconds, disk, before, streaming, lifetime)


def run() -> None:
    """Both downloads, and their figures."""
    results = [
        measure("1,000 submissions of 64 KiB", 1000, 1),
        measure("one submission of 1 GiB", 1, GIB // crypto.CHUNK_SIZE),
    ]
    for r in results:
        print(
            f"   {r.name}: bundle {r.bundle_bytes / MB:,.0f} MB in {r.seconds:.1f} s "
            f"({r.bundle_bytes / MB / r.seconds:,.0f} MB/s)"
        )
        print(
            f"      staff worker peak RSS while streaming: {r.streaming_peak / MB:.0f} MB "
            f"(target < {MEMORY_TARGET / MB:.0f} MB: "
            f"{'met' if r.streaming_peak < MEMORY_TARGET else 'MISSED'}), from "
            f"{r.before / MB:.0f} MB before the download; over its life, sign-in included: "
            f"{r.lifetime_peak / MB:.0f} MB"
        )
        print(
            f"      download time / reading the same files from disk: "
            f"{r.seconds / r.disk_seconds:.1f}"
        )
    if any(r.lifetime_peak >= MEMORY_TARGET for r in results):
        raise SystemExit("the staff worker's memory passed the target")
