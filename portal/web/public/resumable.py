"""Resumable uploads of browser-sealed reports and follow-ups: the public site's side.

`POST /<lang>/submit/uploads` (a report, with its ticket) or `/<lang>/follow-up/uploads` (with
the receipt) creates an upload from the sealed manifest and each blob's chunk count; `PATCH
/<lang>/submit/uploads/<handle>?blob=i` with `Upload-Offset` adds a part; `GET` or `HEAD` of the
same address says how far each blob has come (`Upload-Offset` for `?blob=i`); `POST
.../<handle>/finish` stores the envelope and answers with the receipt page, exactly as the
one-request `/sealed` upload does (which stays, for scripts cached before). See
`portal.server.resumable` for the rules parts follow and what is kept.

The handle is a bearer secret that only the page's script holds, bound to the browser session
that created it: parts and the finish carry no form token, whose hours-long life an upload over
a slow connection may outlast. Creating spends the budget a one-request upload spends (a
follow-up's includes its receipt's derivation); parts, offset questions and the finish spend a
generous budget of the session's own, so that a person resuming many times is never turned away
while a loop of requests is. Parts are about a megabyte: larger than the upload gate's small
bodies, so each takes a turn there, and long uploads share the turns part by part instead of
holding one for an hour.
"""

from __future__ import annotations

import base64
import binascii

from flask import Response, jsonify, render_template, request, url_for
from werkzeug.exceptions import BadRequest

from portal.formats import answers, envelope
from portal.server import cases, intake, resumable, tickets
from portal.server.services import current
from portal.web import limits
from portal.web.public import (
    _csrf_problem,
    _expired,
    _no_case,
    _session_binding,
    bp,
    follow_up_limit,
    refusal,
    sealed_report_limit,
)

OFFSET_HEADER = "Upload-Offset"
PART_TYPE = "application/offset+octet-stream"

part_limit = limits.budget(
    limits.Budget(
        "upload-part",
        lambda: current().config.upload_part_rate_limit,
        limits.session_key("upload-part"),
        whose="session",
    )
)


def _uploads() -> resumable.Uploads:
    return resumable.Uploads(current().store.uploads)


def _binding() -> str:
    return _session_binding().hex()


def _refused(reason: str, status: int = 400) -> tuple[str, int]:
    return render_template("public/refused.html", reason=reason), status


def _refused_by(exc: cases.Refused) -> tuple[str, int]:
    """The refusal page for a refused upload, in the page's language, with its status."""
    return _refused(refusal(exc), exc.status)


@bp.post("/submit/uploads")
@sealed_report_limit
def create_report_upload() -> Response | tuple[str, int]:
    """Begin a resumable upload of a report sealed in the browser, with its ticket."""
    return _create("report")


@bp.post("/follow-up/uploads")
@follow_up_limit
def create_follow_up_upload() -> Response | tuple[str, int]:
    """Begin a resumable upload of a follow-up sealed in the browser, with the receipt."""
    return _create("follow-up")


def _create(kind: str) -> Response | tuple[str, int]:
    form = request.form
    if form.get(answers.HONEYPOT):
        return render_template("public/dropped.html"), 200
    if problem := _csrf_problem(form):
        return _refused(problem)
    services = current()
    try:
        manifest = base64.b64decode(form.get("manifest", ""), validate=True)
        envelope.check_sealed_manifest_length(len(manifest))
        counts = [int(c) for c in form.get("chunks", "").split(",") if c.strip()]
        chunks = resumable.check_chunks(counts, len(manifest), services.config.max_upload_bytes)
    except (binascii.Error, ValueError):
        return _refused("The upload does not say what it will hold.")
    except envelope.EnvelopeError as exc:
        # A length no honest sealer makes: said in English, for whoever wrote the client.
        return _refused(str(exc))
    except resumable.UploadError as exc:
        return _refused_by(exc)
    with services.sessions() as session:
        # Room for all it will hold is promised now: counted from here until it is stored.
        cases.check_quota(services, session, len(manifest) + sum(chunks) * resumable.CHUNK)
        ticket = case_id = None
        if kind == "report":
            ticket = form.get("ticket", "")
            try:
                intake.check_ticket(services, session, ticket, _session_binding())
            except cases.TicketRefused:
                return _refused(_expired())
            except cases.Refused as exc:
                return _refused_by(exc)
            ticket = resumable.ticket_digest(ticket)
        else:
            try:
                case, _derived = cases.find_case(services, session, form.get("receipt", ""))
            except cases.NoSuchCase:
                return _refused(_no_case())
            case_id = case.id
    plan = resumable.Plan(kind, _binding(), chunks, ticket, case_id)
    handle = _uploads().create(plan, manifest)
    location = url_for("public.upload_part", handle=handle)
    answer = jsonify(
        {
            "location": location,
            "finish": url_for("public.finish_upload", handle=handle),
            "part_chunks": resumable.PART_CHUNKS,
        }
    )
    answer.status_code = 201
    answer.headers["Location"] = location
    return answer


@bp.get("/submit/uploads/<handle>")
@part_limit
def upload_offsets(handle: str) -> Response:
    """How far each blob of an upload has come (`Upload-Offset` for `?blob=i`); HEAD too."""
    try:
        upload = _uploads().open(handle, _binding())
    except resumable.UploadError as exc:
        return _answer(exc)
    offsets = upload.offsets()
    answer = jsonify({"offsets": offsets, "chunks": list(upload.plan.chunks)})
    blob = request.args.get("blob")
    if blob is not None:
        index = _index(blob)
        if index is None or index >= len(offsets):
            return _answer(resumable.UploadError("This upload has no such file."))
        answer.headers[OFFSET_HEADER] = str(offsets[index])
        answer.headers["Upload-Length"] = str(upload.plan.chunks[index] * resumable.CHUNK)
    return answer


@bp.patch("/submit/uploads/<handle>")
@part_limit
def upload_part(handle: str) -> Response:
    """Add one part to a blob of an upload, at the offset the blob stands at."""
    try:
        upload = _uploads().open(handle, _binding())
        index = _index(request.args.get("blob", ""))
        offset = _index(request.headers.get(OFFSET_HEADER, ""))
        length = request.content_length
        if request.mimetype != PART_TYPE:
            raise resumable.UploadError(f"A part is sent as {PART_TYPE}.")
        if index is None or offset is None or length is None:
            raise resumable.UploadError(
                "A part names its file (?blob=), its offset (Upload-Offset) and its length."
            )
        new_offset = upload.append(index, offset, length, request.stream)
    except resumable.UploadError as exc:
        return _answer(exc)
    except BadRequest:
        # The client went away before the whole part arrived: nothing of it was kept.
        return _answer(resumable.UploadError(resumable.PART_BROKE_OFF))
    answer = Response(status=204)
    answer.headers[OFFSET_HEADER] = str(new_offset)
    return answer


@bp.post("/submit/uploads/<handle>/finish")
@part_limit
def finish_upload(handle: str) -> tuple[str, int]:
    """Store the upload once whole, and show the receipt page (or say what is missing)."""
    services = current()
    ticket = request.form.get("ticket", "")
    try:
        upload = _uploads().open(handle, _binding())
    except resumable.AlreadyFinished as exc:
        return _finished_again(exc, ticket)
    except resumable.UploadError as exc:
        return _refused_by(exc)
    with services.sessions() as session:
        try:
            receipt, _submission = intake.accept_upload(
                services, session, upload, ticket=ticket, binding=_session_binding()
            )
        except cases.TicketRefused:
            return _refused(_expired())
        except cases.Refused as exc:  # an upload's own refusals among them
            return _refused_by(exc)
    return _done(upload.plan.kind, receipt)


def _finished_again(exc: resumable.AlreadyFinished, ticket: str) -> tuple[str, int]:
    """The same browser asking again after its upload was stored (the answer was lost on the
    way): the same page, the receipt taken again from the ticket it still holds."""
    if exc.ticket is None:
        return _done("follow-up", None)
    if not ticket or resumable.ticket_digest(ticket) != exc.ticket:
        return _refused_by(exc)
    services = current()
    try:
        opened = tickets.open_ticket(
            services.installation_secret, ticket, _session_binding(), max_age=None
        )
    except tickets.TicketError:
        return _refused_by(exc)
    return _done("report", opened.receipt)


def _done(kind: str, receipt: str | None) -> tuple[str, int]:
    if kind == "follow-up":
        return render_template("public/follow_up_done.html", sealed_by="browser"), 200
    return render_template("public/receipt.html", receipt=receipt, sealed_by="browser"), 200


def _index(text: str) -> int | None:
    # Digits only: int() would take "+1", " 1" or "1_0".
    return int(text) if text.isascii() and text.isdigit() and len(text) < 16 else None


def _answer(exc: resumable.UploadError) -> Response:
    """A refusal the script reads: the reason, and where the blob stands when that is the issue."""
    answer = jsonify({"error": refusal(exc)})
    answer.status_code = exc.status
    if isinstance(exc, resumable.WrongOffset):
        answer.headers[OFFSET_HEADER] = str(exc.offset)
    return answer
