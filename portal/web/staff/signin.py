"""Staff sign-in and sign-out: passphrase and TOTP, and the check before every other page."""

from __future__ import annotations

from flask import (
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError
from werkzeug.wrappers import Response as BaseResponse

from portal.server import accounts, audit
from portal.server.models import StaffMember
from portal.server.services import Services, current
from portal.web import limits
from portal.web.staff import PUBLIC_ENDPOINTS, _, bp

# Signing in and the session


def _signed_in(services: Services) -> tuple[int, str] | None:
    """The id and name of the signed-in staff member, after checking the session against the
    account's open session and the inactivity limit; None otherwise."""
    staff_id, nonce, seen = session.get("staff"), session.get("nonce"), session.get("seen")
    if not isinstance(staff_id, int) or not isinstance(nonce, str) or not isinstance(seen, int):
        return None
    moment = int(accounts.now().timestamp())
    with services.sessions() as db:
        member = db.get(StaffMember, staff_id)
        if member is None or not accounts.session_matches(member, nonce):
            return None
        if not 0 <= moment - seen <= services.config.staff_session_minutes * 60:
            accounts.end_session(member)
            db.commit()
            return None
        session["seen"] = moment
        return member.id, member.name


@bp.before_request
def _require_sign_in() -> BaseResponse | None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    found = _signed_in(current())
    if found is None:
        had_session = "staff" in session
        session.clear()
        return redirect(url_for("staff.login", ended=1 if had_session else None), 303)
    g.staff_id, g.staff_name = found
    return None


def _render_login(notice: str | None = None, status: int = 200) -> tuple[str, int]:
    return render_template("staff/login.html", notice=notice), status


@bp.get("/login")
def login() -> tuple[str, int] | BaseResponse:
    """The sign-in form (passphrase and code)."""
    if _signed_in(current()) is not None:
        return redirect(url_for("staff.index"), 303)
    notice = None
    if request.args.get("ended"):
        notice = _(
            "Your session has ended (after %(minutes)d minutes without activity, or "
            "because the account signed in elsewhere or was changed). Please sign in "
            "again.",
            minutes=current().config.staff_session_minutes,
        )
    elif request.args.get("out"):
        notice = _("You have signed out.")
    return _render_login(notice)


@bp.post("/login")
@limits.limit(lambda: current().config.login_rate_limit, key_func=limits.account())
@limits.limit("60 per minute", key_func=limits.whole_site("login"))
def login_post() -> tuple[str, int] | BaseResponse:
    """Check name, passphrase and code; open a session."""
    services = current()
    form = request.form
    with services.sessions() as db:
        try:
            member = accounts.authenticate(
                db, form.get("name", ""), form.get("passphrase", ""), form.get("code", "")
            )
        except accounts.LoginRefused as refused:
            name = refused.member.name if refused.member else audit.UNKNOWN_NAME
            # The day only, as everywhere in the log: not the time the lock ends.
            detail = "the account is now locked" if refused.locked_now else ""
            if refused.was_locked:
                audit.record(db, name, "login-locked")
            else:
                audit.record(db, name, "login-failed", detail)
            db.commit()
            return _render_login(_refusal(refused), 401)
        nonce = accounts.start_session(member)
        audit.record(db, member.name, "login")
        db.commit()
        # A fresh session (and with it a fresh CSRF token): nothing from before sign-in carries on.
        session.clear()
        session.update(staff=member.id, nonce=nonce, seen=int(accounts.now().timestamp()))
    return redirect(url_for("staff.index"), 303)


def _refusal(refused: accounts.LoginRefused) -> str:
    # One message for an unknown name, a wrong factor and a locked account, so the page tells
    # no one which accounts exist; the lock is named only to whoever gave both right factors.
    if refused.locked_until is not None:
        return _(
            "This account is locked until %(time)s UTC after repeated failed sign-ins. "
            "Try again then, or ask an administrator (a team member with access to the "
            "server) to unlock it sooner with “portal staff unlock”.",
            time=f"{refused.locked_until:%H:%M}",
        )
    return _(
        "The name, passphrase or code is not right. Check all three and try again; a "
        "code works only once, so if you have just used it, wait for the next one."
    )


@bp.post("/logout")
def logout() -> BaseResponse:
    """End the session, in the browser and on the server."""
    services = current()
    with services.sessions() as db:
        member = db.get(StaffMember, g.staff_id)
        if member is not None:
            accounts.end_session(member)
            audit.record(db, member.name, "logout")
            db.commit()
    session.clear()
    return redirect(url_for("staff.login", out=1), 303)


def csrf_error(error: CSRFError) -> tuple[str, int] | BaseResponse:
    """An expired or missing CSRF token: say so in words, and do nothing."""
    if request.endpoint == "staff.login_post":
        return _render_login(_("The sign-in form had expired. Please sign in again."), 400)
    if _signed_in(current()) is None:
        session.clear()
        return redirect(url_for("staff.login", ended=1), 303)
    return render_template("staff/expired.html"), 400
