"""The organisations' page for a case sealed on their own computer, apart from the report form."""

from __future__ import annotations

from flask import render_template, request
from flask_wtf.csrf import generate_csrf

from portal.server import cases, intake
from portal.server.services import current
from portal.web import uploads
from portal.web.public import _, _csrf_problem, bp, refusal, report_limit
from portal.web.public.pages import _sealer_sha256


def render_case_file(notice: str | None = None, status: int = 200) -> tuple[str, int]:
    """The organisations' page for a case sealed on their own computer."""
    return render_template(
        "public/case_file.html",
        notice=notice,
        csrf_token=generate_csrf(),
        sealer_sha256=_sealer_sha256(current().team_public_key, current().receipt_site),
    ), status


@bp.get("/sealed-case")
def case_file() -> tuple[str, int]:
    """The upload form for a sealed case file, on a page of its own: a photo chosen here by
    mistake cannot cost a person what they typed in the report form."""
    return render_case_file()


@bp.post("/sealed-case")
@report_limit
def case_file_post() -> tuple[str, int]:
    """A relay's sealed case file (a bundle of one report), stored as it is once checked."""
    services = current()
    with services.sessions() as session:
        cases.check_quota(services, session, request.content_length or 0)
        staged = uploads.expect_uploads(
            services.store, uploads.SEAL, max_files=1, fields=frozenset({uploads.CASE_FILE})
        )
        form = request.form
        relay = [p for p in staged.finish() if p.field == uploads.CASE_FILE]
        if _csrf_problem(form):
            staged.discard()
            return render_case_file(
                _(
                    "This form had expired, so the sealed case file was not received. Please "
                    "choose it again and upload it."
                ),
                400,
            )
        if not relay:
            staged.discard()
            return render_case_file(_("Choose the sealed case file to upload."), 400)
        if len(relay) != 1 or len(staged.parts) != 1 or staged.overflow:
            staged.discard()
            return render_case_file(
                _("Send one sealed case file at a time, without other attachments."), 400
            )
        try:
            receipt, _submission = intake.accept_case_file(
                services, session, staged.staging, relay[0]
            )
        except cases.Refused as exc:
            staged.discard()
            return render_case_file(refusal(exc), 400)
        staged.committed = True
    return render_template("public/receipt.html", receipt=receipt, sealed_by="relay-tool"), 200
