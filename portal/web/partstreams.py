"""The streams werkzeug writes a request's file parts into, one per part (see `uploads`).

A part to seal on arrival is encrypted as it comes (`SealingStream`), an already sealed piece is
written as it is within its size limit (`RawStream`), a relay's case file only once its first
block shows it is a bundle (`CaseFileStream`), and a part nobody asked for nowhere (`Nowhere`).
"""

from __future__ import annotations

from typing import BinaryIO

from werkzeug.exceptions import RequestEntityTooLarge

from portal.formats import bundle, crypto


class SealingStream:
    """What werkzeug writes an attached file into: encrypted as it arrives."""

    def __init__(self, out: BinaryIO, key: bytes) -> None:
        """Seal into `out` under `key`."""
        self._out = out
        self._writer = crypto.BlobWriter(out, key)
        self.key = key

    def write(self, data: bytes) -> int:
        """Encrypt and write more of the file."""
        return self._writer.write(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        """Werkzeug rewinds a finished part; a sealing stream has nothing to rewind."""
        return 0

    def finish(self) -> int:
        """Write the last chunk, close the file; return the plaintext size."""
        try:
            return self._writer.close()
        finally:
            # Closed even when the disk is full, so that the staging folder can go at once.
            self._out.close()


class Nowhere:
    """Swallows a file part: for a request whose text is wanted but whose files are not."""

    def write(self, data: bytes) -> int:
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0


class RawStream:
    """What werkzeug writes an already sealed piece into, as it is, within a size limit."""

    def __init__(self, out: BinaryIO, limit: int) -> None:
        """Write into `out`, refusing more than `limit` bytes."""
        self._out = out
        self._limit = limit
        self.size = 0

    def write(self, data: bytes) -> int:
        """Write more of the piece."""
        self.size += len(data)
        if self.size > self._limit:
            raise RequestEntityTooLarge()
        return self._out.write(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        """Nothing to rewind: the bytes are on disk."""
        return 0

    def finish(self) -> int:
        """Close the file; return its size."""
        self._out.close()
        return self.size


class CaseFileStream(RawStream):
    """A relay's sealed case file, written as it is once its first block shows it is a bundle.

    A bundle made by `portal seal` begins with the tar header of its index, which holds no
    content. Anything else (a report chosen here by mistake, say) is counted and dropped, so
    that no byte of it reaches the disk.
    """

    def __init__(self, out: BinaryIO, limit: int) -> None:
        """Write into `out` once the start is checked, refusing more than `limit` bytes."""
        super().__init__(out, limit)
        self._head = bytearray()
        self._checked = False
        self.not_bundle = False

    def write(self, data: bytes) -> int:
        """Hold the first block until it can be checked; then write the piece as it is."""
        if self._checked:
            super().write(data)
        elif self.not_bundle:
            self.size += len(data)
        else:
            self._head += data
            if len(self._head) >= bundle.BLOCK:
                held, self._head = bytes(self._head), bytearray()
                if bundle.starts_bundle(held[: bundle.BLOCK]):
                    self._checked = True
                    super().write(held)
                else:
                    self.not_bundle = True
                    self.size += len(held)
        return len(data)

    def finish(self) -> int:
        """Close the file; a piece shorter than one block is no bundle either."""
        if self._head:
            self.not_bundle = True
            self.size += len(self._head)
            self._head = bytearray()
        return super().finish()
