"""Storing a resumable upload of a browser-sealed envelope once every blob is whole.

The same end as every other path in `intake`: a report opens the case its ticket stands
for, a follow-up joins its case, the files are made durable, then the row is committed.
"""

from __future__ import annotations

import hmac

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.server import intake, resumable
from portal.server.models import Case, Submission
from portal.server.services import Services


def check_ticket(services: Services, session: Session, ticket: str, binding: bytes) -> None:
    """Refuse, before a resumable upload begins, a ticket that could not make its case."""
    intake.case_from_ticket(services, session, ticket, binding)
    # Only checked: the case is made when the upload is whole.
    session.rollback()


def accept_upload(
    services: Services,
    session: Session,
    upload: resumable.Upload,
    *,
    ticket: str = "",
    binding: bytes = b"",
) -> tuple[str | None, Submission]:
    """Store a resumable upload once every blob is whole, as a one-request sealed upload is.

    A report's ticket must be the one the upload began with; its age was checked then.
    """
    plan = upload.plan
    receipt = None
    if plan.kind == "report":
        if plan.ticket is None or not hmac.compare_digest(
            resumable.ticket_digest(ticket), plan.ticket
        ):
            raise intake.TicketRefused("not this upload's ticket")
        receipt, case = intake.case_from_ticket(services, session, ticket, binding, max_age=None)
    else:
        found = session.get(Case, plan.case_id or "")
        if found is None:
            raise intake.Refused("The case of this upload no longer exists on this site.")
        case = found
    with upload.finishing() as staging:
        try:
            submission = intake.store_staged(
                services,
                session,
                staging,
                case,
                kind=plan.kind,
                sealed_by="browser",
                source="browser",
                file_count=len(plan.chunks),
            )
        except IntegrityError:
            if receipt is None:
                raise
            raise intake.TicketUsed(intake.TICKET_USED) from None
    return receipt, submission
