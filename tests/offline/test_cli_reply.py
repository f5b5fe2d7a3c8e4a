"""`portal reply`: a reply sealed for the submitter and for the team, then opened by decrypt."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from portal.cli import main
from portal.formats import bundle, crypto, envelope

PASSPHRASE = "a passphrase long enough"


@pytest.fixture
def team(tmp_path: Path) -> tuple[bytes, Path, Path]:
    """The team's secret key, its private key file and passphrase file."""
    secret, _ = crypto.generate_keypair()
    key_file, passphrase_file = tmp_path / "team.key", tmp_path / "passphrase"
    key_file.write_text(crypto.private_key_file_text(secret, PASSPHRASE.encode()))
    passphrase_file.write_text(PASSPHRASE)
    return secret, key_file, passphrase_file


@pytest.fixture
def submitter() -> tuple[bytes, bytes]:
    """The case's reply key pair, as the server derives it from the receipt."""
    return crypto.generate_keypair()


def case_folder(tmp_path: Path, reply_key: bytes | None, **fields: str) -> Path:
    folder = tmp_path / "out" / "case1"
    folder.mkdir(parents=True)
    record: dict[str, object] = {
        "id": "sub1", "case": "case1", "kind": "report", "received_day": "2026-11-20",
        "locale": "fr", "fields": {"description": "x", **fields}, "files": [],
    }  # fmt: skip
    if reply_key is not None:
        record["reply_public_key"] = crypto.b64encode(reply_key)
    (folder / "report.json").write_text(json.dumps(record))
    return folder


def reply(team: tuple[bytes, Path, Path], folder: Path, out: Path, *args: str) -> Result:
    _, key_file, passphrase_file = team
    return CliRunner().invoke(
        main,
        ["reply", "--key", str(key_file), "--passphrase-file", str(passphrase_file),
         "--case", str(folder), "--out", str(out), *args],
    )  # fmt: skip


def test_reply_is_sealed_twice(
    tmp_path: Path, team: tuple[bytes, Path, Path], submitter: tuple[bytes, bytes]
) -> None:
    reply_secret, reply_public = submitter
    folder = case_folder(tmp_path, reply_public)
    out = tmp_path / "reply.sealed"
    result = reply(team, folder, out, "--message", "Nous avons soulevé votre cas.\r\nMerci.")
    assert result.exit_code == 0, result.output
    with bundle.Reader(out) as reader:
        reader.check_structure()
        entries = reader.entries
        copies = {e.recipient: reader.read_manifest(e) for e in entries}
    assert [(e.case, e.kind, e.files, e.recipient) for e in entries] == [
        ("case1", "reply", 0, "submitter"), ("case1", "reply", 0, "team")
    ]  # fmt: skip
    assert entries[0].id != entries[1].id
    assert entries[0].reply_public_key == crypto.b64encode(reply_public)
    assert entries[1].reply_public_key is None
    assert {e.received_day for e in entries} == {datetime.now(UTC).date().isoformat()}
    for_submitter = envelope.open_manifest(copies["submitter"], reply_secret)
    for_team = envelope.open_manifest(copies["team"], team[0])
    assert for_submitter == for_team
    assert for_team.kind == "reply"
    assert for_team.sealed_by == "relay-tool"
    assert for_team.locale == "fr"
    assert for_team.fields == {"message": "Nous avons soulevé votre cas.\nMerci."}
    assert for_team.files == ()
    with pytest.raises(crypto.WrongKey):
        envelope.open_manifest(copies["submitter"], team[0])


def test_reply_from_a_file(
    tmp_path: Path, team: tuple[bytes, Path, Path], submitter: tuple[bytes, bytes]
) -> None:
    folder = case_folder(tmp_path, submitter[1], consent_contact="no")
    (tmp_path / "message.txt").write_text("\ufeffThank you.\n", encoding="utf-8")
    out = tmp_path / "reply.sealed"
    result = reply(team, folder, out, "--file", str(tmp_path / "message.txt"))
    assert result.exit_code == 0, result.output
    assert "do not wish to be contacted" in result.stderr
    with bundle.Reader(out) as reader:
        team_entry = reader.entries[1]
        manifest = envelope.open_manifest(reader.read_manifest(team_entry), team[0])
    assert manifest.fields == {"message": "Thank you.\n"}


def test_decrypt_puts_the_team_copy_in_the_case(
    tmp_path: Path, team: tuple[bytes, Path, Path], submitter: tuple[bytes, bytes]
) -> None:
    folder = case_folder(tmp_path, submitter[1])
    out = tmp_path / "reply.sealed"
    assert reply(team, folder, out, "--message", "We have raised it.").exit_code == 0
    _, key_file, passphrase_file = team
    result = CliRunner().invoke(
        main,
        ["decrypt", "--key", str(key_file), "--passphrase-file", str(passphrase_file),
         "--out", str(tmp_path / "out"), str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "submitter's copy of a reply" in result.stderr
    [sub] = [p for p in folder.iterdir() if p.is_dir()]
    assert sub.name.endswith("-reply-" + json.loads((sub / "report.json").read_text())["id"])
    assert "We have raised it." in (sub / "report.txt").read_text()
    assert "replies" in (tmp_path / "out" / "cases.csv").read_text()
    [row] = csv.DictReader(io.StringIO((tmp_path / "out" / "cases.csv").read_text()))
    assert (row["case"], row["received_day"], row["locale"]) == ("case1", "2026-11-20", "fr")
    assert row["replies"] == "1"


@pytest.mark.parametrize(
    ("setup", "args", "code", "message"),
    [
        ("no key", ["--message", "hi"], 1, "has no reply key"),
        ("no record", ["--message", "hi"], 1, "holds no report.json"),
        ("bad record", ["--message", "hi"], 1, "cannot be read"),
        ("bad key", ["--message", "hi"], 1, "reply key"),
        ("ok", [], 2, "exactly one of --message or --file"),
        ("ok", ["--message", "a", "--file", "{file}"], 2, "exactly one"),
        ("ok", ["--message", "  \n "], 1, "The reply is empty"),
        ("ok", ["--message", "x" * 100_001], 1, "the limit is 100000"),
        ("exists", ["--message", "hi"], 1, "already exists"),
    ],
)
def test_reply_refuses(
    tmp_path: Path,
    team: tuple[bytes, Path, Path],
    submitter: tuple[bytes, bytes],
    setup: str,
    args: list[str],
    code: int,
    message: str,
) -> None:
    out = tmp_path / "reply.sealed"
    folder = case_folder(tmp_path, None if setup == "no key" else submitter[1])
    if setup == "no record":
        (folder / "report.json").unlink()
    elif setup == "bad record":
        (folder / "report.json").write_text("{")
    elif setup == "bad key":
        record = json.loads((folder / "report.json").read_text())
        record["reply_public_key"] = "QUJD"
        (folder / "report.json").write_text(json.dumps(record))
    elif setup == "exists":
        out.write_bytes(b"earlier")
    (tmp_path / "m.txt").write_text("text")
    result = reply(team, folder, out, *[a.format(file=tmp_path / "m.txt") for a in args])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists() or out.read_bytes() == b"earlier"


def test_reply_with_a_wrong_passphrase(
    tmp_path: Path, team: tuple[bytes, Path, Path], submitter: tuple[bytes, bytes]
) -> None:
    team[2].write_text("not the passphrase")
    out = tmp_path / "reply.sealed"
    result = reply(team, case_folder(tmp_path, submitter[1]), out, "--message", "hi")
    assert result.exit_code == 1
    assert "does not open" in result.output
    assert not out.exists()


def test_the_reply_bundle_is_small_and_reads_back(
    tmp_path: Path, team: tuple[bytes, Path, Path], submitter: tuple[bytes, bytes]
) -> None:
    out = tmp_path / "reply.sealed"
    assert reply(team, case_folder(tmp_path, submitter[1]), out, "--message", "ok").exit_code == 0
    data = out.read_bytes()
    assert len(data) < 16 * 1024
    with bundle.read_bytes(data) as reader:
        assert len(reader.entries) == 2
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames()[0] == bundle.INDEX_NAME
