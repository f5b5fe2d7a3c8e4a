"""`portal sealer`: make the offline sealer, one HTML file that seals cases with no install."""

from __future__ import annotations

from pathlib import Path

import click

from portal.cli.keys import EXISTING_FILE, NEW_FILE
from portal.formats import crypto, durable, receipts
from portal.offline import sealer


@click.command()
@click.option(
    "--to",
    "to_key",
    required=True,
    type=EXISTING_FILE,
    help="The team's public key file (team.pub).",
)
@click.option("--out", required=True, type=NEW_FILE, help="The HTML file to write (sealer.html).")
@click.option(
    "--fingerprint",
    "expected",
    metavar="FINGERPRINT",
    help="Refuse the key unless it has this fingerprint (as the team publishes it).",
)
def sealer_command(to_key: Path, out: Path, expected: str | None) -> None:
    """Make the offline sealer for the team's key: one HTML file, opened from disk, no network."""
    try:
        public_key = crypto.load_public_key(to_key)
        sealer.check_fingerprint(public_key, expected)
        site = receipts.read_published(to_key.read_text(encoding="utf-8"))
        data = sealer.build(public_key, site=site)
    except (crypto.CryptoError, sealer.SealerError, receipts.ReceiptError) as exc:
        raise click.ClickException(str(exc)) from exc
    if out.exists() or out.is_symlink():
        raise click.ClickException(f"{out} already exists; nothing was overwritten.")
    try:
        with durable.replacing(out, mode=0o644, overwrite=False, folder_sync_required=False) as f:
            f.write(data)
    except OSError as exc:
        raise click.ClickException(f"{out} cannot be written: {exc}.") from exc
    click.echo(f"{out}  ({len(data)} bytes)")
    click.echo(f"Team key fingerprint: {crypto.fingerprint(public_key)}")
    click.echo(f"SHA-256 of the sealer: {sealer.sha256(data)}")
    if site is None:
        click.echo(
            "This key file does not publish the site's receipt salt and cost, so the site will "
            "make each case's receipt at upload (with team.pub from the site's key page, the "
            "sealer makes receipts itself and seals each reply key inside the case).",
            err=True,
        )
