"""Resumable uploads of envelopes sealed in the browser: parts of whole chunks, kept until whole.

A large attachment over Tor can take an hour, and a dropped connection must not cost the
person what was already sent. The browser first creates an upload (the sealed manifest, which
is small, and how many sealed chunks each blob will hold), then sends each blob in parts of
`PART_CHUNKS` whole 65,552-byte chunks, each part naming the byte offset it starts at. After a
failure it asks the server how far each blob has come and continues from there. The model is
the core of the tus protocol (creation; HEAD for `Upload-Offset`; PATCH with `Upload-Offset`,
409 when it is not where the upload stands), with several blobs under one handle.

What arrives is already sealed: the server checks lengths and offsets only. A part counts
whole or not at all (it is written to a file of its own, then appended under a lock), so a
cut-off part leaves nothing behind and is simply sent again. Every part but a blob's last is
exactly `PART_CHUNKS` chunks, the last is the rest, and a blob never grows past what was
declared; a part that would leave a gap or overlap what is there is refused.

An upload's folder under `sealed/.uploads/` is named by a digest of its handle
(`secrets.token_urlsafe(32)`, which only the page's script holds) and records the digest of
the browser session that made it, so that a handle carried elsewhere finds nothing. It holds
the declared chunk counts, the digest of a report's ticket (never the ticket: the receipt
is stored nowhere) or a follow-up's case, and the files under their final names. Its
declared size counts towards the storage quota from creation on. The folder's mtime, touched
by every part, is the only time kept; an upload untouched for `PORTAL_UPLOAD_EXPIRY_HOURS` is
removed by the staging sweep. Once committed, a small marker stays for as long, so that a
browser whose finishing request lost its answer can ask again and be told the same.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from portal.formats import bundle, crypto, envelope
from portal.formats.fields import N_
from portal.server import cases, storage

CHUNK = crypto.SEALED_CHUNK_SIZE
# About a megabyte: a cut costs at most this much sent again, and each request is short enough
# to finish between a slow connection's drops.
PART_CHUNKS = 16
PART_BYTES = PART_CHUNKS * CHUNK
PLAN = "upload.json"
FILES = "files"
DONE = ".done"
HANDLE_BYTES = 32
_HANDLE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# What a person whose script sends the upload may be told, in the page's language.
GONE = N_(
    "This upload is not known here: it was finished, it waited too long and was removed, or it "
    "was started in another browser session. Nothing of it is stored; please send again."
)
FINISHED = N_("This upload was already received and stored; nothing more can be added to it.")
TOO_LARGE = N_("The upload is larger than this site accepts.")
PART_BROKE_OFF = N_("The part broke off before its end; nothing of it was kept.")
BUSY = N_("Another part of this upload is being written; try again.")


class UploadError(cases.Refused):
    """A request about an upload that cannot be honoured.

    What the site's own script can meet is marked for translation (above); what only a client
    that breaks the protocol meets (a part out of line, a chunk count of nought) is said in
    English, for whoever writes that client.
    """


class NoSuchUpload(UploadError):
    """No upload with this handle in this browser session (gone, expired, or never made)."""

    status = 404


class AlreadyFinished(UploadError):
    """The upload was stored already; `ticket` is the digest of its report's ticket, if any."""

    status = 409

    def __init__(self, message: str, ticket: str | None) -> None:
        """Refuse, keeping what lets the same browser be told its receipt again."""
        super().__init__(message)
        self.ticket = ticket


class WrongOffset(UploadError):
    """The part does not start where the blob stands: `offset` is where it does."""

    status = 409

    def __init__(self, message: str, offset: int) -> None:
        """Refuse, saying where the blob stands."""
        super().__init__(message)
        self.offset = offset


class Busy(UploadError):
    """Another request of the same upload is being written; try again in a moment."""

    status = 409


@dataclass(frozen=True)
class Plan:
    """What an upload was declared to hold, and whom it belongs to."""

    kind: str
    binding: str
    chunks: tuple[int, ...]
    ticket: str | None
    case_id: str | None

    @property
    def declared_bytes(self) -> int:
        """The bytes the blobs will hold when whole."""
        return sum(self.chunks) * CHUNK


def new_handle() -> str:
    """A fresh, unguessable handle (256 bits from the OS random source)."""
    return secrets.token_urlsafe(HANDLE_BYTES)


def _name(handle: str) -> str:
    # A digest, so that the names on disk are no handles: a copy of the disk sends no part.
    return hashlib.blake2b(
        handle.encode("ascii"), digest_size=20, person=b"portal-upload"
    ).hexdigest()


def ticket_digest(ticket: str) -> str:
    """What an upload keeps of a report's ticket: enough to know it again, nothing in it."""
    return hashlib.blake2b(
        ticket.encode("utf-8"), digest_size=16, person=b"portal-upl-tkt"
    ).hexdigest()


def check_chunks(counts: list[int], manifest_bytes: int, max_bytes: int) -> tuple[int, ...]:
    """The declared chunk counts, if an honest sealer could declare them; UploadError if not."""
    if len(counts) > envelope.MAX_FILES:
        raise UploadError(cases.TOO_MANY_FILES, count=envelope.MAX_FILES)
    if any(count < 1 for count in counts):
        raise UploadError("Every sealed file holds at least one chunk.")
    if manifest_bytes + sum(counts) * CHUNK > max_bytes:
        raise UploadError(TOO_LARGE)
    return tuple(counts)


class Uploads:
    """The resumable uploads under one folder (`sealed/.uploads/`)."""

    def __init__(self, root: Path) -> None:
        """Keep uploads under `root`."""
        self.root = root

    def create(self, plan: Plan, manifest: bytes) -> str:
        """Start an upload holding `manifest`; return its handle."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle = new_handle()
        folder = self.root / _name(handle)
        (folder / FILES).mkdir(mode=0o700, parents=True)
        _write_new(folder / PLAN, json.dumps(plan.__dict__).encode("ascii"))
        _write_new(folder / FILES / bundle.STORED_MANIFEST, manifest)
        # Counted by the quota from now on (see `storage.BlobStore.staging_bytes`).
        _write_new(folder / storage.RESERVED, str(len(manifest) + plan.declared_bytes).encode())
        return handle

    def open(self, handle: str, binding: str) -> Upload:
        """The upload of `handle` made by this session; NoSuchUpload or AlreadyFinished if not."""
        if not 1 <= len(handle) <= 100 or not set(handle) <= _HANDLE_CHARS:
            raise NoSuchUpload(GONE)
        name = _name(handle)
        folder = self.root / name
        try:
            raw = (folder / PLAN).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise self._finished_or_gone(name, binding) from None
        fields = json.loads(raw)
        plan = Plan(
            fields["kind"],
            fields["binding"],
            tuple(fields["chunks"]),
            fields["ticket"],
            fields["case_id"],
        )
        # Another session's upload is answered as one that does not exist: a handle says
        # nothing unless it is used where it was made.
        if not _same(plan.binding, binding):
            raise NoSuchUpload(GONE)
        return Upload(folder, plan, self.root / (name + DONE))

    def _finished_or_gone(self, name: str, binding: str) -> UploadError:
        try:
            marker = (self.root / (name + DONE)).read_text("ascii").split(" ")
        except (OSError, UnicodeDecodeError):
            return NoSuchUpload(GONE)
        if len(marker) != 2 or not _same(marker[0], binding):
            return NoSuchUpload(GONE)
        return AlreadyFinished(FINISHED, marker[1] or None)

    def sweep(self, max_age_seconds: float, now: float | None = None) -> int:
        """Remove uploads and finished markers untouched for `max_age_seconds`; return how many."""
        limit = (time.time() if now is None else now) - max_age_seconds
        removed = 0
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root):
                try:
                    old = entry.stat(follow_symlinks=False).st_mtime < limit
                except FileNotFoundError:  # finished or removed meanwhile
                    continue
                if not old:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    Path(entry.path).unlink(missing_ok=True)
                removed += 1
        return removed


def _same(stored: str, binding: str) -> bool:
    return hmac.compare_digest(stored.encode("ascii"), binding.encode("ascii"))


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


class Upload:
    """One unfinished upload."""

    def __init__(self, folder: Path, plan: Plan, done: Path) -> None:
        """Use the upload in `folder`, declared by `plan`; `done` marks it finished."""
        self.folder = folder
        self.plan = plan
        self._done = done

    def _blob(self, index: int) -> Path:
        if not 0 <= index < len(self.plan.chunks):
            raise UploadError(f"This upload has no file {index}.")
        return self.folder / FILES / bundle.stored_blob(index)

    def offset(self, index: int) -> int:
        """The bytes of blob `index` received so far."""
        try:
            return self._blob(index).stat().st_size
        except FileNotFoundError:
            return 0

    def offsets(self) -> list[int]:
        """The bytes received so far of every blob."""
        return [self.offset(i) for i in range(len(self.plan.chunks))]

    def check_part(self, index: int, offset: int, length: int) -> None:
        """Refuse a part that is not whole chunks, or not the next part of its blob."""
        self._blob(index)
        total = self.plan.chunks[index] * CHUNK
        if length <= 0 or length % CHUNK or offset < 0 or offset % PART_BYTES:
            raise UploadError(
                f"A part is a whole number of {CHUNK}-byte sealed chunks, starting at a multiple "
                f"of {PART_BYTES} bytes."
            )
        if offset + length > total:
            raise UploadError(
                f"File {index} was declared to hold {total} bytes; this part passes that."
            )
        if length != min(PART_BYTES, total - offset):
            raise UploadError(
                f"Every part holds {PART_CHUNKS} chunks ({PART_BYTES} bytes), except the last of a "
                "file, which holds the rest."
            )
        current = self.offset(index)
        if offset != current:
            # A part sent twice, or one whose predecessor never arrived: say where to go on.
            raise WrongOffset(
                f"File {index} stands at {current} bytes; this part starts at {offset}.", current
            )

    def append(self, index: int, offset: int, length: int, body: IO[bytes]) -> int:
        """Receive a part: whole, at the blob's end, or not at all; return the blob's new length."""
        self.check_part(index, offset, length)
        part = self.folder / f".part-{secrets.token_hex(8)}"
        try:
            with part.open("xb") as out:
                left = length
                while left:
                    data = body.read(min(left, 256 * 1024))
                    if not data:
                        raise UploadError(PART_BROKE_OFF)
                    out.write(data)
                    left -= len(data)
            with self._locked():
                # Checked again now that the part is here: another request may have come first.
                self.check_part(index, offset, length)
                with part.open("rb") as src, self._blob(index).open("ab") as out:
                    shutil.copyfileobj(src, out, 1024 * 1024)
                # The folder's time is the upload's last sign of life, for the expiry sweep.
                os.utime(self.folder)
            return offset + length
        finally:
            part.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Never waits: a worker serving many clients must not block on one upload's lock.
        fd = os.open(self.folder / PLAN, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Busy(BUSY) from None
            yield
        finally:
            os.close(fd)

    def missing(self) -> list[int]:
        """The blobs not yet whole."""
        return [i for i, count in enumerate(self.plan.chunks) if self.offset(i) != count * CHUNK]

    @contextlib.contextmanager
    def finishing(self) -> Iterator[storage.Staging]:
        """The upload's files as a staging folder, once every blob is whole.

        Inside, the caller commits the files (which moves them away); on leaving without an
        error the upload becomes a finished marker, and on an error it stays to be tried again.
        """
        with self._locked():
            if missing := self.missing():
                raise UploadError(
                    f"File {missing[0]} has not fully arrived yet; the upload goes on from there."
                )
            staging = storage.Staging(self.folder / FILES)
            yield staging
            # The marker holds the session's digest and the ticket's, so that the same browser
            # asking again is told its upload was stored, and nobody else learns there was one.
            marker = f"{self.plan.binding} {self.plan.ticket or ''}"
            _write_new(self._done, marker.encode("ascii"))
        shutil.rmtree(self.folder, ignore_errors=True)
