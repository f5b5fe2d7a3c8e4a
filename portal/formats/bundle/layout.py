"""Bundle v1's layout: the names of its members, its index and the entries the index lists.

The names are those of the stored folders too: a submission's sealed files lie in a folder as
`manifest.sealed` and `N.blob` (`STORED_MANIFEST`, `stored_blob`), in the blob store and in a
resumable upload's `files/`, and travel in a bundle as `ID/manifest.sealed` and `ID/files/N.blob`.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from portal.formats import crypto, envelope

FORMAT = "portal-bundle"
VERSION = 1
INDEX_NAME = "portal-bundle.json"
BLOCK = tarfile.BLOCKSIZE
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MEMBER_PATTERN = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9_-]{0,63})/(manifest\.sealed|files/(\d{1,3})\.blob)$"
)
MAX_INDEX_BYTES = 16 * 1024 * 1024
# How much of a member is read at a time, writing a bundle or reading one.
COPY_BLOCK = 1024 * 1024
# A submission's sealed files in a folder (the blob store's, a resumable upload's): the manifest,
# and blob N as `stored_blob(N)`. A bundle carries them under `ID/` and `ID/files/`.
STORED_MANIFEST = "manifest.sealed"
ENTRY_ID_BYTES = 10  # 80 bits: 16 base32 characters


class BundleError(envelope.EnvelopeError):
    """A bundle breaks the format; the message says how."""


@dataclass(frozen=True)
class Entry:
    """One submission as the bundle index lists it."""

    id: str
    case: str
    kind: str
    received_day: str
    files: int
    # Replies carry two sealed copies: one to the submitter's reply key, one to the team key.
    recipient: str | None = None
    # The case's reply public key (base64) as the server holds it. Not authenticated: the
    # offline machine prefers the copy sealed inside the manifest (see `replykeys`).
    reply_public_key: str | None = None
    # In a relay's case file whose receipt the relay made: the receipt's lookup value (base64),
    # from which the site opens the case without ever seeing the receipt.
    receipt_lookup: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The index's object for this submission."""
        document: dict[str, Any] = {
            "id": self.id,
            "case": self.case,
            "kind": self.kind,
            "received_day": self.received_day,
            "files": self.files,
        }
        if self.recipient is not None:
            document["recipient"] = self.recipient
        if self.reply_public_key is not None:
            document["reply_public_key"] = self.reply_public_key
        if self.receipt_lookup is not None:
            document["receipt_lookup"] = self.receipt_lookup
        return document


def new_id(random_bytes: int = ENTRY_ID_BYTES) -> str:
    """A fresh submission or case id from the OS random source, as lowercase base32: by
    default 80 random bits in 16 characters.

    Ids of this default length live only inside a relay's own case file and, offline, in
    replies' bundles: the site files every upload under ids of its own, made here too but
    longer (`portal.server.storage.new_id`, 120 bits), so the two need not agree in length.
    80 bits keep a relay's file names short, and cannot collide within one organisation's
    files in practice. Every length fits the bundle's id pattern (at most 64 characters).
    """
    if not 5 <= random_bytes <= 40 or random_bytes % 5:
        raise ValueError("an id is made of a whole number of base32 blocks, 5 to 40 bytes")
    return base64.b32encode(secrets.token_bytes(random_bytes)).decode("ascii").lower()


def stored_blob(index: int) -> str:
    """The file name of blob `index` in a submission folder."""
    return f"{index}.blob"


def manifest_name(entry_id: str) -> str:
    """The tar member name of a submission's sealed manifest."""
    return f"{entry_id}/{STORED_MANIFEST}"


def blob_name(entry_id: str, index: int) -> str:
    """The tar member name of a submission's blob `index`."""
    return f"{entry_id}/files/{stored_blob(index)}"


def index_bytes(entries: Iterable[Entry]) -> bytes:
    """The JSON text of the bundle index."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "submissions": [entry.to_json() for entry in entries],
    }
    return json.dumps(document, indent=1).encode("utf-8") + b"\n"


def parse_index(data: bytes) -> list[Entry]:
    """Parse and check a bundle index."""
    try:
        document = envelope.load_json(data)
    except ValueError as exc:
        raise BundleError(f"The bundle's index cannot be read as UTF-8 JSON: {exc}.") from exc
    if (
        not isinstance(document, dict)
        or document.get("format") != FORMAT
        or document.get("version") != VERSION
    ):
        raise BundleError("This is not a portal bundle of version 1.")
    raw = document.get("submissions")
    if not isinstance(raw, list):
        raise BundleError("The bundle's index lists no submissions.")
    entries, seen = [], set()
    for item in raw:
        entry = _check_entry(item)
        if entry.id in seen:
            raise BundleError(f"The bundle lists submission {entry.id} twice.")
        seen.add(entry.id)
        entries.append(entry)
    return entries


def _check_entry(item: object) -> Entry:
    if not isinstance(item, dict):
        raise BundleError("A submission in the bundle's index is malformed.")
    entry_id, case, kind = item.get("id"), item.get("case"), item.get("kind")
    day, files, recipient = item.get("received_day"), item.get("files"), item.get("recipient")
    if not isinstance(entry_id, str) or not ID_PATTERN.match(entry_id):
        raise BundleError(f"A submission id in the bundle is malformed: {entry_id!r}.")
    if not isinstance(case, str) or not ID_PATTERN.match(case):
        raise BundleError(f"Submission {entry_id} has a malformed case id.")
    if kind not in envelope.KINDS:
        raise BundleError(f"Submission {entry_id} has an unknown kind {kind!r}.")
    if not isinstance(day, str) or not DAY_PATTERN.match(day):
        raise BundleError(f"Submission {entry_id} has a malformed day.")
    if (
        not isinstance(files, int)
        or isinstance(files, bool)
        or not 0 <= files <= envelope.MAX_FILES
    ):
        raise BundleError(f"Submission {entry_id} has a malformed file count.")
    if recipient not in (None, "submitter", "team"):
        raise BundleError(f"Submission {entry_id} has an unknown recipient.")
    reply_key, lookup = item.get("reply_public_key"), item.get("receipt_lookup")
    for value, length, what in ((reply_key, crypto.KEY_BYTES, "reply key"), (lookup, 32, "lookup")):
        if value is None:
            continue
        try:
            crypto.b64decode(value if isinstance(value, str) else "?", length)
        except crypto.CryptoError as exc:
            raise BundleError(f"Submission {entry_id} has a malformed {what}.") from exc
    return Entry(
        entry_id,
        case,
        str(kind),
        day,
        files,
        recipient,
        None if reply_key is None else str(reply_key),
        None if lookup is None else str(lookup),
    )
