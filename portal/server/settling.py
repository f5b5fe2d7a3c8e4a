"""Settling: stored submissions rewritten once their day is over, so the disk keeps no hour.

The store sets the times of every stored file and folder to midnight (UTC) of its day
(`storage.BlobStore.commit`), but a file system keeps two more times that no program can set:
the inode's change time (ctime) and, on ext4, XFS and Btrfs, its birth time. Both say, to the
second, when a report arrived. Once a submission's day is over, the daily `portal purge` copies
its folder into new inodes, reads the copy back, and swaps it into place with one atomic
`renameat2(RENAME_EXCHANGE)`; then it removes the old inodes. The new ones were made when the
purge ran, which says nothing of when the report came, so only the submissions of the last day
carry their hour on disk.

At every moment a complete folder is in place under the submission's id: the copy is written,
synced and checked in `sealed/.settling/` before the swap, and whatever a crash leaves there (a
copy, or the old folder) is removed by the next run. A deletion that meets a folder being
settled waits for that one folder (`storage.BlobStore.delete`); a folder being deleted is left
for the next day.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from portal.formats import days, durable
from portal.server import storage

log = logging.getLogger("portal")

DAY_SECONDS = 24 * 3600
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
# Errors after which no other folder would fare better this run: the system cannot swap
# folders, or the disk is full.
_STOP = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.ENOSPC, errno.EDQUOT, errno.EXDEV}
_CHUNK = 1 << 20


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """The C library's renameat2 (glibc 2.28 and later), or None."""
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function


def exchange(first: Path, second: Path) -> None:
    """Swap two paths of one file system in one step; OSError where the system cannot."""
    function = _renameat2()
    if function is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if function(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE):
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(second))


def day_end(stamp: float) -> float:
    """Midnight (UTC) after the day that holds `stamp`."""
    return days.midnight(datetime.fromtimestamp(stamp, UTC).date()) + DAY_SECONDS


def unsettled(folder: Path, now: float) -> bool:
    """Whether a stored folder's day is over while its inodes still date from within it."""
    info = folder.stat()
    end = day_end(info.st_mtime)
    if now < end:
        return False
    return info.st_ctime < end or any(item.stat().st_ctime < end for item in folder.iterdir())


def settle(store: storage.BlobStore, now: float | None = None) -> int:
    """Rewrite each stored submission whose day is over into new inodes; return how many.

    Another run settling at the same time makes this one do nothing. A folder that cannot be
    settled stays as it was; an error that would stop every folder (no `renameat2`, a file
    system that cannot swap, a full disk) ends the run with a warning in the log.
    """
    now = time.time() if now is None else now
    store.ensure()
    _owned_like(store.root, store.settling)
    settled = 0
    # Its own folder's lock: another run settling at the same time makes this one do nothing.
    with storage.folder_locked(store.settling, wait=False) as alone:
        if not alone:
            return 0
        _clear(store.settling)
        for submission_id in sorted(store.stored_ids()):
            folder = store.path(submission_id)
            try:
                if unsettled(folder, now) and _settle_one(store, folder):
                    settled += 1
            except FileNotFoundError:
                continue  # deleted meanwhile
            except OSError as exc:
                log.warning(
                    "settling a stored submission failed: %s",
                    errno.errorcode.get(exc.errno or 0, type(exc).__name__),
                )
                if exc.errno in _STOP:
                    break
    return settled


def _clear(folder: Path) -> None:
    """Remove what an interrupted run left: copies never swapped in, old folders swapped out."""
    for leftover in folder.iterdir():
        shutil.rmtree(leftover, ignore_errors=True)


def _settle_one(store: storage.BlobStore, folder: Path) -> bool:
    """Copy, check and swap one folder; False when it is busy or not a folder of plain files."""
    with storage.folder_locked(folder, wait=False) as locked:
        if not locked:
            return False  # being deleted: the next run, if it is still there
        items = sorted(folder.iterdir())
        if not all(item.is_file() and not item.is_symlink() for item in items):
            return False
        stamp = folder.stat().st_mtime
        copy = store.settling / storage.new_id()
        copy.mkdir(mode=0o700)
        try:
            for item in items:
                _copy_checked(item, copy / item.name)
                _owned_like(item, copy / item.name)
                os.utime(copy / item.name, (stamp, stamp))
            _owned_like(folder, copy)
            durable.sync_folder(copy)
            os.utime(copy, (stamp, stamp))
            exchange(copy, folder)
        except BaseException:
            shutil.rmtree(copy, ignore_errors=True)
            raise
        # `copy` now names the old inodes; the new ones are in place.
        os.utime(folder, (stamp, stamp))
        durable.sync_folder(store.root)
        durable.sync_folder(store.settling)
        shutil.rmtree(copy, ignore_errors=True)
    return True


def _owned_like(source: Path, target: Path) -> None:
    """Give the copy its original's owner: a purge run by hand as root must not leave files
    the service's own user can no longer read."""
    info = source.stat()
    if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
        os.chown(target, info.st_uid, info.st_gid)


def _copy_checked(source: Path, target: Path) -> None:
    """Copy a file into a new one, synced, and read the copy back before it is trusted."""
    written = hashlib.sha256()
    with (
        source.open("rb") as reading,
        open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as writing,
    ):
        while chunk := reading.read(_CHUNK):
            written.update(chunk)
            writing.write(chunk)
        writing.flush()
        os.fsync(writing.fileno())
    read_back = hashlib.sha256()
    with target.open("rb") as reading:
        while chunk := reading.read(_CHUNK):
            read_back.update(chunk)
    if read_back.digest() != written.digest():
        raise OSError(errno.EIO, "the copy does not read back as written", str(target))
