"""The WSGI layers around each site's Flask application, outermost first.

1. `Hardened`, put between the server and the application by `portal.wsgi` (any server, and
   `portal serve`): `wsgi.errors` becomes `_Errors`, which notes that something was written
   there but never what, so no text can bypass the portal's safe logging; `wsgi.input` becomes
   `_TimedInput`, which turns a body read that timed out (the server's per-read timeout or
   minimum rate) into a 408 page, and lets the upload gate restart the server's clock once an
   upload's turn comes (`restart_clock`, see `portal.web.gate`).
2. The Flask application, whose `__call__` hands each request to its `wsgi_app`.
3. `check_hosts`, which `create_app` puts in place of `app.wsgi_app`: a request for a host name
   other than the site's gets a bare 400 before Flask makes a request of it, so it reaches no
   view, no session and no rate limit.
4. Flask's own `wsgi_app`: the request, its hooks and the view.

An application made by `create_app` alone (the tests' client) has layers 2 to 4; the entry
points in `portal.wsgi` add the first.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import RequestTimeout

from portal.web.headers import PLAIN_HEADERS

if TYPE_CHECKING:
    from flask import Flask

    from portal.server.config import Config

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

# The logger's name is the one the entry points have always used: the log reads the same.
log = logging.getLogger("portal.wsgi")

# A Host header: a plain name or a bracketed IPv6 address, and perhaps a port.
HOST_SHAPE = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::[0-9]{1,5})?")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})


# The server-facing side: `Hardened`


class _TimedInput:
    """The request body, with a read that timed out turned into a 408 for the application."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, size: int | None = -1) -> bytes:
        """Read like the server's stream does."""
        try:
            data: bytes = self._stream.read(size if size is not None else -1)
            return data
        except TimeoutError as exc:
            raise RequestTimeout() from exc

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line like the server's stream does."""
        try:
            line: bytes = self._stream.readline(size if size is not None else -1)
            return line
        except TimeoutError as exc:
            raise RequestTimeout() from exc

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read lines like the server's stream does."""
        try:
            lines: list[bytes] = self._stream.readlines(hint if hint is not None else -1)
            return lines
        except TimeoutError as exc:
            raise RequestTimeout() from exc

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over lines."""
        while line := self.readline():
            yield line

    def restart_clock(self) -> None:
        """The body waited unread for the application (see `portal.web.gate`): pace it from now.

        Under `portal serve` the stream is gunicorn's body, whose reader holds the guarded
        socket reader of `portal.serve.workers`; other servers have no such clock to restart.
        """
        body_reader = getattr(self._stream, "reader", None)
        # A length or EOF reader holds it; a chunked reader reaches it through its request.
        reader = getattr(body_reader, "unreader", None) or getattr(
            getattr(body_reader, "req", None), "unreader", None
        )
        restart = getattr(reader, "restart", None)
        if callable(restart):
            restart()


class _Errors:
    """`wsgi.errors` that writes nothing the application passes it: text there is unchecked."""

    def write(self, text: str) -> int:
        """Note that something was written, without what."""
        if text.strip():
            log.warning("the application wrote to wsgi.errors; the text is not kept")
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        """Write each line (that is, note it)."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Nothing is buffered."""


class Hardened:
    """The server-facing side of a site: a safe `wsgi.errors` and a body read that may time out."""

    def __init__(self, app: Flask) -> None:
        """Wrap the Flask application `app`."""
        self.app = app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request."""
        environ["wsgi.errors"] = _Errors()
        stream = environ.get("wsgi.input")
        if stream is not None:
            environ["wsgi.input"] = _TimedInput(stream)
        return self.app(environ, start_response)


# The application's side: the host check


def check_hosts(app: Flask, config: Config) -> None:
    """Answer only to the configured host names (and loopback in the demo); others get a bare 400.

    The check wraps the whole application, so a request for another name reaches no view, no
    rate limit and no session: it gets a short plain answer that says nothing about the site.
    The port is ignored; a Host header that is not a plain name (and port) is refused.
    """
    allowed = set(config.hostnames)
    if config.demo:
        allowed |= LOOPBACK_NAMES
    inner: WSGIApp = app.wsgi_app
    body = b"Bad request.\n"
    refusal = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *PLAIN_HEADERS,
    ]

    def checked(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        match = HOST_SHAPE.fullmatch(str(environ.get("HTTP_HOST", "")).strip().lower())
        if match is None or match.group(1) not in allowed:
            start_response("400 Bad Request", list(refusal))
            return [body]
        return inner(environ, start_response)

    app.wsgi_app = checked  # type: ignore[method-assign]
