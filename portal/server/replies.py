"""Checking and storing a reply file made offline by `portal reply`, uploaded on the staff site.

A reply file is a bundle v1 holding two entries of kind "reply" for one case and no files:
the submitter's copy, sealed to the case's reply public key, which the follow-up page opens
with the receipt; and the team's copy, sealed to the team key, which comes back to the
offline machine with the next bundle.

What the server can check, it checks: the bundle's layout, the two entries and their
recipients, that the case still exists, that each sealed manifest has a length an honest
sealer produces, that the two copies are not the same bytes, and that this reply was not
uploaded before; and, when the file says which key its submitter copy is sealed to (the
index entry's `reply_public_key`), that this is the case's reply key.

What it cannot check is the key each copy is really sealed to. A sealed box
(`crypto_box_seal`) is an ephemeral public key and a ciphertext; only the recipient's private
key can tell whether it opens. The server holds neither the team's private key nor the
submitter's reply private key (that one is derived from the receipt, which the server never
keeps). A copy sealed to a key other than the one its index declares is therefore stored, and
the submitter sees nothing new. On the offline machine, `portal reply` seals only to the reply
key `portal decrypt` pinned for the case the first time it saw one (see `offline.replykeys`), so
a server that later names another key in a bundle index cannot redirect the team's replies.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.formats import bundle, crypto, envelope
from portal.server import audit, storage
from portal.server.models import Case, Submission
from portal.server.services import Services, today

KIND = "reply"
RECIPIENTS = ("submitter", "team")
# Two sealed manifests of at most a megabyte each, and tar's headers around them.
MAX_FILE_BYTES = 2 * (envelope.MAX_MANIFEST_BYTES + 64 * 1024)


class Refused(Exception):
    """A reply file that cannot be stored; the message says why, for the staff member."""


@dataclass(frozen=True)
class Stored:
    """A reply stored for a case: its two rows."""

    case_id: str
    submitter_copy: Submission
    team_copy: Submission


@dataclass(frozen=True)
class ReplyFile:
    """What a reply file holds: its case, its two sealed copies by recipient, and the reply key
    its submitter copy declares (if it declares one)."""

    case_id: str
    copies: dict[str, bytes]
    declared_key: bytes | None


def read(path: Path) -> ReplyFile:
    """A reply file, after every check that needs neither a key nor the database; Refused says
    what is wrong."""
    try:
        with bundle.Reader(path) as reader:
            entries = reader.entries
            _check_entries(entries)
            copies, declared = {}, None
            for entry in entries:
                assert entry.recipient is not None
                copies[entry.recipient] = reader.read_manifest(entry)
                if entry.recipient == "submitter" and entry.reply_public_key is not None:
                    declared = crypto.b64decode(entry.reply_public_key, crypto.KEY_BYTES)
    except crypto.CryptoError as exc:  # EnvelopeError and BundleError among them
        raise Refused(f"This is not a reply file made by “portal reply”: {exc}") from exc
    if hmac.compare_digest(copies["submitter"], copies["team"]):
        raise Refused(
            "The submitter's copy and the team's copy are the same bytes, so at least "
            "one of them is sealed to the wrong key. Make the reply again with "
            "“portal reply”."
        )
    return ReplyFile(entries[0].case, copies, declared)


def _check_entries(entries: list[bundle.Entry]) -> None:
    if len(entries) != len(RECIPIENTS) or any(e.kind != KIND for e in entries):
        kinds = ", ".join(e.kind for e in entries) or "nothing"
        raise Refused(
            "A reply file holds exactly two sealed copies of one reply, one for the "
            f"submitter and one for the team; this file holds: {kinds}. A bundle "
            "downloaded from this site is not a reply."
        )
    if sorted(str(e.recipient) for e in entries) != sorted(RECIPIENTS):
        raise Refused(
            "A reply file holds one copy for the submitter and one for the team; "
            "this one does not say which copy is whose."
        )
    if entries[0].case != entries[1].case:
        raise Refused("The two copies in this reply file name different cases.")
    if any(e.files for e in entries):
        raise Refused("A reply carries no attached files; this one lists some.")


def _already_uploaded(services: Services, case: Case, sealed: bytes, recipient: str) -> bool:
    for submission in case.submissions:
        if submission.kind != KIND or submission.recipient != recipient:
            continue
        try:
            with services.store.open(submission.id, bundle.STORED_MANIFEST) as handle:
                if hmac.compare_digest(handle.read(), sealed):
                    return True
        except OSError:
            continue
    return False


def accept(services: Services, session: Session, path: Path, staff_name: str) -> Stored:
    """Check a reply file and store its two copies as two rows of the case, durably, with the
    audit record of who uploaded it."""
    found = read(path)
    case_id, copies = found.case_id, found.copies
    case = session.get(Case, case_id)
    if case is None:
        raise Refused(
            f"Case {case_id} is not on this server: it was deleted (by the team, or after its "
            "retention period), or the reply was made from a bundle of another server. The "
            "submitter can no longer be reached through the portal; nothing was stored."
        )
    if found.declared_key is not None and not hmac.compare_digest(
        found.declared_key, case.reply_public_key
    ):
        raise Refused(
            f"The submitter's copy is sealed to another key than case {case_id}'s reply key, "
            "so the submitter could not open it. Make the reply again with “portal reply” from "
            "the case folder of a bundle downloaded from this server."
        )
    if any(_already_uploaded(services, case, copies[r], r) for r in RECIPIENTS):
        raise Refused(
            f"This reply to case {case_id} was uploaded already; nothing was stored twice."
        )
    return _store(services, session, case, copies, staff_name)


def _store(
    services: Services, session: Session, case: Case, copies: dict[str, bytes], staff_name: str
) -> Stored:
    """Both copies durable on disk first, then both rows in one commit: never half a reply."""
    last = session.scalar(select(func.max(Submission.seq)).where(Submission.case_id == case.id))
    day = today()
    rows = []
    try:
        for offset, recipient in enumerate(RECIPIENTS, start=1):
            staging = services.store.stage()
            staging.write(bundle.STORED_MANIFEST, copies[recipient])
            submission_id = storage.new_id()
            size = services.store.commit(staging, submission_id, day)
            rows.append(
                Submission(
                    id=submission_id,
                    case_id=case.id,
                    seq=(last or 0) + offset,
                    kind=KIND,
                    # `portal reply` seals offline, with the same tool family as the relays'.
                    sealed_by="relay-tool",
                    source="staff",
                    recipient=recipient,
                    received_day=day,
                    file_count=0,
                    size_bytes=size,
                )
            )
        session.add_all(rows)
        audit.record(session, staff_name, "reply", "2 sealed copies (submitter, team)")
        session.commit()
    except BaseException:
        session.rollback()
        for row in rows:
            services.store.delete(row.id)
        raise
    return Stored(case.id, rows[0], rows[1])
