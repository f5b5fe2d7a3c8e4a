"""Request bodies: files sealed as they stream in, sealed pieces stored as they are, and every
way a body can be broken ending in a page, with nothing left staged.

The helpers at the top build multipart bodies by hand (werkzeug's test client would spool a
large body to a temporary file of its own) and look at what a deployment holds; the other
test modules of the public site use them too.
"""

from __future__ import annotations

import io
import re
import secrets
import tempfile
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import MINIMAL_REPORT, csrf_token
from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from portal.formats import bundle, crypto, questionnaire
from portal.server import storage
from portal.server.models import Submission
from portal.web import partstreams

# ---------------------------------------------------------------------------------------------
# Helpers shared by the public site's tests


@dataclass(frozen=True)
class FilePart:
    """A file part of a multipart body."""

    name: str
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


Part = tuple[str, str] | FilePart


def multipart(parts: Sequence[Part], boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body with its parts in the order given, and its content type."""
    boundary = boundary or f"portal-test-{secrets.token_hex(12)}"
    out = io.BytesIO()
    for part in parts:
        out.write(f"--{boundary}\r\n".encode())
        if isinstance(part, FilePart):
            out.write(
                f'Content-Disposition: form-data; name="{part.name}"; '
                f'filename="{part.filename}"\r\n'
                f"Content-Type: {part.content_type}\r\n\r\n".encode()
            )
            out.write(part.content)
        else:
            name, value = part
            out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
            out.write(value.encode("utf-8"))
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def post_parts(client: FlaskClient, path: str, parts: Sequence[Part]) -> TestResponse:
    """Post a multipart body built from `parts`."""
    body, content_type = multipart(parts)
    return client.post(path, data=body, content_type=content_type)


def report_parts(token: str, fields: dict[str, str] | None = None) -> list[Part]:
    """The text parts of a minimal valid report (plus `fields`)."""
    values = {**MINIMAL_REPORT, **(fields or {})}
    return [("csrf_token", token), *values.items(), ("website", "")]


def error_message(html: str) -> str:
    """The text of the element a page marks with `data-error-message`."""
    marker = html.index("data-error-message")
    start = html.index(">", marker) + 1
    return html[start : html.index("<", start)].strip()


@dataclass(frozen=True)
class Stored:
    """What a deployment holds: submission rows, submission folders, staging and kept folders."""

    rows: int
    folders: set[str]
    staging: list[Path]


def stored(app: Flask) -> Stored:
    """Count what the deployment of `app` holds."""
    services = app.extensions["portal"]
    with services.sessions() as session:
        rows = session.scalar(select(func.count()).select_from(Submission)) or 0
    staging = sorted(
        item
        for folder in (services.store.incoming, services.store.kept)
        if folder.exists()
        for item in folder.iterdir()
        if item.is_dir()
    )
    return Stored(rows, services.store.stored_ids(), staging)


def assert_nothing_stored(app: Flask) -> None:
    """No row, no submission folder, no staging folder."""
    assert stored(app) == Stored(0, set(), [])


def staging_files(app: Flask) -> Iterator[Path]:
    """Every file in the staging folders."""
    for folder in stored(app).staging:
        yield from folder.iterdir()


# ---------------------------------------------------------------------------------------------
# Streams


SIZES = [0, 1, 65535, 65536, 65537, 3 * 65536, 200_001]


@pytest.mark.parametrize(
    ("size", "piece"),
    # Byte by byte only for small files: it is slow and says nothing more about large ones.
    [
        (size, piece)
        for size in SIZES
        for piece in (1, 1000, 65536, 100_000)
        if piece > 1 or size < 70_000
    ],
)
def test_a_sealing_stream_writes_a_blob_that_opens_to_the_same_bytes(
    tmp_path: Path, size: int, piece: int
) -> None:
    data = secrets.token_bytes(size)
    key = crypto.new_file_key()
    path = tmp_path / "blob"
    stream = partstreams.SealingStream(path.open("wb"), key)
    for start in range(0, size, piece):
        stream.write(data[start : start + piece])
    assert stream.finish() == size
    assert path.stat().st_size == crypto.blob_length(size)
    with path.open("rb") as source:
        assert b"".join(crypto.decrypt_chunks(source, key, size)) == data


def _a_bundle(tmp_path: Path) -> bytes:
    entry = bundle.Entry("sub1", "case1", "report", "2026-01-01", 0)
    manifest = b"m" * (4096 + crypto.SEAL_OVERHEAD)
    out = io.BytesIO()
    bundle.write(
        out,
        [entry],
        [bundle.Member(bundle.manifest_name("sub1"), len(manifest), lambda: io.BytesIO(manifest))],
    )
    return out.getvalue()


@pytest.mark.parametrize("piece", [1, 7, 512, 4096])
def test_a_case_file_stream_writes_a_bundle_as_it_is(tmp_path: Path, piece: int) -> None:
    data = _a_bundle(tmp_path)
    path = tmp_path / "case"
    stream = partstreams.CaseFileStream(path.open("wb"), limit=1 << 30)
    for start in range(0, len(data), piece):
        stream.write(data[start : start + piece])
    assert stream.finish() == len(data)
    assert not stream.not_bundle
    assert path.read_bytes() == data


@pytest.mark.parametrize(
    "data",
    [
        b"A report typed into a text file and chosen here by mistake. " * 100,
        b"short",
        b"\0" * 4096,
        # A tar whose first member is not a bundle index.
        b"notes.txt".ljust(100, b"\0") + b"\0" * 412 + b"secret words" * 100,
    ],
    ids=["text", "short", "zeros", "other-tar"],
)
@pytest.mark.parametrize("piece", [1, 300, 100_000])
def test_a_case_file_stream_writes_nothing_of_what_is_no_bundle(
    tmp_path: Path, data: bytes, piece: int
) -> None:
    path = tmp_path / "case"
    stream = partstreams.CaseFileStream(path.open("wb"), limit=1 << 30)
    for start in range(0, len(data), piece):
        stream.write(data[start : start + piece])
    assert stream.finish() == len(data)
    assert stream.not_bundle
    assert path.read_bytes() == b""


# ---------------------------------------------------------------------------------------------
# Through the site


def test_an_attachment_is_sealed_before_any_byte_reaches_the_disk(
    app: Flask, client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Werkzeug's own parser spools a large file part to a temporary file; the portal's must not.
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    monkeypatch.setenv("TMPDIR", str(spool))
    marker = b"PLAINTEXT-MARKER-" + secrets.token_hex(8).encode()
    content = marker * (3 * 1024 * 1024 // len(marker))
    seen: list[bytes] = []
    real_commit = storage.BlobStore.commit

    def spy(self: storage.BlobStore, staging: storage.Staging, *args: object) -> int:
        # What is staged, just before it is stored.
        seen.extend(staging.file(name).read_bytes() for name in staging.names())
        return real_commit(self, staging, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(storage.BlobStore, "commit", spy)
    response = post_parts(
        client,
        "/en/submit",
        [*report_parts(csrf_token(client)), FilePart("attachments", "a.txt", content)],
    )
    assert response.status_code == 200
    assert len(seen) == 2
    assert all(marker not in data for data in seen)
    assert list(spool.iterdir()) == []
    assert stored(app).rows == 1


def test_an_empty_file_input_is_no_attachment(app: Flask, client: FlaskClient) -> None:
    response = post_parts(
        client, "/en/submit", [*report_parts(csrf_token(client)), FilePart("attachments", "", b"")]
    )
    assert response.status_code == 200
    services = app.extensions["portal"]
    with services.sessions() as session:
        assert session.scalar(select(Submission.file_count)) == 0


def test_an_empty_file_with_a_name_is_an_attachment(app: Flask, client: FlaskClient) -> None:
    response = post_parts(
        client,
        "/en/submit",
        [*report_parts(csrf_token(client)), FilePart("attachments", "empty.txt", b"")],
    )
    assert response.status_code == 200
    services = app.extensions["portal"]
    with services.sessions() as session:
        submission = session.scalars(select(Submission)).one()
    assert submission.file_count == 1
    blob = services.store.path(submission.id) / "0.blob"
    assert blob.stat().st_size == crypto.SEALED_CHUNK_SIZE


def test_a_stray_file_part_is_not_stored_with_the_report(app: Flask, client: FlaskClient) -> None:
    response = post_parts(
        client,
        "/en/submit",
        [*report_parts(csrf_token(client)), FilePart("photo", "p.jpg", b"stray" * 1000)],
    )
    assert response.status_code == 200
    services = app.extensions["portal"]
    (folder,) = stored(app).folders
    assert sorted(p.name for p in services.store.path(folder).iterdir()) == [bundle.STORED_MANIFEST]


@pytest.mark.parametrize(
    "body",
    [
        # Ends inside a file part, with no closing boundary.
        b'--XX\r\nContent-Disposition: form-data; name="attachments"; filename="a.txt"\r\n\r\n'
        + b"A" * 200_000,
        # Headers that never end.
        b'--XX\r\nContent-Disposition: form-data; name="description"' + b"x" * 100_000,
        b"no multipart at all",
    ],
    ids=["ends-inside-a-part", "endless-headers", "garbage"],
)
def test_a_malformed_body_is_a_400_page_and_leaves_nothing(
    app: Flask, client: FlaskClient, body: bytes
) -> None:
    token = csrf_token(client)
    head = f'--XX\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
    response = client.post(
        "/en/submit",
        data=head.encode() + body,
        content_type="multipart/form-data; boundary=XX",
    )
    assert response.status_code == 400
    assert "data-error-message" in response.get_data(as_text=True)
    assert_nothing_stored(app)


def test_a_multipart_body_without_a_boundary_is_a_400_page(app: Flask, client: FlaskClient) -> None:
    body, _type = multipart(report_parts(csrf_token(client)))
    response = client.post("/en/submit", data=body, content_type="multipart/form-data")
    assert response.status_code == 400
    assert_nothing_stored(app)


@pytest.mark.parametrize("path", ["/en/submit", "/en/submit/sealed", "/en/follow-up"])
def test_a_body_that_breaks_off_midway_leaves_nothing(
    app: Flask, client: FlaskClient, path: str
) -> None:
    body, content_type = multipart(
        [
            *report_parts(csrf_token(client)),
            FilePart("attachments", "a.bin", secrets.token_bytes(300_000)),
        ]
    )
    cut = body[: len(body) // 2]
    response = client.post(
        path,
        input_stream=io.BytesIO(cut),
        content_type=content_type,
        headers={"Content-Length": str(len(body))},
    )
    assert response.status_code == 400
    assert_nothing_stored(app)


def test_a_file_part_sent_to_a_page_that_accepts_none_is_a_400(
    app: Flask, client: FlaskClient
) -> None:
    def probe() -> str:
        # A view that reads the form without declaring uploads.
        return request.form.get("note", "")

    app.add_url_rule("/probe", "probe", probe, methods=["POST"])
    assert post_parts(client, "/probe", [("note", "hello")]).get_data(as_text=True) == "hello"
    response = post_parts(client, "/probe", [("note", "x"), FilePart("f", "f.txt", b"data")])
    assert response.status_code == 400
    assert_nothing_stored(app)


def test_more_files_than_allowed_come_back_with_the_first_hundred_kept(
    app: Flask, client: FlaskClient
) -> None:
    files = [FilePart("attachments", f"f{i}.txt", b"%d" % i) for i in range(103)]
    response = post_parts(client, "/en/submit", [*report_parts(csrf_token(client)), *files])
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "At most 100 files can be sent at once" in html
    assert html.count('name="keep_file"') == 100
    assert stored(app).rows == 0
    assert len(list(staging_files(app))) == 100


def test_a_sealed_manifest_over_its_limit_is_cut_off(app: Flask, client: FlaskClient) -> None:
    manifest = b"\0" * (2 * 1024 * 1024)
    response = post_parts(
        client,
        "/en/submit/sealed",
        [
            ("csrf_token", csrf_token(client)),
            ("file_count", "0"),
            FilePart("manifest", "manifest.sealed", manifest),
        ],
    )
    assert response.status_code == 413
    assert_nothing_stored(app)


def test_a_form_that_comes_back_keeps_a_staging_folder_only_for_its_files(
    app: Flask, client: FlaskClient
) -> None:
    token = csrf_token(client)
    post_parts(client, "/en/submit", [("csrf_token", token), ("description", "no consent")])
    assert_nothing_stored(app)
    post_parts(
        client,
        "/en/submit",
        [("csrf_token", token), FilePart("attachments", "a.txt", b"evidence")],
    )
    assert [p.name for p in staging_files(app)] == ["part-0"]


# ---------------------------------------------------------------------------------------------
# Bodies other than multipart


class CountingStream(io.RawIOBase):
    """A request body of `size` bytes (`head`, then filler) that counts what is read of it."""

    def __init__(self, head: bytes, size: int) -> None:
        self._head = head
        self.size = size
        self._position = 0
        self.read_so_far = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        # The test client measures the body by seeking to its end and back.
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = max(0, min(len(buffer), self.size - self._position))
        head = self._head[self._position : self._position + n]
        buffer[: len(head)] = head
        buffer[len(head) : n] = b"a" * (n - len(head))
        self._position += n
        self.read_so_far += n
        return n


FORM_MEMORY = 2 * 1024 * 1024


@pytest.mark.parametrize("path", ["/en/submit", "/en/follow-up", "/en/submit/sealed"])
@pytest.mark.parametrize("length", ["declared", "chunked"])
def test_a_url_encoded_body_over_the_form_memory_limit_is_refused_unread(
    app: Flask, client: FlaskClient, path: str, length: str
) -> None:
    assert app.config["MAX_FORM_MEMORY_SIZE"] == FORM_MEMORY
    token = csrf_token(client)
    body = CountingStream(f"csrf_token={token}&description=".encode(), 20 * 1024 * 1024)
    # Without a length, a server that ends the body itself (chunked) says so in the environ.
    chunked = {"CONTENT_LENGTH": "", "wsgi.input_terminated": True}
    response = client.post(
        path,
        input_stream=body,
        content_type="application/x-www-form-urlencoded",
        environ_overrides=chunked if length == "chunked" else {},
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "at most 2 MB" in error_message(text)
    assert len(text) < 20_000
    # A declared length is refused before a byte is read; a chunked body just past the limit.
    assert body.read_so_far <= (0 if length == "declared" else FORM_MEMORY + 1)
    assert_nothing_stored(app)


@pytest.mark.parametrize("path", ["/en/submit", "/en/follow-up", "/en/submit/sealed"])
def test_the_text_parts_of_a_multipart_body_share_one_form_memory_budget(
    app: Flask, client: FlaskClient, path: str
) -> None:
    # Each part is under the per-part limit; together they are ten times the form's budget.
    piece = "x" * (FORM_MEMORY // 4)
    parts: list[Part] = [("csrf_token", csrf_token(client))]
    parts += [(f"note{i}", piece) for i in range(40)]
    tracemalloc.start()
    try:
        response = post_parts(client, path, parts)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    text = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "at most 2 MB" in error_message(text)
    # The body itself is in memory (the test client holds it); the parsed text is not added.
    assert peak < 3 * len(piece) * 40
    assert_nothing_stored(app)


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_what_was_typed_comes_back_no_longer_than_its_field_allows(
    app: Flask, client: FlaskClient, encoding: str
) -> None:
    limits = {f.name: f.limit for f in questionnaire.REPORT_FIELDS}
    typed = {"description": "d" * (FORM_MEMORY // 2), "target_name": "n" * 100_000}
    fields = [("csrf_token", csrf_token(client)), *typed.items(), ("consent_raise", "x" * 50_000)]
    if encoding == "multipart":
        response = post_parts(client, "/en/submit", fields)
    else:
        response = client.post("/en/submit", data=dict(fields))
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "This is too long" in text
    for name in typed:
        shown = re.search(
            rf'name="{name}"[^>]*>(d*)</textarea>|name="{name}"[^>]*value="(n*)"', text
        )
        assert shown, name
        assert len(shown.group(1) or shown.group(2)) == limits[name]
    # A value that is no choice of its field is not shown at all.
    assert "x" * 100 not in text
    assert len(text) < sum(limits.values()) + 200_000
