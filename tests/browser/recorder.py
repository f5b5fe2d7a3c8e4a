"""The server side of browser tests: recording request bodies, serving WSGI apps on loopback."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


# --- Server side: recording bodies, serving WSGI apps ------------------------------------------


@dataclasses.dataclass
class RecordedRequest:
    """A request that passed through a BodyRecorder."""

    method: str
    path: str
    _spool: Any = dataclasses.field(repr=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def _write(self, data: bytes | memoryview) -> None:
        with self._lock:
            self._spool.seek(0, io.SEEK_END)
            self._spool.write(data)

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The recorded body in pieces, without loading it all."""
        position = 0
        while True:
            with self._lock:
                self._spool.seek(position)
                piece = self._spool.read(size)
            if not piece:
                return
            position += len(piece)
            yield piece

    @property
    def body(self) -> bytes:
        """The whole recorded body."""
        return b"".join(self.chunks())


class _TeeInput(io.RawIOBase):
    """A wsgi.input that copies every byte the application reads into a recording."""

    def __init__(self, stream: Any, record: RecordedRequest) -> None:
        super().__init__()
        self._stream = stream
        self._record = record
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def _keep(self, data: bytes | memoryview) -> None:
        if data:
            self.consumed += len(data)
            self._record._write(data)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if hasattr(self._stream, "readinto"):
            count = self._stream.readinto(view) or 0
        else:
            data = self._stream.read(len(view))
            count = len(data)
            view[:count] = data
        self._keep(view[:count])
        return count

    def read(self, size: int | None = -1) -> bytes:
        data: bytes = self._stream.read() if size is None or size < 0 else self._stream.read(size)
        self._keep(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data: bytes = (
            self._stream.readline() if size is None or size < 0 else self._stream.readline(size)
        )
        self._keep(data)
        return data


class _ClosingBody:
    """The application's response, with a hook run once it has all been sent."""

    def __init__(self, body: Iterable[bytes], after: Callable[[], None]) -> None:
        self._body = body
        self._after = after

    def __iter__(self) -> Iterator[bytes]:
        yield from self._body
        # Here, not in close(): werkzeug's server discards the unread input before close().
        self._after()

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


class BodyRecorder:
    """WSGI middleware keeping every raw request body (spooled to disk when large)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, spool_bytes: int = 1 << 20) -> None:
        """Wrap app; bodies above spool_bytes go to a temporary file instead of memory."""
        self.app = app
        self.spool_bytes = spool_bytes
        self._records: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Pass the request on with a recording wsgi.input."""
        record = RecordedRequest(
            method=environ.get("REQUEST_METHOD", ""),
            path=environ.get("PATH_INFO", ""),
            # Closed by clear() / close(): records outlive this call.
            _spool=tempfile.SpooledTemporaryFile(max_size=self.spool_bytes),  # noqa: SIM115
        )
        with self._lock:
            self._records.append(record)
        tee = _TeeInput(environ["wsgi.input"], record)
        environ["wsgi.input"] = tee
        body = self.app(environ, start_response)
        return _ClosingBody(body, lambda: self._drain(environ, tee))

    @staticmethod
    def _drain(environ: Mapping[str, Any], tee: _TeeInput) -> None:
        # Record what the client sent even where the application did not read it all (a
        # rejected upload): "the server never received X" checks must see every byte.
        with contextlib.suppress(Exception):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length:
                while tee.consumed < length and tee.read(min(1 << 20, length - tee.consumed)):
                    pass
            elif environ.get("wsgi.input_terminated"):
                while tee.read(1 << 20):
                    pass

    def records(self) -> list[RecordedRequest]:
        """Every request recorded so far, oldest first."""
        with self._lock:
            return list(self._records)

    def bodies(self) -> list[tuple[str, str, bytes]]:
        """(method, path, body) of every request recorded so far."""
        return [(r.method, r.path, r.body) for r in self.records()]

    def contains(self, marker: bytes) -> bool:
        """Whether marker occurs in any recorded body (searched piecewise, across piece borders)."""
        if not marker:
            raise ValueError("an empty marker matches everything")
        for record in self.records():
            tail = b""
            for piece in record.chunks():
                if marker in tail + piece:
                    return True
                tail = (tail + piece)[-(len(marker) - 1) :] if len(marker) > 1 else b""
        return False

    def clear(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            records, self._records = self._records, []
        for record in records:
            record._spool.close()

    close = clear

    def __enter__(self) -> BodyRecorder:
        """Use the recorder; its spooled bodies are deleted at the end."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Delete the spooled bodies."""
        self.close()


@contextlib.contextmanager
def serve_wsgi(app: Callable[..., Iterable[bytes]], host: str = "127.0.0.1") -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a thread; yield its base URL (no final slash)."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    server = make_server(host, 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, name=f"wsgi-{server.server_port}", daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
