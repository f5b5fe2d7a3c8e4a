"""What one running site holds: its configuration, keys, blob store and database sessions.

Built once by the factory from the configuration; views and commands reach it through
`current()` (inside a request) or build it with `load()` (commands, tests).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.formats import crypto, days, receipts
from portal.server import db, storage
from portal.server.config import Config, ConfigError, load_config
from portal.server.models import Submission

SECRET_BYTES = 32


@dataclass(frozen=True)
class Services:
    """The long-lived parts of a site."""

    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    store: storage.BlobStore
    team_public_key: bytes
    team_key_text: str
    installation_secret: bytes

    @property
    def team_fingerprint(self) -> str:
        """The team key's fingerprint."""
        return crypto.fingerprint(self.team_public_key)

    @property
    def receipt_site(self) -> receipts.Published:
        """The receipt salt and cost this site publishes with its key."""
        return receipts.published(self.installation_secret, *self.config.receipt_limits)

    @property
    def published_key_text(self) -> str:
        """The key file the site serves: the team key file, with its receipt salt and cost
        in two more comment lines before the key line (relays make receipts with them)."""
        comments, _, key_line = self.team_key_text.rstrip("\n").rpartition("\n")
        return (
            f"{comments}\n# This site's receipts (portal seal and the offline sealer use them):\n"
            f"{self.receipt_site.lines()}{key_line}\n"
        )

    def storage_used(self, session: Session) -> int:
        """Sealed bytes currently stored."""
        return int(session.scalar(select(func.coalesce(func.sum(Submission.size_bytes), 0))) or 0)


# The one clock (portal.formats.days), as the server's modules import it.
today = days.today


def read_team_key(path: Path) -> tuple[bytes, str]:
    """Read the team's public key file, or explain why the site cannot start without it."""
    try:
        key = crypto.load_public_key(path)
    except crypto.KeyFileError as exc:
        raise ConfigError(
            f"The team public key cannot be used: {exc} The portal will not start without it, "
            "because it would have nothing to seal submissions to. Set PORTAL_TEAM_PUBLIC_KEY "
            "to the public key file made by `portal keygen` on the offline machine."
        ) from exc
    return key, crypto.format_public_key_file(key, _key_day(path))


def _key_day(path: Path) -> date:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# Created:"):
            try:
                return date.fromisoformat(line.split(":", 1)[1].strip())
            except ValueError:
                break
    return today()


def read_secret(config: Config) -> bytes:
    """The installation's secret, made by `portal init`."""
    try:
        secret = bytes.fromhex(config.secret_key_file.read_text().strip())
    except FileNotFoundError as exc:
        raise ConfigError(
            f"The data folder {config.data_dir} is not set up: run `portal init` first."
        ) from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{config.secret_key_file} is damaged: {exc}.") from exc
    if len(secret) != SECRET_BYTES:
        raise ConfigError(f"{config.secret_key_file} is damaged.")
    return secret


def ensure_secret(config: Config) -> bool:
    """Create the data folder and the installation secret if missing; True when made now."""
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if config.secret_key_file.exists():
        return False
    crypto.write_new_file(config.secret_key_file, secrets.token_hex(SECRET_BYTES).encode() + b"\n")
    os.chmod(config.secret_key_file, 0o600)
    return True


def load(config: Config) -> Services:
    """Build the services of a site; ConfigError when the key or data folder is not usable."""
    key, text = read_team_key(config.team_public_key)
    secret = read_secret(config)
    engine = db.make_engine(config.database_url)
    return Services(
        config,
        engine,
        db.make_sessionmaker(engine),
        storage.BlobStore(config.blob_dir),
        key,
        text,
        secret,
    )


@contextmanager
def opened(env: Mapping[str, str]) -> Iterator[Services]:
    """The services for one command, from the environment `env`; connections closed after.

    ConfigError, before anything is opened, when they cannot be loaded.
    """
    services = load(load_config(env))
    try:
        yield services
    finally:
        # Connections are closed when the command ends, not whenever they are collected.
        services.engine.dispose()


def current() -> Services:
    """The services of the site handling the current request."""
    # Imported here: the server commands load their services without the web stack.
    from flask import current_app

    found = current_app.extensions["portal"]
    assert isinstance(found, Services)
    return found
