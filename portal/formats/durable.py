"""Durable writes: what a caller is told was written survives a crash or a power cut.

The one way the portal makes a file durable, on the server as on the offline machine: write it
under a temporary name beside its final one, fsync it, rename it into place, and fsync the
folder so that the rename itself is on disk. A reader never sees a half-written file under the
final name, and a failure leaves nothing behind but what was there before.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


def sync_folder(folder: Path, *, required: bool = True) -> None:
    """Make the entries of `folder` (a rename into it, a new file) durable.

    With `required=False`, a file system that cannot sync a folder (a relay's FAT-formatted USB
    stick, say) is let be: the files themselves were synced.
    """
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        if required:
            raise
        return
    try:
        os.fsync(fd)
    except OSError:
        if required:
            raise
    finally:
        os.close(fd)


def temporary_beside(path: Path) -> Path:
    """A fresh, hidden name in the folder of `path`, for writing it before it is renamed."""
    return path.parent / f".{path.name}.{secrets.token_hex(4)}.partial"


@contextlib.contextmanager
def replacing(
    path: Path,
    *,
    mode: int = 0o600,
    overwrite: bool = True,
    check: Callable[[Path], None] | None = None,
    folder_sync_required: bool = True,
) -> Iterator[BinaryIO]:
    """Write `path` durably through the file this yields; it appears only once whole.

    `check`, when given, reads the synced temporary file back before the rename and raises to
    refuse it. With `overwrite=False`, a `path` that exists before the rename is left alone and
    FileExistsError raised. On any failure the temporary file is removed and `path` is as it was.
    """
    temporary = temporary_beside(path)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if check is not None:
            check(temporary)
        if not overwrite and (path.exists() or path.is_symlink()):
            raise FileExistsError(f"{path} appeared while it was being written")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    sync_folder(path.parent, required=folder_sync_required)


def write_bytes(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data`, durably (see `replacing`)."""
    with replacing(path, mode=mode) as handle:
        handle.write(data)
