"""`portal reply`: seal the team's reply to a case, for the submitter and for the team's records."""

from __future__ import annotations

from pathlib import Path

import click

from portal.cli.keys import EXISTING_FILE, NEW_FILE, open_private_key
from portal.offline import replying, replykeys


def read_message(message: str | None, message_file: Path | None) -> str:
    """The reply's text, from --message or --file, checked like the submitter's own text."""
    if (message is None) == (message_file is None):
        raise click.UsageError("Give the reply with exactly one of --message or --file.")
    if message_file is not None:
        message = replying.read_message_file(message_file)
    assert message is not None
    return replying.check_message(message)


@click.command()
@click.option(
    "--key",
    "key_path",
    required=True,
    type=EXISTING_FILE,
    help="The team's private key file (its public key seals the team's copy).",
)
@click.option(
    "--passphrase-file",
    type=EXISTING_FILE,
    help="Read the passphrase from this file instead of asking for it.",
)
@click.option(
    "--case",
    "case_folder",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The case folder made by `portal decrypt` (it holds report.json).",
)
@click.option("--out", required=True, type=NEW_FILE, help="The sealed reply file to write.")
@click.option("--message", help="The reply's text.")
@click.option(
    "--file", "message_file", type=EXISTING_FILE, help="A UTF-8 text file holding the reply."
)
def reply(
    key_path: Path,
    passphrase_file: Path | None,
    case_folder: Path,
    out: Path,
    message: str | None,
    message_file: Path | None,
) -> None:
    """Seal a reply to a case, to upload on the staff site."""
    try:
        text = read_message(message, message_file)
        record = replying.read_case(case_folder)
        case = record.case
        if out.exists():
            raise click.ClickException(f"{out} already exists; nothing was overwritten.")
        pin, new = replying.pin_key(case_folder, case, record.reply_key)
    except replying.ReplyError as exc:
        raise click.ClickException(str(exc)) from exc
    if new:
        click.echo(
            f"Note: case {case} had no pinned reply key (its folder was opened before pins were "
            f"kept); the key in its report.json is pinned now.",
            err=True,
        )
    where = replykeys.describe(pin.source, pin.first_seen)
    click.echo(f"Reply key of case {case}: {replykeys.short(pin.key)}, {where}.", err=True)
    if record.no_contact():
        click.echo(
            "Note: the submitter said they do not wish to be contacted. They will see this "
            "reply only if they come back to the portal with their receipt.",
            err=True,
        )
    _, team_key = open_private_key(key_path, passphrase_file)
    try:
        replying.seal_reply(out, case, record.locale, text, pin.key, team_key)
    except replying.ReplyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{out}  (reply to case {case}: the submitter's copy and the team's copy)")
    click.echo("Upload it on the staff site's reply page.", err=True)
