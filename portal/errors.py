"""Error pages: short, calm, in the page's language, and never a traceback.

A form that cannot be accepted because of its size, a limit or a full store says so and what
to do next. Anything unexpected becomes a plain 500 page; the log line names the error's type
and never the request's content.
"""

from __future__ import annotations

import logging
import traceback

from flask import Flask, Response, make_response, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from portal import intake, presenting, uploads

log = logging.getLogger("portal")


def init_app(app: Flask, max_upload_bytes: int) -> None:
    """Render every error as a page of the site."""

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(error: RequestEntityTooLarge) -> tuple[str, int]:
        uploads.release()
        limit = presenting.filesize(max_upload_bytes)
        return render_template("errors/too_large.html", limit=limit), 413

    @app.errorhandler(intake.QuotaExceeded)
    def _full(error: intake.QuotaExceeded) -> tuple[str, int]:
        uploads.release()
        return render_template("errors/unavailable.html"), 503

    @app.errorhandler(429)
    def _limited(error: HTTPException) -> tuple[str, int]:
        uploads.release()
        if request.endpoint in ("public.submit_post", "public.follow_up_post"):
            # Keep what the person typed: read the text of the form, let the files go by.
            uploads.expect_discard()
            form = request.form
            if request.endpoint == "public.submit_post":
                from portal.public import limited_report  # here, to avoid an import cycle

                return limited_report(form)
            from portal.public import limited_follow_up  # here, to avoid an import cycle

            return limited_follow_up(form)
        return render_template("errors/limited.html"), 429

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
        # Where it happened, never what: no message, no locals, no request content.
        where = " < ".join(
            f"{frame.name}:{frame.lineno}"
            for frame in reversed(traceback.extract_tb(error.__traceback__))
        )
        log.error("unexpected %s at %s", type(error).__name__, where)
        return render_template("errors/error.html", code=500), 500
