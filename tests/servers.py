"""A real `portal serve` for tests and benchmarks: a deployment in a folder, HTTP over its sockets.

Used by the serve, log, host and rate-limit tests and by `bench/bench_serve.py`. Every
deployment has its own SQLite database, so a server that outlives one test never meets the
shared PostgreSQL database the other tests empty.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import TracebackType

from click.testing import CliRunner

from portal.cli import main
from portal.formats import crypto

# The smallest report the form takes: what happened, and the consents.
MINIMAL_REPORT = {
    "description": "Travel ban after speaking at the Human Rights Council.",
    "consent_of": "self",
    "consent_raise": "no",
    "consent_report": "anonymous",
    "consent_share_un": "yes",
    "consent_contact": "portal",
}

ROOT = Path(__file__).resolve().parent.parent
PORTAL = [sys.executable, "-c", "from portal.cli import main; main()"]


def deployment(folder: Path, **extra: str) -> dict[str, str]:
    """A fresh deployment in `folder` after `portal init`: its `PORTAL_*` environment."""
    folder.mkdir(parents=True, exist_ok=True)
    _secret, public = crypto.generate_keypair()
    key = folder / "team.pub"
    key.write_text(crypto.format_public_key_file(public, date.today()))
    env = {
        "PORTAL_DATA_DIR": str(folder / "data"),
        "PORTAL_TEAM_PUBLIC_KEY": str(key),
        "PORTAL_DATABASE_URL": f"sqlite:///{folder / 'portal.sqlite3'}",
        "PORTAL_RECEIPT_COST": "min",
        "PORTAL_HOSTNAMES": "localhost,127.0.0.1",
        **extra,
    }
    # In this process (a new one would spend a second importing): every other PORTAL_* unset.
    isolated: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PORTAL_")}
    result = CliRunner().invoke(main, ["init"], env={**isolated, **env})
    assert result.exit_code == 0, result.output
    return env


def full_env(env: Mapping[str, str]) -> dict[str, str]:
    """The process environment with the deployment's variables, and no stray `PORTAL_*`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    return {**base, **env}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def children(pid: int) -> list[int]:
    """The process ids whose parent is `pid`, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The parent id is the second field after the command name, which may hold spaces.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def connect(where: Path | int, timeout: float) -> socket.socket:
    """A connection to a Unix socket file or a loopback port."""
    if isinstance(where, Path):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: object = str(where)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        target = ("127.0.0.1", where)
    sock.settimeout(timeout)
    try:
        sock.connect(target)  # type: ignore[arg-type]
    except BaseException:
        sock.close()
        raise
    return sock


class UnixConnection(http.client.HTTPConnection):
    """http.client over a Unix socket."""

    def __init__(self, where: Path | int, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self._where = where

    def connect(self) -> None:
        """Connect to the socket file (or port)."""
        self.sock = connect(self._where, self.timeout)


@dataclass(frozen=True)
class Answer:
    """A response read to its end."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8", errors="replace")


@dataclass
class Served:
    """A running `portal serve`: its process, sockets and log files."""

    folder: Path
    env: dict[str, str]
    args: Sequence[str] = ()
    ports: Mapping[str, int] | None = None
    process: subprocess.Popen[bytes] | None = None
    sockets: dict[str, Path | int] = field(default_factory=dict)

    @property
    def log_file(self) -> Path:
        """Where the server's log goes."""
        return self.folder / "serve.log"

    @property
    def access_log(self) -> Path:
        """Where the server's access log goes (when `--access-log` is among the arguments)."""
        return self.folder / "access.log"

    @property
    def output(self) -> Path:
        """The server's standard output and error."""
        return self.folder / "serve.out"

    def start(self, timeout: float = 30) -> Served:
        """Start the server and wait until both sites accept connections."""
        run = self.folder / "run"
        where: list[str] = ["--socket-dir", str(run)]
        if self.ports:
            self.sockets = dict(self.ports)
            where = ["--port", str(self.ports["public"]), "--staff-port", str(self.ports["staff"])]
        else:
            self.sockets = {"public": run / "public.sock", "staff": run / "staff.sock"}
        with open(self.output, "wb") as out:
            self.process = subprocess.Popen(
                [*PORTAL, "serve", *where, "--log-file", str(self.log_file), *self.args],
                env=full_env(self.env), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"portal serve stopped: {self.output.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"portal serve did not start: {self.output.read_text()}")
            time.sleep(0.1)
        return self

    def ready(self) -> bool:
        """Whether both sites accept connections."""
        for where in self.sockets.values():
            try:
                connect(where, 1).close()
            except OSError:
                return False
        return True

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 45) -> int:
        """Stop the server the way systemd does; its exit status."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> Served:
        """Start."""
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop, whatever happened."""
        self.stop()

    def connection(self, site: str = "public", timeout: float = 30) -> UnixConnection:
        """A new connection to one site."""
        return UnixConnection(self.sockets[site], timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        site: str = "public",
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 30,
    ) -> Answer:
        """One request on a new connection, read to its end."""
        connection = self.connection(site, timeout)
        try:
            connection.request(
                method, path, body=body, headers={"Host": "localhost", **(headers or {})}
            )
            response = connection.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            connection.close()

    def raw(self, data: bytes, site: str = "public", timeout: float = 10) -> bytes:
        """Send bytes as they are and read one response (or all until the server closes)."""
        with connect(self.sockets[site], timeout) as sock:
            sock.sendall(data)
            return read_response(sock)

    def logs(self) -> str:
        """Everything the server logged, to its log files and its output."""
        return "\n".join(
            p.read_text(errors="replace")
            for p in (self.log_file, self.access_log, self.output)
            if p.exists()
        )


def read_to_end(sock: socket.socket) -> bytes:
    """Read until the peer closes (or resets) the connection."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(sock: socket.socket) -> bytes:
    """Read one response: its head, then Content-Length bytes, or all until the server closes."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    if length is None:
        return data + read_to_end(sock)
    while len(body) < int(length.group(1)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def status_of(raw: bytes) -> int:
    """The status code of a raw HTTP response."""
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.") else 0


# ---------------------------------------------------------------------------------------------
# Forms


def csrf(served: Served, path: str = "/en/submit") -> tuple[str, str]:
    """The CSRF token of a form page and the session cookie that goes with it."""

    answer = served.request("GET", path)
    token = re.search(r'name="csrf_token" value="([^"]+)"', answer.text)
    assert token, f"no CSRF token on {path}"
    cookie = answer.headers.get("Set-Cookie", "").split(";", 1)[0]
    return token.group(1), cookie


def multipart(
    fields: Mapping[str, str],
    files: Mapping[str, tuple[str, int]],
    boundary: str = "portal-test-boundary",
) -> tuple[bytes, bytes, str]:
    """The head and tail of a multipart body around files of given sizes, and its type.

    Files are described as name -> (file name, size); their bytes are sent by the caller
    between head and tail, so a test can pace them. Only one file is supported.
    """
    head = b""
    for name, value in fields.items():
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    ((field_name, (filename, _size)),) = files.items()
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head, tail, f"multipart/form-data; boundary={boundary}"


@dataclass(frozen=True)
class Upload:
    """What a paced upload measured."""

    status: int
    body: str
    size: int
    seconds: float

    @property
    def rate(self) -> float:
        """Bytes a second."""
        return self.size / self.seconds


def paced_upload(
    served: Served,
    size: int,
    rate: float,
    fields: Mapping[str, str],
    chunk: int = 16 * 1024,
    path: str = "/en/submit",
) -> Upload:
    """Send a report with one attachment of `size` bytes at about `rate` bytes a second."""
    token, cookie = csrf(served)
    head, tail, content_type = multipart(
        {**fields, "csrf_token": token}, {"attachments": ("evidence.bin", size)}
    )
    length = len(head) + size + len(tail)
    block = os.urandom(chunk)
    with connect(served.sockets["public"], 120) as sock:
        started = time.monotonic()
        sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            + head
        )
        sent = 0
        while sent < size:
            piece = block[: min(chunk, size - sent)]
            sock.sendall(piece)
            sent += len(piece)
            # Sleep until the schedule says the next piece is due.
            ahead = started + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        sock.sendall(tail)
        raw = read_to_end(sock)
        seconds = time.monotonic() - started
    _head, _, body = raw.partition(b"\r\n\r\n")
    return Upload(status_of(raw), body.decode("utf-8", errors="replace"), size, seconds)
