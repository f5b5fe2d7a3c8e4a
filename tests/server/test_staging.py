"""A staging folder is changed only through its own methods, and only ever inside itself: a
name that is not a plain file name is refused before anything on disk is touched."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from portal.formats import bundle
from portal.server import storage

BAD_NAMES = ["", ".", "..", "../outside", "a/b", "/etc/passwd", "part-0/"]


@pytest.fixture
def store(tmp_path: Path) -> storage.BlobStore:
    """An empty blob store."""
    return storage.BlobStore(tmp_path / "sealed")


@pytest.fixture
def staging(store: storage.BlobStore) -> storage.Staging:
    """A new staging folder holding one part."""
    staging = store.stage()
    staging.write("part-0", b"sealed bytes")
    return staging


def folder(store: storage.BlobStore, staging: storage.Staging) -> Path:
    """Where the staging folder is while it waits under `.incoming`."""
    return store.incoming / staging.name


def test_a_new_staging_folder_is_empty_and_named_by_a_fresh_id(
    store: storage.BlobStore,
) -> None:
    first, second = store.stage(), store.stage()
    assert first.names() == set() == second.names()
    assert first.name != second.name
    assert {p.name for p in store.incoming.iterdir()} == {first.name, second.name}


def test_rename_gives_a_part_its_name_in_the_submission(
    store: storage.BlobStore, staging: storage.Staging
) -> None:
    staging.rename("part-0", bundle.stored_blob(0))
    assert staging.names() == {"0.blob"}
    assert not (folder(store, staging) / "part-0").exists()
    assert (folder(store, staging) / "0.blob").read_bytes() == b"sealed bytes"


def test_rename_of_a_missing_part_fails_and_changes_nothing(
    store: storage.BlobStore, staging: storage.Staging
) -> None:
    with pytest.raises(FileNotFoundError):
        staging.rename("part-1", bundle.STORED_MANIFEST)
    assert staging.names() == {"part-0"}


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_rename_refuses_a_name_that_is_not_a_plain_file_name(
    store: storage.BlobStore, staging: storage.Staging, bad: str
) -> None:
    with pytest.raises(ValueError, match="not a plain file name"):
        staging.rename("part-0", bad)
    with pytest.raises(ValueError, match="not a plain file name"):
        staging.rename(bad, "0.blob")
    assert staging.names() == {"part-0"}
    assert (folder(store, staging) / "part-0").read_bytes() == b"sealed bytes"
    assert {p.name for p in store.incoming.iterdir()} == {staging.name}


def test_remove_takes_one_file_away_and_is_quiet_when_it_is_gone(
    store: storage.BlobStore, staging: storage.Staging
) -> None:
    staging.write("part-1", b"another")
    staging.remove("part-0")
    assert staging.names() == {"part-1"}
    assert not (folder(store, staging) / "part-0").exists()
    staging.remove("part-0")
    assert staging.names() == {"part-1"}


@pytest.mark.parametrize("bad", ["..", "../outside", "a/b", ""])
def test_remove_refuses_a_name_outside_the_folder(
    store: storage.BlobStore, staging: storage.Staging, bad: str
) -> None:
    outside = store.incoming / "outside"
    outside.write_bytes(b"not staged")
    with pytest.raises(ValueError, match="not a plain file name"):
        staging.remove(bad)
    assert outside.read_bytes() == b"not staged"
    assert staging.names() == {"part-0"}


def test_file_is_where_a_staged_file_can_be_read(
    store: storage.BlobStore, staging: storage.Staging
) -> None:
    path = staging.file("part-0")
    assert path.parent == folder(store, staging)
    assert path.read_bytes() == b"sealed bytes"
    assert not staging.file("part-9").exists()


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_file_open_and_write_refuse_a_name_that_is_not_a_plain_file_name(
    store: storage.BlobStore, staging: storage.Staging, bad: str
) -> None:
    with pytest.raises(ValueError, match="not a plain file name"):
        staging.file(bad)
    with pytest.raises(ValueError, match="not a plain file name"):
        staging.open(bad)
    with pytest.raises(ValueError, match="not a plain file name"):
        staging.write(bad, b"x")
    assert staging.names() == {"part-0"}
    assert {p.name for p in store.incoming.iterdir()} == {staging.name}


def test_adopt_moves_a_file_in(store: storage.BlobStore, staging: storage.Staging) -> None:
    source = store.kept / "kept-0"
    source.write_bytes(b"kept bytes")
    staging.adopt(source, "kept-0")
    assert not source.exists()
    assert staging.names() == {"part-0", "kept-0"}
    assert (folder(store, staging) / "kept-0").read_bytes() == b"kept bytes"


def test_adopt_of_a_file_that_is_gone_fails_and_stages_nothing(
    store: storage.BlobStore, staging: storage.Staging
) -> None:
    with pytest.raises(FileNotFoundError):
        staging.adopt(store.kept / "gone", "kept-0")
    assert staging.names() == {"part-0"}


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_adopt_refuses_a_name_that_is_not_a_plain_file_name(
    store: storage.BlobStore, staging: storage.Staging, bad: str
) -> None:
    source = store.kept / "kept-0"
    source.write_bytes(b"kept bytes")
    with pytest.raises(ValueError, match="not a plain file name"):
        staging.adopt(source, bad)
    assert source.read_bytes() == b"kept bytes"
    assert staging.names() == {"part-0"}


def test_move_to_carries_the_folder_and_goes_on_using_it_there(
    store: storage.BlobStore, staging: storage.Staging
) -> None:
    before = folder(store, staging)
    target = store.kept / ("tag" + staging.name)
    staging.move_to(target)
    assert not before.exists()
    assert list(store.incoming.iterdir()) == []
    assert staging.name == target.name
    assert staging.names() == {"part-0"}
    assert staging.file("part-0") == target / "part-0"
    staging.write("part-1", b"later")
    assert (target / "part-1").read_bytes() == b"later"
    assert staging.size() == len(b"sealed bytes") + len(b"later")
    staging.discard()
    assert not target.exists()


def test_commit_takes_the_folder_from_wherever_it_was_moved(
    store: storage.BlobStore, staging: storage.Staging
) -> None:
    staging.move_to(store.kept / staging.name)
    staging.rename("part-0", bundle.STORED_MANIFEST)
    assert store.commit(staging, "abc123", date(2026, 3, 4)) == len(b"sealed bytes")
    assert list(store.kept.iterdir()) == []
    assert {p.name for p in store.path("abc123").iterdir()} == {bundle.STORED_MANIFEST}
