"""Export: sealed submissions as a bundle v1 stream, marked exported only once fully sent.

Used by `portal export` (`export_file`) and by the staff site's download. The bundle is
produced as a stream of tar blocks from the blob store, so its size never matters to memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.formats import bundle, crypto, durable
from portal.server.models import Submission
from portal.server.services import Services, opened, today

# Submitter copies of replies stay on the server for the follow-up page; the team gets its own.
EXPORTABLE = (Submission.recipient.is_(None)) | (Submission.recipient == "team")


def pending(session: Session) -> list[Submission]:
    """Submissions not yet exported, in the order they arrived."""
    return list(
        session.scalars(
            select(Submission)
            .where(Submission.exported_day.is_(None), EXPORTABLE)
            .order_by(Submission.received_day, Submission.case_id, Submission.seq)
        )
    )


def all_exportable(session: Session) -> list[Submission]:
    """Every submission the team may take, exported or not."""
    return list(
        session.scalars(
            select(Submission)
            .where(EXPORTABLE)
            .order_by(Submission.received_day, Submission.case_id, Submission.seq)
        )
    )


def entry(submission: Submission) -> bundle.Entry:
    """The bundle index entry of a submission."""
    reply_key = None
    if submission.kind != "reply":
        reply_key = crypto.b64encode(submission.case.reply_public_key)
    return bundle.Entry(
        submission.id,
        submission.case_id,
        submission.kind,
        submission.received_day.isoformat(),
        submission.file_count,
        submission.recipient,
        reply_key,
    )


def stream(services: Services, submissions: Sequence[Submission]) -> Iterator[bytes]:
    """The bundle of `submissions`, as tar blocks."""
    entries = [entry(s) for s in submissions]
    members: list[bundle.Member] = []
    for e in entries:
        members += bundle.members_of(e, services.store.path(e.id))
    return bundle.stream(entries, members)


def mark_exported(session: Session, ids: Sequence[str], day: date | None = None) -> None:
    """Record that these submissions left the server (on this day)."""
    day = day or today()
    for submission in session.scalars(select(Submission).where(Submission.id.in_(list(ids)))):
        submission.exported_day = day
    session.commit()


class ExportError(Exception):
    """A bundle cannot be written where asked; the message says why."""


def export_file(env: Mapping[str, str], out: Path, everything: bool) -> int:
    """Write a bundle of the submissions not yet exported (every one, with `everything`) to the
    new file `out` and mark them exported; how many. ConfigError or ExportError when it cannot.
    """
    if out.exists():
        raise ExportError(f"{out} exists; choose a new file name.")
    if not out.parent.is_dir():
        raise ExportError(f"The folder {out.parent} does not exist.")
    with opened(env) as services, services.sessions() as session:
        chosen = (all_exportable if everything else pending)(session)
        # The bundle's name is durable before anything is marked exported: retention counts
        # from that mark. A temporary name of its own keeps an interrupted export no obstacle.
        try:
            with durable.replacing(out, overwrite=False) as handle:
                for block in stream(services, chosen):
                    handle.write(block)
        except (OSError, bundle.BundleError) as exc:
            raise ExportError(
                f"The bundle could not be written ({exc}); nothing was marked exported."
            ) from exc
        mark_exported(session, [s.id for s in chosen])
    return len(chosen)


__all__ = [
    "ExportError",
    "all_exportable",
    "entry",
    "export_file",
    "mark_exported",
    "pending",
    "stream",
]
