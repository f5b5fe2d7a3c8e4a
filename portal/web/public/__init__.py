"""The public site's pages: landing, report form, receipt, follow-up, key, safety.

Views parse, call `intake` and `cases`, and render. Every form page works without JavaScript;
where the browser runs it, the sealing script takes over the same form and posts to the
`/sealed` endpoints instead, so the server never sees the report.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    g,
    render_template,
    request,
)
from flask import session as browser_session
from flask_babel import gettext
from flask_wtf.csrf import validate_csrf
from werkzeug.datastructures import MultiDict
from wtforms import ValidationError

from portal.formats import answers, envelope, questionnaire
from portal.formats.fields import N_
from portal.server import cases, tickets
from portal.server.services import Services, current
from portal.web import headers, i18n, limits, presenting, uploads

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
REPORT_LABELS = {f.name: f.label for f in questionnaire.REPORT_FIELDS} | {
    ATTACHMENTS: N_("Attachments")
}
FOLLOW_UP_LABELS = {f.name: f.label for f in questionnaire.FOLLOW_UP_FIELDS} | {
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
report_limit = limits.shared_limit(_report_rate, scope="report")
sealed_report_limit = limits.shared_limit(_report_rate, scope="sealed-report")
# Each lookup costs an Argon2id derivation. A receipt's 83 bits need no rate limit; the
# server's processors and memory do. Each session has a small budget of its own inside the
# site's, which is sized to what the machine can afford (portal/server/config.py), and spent only
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


def _within_file_limit(
    staged: uploads.Uploads, files: list[uploads.Part]
) -> tuple[list[uploads.Part], list[answers.Problem]]:
    """Keep the first attachments up to the limit; a problem names the limit if there were more."""
    if not staged.overflow and len(files) <= envelope.MAX_FILES:
        return files, []
    for extra in files[envelope.MAX_FILES :]:
        staged.staging.remove(extra.name)
    return files[: envelope.MAX_FILES], [answers.Problem(ATTACHMENTS, TOO_MANY_FILES)]


def _csrf_problem(form: MultiDict[str, str]) -> str | None:
    try:
        validate_csrf(form.get("csrf_token"))
    except ValidationError:
        return _expired()
    return None


def _session_binding() -> bytes:
    # The session's random CSRF secret: a ticket carried to another browser is of no use there.
    return tickets.session_binding(str(browser_session.get("csrf_token", "")))


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


def refusal(exc: cases.Refused) -> str:
    """Why an upload was refused, in the page's language."""
    return _(exc.message, **{k: str(v) for k, v in exc.params.items()})


def register(app: Flask) -> None:
    """Add the public pages and the language chooser to an app."""
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


# The views register themselves on `bp` when their modules are imported.
from portal.web.public import casefile, followup, pages, report, resumable, sealed  # noqa: E402, F401
