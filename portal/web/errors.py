"""Error pages: short, calm, in the page's language, and never a traceback.

A form that cannot be accepted because of its size, a limit or a full store says so and what
to do next. Anything unexpected becomes a plain 500 page; the log line names the error's type
and never the request's content.
"""

from __future__ import annotations

import errno
import logging
import math
import traceback

from flask import Flask, Response, make_response, render_template, request
from flask_babel import gettext, ngettext
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from portal.formats.fields import N_
from portal.server import cases
from portal.web import gate, limits, presenting, uploads

log = logging.getLogger("portal")
KEPT = N_("Everything you typed is still below; attachments must be chosen again.")


def _(text: str) -> str:
    """`text` in the page's language (Flask-Babel's gettext, with its type)."""
    return str(gettext(text))


def wait_sentence(seconds: int | None) -> str:
    """How long to wait before trying again, in the page's language."""
    if seconds is None:
        return _("Please wait a few minutes, then try again.")
    if seconds < 60:
        return str(
            ngettext(
                "Please wait %(num)d second, then try again.",
                "Please wait %(num)d seconds, then try again.",
                seconds,
            )
        )
    return str(
        ngettext(
            "Please wait %(num)d minute, then try again.",
            "Please wait %(num)d minutes, then try again.",
            math.ceil(seconds / 60),
        )
    )


def follow_up_notice(error: HTTPException, seconds: int | None) -> str:
    """Why a follow-up was not sent (this browser's own tries, or everyone's), that what was
    typed is kept, and how long to wait."""
    if isinstance(error, limits.OverBudget) and error.whose == "session":
        why = _("You have tried many times in a short while, so this was not sent yet.")
    else:
        why = _("Many people are using the portal right now, so this was not sent yet.")
    return " ".join((why, _(KEPT), wait_sentence(seconds)))


def init_app(app: Flask, max_upload_bytes: int) -> None:
    """Render every error as a page of the site."""

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(error: RequestEntityTooLarge) -> tuple[str, int]:
        uploads.release()
        limit = error.limit if isinstance(error, uploads.FormTooLarge) else max_upload_bytes
        return render_template("errors/too_large.html", limit=presenting.filesize(limit)), 413

    @app.errorhandler(cases.QuotaExceeded)
    def _full(error: cases.QuotaExceeded) -> tuple[str, int]:
        uploads.release()
        return render_template("errors/unavailable.html"), 503

    @app.errorhandler(429)
    def _limited(error: HTTPException) -> Response:
        seconds = limits.wait_seconds(error)
        return _try_again_later(429, seconds, follow_up_notice(error, seconds))

    @app.errorhandler(gate.Busy)
    def _busy(error: gate.Busy) -> Response:
        # Too many large uploads at once: the same calm answer as a rate limit, with the
        # person's text, and a hint for clients that retry by themselves.
        seconds = gate.RETRY_AFTER_SECONDS
        return _try_again_later(503, seconds, follow_up_notice(error, seconds))

    def _try_again_later(status: int, seconds: int | None, notice: str) -> Response:
        """The form again with what was typed (or a short page), when too much arrives at once."""
        uploads.release()
        retry = {"Retry-After": str(seconds)} if seconds else {}
        short_page = render_template("errors/limited.html", wait=wait_sentence(seconds))
        if request.endpoint in ("public.submit_post", "public.follow_up_post"):
            # Keep what the person typed: read the text of the form, let the files go by.
            uploads.expect_discard()
            try:
                form = request.form
            except HTTPException as unreadable:
                # Too large or malformed as well: that page, rather than a failed handler.
                if isinstance(unreadable, RequestEntityTooLarge):
                    return make_response(_too_large(unreadable))
                return make_response((short_page, status, retry))
            if request.endpoint == "public.submit_post":
                from portal.web.public.report import (
                    limited_report,  # here, to avoid an import cycle
                )

                return make_response((*limited_report(form, status), retry))
            from portal.web.public.followup import (
                limited_follow_up,  # here, to avoid an import cycle
            )

            return make_response((*limited_follow_up(form, notice, status), retry))
        # The sealing script shows this page's message and keeps the form as it was.
        return make_response((short_page, status, retry))

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        uploads.release()
        code = error.code or 500
        response = make_response(render_template("errors/error.html", code=code), code)
        # Keep what the error says to clients beyond its page: Allow on a 405, for one.
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[str, int]:
        uploads.release()
        if full := disk_full(error):
            # Not a fault of the request: the same calm page as a full quota, and a line
            # that tells the operator what to free.
            log.error("storage full (%s): a submission was turned away", full)
            return render_template("errors/unavailable.html"), 503
        # Where it happened, never what: no message, no locals, no request content.
        where = " < ".join(
            f"{frame.name}:{frame.lineno}"
            for frame in reversed(traceback.extract_tb(error.__traceback__))
        )
        log.error("unexpected %s at %s", type(error).__name__, where)
        return render_template("errors/error.html", code=500), 500


# SQLite's "database or disk is full" and PostgreSQL's disk_full condition.
SQLITE_FULL = 13
POSTGRES_DISK_FULL = "53100"


def disk_full(error: BaseException) -> str | None:
    """What says the disk or quota is full in `error` or its causes (ENOSPC, say); else None."""
    seen: BaseException | None = error
    for _depth in range(8):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return errno.errorcode[seen.errno]
        if getattr(seen, "sqlite_errorcode", None) == SQLITE_FULL:
            return "SQLITE_FULL"
        if getattr(seen, "sqlstate", None) == POSTGRES_DISK_FULL:
            return "disk_full"
        # SQLAlchemy keeps the driver's error as `orig`; Python chains the rest.
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return None
