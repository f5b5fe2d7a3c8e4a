"""The passphrase of the team's private key file: the bytes it stands for, read from a file,
and how long a new one must be.

Every command that makes or opens the private key turns the same typed or stored passphrase
into the same bytes; asking for it at the keyboard is the command line's part.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

MIN_PASSPHRASE_CHARS = 12
WHY_LONG = (
    "The private key file may one day be copied or seized; then only the passphrase stands "
    "between an adversary and every submission ever sealed to the team, and a short one can "
    "be guessed. Use at least 12 characters; a few random words are easy to remember."
)


class PassphraseError(Exception):
    """A passphrase cannot be read, or is too short for a new key; the message says which."""


def passphrase_bytes(text: str) -> bytes:
    """The bytes a passphrase stands for: NFC-normalised UTF-8, so every keyboard agrees."""
    return unicodedata.normalize("NFC", text).encode("utf-8")


def read_passphrase_file(path: Path) -> str:
    """Read a passphrase from a file, dropping the one line ending that editors add."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise PassphraseError(f"The passphrase file {path} cannot be read: {exc}.") from exc
    except UnicodeDecodeError as exc:
        raise PassphraseError(f"The passphrase file {path} is not UTF-8 text.") from exc
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise PassphraseError(f"The passphrase file {path} is empty.")
    return text


def check_strength(text: str) -> str:
    """The passphrase for a new key, refused (PassphraseError) if it is too short."""
    if len(text.strip()) < MIN_PASSPHRASE_CHARS:
        raise PassphraseError(f"This passphrase has {len(text.strip())} characters. {WHY_LONG}")
    return text
