"""Bundle v1: the uncompressed tar that carries sealed submissions between machines.

`portal-bundle.json` lists the submissions; each submission ID has `ID/manifest.sealed` and
`ID/files/0.blob`, `ID/files/1.blob`, ... . Bundles are written as a stream of tar blocks so
that a bundle of any size is never held in memory, and read member by member with every name
checked against that layout: a name from a bundle is never used as a path. A reader takes plain
files only (folders are passed over; pax records that set no size are allowed), and their sizes
must fit in the bytes of the tar (see `tarmembers`); the JSON of the index may nest at most
`envelope.MAX_JSON_DEPTH` levels.

An index entry may carry optional fields beyond `id`, `case`, `kind`, `received_day` and
`files`: `recipient` ("submitter" or "team", on replies), `reply_public_key` (base64 of the
case's 32-byte reply key, as the server holds it) and `receipt_lookup` (base64 of a 32-byte
receipt lookup value, in a relay's case file whose receipt the relay made: see `receipts`).
Readers ignore fields they do not know, so older readers open newer bundles; the index is
written by whoever made the bundle and authenticates nothing.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from portal.formats import crypto, envelope, tarmembers

FORMAT = "portal-bundle"
VERSION = 1
INDEX_NAME = "portal-bundle.json"
BLOCK = tarfile.BLOCKSIZE
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MEMBER_PATTERN = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9_-]{0,63})/(manifest\.sealed|files/(\d{1,3})\.blob)$"
)
MAX_INDEX_BYTES = 16 * 1024 * 1024
COPY_BLOCK = 1024 * 1024


class BundleError(envelope.EnvelopeError):
    """A bundle breaks the format; the message says how."""


@dataclass(frozen=True)
class Entry:
    """One submission as the bundle index lists it."""

    id: str
    case: str
    kind: str
    received_day: str
    files: int
    # Replies carry two sealed copies: one to the submitter's reply key, one to the team key.
    recipient: str | None = None
    # The case's reply public key (base64) as the server holds it. Not authenticated: the
    # offline machine prefers the copy sealed inside the manifest (see `replykeys`).
    reply_public_key: str | None = None
    # In a relay's case file whose receipt the relay made: the receipt's lookup value (base64),
    # from which the site opens the case without ever seeing the receipt.
    receipt_lookup: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The index's object for this submission."""
        document: dict[str, Any] = {
            "id": self.id,
            "case": self.case,
            "kind": self.kind,
            "received_day": self.received_day,
            "files": self.files,
        }
        if self.recipient is not None:
            document["recipient"] = self.recipient
        if self.reply_public_key is not None:
            document["reply_public_key"] = self.reply_public_key
        if self.receipt_lookup is not None:
            document["receipt_lookup"] = self.receipt_lookup
        return document


def manifest_name(entry_id: str) -> str:
    """The tar member name of a submission's sealed manifest."""
    return f"{entry_id}/manifest.sealed"


def blob_name(entry_id: str, index: int) -> str:
    """The tar member name of a submission's blob `index`."""
    return f"{entry_id}/files/{index}.blob"


def index_bytes(entries: Iterable[Entry]) -> bytes:
    """The JSON text of the bundle index."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "submissions": [entry.to_json() for entry in entries],
    }
    return json.dumps(document, indent=1).encode("utf-8") + b"\n"


def parse_index(data: bytes) -> list[Entry]:
    """Parse and check a bundle index."""
    try:
        document = envelope.load_json(data)
    except ValueError as exc:
        raise BundleError(f"The bundle's index cannot be read as UTF-8 JSON: {exc}.") from exc
    if (
        not isinstance(document, dict)
        or document.get("format") != FORMAT
        or document.get("version") != VERSION
    ):
        raise BundleError("This is not a portal bundle of version 1.")
    raw = document.get("submissions")
    if not isinstance(raw, list):
        raise BundleError("The bundle's index lists no submissions.")
    entries, seen = [], set()
    for item in raw:
        entry = _check_entry(item)
        if entry.id in seen:
            raise BundleError(f"The bundle lists submission {entry.id} twice.")
        seen.add(entry.id)
        entries.append(entry)
    return entries


def _check_entry(item: object) -> Entry:
    if not isinstance(item, dict):
        raise BundleError("A submission in the bundle's index is malformed.")
    entry_id, case, kind = item.get("id"), item.get("case"), item.get("kind")
    day, files, recipient = item.get("received_day"), item.get("files"), item.get("recipient")
    if not isinstance(entry_id, str) or not ID_PATTERN.match(entry_id):
        raise BundleError(f"A submission id in the bundle is malformed: {entry_id!r}.")
    if not isinstance(case, str) or not ID_PATTERN.match(case):
        raise BundleError(f"Submission {entry_id} has a malformed case id.")
    if kind not in envelope.KINDS:
        raise BundleError(f"Submission {entry_id} has an unknown kind {kind!r}.")
    if not isinstance(day, str) or not DAY_PATTERN.match(day):
        raise BundleError(f"Submission {entry_id} has a malformed day.")
    if (
        not isinstance(files, int)
        or isinstance(files, bool)
        or not 0 <= files <= envelope.MAX_FILES
    ):
        raise BundleError(f"Submission {entry_id} has a malformed file count.")
    if recipient not in (None, "submitter", "team"):
        raise BundleError(f"Submission {entry_id} has an unknown recipient.")
    reply_key, lookup = item.get("reply_public_key"), item.get("receipt_lookup")
    for value, length, what in ((reply_key, crypto.KEY_BYTES, "reply key"), (lookup, 32, "lookup")):
        if value is None:
            continue
        try:
            crypto.b64decode(value if isinstance(value, str) else "?", length)
        except crypto.CryptoError as exc:
            raise BundleError(f"Submission {entry_id} has a malformed {what}.") from exc
    return Entry(
        entry_id,
        case,
        str(kind),
        day,
        files,
        recipient,
        None if reply_key is None else str(reply_key),
        None if lookup is None else str(lookup),
    )


# ---------------------------------------------------------------------------------------------
# Writing


@dataclass(frozen=True)
class Member:
    """A file to put in a bundle: its name, its size and how to open it."""

    name: str
    size: int
    open: Callable[[], BinaryIO]


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    # Bundles carry no timestamps: the day of each submission is in the index, and a time of
    # day would say more about the submitter than the team needs.
    info.mtime = 0
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def stream(entries: list[Entry], members: Iterable[Member]) -> Iterator[bytes]:
    """Yield a bundle as tar blocks: the index, then every member, read a megabyte at a time.

    A member whose source holds fewer or more bytes than announced raises BundleError, so a
    bundle is never silently short.
    """
    index = index_bytes(entries)
    yield _header(INDEX_NAME, len(index)) + index + b"\0" * (-len(index) % BLOCK)
    for member in members:
        yield _header(member.name, member.size)
        left = member.size
        with member.open() as source:
            while left > 0:
                data = source.read(min(COPY_BLOCK, left))
                if not data:
                    raise BundleError(f"{member.name} is shorter than its recorded size.")
                left -= len(data)
                yield data
        yield b"\0" * (-member.size % BLOCK)
    yield b"\0" * (2 * BLOCK)


def members_of(entry: Entry, directory: Path) -> list[Member]:
    """The members of a submission whose sealed files (manifest.sealed, N.blob) are in a folder."""
    paths = [(manifest_name(entry.id), directory / "manifest.sealed")]
    paths += [(blob_name(entry.id, i), directory / f"{i}.blob") for i in range(entry.files)]
    return [Member(name, path.stat().st_size, _opener(path)) for name, path in paths]


def _opener(path: Path) -> Callable[[], BinaryIO]:
    return lambda: path.open("rb")


def write(out: BinaryIO, entries: list[Entry], members: Iterable[Member]) -> None:
    """Write a whole bundle to a binary file."""
    for block in stream(entries, members):
        out.write(block)


# ---------------------------------------------------------------------------------------------
# Reading


class Reader:
    """Reads a bundle from a seekable file, checking its layout before anything is opened."""

    def __init__(self, source: Path | BinaryIO) -> None:
        """Open and check the bundle; BundleError when it is malformed."""
        try:
            # The reader outlives this call and closes the tar itself (close, __exit__).
            if isinstance(source, Path):
                self._tar = tarfile.open(source, mode="r:", tarinfo=tarmembers.PlainMember)  # noqa: SIM115
            else:
                self._tar = tarfile.open(  # noqa: SIM115
                    fileobj=source, mode="r:", tarinfo=tarmembers.PlainMember
                )
        except tarmembers.Refused as exc:
            raise BundleError(str(exc)) from exc
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BundleError(f"This is not a readable bundle (tar): {exc}.") from exc
        # A bundle on disk is read with pread at each member's offset, skipping tarfile's
        # buffering layers: decrypting a large attachment is about a third faster.
        self._fd: int | None = None
        if isinstance(source, Path) and hasattr(os, "pread"):
            self._fd = cast(BinaryIO, self._tar.fileobj).fileno()
        try:
            self._check()
        except BaseException:
            # A refused bundle must not keep its file open: `decrypt` reads many in one run.
            self._tar.close()
            raise

    def _check(self) -> None:
        try:
            infos = self._tar.getmembers()
        except tarmembers.Refused as exc:
            raise BundleError(str(exc)) from exc
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BundleError(f"This is not a readable bundle (tar): {exc}.") from exc
        self._members: dict[str, tarfile.TarInfo] = {}
        length = self._length()
        held = 0
        for info in infos:
            if info.isdir() and ID_PATTERN.match(info.name.rstrip("/").split("/")[0]):
                continue
            if info.type not in tarmembers.FILE_TYPES or info.issparse():
                raise BundleError(f"The bundle holds {info.name!r}, which is not a plain file.")
            # What the members say they hold must be in the file: a header cannot make a
            # small upload stand for a large one.
            held += info.size
            if info.offset_data + info.size > length or held > length:
                raise BundleError(
                    f"The bundle is cut short or damaged: {info.name!r} says it holds "
                    f"{info.size} bytes, more than the bundle has left."
                )
            if info.name in self._members:
                raise BundleError(f"The bundle holds {info.name!r} twice.")
            if info.name != INDEX_NAME and not MEMBER_PATTERN.match(info.name):
                raise BundleError(f"The bundle holds an unexpected member {info.name!r}.")
            self._members[info.name] = info
        index = self._members.get(INDEX_NAME)
        if index is None:
            raise BundleError("The bundle has no portal-bundle.json.")
        if index.size > MAX_INDEX_BYTES:
            raise BundleError("The bundle's index is too large.")
        self.entries = parse_index(self._read_all(index))
        listed = {INDEX_NAME}
        for entry in self.entries:
            listed.add(manifest_name(entry.id))
            listed.update(blob_name(entry.id, i) for i in range(entry.files))
        extra = sorted(set(self._members) - listed)
        if extra:
            raise BundleError(f"The bundle holds {extra[0]!r}, which its index does not list.")

    def _length(self) -> int:
        """The bytes of the whole tar file."""
        source = cast(IO[bytes], self._tar.fileobj)
        here = source.tell()
        length = source.seek(0, os.SEEK_END)
        source.seek(here)
        return length

    def _read_all(self, info: tarfile.TarInfo) -> bytes:
        handle = self._tar.extractfile(info)
        assert handle is not None
        return handle.read()

    def size(self, name: str) -> int:
        """The size of a member; BundleError when it is missing."""
        info = self._members.get(name)
        if info is None:
            raise BundleError(f"The bundle lacks {name}.")
        return info.size

    def open(self, name: str) -> IO[bytes]:
        """Open a member for reading as a stream."""
        self.size(name)
        info = self._members[name]
        if self._fd is not None and info.isreg() and not info.issparse():
            return cast(IO[bytes], _MemberReader(self._fd, info))
        handle = self._tar.extractfile(info)
        assert handle is not None
        return handle

    def read_manifest(self, entry: Entry) -> bytes:
        """The sealed manifest of a submission, after a length check."""
        name = manifest_name(entry.id)
        envelope.check_sealed_manifest_length(self.size(name))
        with self.open(name) as handle:
            return handle.read()

    def check_structure(self) -> None:
        """Check every manifest and blob length without opening anything sealed."""
        for entry in self.entries:
            envelope.check_sealed_manifest_length(self.size(manifest_name(entry.id)))
            for i in range(entry.files):
                envelope.check_blob_length(self.size(blob_name(entry.id, i)), i)

    def close(self) -> None:
        """Close the underlying tar."""
        self._tar.close()

    def __enter__(self) -> Reader:
        """Use as a context manager."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close on leaving the block."""
        self.close()


class _MemberReader(io.RawIOBase):
    """A plain member of a bundle file, read with pread from the tar's own file descriptor."""

    def __init__(self, fd: int, info: tarfile.TarInfo) -> None:
        super().__init__()
        self._fd = fd
        self._position = info.offset_data
        self._end = info.offset_data + info.size

    def readable(self) -> bool:
        """A member is only read."""
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes (all that is left when negative); tarfile's error if cut short."""
        left = self._end - self._position
        wanted = left if size is None or size < 0 else min(size, left)
        if wanted <= 0:
            return b""
        data = os.pread(self._fd, wanted, self._position)
        if not data:
            # As tarfile says it, so that callers catching tarfile.TarError see truncation.
            raise tarfile.ReadError("unexpected end of data")
        self._position += len(data)
        return data

    def readall(self) -> bytes:
        """Everything left of the member."""
        parts = []
        while data := self.read(COPY_BLOCK):
            parts.append(data)
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` with the next bytes."""
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


def read_bytes(data: bytes) -> Reader:
    """Open a bundle held in memory (small ones only, such as a reply)."""
    return Reader(io.BytesIO(data))
