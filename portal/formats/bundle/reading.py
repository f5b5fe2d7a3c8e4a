"""Reading a bundle: every name and size checked before any member is opened.

Every member's name must follow the layout and be listed in the index, and every size must fit
in the bytes of the tar (see `tarmembers`); members are then opened one at a time, as streams,
read with pread when the bundle is a file on disk.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from portal.formats import envelope, tarmembers
from portal.formats.bundle.layout import (
    COPY_BLOCK,
    ID_PATTERN,
    INDEX_NAME,
    MAX_INDEX_BYTES,
    MEMBER_PATTERN,
    BundleError,
    Entry,
    blob_name,
    manifest_name,
    parse_index,
)


def starts_bundle(block: bytes) -> bool:
    """Whether a first tar block is the header of a bundle's index: what a bundle begins with,
    so that a file that is plainly something else is told apart before it is all received."""
    try:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return info.name == INDEX_NAME and info.isreg()


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
