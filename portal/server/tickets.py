"""Tickets: a receipt made before a report is sealed in the browser, and held by the browser only.

The browser must know the case's reply key before it seals the report, so that the key travels
inside the sealed manifest, where nobody between the browser and the team's offline machine can
change it unseen. But the receipt must be stored nowhere (no disk, database, log, cookie or
address) and is shown only once the report is stored. So the server makes the receipt when the
browser asks for one, derives its lookup value and reply key, and hands back the reply public
key and a ticket: the receipt, the lookup value, the reply public key, a binding to the browser
session and the time it was made, in a secretbox under a key derived from the installation
secret, with a fresh random nonce. The browser keeps the ticket in memory and sends it back
with the sealed upload; the server opens it, checks the session and the age, and creates the
case from it without a second Argon2id derivation. A ticket makes at most one case: its lookup
value becomes the case's, which is unique.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import time
from dataclasses import dataclass

import nacl.exceptions
import nacl.secret
import nacl.utils

from portal.formats import receipts

VERSION = 1
# A ticket is checked when its upload has fully arrived; the form's own token lasts as long.
MAX_AGE_SECONDS = 6 * 3600
CLOCK_SKEW_SECONDS = 60
# Version, time made, session binding, lookup value, reply public key, receipt digits.
_LAYOUT = struct.Struct(f">BQ16s32s32s{receipts.DIGITS}s")
BINDING_BYTES = 16
# Base64 of nonce + MAC + layout is about 210 characters; anything much longer is no ticket.
MAX_TEXT = 512


def clock() -> float:
    """Seconds since the epoch (a seam for tests: the ticket's age is all it is used for)."""
    return time.time()


class TicketError(ValueError):
    """The ticket cannot be used: damaged or forged, from another session, or too old."""


@dataclass(frozen=True)
class Ticket:
    """What an opened ticket holds."""

    receipt: str
    lookup: bytes
    reply_public_key: bytes


def _box(installation_secret: bytes) -> nacl.secret.SecretBox:
    key = hashlib.blake2b(installation_secret, digest_size=32, person=b"portal-ticket").digest()
    return nacl.secret.SecretBox(key)


def session_binding(session_secret: str) -> bytes:
    """The binding of a browser session, from its random per-session secret."""
    return hashlib.blake2b(
        session_secret.encode("utf-8"), digest_size=BINDING_BYTES, person=b"portal-tkt-sess"
    ).digest()


def issue(
    installation_secret: bytes,
    receipt: str,
    derived: receipts.Derived,
    binding: bytes,
    now: float | None = None,
) -> str:
    """The ticket for a fresh receipt and what it derives, bound to one browser session."""
    if len(binding) != BINDING_BYTES:
        raise ValueError("a session binding is 16 bytes")
    made = int(clock() if now is None else now)
    plain = _LAYOUT.pack(
        VERSION,
        made,
        binding,
        derived.lookup,
        derived.reply_public_key,
        receipts.normalise(receipt).encode("ascii"),
    )
    sealed = _box(installation_secret).encrypt(
        plain, nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    )
    return base64.urlsafe_b64encode(bytes(sealed)).decode("ascii")


def open_ticket(
    installation_secret: bytes,
    text: str,
    binding: bytes,
    now: float | None = None,
    max_age: float | None = MAX_AGE_SECONDS,
) -> Ticket:
    """Open a ticket sent back with an upload; TicketError unless it is whole, ours and fresh.

    `max_age` None skips the age: a resumable upload checked its ticket's age when it began, and
    may take longer than a ticket lives (it has an expiry of its own).
    """
    if not text or len(text) > MAX_TEXT:
        raise TicketError("no ticket")
    try:
        sealed = base64.urlsafe_b64decode(text.encode("ascii"))
        # Only the one way of writing it: base64 forgives what follows its padding.
        if base64.urlsafe_b64encode(sealed).decode("ascii") != text:
            raise ValueError("not as written")
        plain = _box(installation_secret).decrypt(sealed)
    except (binascii.Error, UnicodeEncodeError, ValueError, nacl.exceptions.CryptoError):
        raise TicketError("damaged or forged") from None
    if len(plain) != _LAYOUT.size:
        raise TicketError("damaged or forged")
    version, made, bound, lookup, reply_public_key, digits = _LAYOUT.unpack(plain)
    if version != VERSION:
        raise TicketError("damaged or forged")
    if not hmac.compare_digest(bound, binding):
        raise TicketError("from another session")
    age = (clock() if now is None else now) - made
    # Several servers' clocks may differ a little; a ticket from further ahead is suspect.
    if age < -CLOCK_SKEW_SECONDS or (max_age is not None and age > max_age):
        raise TicketError("too old")
    return Ticket(receipts.format_receipt(digits.decode("ascii")), lookup, reply_public_key)
