"""`portal decrypt`: open bundles and sealed case files into readable case folders, offline."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import click

from portal import bundle, cases, register, register_view
from portal.cli.keys import EXISTING_FILE, open_private_key
from portal.cli.relay import progress_bar


def _blob_bytes(path: Path) -> int:
    """The plaintext bytes a bundle holds, roughly, for the progress bar; 0 if unreadable."""
    try:
        with bundle.Reader(path) as reader:
            return sum(
                reader.size(bundle.blob_name(entry.id, i))
                for entry in reader.entries
                for i in range(entry.files)
            )
    except Exception:
        # Only the progress bar needs it: opening the bundle reports what is wrong with it.
        return 0


def _open_into_register(
    secret_key: bytes, out: Path, force: bool, bundles: tuple[Path, ...]
) -> tuple[list[cases.Outcome], list[str]]:
    """Open each bundle, add what it opened to the register in one transaction, then the views."""
    conn = register.connect(out, create=True)
    try:
        outcomes: list[cases.Outcome] = []
        problems: list[str] = []
        total = sum(_blob_bytes(path) for path in bundles)
        with progress_bar(f"Opening {len(bundles)} bundle(s)", total) as advance:
            for path in bundles:
                opened = []
                for outcome in cases.open_bundle(path, secret_key, out, force, advance):
                    outcomes.append(outcome)
                    click.echo(outcome.line(), err=outcome.status != cases.OPENED)
                    for warning in outcome.warnings:
                        click.echo(f"warning  case {outcome.case}: {warning}", err=True)
                    if outcome.status == cases.OPENED and outcome.path is not None:
                        opened.append(outcome.path.parent.relative_to(out.resolve()).as_posix())
                # The whole bundle enters the register, or none of it does.
                problems += register.add_folders(conn, out, opened)
        # Folders the register lacks (a run stopped between opening and registering, or
        # written by hand) are caught up, so the register always covers every case folder.
        problems += register.add_folders(conn, out, register.unregistered_folders(conn, out))
        try:
            register_view.write_views(conn, out)
        except OSError as exc:
            problems.append(f"index.html and cases.csv could not be written: {exc}")
        return outcomes, problems
    finally:
        conn.close()


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
        with register.locked(out, wait):
            outcomes, problems = _open_into_register(secret_key, out, force, bundles)
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
    for line in cases.summary_lines(outcomes):
        click.echo(line, err=True)
    bad = any(o.status in (cases.FAILED, cases.REFUSED) or o.warnings for o in outcomes)
    if bad or problems:
        click.get_current_context().exit(1)
