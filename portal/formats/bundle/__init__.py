"""Bundle v1: the uncompressed tar that carries sealed submissions between machines.

`portal-bundle.json` lists the submissions; each submission ID has `ID/manifest.sealed` and
`ID/files/0.blob`, `ID/files/1.blob`, ... . Bundles are written as a stream of tar blocks so
that a bundle of any size is never held in memory, and read member by member with every name
checked against that layout: a name from a bundle is never used as a path. A reader takes plain
files only (folders are passed over; pax records that set no size are allowed), and their sizes
must fit in the bytes of the tar (see `tarmembers`); the JSON of the index may nest at most
`envelope.MAX_JSON_DEPTH` levels.

An index entry may carry optional fields beyond `id`, `case`, `kind`, `received_day` and
`files`: `recipient` ("submitter" or "team", on replies), `reply_public_key` (base64 of the
case's 32-byte reply key, as the server holds it) and `receipt_lookup` (base64 of a 32-byte
receipt lookup value, in a relay's case file whose receipt the relay made: see `receipts`).
Readers ignore fields they do not know, so older readers open newer bundles; the index is
written by whoever made the bundle and authenticates nothing.

The package holds all a bundle's layout: `layout` (the names of members and of stored sealed
files, entry ids, the index), `writing` (the stream of tar blocks and its length, a bundle
file written durably and read back) and `reading` (the `Reader`). Its names are used as
`bundle.Reader`, `bundle.stream` and so on.
"""

from __future__ import annotations

from portal.formats.bundle.layout import (
    BLOCK,
    COPY_BLOCK,
    DAY_PATTERN,
    ENTRY_ID_BYTES,
    FORMAT,
    ID_PATTERN,
    INDEX_NAME,
    MAX_INDEX_BYTES,
    MEMBER_PATTERN,
    STORED_MANIFEST,
    VERSION,
    BundleError,
    Entry,
    blob_name,
    index_bytes,
    manifest_name,
    new_id,
    parse_index,
    stored_blob,
)
from portal.formats.bundle.reading import Reader, read_bytes, starts_bundle
from portal.formats.bundle.writing import (
    Member,
    WriteError,
    bytes_member,
    length,
    members_of,
    stream,
    write,
    write_file,
)

__all__ = [
    "BLOCK",
    "COPY_BLOCK",
    "DAY_PATTERN",
    "ENTRY_ID_BYTES",
    "FORMAT",
    "ID_PATTERN",
    "INDEX_NAME",
    "MAX_INDEX_BYTES",
    "MEMBER_PATTERN",
    "STORED_MANIFEST",
    "VERSION",
    "BundleError",
    "Entry",
    "Member",
    "Reader",
    "WriteError",
    "blob_name",
    "bytes_member",
    "index_bytes",
    "length",
    "manifest_name",
    "members_of",
    "new_id",
    "parse_index",
    "read_bytes",
    "starts_bundle",
    "stored_blob",
    "stream",
    "write",
    "write_file",
]
