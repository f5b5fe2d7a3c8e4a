"""The submissions list, and downloading or deleting what staff choose from it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from flask import (
    Response,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload
from werkzeug.wrappers import Response as BaseResponse

from portal.formats import bundle
from portal.server import audit, exporting, retention
from portal.server.models import Submission
from portal.server.services import Services, current, today
from portal.web.staff import PAGE_SIZE, _, bp

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
    members: list[bundle.Member] = []
    for entry in entries:
        members += bundle.members_of(entry, services.store.path(entry.id))
    return bundle.length(entries, members)


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
