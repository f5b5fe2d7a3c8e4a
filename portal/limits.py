"""Flood protection with Flask-Limiter, keyed never by address.

Every request to an onion service arrives from the same local Tor daemon, so an address says
nothing. Limits are keyed on what each endpoint protects: the whole site for reports and
receipt lookups (`whole_site`), the account for staff sign-ins (`account`), the browser
session where a person's own pace is what matters (`session`). Storage is in memory for one
process, Redis by URL for several workers; keys carry a prefix derived from the installation
secret, so deployments sharing a Redis server never count each other's requests. Windows are
moving, so "10 per minute" means at most 10 in any 60 seconds.

Views declare limits with the one module-level `limiter`; what it counts with (storage,
prefix, on or off) belongs to each application, so two sites, or many test applications, in
one process never share counters.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, has_app_context, request, session
from flask_limiter import Limiter

STATE = "portal.limits"
# Flask-Limiter keeps these on the extension object; here they live in each application.
_PER_APP = (
    "_storage",
    "_limiter",
    "_storage_dead",
    "_fallback_storage",
    "_fallback_limiter",
    "_key_prefix",
)


class _PerAppLimiter(Limiter):
    """A Limiter whose storage, key prefix and on/off switch are those of the current app."""

    def _state(self) -> dict[str, Any]:
        if has_app_context():
            found: dict[str, Any] = current_app.extensions.setdefault(STATE, {})
            return found
        outside: dict[str, Any] = self.__dict__.setdefault("_portal_outside_app", {})
        return outside

    @property
    def enabled(self) -> bool:
        """On unless the current application's RATELIMIT_ENABLED says otherwise."""
        if has_app_context():
            return bool(current_app.config.get("RATELIMIT_ENABLED", True))
        return bool(self._state().get("enabled", True))

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._state()["enabled"] = value

    def init_app(self, app: Flask) -> None:
        """Set up counting for `app`, even when it starts with limits off (tests turn them on)."""
        self.__dict__.setdefault("_portal_apps", weakref.WeakSet()).add(app)
        wanted = app.config.get("RATELIMIT_ENABLED", True)
        app.config["RATELIMIT_ENABLED"] = True
        try:
            with app.app_context():
                super().init_app(app)
        finally:
            app.config["RATELIMIT_ENABLED"] = wanted

    def reset(self) -> None:
        """Forget every count: the current application's, or outside one, every application's."""
        if has_app_context():
            super().reset()
            return
        for app in list(self.__dict__.get("_portal_apps", ())):
            with app.app_context():
                super().reset()


def _per_app_attribute(name: str) -> property:
    def get(self: _PerAppLimiter) -> Any:
        return self._state().get(name)

    def put(self: _PerAppLimiter, value: Any) -> None:
        self._state()[name] = value

    return property(get, put)


for _name in _PER_APP:
    setattr(_PerAppLimiter, _name, _per_app_attribute(_name))


def whole_site(name: str) -> Callable[[], str]:
    """A key function counting every request of one kind together, whoever sends it."""
    return lambda: name


def account(field: str = "name", name: str = "login") -> Callable[[], str]:
    """A key function counting per account named in a form field (normalised, never stored)."""

    def key() -> str:
        typed = request.form.get(field, "")[:256].strip().lower()
        digest = hashlib.blake2b(typed.encode("utf-8"), digest_size=16).hexdigest()
        return f"{name}:account:{digest}"

    return key


def session_key(name: str) -> Callable[[], str]:
    """A key function counting per browser session (a person's own pace, not the site's)."""

    def key() -> str:
        # The session's CSRF secret is random per session; without one, all such share a key.
        token = str(session.get("csrf_token", "")) or "no-session"
        digest = hashlib.blake2b(token.encode("utf-8"), digest_size=16).hexdigest()
        return f"{name}:session:{digest}"

    return key


limiter = _PerAppLimiter(
    key_func=whole_site("site"), default_limits=[], headers_enabled=False, strategy="moving-window"
)


def key_prefix(site: str, installation_secret: bytes) -> str:
    """The prefix of this installation's rate-limit keys for one site."""
    digest = hashlib.blake2b(installation_secret, digest_size=6, person=b"ratelimit").hexdigest()
    return f"portal-{digest}-{site}"


def init_app(app: Flask, storage_uri: str) -> None:
    """Attach the limiter with the configured storage."""
    services = app.extensions["portal"]
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri
    app.config["RATELIMIT_KEY_PREFIX"] = key_prefix(
        app.config["PORTAL_SITE"], services.installation_secret
    )
    app.config["RATELIMIT_STRATEGY"] = "moving-window"
    # If Redis goes away, count in this process rather than not at all, and say so in the log.
    app.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] = True
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter.init_app(app)
