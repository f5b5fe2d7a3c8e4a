"""Serving both sites with gunicorn: an arbiter per site, both started and kept by `portal serve`.

Why two arbiters rather than one whose application picks the site by listening socket: each
site then has its own workers and threads, so a flood of slow uploads on the public site can
never take the threads the staff need, and each runs with settings fit for it (the public site
takes hour-long uploads; the staff site does not). `portal serve` starts one child process per
site (`python -m portal.serving SITE OPTIONS`), passes on the signals it receives (TERM: finish
requests then stop, INT: stop now, HUP: reload workers, USR1: reopen log files), and stops the
other site and exits with an error when one of them stops by itself, so that systemd restarts
both.

Uploads at Tor speeds (tens of KB/s, an hour for 500 MiB) need a worker that does not tie a
process to a request: gunicorn's `gthread` worker, whose heartbeat comes from its main loop
and so never kills a long upload. gthread itself never times out a client that stops sending
mid-request, so `PortalWorker` bounds every read from a client socket: a read that waits longer
than `read_timeout` drops the request, and so does a client that falls behind `min_rate` bytes
a second on average after the first `read_timeout` seconds (a slow-loris trickle). A stalled
body gets a 408 page from the application; stalled headers get a bare 408. Both free the
thread at once, and other requests are served meanwhile by the other threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
from gunicorn.http import wsgi as gunicorn_wsgi  # type: ignore[import-untyped]
from gunicorn.http.errors import (  # type: ignore[import-untyped]
    ExpectationFailed,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    UnsupportedTransferCoding,
)
from gunicorn.http.parser import RequestParser  # type: ignore[import-untyped]
from gunicorn.http.unreader import SocketUnreader  # type: ignore[import-untyped]
from gunicorn.workers.gthread import TConn, ThreadWorker  # type: ignore[import-untyped]

from portal import logs
from portal.headers import PLAIN_HEADERS

log = logging.getLogger("portal.serving")

SITES = ("public", "staff")
# gunicorn's heartbeat: the gthread main loop beats every second whatever its threads do, so
# this only catches a worker whose main loop is stuck, never a slow request.
HEARTBEAT_SECONDS = 60
KEEPALIVE_SECONDS = 10
LIMIT_REQUEST_LINE = 4094
LIMIT_REQUEST_FIELDS = 50
LIMIT_REQUEST_FIELD_SIZE = 8190
# Sockets 0660: the owner and the group (debian-tor, through a setgid folder) may connect.
SOCKET_UMASK = 0o117
STAFF_THREADS = 8
STATUS_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
}


@dataclass(frozen=True)
class SiteOptions:
    """How one site is served."""

    site: str
    bind: str  # "unix:/path" or "127.0.0.1:port"
    workers: int = 1
    threads: int = 16
    read_timeout: float = 60.0
    min_rate: int = 1024
    graceful_timeout: int = 30
    log_file: str | None = None
    access_log: str | None = None
    log_level: str = "info"

    def to_json(self) -> str:
        """The options as one command-line argument."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SiteOptions:
        """The options from `to_json`."""
        return cls(**json.loads(text))


# ---------------------------------------------------------------------------------------------
# Reading from clients: every wait bounded


class RequestStalled(TimeoutError):
    """A client stopped sending, or sent too slowly, in the middle of a request."""


def plain_response(status: int) -> bytes:
    """A short response made outside the application, with the portal's headers, closing."""
    reason = STATUS_REASONS.get(status, "Error")
    body = f"{status} {reason}\n".encode("ascii")
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Connection: close",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in PLAIN_HEADERS),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.settimeout(2.0)
        sock.sendall(data)
    except OSError:
        pass


class GuardedUnreader(SocketUnreader):  # type: ignore[misc]
    """gunicorn's socket reader, with every wait bounded by time and by the client's pace."""

    def __init__(self, sock: socket.socket, read_timeout: float, min_rate: int) -> None:
        """Read from `sock`; see the module's description for the two limits."""
        super().__init__(sock)
        self.read_timeout = read_timeout
        self.min_rate = min_rate
        self.begin()

    def begin(self) -> None:
        """A new request starts: its clock starts, and its headers come first."""
        self.started = time.monotonic()
        self.received = 0
        self.in_body = False
        self.tripped = False

    def _allowance(self, now: float) -> float:
        """Seconds the client may still take before it falls behind the minimum rate."""
        if self.min_rate <= 0:
            return float("inf")
        return self.started + self.read_timeout + self.received / self.min_rate - now

    def chunk(self, size_hint: int | None = None) -> bytes:
        """The next bytes from the client, or the request is dropped."""
        if self.tripped:
            return self._trip()
        prior = self.sock.gettimeout()
        wait = min(self.read_timeout, self._allowance(time.monotonic()))
        if prior:
            # gunicorn bounds its own reads (draining a body) with shorter deadlines: keep them.
            wait = min(wait, prior)
        if wait <= 0:
            return self._trip()
        self.sock.settimeout(wait)
        try:
            data: bytes = super().chunk(size_hint)
        except TimeoutError:
            return self._trip()
        finally:
            with contextlib.suppress(OSError):
                self.sock.settimeout(prior)
        self.received += len(data)
        return data

    def _trip(self) -> bytes:
        first = not self.tripped
        self.tripped = True
        if first:
            log.info(
                "dropped a request whose %s stopped arriving in time (after %.0f s)",
                "body" if self.in_body else "headers",
                time.monotonic() - self.started,
            )
        if self.in_body:
            # The application turns this into its 408 page (see portal.wsgi.Hardened).
            raise RequestStalled("the client stopped sending")
        if first:
            _send_quietly(self.sock, plain_response(408))
        # An end of stream: gunicorn closes the connection without logging a failure.
        return b""


class GuardedConn(TConn):  # type: ignore[misc]
    """A gthread connection whose reads are guarded (see `GuardedUnreader`)."""

    def __init__(
        self,
        cfg: Any,
        sock: socket.socket,
        client: Any,
        server: Any,
        read_timeout: float,
        min_rate: int,
    ) -> None:
        """Accept `sock` with the given limits."""
        super().__init__(cfg, sock, client, server)
        self.read_timeout = read_timeout
        self.min_rate = min_rate

    def init(self) -> None:
        """Before each request: set up the parser once, then start the request's clock."""
        super().init()
        # Bounds writes too: a client that stops reading a response is let go.
        self.sock.settimeout(self.read_timeout)
        if isinstance(self.parser, RequestParser):
            unreader = self.parser.unreader
            if not isinstance(unreader, GuardedUnreader):
                guarded = GuardedUnreader(self.sock, self.read_timeout, self.min_rate)
                guarded.buf = unreader.buf
                self.parser.unreader = guarded
            self.parser.unreader.begin()


class QuietResponse(gunicorn_wsgi.Response):  # type: ignore[misc]
    """gunicorn's response without the `Server` header that names the software."""

    def default_headers(self) -> list[str]:
        """The status line, Date and Connection, and no Server."""
        return [
            line for line in super().default_headers() if not line.lower().startswith("server:")
        ]


class PortalWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker with guarded reads, no Server header and short error answers."""

    def init_process(self) -> None:
        """In the worker process only: answer with `QuietResponse`."""
        # gunicorn builds each response from this module attribute, and offers no setting.
        gunicorn_wsgi.Response = QuietResponse
        super().init_process()

    def _limits(self) -> tuple[float, int]:
        options = getattr(self.app, "options", None)
        if isinstance(options, SiteOptions):
            return options.read_timeout, options.min_rate
        return SiteOptions.read_timeout, SiteOptions.min_rate

    def accept(self, listener: socket.socket) -> None:
        """Accept a connection as gthread does, as a `GuardedConn`."""
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        client_sock.setblocking(True)
        read_timeout, min_rate = self._limits()
        conn = GuardedConn(
            self.cfg, client_sock, client_addr, listener.getsockname(), read_timeout, min_rate
        )
        self.enqueue_req(conn)

    def handle_request(self, req: Any, conn: Any) -> bool:
        """The headers are in: from here on, a stall is the body's."""
        unreader = getattr(getattr(conn, "parser", None), "unreader", None)
        if isinstance(unreader, GuardedUnreader):
            unreader.in_body = True
        return bool(super().handle_request(req, conn))

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """A request gunicorn could not parse or serve: a short answer, a log line without it."""
        if isinstance(exc, LimitRequestLine):
            status = 414
        elif isinstance(exc, LimitRequestHeaders):
            status = 431
        elif isinstance(exc, UnsupportedTransferCoding):
            status = 501
        elif isinstance(exc, ExpectationFailed):
            status = 417
        elif isinstance(exc, InvalidResponseHeader | InvalidResponseHeaderName):
            status = 500  # the application's fault, not the client's
        elif type(exc).__module__.startswith("gunicorn.http"):
            status = 400
        else:
            status = 500
        if status == 500:
            log.error("could not serve a request (%s)", type(exc).__name__, exc_info=exc)
        else:
            # gunicorn's own line would quote the request line or the header it refused.
            log.info("refused a malformed request with %d (%s)", status, type(exc).__name__)
        _send_quietly(client, plain_response(status))


# ---------------------------------------------------------------------------------------------
# One site, one arbiter


def _post_fork(server: Any, worker: Any) -> None:
    """In each new worker: database connections are never shared with the parent process."""
    flask_app = getattr(worker.app, "flask_app", None)
    if flask_app is not None:
        flask_app.extensions["portal"].engine.dispose(close=False)


def gunicorn_settings(options: SiteOptions) -> dict[str, Any]:
    """gunicorn's settings for one site."""
    return {
        "bind": [options.bind],
        "workers": options.workers,
        "threads": options.threads,
        "worker_class": PortalWorker,
        "timeout": HEARTBEAT_SECONDS,
        "graceful_timeout": options.graceful_timeout,
        "keepalive": KEEPALIVE_SECONDS,
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_fields": LIMIT_REQUEST_FIELDS,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        "umask": SOCKET_UMASK,
        "preload_app": True,
        "post_fork": _post_fork,
        "proc_name": f"portal-{options.site}",
        "control_socket_disable": True,
        # Tor passes what clients send verbatim, and gunicorn trusts every Unix socket peer
        # as a proxy: no header may set the scheme, the script name or the path.
        "forwarded_allow_ips": "",
        "secure_scheme_headers": {},
        "forwarder_headers": "",
        "header_map": "drop",
        "http_protocols": "h1",
        "logger_class": logs.GunicornLogger,
        "logconfig_dict": logs.logconfig_dict(
            options.log_file, options.access_log, options.log_level
        ),
        "accesslog": options.access_log,
        "loglevel": options.log_level,
        "capture_output": False,
    }


class PortalApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn's application for one site, configured in code."""

    def __init__(self, options: SiteOptions) -> None:
        """Serve `options.site` as `options` say."""
        self.options = options
        self.flask_app: Any = None
        super().__init__()

    def load_config(self) -> None:
        """Apply `gunicorn_settings`."""
        for name, value in gunicorn_settings(self.options).items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        """Build the site (once, in the arbiter, before the workers are forked)."""
        from portal.config import ConfigError
        from portal.wsgi import build

        try:
            hardened = build(self.options.site)
        except ConfigError as exc:
            raise RuntimeError(str(exc)) from exc
        self.flask_app = hardened.app
        return hardened


def _die_with_parent(parent: int) -> None:
    """Stop when `portal serve` dies, even by SIGKILL (Linux; elsewhere the parent must live)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit(1)


def run_site(options: SiteOptions) -> None:
    """Run one site's arbiter in this process until it is told to stop."""
    PortalApplication(options).run()


def main(argv: Sequence[str]) -> int:
    """`python -m portal.serving SITE OPTIONS PARENT`: what `portal serve` starts per site."""
    options = SiteOptions.from_json(argv[2])
    # A shell may start `portal serve` with INT ignored, and children inherit that: until
    # gunicorn installs its own handlers, INT and TERM stop a site that is still starting.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(int(argv[3]))
    run_site(options)
    return 0


# ---------------------------------------------------------------------------------------------
# Both sites, watched


FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


@dataclass
class Supervisor:
    """Starts each site's arbiter as a child process and keeps them together."""

    sites: Sequence[SiteOptions]
    env: dict[str, str]
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopping: bool = False

    def start(self) -> None:
        """Start every site."""
        for options in self.sites:
            self.children[options.site] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "portal.serving",
                    options.site,
                    options.to_json(),
                    str(os.getpid()),
                ],
                env=self.env,
                stdin=subprocess.DEVNULL,
            )

    def forward(self, signum: int, _frame: object = None) -> None:
        """Pass a signal on to every site; TERM and INT also mean that stopping is expected."""
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stopping = True
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signum)

    def wait_ready(self, timeout: float) -> bool:
        """Wait until every site accepts connections; False if one stopped or time ran out."""
        deadline = time.monotonic() + timeout
        pending = list(self.sites)
        while pending and time.monotonic() < deadline:
            if any(child.poll() is not None for child in self.children.values()):
                return False
            pending = [options for options in pending if not accepts(options.bind)]
            if pending:
                time.sleep(0.1)
        return not pending

    def wait(self) -> int:
        """Block until a site stops; stop the others; the exit status for `portal serve`."""
        while True:
            for site, child in self.children.items():
                code = child.poll()
                if code is not None:
                    return self._stop_others(site, code)
            time.sleep(0.2)

    def _stop_others(self, site: str, code: int) -> int:
        expected = self.stopping
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        grace = max(options.graceful_timeout for options in self.sites) + 10
        for child in self.children.values():
            try:
                child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if expected and all(
            c.returncode in (0, -signal.SIGTERM, -signal.SIGINT) for c in self.children.values()
        ):
            return 0
        if not expected:
            log.error(
                "the %s site stopped by itself (exit status %s); the others were stopped",
                site,
                code,
            )
        return code or 1


def accepts(bind: str) -> bool:
    """Whether something accepts connections at a gunicorn bind address."""
    if bind.startswith("unix:"):
        family, address = socket.AF_UNIX, bind.removeprefix("unix:")
        target: Any = address
    else:
        host, _, port = bind.rpartition(":")
        family, target = socket.AF_INET, (host, int(port))
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(target)
        except OSError:
            return False
    return True


def supervise(
    sites: Sequence[SiteOptions],
    env: dict[str, str],
    on_ready: Callable[[], None] | None = None,
    ready_timeout: float = 60,
) -> int:
    """Serve every site until told to stop; the exit status for `portal serve`."""
    supervisor = Supervisor(sites, env)
    previous = {signum: signal.signal(signum, supervisor.forward) for signum in FORWARDED}
    try:
        supervisor.start()
        if supervisor.wait_ready(ready_timeout):
            if on_ready is not None:
                on_ready()
        elif all(child.poll() is None for child in supervisor.children.values()):
            log.warning("the sites did not accept connections within %.0f s", ready_timeout)
        return supervisor.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for child in supervisor.children.values():
            if child.poll() is None:
                child.kill()
                child.wait()


def binds_in(folder: Path) -> dict[str, str]:
    """The Unix socket of each site in `folder`."""
    return {site: f"unix:{folder / f'{site}.sock'}" for site in SITES}


def loopback(port: int) -> str:
    """A bind address on the loopback interface."""
    return f"127.0.0.1:{port}"


def unlink_sockets(binds: Iterable[str]) -> None:
    """Remove the socket files gunicorn leaves behind."""
    for bind in binds:
        if bind.startswith("unix:"):
            with_path = Path(bind.removeprefix("unix:"))
            if with_path.is_socket():
                with_path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
