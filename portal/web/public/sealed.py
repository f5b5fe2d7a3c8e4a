"""What the browser sends sealed: the receipt asked for first (`prepare`), then the bundle."""

from __future__ import annotations

from flask import (
    Response,
    jsonify,
    render_template,
    request,
)

from portal.formats import answers, crypto, envelope
from portal.server import cases, intake
from portal.server.services import current
from portal.web import uploads
from portal.web.public import (
    _csrf_problem,
    _expired,
    _no_case,
    _quietly_dropped,
    _session_binding,
    bp,
    follow_up_limit,
    refusal,
    report_limit,
    sealed_report_limit,
)


@bp.post("/submit/prepare")
@report_limit
def submit_prepare() -> Response | tuple[str, int]:
    """Before the browser seals a report: its reply key, and its receipt inside a ticket.

    The ticket is for the browser's memory only: it comes back with the sealed upload, and the
    receipt in it is shown once the report is stored.
    """
    if problem := _csrf_problem(request.form):
        return render_template("public/refused.html", reason=problem), 400
    services = current()
    # A full store turns the report away now, before sealing and before the costly derivation;
    # the smallest report is one sealed manifest.
    with services.sessions() as session:
        cases.check_quota(services, session, envelope.PADDING + crypto.SEAL_OVERHEAD)
    ticket, reply_key = cases.prepare_report(services, _session_binding())
    return jsonify({"ticket": ticket, "reply_public_key": crypto.b64encode(reply_key)})


@bp.post("/submit/sealed")
@sealed_report_limit
def submit_sealed() -> tuple[str, int]:
    """A report sealed in the browser: only its structure and its ticket are checked."""
    return _sealed("report")


def _sealed(kind: str) -> tuple[str, int]:
    services = current()
    with services.sessions() as session:
        cases.check_quota(services, session, request.content_length or 0)
        staged = uploads.expect_uploads(
            services.store, uploads.RAW, max_files=101, fields=intake.SEALED_FIELDS
        )
        form = request.form
        parts = staged.finish()
        if form.get(answers.HONEYPOT):
            return _quietly_dropped(staged)
        if problem := _csrf_problem(form):
            return render_template("public/refused.html", reason=problem), 400
        case = None
        if kind == "follow-up":
            try:
                case, _derived = cases.find_case(services, session, form.get("receipt", ""))
            except cases.NoSuchCase:
                return render_template("public/refused.html", reason=_no_case()), 400
        try:
            receipt, _submission = intake.accept_sealed(
                services,
                session,
                staged.staging,
                kind=kind,
                declared_files=form.get("file_count", ""),
                parts=parts,
                case=case,
                ticket=form.get("ticket", ""),
                binding=_session_binding(),
                extra_parts=staged.overflow,
                stray_parts=staged.strays,
            )
        except cases.TicketRefused:
            # The script asks for a fresh ticket on every try: sending again is the remedy.
            return render_template("public/refused.html", reason=_expired()), 400
        except cases.Refused as exc:
            return render_template("public/refused.html", reason=refusal(exc)), 400
        staged.committed = True
    if kind == "follow-up":
        return render_template("public/follow_up_done.html", sealed_by="browser"), 200
    return render_template("public/receipt.html", receipt=receipt, sealed_by="browser"), 200


@bp.post("/follow-up/sealed")
@follow_up_limit
def follow_up_sealed() -> tuple[str, int]:
    """A follow-up sealed in the browser."""
    return _sealed("follow-up")
