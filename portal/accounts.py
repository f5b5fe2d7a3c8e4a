"""Staff accounts: generated passphrases, Argon2id hashes, one-time codes, lockout and sessions.

A passphrase is seven words drawn from `portal.wordlist` by the OS random source (more than
77 bits), so nobody picks a weak one; the server keeps only its Argon2id hash. The second
factor is a TOTP code (RFC 6238, 30-second steps): a code is accepted once, and never a code
of a step at or before the last one accepted. Failures slow the account down, then lock it for
a while. Signing in needs both factors, and a refusal never says which one was wrong, nor
whether the account exists or is locked, except to whoever has both factors.

Plain functions over a database session: the staff site and `portal staff` call them, tests
call them directly. They add and change rows; the caller commits, with its audit record.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache

import nacl.exceptions
import nacl.pwhash
import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import offload
from portal.models import StaffMember
from portal.wordlist import WORDS

PASSPHRASE_WORDS = 7
# Interactive limits (64 MiB, 2 passes) suffice: the passphrase is generated, not chosen, and
# its 77 bits are out of reach of any guessing. Higher limits would only let a burst of
# sign-in attempts exhaust the server's memory.
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
MAX_PASSPHRASE_CHARS = 1024
TOTP_ISSUER = "Reprisals portal"
TOTP_DIGITS = 6
# One step either side of the server's: phones' clocks drift, and typing takes time.
TOTP_WINDOW = 1
SLOW_AFTER = 3  # failures after which each further try waits a minute, then two
LOCK_AFTER = 5  # failures after which the account locks for LOCK_MINUTES
LOCK_MINUTES = 15
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")


class AccountError(Exception):
    """An account cannot be created or changed as asked; the message says why."""


class LoginRefused(Exception):
    """Sign-in refused, with the same words whatever the reason.

    `locked_until` is set only when the account is locked and this try had the right passphrase
    and code: only then may the person be told of the lock, since telling anyone else would
    tell them that the account exists. `was_locked`: the account was locked before this try
    (which was then not counted); `locked_now`: this failure locked it. Both are for the audit
    log, never for the page."""

    def __init__(
        self,
        locked_until: datetime | None = None,
        *,
        was_locked: bool = False,
        locked_now: bool = False,
        member: StaffMember | None = None,
    ) -> None:
        """Refuse; `member` is the existing account the name named, if any."""
        super().__init__("sign-in refused")
        self.locked_until = locked_until
        self.was_locked = was_locked
        self.locked_now = locked_now
        self.member = member


@dataclass(frozen=True)
class Credentials:
    """A new account's secrets, shown once to the person who runs `portal staff add/reset`."""

    name: str
    passphrase: str
    totp_secret: str

    @property
    def provisioning_uri(self) -> str:
        """The otpauth:// URI an authenticator app reads from the QR code."""
        return pyotp.TOTP(self.totp_secret, digits=TOTP_DIGITS).provisioning_uri(
            name=self.name, issuer_name=TOTP_ISSUER
        )


def now() -> datetime:
    """The current time in UTC (one place, so tests can freeze it)."""
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """A time read back from the database, in UTC (SQLite forgets the time zone)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Secrets


def new_passphrase(words: int = PASSPHRASE_WORDS) -> str:
    """A passphrase of `words` words from the word list, chosen by the OS random source."""
    return " ".join(secrets.choice(WORDS) for _ in range(words))


def normalise_passphrase(passphrase: str) -> str:
    """The passphrase as it is hashed: lowercase, single spaces, so typing slips do not count."""
    return " ".join(passphrase[:MAX_PASSPHRASE_CHARS].lower().split())


def hash_passphrase(passphrase: str) -> str:
    """The Argon2id hash string of a passphrase (salt and limits inside)."""
    encoded = normalise_passphrase(passphrase).encode("utf-8")
    hashed = offload.cpu_bound(nacl.pwhash.argon2id.str, encoded, OPSLIMIT, MEMLIMIT)
    return hashed.decode("ascii")


def verify_passphrase(password_hash: str, passphrase: str) -> bool:
    """Whether a passphrase matches its hash."""
    try:
        return bool(
            offload.cpu_bound(
                nacl.pwhash.argon2id.verify,
                password_hash.encode("ascii"),
                normalise_passphrase(passphrase).encode("utf-8"),
            )
        )
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, UnicodeEncodeError):
        return False


@cache
def _decoy_hash(opslimit: int, memlimit: int) -> str:
    salt_like = secrets.token_bytes(16)
    hashed = offload.cpu_bound(nacl.pwhash.argon2id.str, salt_like, opslimit, memlimit)
    return hashed.decode("ascii")


def decoy_hash() -> str:
    """A hash no passphrase matches, at the current cost: verified for unknown names, so that
    an unknown name takes as long to refuse as a known one."""
    return _decoy_hash(OPSLIMIT, MEMLIMIT)


def new_totp_secret() -> str:
    """A fresh TOTP secret: 160 random bits in base32."""
    return pyotp.random_base32(32)


def code_step(secret: str, code: str, last_step: int, when: datetime) -> int | None:
    """The time step whose code this is, if it is valid now and newer than `last_step`."""
    code = "".join(code.split())
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS)
    current = totp.timecode(when)
    found = None
    # Every candidate is compared, so the time taken says nothing about which one matched.
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and step > last_step:
            found = step
    return found


# ---------------------------------------------------------------------------------------------
# Accounts


def normalise_name(name: str) -> str:
    """An account name as stored: trimmed and lowercase."""
    return name.strip().lower()


def check_name(name: str) -> str:
    """The normalised name, or AccountError if it cannot be an account name."""
    name = normalise_name(name)
    if not NAME_PATTERN.fullmatch(name):
        raise AccountError(
            "An account name is 1 to 32 characters: lowercase letters, digits, dots, hyphens "
            "and underscores, starting with a letter (for example: amina or j.smith)."
        )
    return name


def find(session: Session, name: str) -> StaffMember | None:
    """The account of this name, if any."""
    return session.scalar(select(StaffMember).where(StaffMember.name == normalise_name(name)))


def get(session: Session, name: str) -> StaffMember:
    """The account of this name, or AccountError."""
    member = find(session, name)
    if member is None:
        raise AccountError(f"There is no staff account named {normalise_name(name)!r}.")
    return member


def all_members(session: Session) -> list[StaffMember]:
    """Every account, by name."""
    return list(session.scalars(select(StaffMember).order_by(StaffMember.name)))


def create(session: Session, name: str, day: date) -> Credentials:
    """Add an account with a new passphrase and TOTP secret (added to the session)."""
    name = check_name(name)
    if find(session, name) is not None:
        raise AccountError(f"A staff account named {name!r} exists already.")
    credentials = Credentials(name, new_passphrase(), new_totp_secret())
    session.add(
        StaffMember(
            name=name,
            password_hash=hash_passphrase(credentials.passphrase),
            totp_secret=credentials.totp_secret,
            last_totp_step=0,
            failed_logins=0,
            locked_until=None,
            created_day=day,
        )
    )
    return credentials


def reset(session: Session, name: str) -> Credentials:
    """Give an account a new passphrase and TOTP secret; unlock it and end its session."""
    member = get(session, name)
    credentials = Credentials(member.name, new_passphrase(), new_totp_secret())
    member.password_hash = hash_passphrase(credentials.passphrase)
    member.totp_secret = credentials.totp_secret
    member.last_totp_step = 0
    unlock(member)
    member.session_nonce = None
    return credentials


def remove(session: Session, name: str) -> None:
    """Delete an account (which ends its session: the session names a row that is gone)."""
    session.delete(get(session, name))


def unlock(member: StaffMember) -> None:
    """Clear failures and any lock."""
    member.failed_logins = 0
    member.locked_until = None


def locked_until(member: StaffMember, when: datetime) -> datetime | None:
    """When the account's lock ends, if it is locked at `when`."""
    if member.locked_until is None:
        return None
    until = aware(member.locked_until)
    return until if until > when else None


def _lock_after_failure(failures: int) -> timedelta | None:
    if failures >= LOCK_AFTER:
        return timedelta(minutes=LOCK_MINUTES)
    if failures >= SLOW_AFTER:
        return timedelta(minutes=2 ** (failures - SLOW_AFTER))
    return None


def _next_minute(moment: datetime) -> datetime:
    # Locks end on a whole minute, so "locked until 14:32 UTC" is exact.
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def authenticate(
    session: Session, name: str, passphrase: str, code: str, when: datetime | None = None
) -> StaffMember:
    """The account, if the name, passphrase and current code are all right and it is not locked.

    Otherwise LoginRefused, after counting the failure against a known, unlocked account. Every
    try costs one Argon2id verification at the same cost and one code check, whether the name
    exists (an unknown name is checked against a decoy hash), whether the account is locked, and
    whichever factor is wrong; so neither the answer nor its timing tells an account that exists
    from one that does not, nor a locked one from an open one. A lock is told only to whoever
    has both factors. A valid code is used up only by a successful sign-in.
    """
    when = when or now()
    member = find(session, name) if NAME_PATTERN.fullmatch(normalise_name(name)) else None
    until = locked_until(member, when) if member is not None else None
    passphrase_ok = verify_passphrase(member.password_hash if member else decoy_hash(), passphrase)
    step = code_step(
        member.totp_secret if member else new_totp_secret(),
        code,
        member.last_totp_step if member else 0,
        when,
    )
    both_right = passphrase_ok and step is not None
    if member is None:
        raise LoginRefused()
    if until is not None:
        # Not counted: a lock is not lengthened by tries made while it lasts.
        raise LoginRefused(until if both_right else None, was_locked=True, member=member)
    if passphrase_ok and step is not None:
        member.last_totp_step = step
        unlock(member)
        return member
    member.failed_logins += 1
    lock = _lock_after_failure(member.failed_logins)
    if lock is not None:
        member.locked_until = _next_minute(when + lock)
    raise LoginRefused(locked_now=lock is not None, member=member)


# ---------------------------------------------------------------------------------------------
# Sessions


def _nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("ascii", "replace")).hexdigest()


def start_session(member: StaffMember) -> str:
    """A new session nonce for the browser; any earlier session of the account ends."""
    nonce = secrets.token_urlsafe(32)
    member.session_nonce = _nonce_hash(nonce)
    return nonce


def session_matches(member: StaffMember, nonce: str) -> bool:
    """Whether `nonce` is the account's open session."""
    return member.session_nonce is not None and hmac.compare_digest(
        member.session_nonce, _nonce_hash(nonce)
    )


def end_session(member: StaffMember) -> None:
    """End the account's session on the server."""
    member.session_nonce = None
