"""Envelope v1: the sealed manifest of one submission and the rules its pieces must follow.

The manifest is compact UTF-8 JSON padded with spaces to a multiple of 4096 bytes and sealed
to the recipient with crypto_box_seal; each attached file is a blob (see `crypto`). The same
bytes come from the browser, the server and the relay tool, and `portal decrypt` opens them all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from portal import crypto

FORMAT = "portal-envelope"
VERSION = 1
KINDS = ("report", "follow-up", "reply")
SEALERS = ("browser", "server", "relay-tool")
PADDING = 4096
# A manifest carries text and file keys, never file contents: a megabyte is far beyond any
# honest report, and the cap keeps a hostile upload from costing memory.
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_FILES = 100
# Neither a bundle's index nor a manifest nests more than three levels: anything far deeper is
# hostile, and Python's JSON parser recurses once per level.
MAX_JSON_DEPTH = 32
# A JSON string, or what is left of one that never closes; brackets inside strings do not nest.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_JSON_BRACKETS = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}

FieldValue = str | list[str]


class EnvelopeError(crypto.CryptoError):
    """An envelope or a piece of one breaks the format; the message says how."""


@dataclass(frozen=True)
class FileEntry:
    """One attached file as the manifest describes it."""

    name: str
    type: str
    size: int
    key: bytes

    def to_json(self) -> dict[str, Any]:
        """The manifest's object for this file."""
        return {
            "name": self.name,
            "type": self.type,
            "size": self.size,
            "key": crypto.b64encode(self.key),
        }


@dataclass(frozen=True)
class Manifest:
    """The contents of a sealed manifest."""

    kind: str
    sealed_by: str
    locale: str
    fields: dict[str, FieldValue] = field(default_factory=dict)
    files: tuple[FileEntry, ...] = ()
    reply_public_key: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        """The manifest as a JSON object, keys in the order of the format."""
        document: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "kind": self.kind,
            "sealed_by": self.sealed_by,
            "locale": self.locale,
            "fields": self.fields,
            "files": [entry.to_json() for entry in self.files],
        }
        if self.reply_public_key is not None:
            document["reply_public_key"] = crypto.b64encode(self.reply_public_key)
        return document

    def json_text(self) -> bytes:
        """The compact UTF-8 JSON text, before padding."""
        return json_bytes(self.to_json())


def json_bytes(document: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as every sealer writes it."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def load_json(data: bytes) -> Any:
    """Parse the UTF-8 JSON of a bundle's index or a manifest; ValueError when it is not.

    The nesting is measured first, without recursion, so that a file of brackets gets the
    format's own error where the parser would end in RecursionError.
    """
    text = data.decode("utf-8")
    brackets = _JSON_BRACKETS.sub("", _JSON_STRING.sub("", text))
    if max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > MAX_JSON_DEPTH:
        raise ValueError(f"it nests deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(text)


def pad(text: bytes) -> bytes:
    """Pad JSON text with ASCII spaces to the next multiple of 4096 bytes."""
    return text + b" " * (-len(text) % PADDING)


def parse_manifest(text: bytes) -> Manifest:
    """Parse and check padded manifest JSON; EnvelopeError says what is wrong."""
    try:
        document = load_json(text)
    except ValueError as exc:
        raise EnvelopeError(f"The manifest cannot be read as UTF-8 JSON: {exc}.") from exc
    if not isinstance(document, dict):
        raise EnvelopeError("The manifest is not a JSON object.")
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise EnvelopeError("The manifest is not a portal envelope of version 1.")
    kind, sealed_by, locale = (
        document.get("kind"),
        document.get("sealed_by"),
        document.get("locale"),
    )
    if kind not in KINDS:
        raise EnvelopeError(f"The manifest's kind {kind!r} is unknown.")
    if sealed_by not in SEALERS:
        raise EnvelopeError(f"The manifest's sealed_by {sealed_by!r} is unknown.")
    if not isinstance(locale, str) or not 0 < len(locale) <= 16:
        raise EnvelopeError("The manifest's locale is missing.")
    fields = _check_fields(document.get("fields", {}))
    raw_files = document.get("files", [])
    if not isinstance(raw_files, list) or len(raw_files) > MAX_FILES:
        raise EnvelopeError("The manifest's file list is malformed.")
    files = tuple(_check_file(entry, i) for i, entry in enumerate(raw_files))
    reply_key = document.get("reply_public_key")
    reply_public_key = None
    if reply_key is not None:
        try:
            reply_public_key = crypto.b64decode(str(reply_key), crypto.KEY_BYTES)
        except crypto.CryptoError as exc:
            raise EnvelopeError("The manifest's reply key is malformed.") from exc
    return Manifest(kind, sealed_by, locale, fields, files, reply_public_key)


def _check_fields(raw: object) -> dict[str, FieldValue]:
    if not isinstance(raw, dict):
        raise EnvelopeError("The manifest's fields are not an object.")
    fields: dict[str, FieldValue] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            fields[name] = value
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            fields[name] = list(value)
        else:
            raise EnvelopeError(
                f"The manifest's field {name!r} is neither text nor a list of text."
            )
    return fields


def _check_file(entry: object, index: int) -> FileEntry:
    if not isinstance(entry, dict):
        raise EnvelopeError(f"File {index} of the manifest is malformed.")
    name, kind, size = entry.get("name"), entry.get("type"), entry.get("size")
    if not isinstance(name, str) or not isinstance(kind, str):
        raise EnvelopeError(f"File {index} of the manifest has no name or type.")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise EnvelopeError(f"File {index} of the manifest has no valid size.")
    try:
        key = crypto.b64decode(str(entry.get("key")), crypto.KEY_BYTES)
    except crypto.CryptoError as exc:
        raise EnvelopeError(f"File {index} of the manifest has no valid key.") from exc
    return FileEntry(name, kind, size, key)


def seal_manifest(manifest: Manifest, public_key: bytes) -> bytes:
    """Pad and seal a manifest to a public key."""
    padded = pad(manifest.json_text())
    if len(padded) > MAX_MANIFEST_BYTES:
        raise EnvelopeError("The report is too long: the manifest exceeds one megabyte.")
    return crypto.seal(padded, public_key)


def open_manifest(sealed: bytes, secret_key: bytes) -> Manifest:
    """Check, open and parse a sealed manifest."""
    check_sealed_manifest_length(len(sealed))
    return parse_manifest(crypto.open_sealed(sealed, secret_key))


def check_sealed_manifest_length(length: int) -> None:
    """Refuse a sealed manifest whose length no honest sealer could have produced."""
    body = length - crypto.SEAL_OVERHEAD
    if body <= 0 or body % PADDING or length > MAX_MANIFEST_BYTES + crypto.SEAL_OVERHEAD:
        raise EnvelopeError(
            f"The sealed manifest is {length} bytes; it must be 48 bytes more than a whole "
            f"number of 4096-byte blocks, at most one megabyte."
        )


def check_blob_length(length: int, index: int) -> None:
    """Refuse a blob that is not a whole, non-zero number of sealed chunks."""
    if length <= 0 or length % crypto.SEALED_CHUNK_SIZE:
        raise EnvelopeError(
            f"File {index} is {length} bytes, which is not a whole number of "
            f"{crypto.SEALED_CHUNK_SIZE}-byte sealed chunks."
        )
