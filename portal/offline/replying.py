"""The team's reply to a case, sealed on the offline machine for the submitter and the team.

`portal reply` reads the case folder that `portal decrypt` made, seals only to the reply key
pinned for the case (`replykeys`), and writes a reply bundle holding two copies: one sealed to
the submitter's reply key, which the server shows behind their receipt, and one to the team's
own key, for its records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from portal.formats import bundle, crypto, days, envelope, questionnaire
from portal.offline import replykeys


class ReplyError(Exception):
    """A reply cannot be sealed as asked; the message says why, for the team."""


@dataclass(frozen=True)
class CaseRecord:
    """What a case folder's report.json says of the case a reply answers."""

    case: str
    locale: str
    reply_key: replykeys.ReplyKey
    fields: dict[str, object]

    def no_contact(self) -> bool:
        """Whether the submitter said they do not wish to be contacted."""
        return self.fields.get("consent_contact") == "no"


def read_case(folder: Path) -> CaseRecord:
    """The case id, language, reply key and fields recorded in a case folder's report.json."""
    path = folder / "report.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ReplyError(
            f"{folder} holds no report.json: give a case folder made by `portal decrypt`."
        ) from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ReplyError(f"{path} cannot be read: {exc}.") from exc
    if not isinstance(record, dict):
        raise ReplyError(f"{path} is not a case record.")
    case, locale = record.get("case"), record.get("locale", "en")
    if not isinstance(case, str) or not bundle.ID_PATTERN.match(case):
        raise ReplyError(f"{path} names no valid case id.")
    if not isinstance(locale, str) or not 0 < len(locale) <= 16:
        locale = "en"
    reply_key = record.get("reply_public_key")
    if reply_key is None:
        raise ReplyError(
            f"Case {case} has no reply key: it did not come through the portal's form with a "
            "receipt (a relay's sealed case, for instance), so there is no one to reply to "
            "through the portal. Use the channel the relay or the submitter gave, if any."
        )
    try:
        public_key = crypto.b64decode(str(reply_key), crypto.KEY_BYTES)
    except crypto.CryptoError as exc:
        raise ReplyError(f"The reply key in {path} is malformed.") from exc
    source = record.get("reply_public_key_from")
    found = replykeys.ReplyKey(
        public_key, source if source in replykeys.SOURCES else replykeys.INDEX
    )
    fields = record.get("fields")
    return CaseRecord(case, locale, found, fields if isinstance(fields, dict) else {})


def pin_key(folder: Path, case: str, found: replykeys.ReplyKey) -> tuple[replykeys.Pin, bool]:
    """The reply key pinned for the case, which report.json must name too, and whether it was
    pinned just now: a case folder opened before pins were kept has its key pinned now."""
    try:
        pin, new = replykeys.check(folder, case, found, "an earlier run", "its report.json")
    except replykeys.PinError as exc:
        raise ReplyError(f"Case {case}: {exc}. No reply was sealed.") from exc
    if new:
        try:
            replykeys.write_pin(folder, pin)
        except OSError as exc:
            raise ReplyError(
                f"The reply key of case {case} could not be pinned in {folder}: {exc}."
            ) from exc
    return pin, new


def read_message_file(path: Path) -> str:
    """The reply's text from a UTF-8 file (a byte order mark is dropped)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplyError(f"{path} cannot be read as UTF-8: {exc}.") from exc


def check_message(message: str) -> str:
    """The reply's text with LF line ends, checked like the submitter's own text."""
    message = message.replace("\r\n", "\n").replace("\r", "\n")
    if not message.strip():
        raise ReplyError("The reply is empty.")
    if len(message) > questionnaire.DESCRIPTION_MAX:
        raise ReplyError(
            f"The reply is {len(message)} characters; the limit is {questionnaire.DESCRIPTION_MAX}."
        )
    return message


def seal_reply(
    out: Path, case: str, locale: str, message: str, submitter_key: bytes, team_key: bytes
) -> list[bundle.Entry]:
    """Write a reply bundle: one copy sealed to the submitter's reply key, one to the team
    (ReplyError, in one line, if it cannot be written)."""
    entries, members = [], []
    try:
        manifest = envelope.Manifest(
            kind="reply", sealed_by="relay-tool", locale=locale, fields={"message": message}
        )
        day = days.today_iso()
        for recipient, public_key in (("submitter", submitter_key), ("team", team_key)):
            # The submitter's entry names its key, so the server can refuse a reply sealed to
            # another key (a case folder from another server, say) before storing it.
            declared = crypto.b64encode(public_key) if recipient == "submitter" else None
            entry = bundle.Entry(bundle.new_id(), case, "reply", day, 0, recipient, declared)
            sealed = envelope.seal_manifest(manifest, public_key)
            entries.append(entry)
            members.append(bundle.bytes_member(bundle.manifest_name(entry.id), sealed))
        bundle.write_file(out, entries, members)
    except (bundle.WriteError, crypto.CryptoError) as exc:
        raise ReplyError(str(exc)) from exc
    except OSError as exc:
        raise ReplyError(f"{out} could not be written: {exc}.") from exc
    return entries
