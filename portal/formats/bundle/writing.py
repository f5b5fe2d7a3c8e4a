"""Writing a bundle: as a stream of tar blocks, of a length known in advance, or to a file.

A bundle of any size is never held in memory: each member is read a megabyte at a time as its
blocks are wanted. A bundle file (a relay's sealed case, a reply) appears under its final name
only once it is complete and has been read back.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from portal.formats import durable, envelope
from portal.formats.bundle.layout import (
    BLOCK,
    COPY_BLOCK,
    INDEX_NAME,
    STORED_MANIFEST,
    BundleError,
    Entry,
    blob_name,
    index_bytes,
    manifest_name,
    stored_blob,
)
from portal.formats.bundle.reading import Reader


class WriteError(Exception):
    """A bundle file was not written as asked, and nothing was kept; the message says why."""


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


def length(entries: list[Entry], members: Iterable[Member]) -> int:
    """The exact number of bytes `stream(entries, members)` yields, without reading a member.

    Each member takes a one-block USTAR header and its bytes padded to whole blocks, the index
    too; two zero blocks end the tar. The staff site sends it as Content-Length, so that a
    browser knows when a download stopped short.
    """
    total = BLOCK + _padded(len(index_bytes(entries)))
    for member in members:
        total += BLOCK + _padded(member.size)
    return total + 2 * BLOCK


def _padded(size: int) -> int:
    return size + (-size % BLOCK)


def members_of(entry: Entry, directory: Path) -> list[Member]:
    """The members of a submission whose sealed files (manifest.sealed, N.blob) are in a folder."""
    paths = [(manifest_name(entry.id), directory / STORED_MANIFEST)]
    paths += [(blob_name(entry.id, i), directory / stored_blob(i)) for i in range(entry.files)]
    return [Member(name, path.stat().st_size, _opener(path)) for name, path in paths]


def _opener(path: Path) -> Callable[[], BinaryIO]:
    return lambda: path.open("rb")


def bytes_member(name: str, data: bytes) -> Member:
    """A bundle member held in memory (a sealed manifest)."""
    return Member(name, len(data), lambda: cast(BinaryIO, io.BytesIO(data)))


def write(out: BinaryIO, entries: list[Entry], members: Iterable[Member]) -> None:
    """Write a whole bundle to a binary file."""
    for block in stream(entries, members):
        out.write(block)


def write_file(out: Path, entries: list[Entry], members: Sequence[Member]) -> None:
    """Write a bundle under a temporary name, read it back, then give it its final name."""
    if out.exists() or out.is_symlink():
        raise WriteError(f"{out} already exists; nothing was overwritten.")
    if not out.parent.is_dir():
        raise WriteError(f"The folder {out.parent} does not exist.")
    try:
        # Read back before it gets its name; a relay's USB stick may not sync folders.
        with durable.replacing(
            out,
            mode=0o644,
            overwrite=False,
            check=lambda written: _check_written(written, entries, members),
            folder_sync_required=False,
        ) as handle:
            write(handle, entries, members)
    except FileExistsError as exc:
        raise WriteError(f"{out} appeared while sealing; nothing was overwritten.") from exc


def _check_written(path: Path, entries: list[Entry], members: Sequence[Member]) -> None:
    try:
        with Reader(path) as reader:
            reader.check_structure()
            if reader.entries != entries:
                raise WriteError(f"{path} was not written as intended; nothing was kept.")
            for member in members:
                if reader.size(member.name) != member.size:
                    raise WriteError(f"{member.name} was not written whole; nothing was kept.")
    except envelope.EnvelopeError as exc:
        raise WriteError(f"The bundle written does not read back: {exc}") from exc
