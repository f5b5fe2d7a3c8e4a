"""Writing one decrypted attachment: reserved first, written by a second thread, made durable.

The cipher and the disk work at once (a writer thread), the file's space is reserved before the
first byte (a full disk shows at once), and the kernel is asked to write back as it goes so the
final sync is short.
"""

from __future__ import annotations

import errno
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, BinaryIO, cast

from portal.formats import crypto, envelope, sizes

WRITE_BATCH = 16  # chunks per write: a mebibyte
WRITE_QUEUE = 8  # batches in flight between the cipher and the disk
WRITEBACK_WINDOW = 64 * 1024 * 1024

Progress = Callable[[int], None]


class OpenError(Exception):
    """One submission cannot be opened; the message is one line for the team."""


def write_blob(
    source: IO[bytes], item: envelope.FileEntry, partial: Path, progress: Progress | None
) -> None:
    """Decrypt one blob into `partial`, authenticated chunk by chunk, and make it durable."""
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    writer = _BackgroundWriter(fd)
    try:
        _reserve(fd, item.size)
        batch: list[bytes] = []
        for chunk in crypto.decrypt_chunks(cast(BinaryIO, source), item.key, item.size):
            batch.append(chunk)
            if len(batch) == WRITE_BATCH:
                writer.write(batch)
                batch = []
            if progress is not None:
                progress(len(chunk))
        writer.write(batch)
        writer.close()
        # Durable before it gets its real name: a power cut must not leave a good-looking file.
        os.fsync(fd)
    finally:
        writer.close()
        os.close(fd)


class _BackgroundWriter:
    """Writes decrypted chunks from a second thread, so the disk works while AES-GCM does.

    Both the cipher (libsodium through cffi) and `os.write` release the GIL, so on two cores
    authenticating and writing overlap. The queue is short: memory stays a few megabytes.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=WRITE_QUEUE)
        self._error: OSError | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="attachment-writer", daemon=True)
        self._thread.start()

    def write(self, chunks: list[bytes]) -> None:
        """Queue chunks for writing; raise the writer's error, if it met one."""
        if self._error is not None:
            raise self._error
        if chunks:
            self._queue.put(chunks)

    def close(self) -> None:
        """Wait for everything queued to be written; raise the writer's error, if any."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        written = announced = 0
        while (chunks := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain, so the producer never blocks on a full queue
            try:
                written += _write_all(self._fd, chunks)
                if written - announced >= WRITEBACK_WINDOW:
                    _start_writeback(self._fd, announced, written - announced)
                    announced = written
            except OSError as exc:
                self._error = exc


def _write_all(fd: int, chunks: list[bytes]) -> int:
    total = sum(len(chunk) for chunk in chunks)
    done = os.writev(fd, chunks)
    if done < total:  # a short write (a signal, a full disk): finish the rest plainly
        rest = memoryview(b"".join(chunks))[done:]
        while rest:
            rest = rest[os.write(fd, rest) :]
    return total


def _reserve(fd: int, size: int) -> None:
    """Allocate the whole file first: a full disk shows at once, and writing is much faster."""
    if size == 0 or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OpenError(
                f"the disk has no room for an attachment of {sizes.human_size(size, exact=True)}"
            ) from exc
        # Some file systems cannot allocate ahead; writing still works there.


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel write what is done while the rest is decrypted, so the final sync is short.

    It also drops the written plaintext from the page cache, where it has no reason to stay.
    """
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
