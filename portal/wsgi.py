"""WSGI entry points for any server: `portal.wsgi:public` and `portal.wsgi:staff`.

Each is built from the environment (`PORTAL_*`) on first use, so a server that loads one site
never builds, or fails on, the other. Both are wrapped in `Hardened`, which holds for any
server: a request body that stops arriving becomes a 408 page rather than an error, and nothing
the application writes to `wsgi.errors` can bypass the portal's safe logging. The wrappers live
in `portal.web.middleware`, which says what each layer around a site does and in what order.
"""

from __future__ import annotations

from portal import ROUTE_KEY, SITES
from portal.web.middleware import Hardened


def build(site: str) -> Hardened:
    """Build one site from the environment; ConfigError says what is missing."""
    from portal import create_app

    if site not in SITES:
        raise ValueError(f"unknown site {site!r}")
    app = create_app(site)
    app.teardown_request(_note_route)
    return Hardened(app)


def _note_route(_error: BaseException | None) -> None:
    """Leave the pattern of the route that answered where the access log can read it."""
    from flask import request

    rule = request.url_rule
    request.environ[ROUTE_KEY] = rule.rule if rule is not None else "-"


def __getattr__(name: str) -> Hardened:
    """`public` and `staff`, each built the first time it is asked for."""
    if name in SITES:
        app = build(name)
        globals()[name] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
