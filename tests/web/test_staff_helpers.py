"""Fixtures and helpers for the staff site's tests: accounts, a frozen clock, signed-in clients
and sealed submissions made without going through a form."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import nacl.pwhash
import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.formats import bundle, crypto, envelope
from portal.server import accounts, cases, storage
from portal.server.models import Case, Submission
from portal.server.services import Services

START = datetime(2031, 5, 6, 9, 15, 10, tzinfo=UTC)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """The time `portal.server.accounts.now()` gives, moved by hand."""

    def __init__(self, moment: datetime) -> None:
        """Start at `moment`."""
        self.moment = moment

    def __call__(self) -> datetime:
        """The current (frozen) time."""
        return self.moment

    def advance(self, **delta: float) -> None:
        """Move the clock on."""
        self.moment += timedelta(**delta)


@pytest.fixture
def cheap_staff_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its minimum cost for staff passphrases, so tests stay fast."""
    monkeypatch.setattr(accounts, "OPSLIMIT", nacl.pwhash.argon2id.OPSLIMIT_MIN)
    monkeypatch.setattr(accounts, "MEMLIMIT", nacl.pwhash.argon2id.MEMLIMIT_MIN)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A frozen clock for sign-in, codes, locks and session expiry."""
    frozen = Clock(START)
    monkeypatch.setattr(accounts, "now", frozen)
    return frozen


def services_of(app: Flask) -> Services:
    """The services of a site."""
    found = app.extensions["portal"]
    assert isinstance(found, Services)
    return found


def add_account(app: Flask, name: str = "amina") -> accounts.Credentials:
    """Create a staff account in the deployment of `app`."""
    services = services_of(app)
    with services.sessions() as session:
        credentials = accounts.create(session, name, date(2031, 5, 1))
        session.commit()
    return credentials


def code(credentials: accounts.Credentials, when: datetime, steps: int = 0) -> str:
    """The TOTP code of an account at a moment (or `steps` steps later)."""
    return pyotp.TOTP(credentials.totp_secret).at(when, counter_offset=steps)


def token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of a staff page."""
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(
    client: FlaskClient,
    credentials: accounts.Credentials,
    clock: Clock,
    passphrase: str | None = None,
    totp: str | None = None,
) -> tuple[int, str]:
    """Post the sign-in form; the status and the page or redirect target."""
    response = client.post(
        "/login",
        data={
            "csrf_token": token(client),
            "name": credentials.name,
            "passphrase": credentials.passphrase if passphrase is None else passphrase,
            "code": code(credentials, clock()) if totp is None else totp,
        },
    )
    if response.status_code in (302, 303):
        return response.status_code, response.headers["Location"]
    return response.status_code, response.get_data(as_text=True)


@dataclass(frozen=True)
class Staff:
    """A signed-in staff client and its account."""

    client: FlaskClient
    credentials: accounts.Credentials


@pytest.fixture
def staff(staff_app: Flask, clock: Clock, cheap_staff_kdf: None) -> Staff:
    """A staff client, signed in."""
    credentials = add_account(staff_app)
    client = staff_app.test_client()
    status, where = sign_in(client, credentials, clock)
    assert (status, where) == (303, "/"), where
    return Staff(client, credentials)


def make_submission(
    app: Flask,
    *,
    files: int = 0,
    kind: str = "report",
    case_id: str | None = None,
    marker: str = "",
    blob_chunks: int = 1,
    exported: date | None = None,
    received: date | None = None,
    source: str = "form",
) -> Submission:
    """A sealed submission stored as the public site stores one (with a new case unless
    `case_id` is given)."""
    services = services_of(app)
    with services.sessions() as session:
        if case_id is None:
            _receipt, case, _derived = cases.new_case(services, session)
            session.flush()
        else:
            case = session.get(Case, case_id)
            assert case is not None
        staging = services.store.stage()
        entries = []
        for index in range(files):
            key = crypto.new_file_key()
            with staging.open(bundle.stored_blob(index)) as out:
                # Sealed noise of the right length is enough: the server never opens it.
                out.write(crypto.encrypt_chunk(b"\0" * crypto.CHUNK_SIZE, key, 0, blob_chunks == 1))
                for chunk in range(1, blob_chunks):
                    out.write(
                        crypto.encrypt_chunk(
                            b"\0" * crypto.CHUNK_SIZE, key, chunk, chunk == blob_chunks - 1
                        )
                    )
            entries.append(
                envelope.FileEntry(
                    f"{marker}-{index}.txt", "text/plain", crypto.CHUNK_SIZE * blob_chunks, key
                )
            )
        manifest = envelope.Manifest(
            kind,
            "server",
            "en",
            {"description": marker or "x"},
            tuple(entries),
            case.reply_public_key,
        )
        staging.write(
            bundle.STORED_MANIFEST, envelope.seal_manifest(manifest, services.team_public_key)
        )
        submission_id = storage.new_id()
        day = received or date.today()
        size = services.store.commit(staging, submission_id, day)
        submission = Submission(
            id=submission_id,
            case_id=case.id,
            seq=len(case.submissions) + 1,
            kind=kind,
            sealed_by="server",
            source=source,
            recipient=None,
            received_day=day,
            file_count=files,
            size_bytes=size,
            exported_day=exported,
        )
        session.add(submission)
        session.commit()
        return submission
