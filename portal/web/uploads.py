"""Request bodies that never touch the disk in plaintext.

Werkzeug parses a multipart body by asking the request for a stream per file part. The portal's
request class hands it a stream that seals as it writes (`portal.web.partstreams`): each
attached file becomes a blob of the envelope format, under a fresh key, directly in the blob
store's staging folder. For
uploads that arrive already sealed (from the browser or a relay's sealed case file), the stream
writes the bytes as they are and stops at the size a sealed piece may have. A view says which
of the two it wants, and under which field names, through `expect_uploads()`, before it
touches `request.form`; a file part under another name is let go unwritten, and a file part
arriving at any other view is refused. A relay's case file posted with the report form is the one
part of a sealed-on-arrival form stored as it is, and only once its first block shows it is a
bundle: a document chosen there by mistake is never written.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import IO, Any

from flask import Request, request
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from portal.formats import crypto, envelope
from portal.server import intake, storage
from portal.web.partstreams import CaseFileStream, Nowhere, RawStream, SealingStream

SEAL = "seal"
RAW = "raw"
ENVIRON_KEY = "portal.web.uploads"
# The field of the report form that carries a relay's sealed case file (a bundle).
CASE_FILE = "case_file"


class UploadRefused(BadRequest):
    """A file part the current view does not accept."""


class MalformedBody(BadRequest):
    """A form body that cannot be parsed (a broken multipart body, say)."""


class FormTooLarge(RequestEntityTooLarge):
    """A form whose text is larger than the form-memory limit (`limit` bytes): a body other
    than multipart, or the text parts of a multipart body taken together."""

    def __init__(self, limit: int) -> None:
        """Name the limit, for the page that says it."""
        super().__init__()
        self.limit = limit


@dataclass
class Part:
    """One file part of the body as it was stored."""

    field: str
    filename: str
    content_type: str
    stream: SealingStream | RawStream | None
    name: str  # its file name in the staging folder
    size: int = -1
    # The file's key, for parts sealed on arrival.
    key: bytes | None = None
    # A case file whose start showed it is no bundle; nothing of it was written.
    not_bundle: bool = False


@dataclass
class Uploads:
    """The file parts of one request, staged in one folder."""

    mode: str
    staging: storage.Staging
    max_files: int
    # The field names whose file parts are stored; a part under any other is never written.
    fields: frozenset[str]
    parts: list[Part] = field(default_factory=list)
    # File parts beyond `max_files`, counted and dropped so the view can name the limit.
    overflow: int = 0
    # File parts under a field the view did not name, counted and dropped unwritten.
    strays: int = 0
    committed: bool = False
    # Kept for the next try of a form that came back with a problem (see `kept`).
    keep: bool = False

    def new_stream(self, field_name: str, filename: str, content_type: str) -> Any:
        """Open the stream for the next file part."""
        if field_name not in self.fields:
            # No page asks for it: not one byte of it is written, sealed or not.
            self.strays += 1
            return Nowhere()
        if len(self.parts) >= self.max_files:
            self.overflow += 1
            return Nowhere()
        name = f"part-{len(self.parts)}"
        stream: SealingStream | RawStream
        out = self.staging.open(name)
        if self.mode == SEAL and field_name == CASE_FILE:
            stream = CaseFileStream(out, limit=_raw_limit(field_name))
        elif self.mode == SEAL:
            stream = SealingStream(out, crypto.new_file_key())
        else:
            stream = RawStream(out, limit=_raw_limit(field_name))
        self.parts.append(Part(field_name, filename, content_type, stream, name))
        return stream

    def finish(self) -> list[Part]:
        """Close every part; drop file inputs left empty. Safe to call twice."""
        kept = []
        for part in self.parts:
            if part.size < 0 and part.stream is not None:
                part.size = part.stream.finish()
                if isinstance(part.stream, SealingStream):
                    part.key = part.stream.key
                if isinstance(part.stream, CaseFileStream):
                    part.not_bundle = part.stream.not_bundle
            if part.filename == "" and part.size == 0:
                # A file input left empty is sent as a part with no file name and no content.
                self.staging.remove(part.name)
                continue
            kept.append(part)
        self.parts = kept
        return kept

    def discard(self) -> None:
        """Forget everything staged by this request."""
        for part in self.parts:
            if part.size < 0 and part.stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    part.stream.finish()
        self.staging.discard()


def _raw_limit(field_name: str) -> int:
    if field_name == intake.MANIFEST_FIELD:
        return envelope.MAX_MANIFEST_BYTES + crypto.SEAL_OVERHEAD
    # Blobs and sealed case files are limited by the request's own size limit.
    return 1 << 62


class _PartParser(MultiPartParser):
    """Werkzeug's multipart parser, with each file part routed by its field name."""

    def __init__(self, uploads: Uploads | _DiscardingUploads | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._uploads = uploads

    def start_file_streaming(self, event: File, total_content_length: int | None) -> Any:
        """Open the staging stream for a file part, or refuse it."""
        if self._uploads is None:
            raise UploadRefused("This page accepts no files.")
        return self._uploads.new_stream(
            event.name, event.filename or "", event.headers.get("content-type") or ""
        )

    def parse(
        self, stream: IO[bytes], boundary: bytes, content_length: int | None
    ) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
        """Werkzeug's parsing loop, with one budget for all text parts together.

        Werkzeug limits each text part to the form-memory size, and the number of parts; so a
        body of hundreds of text parts could still hold hundreds of megabytes in memory. Here
        the text of the whole form is held to the form-memory size; files stream as before.
        """
        budget = self.max_form_memory_size
        decoder = MultipartDecoder(
            boundary, max_form_memory_size=budget, max_parts=self.max_form_parts
        )
        fields: list[tuple[str, str]] = []
        files: list[tuple[str, FileStorage]] = []
        text_bytes = 0
        part: Field | File | None = None
        pieces: list[bytes] = []
        stream_out: Any = None
        while True:
            data = stream.read(self.buffer_size)
            decoder.receive_data(data or None)
            event = decoder.next_event()
            while not isinstance(event, Epilogue | NeedData):
                if isinstance(event, Field):
                    part, pieces, stream_out = event, [], None
                elif isinstance(event, File):
                    part, stream_out = event, self.start_file_streaming(event, content_length)
                elif isinstance(event, Data) and part is not None:
                    if stream_out is None:
                        text_bytes += len(event.data)
                        if budget is not None and text_bytes > budget:
                            raise FormTooLarge(budget)
                        pieces.append(event.data)
                    else:
                        stream_out.write(event.data)
                    if not event.more_data:
                        if stream_out is None:
                            charset = self.get_part_charset(part.headers)
                            fields.append((part.name, b"".join(pieces).decode(charset, "replace")))
                        else:
                            stream_out.seek(0)
                            storage_ = FileStorage(
                                stream_out, getattr(part, "filename", None), part.name,
                                headers=part.headers,
                            )  # fmt: skip
                            files.append((part.name, storage_))
                        part = None
                event = decoder.next_event()
            if isinstance(event, Epilogue) or not data:
                break
        return self.cls(fields), self.cls(files)


class _FormParser(FormDataParser):
    def __init__(self, uploads: Uploads | _DiscardingUploads | None, **kwargs: Any) -> None:
        # Werkzeug's parser turns a malformed body into an empty form by default; the view
        # would then take half-written parts for a form with problems and keep them.
        super().__init__(silent=False, **kwargs)
        self._uploads = uploads

    def parse(
        self,
        stream: Any,
        mimetype: str,
        content_length: int | None,
        options: dict[str, str] | None = None,
    ) -> Any:
        """Parse the body; a malformed one is a 400, whose handler removes what was staged.

        Only multipart bodies are parsed as they stream; any other is read whole into memory,
        so one larger than the form-memory limit is refused before a byte of it is read.
        """
        limit = self.max_form_memory_size
        if (
            mimetype != "multipart/form-data"
            and limit is not None
            and content_length is not None
            and content_length > limit
        ):
            raise FormTooLarge(limit)
        try:
            return super().parse(stream, mimetype, content_length, options)
        except ValueError as exc:
            raise MalformedBody("The form could not be read.") from exc

    def _parse_urlencoded(
        self, stream: Any, mimetype: str, content_length: int | None, options: dict[str, str]
    ) -> Any:
        limit = self.max_form_memory_size
        if limit is not None:
            # A body sent without its length (chunked) is read no further than the limit.
            data = stream.read(limit + 1)
            if len(data) > limit:
                raise FormTooLarge(limit)
            stream = io.BytesIO(data)
        return super()._parse_urlencoded(stream, mimetype, content_length, options)

    def _parse_multipart(
        self, stream: Any, mimetype: str, content_length: int | None, options: dict[str, str]
    ) -> Any:
        parser = _PartParser(
            self._uploads,
            stream_factory=self.stream_factory,
            max_form_memory_size=self.max_form_memory_size,
            max_form_parts=self.max_form_parts,
            cls=self.cls,
        )
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files


class PortalRequest(Request):
    """A request whose file parts go where the view said, sealed or as they are."""

    def make_form_data_parser(self) -> FormDataParser:
        """A parser that stages file parts through this request's declared uploads."""
        uploads = self.environ.get(ENVIRON_KEY)
        return _FormParser(
            uploads if isinstance(uploads, Uploads | _DiscardingUploads) else None,
            stream_factory=self._get_file_stream,
            max_form_memory_size=self.max_form_memory_size,
            max_content_length=self.max_content_length,
            max_form_parts=self.max_form_parts,
            cls=self.parameter_storage_class,
        )


def expect_uploads(
    store: storage.BlobStore, mode: str, max_files: int, fields: frozenset[str]
) -> Uploads:
    """Declare that this request's file parts are staged, sealed (SEAL) or as they are (RAW).

    Only file parts under the names in `fields` are stored; others go by unwritten, counted
    in `strays`.
    """
    uploads = Uploads(mode, store.stage(), max_files, fields)
    request.environ[ENVIRON_KEY] = uploads
    return uploads


def current_uploads() -> Uploads | None:
    """The uploads declared by the current request, if any."""
    uploads = request.environ.get(ENVIRON_KEY)
    return uploads if isinstance(uploads, Uploads) else None


def release() -> None:
    """At the end of a request: remove what it staged unless it was stored or kept."""
    staged = current_uploads()
    if staged is not None and not staged.committed and not staged.keep:
        staged.discard()


def expect_discard() -> None:
    """Read the text of this request's form and let its files go by unstored."""
    request.environ[ENVIRON_KEY] = _DiscardingUploads()


class _DiscardingUploads:
    def new_stream(self, field_name: str, filename: str, content_type: str) -> Any:
        return Nowhere()
