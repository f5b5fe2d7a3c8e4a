"""Server commands: `portal init`, `portal export` and `portal purge`.

They read the same `PORTAL_*` environment as the sites; the work is done in `portal.server`
(`installation`, `exporting`, `retention`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import click

# At the top: an install without the server extra answers that sqlalchemy is missing.
from portal.server import exporting, installation, retention
from portal.server.config import ConfigError
from portal.server.services import Services, opened


@contextmanager
def command_services() -> Iterator[Services]:
    """The server's services for one command, from the environment; connections closed after."""
    with ExitStack() as stack:
        try:
            services = stack.enter_context(opened(os.environ))
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        yield services


@click.command()
def init() -> None:
    """Create or migrate the database and the data folder, and remove leftovers of
    interrupted uploads."""
    try:
        done = installation.initialise(os.environ)
    except (ConfigError, installation.SetupError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Data folder: {done.data_dir}" + (" (new secret made)" if done.made_secret else ""))
    click.echo("Database: up to date.")
    if done.removed:
        click.echo(f"Removed {done.removed} leftover(s) of interrupted uploads.")


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
    try:
        count = exporting.export_file(os.environ, out, everything)
    except (ConfigError, exporting.ExportError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Exported {count} submission(s) to {out}.")


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what would be deleted, delete nothing.")
def purge(dry_run: bool) -> None:
    """Delete submissions past their retention date, and rewrite those of earlier days so
    that the disk keeps no time of day for them (run daily by a timer)."""
    try:
        done = retention.purge(os.environ, dry_run)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if dry_run:
        click.echo(f"{done.deleted} submission(s) would be deleted.")
        return
    click.echo(
        f"Deleted {done.deleted} submission(s) past retention"
        + (f" and {done.removed} abandoned upload(s)." if done.removed else ".")
    )
    if done.settled:
        click.echo(
            f"Rewrote {done.settled} submission(s) of earlier days into new files,"
            " so that the disk keeps no time of day for them."
        )
