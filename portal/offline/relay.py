"""Sealing cases offline, as relaying organisations do: checked fields, streamed files, bundles.

A sealed case file is a bundle holding one report, written exactly as the browser and the
server write theirs, so the public site accepts it as an upload and `portal decrypt` opens it.
Files are encrypted as they are read, straight into the bundle, and the bundle appears under
its final name only once it is complete and has been read back (`bundle.write_file`).

When the site's key file publishes its receipt salt and cost, the relay makes each case's
receipt (`receipts.for_relay`): the case's reply key is sealed inside the manifest, and the
index entry carries the receipt's lookup value and the reply key, from which the site opens the
case without ever seeing the receipt.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import mimetypes
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from portal.formats import answers, bundle, crypto, days, envelope, fields, questionnaire, receipts

LOCALE_PATTERN = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$")
# USTAR records sizes in 11 octal digits; the bundle format uses plain USTAR headers.
MAX_BLOB_BYTES = 8**11 - 1
CASE_KEYS = frozenset({"fields", "files", "locale"})
SPECIAL_COLUMNS = ("attachments", "locale")

Progress = Callable[[int], None]


class SealError(Exception):
    """A case cannot be sealed as given; the message says what to change."""


@dataclass(frozen=True)
class Case:
    """One case to seal: its checked fields, the files to attach and its language."""

    fields: dict[str, envelope.FieldValue]
    files: tuple[Path, ...]
    locale: str
    where: str

    def total_bytes(self) -> int:
        """The bytes of all its files, for progress bars."""
        return sum(path.stat().st_size for path in self.files)


def known_fields() -> str:
    """The report's field names, for messages."""
    return ", ".join(f.name for f in questionnaire.REPORT_FIELDS)


# ---------------------------------------------------------------------------------------------
# Reading and checking cases


def parse_field_options(pairs: Sequence[str]) -> dict[str, object]:
    """Turn repeated `NAME=VALUE` options into raw field values; checkbox fields build lists."""
    raw: dict[str, object] = {}
    choices: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SealError(f"--field {pair!r} is not of the form NAME=VALUE.")
        field = _known_field(name, "--field")
        if field.kind == fields.CHECKBOXES:
            raw[name] = choices.setdefault(name, [])
            choices[name].append(value)
        elif name in raw:
            raise SealError(f"--field {name} is given twice, but it takes one answer.")
        else:
            raw[name] = value
    return raw


def _known_field(name: str, where: str) -> fields.Field:
    field = questionnaire.FIELDS_BY_NAME.get(name)
    if field is None:
        raise SealError(
            f"{where}: the report has no field {name!r}. Known fields: {known_fields()}."
        )
    return field


def normalise_fields(raw: Mapping[str, object], where: str) -> dict[str, envelope.FieldValue]:
    """Check names and value types, then apply the form's rules: LF line ends, no empty answers."""
    values: dict[str, envelope.FieldValue] = {}
    for name, value in raw.items():
        field = _known_field(name, where)
        if isinstance(value, str):
            items = [value]
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            if field.kind != fields.CHECKBOXES:
                raise SealError(f"{where}: the field {name} takes one answer, not a list.")
            items = list(value)
        else:
            raise SealError(f"{where}: the field {name} must be text or a list of text.")
        items = [item.replace("\r\n", "\n").replace("\r", "\n") for item in items]
        if field.kind == fields.CHECKBOXES:
            chosen = [item.strip() for item in items if item.strip()]
            if chosen:
                values[name] = chosen
        elif items[0].strip():
            values[name] = items[0].strip() if field.kind == fields.RADIO else items[0]
    return values


def check_case(case: Case) -> None:
    """Refuse a case the web form would refuse, or whose files cannot be sealed."""
    problems = answers.check(case.fields, questionnaire.REPORT_FIELDS)
    if problems:
        lines = []
        for problem in problems:
            field = questionnaire.FIELDS_BY_NAME[problem.field]
            choices = ", ".join(value for value, _ in field.choices)
            if field.territories:
                choices = "an ISO 3166-1 alpha-2 code such as KE or UA, or other"
            elif field.pattern:
                choices = "YYYY-MM" if field.kind == fields.MONTH else "digits"
            hint = f" (choices: {choices})" if choices else ""
            lines.append(f"{problem.field}: {problem.message}{hint}")
        raise SealError(f"{case.where}: " + "; ".join(lines))
    if not LOCALE_PATTERN.match(case.locale) or len(case.locale) > 16:
        raise SealError(f"{case.where}: {case.locale!r} is not a language code such as en or fr.")
    if len(case.files) > envelope.MAX_FILES:
        raise SealError(f"{case.where}: at most {envelope.MAX_FILES} files can be attached.")
    for path in case.files:
        if not path.is_file():
            raise SealError(f"{case.where}: {path} is not a file that can be attached.")
        if not os.access(path, os.R_OK):
            raise SealError(f"{case.where}: {path} cannot be read.")
        if crypto.blob_length(path.stat().st_size) > MAX_BLOB_BYTES:
            raise SealError(f"{case.where}: {path} is too large (the limit is 8 GiB).")


def make_case(
    raw_fields: Mapping[str, object], files: Iterable[Path], locale: str, where: str
) -> Case:
    """Build and check one case."""
    case = Case(normalise_fields(raw_fields, where), tuple(files), locale, where)
    check_case(case)
    return case


def load_json(path: Path, default_locale: str) -> tuple[list[Case], bool]:
    """Read cases from JSON: one case object, or a list of them. Returns (cases, was a list)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SealError(f"{path} cannot be read as UTF-8 JSON: {exc}.") from exc
    shape = '{"fields": {"description": "..."}, "files": ["photo.jpg"], "locale": "en"}'
    if isinstance(document, dict):
        return [_json_case(document, path, default_locale, f"{path.name}")], False
    if not isinstance(document, list) or not document:
        raise SealError(f"{path} must hold one case object or a list of them, each like {shape}.")
    cases = [
        _json_case(item, path, default_locale, f"case {number} of {path.name}")
        for number, item in enumerate(document, 1)
    ]
    return cases, True


def _json_case(item: object, path: Path, default_locale: str, where: str) -> Case:
    if not isinstance(item, dict) or not isinstance(item.get("fields"), dict):
        raise SealError(
            f'{where}: a case is an object with "fields" (and optional "files", "locale").'
        )
    unknown = sorted(set(item) - CASE_KEYS)
    if unknown:
        raise SealError(
            f'{where}: unknown key {unknown[0]!r}; a case has "fields", "files", "locale".'
        )
    files = item.get("files", [])
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        raise SealError(f'{where}: "files" must be a list of paths.')
    locale = item.get("locale", default_locale)
    if not isinstance(locale, str):
        raise SealError(f'{where}: "locale" must be a language code such as "en".')
    return make_case(item["fields"], [path.parent / name for name in files], locale, where)


def load_csv(path: Path, default_locale: str) -> list[Case]:
    """Read cases from CSV: a row per case, a column per field, `;` between several values."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SealError(f"{path} cannot be read as UTF-8 CSV: {exc}.") from exc
    if not rows:
        raise SealError(f"{path} is empty; its first row names the fields.")
    header = [name.strip() for name in rows[0]]
    for name in header:
        if name not in SPECIAL_COLUMNS:
            _known_field(name, f"{path.name}, first row")
    if len(set(header)) != len(header):
        raise SealError(f"{path.name}: a column name appears twice in the first row.")
    cases = []
    for number, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"row {number} of {path.name}"
        if len(row) > len(header):
            raise SealError(f"{where} has more cells than the first row has names.")
        cells = dict(zip(header, row, strict=False))
        raw: dict[str, object] = {}
        for name, cell in cells.items():
            if name in SPECIAL_COLUMNS:
                continue
            if questionnaire.FIELDS_BY_NAME[name].kind == fields.CHECKBOXES:
                raw[name] = cell.split(";")
            else:
                raw[name] = cell
        files = [
            path.parent / p.strip() for p in cells.get("attachments", "").split(";") if p.strip()
        ]
        locale = cells.get("locale", "").strip() or default_locale
        cases.append(make_case(raw, files, locale, where))
    if not cases:
        raise SealError(f"{path} holds no cases below its first row.")
    return cases


# ---------------------------------------------------------------------------------------------
# Sealing


class _EncryptedBlob:
    """Reads as the blob of a file, encrypting one chunk as the bundle writer asks for it.

    A chunk is encrypted once the next one has been read, since only then is it known whether
    it is the last. A file that grows or shrinks while it is read is refused, never sealed
    with a size that does not match its blob.
    """

    def __init__(self, path: Path, key: bytes, size: int, progress: Progress | None) -> None:
        self._path = path
        self._source = path.open("rb")
        self._key = key
        self._expected = size
        self._progress = progress
        self._chunks = self._encrypted()
        self._pending = b""

    def _read_chunk(self) -> bytes:
        parts, wanted = [], crypto.CHUNK_SIZE
        while wanted and (data := self._source.read(wanted)):
            parts.append(data)
            wanted -= len(data)
        return b"".join(parts)

    def _encrypted(self) -> Iterator[bytes]:
        index, total = 0, 0
        current = self._read_chunk()
        while True:
            following = self._read_chunk() if len(current) == crypto.CHUNK_SIZE else b""
            last = not following
            total += len(current)
            if total > self._expected or (last and total != self._expected):
                raise SealError(f"{self._path} changed while it was being sealed; seal it again.")
            padded = current.ljust(crypto.CHUNK_SIZE, b"\0") if last else current
            yield crypto.encrypt_chunk(padded, self._key, index, last)
            if self._progress is not None:
                self._progress(len(current))
            if last:
                return
            current, index = following, index + 1

    def read(self, size: int = -1) -> bytes:
        """The next bytes of the blob (at most one sealed chunk); empty at its end."""
        if not self._pending:
            self._pending = next(self._chunks, b"")
        if 0 <= size < len(self._pending):
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        data, self._pending = self._pending, b""
        return data

    def close(self) -> None:
        """Close the file being sealed."""
        self._source.close()

    def __enter__(self) -> _EncryptedBlob:
        """Used by the bundle writer as a context manager."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the file on leaving the block."""
        self.close()


def _blob_member(
    name: str, path: Path, entry: envelope.FileEntry, progress: Progress | None
) -> bundle.Member:
    def opener() -> BinaryIO:
        return cast(BinaryIO, _EncryptedBlob(path, entry.key, entry.size, progress))

    return bundle.Member(name, crypto.blob_length(entry.size), opener)


def _file_name(path: Path) -> str:
    # A name that is not valid UTF-8 on disk still travels, with replacement characters.
    return path.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def seal_case(
    case: Case,
    public_key: bytes,
    out: Path,
    progress: Progress | None = None,
    receipt: receipts.Derived | None = None,
) -> bundle.Entry:
    """Seal one case to `public_key` into the bundle file `out`; return its index entry.

    With `receipt` (what the relay's own receipt derives), its reply key goes inside the sealed
    manifest, and the key and lookup value into the index entry for the site.
    """
    entries = []
    sizes = [path.stat().st_size for path in case.files]
    for path, size in zip(case.files, sizes, strict=True):
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        entries.append(envelope.FileEntry(_file_name(path), kind, size, crypto.new_file_key()))
    manifest = envelope.Manifest(
        kind="report",
        sealed_by="relay-tool",
        locale=case.locale,
        fields=case.fields,
        files=tuple(entries),
        reply_public_key=None if receipt is None else receipt.reply_public_key,
    )
    sealed = envelope.seal_manifest(manifest, public_key)
    entry = bundle.Entry(bundle.new_id(), bundle.new_id(), "report", days.today_iso(), len(entries))
    if receipt is not None:
        entry = dataclasses.replace(
            entry,
            reply_public_key=crypto.b64encode(receipt.reply_public_key),
            receipt_lookup=crypto.b64encode(receipt.lookup),
        )
    members = [bundle.bytes_member(bundle.manifest_name(entry.id), sealed)]
    members += [
        _blob_member(bundle.blob_name(entry.id, i), path, file_entry, progress)
        for i, (path, file_entry) in enumerate(zip(case.files, entries, strict=True))
    ]
    try:
        bundle.write_file(out, [entry], members)
    except bundle.WriteError as exc:
        raise SealError(str(exc)) from exc
    return entry
