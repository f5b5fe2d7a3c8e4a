"""Opening bundles into case folders on the offline machine, and the index of every case.

Each submission opens into its own folder: a report into `OUT/<case>/`, a follow-up or a reply
into `OUT/<case>/<day>-<kind>-<id>/`, each with `report.txt` (for people), `report.json` (for
tools) and `attachments/`. Everything is written first into a hidden staging folder beside its
destination and moved into place only when every byte has been authenticated, so a failure
leaves nothing that looks like a good result. Names from a bundle are never used as paths:
case and submission ids are checked by `bundle`, and attachment names are rewritten here.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import queue
import re
import shutil
import tarfile
import threading
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from portal import bundle, crypto, envelope, replykeys, schema

OPENED, SKIPPED, REFUSED, FAILED, NOTE = "opened", "skipped", "refused", "failed", "note"
REPORT_TXT, REPORT_JSON, ATTACHMENTS = "report.txt", "report.json", "attachments"
STAGING_PREFIX = ".opening-"
MAX_NAME_BYTES = 150
WRITE_BATCH = 16  # chunks per write: a mebibyte
WRITE_QUEUE = 8  # batches in flight between the cipher and the disk
WRITEBACK_WINDOW = 64 * 1024 * 1024
MAX_EXTENSION_CHARS = 16
WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789¹²³"}
)
# Characters Windows refuses in names; `/` and `\` are path separators everywhere that matters.
FORBIDDEN_CHARS = frozenset('<>:"/\\|?*')
# Zero-width joiners belong to Persian, Arabic and emoji spelling; other format characters
# (bidirectional overrides above all) can make "gpj.exe" read as "exe.jpg".
KEPT_FORMAT_CHARS = frozenset("\u200c\u200d")
EXTENSION = re.compile(rf"(\.[^.\s]{{1,{MAX_EXTENSION_CHARS}}})$")
LANGUAGES = {
    "ar": "Arabic",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "ru": "Russian",
    "zh": "Chinese",
}
KIND_TITLES = {
    "report": "Report",
    "follow-up": "Follow-up from the submitter",
    "reply": "Reply from the team",
}
SEALERS = {
    "browser": "the submitter's browser (sealed before it left their computer)",
    "server": (
        "the portal's server (the submitter's browser ran no JavaScript, so the server "
        "sealed it on arrival, in memory)"
    ),
    "relay-tool": "the offline sealing tool (a relaying organisation, or the team for a reply)",
}
REPLY_FIELDS = (schema.Field("message", schema.TEXTAREA, "Message from the team"),)

Progress = Callable[[int], None]


class OpenError(Exception):
    """One submission cannot be opened; the message is one line for the team."""


@dataclass
class Outcome:
    """What happened to one submission of one bundle."""

    bundle: str
    submission: str
    case: str
    kind: str
    status: str
    message: str
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    wrong_key: bool = False

    def line(self) -> str:
        """One line naming the bundle, the case and the submission."""
        where = f"{self.bundle}: case {self.case}, {self.kind} {self.submission}"
        if self.status == OPENED:
            return f"opened   {where} -> {self.path}"
        return f"{self.status:<8} {where}: {self.message}"


# ---------------------------------------------------------------------------------------------
# Attachment names


def safe_name(name: str) -> str:
    """A file name safe on every system: no separators, controls, leading dots or reserved names."""
    # A path keeps its meaningful parts as one name: ../../etc/passwd becomes etc_passwd.
    parts = re.split(r"[/\\]+", unicodedata.normalize("NFC", name))
    chars = []
    for char in "_".join(part for part in parts if part.strip(" .")):
        category = unicodedata.category(char)
        if char in FORBIDDEN_CHARS or category in ("Cc", "Cs", "Zl", "Zp"):
            chars.append("_")
        elif category == "Cf" and char not in KEPT_FORMAT_CHARS:
            continue
        elif category == "Zs":
            chars.append(" ")
        else:
            chars.append(char)
    text = re.sub(r"\.{2,}", ".", "".join(chars)).strip(" .")
    # A leading dash reads as an option to whatever command the file is later given to.
    if text.startswith("-"):
        text = "_" + text[1:]
    stem, extension = _split_extension(text)
    if stem.split(".")[0].strip().upper() in WINDOWS_RESERVED:
        stem = "_" + stem
    return _limit(stem, extension)


def _split_extension(text: str) -> tuple[str, str]:
    match = EXTENSION.search(text)
    if match is None or match.start() == 0:
        return text, ""
    return text[: match.start()], match.group(1)


def _limit(stem: str, extension: str) -> str:
    room = MAX_NAME_BYTES - len(extension.encode("utf-8"))
    while len(stem.encode("utf-8")) > room:
        stem = stem[:-1]
    stem = stem.rstrip(" .")
    return (stem or "attachment") + extension


def numbered(name: str, taken: set[str]) -> str:
    """`name`, or `name (2).ext`, ... : the first not in `taken` (compared ignoring case)."""
    candidate, number = name, 1
    while candidate.casefold() in taken:
        number += 1
        stem, extension = _split_extension(name)
        candidate = f"{stem} ({number}){extension}"
    taken.add(candidate.casefold())
    return candidate


def suspicious_name(name: str) -> bool:
    """A name no browser would send: a path, or control characters."""
    return (
        name in (".", "..")
        or "/" in name
        or "\\" in name
        or any(unicodedata.category(char) == "Cc" for char in name)
    )


# ---------------------------------------------------------------------------------------------
# Opening bundles


def submission_folder(out: Path, entry: bundle.Entry) -> Path:
    """Where a submission opens: the case folder for a report, a dated subfolder otherwise."""
    case_folder = out / entry.case
    if entry.kind == "report":
        return case_folder
    return case_folder / f"{entry.received_day}-{entry.kind}-{entry.id}"


def _inside(root: Path, path: Path) -> Path:
    """Refuse any path that resolves outside the output folder (a symbolic link, say)."""
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise OpenError(f"{path} leads outside the output folder; nothing was written there.")
    return path


def open_bundle(
    path: Path,
    secret_key: bytes,
    out: Path,
    force: bool = False,
    progress: Progress | None = None,
) -> list[Outcome]:
    """Open every submission of one bundle into `out`; one bad submission never stops the rest."""
    name = path.name
    try:
        reader = bundle.Reader(path)
    except (envelope.EnvelopeError, OSError) as exc:
        return [Outcome(name, "-", "-", "bundle", FAILED, _one_line(str(exc)))]
    except Exception as exc:
        # One bundle must never stop the others: whatever went wrong is reported for it.
        message = f"unexpected {type(exc).__name__}: {_one_line(str(exc))}"
        return [Outcome(name, "-", "-", "bundle", FAILED, message)]
    with reader:
        outcomes = [
            _open_entry(reader, entry, secret_key, out.resolve(), force, name, progress)
            for entry in reader.entries
        ]
    tried = [o for o in outcomes if o.status != SKIPPED]
    if tried and all(o.wrong_key for o in tried):
        fp = crypto.fingerprint(crypto.public_from_secret(secret_key))
        outcomes.append(
            Outcome(
                name,
                "-",
                "-",
                "bundle",
                NOTE,
                f"none of its {len(tried)} submission(s) opens with the key {fp}. A sealed box "
                "does not record the key it was sealed to, so this tool cannot say which key "
                "would open them: check that the bundle comes from the portal whose public key "
                "has this fingerprint.",
            )
        )
    return outcomes


def _open_entry(
    reader: bundle.Reader,
    entry: bundle.Entry,
    secret_key: bytes,
    out: Path,
    force: bool,
    bundle_name: str,
    progress: Progress | None,
) -> Outcome:
    outcome = Outcome(bundle_name, entry.id, entry.case, entry.kind, FAILED, "")
    if entry.recipient == "submitter":
        outcome.status = SKIPPED
        outcome.message = (
            "the submitter's copy of a reply, sealed to their reply key, which the team key "
            "cannot open (the team's copy is opened instead); not an error"
        )
        return outcome
    if safe_name(entry.case) != entry.case:
        outcome.message = "its case id cannot be a folder name on every system; refused"
        return outcome
    destination = submission_folder(out, entry)
    staging = out / entry.case / f"{STAGING_PREFIX}{entry.id}"
    created_case_folder = not (out / entry.case).exists()
    pin_path: Path | None = None
    leftover = out / entry.case if created_case_folder else None
    try:
        _inside(out, destination)
        _inside(out, staging)
        existing = _existing_output(destination, entry)
        if existing and not force:
            outcome.status = REFUSED
            outcome.message = (
                f"{existing} is already there (opened before); nothing was changed "
                "(use --force to replace it)"
            )
            return outcome
        manifest = _open_manifest(reader, entry, secret_key)
        # Checked before anything is decrypted: a key other than the pinned one is refused.
        reply_key = replykeys.for_submission(out / entry.case, manifest, entry, bundle_name)
        if staging.exists():
            shutil.rmtree(staging)  # left by an interrupted run of our own
        staging.parent.mkdir(mode=0o700, exist_ok=True)
        staging.mkdir(mode=0o700)
        record, warnings = _decrypt_into(reader, entry, manifest, staging, bundle_name, progress)
        if reply_key is not None:
            record.update(reply_key.record_fields())
            warnings += reply_key.warnings
        if warnings:
            record["warnings"] = warnings
        _write_new(staging / REPORT_TXT, render_report(record).encode("utf-8"))
        _write_new(staging / REPORT_JSON, _json_bytes(record))
        if reply_key is not None and reply_key.new:
            pin_path = replykeys.write_pin(out / entry.case, reply_key.pin)
        _install(staging, destination, entry.kind == "report")
    except replykeys.Mismatch as exc:
        outcome.status = REFUSED
        outcome.message = f"{_one_line(str(exc))}; nothing of it was opened"
        return outcome
    except replykeys.PinError as exc:
        outcome.message = _one_line(str(exc))
    except OpenError as exc:
        outcome.message = str(exc)
        outcome.wrong_key = isinstance(exc.__cause__, crypto.WrongKey)
    except (envelope.EnvelopeError, tarfile.TarError, EOFError) as exc:
        outcome.message = f"the bundle is damaged or truncated here: {_one_line(str(exc))}"
    except OSError as exc:
        outcome.message = f"writing failed: {_one_line(str(exc))}; nothing of it was kept"
    except Exception as exc:
        # One submission must never stop the others: whatever went wrong is reported for it.
        outcome.message = f"unexpected {type(exc).__name__}: {_one_line(str(exc))}"
    if outcome.message:
        if pin_path is not None:
            pin_path.unlink(missing_ok=True)  # pinned by this submission, which was not kept
        _discard(staging, leftover)
        return outcome
    outcome.status, outcome.path, outcome.warnings = OPENED, destination / REPORT_TXT, warnings
    outcome.message = "opened"
    return outcome


def _existing_output(destination: Path, entry: bundle.Entry) -> Path | None:
    if entry.kind != "report":
        return destination if destination.exists() or destination.is_symlink() else None
    for name in (REPORT_JSON, REPORT_TXT, ATTACHMENTS):
        if (destination / name).exists() or (destination / name).is_symlink():
            return destination / name
    return None


def _open_manifest(
    reader: bundle.Reader, entry: bundle.Entry, secret_key: bytes
) -> envelope.Manifest:
    try:
        sealed = reader.read_manifest(entry)
    except envelope.EnvelopeError as exc:
        raise OpenError(f"its sealed manifest is damaged: {_one_line(str(exc))}") from exc
    try:
        manifest = envelope.open_manifest(sealed, secret_key)
    except crypto.WrongKey as exc:
        fp = crypto.fingerprint(crypto.public_from_secret(secret_key))
        raise OpenError(
            f"its manifest does not open with the key {fp}: it was sealed to another key or "
            "altered on the way (a sealed box cannot tell which)"
        ) from exc
    except envelope.EnvelopeError as exc:
        raise OpenError(f"its manifest opened but breaks the format: {exc}") from exc
    if manifest.kind != entry.kind:
        raise OpenError(
            f"the bundle calls it a {entry.kind} but its sealed manifest says {manifest.kind}; "
            "refused as altered"
        )
    if len(manifest.files) != entry.files:
        raise OpenError(
            f"the bundle lists {entry.files} file(s) but its sealed manifest lists "
            f"{len(manifest.files)}; refused as altered"
        )
    for index, item in enumerate(manifest.files):
        length = reader.size(bundle.blob_name(entry.id, index))
        if length != crypto.blob_length(item.size):
            raise OpenError(
                f"attachment {index + 1} ({_one_line(item.name)!r}) is {length} bytes where a "
                f"file of {item.size} bytes takes {crypto.blob_length(item.size)}: truncated "
                "or altered"
            )
    return manifest


def _decrypt_into(
    reader: bundle.Reader,
    entry: bundle.Entry,
    manifest: envelope.Manifest,
    staging: Path,
    bundle_name: str,
    progress: Progress | None,
) -> tuple[dict[str, Any], list[str]]:
    """Decrypt every attachment into `staging/attachments`; return the record and warnings."""
    taken: set[str] = set()
    files, warnings = [], []
    folder = staging / ATTACHMENTS
    if manifest.files:
        folder.mkdir(mode=0o700)
    for index, item in enumerate(manifest.files):
        saved = numbered(safe_name(item.name), taken)
        if suspicious_name(item.name):
            warnings.append(
                f"attachment {index + 1} was named {_one_line(item.name)!r}, which no browser "
                f"sends (a path or control characters): saved as {saved!r}; treat this "
                "submission with care"
            )
        partial = folder / f".{index}.partial"
        try:
            with reader.open(bundle.blob_name(entry.id, index)) as source:
                _write_blob(source, item, partial, progress)
        except crypto.TamperedBlob as exc:
            partial.unlink(missing_ok=True)
            raise OpenError(
                f"attachment {index + 1} ({_one_line(item.name)!r}) is damaged: {exc}; "
                "nothing of this submission was kept"
            ) from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.rename(partial, folder / saved)
        files.append(
            {
                "name": item.name,
                "type": item.type,
                "size": item.size,
                "saved_as": f"{ATTACHMENTS}/{saved}",
            }
        )
    record: dict[str, Any] = {
        "id": entry.id,
        "case": entry.case,
        "kind": entry.kind,
        "received_day": entry.received_day,
        "bundle": bundle_name,
        "format": envelope.FORMAT,
        "version": envelope.VERSION,
        "sealed_by": manifest.sealed_by,
        "locale": manifest.locale,
        "fields": manifest.fields,
        "files": files,
    }
    if entry.recipient is not None:
        record["recipient"] = entry.recipient
    return record, warnings


def _write_blob(
    source: IO[bytes], item: envelope.FileEntry, partial: Path, progress: Progress | None
) -> None:
    """Decrypt one blob into `partial`, authenticated chunk by chunk, and make it durable."""
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    writer = _BackgroundWriter(fd)
    try:
        _reserve(fd, item.size)
        batch: list[bytes] = []
        for chunk in crypto.decrypt_chunks(cast(BinaryIO, source), item.key, item.size):
            batch.append(chunk)
            if len(batch) == WRITE_BATCH:
                writer.write(batch)
                batch = []
            if progress is not None:
                progress(len(chunk))
        writer.write(batch)
        writer.close()
        # Durable before it gets its real name: a power cut must not leave a good-looking file.
        os.fsync(fd)
    finally:
        writer.close()
        os.close(fd)


class _BackgroundWriter:
    """Writes decrypted chunks from a second thread, so the disk works while AES-GCM does.

    Both the cipher (libsodium through cffi) and `os.write` release the GIL, so on two cores
    authenticating and writing overlap. The queue is short: memory stays a few megabytes.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=WRITE_QUEUE)
        self._error: OSError | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="attachment-writer", daemon=True)
        self._thread.start()

    def write(self, chunks: list[bytes]) -> None:
        """Queue chunks for writing; raise the writer's error, if it met one."""
        if self._error is not None:
            raise self._error
        if chunks:
            self._queue.put(chunks)

    def close(self) -> None:
        """Wait for everything queued to be written; raise the writer's error, if any."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        written = announced = 0
        while (chunks := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain, so the producer never blocks on a full queue
            try:
                written += _write_all(self._fd, chunks)
                if written - announced >= WRITEBACK_WINDOW:
                    _start_writeback(self._fd, announced, written - announced)
                    announced = written
            except OSError as exc:
                self._error = exc


def _write_all(fd: int, chunks: list[bytes]) -> int:
    total = sum(len(chunk) for chunk in chunks)
    done = os.writev(fd, chunks)
    if done < total:  # a short write (a signal, a full disk): finish the rest plainly
        rest = memoryview(b"".join(chunks))[done:]
        while rest:
            rest = rest[os.write(fd, rest) :]
    return total


def _reserve(fd: int, size: int) -> None:
    """Allocate the whole file first: a full disk shows at once, and writing is much faster."""
    if size == 0 or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OpenError(
                f"the disk has no room for an attachment of {human_size(size)}"
            ) from exc
        # Some file systems cannot allocate ahead; writing still works there.


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel write what is done while the rest is decrypted, so the final sync is short.

    It also drops the written plaintext from the page cache, where it has no reason to stay.
    """
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _install(staging: Path, destination: Path, is_report: bool) -> None:
    """Move a complete staging folder into place, replacing what --force allowed."""
    old = staging.with_name(staging.name.replace(STAGING_PREFIX, ".replaced-", 1))
    if old.exists():
        shutil.rmtree(old)
    if not is_report:
        if destination.exists():
            os.rename(destination, old)
        os.rename(staging, destination)
    else:
        # The report's files sit beside the case's follow-up folders, so they move one by one,
        # report.json last: its presence is what marks a report as opened.
        names = [
            name for name in (ATTACHMENTS, REPORT_TXT, REPORT_JSON) if (destination / name).exists()
        ]
        if names:
            old.mkdir(mode=0o700)
            for name in names:
                os.rename(destination / name, old / name)
        for name in (ATTACHMENTS, REPORT_TXT, REPORT_JSON):
            if (staging / name).exists():
                os.rename(staging / name, destination / name)
        staging.rmdir()
    if old.exists():
        shutil.rmtree(old)
    _sync_folder(destination if is_report else destination.parent)


def _discard(staging: Path, new_case_folder: Path | None) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    if new_case_folder is not None:
        with contextlib.suppress(OSError):
            new_case_folder.rmdir()  # only if nothing else is in it


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_bytes(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------------------------
# report.txt


def _printable(text: str) -> str:
    """Text as written, but no terminal control sequences: controls other than LF and TAB go."""
    text = text.replace("\r\n", "\n")
    return "".join(
        "\ufffd" if unicodedata.category(c) == "Cc" and c not in "\n\t" else c for c in text
    )


def _one_line(text: str) -> str:
    return _printable(text).replace("\n", " ").replace("\t", " ")


def language_name(locale: str) -> str:
    """The English name of a language code, with the code."""
    name = LANGUAGES.get(locale.split("-")[0].lower())
    return f"{name} ({_one_line(locale)})" if name else _one_line(locale)


def human_size(size: int) -> str:
    """A size for people, with the exact byte count."""
    value, unit = float(size), "bytes"
    for candidate in ("KB", "MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, candidate
    exact = f"{size:,} bytes"
    return exact if unit == "bytes" else f"{value:.1f} {unit} ({exact})"


def _fields_for(kind: str) -> list[tuple[str, tuple[schema.Field, ...]]]:
    if kind == "report":
        return [(section.title, section.fields) for section in schema.REPORT_SECTIONS]
    if kind == "follow-up":
        return [("New information", schema.FOLLOW_UP_FIELDS)]
    return [("The team's reply", REPLY_FIELDS)]


def _value_lines(spec: schema.Field, value: envelope.FieldValue) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if spec.kind in (schema.RADIO, schema.CHECKBOXES, schema.SELECT):
        lines = []
        for item in items:
            label = dict(spec.choices).get(item)
            shown = (
                f"{label} [{_one_line(item)}]"
                if label
                else f"[{_one_line(item)}] (not a choice of the form)"
            )
            lines.append(f"  - {shown}" if spec.kind == schema.CHECKBOXES else f"  {shown}")
        return lines
    if spec.kind == schema.TEXTAREA:
        return ["-" * 40, *[_printable(item) for item in items], "-" * 40]
    return [f"  {_one_line(item)}" for item in items]


def render_report(record: dict[str, Any]) -> str:
    """The readable report.txt of one opened submission."""
    kind = str(record["kind"])
    fields: dict[str, envelope.FieldValue] = record["fields"]
    lines = [
        f"{KIND_TITLES.get(kind, kind)} — reprisals portal",
        "=" * 60,
    ]
    if is_urgent(fields):
        details = fields.get("urgent_details", "")
        lines.append("URGENT:      someone is in immediate danger")
        if isinstance(details, str) and details:
            lines.append(f"             {_one_line(details)}")
    lines += [
        f"Case:        {record['case']}",
        f"Submission:  {record['id']} ({kind})",
        f"Received:    {record['received_day']} (the day, UTC; no time is kept)",
        f"Language:    {language_name(str(record['locale']))}",
        f"Sealed by:   {SEALERS.get(str(record['sealed_by']), record['sealed_by'])}",
        f"From bundle: {_one_line(str(record['bundle']))}",
    ]
    if kind == "report":
        has_key = "reply_public_key" in record
        lines.append(
            "Replies:     "
            + ("possible (portal reply --case this folder)" if has_key else "no reply key")
        )
    if "reply_public_key" in record:
        where = replykeys.describe(
            str(record.get("reply_public_key_from", replykeys.INDEX)),
            _one_line(str(record.get("reply_public_key_first_seen", "an earlier run"))),
        )
        lines.append(f"Reply key:   {where}")
    for warning in record.get("warnings", []):
        lines.append(f"WARNING:     {_one_line(str(warning))}")
    if any(
        "\ufffd" in _printable(v)
        for f in fields.values()
        for v in (f if isinstance(f, list) else [f])
    ):
        lines.append(
            "Note:        control characters were replaced by \ufffd; "
            "report.json has the exact text."
        )
    shown: set[str] = set()
    for title, specs in _fields_for(kind):
        answered = [spec for spec in specs if spec.name in fields]
        if not answered:
            continue
        lines += ["", f"== {title} ==", ""]
        for spec in answered:
            shown.add(spec.name)
            lines.append(spec.label)
            lines += _value_lines(spec, fields[spec.name])
            lines.append("")
    others = [name for name in fields if name not in shown]
    if others:
        lines += ["", "== Other fields (not on the form) ==", ""]
        for name in others:
            lines.append(_one_line(name))
            lines += _value_lines(schema.Field(name, schema.TEXTAREA, name), fields[name])
            lines.append("")
    files = record["files"]
    lines += ["", f"== Attachments ({len(files)}) ==", ""]
    for item in files:
        line = (
            f"  {item['saved_as']}  {human_size(int(item['size']))}  {_one_line(str(item['type']))}"
        )
        if item["saved_as"].split("/", 1)[1] != item["name"]:
            line += f"  (sent as {_one_line(str(item['name']))!r})"
        lines.append(line)
    if not files:
        lines.append("  none")
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
def is_urgent(fields: object) -> bool:
    """Whether the submitter said someone is in immediate danger."""
    return isinstance(fields, dict) and fields.get(schema.URGENT) == "yes"


# ---------------------------------------------------------------------------------------------
# Spreadsheet cells (cases.csv and the annual report's tables, written from the register)


# What a spreadsheet may read as the start of a formula, and what it may split a cell at: the
# team's spreadsheet may be set to split at `;` or tab as well as `,` (and to trim spaces), so
# every piece is guarded.
FORMULA_START = "=+-@\t\r"
CELL_SEPARATORS = ";,\t\r\n"
_UNGUARDED = re.compile(rf"(^|[{CELL_SEPARATORS}])(?= *[{re.escape(FORMULA_START)}])")


def csv_cell(value: str) -> str:
    """Guard a cell against formula injection: a quote before every piece that starts a formula."""
    return _UNGUARDED.sub(lambda match: match.group(1) + "'", value)


def summary_lines(outcomes: Iterable[Outcome]) -> list[str]:
    """The closing summary: counts, then each submission that failed or was refused, and why."""
    outcomes = list(outcomes)
    opened = [o for o in outcomes if o.status == OPENED]
    skipped = [o for o in outcomes if o.status == SKIPPED]
    bad = [o for o in outcomes if o.status in (FAILED, REFUSED, NOTE)]
    warned = [o for o in opened if o.warnings]
    lines = [
        f"{len(opened)} submission(s) opened, {len(skipped)} skipped, "
        f"{len([o for o in bad if o.status == REFUSED])} refused, "
        f"{len([o for o in bad if o.status == FAILED])} failed."
    ]
    for o in bad:
        lines.append(f"  {o.line()}")
    for o in warned:
        for warning in o.warnings:
            lines.append(
                f"  warning  {o.bundle}: case {o.case}, {o.kind} {o.submission}: {warning}"
            )
    return lines
