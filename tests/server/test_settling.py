"""Settling: once a stored submission's day is over, the daily purge rewrites it into new
inodes, so that the change and birth times no program can set keep no hour of its arrival;
a complete folder is in place at every moment, and a deletion meanwhile still deletes."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from test_staff_helpers import make_submission, services_of

from portal.cli import main
from portal.formats import bundle
from portal.server import settling, storage

TODAY = datetime.now(UTC).date()
# A run of the purge on the next day: the day of today's submissions is over.
TOMORROW = datetime(TODAY.year, TODAY.month, TODAY.day, 1, 5, tzinfo=UTC).timestamp() + 86400


@pytest.fixture
def store(tmp_path: Path) -> storage.BlobStore:
    """A blob store holding one submission of today, of two files."""
    store = storage.BlobStore(tmp_path / "sealed")
    store.ensure()
    staging = store.stage()
    staging.write(bundle.STORED_MANIFEST, b"manifest " * 1000)
    staging.write(bundle.stored_blob(0), os.urandom(3 * 1024 * 1024 + 17))
    store.commit(staging, "abc123", TODAY)
    return store


def contents(folder: Path) -> dict[str, bytes]:
    return {item.name: item.read_bytes() for item in folder.iterdir()}


def inodes(folder: Path) -> set[int]:
    return {folder.stat().st_ino, *(item.stat().st_ino for item in folder.iterdir())}


def birth_time(path: Path) -> int:
    """The file system's birth time in seconds, or 0 where it keeps none (coreutils' statx)."""
    found = subprocess.run(["stat", "--format=%W", str(path)], capture_output=True, text=True)
    return int(found.stdout.strip() or 0) if found.returncode == 0 else 0


def test_a_day_that_is_over_is_rewritten_into_new_inodes_with_the_same_bytes_and_times(
    store: storage.BlobStore,
) -> None:
    folder = store.path("abc123")
    before, old_inodes = contents(folder), inodes(folder)
    midnight = datetime(TODAY.year, TODAY.month, TODAY.day, tzinfo=UTC).timestamp()

    assert settling.settle(store, now=TOMORROW) == 1

    # Times first: reading a file or listing a folder moves its access time.
    for path in (folder, *(folder / name for name in before)):
        info = path.stat()
        assert (info.st_mtime, info.st_atime) == (midnight, midnight)
        assert info.st_mode & 0o777 == (0o700 if path == folder else 0o600)
    assert contents(folder) == before
    assert inodes(folder).isdisjoint(old_inodes)
    assert store.stored_ids() == {"abc123"}
    assert list(store.settling.iterdir()) == []
    assert list(store.incoming.iterdir()) == []


def test_a_folder_needs_settling_when_its_inodes_date_from_within_its_day(
    store: storage.BlobStore,
) -> None:
    folder = store.path("abc123")
    # Today's folder: its day is not over yet, then it is.
    assert not settling.unsettled(folder, now=datetime.now(UTC).timestamp())
    assert settling.unsettled(folder, now=TOMORROW)
    # A folder of two days ago whose inodes were made today, as a settled one's are: done.
    two_days_ago = datetime.now(UTC).timestamp() - 2 * 86400
    for path in (*folder.iterdir(), folder):
        os.utime(path, (two_days_ago, two_days_ago))
    assert not settling.unsettled(folder, now=TOMORROW)


def test_what_settling_leaves_on_disk_says_no_time_from_within_the_day(
    store: storage.BlobStore,
) -> None:
    folder = store.path("abc123")
    assert settling.unsettled(folder, now=TOMORROW)
    # The files' change and birth times are of now; to see what a later day's purge leaves,
    # compare with the moment the rewrite ran, not with the (faked) next day.
    ran = datetime.now(UTC).timestamp()
    assert settling.settle(store, now=TOMORROW) == 1
    for path in (folder, *folder.iterdir()):
        assert path.stat().st_ctime >= int(ran)
        born = birth_time(path)
        assert born == 0 or born >= int(ran)


def test_the_day_still_running_is_not_settled(store: storage.BlobStore) -> None:
    folder = store.path("abc123")
    old = inodes(folder)
    assert not settling.unsettled(folder, now=datetime.now(UTC).timestamp())
    assert settling.settle(store) == 0
    assert inodes(folder) == old


def test_an_interrupted_run_leaves_the_folder_whole_and_the_next_run_clears_up(
    store: storage.BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = store.path("abc123")
    before, old = contents(folder), inodes(folder)

    def disk_full(source: Path, target: Path) -> None:
        target.write_bytes(source.read_bytes()[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(settling, "_copy_checked", disk_full)
    assert settling.settle(store, now=TOMORROW) == 0
    assert (contents(folder), inodes(folder)) == (before, old)
    assert list(store.settling.iterdir()) == []

    # A crash mid-copy leaves a partial copy behind; the next run removes it first.
    monkeypatch.undo()
    (store.settling / "leftover").mkdir()
    (store.settling / "leftover" / "0.blob").write_bytes(b"half")
    assert settling.settle(store, now=TOMORROW) == 1
    assert contents(folder) == before
    assert list(store.settling.iterdir()) == []


def test_a_copy_that_reads_back_wrong_is_never_swapped_in(
    store: storage.BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = store.path("abc123")
    before, old = contents(folder), inodes(folder)
    real_fsync = os.fsync

    def flip_a_bit(handle: int) -> None:
        real_fsync(handle)
        path = Path(os.readlink(f"/proc/self/fd/{handle}"))
        if path.parent.parent == store.settling and path.name == "0.blob":
            with path.open("r+b") as damaged:
                damaged.seek(1000)
                byte = damaged.read(1)
                damaged.seek(1000)
                damaged.write(bytes([byte[0] ^ 1]))

    monkeypatch.setattr(settling.os, "fsync", flip_a_bit)
    assert settling.settle(store, now=TOMORROW) == 0
    assert (contents(folder), inodes(folder)) == (before, old)
    assert list(store.settling.iterdir()) == []


def test_without_an_atomic_swap_nothing_is_moved(
    store: storage.BlobStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = store.path("abc123")
    before, old = contents(folder), inodes(folder)
    monkeypatch.setattr(settling, "_renameat2", lambda: None)
    assert settling.settle(store, now=TOMORROW) == 0
    assert (contents(folder), inodes(folder)) == (before, old)
    assert list(store.settling.iterdir()) == []
    assert "settling a stored submission failed: ENOSYS" in caplog.text


def test_exchange_swaps_two_folders_in_one_step(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one").write_text("a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two").write_text("b")
    settling.exchange(tmp_path / "a", tmp_path / "b")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["two"]
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["one"]
    with pytest.raises(FileNotFoundError):
        settling.exchange(tmp_path / "a", tmp_path / "gone")


def test_a_folder_being_deleted_is_left_for_the_next_day(store: storage.BlobStore) -> None:
    folder = store.path("abc123")
    old = inodes(folder)
    with storage.folder_locked(folder, wait=True) as locked:
        assert locked
        assert settling.settle(store, now=TOMORROW) == 0
    assert inodes(folder) == old


def test_a_deletion_during_a_settle_waits_and_then_deletes(
    store: storage.BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    copying, go_on = threading.Event(), threading.Event()
    real_copy = settling._copy_checked

    def slow_copy(source: Path, target: Path) -> None:
        copying.set()
        assert go_on.wait(10)
        real_copy(source, target)

    monkeypatch.setattr(settling, "_copy_checked", slow_copy)
    settled: list[int] = []
    settler = threading.Thread(target=lambda: settled.append(settling.settle(store, TOMORROW)))
    settler.start()
    assert copying.wait(10)
    deleter = threading.Thread(target=store.delete, args=("abc123",))
    deleter.start()
    deleter.join(0.3)
    assert deleter.is_alive()  # waiting for the settle of that folder
    go_on.set()
    settler.join(10)
    deleter.join(10)
    assert settled == [1]
    assert not store.path("abc123").exists()
    assert store.stored_ids() == set()
    assert list(store.settling.iterdir()) == []


def test_two_runs_at_once_settle_once(store: storage.BlobStore) -> None:
    with storage.folder_locked(store.settling, wait=False) as alone:
        assert alone
        assert settling.settle(store, now=TOMORROW) == 0
    assert settling.settle(store, now=TOMORROW) == 1


def test_the_daily_purge_settles_and_says_so(
    staff_app: Flask, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = services_of(staff_app)
    submission = make_submission(staff_app, files=2)
    folder = services.store.path(submission.id)
    before, old = contents(folder), inodes(folder)

    result = runner.invoke(main, ["purge"])
    assert result.exit_code == 0, result.output
    assert "Rewrote" not in result.output
    assert inodes(folder) == old

    monkeypatch.setattr(settling.time, "time", lambda: TOMORROW)
    result = runner.invoke(main, ["purge"])
    assert result.exit_code == 0, result.output
    assert "Rewrote 1 submission(s) of earlier days" in result.output
    assert contents(folder) == before
    assert inodes(folder).isdisjoint(old)
    # What the team downloads is the same bundle as before.
    assert services.store.stored_ids() == {submission.id}


def test_the_quota_counts_a_copy_in_progress(store: storage.BlobStore) -> None:
    empty = store.staging_bytes()
    shutil.copytree(store.path("abc123"), store.settling / "copy")
    assert store.staging_bytes() == empty + storage.folder_bytes(store.path("abc123"))


def test_settling_is_not_a_submission(store: storage.BlobStore) -> None:
    assert storage.SETTLING in storage.SPECIAL
    assert store.settling.is_dir()
    assert store.sweep({"abc123"}) == 0
    assert store.settling.is_dir()


def test_a_download_that_began_before_the_settle_reads_the_same_bundle(
    store: storage.BlobStore,
) -> None:
    # The staff download lists a submission's files, then opens each by name as the stream
    # reaches it: a settle in between swaps in files with the same bytes.
    entry = bundle.Entry("abc123", "case1", "report", TODAY.isoformat(), 1)
    before = b"".join(bundle.stream([entry], bundle.members_of(entry, store.path("abc123"))))
    members = bundle.members_of(entry, store.path("abc123"))
    blocks = bundle.stream([entry], members)
    first = next(blocks)
    assert settling.settle(store, now=TOMORROW) == 1
    assert first + b"".join(blocks) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another user")
def test_a_settle_run_as_root_leaves_the_files_to_the_services_user(
    store: storage.BlobStore,
) -> None:
    # The service's user, not root, must still read what `sudo portal purge` rewrote.
    folder = store.path("abc123")
    for path in (store.root, folder, *folder.iterdir()):
        os.chown(path, 12345, 23456)
    shutil.rmtree(store.settling)  # an installation from before settling: made by this run
    assert settling.settle(store, now=TOMORROW) == 1
    assert (store.settling.stat().st_uid, store.settling.stat().st_gid) == (12345, 23456)
    for path in (folder, *folder.iterdir()):
        info = path.stat()
        assert (info.st_uid, info.st_gid) == (12345, 23456), path
