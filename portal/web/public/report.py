"""The report form as it works without JavaScript: shown, checked, sealed on arrival."""

from __future__ import annotations

from flask import (
    render_template,
    request,
)
from flask_wtf.csrf import generate_csrf
from werkzeug.datastructures import MultiDict

from portal.formats import answers, questionnaire
from portal.formats.fields import Field
from portal.server import cases, intake
from portal.server.services import Services, current
from portal.web import i18n, kept, uploads
from portal.web.public import (
    ALL_TOO_LONG,
    ATTACHMENTS,
    CHOOSE_AGAIN,
    REPORT_FILE_FIELDS,
    _,
    _csrf_problem,
    _quietly_dropped,
    _sealing_page,
    _within_file_limit,
    bp,
    report_limit,
)

# ---------------------------------------------------------------------------------------------
# The report


def render_report(
    values: MultiDict[str, str] | None = None,
    problems: list[answers.Problem] | None = None,
    notice: str | None = None,
    kept_files: list[kept.KeptFile] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """The report form, with what was typed and any problems named next to their fields."""
    services = current()
    return render_template(
        "public/submit.html",
        sections=questionnaire.REPORT_SECTIONS,
        details_title=questionnaire.DETAILS_TITLE,
        details_intro=questionnaire.DETAILS_INTRO,
        values=_echo(values, questionnaire.REPORT_FIELDS),
        problems={p.field: p.message for p in problems or ()},
        problem_list=problems or [],
        notice=notice,
        kept_files=kept_files or [],
        kept_token=kept.token(kept_files or []),
        csrf_token=generate_csrf(),
        **_sealing_page(services),
    ), status


def _echo(values: MultiDict[str, str] | None, fields: tuple[Field, ...]) -> MultiDict[str, str]:
    """What was typed, to show again: the form's own fields only, none longer than its limit."""
    return MultiDict(answers.echo(values.to_dict(flat=False), fields) if values else {})


def _keep(
    services: Services,
    staged: uploads.Uploads,
    files: list[uploads.Part],
    problems: list[answers.Problem],
    trusted: bool,
) -> list[kept.KeptFile]:
    """Keep the attachments for the next try; where they cannot be, a problem asks for them."""
    kept_files, let_go = kept.keep(services.config, services.store, staged, files, trusted=trusted)
    if let_go:
        problems.append(answers.Problem(ATTACHMENTS, CHOOSE_AGAIN))
    return kept_files


def limited_report(form: MultiDict[str, str], status: int = 429) -> tuple[str, int]:
    """The report form again, calm, when too many reports arrive at once."""
    return render_report(
        form,
        notice=_(
            "Too many reports are arriving right now, so yours was not sent yet. Everything you "
            "typed is still below. Please wait a few minutes and send it again; attachments must "
            "be chosen again."
        ),
        status=status,
    )


@bp.get("/submit")
def submit() -> tuple[str, int]:
    """The empty report form."""
    return render_report()


@bp.post("/submit")
@report_limit
def submit_post() -> tuple[str, int]:
    """A report posted without JavaScript: attachments were sealed as they arrived."""
    services = current()
    with services.sessions() as session:
        cases.check_quota(services, session, request.content_length or 0)
        staged = uploads.expect_uploads(
            services.store, uploads.SEAL, max_files=100, fields=REPORT_FILE_FIELDS
        )
        form = request.form
        if form.get(answers.HONEYPOT):
            return _quietly_dropped(staged)
        staged.finish()
        problem = _csrf_problem(form)
        files = kept.restore(form, staged, services.store)
        files += [p for p in staged.parts if p.field == ATTACHMENTS]
        files, file_problems = _within_file_limit(staged, files)
        values = answers.collect(form.to_dict(flat=False), questionnaire.REPORT_FIELDS)
        problems = answers.check(values, questionnaire.REPORT_FIELDS) + file_problems
        if problem or problems:
            kept_files = _keep(services, staged, files, problems, trusted=problem is None)
            return render_report(form, problems, problem, kept_files, 400)
        try:
            receipt, _submission = intake.seal_on_arrival(
                services,
                session,
                staged.staging,
                kind="report",
                locale=i18n.current(),
                fields=values,
                parts=files,
            )
        except intake.TooLong:
            problems = [answers.Problem("description", ALL_TOO_LONG)]
            kept_files = _keep(services, staged, files, problems, trusted=True)
            return render_report(form, problems, None, kept_files, 400)
        staged.committed = True
    urgent = values.get(questionnaire.URGENT) == "yes"
    return render_template(
        "public/receipt.html", receipt=receipt, sealed_by="server", urgent=urgent
    ), 200
