"""The public site's pages: landing, report form, receipt, follow-up, key, safety.

Views parse, call `intake`, and render. Every form page works without JavaScript; where the
browser runs it, the sealing script takes over the same form and posts to the `/sealed`
endpoints instead, so the server never sees the report.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    g,
    jsonify,
    render_template,
    request,
)
from flask import session as browser_session
from flask_babel import gettext
from flask_wtf.csrf import generate_csrf, validate_csrf
from werkzeug.datastructures import MultiDict
from wtforms import ValidationError

from portal import (
    crypto,
    envelope,
    headers,
    i18n,
    intake,
    kept,
    limits,
    presenting,
    receipts,
    resources,
    schema,
    sealer,
    tickets,
    uploads,
)
from portal.limits import limiter
from portal.schema import N_
from portal.services import Services, current

bp = Blueprint("public", __name__, url_prefix="/<lang>")
log = logging.getLogger("portal")


def _(text: str, **variables: str) -> str:
    """`text` in the page's language (Flask-Babel's gettext, with its type)."""
    return str(gettext(text, **variables))


ATTACHMENTS = "attachments"
# The file parts the report form stores; any other (a sealed case file sent to the wrong page)
# is let go unwritten.
REPORT_FILE_FIELDS = frozenset({ATTACHMENTS})
# What the problem summary calls each field: the same words as the label on its page (the
# follow-up form's "description" is labelled "New information").
REPORT_LABELS = {f.name: f.label for f in schema.REPORT_FIELDS} | {ATTACHMENTS: N_("Attachments")}
FOLLOW_UP_LABELS = {f.name: f.label for f in schema.FOLLOW_UP_FIELDS} | {
    ATTACHMENTS: N_("Attachments")
}
TOO_MANY_FILES = N_(
    "At most 100 files can be sent at once. The first 100 were received and are kept below; "
    "send the others afterwards, as more information with your receipt."
)
# Attachments that could not be kept across a problem: the form was not trusted (expired, or
# no session), or keeping them would pass a budget (see `kept`).
CHOOSE_AGAIN = N_("Your attachments could not be kept: please choose them again.")
# Each answer is within its own limit, but together they pass what one envelope may hold.
ALL_TOO_LONG = N_(
    "Together, your answers are too long to send at once. Please shorten this text, or send "
    "part of it afterwards as more information with your receipt."
)


def _report_rate() -> str:
    return current().config.report_rate_limit


# One budget for new receipts (each costs an Argon2id derivation), shared by the form posted
# without JavaScript and the browser's way in: with a limit per view, each way in had its own
# budget and a flood could spend both. A browser-sealed report spends the report budget when it
# asks for its receipt; its upload, which makes no receipt but still arrives on disk before it
# can be refused, has a budget of the same size of its own, so that the browser's reports are
# not counted twice.
report_limit = limiter.shared_limit(_report_rate, scope="report")
sealed_report_limit = limiter.shared_limit(_report_rate, scope="sealed-report")
# Each lookup costs an Argon2id derivation. A receipt's 83 bits need no rate limit; the
# server's processors and memory do. Each session has a small budget of its own inside the
# site's, which is sized to what the machine can afford (portal/config.py), and spent only
# once the session's has room: so one browser's tries cannot close follow-ups to everyone.
follow_up_limit = limits.budget(
    limits.Budget(
        "follow-up-session",
        lambda: current().config.follow_up_session_rate_limit,
        limits.session_key("follow-up"),
        whose="session",
    ),
    limits.Budget(
        "follow-up",
        lambda: current().config.follow_up_rate_limit,
        limits.whole_site("follow-up"),
        whose="site",
    ),
)


@bp.url_value_preprocessor
def _take_language(endpoint: str | None, values: dict[str, Any] | None) -> None:
    lang = (values or {}).pop("lang", None)
    if lang not in i18n.LANGUAGES:
        abort(404)
    g.lang = lang


@bp.url_defaults
def _add_language(endpoint: str, values: dict[str, Any]) -> None:
    values.setdefault("lang", i18n.current())


def _sealing_page(services: Services) -> dict[str, Any]:
    """What a form page needs for the sealing script (whose hash is the `script_sri` global)."""
    headers.allow_script()
    return {
        "team_key_b64": services.team_key_text.strip().splitlines()[-1],
        "fingerprint": services.team_fingerprint,
    }


@bp.get("/")
def index() -> str:
    """The landing page: what this is, who reads it, how it is protected, safety first."""
    return render_template("public/index.html", fingerprint=current().team_fingerprint)


@bp.get("/safety")
def safety() -> str:
    """How to stay safe while using the portal."""
    return render_template("public/safety.html")


@bp.get("/key")
def key() -> str:
    """The team key's fingerprint, for comparison through an independent channel."""
    services = current()
    # The script shows beside it the fingerprint of the key it seals to.
    headers.allow_script()
    return render_template(
        "public/key.html",
        fingerprint=services.team_fingerprint,
        key_text=services.published_key_text,
        sealer_sha256=_sealer_sha256(services.team_public_key, services.receipt_site),
        script_sha256=_script_sha256(),
    )


@bp.get("/key/sealer.html")
def sealer_file() -> Response:
    """The offline sealer made for the site's key: the same bytes whatever the page's language."""
    services = current()
    made = _sealer_file(services.team_public_key, services.receipt_site)
    if made is None:
        abort(404)
    # Never a page of this site: the file runs its own script, so it is only ever downloaded
    # and opened from disk, even if something on the way dropped the Content-Disposition.
    return Response(
        made,
        mimetype="application/octet-stream",
        headers={"Content-Disposition": "attachment; filename=sealer.html"},
    )


@functools.lru_cache(maxsize=4)
def _sealer_file(public_key: bytes, site: receipts.Published) -> bytes | None:
    """The sealer for a key and the site's receipts, made once per process; None (and a log
    line) when it cannot be."""
    try:
        return sealer.build(public_key, site=site)
    except sealer.SealerError as exc:
        log.warning("The offline sealer is not offered: %s", exc)
        return None


def _sealer_sha256(public_key: bytes, site: receipts.Published) -> str | None:
    """The SHA-256 of the sealer the site offers, shown beside the download."""
    made = _sealer_file(public_key, site)
    return sealer.sha256(made) if made else None


def _script_sha256() -> str | None:
    """The SHA-256 of the sealing script as the site serves it, for comparison with a rebuild."""
    try:
        return hashlib.sha256(resources.SCRIPT.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


@bp.get("/key/team.pub")
def key_file() -> Response:
    """The team's public key file, for relays that seal offline, with the site's receipt salt
    and cost so that their tools can make each case's receipt and reply key themselves."""
    return Response(
        current().published_key_text,
        mimetype="text/plain",
        headers={"Content-Disposition": "attachment; filename=team.pub"},
    )


# ---------------------------------------------------------------------------------------------
# The report


def render_report(
    values: MultiDict[str, str] | None = None,
    problems: list[schema.Problem] | None = None,
    notice: str | None = None,
    kept_files: list[kept.KeptFile] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """The report form, with what was typed and any problems named next to their fields."""
    services = current()
    return render_template(
        "public/submit.html",
        sections=schema.REPORT_SECTIONS,
        details_title=schema.DETAILS_TITLE,
        details_intro=schema.DETAILS_INTRO,
        values=_echo(values, schema.REPORT_FIELDS),
        problems={p.field: p.message for p in problems or ()},
        problem_list=problems or [],
        notice=notice,
        kept_files=kept_files or [],
        kept_token=kept.token(kept_files or []),
        csrf_token=generate_csrf(),
        **_sealing_page(services),
    ), status


def _echo(
    values: MultiDict[str, str] | None, fields: tuple[schema.Field, ...]
) -> MultiDict[str, str]:
    """What was typed, to show again: the form's own fields only, none longer than its limit."""
    return MultiDict(schema.echo(values.to_dict(flat=False), fields) if values else {})


def _keep(
    services: Services,
    staged: uploads.Uploads,
    files: list[uploads.Part],
    problems: list[schema.Problem],
    trusted: bool,
) -> list[kept.KeptFile]:
    """Keep the attachments for the next try; where they cannot be, a problem asks for them."""
    kept_files, let_go = kept.keep(services.config, services.store, staged, files, trusted=trusted)
    if let_go:
        problems.append(schema.Problem(ATTACHMENTS, CHOOSE_AGAIN))
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


def limited_follow_up(form: MultiDict[str, str], notice: str, status: int = 429) -> tuple[str, int]:
    """The follow-up page again, with `notice`, when too many lookups arrive at once.

    The case is not looked up (that is the costly part being limited); what was typed, the
    receipt included, comes back as it was.
    """
    receipt = form.get("receipt", "")
    if form.get("step") == "add":
        return _case_page(receipt, None, form, [], [], notice), status
    return _receipt_page(notice, receipt), status


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
        intake.check_quota(services, session, request.content_length or 0)
        staged = uploads.expect_uploads(
            services.store, uploads.SEAL, max_files=100, fields=REPORT_FILE_FIELDS
        )
        form = request.form
        if form.get(schema.HONEYPOT):
            return _quietly_dropped(staged)
        staged.finish()
        problem = _csrf_problem(form)
        files = kept.restore(form, staged, services.store)
        files += [p for p in staged.parts if p.field == ATTACHMENTS]
        files, file_problems = _within_file_limit(staged, files)
        values = schema.collect(form.to_dict(flat=False), schema.REPORT_FIELDS)
        problems = schema.check(values, schema.REPORT_FIELDS) + file_problems
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
            problems = [schema.Problem("description", ALL_TOO_LONG)]
            kept_files = _keep(services, staged, files, problems, trusted=True)
            return render_report(form, problems, None, kept_files, 400)
        staged.committed = True
    urgent = values.get(schema.URGENT) == "yes"
    return render_template(
        "public/receipt.html", receipt=receipt, sealed_by="server", urgent=urgent
    ), 200


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
        intake.check_quota(services, session, request.content_length or 0)
        staged = uploads.expect_uploads(services.store, uploads.SEAL, max_files=1)
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
        except intake.Refused as exc:
            staged.discard()
            return render_case_file(refusal(exc), 400)
        staged.committed = True
    return render_template("public/receipt.html", receipt=receipt, sealed_by="relay-tool"), 200


def refusal(exc: intake.Refused) -> str:
    """Why an upload was refused, in the page's language."""
    return _(exc.message, **{k: str(v) for k, v in exc.params.items()})


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
        intake.check_quota(services, session, envelope.PADDING + crypto.SEAL_OVERHEAD)
    ticket, reply_key = intake.prepare_report(services, _session_binding())
    return jsonify({"ticket": ticket, "reply_public_key": crypto.b64encode(reply_key)})


def _session_binding() -> bytes:
    # The session's random CSRF secret: a ticket carried to another browser is of no use there.
    return tickets.session_binding(str(browser_session.get("csrf_token", "")))


@bp.post("/submit/sealed")
@sealed_report_limit
def submit_sealed() -> tuple[str, int]:
    """A report sealed in the browser: only its structure and its ticket are checked."""
    return _sealed("report")


def _sealed(kind: str) -> tuple[str, int]:
    services = current()
    with services.sessions() as session:
        intake.check_quota(services, session, request.content_length or 0)
        staged = uploads.expect_uploads(services.store, uploads.RAW, max_files=101)
        form = request.form
        parts = staged.finish()
        if form.get(schema.HONEYPOT):
            return _quietly_dropped(staged)
        if problem := _csrf_problem(form):
            return render_template("public/refused.html", reason=problem), 400
        case = None
        if kind == "follow-up":
            try:
                case, _derived = intake.find_case(services, session, form.get("receipt", ""))
            except intake.NoSuchCase:
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
            )
        except intake.TicketRefused:
            # The script asks for a fresh ticket on every try: sending again is the remedy.
            return render_template("public/refused.html", reason=_expired()), 400
        except intake.Refused as exc:
            return render_template("public/refused.html", reason=refusal(exc)), 400
        staged.committed = True
    if kind == "follow-up":
        return render_template("public/follow_up_done.html", sealed_by="browser"), 200
    return render_template("public/receipt.html", receipt=receipt, sealed_by="browser"), 200


def _within_file_limit(
    staged: uploads.Uploads, files: list[uploads.Part]
) -> tuple[list[uploads.Part], list[schema.Problem]]:
    """Keep the first attachments up to the limit; a problem names the limit if there were more."""
    if not staged.overflow and len(files) <= envelope.MAX_FILES:
        return files, []
    for extra in files[envelope.MAX_FILES :]:
        (staged.staging.path / extra.name).unlink(missing_ok=True)
    return files[: envelope.MAX_FILES], [schema.Problem(ATTACHMENTS, TOO_MANY_FILES)]


def _csrf_problem(form: MultiDict[str, str]) -> str | None:
    try:
        validate_csrf(form.get("csrf_token"))
    except ValidationError:
        return _expired()
    return None


def _expired() -> str:
    return _(
        "This form had expired, so nothing was sent yet. Everything you typed is "
        "still below: please check it and send it again."
    )


def _quietly_dropped(staged: uploads.Uploads) -> tuple[str, int]:
    # The honeypot field is hidden from people; only robots fill it in. They get a page that
    # looks like success, so they learn nothing, and nothing is stored.
    staged.discard()
    return render_template("public/dropped.html"), 200


def _no_case() -> str:
    return _("No case matches this receipt. Check the 25 digits and try again.")


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
            case, derived = intake.find_case(services, session, receipt)
        except intake.NoSuchCase:
            staged.discard()
            return _receipt_page(problem or _no_case(), receipt), 400
        replies = intake.replies(services, case, derived)
        if not adding:
            staged.discard()
            return _case_page(receipt, replies, MultiDict(), [], []), 200
        if form.get(schema.HONEYPOT):
            return _quietly_dropped(staged)
        values = schema.collect(form.to_dict(flat=False), schema.FOLLOW_UP_FIELDS)
        files, file_problems = _within_file_limit(staged, files)
        problems = schema.check(values, schema.FOLLOW_UP_FIELDS) + file_problems
        if problem or problems:
            # An expired form comes back like one with a problem: the case page, with the
            # new information as typed (its attachments are kept only for a trusted form).
            kept_files = _keep(services, staged, files, problems, trusted=problem is None)
            return _case_page(receipt, replies, form, problems, kept_files, problem), 400
        # This request's files are already in staging, which the quota counts.
        intake.check_quota(services, session, 0)
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
            problems = [schema.Problem("description", ALL_TOO_LONG)]
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
    replies: list[intake.Reply] | None,
    values: MultiDict[str, str],
    problems: list[schema.Problem],
    kept_files: list[kept.KeptFile],
    notice: str | None = None,
) -> str:
    return render_template(
        "public/follow_up_case.html",
        receipt=receipt[:100],
        replies=replies,
        fields=schema.FOLLOW_UP_FIELDS,
        values=_echo(values, schema.FOLLOW_UP_FIELDS),
        problems={p.field: p.message for p in problems},
        problem_list=problems,
        notice=notice,
        kept_files=kept_files,
        kept_token=kept.token(kept_files),
        csrf_token=generate_csrf(),
        **_sealing_page(current()),
    )


@bp.post("/follow-up/sealed")
@follow_up_limit
def follow_up_sealed() -> tuple[str, int]:
    """A follow-up sealed in the browser."""
    return _sealed("follow-up")


# ---------------------------------------------------------------------------------------------


def register(app: Flask) -> None:
    """Add the public pages and the language chooser to an app."""
    # The resumable uploads' views join this blueprint when their module is imported.
    from portal import public_uploads  # noqa: F401

    app.register_blueprint(bp)

    @app.get("/")
    def choose_language() -> str:
        """The language chooser, in all six languages."""
        return render_template("public/choose.html")

    @app.get("/leave")
    def leave() -> str:
        """A neutral page for the "Leave quickly" link."""
        return render_template("public/leave.html")

    @app.get("/favicon.ico")
    def favicon() -> Response:
        """No icon: answer at once rather than with an error page."""
        return Response(status=204)

    # Block tags leave no blank lines and indentation behind: the report form is fetched over
    # slow connections, where every kilobyte counts.
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.jinja_env.globals["field_label"] = _field_label
    app.jinja_env.globals["choice_labels"] = presenting.choice_labels
    app.jinja_env.globals["pattern_problem"] = presenting.pattern_problem
    app.jinja_env.globals["problem_line"] = presenting.problem_line
    app.jinja_env.filters["filesize"] = presenting.filesize


def _field_label(name: str) -> str:
    """The label of a field as the current page shows it, untranslated."""
    labels = FOLLOW_UP_LABELS if request.endpoint == "public.follow_up_post" else REPORT_LABELS
    return labels.get(name, name)
