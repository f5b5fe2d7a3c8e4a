"""The public site's static pages: the landing page, safety advice, the team's key and sealer."""

from __future__ import annotations

import functools
import hashlib

from flask import (
    Response,
    abort,
    render_template,
)

from portal.formats import receipts
from portal.offline import sealer
from portal.server.services import current
from portal.web import headers, resources
from portal.web.public import bp, log


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
