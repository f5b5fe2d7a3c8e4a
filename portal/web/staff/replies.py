"""Replies to submitters, sealed in the browser and stored for their case, and the audit log."""

from __future__ import annotations

from flask import (
    g,
    render_template,
    request,
)
from flask_wtf.csrf import validate_csrf
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import ValidationError

from portal.server import audit, replies
from portal.server.services import current
from portal.web import uploads
from portal.web.staff import PAGE_SIZE, _, bp

# Replies

# The reply form's one file field.
REPLY_FILE = "reply_file"


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
    staged = uploads.expect_uploads(
        services.store, uploads.RAW, max_files=1, fields=frozenset({REPLY_FILE})
    )
    try:
        form = request.form
    except RequestEntityTooLarge:
        return _reply_page(
            _("This file is far larger than any reply; choose the file made by “portal reply”."),
            413,
        )
    parts = [p for p in staged.finish() if p.field == REPLY_FILE]
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
            stored = replies.accept(services, db, staged.staging.file(parts[0].name), g.staff_name)
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
