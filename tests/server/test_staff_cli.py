"""`portal staff`: add, list, remove, reset and unlock accounts from the command line."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import select
from test_staff_helpers import START, Clock, services_of, sign_in

from portal.cli import main
from portal.server import accounts
from portal.server.models import AuditEvent, StaffMember
from portal.server.wordlist import WORDS

pytest_plugins = ["test_staff_helpers"]
pytestmark = pytest.mark.usefixtures("cheap_staff_kdf", "initialised")

PASSPHRASE = re.compile(r"^Passphrase:  (.+)$", re.M)
SECRET = re.compile(r"^TOTP secret: ([A-Z2-7]+)$", re.M)
URI = re.compile(r"^TOTP URI:    (otpauth://\S+)$", re.M)


def _run(runner: CliRunner, *args: str, stdin: str | None = None) -> Result:
    return runner.invoke(main, ["staff", *args], input=stdin)


def _credentials(result: Result, name: str) -> accounts.Credentials:
    passphrase, secret = PASSPHRASE.search(result.stdout), SECRET.search(result.stdout)
    assert passphrase, result.output
    assert secret, result.output
    return accounts.Credentials(name, passphrase.group(1), secret.group(1))


def _members(staff_app: Flask) -> list[StaffMember]:
    with services_of(staff_app).sessions() as session:
        return list(session.scalars(select(StaffMember).order_by(StaffMember.name)))


def test_add_prints_passphrase_secret_uri_and_qr_once(runner: CliRunner, staff_app: Flask) -> None:
    result = _run(runner, "add", "Amina")
    assert result.exit_code == 0, result.output
    made = _credentials(result, "amina")
    words = made.passphrase.split(" ")
    assert len(words) >= 7
    assert set(words) <= set(WORDS)
    uri = URI.search(result.stdout)
    assert uri is not None
    totp = pyotp.parse_uri(uri.group(1))
    assert isinstance(totp, pyotp.TOTP)
    assert totp.secret == made.totp_secret
    assert "issuer=Reprisals%20portal" in uri.group(1)
    # The QR code, drawn with Unicode half blocks.
    assert (
        sum(
            line.count("█") + line.count("▀") + line.count("▄")
            for line in result.stdout.splitlines()
        )
        > 200
    )
    assert "shown once" in result.stderr
    [member] = _members(staff_app)
    assert member.name == "amina"
    assert member.password_hash.startswith("$argon2id$")
    assert made.passphrase not in member.password_hash
    # Never shown again: not by list, not by a second add.
    listed = _run(runner, "list")
    assert made.passphrase not in listed.output
    assert made.totp_secret not in listed.output
    again = _run(runner, "add", "amina")
    assert again.exit_code == 1
    assert "exists already" in again.output
    assert made.passphrase not in again.output


def test_no_qr(runner: CliRunner) -> None:
    result = _run(runner, "add", "amina", "--no-qr")
    assert result.exit_code == 0
    assert "█" not in result.stdout
    assert URI.search(result.stdout)


def test_bad_name_is_refused(runner: CliRunner, staff_app: Flask) -> None:
    result = _run(runner, "add", "Not a name!")
    assert result.exit_code == 1
    assert "account name is 1 to 32 characters" in result.output
    assert _members(staff_app) == []


def test_the_printed_secrets_sign_in(runner: CliRunner, staff_app: Flask, clock: Clock) -> None:
    made = _credentials(_run(runner, "add", "amina"), "amina")
    assert sign_in(staff_app.test_client(), made, clock)[0] == 303


def test_list(runner: CliRunner, staff_app: Flask, clock: Clock) -> None:
    assert "No staff accounts" in _run(runner, "list").output
    _run(runner, "add", "amina", "--no-qr")
    _run(runner, "add", "bob", "--no-qr")
    with services_of(staff_app).sessions() as session:
        member = accounts.get(session, "bob")
        member.failed_logins = 5
        member.locked_until = START + timedelta(minutes=10)
        session.commit()
    output = _run(runner, "list").output
    assert re.search(r"^amina\s+\d{4}-\d\d-\d\d\s+active$", output, re.M), output
    assert re.search(r"^bob\s+.*locked until 2031-05-06 09:25 UTC$", output, re.M), output


def test_remove_asks_and_ends_the_session(
    runner: CliRunner, staff_app: Flask, clock: Clock
) -> None:
    made = _credentials(_run(runner, "add", "amina", "--no-qr"), "amina")
    client = staff_app.test_client()
    sign_in(client, made, clock)
    assert client.get("/").status_code == 200
    refused = _run(runner, "remove", "amina", stdin="n\n")
    assert refused.exit_code == 1
    assert len(_members(staff_app)) == 1
    result = _run(runner, "remove", "amina", stdin="y\n")
    assert result.exit_code == 0
    assert "removed" in result.output
    assert _members(staff_app) == []
    assert client.get("/").status_code == 303
    missing = _run(runner, "remove", "amina", "--yes")
    assert missing.exit_code == 1
    assert "no staff account named 'amina'" in missing.output


def test_reset_gives_new_secrets_and_ends_the_session(
    runner: CliRunner, staff_app: Flask, clock: Clock
) -> None:
    old = _credentials(_run(runner, "add", "amina", "--no-qr"), "amina")
    client = staff_app.test_client()
    sign_in(client, old, clock)
    result = _run(runner, "reset", "amina", "--no-qr")
    assert result.exit_code == 0
    new = _credentials(result, "amina")
    assert new.passphrase != old.passphrase
    assert new.totp_secret != old.totp_secret
    assert client.get("/").status_code == 303
    clock.advance(seconds=30)
    assert sign_in(client, old, clock)[0] == 401
    assert sign_in(client, new, clock)[0] == 303
    assert _run(runner, "reset", "nobody").exit_code == 1


def test_unlock(runner: CliRunner, staff_app: Flask, clock: Clock) -> None:
    made = _credentials(_run(runner, "add", "amina", "--no-qr"), "amina")
    client = staff_app.test_client()
    for _ in range(accounts.LOCK_AFTER):
        sign_in(client, made, clock, passphrase="wrong")
    assert "locked until" in sign_in(client, made, clock)[1]
    assert _run(runner, "unlock", "amina").exit_code == 0
    assert sign_in(client, made, clock)[0] == 303


def test_account_changes_are_audited_without_secrets(runner: CliRunner, staff_app: Flask) -> None:
    made = _credentials(_run(runner, "add", "amina", "--no-qr"), "amina")
    _run(runner, "reset", "amina", "--no-qr")
    _run(runner, "unlock", "amina")
    _run(runner, "remove", "amina", "--yes")
    with services_of(staff_app).sessions() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [(e.staff_name, e.action, e.detail) for e in events] == [
        ("(command line)", "account-added", "amina"),
        ("(command line)", "account-reset", "amina"),
        ("(command line)", "account-unlocked", "amina"),
        ("(command line)", "account-removed", "amina"),
    ]
    assert all(made.passphrase not in e.detail for e in events)


def test_without_a_set_up_data_folder(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", f"{tmp_path}/elsewhere")
    result = _run(runner, "list")
    assert result.exit_code == 1
    assert "run `portal init` first" in result.output
    assert "Traceback" not in result.output
