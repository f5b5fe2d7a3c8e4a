"""`portal decrypt`: open bundles and sealed case files into readable case folders, offline."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import click

from portal.cli.keys import EXISTING_FILE, open_private_key
from portal.cli.relay import progress_bar
from portal.offline import opening, register, register_session


def _report(outcome: opening.Outcome) -> None:
    """One submission's line, and its warnings, as the bundle is opened."""
    click.echo(outcome.line(), err=outcome.status != opening.OPENED)
    for warning in outcome.warnings:
        click.echo(f"warning  case {outcome.case}: {warning}", err=True)


@click.command()
@click.option(
    "--key", "key_path", required=True, type=EXISTING_FILE, help="The team's private key file."
)
@click.option(
    "--passphrase-file",
    type=EXISTING_FILE,
    help="Read the passphrase from this file instead of asking for it.",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder of case folders (created if missing, added to on each run).",
)
@click.option(
    "--force", is_flag=True, help="Replace submissions already opened into --out by an earlier run."
)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=register.LOCK_WAIT_SECONDS,
    show_default=True,
    help="Seconds to wait for another run working in --out before refusing.",
)
@click.argument("bundles", nargs=-1, required=True, type=EXISTING_FILE)
def decrypt(
    key_path: Path,
    passphrase_file: Path | None,
    out: Path,
    force: bool,
    wait: float,
    bundles: tuple[Path, ...],
) -> None:
    """Open bundles and sealed case files into one folder per case under --out."""
    secret_key, _ = open_private_key(key_path, passphrase_file)
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"The folder {out} cannot be made: {exc}.") from exc
    try:
        outcomes, problems = register_session.open_bundles(
            secret_key,
            out,
            force,
            bundles,
            wait,
            lambda total: progress_bar(f"Opening {len(bundles)} bundle(s)", total),
            _report,
        )
    except register.RegisterError as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.Error as exc:
        raise click.ClickException(
            f"The register could not be updated ({exc}); it is as it was before the bundle "
            "being added. The case folders opened are kept: the next `portal decrypt` into "
            "this folder adds them."
        ) from exc
    for problem in problems:
        click.echo(f"warning  {problem}", err=True)
    click.echo(
        f"Register: {out / register.NAME}; index of every case: {out / 'index.html'} and "
        f"{out / 'cases.csv'}",
        err=True,
    )
    for line in opening.summary_lines(outcomes):
        click.echo(line, err=True)
    bad = any(o.status in (opening.FAILED, opening.REFUSED) or o.warnings for o in outcomes)
    if bad or problems:
        click.get_current_context().exit(1)
