"""Server commands: `portal init`, `portal export` and `portal purge`.

They read the same `PORTAL_*` environment as the sites.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from portal.formats import bundle, durable
from portal.server import db, exporting, retention
from portal.server.config import ConfigError, load_config
from portal.server.services import Services, ensure_secret, load, read_team_key


@contextmanager
def command_services() -> Iterator[Services]:
    """The server's services for one command, from the environment; connections closed after."""
    try:
        services = load(load_config(os.environ))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield services
    finally:
        # Connections are closed when the command ends, not whenever they are collected.
        services.engine.dispose()


@click.command()
def init() -> None:
    """Create or migrate the database and the data folder, and remove leftovers of
    interrupted uploads."""
    try:
        config = load_config(os.environ)
        # The key first: a deployment that cannot start gets no data folder either.
        read_team_key(config.team_public_key)
        made = ensure_secret(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"The data folder cannot be set up: {exc}.") from exc
    try:
        db.upgrade(config.database_url)
    except SQLAlchemyError as exc:
        where = make_url(config.database_url).render_as_string(hide_password=True)
        raise click.ClickException(
            f"The database {where} cannot be reached or migrated: {type(exc).__name__}."
        ) from exc
    with command_services() as services:
        services.store.ensure()
        removed = retention.sweep(services)
    click.echo(f"Data folder: {config.data_dir}" + (" (new secret made)" if made else ""))
    click.echo("Database: up to date.")
    if removed:
        click.echo(f"Removed {removed} leftover(s) of interrupted uploads.")


@click.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bundle file to write (must not exist).",
)
@click.option("--all", "everything", is_flag=True, help="Include submissions exported before.")
def export(out: Path, everything: bool) -> None:
    """Write a bundle of the submissions not yet exported, and mark them exported."""
    if out.exists():
        raise click.ClickException(f"{out} exists; choose a new file name.")
    if not out.parent.is_dir():
        raise click.ClickException(f"The folder {out.parent} does not exist.")
    with command_services() as services, services.sessions() as session:
        chosen = (exporting.all_exportable if everything else exporting.pending)(session)
        # The bundle's name is durable before anything is marked exported: retention counts
        # from that mark. A temporary name of its own keeps an interrupted export no obstacle.
        try:
            with durable.replacing(out, overwrite=False) as handle:
                for block in exporting.stream(services, chosen):
                    handle.write(block)
        except (OSError, bundle.BundleError) as exc:
            raise click.ClickException(
                f"The bundle could not be written ({exc}); nothing was marked exported."
            ) from exc
        exporting.mark_exported(session, [s.id for s in chosen])
    click.echo(f"Exported {len(chosen)} submission(s) to {out}.")


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what would be deleted, delete nothing.")
def purge(dry_run: bool) -> None:
    """Delete submissions past their retention date (run daily by a timer)."""
    with command_services() as services:
        with services.sessions() as session:
            due = retention.due(services, session)
            if dry_run:
                click.echo(f"{len(due)} submission(s) would be deleted.")
                return
            retention.delete(services, session, due)
        removed = retention.sweep_stale(services)
    click.echo(
        f"Deleted {len(due)} submission(s) past retention"
        + (f" and {removed} abandoned upload(s)." if removed else ".")
    )
