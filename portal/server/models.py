"""The database tables: cases, submissions, staff accounts and the staff audit log.

Nothing here holds submitted content: a submission row knows its size, its kind and the day it
arrived, never an address, a user agent or a time of day. Contents live sealed in the blob
store; a case knows only a one-way lookup value of its receipt and its reply public key.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints alike."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Case(Base):
    """A case: a report and everything that follows it, found again only through its receipt."""

    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    receipt_lookup: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    reply_public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_day: Mapped[date] = mapped_column(Date)
    submissions: Mapped[list[Submission]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Submission.seq"
    )


class Submission(Base):
    """One sealed envelope: a report, a follow-up, or a reply, stored as sealed files."""

    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    # Order within the case, so follow-ups keep their order without a time of day.
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    sealed_by: Mapped[str] = mapped_column(String(16))
    # How it arrived: "form" (sealed on arrival), "browser", "relay" (a sealed case file), "staff".
    source: Mapped[str] = mapped_column(String(16))
    # Replies only: "submitter" (sealed to the reply key) or "team" (the team's copy).
    recipient: Mapped[str | None] = mapped_column(String(16))
    received_day: Mapped[date] = mapped_column(Date, index=True)
    file_count: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    exported_day: Mapped[date | None] = mapped_column(Date)
    case: Mapped[Case] = relationship(back_populates="submissions")


class StaffMember(Base):
    """A member of the reprisals team who may use the staff site."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    totp_secret: Mapped[str] = mapped_column(String(64))
    # The last TOTP time step accepted, so that no code is accepted twice.
    last_totp_step: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_day: Mapped[date] = mapped_column(Date)
    # A hash of the nonce of the one open staff-site session, so that logging out, or
    # `portal staff remove/reset`, ends it on the server and not only in the browser.
    session_nonce: Mapped[str | None] = mapped_column(String(64))


class AuditEvent(Base):
    """A staff action, kept to the day and free of any submitter data."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    staff_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(500), default="")
