"""Fixtures shared by the whole suite."""

from __future__ import annotations

import nacl.pwhash
import pytest

from portal import crypto


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its minimum cost for private key files, so tests do not spend a gigabyte each."""
    monkeypatch.setattr(crypto, "PASSPHRASE_OPSLIMIT", nacl.pwhash.argon2id.OPSLIMIT_MIN)
    monkeypatch.setattr(crypto, "PASSPHRASE_MEMLIMIT", nacl.pwhash.argon2id.MEMLIMIT_MIN)
