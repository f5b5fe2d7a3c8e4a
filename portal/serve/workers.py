"""gunicorn workers for the portal: every read from a client bounded, nothing said about itself.

gunicorn never times out a client that stops sending mid-request, so the portal's workers
bound every read from a client socket: a read that waits longer than `read_timeout` drops the
request, and so does a client that falls behind `min_rate` bytes a second on average after the
first `read_timeout` seconds (a slow-loris trickle). A stalled body gets a 408 page from the
application; stalled headers get a bare 408. Responses carry no `Server` header, and a request
gunicorn cannot parse gets a short answer and a log line that does not quote it.

`PortalWorker` is gunicorn's threaded worker (gthread) with these guards: a thread per
connection. The public site is served by `portal.serve.green.GreenWorker` instead, the same guards
on gunicorn's gevent worker, where a waiting client costs memory rather than a thread.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import time
from typing import Any

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

from portal.web.headers import PLAIN_HEADERS

# The messages keep the name they always had: operators grep for it.
log = logging.getLogger("portal.serve")

READ_TIMEOUT = 60.0
MIN_RATE = 1024
STATUS_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
}


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

    def __init__(
        self,
        sock: socket.socket,
        read_timeout: float,
        min_rate: int,
        keepalive: float | None = None,
    ) -> None:
        """Read from `sock`; see the module's description for the two limits.

        With `keepalive`, a connection waiting for its next request (`begin(idle=True)`) is
        closed quietly once it has sent nothing for that long, as gunicorn's own workers do.
        """
        super().__init__(sock)
        self.read_timeout = read_timeout
        self.min_rate = min_rate
        self.keepalive = keepalive
        self.begin()

    def begin(self, idle: bool = False) -> None:
        """A new request starts: its clock starts, and its headers come first."""
        self.started = time.monotonic()
        self.received = 0
        self.in_body = False
        self.tripped = False
        self.idle = idle and self.keepalive is not None

    def restart(self) -> None:
        """Pace the rest of the body from now: the server, not the client, kept it waiting."""
        self.started = time.monotonic()
        self.received = 0

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
        # Between requests of a kept-alive connection, only the keep-alive wait applies.
        waiting = self.idle and self.received == 0 and self.keepalive is not None
        wait = self.keepalive if waiting and self.keepalive is not None else self.read_timeout
        wait = min(wait, self._allowance(time.monotonic()))
        if prior:
            # gunicorn bounds its own reads (draining a body) with shorter deadlines: keep them.
            wait = min(wait, prior)
        if wait <= 0:
            return b"" if waiting else self._trip()
        self.sock.settimeout(wait)
        try:
            data: bytes = super().chunk(size_hint)
        except TimeoutError:
            # An idle connection is closed without a word, like any server's keep-alive.
            return b"" if waiting else self._trip()
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
            # The application turns this into its 408 page (see portal.web.middleware.Hardened).
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


class Guarded:
    """What both portal workers share: the limits, quiet responses and short error answers."""

    app: Any

    def init_process(self) -> None:
        """In the worker process only: answer with `QuietResponse`."""
        # gunicorn builds each response from this module attribute, and offers no setting.
        gunicorn_wsgi.Response = QuietResponse
        super().init_process()  # type: ignore[misc]

    def _limits(self) -> tuple[float, int]:
        options = getattr(self.app, "options", None)
        return (
            float(getattr(options, "read_timeout", READ_TIMEOUT)),
            int(getattr(options, "min_rate", MIN_RATE)),
        )

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """A request gunicorn could not parse or serve: a short answer, a log line without it."""
        answer_error(client, exc)


class PortalWorker(Guarded, ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker with guarded reads, no Server header and short error answers."""

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


def answer_error(client: socket.socket, exc: BaseException) -> None:
    """Answer a request gunicorn could not parse or serve; log it without quoting it."""
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
