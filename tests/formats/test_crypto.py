"""The cryptographic core: keys, key files, sealed boxes and chunked AES-256-GCM blobs."""

from __future__ import annotations

import io
import json
import os
import stat
from datetime import date
from pathlib import Path
from typing import BinaryIO, cast

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from portal.formats import crypto

CHUNK = crypto.CHUNK_SIZE
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 100]


def pattern(size: int) -> bytes:
    """The vectors' deterministic plaintext: byte i = (i * 7 + 3) % 256."""
    return bytes((i * 7 + 3) % 256 for i in range(size))


def encrypt(data: bytes, key: bytes) -> bytes:
    out = io.BytesIO()
    assert crypto.encrypt_stream(io.BytesIO(data), out, key) == len(data)
    return out.getvalue()


def decrypt(blob: bytes, key: bytes, size: int) -> bytes:
    return b"".join(crypto.decrypt_chunks(io.BytesIO(blob), key, size))


# ---------------------------------------------------------------------------------------------
# Keys and fingerprints


def test_keypair_and_public_from_secret() -> None:
    secret, public = crypto.generate_keypair()
    assert len(secret) == len(public) == crypto.KEY_BYTES
    assert crypto.public_from_secret(secret) == public
    assert crypto.generate_keypair()[0] != secret


def test_fingerprint_shape() -> None:
    groups = crypto.fingerprint(bytes(range(32))).split(" ")
    assert len(groups) == 10
    assert all(len(g) == 4 and g == g.upper() for g in groups)
    int("".join(groups), 16)


@pytest.mark.parametrize("length", [0, 31, 33])
def test_fingerprint_refuses_wrong_length(length: int) -> None:
    with pytest.raises(crypto.KeyFileError):
        crypto.fingerprint(bytes(length))


@pytest.mark.parametrize("text", ["not base64!", "QUJD", "QUJDRA", "é", "QUJD\nRA=="])
def test_b64decode_is_strict(text: str) -> None:
    with pytest.raises(crypto.CryptoError):
        crypto.b64decode(text, 4)


# ---------------------------------------------------------------------------------------------
# Public key file


def test_public_key_file_round_trip(tmp_path: Path) -> None:
    _, public = crypto.generate_keypair()
    text = crypto.format_public_key_file(public, date(2026, 3, 1))
    assert f"# Fingerprint: {crypto.fingerprint(public)}" in text
    assert "# Created: 2026-03-01" in text
    path = tmp_path / "team.pub"
    path.write_text(text, encoding="utf-8")
    assert crypto.load_public_key(path) == public


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# only a comment\n\n", "no key line"),
        ("bm90IGEga2V5\n", "32-byte key"),
        ("", "no key line"),
    ],
)
def test_public_key_file_errors(text: str, message: str) -> None:
    with pytest.raises(crypto.KeyFileError, match=message):
        crypto.parse_public_key_file(text)


def test_load_public_key_refuses_private_and_missing(tmp_path: Path) -> None:
    secret, _ = crypto.generate_keypair()
    private = tmp_path / "team.key"
    private.write_text(crypto.private_key_file_text(secret, b"a long passphrase"))
    with pytest.raises(crypto.KeyFileError, match="private key file"):
        crypto.load_public_key(private)
    with pytest.raises(crypto.KeyFileError, match="No public key file"):
        crypto.load_public_key(tmp_path / "missing.pub")


# ---------------------------------------------------------------------------------------------
# Private key file


def test_private_key_file_round_trip(tmp_path: Path) -> None:
    secret, public = crypto.generate_keypair()
    path = tmp_path / "team.key"
    path.write_text(crypto.private_key_file_text(secret, "pässphrase long".encode()))
    assert crypto.read_private_key_file(path, "pässphrase long".encode()) == secret
    assert crypto.private_key_file_public(path) == public
    document = json.loads(path.read_text())
    assert document["fingerprint"] == crypto.fingerprint(public)
    assert crypto.b64encode(secret) not in path.read_text()


def test_private_key_file_uses_the_configured_limits(tmp_path: Path) -> None:
    secret, _ = crypto.generate_keypair()
    document = json.loads(crypto.private_key_file_text(secret, b"a long passphrase"))
    assert document["kdf"]["opslimit"] == crypto.PASSPHRASE_OPSLIMIT
    assert document["kdf"]["memlimit"] == crypto.PASSPHRASE_MEMLIMIT


def test_private_key_file_refuses_empty_passphrase() -> None:
    with pytest.raises(crypto.CryptoError):
        crypto.private_key_file_text(bytes(32), b"")


def test_wrong_passphrase(tmp_path: Path) -> None:
    secret, _ = crypto.generate_keypair()
    path = tmp_path / "team.key"
    path.write_text(crypto.private_key_file_text(secret, b"the right passphrase"))
    with pytest.raises(crypto.WrongPassphrase):
        crypto.read_private_key_file(path, b"the wrong passphrase")


def _damage(document: dict[str, object], how: str) -> dict[str, object]:
    kdf = document["kdf"]
    assert isinstance(kdf, dict)
    if how == "no kdf":
        del document["kdf"]
    elif how == "kdf not an object":
        document["kdf"] = "argon2id"
    elif how == "opslimit out of range":
        kdf["opslimit"] = 0
    elif how == "memlimit not a number":
        kdf["memlimit"] = "lots"
    elif how == "short salt":
        kdf["salt"] = crypto.b64encode(b"salt")
    elif how == "other public key":
        document["public_key"] = crypto.b64encode(crypto.generate_keypair()[1])
    elif how == "version 2":
        document["version"] = 2
    elif how == "other format":
        document["format"] = "something-else"
    return document


@pytest.mark.parametrize(
    "how",
    [
        "no kdf",
        "kdf not an object",
        "opslimit out of range",
        "memlimit not a number",
        "short salt",
        "other public key",
        "version 2",
        "other format",
    ],
)
def test_damaged_private_key_file(tmp_path: Path, how: str) -> None:
    secret, _ = crypto.generate_keypair()
    document = json.loads(crypto.private_key_file_text(secret, b"a long passphrase"))
    path = tmp_path / "team.key"
    path.write_text(json.dumps(_damage(document, how)))
    with pytest.raises(crypto.KeyFileError):
        crypto.read_private_key_file(path, b"a long passphrase")


@pytest.mark.parametrize("text", ["not json", "[]", '{"format": "portal-team-private-key"}'])
def test_not_a_private_key_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "team.key"
    path.write_text(text)
    with pytest.raises(crypto.KeyFileError):
        crypto.private_key_file_public(path)
    with pytest.raises(crypto.KeyFileError, match="No private key file"):
        crypto.private_key_file_public(tmp_path / "missing.key")


def test_write_new_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    crypto.write_new_file(path, b"data")
    assert path.read_bytes() == b"data"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        crypto.write_new_file(path, b"other")
    assert path.read_bytes() == b"data"


def test_write_new_file_removes_a_half_written_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        crypto.write_new_file(tmp_path / "key", b"data")
    assert not (tmp_path / "key").exists()


# ---------------------------------------------------------------------------------------------
# Sealed boxes


def test_seal_and_open() -> None:
    secret, public = crypto.generate_keypair()
    sealed = crypto.seal(b"message", public)
    assert len(sealed) == len(b"message") + crypto.SEAL_OVERHEAD
    assert crypto.open_sealed(sealed, secret) == b"message"
    assert crypto.seal(b"message", public) != sealed


def test_open_sealed_refuses_other_key_tampering_and_short_input() -> None:
    secret, public = crypto.generate_keypair()
    other, _ = crypto.generate_keypair()
    sealed = bytearray(crypto.seal(b"message", public))
    with pytest.raises(crypto.WrongKey):
        crypto.open_sealed(bytes(sealed), other)
    sealed[-1] ^= 1
    with pytest.raises(crypto.WrongKey):
        crypto.open_sealed(bytes(sealed), secret)
    with pytest.raises(crypto.WrongKey, match="too short"):
        crypto.open_sealed(b"short", secret)


# ---------------------------------------------------------------------------------------------
# Blobs


def test_chunk_nonce() -> None:
    assert crypto.chunk_nonce(0, False) == bytes(12)
    assert crypto.chunk_nonce(1, True) == bytes(10) + b"\x01\x01"
    assert crypto.chunk_nonce(258, False) == bytes(9) + b"\x01\x02\x00"


@pytest.mark.parametrize(
    ("size", "chunks"), [(0, 1), (1, 1), (CHUNK - 1, 1), (CHUNK, 1), (CHUNK + 1, 2), (3 * CHUNK, 3)]
)
def test_chunk_count_and_blob_length(size: int, chunks: int) -> None:
    assert crypto.chunk_count(size) == chunks
    assert crypto.blob_length(size) == chunks * crypto.SEALED_CHUNK_SIZE


def test_chunk_count_refuses_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        crypto.chunk_count(-1)


@pytest.mark.parametrize("size", SIZES)
def test_blob_round_trip_at_every_boundary(size: int) -> None:
    key = crypto.new_file_key()
    data = pattern(size)
    blob = encrypt(data, key)
    assert len(blob) == crypto.blob_length(size)
    assert decrypt(blob, key, size) == data


@pytest.mark.parametrize("size", SIZES)
def test_blob_writer_in_uneven_pieces(size: int) -> None:
    key, data = crypto.new_file_key(), pattern(size)
    out = io.BytesIO()
    writer = crypto.BlobWriter(out, key)
    for start in range(0, size, 7919):
        writer.write(memoryview(data)[start : start + 7919])
    assert writer.close() == size
    assert writer.close() == size  # closing twice writes nothing more
    assert out.getvalue() == encrypt(data, key)
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"more")


def test_blob_writer_refuses_short_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        crypto.BlobWriter(io.BytesIO(), bytes(16))


def test_blob_last_chunk_is_zero_padded() -> None:
    key = crypto.new_file_key()
    blob = encrypt(b"abc", key)
    padded = crypto.sodium.crypto_aead_aes256gcm_decrypt(
        blob, None, crypto.chunk_nonce(0, True), key
    )
    assert padded == b"abc" + bytes(CHUNK - 3)


def _tampered(blob: bytes, how: str) -> tuple[bytes, int]:
    """A damaged copy of a three-chunk blob of 3 * CHUNK - 5 bytes, and the size to claim."""
    size = 3 * CHUNK - 5
    n = crypto.SEALED_CHUNK_SIZE
    chunks = [blob[i : i + n] for i in range(0, len(blob), n)]
    if how == "bit flipped in chunk 2":
        damaged = bytearray(blob)
        damaged[n + 100] ^= 0x01
        return bytes(damaged), size
    if how == "tag flipped in the last chunk":
        damaged = bytearray(blob)
        damaged[-1] ^= 0x80
        return bytes(damaged), size
    if how == "truncated by one byte":
        return blob[:-1], size
    if how == "last chunk dropped":
        return b"".join(chunks[:2]), size
    if how == "extra chunk appended":
        return blob + chunks[0], size
    if how == "chunks swapped":
        return chunks[1] + chunks[0] + chunks[2], size
    if how == "last chunk dropped, size shrunk":
        return b"".join(chunks[:2]), 2 * CHUNK
    if how == "size grown by a chunk":
        return blob, 4 * CHUNK
    if how == "size shrunk by a chunk":
        return blob, 2 * CHUNK
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        "bit flipped in chunk 2",
        "tag flipped in the last chunk",
        "truncated by one byte",
        "last chunk dropped",
        "extra chunk appended",
        "chunks swapped",
        "last chunk dropped, size shrunk",
        "size grown by a chunk",
        "size shrunk by a chunk",
    ],
)
def test_blob_tampering_is_detected(how: str) -> None:
    key = crypto.new_file_key()
    blob = encrypt(pattern(3 * CHUNK - 5), key)
    damaged, size = _tampered(blob, how)
    with pytest.raises(crypto.TamperedBlob):
        decrypt(damaged, key, size)


def test_blob_under_another_key_fails() -> None:
    blob = encrypt(b"secret", crypto.new_file_key())
    with pytest.raises(crypto.TamperedBlob, match="authentication"):
        decrypt(blob, crypto.new_file_key(), 6)


def test_decrypt_chunks_authenticates_before_yielding() -> None:
    key = crypto.new_file_key()
    blob = bytearray(encrypt(pattern(2 * CHUNK), key))
    blob[-1] ^= 1
    chunks = crypto.decrypt_chunks(io.BytesIO(bytes(blob)), key, 2 * CHUNK)
    assert next(chunks) == pattern(CHUNK)  # the first chunk is good and authenticated
    with pytest.raises(crypto.TamperedBlob):
        next(chunks)


class Trickle(io.RawIOBase):
    """A source that returns at most a few bytes per read, as pipes and tar members may."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 1000) if size >= 0 else 1000)


def test_decrypt_from_a_source_with_short_reads() -> None:
    key, data = crypto.new_file_key(), pattern(2 * CHUNK + 3)
    blob = encrypt(data, key)
    source = cast(BinaryIO, Trickle(blob))
    assert b"".join(crypto.decrypt_chunks(source, key, len(data))) == data


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=3 * CHUNK), cuts=st.lists(st.integers(0, 3 * CHUNK), max_size=6))
def test_blob_round_trip_any_data_any_pieces(data: bytes, cuts: list[int]) -> None:
    key = crypto.new_file_key()
    out = io.BytesIO()
    writer = crypto.BlobWriter(out, key)
    previous = 0
    for cut in [*sorted(c for c in cuts if c <= len(data)), len(data)]:
        writer.write(data[previous:cut])
        previous = cut
    assert writer.close() == len(data)
    assert decrypt(out.getvalue(), key, len(data)) == data
