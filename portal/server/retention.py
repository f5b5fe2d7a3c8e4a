"""Retention: sealed data leaves the server a set number of days after export, or after a
longer limit when it was never exported; leftovers of interrupted uploads go too. What stays is
settled once its day is over (`server.settling`), so the disk keeps no hour of its arrival.

Abandoned staging (an upload cut off for good, attachments kept for a form that never came
back) is swept by `portal purge` and, so that a flood of such forms cannot wait a day for the
timer, by the public site itself at most once an hour (`init_app`).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.server import resumable, settling, storage
from portal.server.models import Case, Submission
from portal.server.services import Services, opened, today

if TYPE_CHECKING:
    # Only the sites hand their app in; the server commands run without the web stack.
    from flask import Flask, Response

log = logging.getLogger("portal")

STALE_SECONDS = 24 * 3600
SWEEP_EVERY_SECONDS = 3600


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


class Purged(NamedTuple):
    """What one `portal purge` did."""

    deleted: int  # submissions past retention (on a dry run: that would be)
    removed: int  # abandoned uploads and kept attachments
    settled: int  # submissions of earlier days rewritten into new inodes


def purge(env: Mapping[str, str], dry_run: bool = False) -> Purged:
    """`portal purge`: delete the submissions past retention, then abandoned uploads, then
    settle what stays. A dry run only counts what would be deleted. ConfigError when the
    services cannot be loaded.
    """
    with opened(env) as services:
        with services.sessions() as session:
            past = due(services, session)
            if dry_run:
                return Purged(len(past), 0, 0)
            delete(services, session, past)
        removed = sweep_stale(services)
        settled = settling.settle(services.store)
    return Purged(len(past), removed, settled)


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
    """While running: remove staging folders untouched for a day (uploads cut off for good),
    kept folders older than the token that could claim them, and resumable uploads (and their
    finished markers) untouched for `PORTAL_UPLOAD_EXPIRY_HOURS`."""
    now = time.time()
    store = services.store
    expiry = services.config.upload_expiry_hours * 3600
    return (
        _remove_older(store.incoming, now - STALE_SECONDS)
        + _remove_older(store.kept, now - storage.KEPT_MAX_AGE_SECONDS)
        + resumable.Uploads(store.uploads).sweep(expiry, now)
    )


def _remove_older(folder: Path, limit: float) -> int:
    if not folder.exists():
        return 0
    removed = 0
    for item in folder.iterdir():
        try:
            old = item.is_dir() and item.stat().st_mtime < limit
        except FileNotFoundError:  # claimed or removed meanwhile
            continue
        if old:
            shutil.rmtree(item, ignore_errors=True)
            removed += 1
    return removed


class HourlySweep:
    """`sweep_stale` at most once an hour in this process."""

    def __init__(self, services: Services) -> None:
        """Sweep the staging of `services`; the first request of the process sweeps."""
        self._services = services
        self._lock = threading.Lock()
        self._next = 0.0

    def due(self) -> bool:
        """Whether a sweep is due now; if so, the next is an hour away (whoever asks)."""
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                return False
            self._next = now + SWEEP_EVERY_SECONDS
            return True

    def run(self) -> None:
        """Sweep; a failure is logged and waits for the next hour."""
        try:
            sweep_stale(self._services)
        except OSError as exc:
            log.warning("stale staging sweep failed: %s", type(exc).__name__)


def init_app(app: Flask) -> None:
    """Sweep abandoned staging from the site's own requests, at most once an hour per process.

    From requests rather than a timer or a thread of the serving process: it works under any
    WSGI server (`portal.wsgi:public`), needs no unit of its own, and keeps no time on disk.
    Staging only grows through requests, so a site with no requests has nothing new to sweep.
    The sweep runs once the response has been sent, so nobody's page waits for it.
    """
    sweeper = HourlySweep(app.extensions["portal"])
    app.extensions["portal.sweep"] = sweeper

    @app.after_request
    def _sweep_now_and_then(response: Response) -> Response:
        if sweeper.due():
            response.call_on_close(sweeper.run)
        return response
