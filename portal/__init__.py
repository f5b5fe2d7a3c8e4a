"""The reprisals portal: one factory, two sites (public and staff), each on its own socket.

The web stack is imported inside `create_app` only: the offline tools import this package too,
and the offline machine has no need of Flask.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from portal.formats.shipped import SCRIPT, STATIC, TEMPLATES

if TYPE_CHECKING:
    from flask import Flask

    from portal.server.config import Config

PUBLIC, STAFF = "public", "staff"
# The two sites, each on its own socket and onion address: the one list of them.
SITES = (PUBLIC, STAFF)
# Where the WSGI entry points (`portal.wsgi`) leave the pattern of the route that answered, for
# the access log (`portal.serve.logs`) to read: never the path asked for.
ROUTE_KEY = "portal.route"
__all__ = ["PUBLIC", "ROUTE_KEY", "SCRIPT", "SITES", "STAFF", "STATIC", "TEMPLATES", "create_app"]


def create_app(
    site: str = PUBLIC, env: Mapping[str, str] | None = None, config: Config | None = None
) -> Flask:
    """Build the public or the staff site from a configuration mapping (the environment).

    Reads the team's public key, the installation secret and the sealing script's hash; makes
    no table, no folder and no connection. A missing or malformed key, or a package without its
    templates, stylesheet or catalogues, stops it with a one-line message.
    """
    from flask import Flask

    from portal.server import services
    from portal.server.config import load_config
    from portal.web import (
        compression,
        errors,
        headers,
        i18n,
        limits,
        middleware,
        resources,
        uploads,
    )

    if site not in (PUBLIC, STAFF):
        raise ValueError(f"unknown site {site!r}")
    resources.check(site)
    config = config or load_config(os.environ if env is None else env)
    state = services.load(config)
    app = Flask(f"portal_{site}", template_folder=str(TEMPLATES), static_folder=str(STATIC))
    app.request_class = uploads.PortalRequest
    app.extensions["portal"] = state
    app.config.update(
        SECRET_KEY=hashlib.blake2b(
            state.installation_secret, digest_size=32, person=f"flask-{site}".encode()
        ).digest(),
        MAX_CONTENT_LENGTH=config.max_upload_bytes,
        # A long description is text held in memory; files never are.
        MAX_FORM_MEMORY_SIZE=2 * 1024 * 1024,
        MAX_FORM_PARTS=400,
        SESSION_COOKIE_NAME=f"portal_{site}",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=config.staff_session_minutes * 60,
        WTF_CSRF_TIME_LIMIT=6 * 3600,
        WTF_CSRF_CHECK_DEFAULT=False,
        SEND_FILE_MAX_AGE_DEFAULT=None,
        TEMPLATES_AUTO_RELOAD=False,
        PORTAL_SITE=site,
    )
    app.jinja_env.globals["script_sri"] = _script_sri(SCRIPT) if site == PUBLIC else None
    app.jinja_env.globals["site"] = site
    # First: of the steps after a view, the last to run (see `compression.init_app`).
    compression.init_app(app, pages=site == PUBLIC)
    i18n.init_app(app)
    headers.init_app(app, config.onion_location if site == PUBLIC else None)
    limits.init_app(app, config.ratelimit_storage_uri)
    errors.init_app(app, config.max_upload_bytes)
    middleware.check_hosts(app, config)
    app.teardown_request(lambda _exc: uploads.release())
    if site == PUBLIC:
        from portal.server import retention
        from portal.web import gate, public

        gate.init_app(app, config.max_uploads, config.upload_wait_seconds)
        public.register(app)
        retention.init_app(app)
    else:
        from portal.web import staff

        staff.register(app)
    # Every view is registered: those with limits go under this application's own Limiter.
    limits.limit_views(app)
    return app


def _script_sri(path: Path) -> str | None:
    """The Subresource Integrity value of the sealing script, or None when it is not built.

    Without the script every page is served without it, which is the no-JavaScript path: the
    form still works, sealed on arrival. The log says so once.
    """
    from portal.web import resources

    try:
        digest = hashlib.sha384(path.read_bytes()).digest()
    except FileNotFoundError:
        resources.script_missing_warning(path)
        return None
    return "sha384-" + base64.b64encode(digest).decode("ascii")
