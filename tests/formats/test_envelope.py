"""Envelope v1: the manifest's JSON, its padding, sealing, and every rule a manifest must follow."""

from __future__ import annotations

import json
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from portal.formats import crypto, envelope


def manifest(**changes: Any) -> envelope.Manifest:
    values: dict[str, Any] = {
        "kind": "report",
        "sealed_by": "browser",
        "locale": "en",
        "fields": {"description": "Threatened after the session.", "violations": ["threats"]},
        "files": (envelope.FileEntry("photo.jpg", "image/jpeg", 12, bytes(range(32))),),
    }
    values.update(changes)
    return envelope.Manifest(**values)


def document(**changes: Any) -> dict[str, Any]:
    text = manifest().to_json()
    text.update(changes)
    return text


def test_to_json_keeps_the_format_order() -> None:
    keys = list(manifest(reply_public_key=bytes(32)).to_json())
    assert keys == [
        "format", "version", "kind", "sealed_by", "locale", "fields", "files", "reply_public_key",
    ]  # fmt: skip
    assert "reply_public_key" not in manifest().to_json()


def test_json_text_is_compact_utf8() -> None:
    text = manifest(fields={"description": "تم حظر سفري"}).json_text()
    assert b" " not in text.replace("تم حظر سفري".encode(), b"")
    assert "تم حظر سفري".encode() in text


@pytest.mark.parametrize(
    ("length", "padded"), [(1, 4096), (4095, 4096), (4096, 4096), (4097, 8192)]
)
def test_pad(length: int, padded: int) -> None:
    result = envelope.pad(b"x" * length)
    assert len(result) == padded
    assert result[length:] == b" " * (padded - length)


def test_seal_and_open_round_trip() -> None:
    secret, public = crypto.generate_keypair()
    original = manifest(reply_public_key=bytes(range(32)))
    sealed = envelope.seal_manifest(original, public)
    assert (len(sealed) - crypto.SEAL_OVERHEAD) % envelope.PADDING == 0
    assert envelope.open_manifest(sealed, secret) == original


def test_manifest_of_a_different_length_seals_to_the_same_size() -> None:
    _, public = crypto.generate_keypair()
    short = envelope.seal_manifest(manifest(fields={"description": "a"}), public)
    longer = envelope.seal_manifest(manifest(fields={"description": "a" * 3000}), public)
    assert len(short) == len(longer)


def test_seal_manifest_refuses_more_than_a_megabyte() -> None:
    _, public = crypto.generate_keypair()
    with pytest.raises(envelope.EnvelopeError, match="too long"):
        envelope.seal_manifest(manifest(fields={"description": "x" * 1024 * 1024}), public)


def test_open_manifest_with_another_key() -> None:
    _, public = crypto.generate_keypair()
    other, _ = crypto.generate_keypair()
    with pytest.raises(crypto.WrongKey):
        envelope.open_manifest(envelope.seal_manifest(manifest(), public), other)


BAD_DOCUMENTS: list[tuple[str, object]] = [
    ("not an object", ["a list"]),
    ("other format", document(format="other")),
    ("version 2", document(version=2)),
    ("unknown kind", document(kind="complaint")),
    ("unknown sealer", document(sealed_by="someone")),
    ("no locale", document(locale="")),
    ("long locale", document(locale="x" * 17)),
    ("fields a list", document(fields=["a"])),
    ("field a number", document(fields={"description": 3})),
    ("field a mixed list", document(fields={"violations": ["threats", 3]})),
    ("files an object", document(files={})),
    ("file not an object", document(files=["photo.jpg"])),
    ("file without name", document(files=[{"type": "x", "size": 1, "key": "A" * 43 + "="}])),
    ("file negative size", document(files=[{"name": "a", "type": "b", "size": -1, "key": ""}])),
    ("file size true", document(files=[{"name": "a", "type": "b", "size": True, "key": ""}])),
    ("file size text", document(files=[{"name": "a", "type": "b", "size": "1", "key": ""}])),
    ("file short key", document(files=[{"name": "a", "type": "b", "size": 1, "key": "QUJD"}])),
    ("too many files", document(files=[manifest().files[0].to_json()] * 101)),
    ("bad reply key", document(reply_public_key="QUJD")),
]


@pytest.mark.parametrize(("label", "value"), BAD_DOCUMENTS, ids=[b[0] for b in BAD_DOCUMENTS])
def test_parse_manifest_refuses(label: str, value: object) -> None:
    with pytest.raises(envelope.EnvelopeError):
        envelope.parse_manifest(envelope.pad(json.dumps(value).encode()))


@pytest.mark.parametrize("text", [b"\xff\xfe", b"{not json", b""])
def test_parse_manifest_refuses_non_json(text: bytes) -> None:
    with pytest.raises(envelope.EnvelopeError, match="UTF-8 JSON"):
        envelope.parse_manifest(text)


@pytest.mark.parametrize(
    "text",
    [b"[" * 200_000, b'{"a": ' + b"[" * 32 + b"]" * 32 + b"}", b'{"a": "x\\\\"' + b"[" * 99],
    ids=["deep", "one-level-too-deep", "escaped-backslash-then-brackets"],
)
def test_parse_manifest_refuses_json_nested_too_deep(text: bytes) -> None:
    with pytest.raises(envelope.EnvelopeError, match="nests deeper than 32 levels"):
        envelope.parse_manifest(envelope.pad(text))


def test_json_as_deep_as_allowed_is_parsed() -> None:
    text = b'{"a": ' + b"[" * 31 + b'"[[{\\"["' + b"]" * 31 + b"}"
    value = envelope.load_json(text)["a"]
    for _level in range(31):
        (value,) = value
    assert value == '[[{"['


@pytest.mark.parametrize(
    "length",
    [0, crypto.SEAL_OVERHEAD, crypto.SEAL_OVERHEAD + 4095, crypto.SEAL_OVERHEAD + 4097,
     crypto.SEAL_OVERHEAD + envelope.MAX_MANIFEST_BYTES + 4096],
)  # fmt: skip
def test_sealed_manifest_length_check_refuses(length: int) -> None:
    with pytest.raises(envelope.EnvelopeError, match="sealed manifest"):
        envelope.check_sealed_manifest_length(length)


@pytest.mark.parametrize(
    "length", [crypto.SEAL_OVERHEAD + 4096, crypto.SEAL_OVERHEAD + envelope.MAX_MANIFEST_BYTES]
)
def test_sealed_manifest_length_check_accepts(length: int) -> None:
    envelope.check_sealed_manifest_length(length)
    # The lengths either side of an honest one are refused: the check is exact, not loose.
    for off_by_one in (length - 1, length + 1):
        with pytest.raises(envelope.EnvelopeError, match="48 bytes more"):
            envelope.check_sealed_manifest_length(off_by_one)


@pytest.mark.parametrize(
    "length", [0, 1, crypto.SEALED_CHUNK_SIZE - 1, crypto.SEALED_CHUNK_SIZE + 16]
)
def test_blob_length_check(length: int) -> None:
    with pytest.raises(envelope.EnvelopeError, match="sealed chunks"):
        envelope.check_blob_length(length, 0)
    envelope.check_blob_length(2 * crypto.SEALED_CHUNK_SIZE, 0)


field_values = st.one_of(st.text(max_size=50), st.lists(st.text(max_size=10), max_size=4))


@settings(max_examples=60, deadline=None)
@given(
    fields=st.dictionaries(st.text(min_size=1, max_size=20), field_values, max_size=6),
    names=st.lists(st.text(max_size=30), max_size=3),
    locale=st.text(min_size=1, max_size=16),
)
def test_any_manifest_round_trips_through_its_text(
    fields: dict[str, envelope.FieldValue], names: list[str], locale: str
) -> None:
    files = tuple(
        envelope.FileEntry(n, "application/octet-stream", i, bytes(32)) for i, n in enumerate(names)
    )
    original = manifest(fields=fields, files=files, locale=locale)
    assert envelope.parse_manifest(envelope.pad(original.json_text())) == original
