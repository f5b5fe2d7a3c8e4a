"""Durable writes: a file appears whole under its name or not at all, and nothing is left over."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from portal.formats import durable


def leftovers(folder: Path) -> list[str]:
    """Temporary files left in `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_a_file_is_written_whole_with_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "pin.json"
    durable.write_bytes(path, b"first")
    durable.write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == []


def test_a_failure_while_writing_leaves_what_was_there(tmp_path: Path) -> None:
    path = tmp_path / "index.html"
    path.write_bytes(b"old")

    def write_half() -> None:
        with durable.replacing(path) as handle:
            handle.write(b"half of the new")
            raise RuntimeError("the disk went away")

    with pytest.raises(RuntimeError, match="went away"):
        write_half()
    assert path.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_a_file_that_fails_its_check_never_gets_its_name(tmp_path: Path) -> None:
    path = tmp_path / "case.sealed"

    def refuse(written: Path) -> None:
        assert written.read_bytes() == b"sealed"  # the check reads what was synced
        raise ValueError("does not read back")

    with pytest.raises(ValueError, match="read back"), durable.replacing(path, check=refuse) as f:
        f.write(b"sealed")
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_without_overwrite_an_existing_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "bundle.tar"
    path.write_bytes(b"the team's")
    with pytest.raises(FileExistsError), durable.replacing(path, overwrite=False) as handle:
        handle.write(b"another")
    assert path.read_bytes() == b"the team's"
    assert leftovers(tmp_path) == []


def test_a_folder_that_cannot_be_synced_is_an_error_only_when_required(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    with pytest.raises(FileNotFoundError):
        durable.sync_folder(missing)
    durable.sync_folder(missing, required=False)
