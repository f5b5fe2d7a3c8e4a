"""The blob store: sealed submissions as files, written durably before anyone is told.

Each submission is a folder `sealed/<id>/` holding `manifest.sealed` and `0.blob`, `1.blob`, ...
A request writes into a private staging folder under `sealed/.incoming/`, fsyncs every file,
renames the folder into place and fsyncs the parent, and only then does the caller commit the
database row. A crash at any moment leaves either a complete submission or leftovers that
`sweep()` removes at the next start. Attachments kept across a form that came back with a
problem wait in `sealed/.kept/` (see `portal.web.kept`), and resumable uploads of browser-sealed
envelopes in `sealed/.uploads/` (see `server.resumable`); staging, kept and upload folders count
towards the storage quota like stored submissions, an upload for all it was declared to hold.
File times are set to midnight UTC of the day, so the file system does not keep the time of day
a submission arrived; once the day is over, the daily purge rewrites each folder into new inodes
(`server.settling`), so that their change and birth times, which no program can set, do not keep
it either.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import BinaryIO, Protocol

from portal.formats import bundle, days, durable

INCOMING = ".incoming"
KEPT = ".kept"
UPLOADS = ".uploads"
SETTLING = ".settling"
# In an upload's folder: the bytes it was declared to hold, counted before they arrive.
RESERVED = "reserved"
SPECIAL = (INCOMING, KEPT, UPLOADS, SETTLING)


# A stored submission's id: 120 random bits, so that ids the site makes for years, across
# every path, never meet; a relay's own ids are shorter (see `bundle.new_id`).
ID_BYTES = 15


def new_id() -> str:
    """A random identifier for a stored submission or a staging folder (24 characters)."""
    return bundle.new_id(ID_BYTES)


# Attachments kept across a form that came back with a problem live this long in `.kept`
# (the life of the token that brings them back); the sweep removes them after it.
KEPT_MAX_AGE_SECONDS = 6 * 3600


class StagedFile(Protocol):
    """What the server needs to know of one file part the web layer staged."""

    field: str  # the form field it came in
    name: str  # its file name in the staging folder
    filename: str
    content_type: str
    size: int
    key: bytes | None  # the file's key, for parts sealed on arrival
    not_bundle: bool  # a case file whose start showed it is no bundle


class Staging:
    """A private folder where one request's sealed files are written before they count.

    Everything done to the folder goes through here: its files are named by the server, and a
    name that is not a plain file name (a "/", "." or "..") is refused rather than followed.
    """

    def __init__(self, path: Path) -> None:
        """Use `path`, which the store (or a resumable upload) has just made."""
        self._path = path

    @property
    def name(self) -> str:
        """The folder's own name (a fresh id, for a request's staging under `.incoming`)."""
        return self._path.name

    def _file(self, name: str) -> Path:
        if name in {"", ".", ".."} or "/" in name:
            raise ValueError(f"not a plain file name: {name!r}")
        return self._path / name

    def open(self, name: str) -> BinaryIO:
        """Create a new file in the staging folder for writing."""
        fd = os.open(self._file(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return os.fdopen(fd, "wb")

    def write(self, name: str, data: bytes) -> None:
        """Write a whole small file (a sealed manifest)."""
        with self.open(name) as out:
            out.write(data)

    def file(self, name: str) -> Path:
        """Where a staged file is, for reading it (a relay's case file, a reply file)."""
        return self._file(name)

    def names(self) -> set[str]:
        """The names of the files staged so far."""
        return {item.name for item in self._path.iterdir()}

    def rename(self, old: str, new: str) -> None:
        """Give a staged file its name in a submission (a part becomes a blob or the manifest)."""
        os.rename(self._file(old), self._file(new))

    def remove(self, name: str) -> None:
        """Remove one staged file, if it is there."""
        self._file(name).unlink(missing_ok=True)

    def adopt(self, source: Path, name: str) -> None:
        """Move the file at `source` (a kept attachment) in, under `name`; OSError if it is gone."""
        os.rename(source, self._file(name))

    def move_to(self, target: Path) -> None:
        """Move the whole folder to `target` (a kept folder), and go on using it there."""
        os.rename(self._path, target)
        self._path = target

    def keep_only(self, names: set[str]) -> None:
        """Remove every staged file not named; all the named ones must be there."""
        present = self.names()
        missing = names - present
        if missing:
            raise FileNotFoundError(f"staging lacks {sorted(missing)}")
        for name in present - names:
            (self._path / name).unlink()

    def size(self) -> int:
        """The bytes staged so far."""
        return folder_bytes(self._path)

    def discard(self) -> None:
        """Remove the staging folder and everything in it."""
        shutil.rmtree(self._path, ignore_errors=True)


class BlobStore:
    """Sealed submissions on disk."""

    def __init__(self, root: Path) -> None:
        """Keep sealed submissions under `root`."""
        self.root = root
        self.incoming = root / INCOMING
        self.kept = root / KEPT
        self.uploads = root / UPLOADS
        self.settling = root / SETTLING

    def ensure(self) -> None:
        """Create the folders, private to the service's user."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.incoming.mkdir(mode=0o700, exist_ok=True)
        self.kept.mkdir(mode=0o700, exist_ok=True)
        self.uploads.mkdir(mode=0o700, exist_ok=True)
        self.settling.mkdir(mode=0o700, exist_ok=True)

    def stage(self) -> Staging:
        """A new, empty staging folder."""
        self.ensure()
        path = self.incoming / new_id()
        path.mkdir(mode=0o700)
        return Staging(path)

    def path(self, submission_id: str) -> Path:
        """The folder of a stored submission."""
        if not submission_id.isalnum():
            raise ValueError("malformed submission id")
        return self.root / submission_id

    def commit(self, staging: Staging, submission_id: str, day: date) -> int:
        """Make staged files durable and move them into place; return their total size."""
        total = 0
        stamp = days.midnight(day)
        # The store alone moves the folder itself: into place, as one rename.
        source = staging._path
        for item in source.iterdir():
            with item.open("rb") as handle:
                os.fsync(handle.fileno())
            total += item.stat().st_size
            os.utime(item, (stamp, stamp))
        durable.sync_folder(source)
        target = self.path(submission_id)
        os.rename(source, target)
        try:
            os.utime(target, (stamp, stamp))
            durable.sync_folder(self.root)
            # Where the files came from: a request's staging, or a resumable upload's folder.
            durable.sync_folder(source.parent)
        except OSError:
            # Not durable, so not stored: no folder without its row is left behind.
            shutil.rmtree(target, ignore_errors=True)
            raise
        return total

    def open(self, submission_id: str, name: str) -> BinaryIO:
        """Open a stored file of a submission."""
        return (self.path(submission_id) / name).open("rb")

    def delete(self, submission_id: str) -> None:
        """Remove a stored submission's files (overwriting is pointless on modern disks;
        the contents are sealed, and without the offline key they are noise).

        A folder being rewritten by the daily settling is deleted once that is done.
        """
        folder = self.path(submission_id)
        with folder_locked(folder, wait=True):
            shutil.rmtree(folder, ignore_errors=True)

    def stored_ids(self) -> set[str]:
        """The ids of every submission folder on disk."""
        if not self.root.exists():
            return set()
        return {p.name for p in self.root.iterdir() if p.is_dir() and p.name not in SPECIAL}

    def staging_bytes(self) -> int:
        """The bytes in staging, kept and upload folders: on disk, though not yet stored.

        An unfinished upload counts for what it was declared to hold, or for what it holds if
        that is more: room promised to it must not be given to others meanwhile.
        """
        total = sum(folder_bytes(folder) for folder in (self.incoming, self.kept, self.settling))
        try:
            uploads = list(os.scandir(self.uploads))
        except FileNotFoundError:
            return total
        for entry in uploads:
            if entry.is_dir(follow_symlinks=False):
                total += max(folder_bytes(Path(entry.path)), _reserved(Path(entry.path)))
        return total

    def sweep(self, known_ids: set[str]) -> int:
        """Remove staging and kept leftovers and folders with no database row; return how many.

        Unfinished resumable uploads stay: their browsers resume them after a restart too, and
        the expiry sweep removes those left too long.
        """
        removed = 0
        for folder in (self.incoming, self.kept):
            if not folder.exists():
                continue
            for leftover in folder.iterdir():
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                    removed += 1
        for orphan in self.stored_ids() - known_ids:
            shutil.rmtree(self.root / orphan, ignore_errors=True)
            removed += 1
        return removed


@contextmanager
def folder_locked(folder: Path, *, wait: bool) -> Iterator[bool]:
    """Hold a stored folder against a deletion or a settling at the same time.

    Yields whether the lock was taken: without `wait`, False when someone else holds it; and
    False when there is no such folder. The lock is on the folder's inode, so a deletion that
    waited while the folder was swapped for its settled copy then deletes the copy, by name.
    """
    try:
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        yield False
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(handle)


def _reserved(folder: Path) -> int:
    try:
        return int((folder / RESERVED).read_text("ascii"))
    except (OSError, ValueError):
        return 0


def folder_bytes(path: Path) -> int:
    """The size of every file under `path` (0 when it is gone); files may vanish meanwhile."""
    total = 0
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                total += folder_bytes(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            continue
    return total
