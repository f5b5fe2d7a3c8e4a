"""WSGI entry points for any server: `portal.wsgi:public` and `portal.wsgi:staff`.

Each is built from the environment (`PORTAL_*`) on first use, so a server that loads one site
never builds, or fails on, the other. Both are wrapped in `Hardened`, which holds for any
server: a request body that stops arriving becomes a 408 page rather than an error, and
nothing the application writes to `wsgi.errors` can bypass the portal's safe logging.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import RequestTimeout

from portal import SITES
from portal.serve.logs import ROUTE_KEY

if TYPE_CHECKING:
    from flask import Flask

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

log = logging.getLogger("portal.wsgi")


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


def build(site: str) -> Hardened:
    """Build one site from the environment; ConfigError says what is missing."""
    from portal import create_app

    if site not in SITES:
        raise ValueError(f"unknown site {site!r}")
    app = create_app(site)
    app.teardown_request(_note_route)
    return Hardened(app)


def _note_route(_error: BaseException | None) -> None:
    """Leave the pattern of the route that answered where the access log can read it."""
    from flask import request

    rule = request.url_rule
    request.environ[ROUTE_KEY] = rule.rule if rule is not None else "-"


def __getattr__(name: str) -> Hardened:
    """`public` and `staff`, each built the first time it is asked for."""
    if name in SITES:
        app = build(name)
        globals()[name] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
