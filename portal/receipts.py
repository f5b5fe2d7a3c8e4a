"""Receipts: the one secret a submitter keeps, and what the server derives from it.

A receipt is 25 decimal digits from the OS random source (83 bits), shown in five groups of
five so it reads the same in every script. The server never stores it: Argon2id over the
receipt (salted with the installation's secret) gives 64 bytes, of which the first half,
hashed once more, is the lookup value kept in the database, and the second half is the seed of
the case's X25519 reply key pair, whose private half exists only in memory while the submitter
is there with their receipt.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.pwhash

from portal import offload

DIGITS = 25
GROUP = 5
# What people type between groups: hyphens and dashes of every kind, underscores, dots.
SEPARATORS = "-\u2010\u2011\u2012\u2013\u2014_.\u00b7"


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


def derive(receipt: str, installation_secret: bytes, opslimit: int, memlimit: int) -> Derived:
    """Derive the lookup value and reply key pair of a receipt (expensive by design)."""
    digits = normalise(receipt)
    salt = hashlib.blake2b(installation_secret, digest_size=16, person=b"portal-rcpt-salt").digest()
    # Each derivation holds its whole memory cost while it runs, and more of them at once
    # than there are cores is no faster: they take turns, off the event loop under gevent, so
    # a flood of reports costs at most one memory cost per core and stalls nobody else.
    stretched = offload.cpu_bound(_stretch, digits.encode("ascii"), salt, opslimit, memlimit)
    lookup = hashlib.blake2b(stretched[:32], digest_size=32, person=b"portal-lookup").digest()
    public, secret = sodium.crypto_box_seed_keypair(stretched[32:])
    return Derived(lookup, public, secret)


def _stretch(digits: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(64, digits, salt, opslimit=opslimit, memlimit=memlimit)
