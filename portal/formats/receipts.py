"""Receipts: the one secret a submitter keeps, and what the server derives from it.

A receipt is 25 decimal digits from the OS random source (83 bits), shown in five groups of
five so it reads the same in every script. The server never stores it: Argon2id over the
receipt (salted with the installation's secret) gives 64 bytes, of which the first half,
hashed once more, is the lookup value kept in the database, and the second half is the seed of
the case's X25519 reply key pair, whose private half exists only in memory while the submitter
is there with their receipt.

The salt is a personalised hash of the installation's secret: it reveals nothing of the secret
and protects nothing that the server's own disk does not hold. So the site publishes it, with
the Argon2id cost, as two comment lines of the team key file it serves (`published_lines`).
With them a relaying organisation's sealing tool makes a case's receipt itself and derives
exactly what the server would: it seals the reply key inside the report, where the server
cannot change it, and hands the server only the lookup value and the reply public key. The
site's cost must therefore never change once receipts exist: a receipt is found by deriving
it again at the site's current cost (this holds for every receipt, however it was made).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.pwhash

DIGITS = 25
GROUP = 5
# What people type between groups: hyphens and dashes of every kind, underscores, dots.
SEPARATORS = "-\u2010\u2011\u2012\u2013\u2014_.\u00b7"
SALT_BYTES = 16
LOOKUP_BYTES = 32
# The comment lines of the served key file that publish the salt and the cost.
SALT_LINE = "# receipt-salt:"
COST_LINE = "# receipt-cost:"
# What a key file may ask of a relay's computer: libsodium's own bounds, up to SENSITIVE.
OPS_RANGE = (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE)
MEM_RANGE = (nacl.pwhash.argon2id.MEMLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE)


class ReceiptError(ValueError):
    """What was entered cannot be a receipt."""


@dataclass(frozen=True)
class Derived:
    """What a receipt opens: its lookup value and the case's reply key pair."""

    lookup: bytes
    reply_public_key: bytes
    reply_secret_key: bytes


def new_receipt() -> str:
    """A fresh receipt, grouped for reading."""
    return format_receipt(f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}")


def format_receipt(digits: str) -> str:
    """Group 25 digits as five groups of five."""
    return " ".join(digits[i : i + GROUP] for i in range(0, len(digits), GROUP))


def normalise(entered: str) -> str:
    """The 25 ASCII digits of an entered receipt (digits of any script; spaces, dashes ignored)."""
    digits = []
    for char in entered:
        if char.isspace() or char in SEPARATORS:
            continue
        value = unicodedata.digit(char, None)
        if value is None:
            raise ReceiptError("A receipt has only digits.")
        digits.append(str(value))
    if len(digits) != DIGITS:
        raise ReceiptError("A receipt has 25 digits.")
    return "".join(digits)


def salt_of(installation_secret: bytes) -> bytes:
    """The receipt salt of an installation: a personalised hash of its secret."""
    return hashlib.blake2b(
        installation_secret, digest_size=SALT_BYTES, person=b"portal-rcpt-salt"
    ).digest()


Runner = Callable[..., bytes]


def _here(function: Callable[..., bytes], *args: object) -> bytes:
    return function(*args)


def derive(
    receipt: str, installation_secret: bytes, opslimit: int, memlimit: int, run: Runner = _here
) -> Derived:
    """Derive the lookup value and reply key pair of a receipt (expensive by design).

    `run(function, *args)` runs the Argon2id stretch: the server passes `offload.cpu_bound`;
    offline, the stretch runs in the calling thread.
    """
    return derive_salted(receipt, salt_of(installation_secret), opslimit, memlimit, run)


def derive_salted(
    receipt: str, salt: bytes, opslimit: int, memlimit: int, run: Runner = _here
) -> Derived:
    """Derive what a receipt opens from the installation's receipt salt (see `derive`)."""
    digits = normalise(receipt)
    stretched = run(_stretch, digits.encode("ascii"), salt, opslimit, memlimit)
    lookup = hashlib.blake2b(stretched[:32], digest_size=32, person=b"portal-lookup").digest()
    public, secret = sodium.crypto_box_seed_keypair(stretched[32:])
    return Derived(lookup, public, secret)


def _stretch(digits: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(64, digits, salt, opslimit=opslimit, memlimit=memlimit)


@dataclass(frozen=True)
class Published:
    """The receipt salt and cost a site publishes, so that relays can make receipts."""

    salt: bytes
    opslimit: int
    memlimit: int

    def lines(self) -> str:
        """The two comment lines of the served key file."""
        return (
            f"{SALT_LINE} {base64.b64encode(self.salt).decode('ascii')}\n"
            f"{COST_LINE} argon2id opslimit={self.opslimit} memlimit={self.memlimit}\n"
        )


def published(installation_secret: bytes, opslimit: int, memlimit: int) -> Published:
    """What a site publishes of its receipts: its salt and its cost."""
    return Published(salt_of(installation_secret), opslimit, memlimit)


def read_published(text: str) -> Published | None:
    """The receipt salt and cost of a key file's comment lines; None when it has neither,
    ReceiptError when they are malformed or incomplete."""
    salt_text = cost_text = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.lower().startswith(SALT_LINE):
            salt_text = stripped[len(SALT_LINE) :].strip()
        elif stripped.lower().startswith(COST_LINE):
            cost_text = stripped[len(COST_LINE) :].strip()
    if salt_text is None and cost_text is None:
        return None
    if salt_text is None or cost_text is None:
        raise ReceiptError("The key file has one receipt line without the other.")
    try:
        salt = base64.b64decode(salt_text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        salt = b""
    if len(salt) != SALT_BYTES:
        raise ReceiptError("The key file's receipt salt is not the base64 of 16 bytes.")
    words = cost_text.split()
    values = dict(word.partition("=")[::2] for word in words[1:])
    try:
        if words[:1] != ["argon2id"] or set(values) != {"opslimit", "memlimit"}:
            raise ValueError(cost_text)
        opslimit, memlimit = int(values["opslimit"]), int(values["memlimit"])
    except ValueError:
        raise ReceiptError(
            "The key file's receipt cost is not of the form 'argon2id opslimit=N memlimit=N'."
        ) from None
    if not (OPS_RANGE[0] <= opslimit <= OPS_RANGE[1] and MEM_RANGE[0] <= memlimit <= MEM_RANGE[1]):
        raise ReceiptError("The key file's receipt cost is outside Argon2id's usual bounds.")
    return Published(salt, opslimit, memlimit)


def for_relay(site: Published) -> tuple[str, Derived]:
    """A fresh receipt made away from the site, and what the site will derive from it."""
    receipt = new_receipt()
    return receipt, derive_salted(receipt, site.salt, site.opslimit, site.memlimit)
