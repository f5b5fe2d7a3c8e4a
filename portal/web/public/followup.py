"""Follow-ups: the submitter comes back with their receipt, reads replies and adds to the case."""

from __future__ import annotations

from flask import (
    render_template,
    request,
)
from flask_wtf.csrf import generate_csrf
from werkzeug.datastructures import MultiDict

from portal.formats import answers, questionnaire
from portal.server import cases, intake
from portal.server.services import current
from portal.web import i18n, kept, uploads
from portal.web.public import (
    ALL_TOO_LONG,
    ATTACHMENTS,
    _csrf_problem,
    _no_case,
    _quietly_dropped,
    _sealing_page,
    _within_file_limit,
    bp,
    follow_up_limit,
)
from portal.web.public.report import _echo, _keep


def limited_follow_up(form: MultiDict[str, str], notice: str, status: int = 429) -> tuple[str, int]:
    """The follow-up page again, with `notice`, when too many lookups arrive at once.

    The case is not looked up (that is the costly part being limited); what was typed, the
    receipt included, comes back as it was.
    """
    receipt = form.get("receipt", "")
    if form.get("step") == "add":
        return _case_page(receipt, None, form, [], [], notice), status
    return _receipt_page(notice, receipt), status


# ---------------------------------------------------------------------------------------------
# Follow-up


@bp.get("/follow-up")
def follow_up() -> str:
    """Ask for the receipt."""
    return render_template(
        "public/follow_up_receipt.html", problem=None, csrf_token=generate_csrf()
    )


@bp.post("/follow-up")
@follow_up_limit
def follow_up_post() -> tuple[str, int]:
    """Open a case with its receipt: show replies; add information to it."""
    services = current()
    with services.sessions() as session:
        staged = uploads.expect_uploads(
            services.store, uploads.SEAL, max_files=100, fields=frozenset({ATTACHMENTS})
        )
        form = request.form
        files = kept.restore(form, staged, services.store)
        files += [p for p in staged.finish() if p.field == ATTACHMENTS]
        receipt = form.get("receipt", "")
        adding = form.get("step") == "add"
        problem = _csrf_problem(form)
        if problem and not adding:
            staged.discard()
            return _receipt_page(problem, receipt), 400
        try:
            case, derived = cases.find_case(services, session, receipt)
        except cases.NoSuchCase:
            staged.discard()
            return _receipt_page(problem or _no_case(), receipt), 400
        replies = cases.replies(services, case, derived)
        if not adding:
            staged.discard()
            return _case_page(receipt, replies, MultiDict(), [], []), 200
        if form.get(answers.HONEYPOT):
            return _quietly_dropped(staged)
        values = answers.collect(form.to_dict(flat=False), questionnaire.FOLLOW_UP_FIELDS)
        files, file_problems = _within_file_limit(staged, files)
        problems = answers.check(values, questionnaire.FOLLOW_UP_FIELDS) + file_problems
        if problem or problems:
            # An expired form comes back like one with a problem: the case page, with the
            # new information as typed (its attachments are kept only for a trusted form).
            kept_files = _keep(services, staged, files, problems, trusted=problem is None)
            return _case_page(receipt, replies, form, problems, kept_files, problem), 400
        # This request's files are already in staging, which the quota counts.
        cases.check_quota(services, session, 0)
        try:
            intake.seal_on_arrival(
                services,
                session,
                staged.staging,
                kind="follow-up",
                locale=i18n.current(),
                fields=values,
                parts=files,
                case=case,
            )
        except intake.TooLong:
            problems = [answers.Problem("description", ALL_TOO_LONG)]
            kept_files = _keep(services, staged, files, problems, trusted=True)
            return _case_page(receipt, replies, form, problems, kept_files), 400
        staged.committed = True
    return render_template("public/follow_up_done.html", sealed_by="server"), 200


def _receipt_page(problem: str, receipt: str) -> str:
    # What was typed comes back, so a mistyped digit can be corrected in place.
    return render_template(
        "public/follow_up_receipt.html",
        problem=problem,
        receipt=receipt[:100],
        csrf_token=generate_csrf(),
    )


def _case_page(
    receipt: str,
    replies: list[cases.Reply] | None,
    values: MultiDict[str, str],
    problems: list[answers.Problem],
    kept_files: list[kept.KeptFile],
    notice: str | None = None,
) -> str:
    return render_template(
        "public/follow_up_case.html",
        receipt=receipt[:100],
        replies=replies,
        fields=questionnaire.FOLLOW_UP_FIELDS,
        values=_echo(values, questionnaire.FOLLOW_UP_FIELDS),
        problems={p.field: p.message for p in problems},
        problem_list=problems,
        notice=notice,
        kept_files=kept_files,
        kept_token=kept.token(kept_files),
        csrf_token=generate_csrf(),
        **_sealing_page(current()),
    )
