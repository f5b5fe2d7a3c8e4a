"""`portal reply`: seal the team's reply to a case, for the submitter and for the team's records."""

from __future__ import annotations

import json
from pathlib import Path

import click

from portal.cli.keys import EXISTING_FILE, NEW_FILE, open_private_key
from portal.formats import bundle, crypto, days, envelope, questionnaire
from portal.offline import replykeys


def read_case(folder: Path) -> tuple[str, str, replykeys.ReplyKey, dict[str, object]]:
    """The case id, language, reply key and fields recorded in a case folder's report.json."""
    path = folder / "report.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise click.ClickException(
            f"{folder} holds no report.json: give a case folder made by `portal decrypt`."
        ) from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise click.ClickException(f"{path} cannot be read: {exc}.") from exc
    if not isinstance(record, dict):
        raise click.ClickException(f"{path} is not a case record.")
    case, locale = record.get("case"), record.get("locale", "en")
    if not isinstance(case, str) or not bundle.ID_PATTERN.match(case):
        raise click.ClickException(f"{path} names no valid case id.")
    if not isinstance(locale, str) or not 0 < len(locale) <= 16:
        locale = "en"
    reply_key = record.get("reply_public_key")
    if reply_key is None:
        raise click.ClickException(
            f"Case {case} has no reply key: it did not come through the portal's form with a "
            "receipt (a relay's sealed case, for instance), so there is no one to reply to "
            "through the portal. Use the channel the relay or the submitter gave, if any."
        )
    try:
        public_key = crypto.b64decode(str(reply_key), crypto.KEY_BYTES)
    except crypto.CryptoError as exc:
        raise click.ClickException(f"The reply key in {path} is malformed.") from exc
    source = record.get("reply_public_key_from")
    found = replykeys.ReplyKey(
        public_key, source if source in replykeys.SOURCES else replykeys.INDEX
    )
    fields = record.get("fields")
    return case, locale, found, fields if isinstance(fields, dict) else {}


def pinned_key(folder: Path, case: str, found: replykeys.ReplyKey) -> bytes:
    """The reply key pinned for the case, which report.json must name too; a case folder opened
    before pins were kept has its key pinned now."""
    try:
        pin, new = replykeys.check(folder, case, found, "an earlier run", "its report.json")
    except replykeys.PinError as exc:
        raise click.ClickException(f"Case {case}: {exc}. No reply was sealed.") from exc
    if new:
        try:
            replykeys.write_pin(folder, pin)
        except OSError as exc:
            raise click.ClickException(
                f"The reply key of case {case} could not be pinned in {folder}: {exc}."
            ) from exc
        click.echo(
            f"Note: case {case} had no pinned reply key (its folder was opened before pins were "
            f"kept); the key in its report.json is pinned now.",
            err=True,
        )
    where = replykeys.describe(pin.source, pin.first_seen)
    click.echo(f"Reply key of case {case}: {replykeys.short(pin.key)}, {where}.", err=True)
    return pin.key


def read_message(message: str | None, message_file: Path | None) -> str:
    """The reply's text, from --message or --file, checked like the submitter's own text."""
    if (message is None) == (message_file is None):
        raise click.UsageError("Give the reply with exactly one of --message or --file.")
    if message_file is not None:
        try:
            message = message_file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.ClickException(f"{message_file} cannot be read as UTF-8: {exc}.") from exc
    assert message is not None
    message = message.replace("\r\n", "\n").replace("\r", "\n")
    if not message.strip():
        raise click.ClickException("The reply is empty.")
    if len(message) > questionnaire.DESCRIPTION_MAX:
        raise click.ClickException(
            f"The reply is {len(message)} characters; the limit is {questionnaire.DESCRIPTION_MAX}."
        )
    return message


def seal_reply(
    out: Path, case: str, locale: str, message: str, submitter_key: bytes, team_key: bytes
) -> list[bundle.Entry]:
    """Write a reply bundle: one copy sealed to the submitter's reply key, one to the team."""
    manifest = envelope.Manifest(
        kind="reply", sealed_by="relay-tool", locale=locale, fields={"message": message}
    )
    day = days.today_iso()
    entries, members = [], []
    for recipient, public_key in (("submitter", submitter_key), ("team", team_key)):
        # The submitter's entry names its key, so the server can refuse a reply sealed to a key
        # that is not the case's (a case folder from another server, say) before storing it.
        declared = crypto.b64encode(public_key) if recipient == "submitter" else None
        entry = bundle.Entry(bundle.new_id(), case, "reply", day, 0, recipient, declared)
        sealed = envelope.seal_manifest(manifest, public_key)
        entries.append(entry)
        members.append(bundle.bytes_member(bundle.manifest_name(entry.id), sealed))
    bundle.write_file(out, entries, members)
    return entries


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
    text = read_message(message, message_file)
    case, locale, found, fields = read_case(case_folder)
    if out.exists():
        raise click.ClickException(f"{out} already exists; nothing was overwritten.")
    submitter_key = pinned_key(case_folder, case, found)
    if fields.get("consent_contact") == "no":
        click.echo(
            "Note: the submitter said they do not wish to be contacted. They will see this "
            "reply only if they come back to the portal with their receipt.",
            err=True,
        )
    _, team_key = open_private_key(key_path, passphrase_file)
    try:
        seal_reply(out, case, locale, text, submitter_key, team_key)
    except (bundle.WriteError, crypto.CryptoError) as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"{out} could not be written: {exc}.") from exc
    click.echo(f"{out}  (reply to case {case}: the submitter's copy and the team's copy)")
    click.echo("Upload it on the staff site's reply page.", err=True)
