"""Every format piece against the known-answer vectors that the JavaScript tests share."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import nacl.bindings as sodium
import pytest

from portal.formats import crypto, envelope, receipts

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def pattern(size: int) -> bytes:
    return bytes((i * 7 + 3) % 256 for i in range(size))


def seal_with(padded: bytes, recipient_pk: bytes, ephemeral_sk: bytes) -> bytes:
    """crypto_box_seal with a chosen ephemeral key, as the vector files describe it."""
    ephemeral_pk = sodium.crypto_scalarmult_base(ephemeral_sk)
    nonce = hashlib.blake2b(ephemeral_pk + recipient_pk, digest_size=24).digest()
    return ephemeral_pk + sodium.crypto_box(padded, nonce, recipient_pk, ephemeral_sk)


def blob_of(data: bytes, key: bytes) -> bytes:
    out = io.BytesIO()
    crypto.encrypt_stream(io.BytesIO(data), out, key)
    return out.getvalue()


@pytest.mark.parametrize("vector", load("sealed_box.json")["vectors"])
def test_sealed_box(vector: dict[str, str]) -> None:
    secret = bytes.fromhex(vector["recipient_secret_key"])
    assert crypto.public_from_secret(secret).hex() == vector["recipient_public_key"]
    opened = crypto.open_sealed(bytes.fromhex(vector["ciphertext"]), secret)
    assert opened.hex() == vector["plaintext"]


@pytest.mark.parametrize("vector", load("fingerprint.json")["vectors"])
def test_fingerprint(vector: dict[str, str]) -> None:
    public = crypto.b64decode(vector["public_key_b64"], 32)
    assert crypto.fingerprint(public) == vector["fingerprint"]


@pytest.mark.parametrize("vector", load("public_key_file.json")["vectors"])
def test_public_key_file(vector: dict[str, str]) -> None:
    key = crypto.parse_public_key_file(vector["text"])
    assert crypto.b64encode(key) == vector["public_key_b64"]


@pytest.mark.parametrize("vector", load("manifest.json")["vectors"])
def test_manifest(vector: dict[str, Any]) -> None:
    text = vector["json_text"].encode("utf-8")
    assert envelope.json_bytes(vector["manifest"]) == text
    parsed = envelope.parse_manifest(envelope.pad(text))
    # The project's own serialisation of the parsed manifest gives the same bytes back.
    assert parsed.json_text() == text
    assert parsed.to_json() == vector["manifest"]
    padded = envelope.pad(text)
    assert len(padded) == vector["padded_length"]
    secret = bytes.fromhex(vector["recipient_secret_key"])
    public = bytes.fromhex(vector["recipient_public_key"])
    sealed = bytes.fromhex(vector["sealed"])
    assert seal_with(padded, public, bytes.fromhex(vector["ephemeral_secret_key"])) == sealed
    assert envelope.open_manifest(sealed, secret) == parsed
    assert envelope.open_manifest(envelope.seal_manifest(parsed, public), secret) == parsed


BLOBS = load("blob.json")


def test_blob_chunk_size() -> None:
    assert BLOBS["chunk_size"] == crypto.CHUNK_SIZE


@pytest.mark.parametrize("vector", BLOBS["vectors"], ids=lambda v: str(v["size"]))
def test_blob(vector: dict[str, Any]) -> None:
    key, size = bytes.fromhex(vector["key"]), vector["size"]
    blob = blob_of(pattern(size), key)
    assert len(blob) == vector["blob_length"] == crypto.blob_length(size)
    assert hashlib.sha256(blob).hexdigest() == vector["blob_sha256"]
    step = crypto.SEALED_CHUNK_SIZE
    tags = [blob[i + step - crypto.TAG_BYTES : i + step].hex() for i in range(0, len(blob), step)]
    assert tags == vector["chunk_tags"]
    if "blob" in vector:
        assert blob.hex() == vector["blob"]
    decrypted = b"".join(crypto.decrypt_chunks(io.BytesIO(blob), key, size))
    assert decrypted == pattern(size)


def test_envelope() -> None:
    vector = load("envelope.json")
    secret = bytes.fromhex(vector["recipient_secret_key"])
    opened = envelope.open_manifest(bytes.fromhex(vector["sealed_manifest"]), secret)
    assert opened.to_json() == vector["manifest"]
    assert [f.size for f in opened.files] == [f["size"] for f in vector["files"]]
    for entry, expected in zip(opened.files, vector["files"], strict=True):
        blob = blob_of(pattern(entry.size), entry.key)
        assert hashlib.sha256(blob).hexdigest() == expected["blob_sha256"]


RECEIPTS = load("receipt.json")


@pytest.mark.parametrize("vector", RECEIPTS["vectors"])
def test_receipt(vector: dict[str, Any]) -> None:
    secret = bytes.fromhex(RECEIPTS["installation_secret"])
    assert crypto.b64encode(receipts.salt_of(secret)) == RECEIPTS["salt_b64"]
    derived = receipts.derive(vector["receipt"], secret, vector["opslimit"], vector["memlimit"])
    assert derived.lookup.hex() == vector["lookup"]
    assert derived.reply_public_key.hex() == vector["reply_public_key"]
