"""Fixtures shared by the whole suite: keys, configuration, the two sites, the CLI runner.

`PORTAL_TEST_DATABASE_URL` (set by CI) runs every site test against that PostgreSQL server,
emptied before each test; without it each test gets its own SQLite file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import nacl.pwhash
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from servers import MINIMAL_REPORT

from portal.formats import crypto

# Shared with the benchmarks, which load `servers` but not the tests' fixtures.
__all__ = ["MINIMAL_REPORT"]

PASSPHRASE = "correct horse battery staple tests"
DATABASE_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "")


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its minimum cost for private key files, so tests do not spend a gigabyte each."""
    monkeypatch.setattr(crypto, "PASSPHRASE_OPSLIMIT", nacl.pwhash.argon2id.OPSLIMIT_MIN)
    monkeypatch.setattr(crypto, "PASSPHRASE_MEMLIMIT", nacl.pwhash.argon2id.MEMLIMIT_MIN)


@dataclass(frozen=True)
class TeamKeys:
    """A team key pair for tests: the public key file, the private key file and the raw keys."""

    public_path: Path
    private_path: Path
    passphrase_path: Path
    secret_key: bytes
    public_key: bytes


@pytest.fixture
def team_keys(tmp_path: Path) -> TeamKeys:
    """A fresh team key pair, written as `portal keygen` writes it (at the cheap KDF cost)."""
    folder = tmp_path / "keys"
    folder.mkdir()
    secret, public = crypto.generate_keypair()
    public_path = folder / "team.pub"
    public_path.write_text(crypto.format_public_key_file(public, date.today()))
    private_path = folder / "team.key"
    crypto.write_new_file(
        private_path, crypto.private_key_file_text(secret, PASSPHRASE.encode()).encode()
    )
    passphrase_path = folder / "passphrase.txt"
    passphrase_path.write_text(PASSPHRASE + "\n")
    return TeamKeys(public_path, private_path, passphrase_path, secret, public)


def reset_database(url: str) -> None:
    """Empty a test database completely (tables and Alembic's version table)."""
    from sqlalchemy import MetaData, create_engine

    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    engine.dispose()


@pytest.fixture
def env(tmp_path: Path, team_keys: TeamKeys) -> dict[str, str]:
    """The `PORTAL_*` configuration of a test deployment in a temporary folder."""
    values = {
        "PORTAL_DATA_DIR": str(tmp_path / "data"),
        "PORTAL_TEAM_PUBLIC_KEY": str(team_keys.public_path),
        "PORTAL_RECEIPT_COST": "min",
        "PORTAL_HOSTNAMES": "localhost,127.0.0.1",
    }
    if DATABASE_URL:
        reset_database(DATABASE_URL)
        values["PORTAL_DATABASE_URL"] = DATABASE_URL
    return values


@pytest.fixture
def initialised(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The test deployment after `portal init`; the environment points at it."""
    from portal.cli import main

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    return env


def _app(site: str, env: dict[str, str]) -> Iterator[Flask]:
    from portal import create_app

    app = create_app(site, env)
    app.config.update(TESTING=True, RATELIMIT_ENABLED=False)
    try:
        yield app
    finally:
        app.extensions["portal"].engine.dispose()


@pytest.fixture
def app(initialised: dict[str, str]) -> Iterator[Flask]:
    """The public site of the test deployment (rate limits off; tests that check them turn
    them on)."""
    yield from _app("public", initialised)


@pytest.fixture
def staff_app(initialised: dict[str, str]) -> Iterator[Flask]:
    """The staff site of the same deployment."""
    yield from _app("staff", initialised)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the public site."""
    return app.test_client()


@pytest.fixture
def runner() -> CliRunner:
    """Click's runner for the `portal` command."""
    return CliRunner()


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
RECEIPT = re.compile(r'class="receipt-number"[^>]*><code>([\d ]+)</code>')


def csrf_token(client: FlaskClient, path: str = "/en/submit") -> str:
    """Load a form page and return its CSRF token."""
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def receipt_of(html: str) -> str:
    """The receipt shown on a receipt page."""
    match = RECEIPT.search(html)
    assert match, "no receipt on the page"
    return match.group(1)


@dataclass(frozen=True)
class Prepared:
    """What the site hands the browser before it seals a report."""

    ticket: str
    reply_public_key: bytes


def prepare(client: FlaskClient, lang: str = "en", token: str | None = None) -> Prepared:
    """Ask for a report's ticket and reply key, as the sealing script does before sealing."""
    token = csrf_token(client, f"/{lang}/submit") if token is None else token
    response = client.post(f"/{lang}/submit/prepare", data={"csrf_token": token})
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    return Prepared(answer["ticket"], crypto.b64decode(answer["reply_public_key"], 32))
