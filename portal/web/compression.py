"""What goes gzip-compressed to a browser that accepts it: static files, and the public pages
a plain GET fetches.

Nothing the sites send may stay in a browser's cache (`headers`), so every page fetches its
stylesheet again, and every page that seals in the browser its script too: over a slow Tor
circuit those bytes, and the report form's own, are what a person waits for. Compressed, the
stylesheet goes from about 9 KB to 3 KB, the sealing script from 42 KB to 16 KB, and the report
form from 43 KB to under 10 KB.

What is compressed must not let the length of an answer tell a secret in it through text the
requester chose (the BREACH attack). Static files are the same bytes for everyone. A public page
answering a GET holds one secret, the form token, and nothing the request chose: the language
comes from a fixed list, and the query string and headers are never shown
(`tests/web/test_compression.py` checks every such page). Answers to a POST are never
compressed: they show what the person typed beside a token, a receipt or a reply. Nor is any
page of the staff site, whose lists show what their query string asks for.

Subresource Integrity checks the bytes after decoding, so the script's hash does not change.
"""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.security import safe_join

SUFFIXES = frozenset({".css", ".js"})


class Compressed:
    """The gzip form of the static files, made once per file and kept while it is unchanged."""

    def __init__(self, folder: Path) -> None:
        """Compress files under `folder`."""
        self._folder = folder
        self._lock = threading.Lock()
        self._made: dict[Path, tuple[tuple[int, int], bytes]] = {}

    def get(self, filename: str) -> bytes | None:
        """The gzip bytes of a compressible static file, or None (another kind, or none)."""
        joined = safe_join(str(self._folder), filename)
        if joined is None:
            return None
        path = Path(joined)
        if path.suffix not in SUFFIXES:
            return None
        try:
            info = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        with self._lock:
            made = self._made.get(path)
            if made is not None and made[0] == stamp:
                return made[1]
        # mtime=0: the same file always compresses to the same bytes.
        data = gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)
        with self._lock:
            self._made[path] = (stamp, data)
        return data


def init_app(app: Flask, pages: bool) -> None:
    """Serve the app's static stylesheets and scripts compressed when the browser accepts it,
    and with `pages` the pages a GET fetches too.

    Call it before any other extension adds an after-request step: the steps run in the
    reverse order, and compressing must come after every step that reads the page (the
    security headers look for the stylesheet's link).
    """
    assert app.static_folder is not None
    compressed = Compressed(Path(app.static_folder))

    def static(filename: str) -> Response:
        # What Flask's own static view sends: the file as it is, or the error page.
        response = app.send_static_file(filename)
        if Path(filename).suffix not in SUFFIXES:
            return response
        # Whatever is sent, a cache between must not give one form to a browser that asked
        # for the other.
        response.vary.add("Accept-Encoding")
        if response.status_code != 200 or not request.accept_encodings["gzip"]:
            return response
        data = compressed.get(filename)
        if data is None:
            return response
        response.close()
        answer = Response(data, content_type=response.headers["Content-Type"])
        answer.headers["Content-Encoding"] = "gzip"
        answer.vary.add("Accept-Encoding")
        return answer

    app.view_functions["static"] = static
    if pages:
        app.after_request(_compress_page)


def _compress_page(response: Response) -> Response:
    if request.method not in ("GET", "HEAD") or response.mimetype != "text/html":
        return response
    response.vary.add("Accept-Encoding")
    if (
        response.status_code != 200
        or response.direct_passthrough
        or response.is_streamed
        or "Content-Encoding" in response.headers
        or not request.accept_encodings["gzip"]
    ):
        return response
    response.set_data(gzip.compress(response.get_data(), compresslevel=6, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    return response
