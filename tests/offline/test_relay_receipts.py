"""Relays make their own receipts: the site publishes its receipt salt and cost with its key,
`portal seal` seals each case's reply key inside it, and the site opens the case from the
lookup value alone, never seeing the receipt."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import markupsafe
import pytest
from click.testing import CliRunner, Result
from conftest import MINIMAL_REPORT, TeamKeys, csrf_token
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from test_export import export_and_decrypt
from test_staff_helpers import Staff
from test_staff_replies import MESSAGE, _upload
from test_uploads import FilePart, error_message, post_parts

from portal.cli import main
from portal.cli.relay import NO_RECEIPT_LINES
from portal.formats import bundle, crypto, envelope, receipts
from portal.server.models import Case

pytest_plugins = ["test_staff_helpers"]

RECEIPT_LINE = re.compile(r"^Receipt of this case: (\d{5}(?: \d{5}){4})$", re.MULTILINE)
FIELDS = [f"--field={name}={value}" for name, value in MINIMAL_REPORT.items()]


def served_key(client: FlaskClient, tmp_path: Path) -> Path:
    """The key file as the site serves it, saved where a relay would save it."""
    path = tmp_path / "served-team.pub"
    path.write_bytes(client.get("/en/key/team.pub").get_data())
    return path


def seal(key_file: Path, out: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["seal", "--to", str(key_file), "--out", str(out), *args])


def sealed_with_receipt(
    client: FlaskClient, tmp_path: Path, name: str = "case.sealed"
) -> tuple[Path, str]:
    """A case sealed with the served key file, and the receipt `portal seal` printed."""
    out = tmp_path / name
    result = seal(served_key(client, tmp_path), out, *FIELDS)
    assert result.exit_code == 0, result.output
    found = RECEIPT_LINE.search(result.stdout)
    assert found, result.output
    assert "it was never sent anywhere" in result.stderr
    return out, found.group(1)


def upload(client: FlaskClient, sealed: bytes) -> tuple[int, str]:
    parts = [
        ("csrf_token", csrf_token(client, "/en/sealed-case")),
        FilePart("case_file", "case.sealed", sealed),
    ]
    response = post_parts(client, "/en/sealed-case", parts)
    return response.status_code, response.get_data(as_text=True)


def entry_and_manifest(path: Path, secret: bytes) -> tuple[bundle.Entry, envelope.Manifest]:
    with bundle.Reader(path) as reader:
        [entry] = reader.entries
        return entry, envelope.open_manifest(reader.read_manifest(entry), secret)


def test_the_served_key_file_publishes_the_receipt_salt_and_cost(
    app: Flask, client: FlaskClient, team_keys: TeamKeys
) -> None:
    served = client.get("/en/key/team.pub").get_data(as_text=True)
    original = team_keys.public_path.read_text()
    # The key line and the fingerprint are those of the team's own file.
    assert served.splitlines()[-1] == original.splitlines()[-1]
    assert [line for line in original.splitlines() if "Fingerprint" in line] == [
        line for line in served.splitlines() if "Fingerprint" in line
    ]
    assert crypto.parse_public_key_file(served) == team_keys.public_key
    services = app.extensions["portal"]
    site = receipts.read_published(served)
    assert site == receipts.Published(
        receipts.salt_of(services.installation_secret), *services.config.receipt_limits
    )
    # The key page shows the file as it is downloaded.
    page = client.get("/en/key").get_data(as_text=True)
    assert str(markupsafe.escape(served)) in page
    # The salt is a personalised hash: the secret itself is nowhere in the file.
    assert services.installation_secret.hex() not in served
    assert crypto.b64encode(services.installation_secret) not in served


def test_portal_seal_with_the_served_key_seals_the_reply_key_inside(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, tmp_path: Path
) -> None:
    out, receipt = sealed_with_receipt(client, tmp_path)
    entry, manifest = entry_and_manifest(out, team_keys.secret_key)
    services = app.extensions["portal"]
    derived = receipts.derive(
        receipt, services.installation_secret, *services.config.receipt_limits
    )
    assert manifest.reply_public_key == derived.reply_public_key
    assert entry.reply_public_key == crypto.b64encode(derived.reply_public_key)
    assert entry.receipt_lookup == crypto.b64encode(derived.lookup)
    assert receipt.replace(" ", "") not in out.read_bytes().decode("latin-1")


def test_the_site_opens_a_relayed_case_from_its_lookup_and_the_reply_reaches_the_relay(
    app: Flask,
    client: FlaskClient,
    staff: Staff,
    staff_app: Flask,
    runner: CliRunner,
    team_keys: TeamKeys,
    tmp_path: Path,
) -> None:
    out, receipt = sealed_with_receipt(client, tmp_path)
    status, page = upload(client, out.read_bytes())
    assert status == 200, page
    assert 'class="receipt-number"' not in page
    assert "the one the sealing tool showed" in page
    services = app.extensions["portal"]
    derived = receipts.derive(
        receipt, services.installation_secret, *services.config.receipt_limits
    )
    with services.sessions() as session:
        case = session.scalars(select(Case)).one()
        assert (case.receipt_lookup, case.reply_public_key) == (
            derived.lookup,
            derived.reply_public_key,
        )
        case_id = case.id
    # Offline: the key comes from inside the sealed report, and is pinned.
    [record] = export_and_decrypt(runner, team_keys, tmp_path / "offline")
    assert record["reply_public_key_from"] == "manifest"
    folder = tmp_path / "offline" / "opened" / case_id
    report = next(folder.rglob("report.txt")).read_text(encoding="utf-8")
    assert "Reply key:   inside the sealed report" in report
    # A reply sealed to the pinned key is read on the follow-up page with the relay's receipt.
    reply_file = tmp_path / "reply.tar"
    result = runner.invoke(
        main,
        [
            "reply",
            "--key", str(team_keys.private_path),
            "--passphrase-file", str(team_keys.passphrase_path),
            "--case", str(next(folder.rglob("report.json")).parent),
            "--out", str(reply_file),
            "--message", MESSAGE,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    status, page = _upload(staff, reply_file.read_bytes())
    assert status == 200, page
    public = app.test_client()
    page = public.post(
        "/en/follow-up",
        data={
            "csrf_token": csrf_token(public, "/en/follow-up"),
            "receipt": receipt,
            "step": "open",
        },
    ).get_data(as_text=True)
    assert MESSAGE.split(":")[0] in page


def test_a_relayed_lookup_that_already_has_a_case_is_refused(
    app: Flask, client: FlaskClient, tmp_path: Path
) -> None:
    out, _receipt = sealed_with_receipt(client, tmp_path)
    assert upload(client, out.read_bytes())[0] == 200
    status, page = upload(client, out.read_bytes())
    assert status == 400
    assert "already received (its receipt belongs to a case)" in error_message(page)
    with app.extensions["portal"].sessions() as session:
        assert len(session.scalars(select(Case)).all()) == 1


def _with_entry(path: Path, tmp_path: Path, **changes: str | None) -> bytes:
    """The same case file (no attachments) with its index entry changed, as a server could."""
    with bundle.Reader(path) as reader:
        [entry] = reader.entries
        manifest = reader.read_manifest(entry)
    changed = dataclasses.replace(entry, **changes)
    out = tmp_path / f"changed-{len(list(tmp_path.glob('changed-*')))}.sealed"
    # Written without reading back: the writer would refuse a malformed entry.
    with out.open("wb") as handle:
        bundle.write(
            handle, [changed], [bundle.bytes_member(bundle.manifest_name(entry.id), manifest)]
        )
    return out.read_bytes()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"reply_public_key": None}, "names a receipt but no reply key"),
        ({"receipt_lookup": "AAAA"}, "is damaged or incomplete"),
    ],
    ids=["lookup-without-key", "short-lookup"],
)
def test_a_relayed_receipt_that_is_incomplete_is_refused(
    app: Flask, client: FlaskClient, tmp_path: Path, changes: dict[str, str | None], reason: str
) -> None:
    out, _receipt = sealed_with_receipt(client, tmp_path)
    status, page = upload(client, _with_entry(out, tmp_path, **changes))
    assert status == 400
    assert reason in error_message(page)


def test_an_index_key_other_than_the_sealed_one_is_caught_offline(
    app: Flask, client: FlaskClient, runner: CliRunner, team_keys: TeamKeys, tmp_path: Path
) -> None:
    out, _receipt = sealed_with_receipt(client, tmp_path)
    _secret, other = crypto.generate_keypair()
    changed = tmp_path / "altered.sealed"
    changed.write_bytes(_with_entry(out, tmp_path, reply_public_key=crypto.b64encode(other)))
    opened = tmp_path / "opened"
    result = runner.invoke(
        main,
        [
            "decrypt",
            "--key", str(team_keys.private_path),
            "--passphrase-file", str(team_keys.passphrase_path),
            "--out", str(opened),
            str(changed),
        ],
    )  # fmt: skip
    # Opened with the sealed key, and the run ends in failure so that the warning is seen.
    assert result.exit_code == 1, result.output
    assert "The server altered the index" in result.output
    [record_path] = opened.rglob("report.json")
    record = json.loads(record_path.read_text(encoding="utf-8"))
    _entry, manifest = entry_and_manifest(out, team_keys.secret_key)
    assert manifest.reply_public_key is not None
    assert record["reply_public_key"] == crypto.b64encode(manifest.reply_public_key)
    assert record["reply_public_key_from"] == "manifest"
    assert any("the index" in warning for warning in record["warnings"])
    report = (record_path.parent / "report.txt").read_text(encoding="utf-8")
    assert "Reply key:   inside the sealed report" in report


def test_without_the_receipt_lines_the_site_makes_the_receipt_as_before(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, tmp_path: Path
) -> None:
    out = tmp_path / "case.sealed"
    result = seal(team_keys.public_path, out, *FIELDS)
    assert result.exit_code == 0, result.output
    assert NO_RECEIPT_LINES in " ".join(result.stderr.split())
    assert "Receipt" not in result.stdout
    entry, manifest = entry_and_manifest(out, team_keys.secret_key)
    assert (manifest.reply_public_key, entry.reply_public_key, entry.receipt_lookup) == (
        None,
        None,
        None,
    )
    status, page = upload(client, out.read_bytes())
    assert status == 200
    assert re.search(r'class="receipt-number"[^>]*><code>\d{5}( \d{5}){4}</code>', page)
