"""The blob store: staged files made durable in the right order before a row counts, file times
kept to the day, and leftovers of anything interrupted removed at the next start."""

from __future__ import annotations

import os
import stat
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import MINIMAL_REPORT, csrf_token
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.orm import Session
from test_uploads import FilePart, post_parts, report_parts, stored

from portal.cli import main
from portal.formats import bundle
from portal.server import retention, storage


@pytest.fixture
def store(tmp_path: Path) -> storage.BlobStore:
    """An empty blob store."""
    return storage.BlobStore(tmp_path / "sealed")


def test_an_id_is_random_base32(store: storage.BlobStore) -> None:
    ids = {storage.new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 24 and i.isalnum() and i == i.lower() for i in ids)


@pytest.mark.parametrize("bad", ["..", "../secret", "a/b", "", ".incoming"])
def test_a_path_is_only_ever_a_folder_of_the_store(store: storage.BlobStore, bad: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        store.path(bad)


def test_commit_moves_the_staged_files_into_place_kept_to_the_day(
    store: storage.BlobStore,
) -> None:
    staging = store.stage()
    staging.write(bundle.STORED_MANIFEST, b"m" * 100)
    staging.write(bundle.stored_blob(0), b"b" * 50)
    day = date(2026, 3, 4)
    assert store.commit(staging, "abc123", day) == 150
    assert not (store.incoming / staging.name).exists()
    folder = store.path("abc123")
    assert sorted(p.name for p in folder.iterdir()) == ["0.blob", bundle.STORED_MANIFEST]
    midnight = datetime(2026, 3, 4, tzinfo=UTC).timestamp()
    for path in (folder, *folder.iterdir()):
        assert path.stat().st_mtime == midnight
    assert stat.S_IMODE((folder / bundle.STORED_MANIFEST).stat().st_mode) == 0o600
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.incoming.stat().st_mode) == 0o700
    assert store.stored_ids() == {"abc123"}
    with store.open("abc123", bundle.STORED_MANIFEST) as handle:
        assert handle.read() == b"m" * 100


def test_keep_only_removes_strays_and_wants_every_piece(store: storage.BlobStore) -> None:
    staging = store.stage()
    for name in (bundle.STORED_MANIFEST, "0.blob", "part-7"):
        staging.write(name, b"x")
    staging.keep_only({bundle.STORED_MANIFEST, "0.blob"})
    assert staging.names() == {"0.blob", bundle.STORED_MANIFEST}
    with pytest.raises(FileNotFoundError):
        staging.keep_only({bundle.STORED_MANIFEST, "0.blob", "1.blob"})


def test_sweep_removes_leftovers_and_folders_without_a_row(store: storage.BlobStore) -> None:
    for submission_id in ("kept", "orphan"):
        staging = store.stage()
        staging.write(bundle.STORED_MANIFEST, b"m")
        store.commit(staging, submission_id, date(2026, 1, 1))
    interrupted = store.stage()
    interrupted.write("part-0", b"half an upload")
    assert store.sweep({"kept"}) == 2
    assert store.stored_ids() == {"kept"}
    assert list(store.incoming.iterdir()) == []


def test_the_stale_sweep_leaves_recent_staging_alone(app: Flask, client: FlaskClient) -> None:
    services = app.extensions["portal"]
    old, recent = services.store.stage(), services.store.stage()
    a_day_ago = time.time() - retention.STALE_SECONDS - 60
    incoming = services.store.incoming
    os.utime(incoming / old.name, (a_day_ago, a_day_ago))
    assert retention.sweep_stale(services) == 1
    assert not (incoming / old.name).exists()
    assert (incoming / recent.name).exists()


# ---------------------------------------------------------------------------------------------
# The order of a durable submission


def test_files_are_synced_and_moved_before_the_row_is_committed(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def rename(src: str | Path, dst: str | Path) -> None:
        events.append(("rename", f"{src} -> {dst}"))
        real_rename(src, dst)

    def committed(_session: Session) -> None:
        events.append(("commit", ""))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    event.listen(Session, "after_commit", committed)
    try:
        response = post_parts(
            client,
            "/en/submit",
            [*report_parts(csrf_token(client)), FilePart("attachments", "a.txt", b"evidence")],
        )
    finally:
        event.remove(Session, "after_commit", committed)
    assert response.status_code == 200
    store = app.extensions["portal"].store
    (submission_id,) = stored(app).folders
    folder = str(store.path(submission_id))
    kinds = [kind for kind, _ in events]
    moved = next(i for i, (kind, what) in enumerate(events) if what.endswith(f"-> {folder}"))
    commit = kinds.index("commit")
    synced_files = [
        i
        for i, (kind, what) in enumerate(events)
        if kind == "fsync" and (what.endswith((bundle.STORED_MANIFEST, ".blob")))
    ]
    synced_root = [
        i for i, (kind, what) in enumerate(events) if kind == "fsync" and (what == str(store.root))
    ]
    # Each file is synced, then the folder takes its name, then the parent is synced, and
    # only then does the row count.
    assert len(synced_files) == 2
    assert max(synced_files) < moved < min(synced_root) < commit
    assert "receipt-number" in response.get_data(as_text=True)


def test_a_row_that_cannot_be_committed_leaves_no_files(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(_self: Session) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(Session, "commit", fail)
    response = client.post("/en/submit", data={**MINIMAL_REPORT, "csrf_token": csrf_token(client)})
    assert response.status_code == 500
    assert "receipt-number" not in response.get_data(as_text=True)
    monkeypatch.undo()
    assert stored(app).rows == 0
    assert stored(app).folders == set()
    assert stored(app).staging == []


def test_files_that_cannot_be_made_durable_leave_nothing(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: storage.BlobStore, *_args: object) -> int:
        raise OSError("no space left on device")

    monkeypatch.setattr(storage.BlobStore, "commit", fail)
    response = post_parts(
        client,
        "/en/submit",
        [*report_parts(csrf_token(client)), FilePart("attachments", "a.txt", b"evidence")],
    )
    assert response.status_code == 500
    assert stored(app).rows == 0
    assert stored(app).folders == set()
    assert stored(app).staging == []


def test_init_removes_what_an_interrupted_request_left(
    app: Flask, initialised: dict[str, str]
) -> None:
    services = app.extensions["portal"]
    staging = services.store.stage()
    staging.write(bundle.STORED_MANIFEST, b"m" * 4144)
    # A folder moved into place whose row never came (a crash between the two), and a
    # staging folder half written (a crash during the upload).
    services.store.commit(staging, storage.new_id(), date.today())
    services.store.stage().write("part-0", b"half")
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    assert "Removed 2 leftover(s)" in result.output
    assert stored(app).folders == set()
    assert stored(app).staging == []
