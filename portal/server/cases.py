"""Receipts and the cases they open: a new receipt, a ticket's case, finding a case, replies.

A receipt is the only key to its case: the database keeps what it derives (a lookup value and
a reply key), never the receipt. A report sealed in the browser has its receipt made before it
is sealed, inside a ticket (see `tickets`), so that its reply key is sealed in its manifest too;
the case opens when the sealed report arrives with the ticket. How the sealed files themselves
are stored is `intake`'s part.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.formats import bundle, crypto, envelope, receipts
from portal.formats.fields import N_
from portal.server import offload, storage, tickets
from portal.server.models import Case
from portal.server.services import Services, today

REPLY_KIND = "reply"


class Refused(Exception):
    """An upload that breaks the rules; the message is for the person who sent it.

    `message` is English marked for translation, with `%(name)s` placeholders filled from
    `params`: the page shows it in its own language, and `str()` gives the English.
    """

    status = 400  # of the page that says so

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params


class TicketRefused(Refused):
    """The ticket of a browser-sealed report is damaged, from another session or too old."""


class TicketUsed(Refused):
    """The ticket of a browser-sealed report already made a case."""


TOO_MANY_FILES = N_("At most %(count)s files can be sent at once.")
TICKET_USED = N_("This report was already received; it was not stored a second time.")


class QuotaExceeded(Exception):
    """The storage quota is reached; new submissions wait until the team collects."""


class NoSuchCase(Exception):
    """No case matches the receipt."""


@dataclass(frozen=True)
class Reply:
    """A reply from the team, opened with the submitter's receipt."""

    day: str
    message: str


def check_quota(services: Services, session: Session, incoming: int) -> None:
    """Refuse when storing `incoming` more bytes would pass the configured quota.

    What waits in staging and kept folders counts too: it is on the same disk, and forms
    that come back with a problem would otherwise fill it unseen.
    """
    quota = services.config.storage_quota_bytes
    if quota is None:
        return
    used = services.storage_used(session) + services.store.staging_bytes()
    if used + max(incoming, 0) > quota:
        raise QuotaExceeded


def derive_receipt(receipt: str, secret: bytes, opslimit: int, memlimit: int) -> receipts.Derived:
    """`receipts.derive` as the sites run it: one per core at a time, off the event loop."""
    # Each derivation holds its whole memory cost while it runs, and more of them at once
    # than there are cores is no faster: they take turns, off the event loop under gevent, so
    # a flood of reports costs at most one memory cost per core and stalls nobody else.
    return receipts.derive(receipt, secret, opslimit, memlimit, run=offload.cpu_bound)


def new_receipt(services: Services) -> tuple[str, receipts.Derived]:
    """A fresh receipt and what it derives (the costly Argon2id step)."""
    receipt = receipts.new_receipt()
    opslimit, memlimit = services.config.receipt_limits
    return receipt, derive_receipt(receipt, services.installation_secret, opslimit, memlimit)


def add_case(session: Session, lookup: bytes, reply_public_key: bytes) -> Case:
    """A new case for a receipt's lookup value and reply key (added to the session only)."""
    case = Case(
        id=storage.new_id(),
        receipt_lookup=lookup,
        reply_public_key=reply_public_key,
        created_day=today(),
    )
    session.add(case)
    return case


def new_case(services: Services, session: Session) -> tuple[str, Case, receipts.Derived]:
    """A fresh receipt and the case it opens (added to the session, not committed)."""
    receipt, derived = new_receipt(services)
    return receipt, add_case(session, derived.lookup, derived.reply_public_key), derived


def prepare_report(services: Services, binding: bytes) -> tuple[str, bytes]:
    """A ticket for a report about to be sealed in the browser, and the reply key to seal in it.

    Nothing is stored: the receipt lives in the ticket until the sealed report arrives with it.
    """
    receipt, derived = new_receipt(services)
    ticket = tickets.issue(services.installation_secret, receipt, derived, binding)
    return ticket, derived.reply_public_key


def case_from_ticket(
    services: Services,
    session: Session,
    ticket: str,
    binding: bytes,
    max_age: float | None = tickets.MAX_AGE_SECONDS,
) -> tuple[str, Case]:
    """The receipt and new case a ticket stands for; refused when it cannot be used (again)."""
    try:
        opened = tickets.open_ticket(services.installation_secret, ticket, binding, max_age=max_age)
    except tickets.TicketError as exc:
        raise TicketRefused(str(exc)) from exc
    # The lookup value is unique to a case: a ticket already used finds the case it made.
    if session.scalar(select(Case.id).where(Case.receipt_lookup == opened.lookup)) is not None:
        raise TicketUsed(TICKET_USED)
    return opened.receipt, add_case(session, opened.lookup, opened.reply_public_key)


def find_case(services: Services, session: Session, receipt: str) -> tuple[Case, receipts.Derived]:
    """The case a receipt opens; NoSuchCase (also for input that is no receipt at all)."""
    opslimit, memlimit = services.config.receipt_limits
    try:
        derived = derive_receipt(receipt, services.installation_secret, opslimit, memlimit)
    except receipts.ReceiptError as exc:
        raise NoSuchCase(str(exc)) from exc
    case = session.scalar(select(Case).where(Case.receipt_lookup == derived.lookup))
    if case is None:
        raise NoSuchCase("No case matches this receipt.")
    return case, derived


def replies(services: Services, case: Case, derived: receipts.Derived) -> list[Reply]:
    """The team's replies to a case, opened in memory with the receipt's reply key."""
    found = []
    for submission in case.submissions:
        if submission.kind != REPLY_KIND or submission.recipient != "submitter":
            continue
        with services.store.open(submission.id, bundle.STORED_MANIFEST) as handle:
            sealed = handle.read()
        try:
            manifest = envelope.open_manifest(sealed, derived.reply_secret_key)
        except crypto.CryptoError:
            continue
        message = manifest.fields.get("message", "")
        found.append(
            Reply(
                submission.received_day.isoformat(),
                message if isinstance(message, str) else "\n".join(message),
            )
        )
    return found
