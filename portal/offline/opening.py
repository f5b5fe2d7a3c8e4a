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
import json
import os
import shutil
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.formats import bundle, crypto, durable, envelope
from portal.offline import replykeys
from portal.offline.casetext import one_line, render_report
from portal.offline.names import numbered, safe_name, suspicious_name
from portal.offline.writer import OpenError, Progress, write_blob

__all__ = ["OpenError", "Outcome", "open_bundle", "summary_lines"]

OPENED, SKIPPED, REFUSED, FAILED, NOTE = "opened", "skipped", "refused", "failed", "note"
REPORT_TXT, REPORT_JSON, ATTACHMENTS = "report.txt", "report.json", "attachments"
STAGING_PREFIX = ".opening-"


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
        return [Outcome(name, "-", "-", "bundle", FAILED, one_line(str(exc)))]
    except Exception as exc:
        # One bundle must never stop the others: whatever went wrong is reported for it.
        message = f"unexpected {type(exc).__name__}: {one_line(str(exc))}"
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
        outcome.message = f"{one_line(str(exc))}; nothing of it was opened"
        return outcome
    except replykeys.PinError as exc:
        outcome.message = one_line(str(exc))
    except OpenError as exc:
        outcome.message = str(exc)
        outcome.wrong_key = isinstance(exc.__cause__, crypto.WrongKey)
    except (envelope.EnvelopeError, tarfile.TarError, EOFError) as exc:
        outcome.message = f"the bundle is damaged or truncated here: {one_line(str(exc))}"
    except OSError as exc:
        outcome.message = f"writing failed: {one_line(str(exc))}; nothing of it was kept"
    except Exception as exc:
        # One submission must never stop the others: whatever went wrong is reported for it.
        outcome.message = f"unexpected {type(exc).__name__}: {one_line(str(exc))}"
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
        raise OpenError(f"its sealed manifest is damaged: {one_line(str(exc))}") from exc
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
                f"attachment {index + 1} ({one_line(item.name)!r}) is {length} bytes where a "
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
                f"attachment {index + 1} was named {one_line(item.name)!r}, which no browser "
                f"sends (a path or control characters): saved as {saved!r}; treat this "
                "submission with care"
            )
        partial = folder / f".{index}.partial"
        try:
            with reader.open(bundle.blob_name(entry.id, index)) as source:
                write_blob(source, item, partial, progress)
        except crypto.TamperedBlob as exc:
            partial.unlink(missing_ok=True)
            raise OpenError(
                f"attachment {index + 1} ({one_line(item.name)!r}) is damaged: {exc}; "
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
    durable.sync_folder(destination if is_report else destination.parent)


def _discard(staging: Path, new_case_folder: Path | None) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    if new_case_folder is not None:
        with contextlib.suppress(OSError):
            new_case_folder.rmdir()  # only if nothing else is in it


def _json_bytes(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


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
