"""Flood protection with Flask-Limiter, keyed never by address.

Every request to an onion service arrives from the same local Tor daemon, so an address says
nothing. Limits are keyed on what each endpoint protects: the whole site for reports and
receipt lookups, the account for staff logins. Storage is in memory for one process, Redis
by URL for several workers.
"""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter


def _whole_site() -> str:
    return "site"


limiter = Limiter(key_func=_whole_site, default_limits=[], headers_enabled=False)


def init_app(app: Flask, storage_uri: str) -> None:
    """Attach the limiter with the configured storage."""
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri
    app.config["RATELIMIT_KEY_PREFIX"] = f"portal-{app.name}"
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter.init_app(app)
