"""Export: what was typed and attached never rests anywhere on the server in plaintext, and
`portal export` then `portal decrypt` with the team key gives it back byte for byte."""

from __future__ import annotations

import json
import logging
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import MINIMAL_REPORT, TeamKeys, csrf_token, receipt_of
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from test_uploads import FilePart, post_parts

from portal.cli import main
from portal.formats import bundle, questionnaire
from portal.formats.fields import COUNT, MONTH, RADIO, SELECT, TEXT, TEXTAREA
from portal.server.models import Base, Submission
from portal.server.services import today


def export_and_decrypt(
    runner: CliRunner, team_keys: TeamKeys, folder: Path, *options: str
) -> list[dict[str, Any]]:
    """`portal export` into `folder`, then `portal decrypt` it there; the opened records, each
    with its attachments' bytes by file name, in the order of the bundle."""
    folder.mkdir(parents=True, exist_ok=True)
    bundle_path = folder / "export.tar"
    result = runner.invoke(main, ["export", "--out", str(bundle_path), *options])
    assert result.exit_code == 0, result.output
    out = folder / "opened"
    result = runner.invoke(
        main,
        [
            "decrypt",
            "--key",
            str(team_keys.private_path),
            "--passphrase-file",
            str(team_keys.passphrase_path),
            "--out",
            str(out),
            str(bundle_path),
        ],
    )
    assert result.exit_code == 0, result.output
    with bundle.Reader(bundle_path) as reader:
        order = [entry.id for entry in reader.entries if entry.recipient != "submitter"]
    records = {}
    for path in out.rglob("report.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        record["attachments"] = {
            item["name"]: (path.parent / item["saved_as"]).read_bytes() for item in record["files"]
        }
        records[record["id"]] = record
    assert sorted(records) == sorted(order)
    return [records[i] for i in order]


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return found.group(1)


def _every_field(marker: str) -> dict[str, str | list[str]]:
    """A value for every field of the report: the marker in every text, a choice elsewhere."""
    values: dict[str, str | list[str]] = {}
    for field in questionnaire.REPORT_FIELDS:
        if field.kind in (TEXT, TEXTAREA):
            values[field.name] = f"{marker} in {field.name}, ünïcode 报复 «quoted»\nsecond line"
        elif field.kind in (RADIO, SELECT):
            values[field.name] = field.choices[-1][0]
        elif field.kind == MONTH:
            values[field.name] = "2026-01"
        elif field.kind == COUNT:
            values[field.name] = "7"
        else:
            values[field.name] = [value for value, _label in field.choices[:2]]
    values["consent_contact"] = "other_channel"
    values["submitter_role"] = "representative"
    return values


def _database_text(app: Flask) -> str:
    """Every row of every table, as text (for a database that is not a file here)."""
    services = app.extensions["portal"]
    with services.engine.connect() as connection:
        return "\n".join(
            str(row)
            for table in Base.metadata.sorted_tables
            for row in connection.execute(text(f"SELECT * FROM {table.name}"))  # noqa: S608
        )


def test_a_marker_typed_and_attached_is_nowhere_on_the_server_and_comes_back_whole(
    app: Flask,
    client: FlaskClient,
    runner: CliRunner,
    team_keys: TeamKeys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    marker = f"MARKER{secrets.token_hex(8)}"
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    monkeypatch.setenv("TMPDIR", str(spool))
    caplog.set_level(logging.DEBUG)
    fields = _every_field(marker)
    # Large enough that an ordinary parser would spool it to a temporary file.
    attachment = (marker.encode() + bytes(range(256))) * 8000
    small = marker.encode()
    parts: list[Any] = [("csrf_token", csrf_token(client))]
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            parts.append((name, item))
    parts += [
        ("website", ""),
        FilePart("attachments", f"{marker}-photo.jpg", attachment, "image/jpeg"),
        FilePart("attachments", f"{marker}.txt", small, "text/plain"),
    ]
    response = post_parts(client, "/en/submit", parts)
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    receipt = receipt_of(page)
    # A follow-up with the same marker, through a form that first came back with a problem.
    opened = client.post(
        "/en/follow-up",
        data={
            "receipt": receipt,
            "step": "open",
            "csrf_token": csrf_token(client, "/en/follow-up"),
        },
    ).get_data(as_text=True)
    again = post_parts(
        client,
        "/en/follow-up",
        [
            ("csrf_token", _token(opened)),
            ("step", "add"),
            ("receipt", receipt),
            ("description", ""),
            FilePart("attachments", f"{marker}-later.bin", attachment[::-1]),
        ],
    ).get_data(as_text=True)
    kept = re.search(r'name="kept_files" value="([^"]+)"', again)
    assert kept
    done = client.post(
        "/en/follow-up",
        data={
            "csrf_token": _token(again),
            "step": "add",
            "receipt": receipt,
            "description": f"{marker} more information",
            "kept_files": kept.group(1),
            "keep_file": "0",
        },
    )
    assert done.status_code == 200

    data_dir = Path(app.extensions["portal"].config.data_dir)
    places = [*data_dir.rglob("*"), *spool.rglob("*")]
    assert any(p.name.endswith(".blob") for p in places)
    for path in places:
        if path.is_file():
            content = path.read_bytes()
            assert marker.encode() not in content, path
            assert marker.encode("utf-16-le") not in content, path
    assert marker not in _database_text(app)
    assert marker not in caplog.text
    assert receipt.replace(" ", "") not in caplog.text

    report, follow_up = export_and_decrypt(runner, team_keys, tmp_path / "offline")
    assert report["kind"] == "report"
    assert report["sealed_by"] == "server"
    assert report["locale"] == "en"
    assert report["fields"] == fields
    assert report["attachments"] == {
        f"{marker}-photo.jpg": attachment,
        f"{marker}.txt": small,
    }
    assert [f["type"] for f in report["files"]] == ["image/jpeg", "text/plain"]
    assert report["reply_public_key"]
    assert follow_up["kind"] == "follow-up"
    assert follow_up["case"] == report["case"]
    assert follow_up["fields"] == {"description": f"{marker} more information"}
    assert follow_up["attachments"] == {f"{marker}-later.bin": attachment[::-1]}


def test_export_takes_what_is_new_and_marks_it(
    app: Flask, client: FlaskClient, runner: CliRunner, team_keys: TeamKeys, tmp_path: Path
) -> None:
    def report(words: str) -> None:
        data = {**MINIMAL_REPORT, "description": words, "csrf_token": csrf_token(client)}
        assert client.post("/en/submit", data=data).status_code == 200

    report("first")
    report("second")
    first = export_and_decrypt(runner, team_keys, tmp_path / "one")
    assert sorted(r["fields"]["description"] for r in first) == ["first", "second"]
    with app.extensions["portal"].sessions() as session:
        assert {s.exported_day for s in session.scalars(select(Submission))} == {today()}
    report("third")
    second = export_and_decrypt(runner, team_keys, tmp_path / "two")
    assert [r["fields"]["description"] for r in second] == ["third"]
    assert export_and_decrypt(runner, team_keys, tmp_path / "three") == []
    everything = export_and_decrypt(runner, team_keys, tmp_path / "four", "--all")
    assert len(everything) == 3


def test_export_will_not_overwrite_or_write_nowhere(
    app: Flask, client: FlaskClient, runner: CliRunner, tmp_path: Path
) -> None:
    client.post("/en/submit", data={**MINIMAL_REPORT, "csrf_token": csrf_token(client)})
    existing = tmp_path / "taken.tar"
    existing.write_bytes(b"something else")
    result = runner.invoke(main, ["export", "--out", str(existing)])
    assert result.exit_code == 1
    assert "exists" in result.output
    assert existing.read_bytes() == b"something else"
    result = runner.invoke(main, ["export", "--out", str(tmp_path / "no" / "such" / "b.tar")])
    assert result.exit_code == 1
    assert "does not exist" in result.output
    with app.extensions["portal"].sessions() as session:
        assert session.scalars(select(Submission)).one().exported_day is None


def test_an_export_that_fails_midway_marks_nothing_and_leaves_no_file(
    app: Flask, client: FlaskClient, runner: CliRunner, tmp_path: Path
) -> None:
    client.post("/en/submit", data={**MINIMAL_REPORT, "csrf_token": csrf_token(client)})
    services = app.extensions["portal"]
    (folder,) = services.store.stored_ids()
    (services.store.path(folder) / "manifest.sealed").unlink()
    result = runner.invoke(main, ["export", "--out", str(tmp_path / "b.tar")])
    assert result.exit_code == 1
    assert "nothing was marked exported" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.glob("*b.tar*")) == []
    with services.sessions() as session:
        assert session.scalars(select(Submission)).one().exported_day is None
