"""The staff site: sign-in, the list of sealed submissions, bundle download, deletion, reply
upload and the audit log.

It handles sealed bytes only. Nothing here can open a submission or a reply: the keys that
would are on the team's offline machine and with the submitters. The site is served on its own
socket, behind its own onion address with Tor client authorisation, and needs no JavaScript.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from flask import (
    Blueprint,
    Flask,
    Response,
    g,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import gettext
from flask_wtf.csrf import CSRFError, CSRFProtect, validate_csrf
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as BaseResponse
from wtforms import ValidationError

from portal import accounts, audit, bundle, exporting, limits, replies, retention, uploads
from portal.limits import limiter
from portal.models import StaffMember, Submission
from portal.services import Services, current, today

bp = Blueprint("staff", __name__)
csrf = CSRFProtect()

PAGE_SIZE = 200
PUBLIC_ENDPOINTS = ("staff.login", "staff.login_post")


def _(text: str, **variables: object) -> str:
    """Flask-Babel's gettext, typed (staff pages are in English, but their strings are marked)."""
    return str(gettext(text, **variables))


# ---------------------------------------------------------------------------------------------
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
@limiter.limit(lambda: current().config.login_rate_limit, key_func=limits.account())
@limiter.limit("60 per minute", key_func=limits.whole_site("login"))
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


# ---------------------------------------------------------------------------------------------
# The list


@dataclass(frozen=True)
class Row:
    """One submission as the list shows it: what the server knows, which is no content."""

    id: str
    case_id: str
    kind: str
    received: date
    size: int
    files: int
    sealed_by: str
    exported: date | None
    exportable: bool
    delete_on: date


def _kind(s: Submission) -> str:
    if s.kind == "reply":
        return _("reply (team copy)") if s.recipient == "team" else _("reply (submitter copy)")
    if s.source == "relay":
        return _("relay upload")
    return _("follow-up") if s.kind == "follow-up" else _("report")


def _sealed_by(s: Submission) -> str:
    if s.kind == "reply":
        return _("offline (portal reply)")
    return {"browser": _("browser"), "server": _("server"), "relay-tool": _("relay tool")}.get(
        s.sealed_by, s.sealed_by
    )


def _row(services: Services, s: Submission) -> Row:
    return Row(
        s.id,
        s.case_id,
        _kind(s),
        s.received_day,
        s.size_bytes,
        s.file_count,
        _sealed_by(s),
        s.exported_day,
        s.recipient != "submitter",
        retention.delete_after(services, s),
    )


def _render_list(
    db: Session, notice: str | None = None, selected: Sequence[str] = (), status: int = 200
) -> tuple[str, int]:
    services = current()
    total, size = db.execute(
        select(func.count(Submission.id), func.coalesce(func.sum(Submission.size_bytes), 0))
    ).one()
    pages = max(1, -(-int(total) // PAGE_SIZE))
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
    pending = exporting.pending(db)
    page_rows = [
        _row(services, s)
        for s in db.scalars(
            select(Submission)
            .order_by(Submission.received_day.desc(), Submission.case_id, Submission.seq)
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
    ]
    # Selecting without JavaScript: links that reload the page with boxes ticked.
    checked = set(selected)
    if request.args.get("select") == "pending":
        checked |= {s.id for s in pending}
    elif request.args.get("select") == "all":
        checked |= {r.id for r in page_rows}
    return render_template(
        "staff/submissions.html",
        rows=page_rows,
        checked=checked,
        total=int(total),
        total_size=int(size),
        pending=len(pending),
        page=page,
        pages=pages,
        notice=notice,
        deleted=request.args.get("deleted", type=int),
        today=today(),
    ), status


@bp.get("/")
def index() -> tuple[str, int]:
    """The sealed submissions on the server, newest first."""
    with current().sessions() as db:
        return _render_list(db)


# ---------------------------------------------------------------------------------------------
# Download


def _selection(db: Session, ids: Sequence[str]) -> tuple[list[Submission], str | None]:
    """The submissions chosen on the list, or a problem to show instead."""
    wanted = list(dict.fromkeys(i for i in ids if i.isalnum()))
    if not wanted:
        return [], _("Select at least one submission first.")
    found = list(
        db.scalars(
            select(Submission)
            .options(selectinload(Submission.case))
            .where(Submission.id.in_(wanted))
            .order_by(Submission.received_day, Submission.case_id, Submission.seq)
        )
    )
    if len(found) != len(wanted):
        return [], _(
            "%(n)d of the selected submissions are no longer on the server (deleted "
            "meanwhile). The list below is up to date: select again.",
            n=len(wanted) - len(found),
        )
    return found, None


def bundle_length(services: Services, chosen: Sequence[Submission]) -> int:
    """The exact size of the bundle `exporting.stream` makes of `chosen`, for Content-Length:
    a browser then knows when a download stopped short."""
    entries = [exporting.entry(s) for s in chosen]
    total = bundle.BLOCK + _padded(len(bundle.index_bytes(entries)))
    for entry in entries:
        for member in bundle.members_of(entry, services.store.path(entry.id)):
            total += bundle.BLOCK + _padded(member.size)
    return total + 2 * bundle.BLOCK


def _padded(size: int) -> int:
    return size + (-size % bundle.BLOCK)


def exported_when_sent(
    services: Services, blocks: Iterator[bytes], ids: Sequence[str], staff_name: str, size: int
) -> Iterator[bytes]:
    """Pass the bundle's blocks on, and mark the submissions exported only once the server has
    asked for more after the last one. A client that goes away makes the server close this
    generator at a `yield` (GeneratorExit), and then nothing is marked."""
    try:
        yield from blocks
    except BaseException:
        with services.sessions() as db:
            audit.record(db, staff_name, "export-interrupted", audit.submissions(len(ids)))
            db.commit()
        raise
    with services.sessions() as db:
        exporting.mark_exported(db, ids)
        audit.record(db, staff_name, "export", audit.submissions(len(ids), size))
        db.commit()


@bp.post("/download")
def download() -> tuple[str, int] | Response:
    """A bundle v1 of the selected submissions, or of all not yet exported, streamed."""
    services = current()
    with services.sessions() as db:
        if request.form.get("scope") == "pending":
            chosen = exporting.pending(db)
            problem = None if chosen else _("Every submission has been downloaded already.")
        else:
            chosen, problem = _selection(db, request.form.getlist("ids"))
            if any(s.recipient == "submitter" for s in chosen):
                problem = _(
                    "A submitter's copy of a reply cannot be downloaded: it is sealed to "
                    "the submitter, and the team has its own copy. Untick it."
                )
        if problem:
            return _render_list(db, problem, request.form.getlist("ids"), 400)
        try:
            size = bundle_length(services, chosen)
            blocks = exporting.stream(services, chosen)
        except OSError:
            return _render_list(
                db,
                _(
                    "The sealed files of a selected submission are missing on "
                    "the server, so no bundle was made."
                ),
                (),
                500,
            )
        ids = [s.id for s in chosen]
    body = exported_when_sent(services, blocks, ids, g.staff_name, size)
    return Response(
        stream_with_context(body),
        mimetype="application/x-tar",
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f"attachment; filename=portal-bundle-{today().isoformat()}.tar",
        },
    )


# ---------------------------------------------------------------------------------------------
# Delete


@bp.post("/delete")
def delete() -> tuple[str, int] | BaseResponse:
    """Ask for confirmation, then delete the selected submissions (rows and sealed files)."""
    services = current()
    with services.sessions() as db:
        chosen, problem = _selection(db, request.form.getlist("ids"))
        if problem:
            return _render_list(db, problem, request.form.getlist("ids"), 400)
        if request.form.get("confirm") != "yes":
            return render_template(
                "staff/confirm_delete.html",
                rows=[_row(services, s) for s in chosen],
                unexported=sum(
                    1 for s in chosen if s.exported_day is None and s.recipient != "submitter"
                ),
            ), 200
        detail = audit.submissions(len(chosen), sum(s.size_bytes for s in chosen))
        retention.delete(services, db, chosen)
        audit.record(db, g.staff_name, "delete", detail)
        db.commit()
    return redirect(url_for("staff.index", deleted=len(chosen)), 303)


# ---------------------------------------------------------------------------------------------
# Replies


def _reply_page(problem: str | None = None, status: int = 200) -> tuple[str, int]:
    return render_template("staff/reply.html", problem=problem), status


@bp.get("/reply")
def reply() -> tuple[str, int]:
    """The form to upload a reply file made by `portal reply`."""
    return _reply_page()


@bp.post("/reply")
def reply_post() -> tuple[str, int]:
    """Check and store an uploaded reply file; the reply stays sealed throughout."""
    services = current()
    # A reply file is two sealed manifests: a few megabytes at most, whatever the site allows.
    request.max_content_length = replies.MAX_FILE_BYTES
    staged = uploads.expect_uploads(services.store, uploads.RAW, max_files=1)
    try:
        form = request.form
    except RequestEntityTooLarge:
        return _reply_page(
            _("This file is far larger than any reply; choose the file made by “portal reply”."),
            413,
        )
    parts = [p for p in staged.finish() if p.field == "reply_file"]
    try:
        # Checked here rather than before the view: the form can be read only once its file
        # part has somewhere to go.
        validate_csrf(form.get("csrf_token"))
    except ValidationError:
        return _reply_page(
            _("This form had expired, so nothing was stored. Choose the file again and send it."),
            400,
        )
    if len(parts) != 1 or parts[0].size <= 0:
        return _reply_page(_("Choose the reply file made by “portal reply”."), 400)
    with services.sessions() as db:
        try:
            stored = replies.accept(services, db, staged.staging.path / parts[0].name, g.staff_name)
        except replies.Refused as exc:
            audit.record(db, g.staff_name, "reply-refused")
            db.commit()
            return _reply_page(_("The reply was refused: %(reason)s", reason=str(exc)), 400)
    return render_template("staff/reply_done.html", case_id=stored.case_id), 200


# ---------------------------------------------------------------------------------------------
# Audit log


@bp.get("/audit")
def audit_log() -> tuple[str, int]:
    """Staff actions, newest first."""
    with current().sessions() as db:
        pages = max(1, -(-audit.count(db) // PAGE_SIZE))
        page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
        events = audit.recent(db, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    return render_template(
        "staff/audit.html", events=events, actions=audit.ACTIONS, page=page, pages=pages
    ), 200


# ---------------------------------------------------------------------------------------------


def _csrf_error(error: CSRFError) -> tuple[str, int] | BaseResponse:
    """An expired or missing CSRF token: say so in words, and do nothing."""
    if request.endpoint == "staff.login_post":
        return _render_login(_("The sign-in form had expired. Please sign in again."), 400)
    if _signed_in(current()) is None:
        session.clear()
        return redirect(url_for("staff.login", ended=1), 303)
    return render_template("staff/expired.html"), 400


def register(app: Flask) -> None:
    """Add the staff pages, with CSRF protection on every form, to an app."""
    app.config["WTF_CSRF_CHECK_DEFAULT"] = True
    csrf.init_app(app)
    csrf.exempt(reply_post)
    app.register_blueprint(bp)
    app.register_error_handler(CSRFError, _csrf_error)
    app.jinja_env.filters["size"] = audit.human_size

    @app.get("/favicon.ico")
    def favicon() -> Response:
        """No icon: answer at once rather than with an error page."""
        return Response(status=204)
