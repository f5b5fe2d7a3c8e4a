"""Setting up a deployment (`portal init`): the data folder and its secret, the database at
the current schema, the blob store, and no leftovers of interrupted uploads.

Run again, it changes nothing that is already set up: it migrates and sweeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from portal.server import db, retention
from portal.server.config import load_config
from portal.server.services import ensure_secret, opened, read_team_key


class SetupError(Exception):
    """The data folder or the database cannot be set up; the message says why."""


@dataclass(frozen=True)
class Initialised:
    """What `initialise` found and did."""

    data_dir: Path
    made_secret: bool
    removed: int  # leftovers of interrupted uploads


def initialise(env: Mapping[str, str]) -> Initialised:
    """Create or migrate the database and the data folder from the environment `env`, and
    remove leftovers of interrupted uploads. ConfigError or SetupError when it cannot."""
    try:
        config = load_config(env)
        # The key first: a deployment that cannot start gets no data folder either.
        read_team_key(config.team_public_key)
        made = ensure_secret(config)
    except OSError as exc:
        raise SetupError(f"The data folder cannot be set up: {exc}.") from exc
    try:
        db.upgrade(config.database_url)
    except SQLAlchemyError as exc:
        where = make_url(config.database_url).render_as_string(hide_password=True)
        raise SetupError(
            f"The database {where} cannot be reached or migrated: {type(exc).__name__}."
        ) from exc
    with opened(env) as services:
        services.store.ensure()
        removed = retention.sweep(services)
    return Initialised(config.data_dir, made, removed)
