"""Storing a submission, whichever way it arrives: sealed on arrival, sealed in the browser, or
a relay's sealed case file.

These are plain functions over the site's services, a database session and a staging folder,
so tests call them without a request. Every path ends the same way: the sealed files are made
durable in the blob store, then the database row is committed, and only then is a receipt
returned. A report opens a new case, with a fresh receipt or the one its ticket or a relay's
case file brings (see `cases`); a follow-up joins its case. An envelope sealed in the browser
comes in one request, or in resumable parts (see `resumable`) stored here once every blob is
whole.
"""

from __future__ import annotations

import hmac
import tarfile
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.formats import bundle, crypto, envelope, receipts
from portal.formats.answers import FieldValues
from portal.formats.fields import N_
from portal.server import cases, resumable, storage
from portal.server.cases import Refused
from portal.server.models import Case, Submission
from portal.server.services import Services, today

# The file parts of an envelope sealed in the browser: one manifest, then its blobs in order.
MANIFEST_FIELD = "manifest"
BLOB_FIELD = "blob"
SEALED_FIELDS = frozenset({MANIFEST_FIELD, BLOB_FIELD})
DAMAGED_UPLOAD = N_(
    "The sealed report was damaged on the way, so nothing was stored. Please send it again."
)
NOT_A_CASE_FILE = N_(
    "This file is not a sealed case file, so none of it was stored. Only a file made by the "
    "portal's sealing tool for organisations (its name ends in .sealed) can be uploaded here. To "
    "send photos or documents, attach them to the report form instead."
)
DAMAGED_CASE_FILE = N_(
    "This sealed case file is damaged or incomplete, so none of it was stored. Seal the case "
    "again and upload the new file."
)
NO_REPLY_KEY = N_("The sealed case file names a receipt but no reply key; seal it again.")
MALFORMED_RECEIPT = N_("The sealed case file's receipt is malformed; seal it again.")
CASE_GONE = N_(
    "The case of this receipt no longer exists on this site, so nothing was stored. To tell "
    "the team more, send a new report."
)
LOOKUP_TAKEN = N_(
    "This sealed case file was already received (its receipt belongs to a case), so it was not "
    "stored a second time. If it is a new case, seal it again: each sealing makes a new receipt."
)


class TooLong(Refused):
    """The answers together make a manifest larger than the format allows."""


def store_staged(
    services: Services,
    session: Session,
    staging: storage.Staging,
    case: Case,
    *,
    kind: str,
    sealed_by: str,
    source: str,
    file_count: int,
    recipient: str | None = None,
) -> Submission:
    """Make the staged files durable, then commit the row: the order that makes a crash safe.

    The files are synced before the database is touched at all, so that no write lock (SQLite
    has one for the whole file) is held while a large upload is flushed to disk.
    """
    # Only the envelope's own pieces are stored: a stray file part of the form is not.
    staging.keep_only({bundle.STORED_MANIFEST} | {bundle.stored_blob(i) for i in range(file_count)})
    # The quota counts the bytes on disk, not what the request or a header declared: a relay's
    # case file, say, is unpacked into pieces before they are stored. This staging folder is
    # among the staging that check_quota counts, so nothing is added for it.
    cases.check_quota(services, session, 0)
    submission_id = storage.new_id()
    day = today()
    size = services.store.commit(staging, submission_id, day)
    try:
        last = session.scalar(select(func.max(Submission.seq)).where(Submission.case_id == case.id))
        submission = Submission(
            id=submission_id,
            case_id=case.id,
            seq=(last or 0) + 1,
            kind=kind,
            sealed_by=sealed_by,
            source=source,
            recipient=recipient,
            received_day=day,
            file_count=file_count,
            size_bytes=size,
        )
        session.add(submission)
        session.commit()
    except Exception:
        session.rollback()
        services.store.delete(submission_id)
        raise
    return submission


def _name_blobs(staging: storage.Staging, parts: Sequence[storage.StagedFile]) -> None:
    for index, part in enumerate(parts):
        staging.rename(part.name, bundle.stored_blob(index))


def seal_on_arrival(
    services: Services,
    session: Session,
    staging: storage.Staging,
    *,
    kind: str,
    locale: str,
    fields: FieldValues,
    parts: Sequence[storage.StagedFile],
    case: Case | None = None,
) -> tuple[str | None, Submission]:
    """Seal a form posted without JavaScript: files were sealed as they streamed in.

    A report opens a new case and returns its receipt; a follow-up joins `case`.
    """
    if len(parts) > envelope.MAX_FILES:
        raise Refused(cases.TOO_MANY_FILES, count=envelope.MAX_FILES)
    files = []
    for part in parts:
        if part.key is None:
            raise Refused(DAMAGED_UPLOAD)
        files.append(
            envelope.FileEntry(
                part.filename[:255] or "attachment",
                part.content_type[:255] or "application/octet-stream",
                part.size,
                part.key,
            )
        )
    receipt = None
    if case is None:
        receipt, case, derived = cases.new_case(services, session)
        reply_key = derived.reply_public_key
    else:
        reply_key = case.reply_public_key
    manifest = envelope.Manifest(kind, "server", locale, dict(fields), tuple(files), reply_key)
    try:
        sealed = envelope.seal_manifest(manifest, services.team_public_key)
    except envelope.EnvelopeError as exc:
        # Sealed before the files are renamed, so a form that comes back still has them.
        raise TooLong(str(exc)) from exc
    _name_blobs(staging, parts)
    staging.write(bundle.STORED_MANIFEST, sealed)
    submission = store_staged(
        services,
        session,
        staging,
        case,
        kind=kind,
        sealed_by="server",
        source="form",
        file_count=len(files),
    )
    return receipt, submission


def accept_sealed(
    services: Services,
    session: Session,
    staging: storage.Staging,
    *,
    kind: str,
    declared_files: str,
    parts: Sequence[storage.StagedFile],
    case: Case | None = None,
    ticket: str = "",
    binding: bytes = b"",
    extra_parts: int = 0,
    stray_parts: int = 0,
) -> tuple[str | None, Submission]:
    """Store an envelope sealed in the browser, after checking its structure only.

    A report opens the case its `ticket` (from `prepare_report`, bound to the browser session
    `binding`) stands for; a follow-up joins `case`. `extra_parts` counts the file parts the
    upload held beyond what was staged, `stray_parts` those under a field other than
    `SEALED_FIELDS` (never written; no honest script sends one).
    """
    if extra_parts:
        raise Refused(cases.TOO_MANY_FILES, count=envelope.MAX_FILES)
    manifests = [p for p in parts if p.field == MANIFEST_FIELD]
    blobs = [p for p in parts if p.field == BLOB_FIELD]
    if stray_parts or len(manifests) != 1 or len(manifests) + len(blobs) != len(parts):
        raise Refused(DAMAGED_UPLOAD)
    try:
        count = int(declared_files)
    except ValueError:
        raise Refused(DAMAGED_UPLOAD) from None
    if count != len(blobs):
        raise Refused(DAMAGED_UPLOAD)
    if count > envelope.MAX_FILES:
        raise Refused(cases.TOO_MANY_FILES, count=envelope.MAX_FILES)
    try:
        envelope.check_sealed_manifest_length(manifests[0].size)
        for index, blob in enumerate(blobs):
            envelope.check_blob_length(blob.size, index)
    except envelope.EnvelopeError as exc:
        raise Refused(DAMAGED_UPLOAD) from exc
    receipt = None
    if case is None:
        receipt, case = cases.case_from_ticket(services, session, ticket, binding)
    staging.rename(manifests[0].name, bundle.STORED_MANIFEST)
    _name_blobs(staging, blobs)
    return receipt, _store_browser_sealed(services, session, staging, case, kind, count, receipt)


def _store_browser_sealed(
    services: Services,
    session: Session,
    staging: storage.Staging,
    case: Case,
    kind: str,
    count: int,
    receipt: str | None,
) -> Submission:
    """Store what a browser sealed, by one request or in resumable parts."""
    try:
        return store_staged(
            services,
            session,
            staging,
            case,
            kind=kind,
            sealed_by="browser",
            source="browser",
            file_count=count,
        )
    except IntegrityError:
        if receipt is None:
            raise
        # The same ticket, sent twice at once: the other upload made the case first.
        raise cases.TicketUsed(cases.TICKET_USED) from None


def check_ticket(services: Services, session: Session, ticket: str, binding: bytes) -> None:
    """Refuse, before a resumable upload begins, a ticket that could not make its case."""
    cases.case_from_ticket(services, session, ticket, binding)
    # Only checked: the case is made when the upload is whole.
    session.rollback()


def accept_upload(
    services: Services,
    session: Session,
    upload: resumable.Upload,
    *,
    ticket: str = "",
    binding: bytes = b"",
) -> tuple[str | None, Submission]:
    """Store a resumable upload once every blob is whole, as a one-request sealed upload is.

    A report's ticket must be the one the upload began with; its age was checked then.
    """
    plan = upload.plan
    receipt = None
    if plan.kind == "report":
        if plan.ticket is None or not hmac.compare_digest(
            resumable.ticket_digest(ticket), plan.ticket
        ):
            raise cases.TicketRefused("not this upload's ticket")
        receipt, case = cases.case_from_ticket(services, session, ticket, binding, max_age=None)
    else:
        found = session.get(Case, plan.case_id or "")
        if found is None:
            raise Refused(CASE_GONE)
        case = found
    with upload.finishing() as staging:
        submission = _store_browser_sealed(
            services, session, staging, case, plan.kind, len(plan.chunks), receipt
        )
    return receipt, submission


def _relay_receipt(entry: bundle.Entry) -> tuple[bytes, bytes] | None:
    """The lookup value and reply key a relay's case file brings, when it made its receipt."""
    if entry.receipt_lookup is None:
        return None
    if entry.reply_public_key is None:
        raise Refused(NO_REPLY_KEY)
    try:
        lookup = crypto.b64decode(entry.receipt_lookup, receipts.LOOKUP_BYTES)
        key = crypto.b64decode(entry.reply_public_key, crypto.KEY_BYTES)
    except crypto.CryptoError as exc:
        raise Refused(MALFORMED_RECEIPT) from exc
    return lookup, key


def accept_case_file(
    services: Services, session: Session, staging: storage.Staging, part: storage.StagedFile
) -> tuple[str | None, Submission]:
    """Store a relay's sealed case file (a bundle of one report) as it is, after checking it.

    When the relay made the case's receipt, the case opens with the lookup value and reply key
    of its index entry, and no receipt is returned: the relay's tool showed it, the site never
    saw it. Otherwise the site makes the receipt here and returns it.
    """
    if part.not_bundle:
        raise Refused(NOT_A_CASE_FILE)
    source = staging.file(part.name)
    try:
        with bundle.Reader(source) as reader:
            if len(reader.entries) != 1 or reader.entries[0].kind != "report":
                raise Refused(
                    N_(
                        "A sealed case file holds exactly one report; this one holds something "
                        "else, so none of it was stored."
                    )
                )
            reader.check_structure()
            entry = reader.entries[0]
            relayed = _relay_receipt(entry)
            if relayed is not None and _lookup_taken(session, relayed[0]):
                raise Refused(LOOKUP_TAKEN)
            with (
                reader.open(bundle.manifest_name(entry.id)) as src,
                staging.open(bundle.STORED_MANIFEST) as out,
            ):
                _copy(src, out)
            for index in range(entry.files):
                with (
                    reader.open(bundle.blob_name(entry.id, index)) as src,
                    staging.open(bundle.stored_blob(index)) as out,
                ):
                    _copy(src, out)
    except envelope.EnvelopeError as exc:
        raise Refused(DAMAGED_CASE_FILE) from exc
    except (tarfile.TarError, EOFError) as exc:
        # The headers listed the pieces, but a piece breaks off before its recorded end.
        raise Refused(DAMAGED_CASE_FILE) from exc
    staging.remove(part.name)
    receipt: str | None = None
    if relayed is None:
        receipt, case, _derived = cases.new_case(services, session)
    else:
        case = cases.add_case(session, *relayed)
    try:
        submission = store_staged(
            services,
            session,
            staging,
            case,
            kind="report",
            sealed_by="relay-tool",
            source="relay",
            file_count=entry.files,
        )
    except IntegrityError:
        if relayed is None:
            raise
        # The same case file, sent twice at once: the other upload made the case first.
        raise Refused(LOOKUP_TAKEN) from None
    return receipt, submission


def _lookup_taken(session: Session, lookup: bytes) -> bool:
    """Whether a case already has this receipt lookup value."""
    return session.scalar(select(Case.id).where(Case.receipt_lookup == lookup)) is not None


def _copy(src: object, out: object) -> None:
    read = src.read  # type: ignore[attr-defined]
    write = out.write  # type: ignore[attr-defined]
    while data := read(1024 * 1024):
        write(data)
