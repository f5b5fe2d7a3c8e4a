"""The whole loop, as the team lives it: a report with an attachment through the public site;
staff sign-in with TOTP; bundle download; `portal decrypt`; `portal reply`; reply upload; the
submitter reads the reply with the receipt; `portal purge` after the retention date leaves
nothing of the case on the server."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DATABASE_URL, MINIMAL_REPORT, TeamKeys, csrf_token, receipt_of
from flask import Flask
from sqlalchemy import select
from test_staff_helpers import Clock, Staff, make_submission, services_of, token

from portal.cli import main
from portal.formats import bundle
from portal.server import retention
from portal.server.models import AuditEvent, Case, Submission

pytest_plugins = ["test_staff_helpers"]
pytestmark = pytest.mark.usefixtures("cheap_staff_kdf")

MARKER = "LOOP-MARKER-5e0a91"
ATTACHMENT = f"{MARKER}: the letter that was slipped under the door.\n".encode() * 3000
ANSWER = "We have received your report and raised it with the State concerned."


def _download(staff: Staff, path: Path) -> list[bundle.Entry]:
    response = staff.client.post(
        "/download", data={"csrf_token": token(staff.client, "/"), "scope": "pending"}
    )
    assert response.status_code == 200
    path.write_bytes(response.get_data())
    with bundle.Reader(path) as reader:
        return reader.entries


def _everything_stored(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


def test_the_whole_loop(
    app: Flask,
    staff: Staff,
    staff_app: Flask,
    team_keys: TeamKeys,
    tmp_path: Path,
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
) -> None:
    services = services_of(staff_app)
    key = [
        "--key",
        str(team_keys.private_path),
        "--passphrase-file",
        str(team_keys.passphrase_path),
    ]

    # 1. A report with an attachment, through the public site without JavaScript.
    public = app.test_client()
    response = public.post(
        "/en/submit",
        data={
            **MINIMAL_REPORT,
            "description": f"{MARKER} I was followed after the session.",
            "csrf_token": csrf_token(public),
            "attachments": (io.BytesIO(ATTACHMENT), "letter.txt"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    receipt = receipt_of(response.get_data(as_text=True))
    assert MARKER.encode() not in _everything_stored(services.config.data_dir)

    # 2. Staff signed in with passphrase and TOTP (the `staff` fixture); the list shows it.
    page = staff.client.get("/").get_data(as_text=True)
    assert "1 not yet downloaded" in page
    assert MARKER not in page

    # 3. The bundle, downloaded and marked exported.
    first = tmp_path / "first.tar"
    [entry] = _download(staff, first)
    assert entry.kind == "report"
    assert entry.files == 1
    with services.sessions() as session:
        assert session.scalars(select(Submission.exported_day)).one() == date.today()

    # 4. Opened offline.
    out = tmp_path / "cases"
    result = runner.invoke(main, ["decrypt", *key, "--out", str(out), str(first)])
    assert result.exit_code == 0, result.output
    folder = out / entry.case
    record = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert MARKER in record["fields"]["description"]
    opened = [p for p in folder.rglob("*") if p.is_file() and p.read_bytes() == ATTACHMENT]
    assert len(opened) == 1, sorted(str(p) for p in folder.rglob("*"))

    # 5. A reply, sealed offline.
    reply_file = tmp_path / "reply.tar"
    result = runner.invoke(
        main, ["reply", *key, "--case", str(folder), "--out", str(reply_file), "--message", ANSWER]
    )
    assert result.exit_code == 0, result.output

    # 6. Uploaded on the staff site, never read there.
    response = staff.client.post(
        "/reply",
        data={
            "csrf_token": token(staff.client, "/reply"),
            "reply_file": (io.BytesIO(reply_file.read_bytes()), "reply.tar"),
        },
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    assert ANSWER not in page

    # 7. The submitter reads it with the receipt.
    response = public.post(
        "/en/follow-up",
        data={
            "csrf_token": csrf_token(public, "/en/follow-up"),
            "receipt": receipt,
            "step": "open",
        },
    )
    assert response.status_code == 200
    assert ANSWER in response.get_data(as_text=True)

    # The team's copy comes back with the next bundle and opens offline.
    second = tmp_path / "second.tar"
    [team_copy] = _download(staff, second)
    assert (team_copy.kind, team_copy.recipient, team_copy.case) == ("reply", "team", entry.case)
    result = runner.invoke(main, ["decrypt", *key, "--out", str(out), str(second)])
    assert result.exit_code == 0, result.output
    assert any(
        ANSWER in p.read_text(encoding="utf-8", errors="replace") for p in folder.rglob("*.json")
    )

    # 8. Before the retention date, purge keeps everything; after it, nothing of the case.
    config = services.config
    assert runner.invoke(main, ["purge"]).exit_code == 0
    with services.sessions() as session:
        assert len(session.scalars(select(Submission)).all()) == 3
    later = date.today() + timedelta(
        days=max(config.retention_days, config.unexported_retention_days)
    )
    monkeypatch.setattr(retention, "today", lambda: later)
    result = runner.invoke(main, ["purge"])
    assert result.exit_code == 0, result.output
    assert "Deleted 3 submission(s)" in result.output
    with services.sessions() as session:
        assert session.scalars(select(Case)).all() == []
        assert session.scalars(select(Submission)).all() == []
        details = " ".join(e.detail for e in session.scalars(select(AuditEvent)))
    assert entry.case not in details
    assert entry.id not in details
    assert services.store.stored_ids() == set()
    assert not any(services.store.incoming.iterdir())
    if not DATABASE_URL:
        # Not a byte of the case's ids anywhere in the data folder, SQLite's files included.
        stored = _everything_stored(config.data_dir)
        assert entry.case.encode() not in stored
        assert entry.id.encode() not in stored
    # And the receipt opens nothing any more.
    response = public.post(
        "/en/follow-up",
        data={
            "csrf_token": csrf_token(public, "/en/follow-up"),
            "receipt": receipt,
            "step": "open",
        },
    )
    assert response.status_code == 400
    assert ANSWER not in response.get_data(as_text=True)


@pytest.mark.skipif(bool(DATABASE_URL), reason="looks inside the SQLite files")
def test_purge_leaves_no_copy_in_the_database_files(
    staff_app: Flask, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleted rows are zeroed in the database file and do not linger in its write-ahead log."""
    services = services_of(staff_app)
    submission = make_submission(staff_app, files=1)
    later = date.today() + timedelta(days=services.config.unexported_retention_days)
    monkeypatch.setattr(retention, "today", lambda: later)
    assert runner.invoke(main, ["purge"]).exit_code == 0
    stored = _everything_stored(services.config.data_dir)
    assert submission.case_id.encode() not in stored
    assert submission.id.encode() not in stored
