"""The staff site: sign-in, the list of sealed submissions, bundle download, deletion, reply
upload and the audit log.

It handles sealed bytes only. Nothing here can open a submission or a reply: the keys that
would are on the team's offline machine and with the submitters. The site is served on its own
socket, behind its own onion address with Tor client authorisation, and needs no JavaScript.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response
from flask_babel import gettext
from flask_wtf.csrf import CSRFError, CSRFProtect

from portal.formats import sizes

bp = Blueprint("staff", __name__)
csrf = CSRFProtect()

PAGE_SIZE = 200
PUBLIC_ENDPOINTS = ("staff.login", "staff.login_post")


def _(text: str, **variables: object) -> str:
    """Flask-Babel's gettext, typed (staff pages are in English, but their strings are marked)."""
    return str(gettext(text, **variables))


def register(app: Flask) -> None:
    """Add the staff pages, with CSRF protection on every form, to an app."""
    app.config["WTF_CSRF_CHECK_DEFAULT"] = True
    csrf.init_app(app)
    csrf.exempt(replies.reply_post)
    app.register_blueprint(bp)
    app.register_error_handler(CSRFError, signin.csrf_error)
    app.jinja_env.filters["size"] = sizes.human_size

    @app.get("/favicon.ico")
    def favicon() -> Response:
        """No icon: answer at once rather than with an error page."""
        return Response(status=204)


# The views register themselves on `bp` when their modules are imported.
from portal.web.staff import replies, signin, submissions  # noqa: E402, F401
