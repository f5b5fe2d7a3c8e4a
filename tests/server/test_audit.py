"""The audit log: staff actions by day, with counts, never submitter data or ids."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from flask import Flask
from sqlalchemy.orm import Session
from test_staff_helpers import services_of

from portal.server import audit
from portal.server.models import AuditEvent


@pytest.fixture
def session(staff_app: Flask) -> Iterator[Session]:
    """A session on the test deployment's database."""
    with services_of(staff_app).sessions() as opened:
        yield opened


def test_record_keeps_day_name_action_and_detail(session: Session) -> None:
    event = audit.record(session, "amina", "export", audit.submissions(3, 5 * 1024 * 1024))
    session.commit()
    assert (event.day, event.staff_name, event.action, event.detail) == (
        date.today(),
        "amina",
        "export",
        "3 submissions, 5.2 MB",
    )
    # The model has no column for a time of day, an address or a submission.
    assert set(AuditEvent.__table__.columns.keys()) == {
        "id",
        "day",
        "staff_name",
        "action",
        "detail",
    }


def test_unknown_actions_are_a_programming_error(session: Session) -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(session, "amina", "peeked")


def test_long_values_are_cut_to_the_columns(session: Session) -> None:
    event = audit.record(session, "n" * 100, "delete", "d" * 1000)
    session.commit()
    assert len(event.staff_name) == 64
    assert len(event.detail) == audit.MAX_DETAIL


def test_recent_is_newest_first_and_pages(session: Session) -> None:
    for n in range(5):
        audit.record(session, f"s{n}", "login")
    session.commit()
    assert [e.staff_name for e in audit.recent(session, 2)] == ["s4", "s3"]
    assert [e.staff_name for e in audit.recent(session, 2, offset=4)] == ["s0"]
    assert audit.count(session) == 5


@pytest.mark.parametrize(
    ("n", "size", "text"),
    [
        (1, None, "1 submission"),
        (2, 0, "2 submissions, 0 bytes"),
        (1, 999, "1 submission, 999 bytes"),
        (1, 1536, "1 submission, 1.5 kB"),
        (7, 3 * 1000**3, "7 submissions, 3.0 GB"),
    ],
)
def test_submission_counts(n: int, size: int | None, text: str) -> None:
    assert audit.submissions(n, size) == text


def test_every_action_has_a_label() -> None:
    assert all(label and label[0].isupper() for label in audit.ACTIONS.values())
