"""Retention: sealed data leaves the server a set number of days after export, or after a
longer limit when it was never exported; leftovers of interrupted uploads go too."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import Case, Submission
from portal.services import Services, today

STALE_SECONDS = 24 * 3600


def delete_after(services: Services, submission: Submission) -> date:
    """The day from which `portal purge` deletes a submission."""
    config = services.config
    if submission.exported_day is not None:
        return submission.exported_day + timedelta(days=config.retention_days)
    return submission.received_day + timedelta(days=config.unexported_retention_days)


def due(services: Services, session: Session, on: date | None = None) -> list[Submission]:
    """Submissions whose retention has run out."""
    on = on or today()
    return [s for s in session.scalars(select(Submission)) if delete_after(services, s) <= on]


def delete(services: Services, session: Session, submissions: Sequence[Submission]) -> None:
    """Delete submissions (rows, then blobs) and cases left empty."""
    ids = [s.id for s in submissions]
    case_ids = {s.case_id for s in submissions}
    for submission in submissions:
        session.delete(submission)
    session.flush()
    for case in session.scalars(select(Case).where(Case.id.in_(case_ids))):
        if not case.submissions:
            session.delete(case)
    session.commit()
    _drop_old_pages(services)
    for submission_id in ids:
        services.store.delete(submission_id)


def _drop_old_pages(services: Services) -> None:
    """Let no copy of deleted rows outlive them in SQLite's write-ahead log.

    secure_delete zeroes deleted rows in the database file, but the log still holds the
    pages as they were until a checkpoint copies them back and truncates it. Best effort: a
    reader still open elsewhere can leave part of the log until the next checkpoint.
    """
    if services.engine.dialect.name != "sqlite":
        return
    with services.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def sweep(services: Services) -> int:
    """At start: remove every staging leftover and every blob folder without a row."""
    with services.sessions() as session:
        known = set(session.scalars(select(Submission.id)))
    return services.store.sweep(known)


def sweep_stale(services: Services) -> int:
    """While running: remove staging folders untouched for a day (abandoned forms)."""
    incoming = services.store.incoming
    if not incoming.exists():
        return 0
    removed = 0
    limit = time.time() - STALE_SECONDS
    for folder in incoming.iterdir():
        if folder.stat().st_mtime < limit:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
