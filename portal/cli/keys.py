"""`portal keygen` and `portal fingerprint`: the team's key pair, made and checked offline.

Also the passphrase prompts and the opening of the private key that `decrypt` and `reply`
share; what a passphrase's bytes are is `portal.offline.passphrases`'s.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from portal.formats import crypto
from portal.offline import passphrases

EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
NEW_FILE = click.Path(dir_okay=False, path_type=Path)


def _from_file(path: Path) -> str:
    try:
        return passphrases.read_passphrase_file(path)
    except passphrases.PassphraseError as exc:
        raise click.ClickException(str(exc)) from exc


def _strong_enough(text: str) -> str:
    try:
        return passphrases.check_strength(text)
    except passphrases.PassphraseError as exc:
        raise click.BadParameter(str(exc)) from exc


def new_passphrase(passphrase_file: Path | None) -> bytes:
    """Ask for a new passphrase twice (hidden), or read it from a file; refuse a short one."""
    if passphrase_file is not None:
        text = _from_file(passphrase_file)
        try:
            passphrases.check_strength(text)
        except passphrases.PassphraseError as exc:
            raise click.ClickException(f"In {passphrase_file}: {exc}") from exc
        return passphrases.passphrase_bytes(text)
    click.echo(f"Choose a passphrase for the private key. {passphrases.WHY_LONG}", err=True)
    text = click.prompt(
        "Passphrase",
        hide_input=True,
        confirmation_prompt="Type it again",
        value_proc=_strong_enough,
        err=True,
    )
    return passphrases.passphrase_bytes(text)


def existing_passphrase(passphrase_file: Path | None) -> bytes:
    """Ask once (hidden) for the passphrase of the private key, or read it from a file."""
    if passphrase_file is not None:
        return passphrases.passphrase_bytes(_from_file(passphrase_file))
    return passphrases.passphrase_bytes(
        click.prompt("Passphrase of the private key", hide_input=True, err=True)
    )


def open_private_key(key_path: Path, passphrase_file: Path | None) -> tuple[bytes, bytes]:
    """Read the private key file once, asking its passphrase once: (secret key, public key)."""
    try:
        public_key = crypto.private_key_file_public(key_path)
    except crypto.CryptoError as exc:
        raise click.ClickException(str(exc)) from exc
    passphrase = existing_passphrase(passphrase_file)
    click.echo("Opening the private key (this takes a few seconds)...", err=True)
    try:
        secret_key = crypto.read_private_key_file(key_path, passphrase)
    except crypto.WrongPassphrase as exc:
        raise click.ClickException(
            f"The passphrase does not open {key_path}. Nothing was changed; try again."
        ) from exc
    except crypto.CryptoError as exc:
        raise click.ClickException(str(exc)) from exc
    return secret_key, public_key


@click.command()
@click.option(
    "--private",
    "private_path",
    required=True,
    type=NEW_FILE,
    help="Where to write the private key file (kept on the offline machine).",
)
@click.option(
    "--public",
    "public_path",
    required=True,
    type=NEW_FILE,
    help="Where to write the public key file (published as keys/team.pub).",
)
@click.option(
    "--passphrase-file",
    type=EXISTING_FILE,
    help="Read the passphrase from this file instead of asking for it.",
)
def keygen(private_path: Path, public_path: Path, passphrase_file: Path | None) -> None:
    """Make the team's key pair: a passphrase-protected private key file and a public key file."""
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise click.ClickException(f"{path} already exists; nothing was overwritten.")
        if not path.parent.is_dir():
            raise click.ClickException(f"The folder {path.parent} does not exist.")
    if private_path.resolve() == public_path.resolve():
        raise click.UsageError("--private and --public must be two different files.")
    passphrase = new_passphrase(passphrase_file)
    click.echo(
        "Protecting the private key with the passphrase (Argon2id: about a gigabyte of memory "
        "and a few seconds)...",
        err=True,
    )
    secret_key, public_key = crypto.generate_keypair()
    private_text = crypto.private_key_file_text(secret_key, passphrase)
    public_text = crypto.format_public_key_file(public_key, datetime.now(UTC).date())
    try:
        crypto.write_new_file(private_path, private_text.encode("utf-8"), 0o600)
    except OSError as exc:
        raise click.ClickException(f"{private_path} could not be written: {exc}.") from exc
    try:
        crypto.write_new_file(public_path, public_text.encode("utf-8"), 0o644)
    except OSError as exc:
        # A private key whose public half was never written is of no use to anyone.
        private_path.unlink(missing_ok=True)
        raise click.ClickException(
            f"{public_path} could not be written ({exc}); no key pair was kept."
        ) from exc
    click.echo(f"Private key file: {private_path} (keep it on this offline machine only)")
    click.echo(f"Public key file:  {public_path} (publish it: keys/team.pub on the server)")
    click.echo(f"Fingerprint:      {crypto.fingerprint(public_key)}")
    click.echo(
        "Write the fingerprint down and share it through a channel independent of the portal, "
        "so that submitters and relays can check the key they are shown.",
        err=True,
    )


@click.command("fingerprint")
@click.argument("path", type=EXISTING_FILE)
def fingerprint_command(path: Path) -> None:
    """Print the fingerprint of a public or private key file (no passphrase needed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path} cannot be read as a key file: {exc}.") from exc
    try:
        if crypto.PRIVATE_KEY_FORMAT in text:
            public_key = crypto.private_key_file_public(path)
            kind = (
                "private key file: the public key recorded in it (the passphrase was not "
                "asked, so this does not prove the secret key inside matches)"
            )
        else:
            public_key = crypto.parse_public_key_file(text)
            kind = "public key file"
    except crypto.CryptoError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(crypto.fingerprint(public_key))
    click.echo(f"Read from {path}, a {kind}.", err=True)
