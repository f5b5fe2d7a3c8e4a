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

Where one budget sits inside another (each session's own follow-up budget inside the site's),
`budget` spends them in order, so that a request the inner budget refuses costs the outer one
nothing: one session cannot use up what everyone shares. A refusal carries the seconds until
the budget that refused has room again, for the page to say how long to wait.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from flask import Flask, current_app, has_app_context, request, session
from flask_limiter import Limiter, RateLimitExceeded
from limits import RateLimitItem, WindowStats, parse_many
from limits.strategies import RateLimiter
from werkzeug.exceptions import HTTPException, TooManyRequests

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

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

    def spend(self, budgets: tuple[Budget, ...]) -> None:
        """Count this request against each budget in turn; OverBudget from the first that has
        no room, and the budgets after it are not spent."""
        if not self.enabled:
            return
        prefix = str(current_app.config["RATELIMIT_KEY_PREFIX"])
        for each in budgets:
            identifiers = (prefix, each.key(), each.scope)
            for item in parse_many(each.rates()):
                if not self._hit(item, identifiers):
                    stats = self._window(item, identifiers)
                    raise OverBudget(each.whose, math.ceil(stats.reset_time - time.time()))

    def _hit(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> bool:
        return self._counting(lambda strategy: strategy.hit(item, *identifiers))

    def _window(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> WindowStats:
        return self._counting(lambda strategy: strategy.get_window_stats(item, *identifiers))

    def _counting(self, call: Callable[[RateLimiter], T]) -> T:
        # As Flask-Limiter does for its own limits: if the storage (Redis) fails, count in
        # this process rather than not at all, and say so in the log.
        try:
            return call(self.limiter)
        except Exception:
            if not self._in_memory_fallback_enabled or self._storage_dead:
                raise
            self.logger.warning("Rate limit storage unreachable: counting in this process")
            self._storage_dead = True
            return call(self.limiter)

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


@dataclass(frozen=True)
class Budget:
    """Requests allowed per window (`rates`, a Flask-Limiter limit string) for each value of
    `key`; `whose` says on the page who has used it up ("session" or "site")."""

    scope: str
    rates: Callable[[], str]
    key: Callable[[], str]
    whose: str


class OverBudget(TooManyRequests):
    """A budget had no room: `whose` budget it was, and the seconds until it has room again."""

    def __init__(self, whose: str, wait_seconds: int) -> None:
        """Refuse with 429, waiting at least a second."""
        self.whose = whose
        self.wait_seconds = max(1, wait_seconds)
        super().__init__(retry_after=self.wait_seconds)


def budget(*budgets: Budget) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A view decorator spending `budgets` in order before the view runs."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def limited(*args: P.args, **kwargs: P.kwargs) -> R:
            limiter.spend(budgets)
            return view(*args, **kwargs)

        return limited

    return decorate


def wait_seconds(error: HTTPException) -> int | None:
    """The seconds to wait after a 429, if the limit that refused can tell."""
    if isinstance(error, OverBudget):
        return error.wait_seconds
    if not isinstance(error, RateLimitExceeded) or limiter.current_limit is None:
        return None
    try:
        reset_at = limiter.current_limit.reset_at
    except Exception:  # the storage failed since it refused: a vaguer page, not an error
        return None
    return max(1, math.ceil(reset_at - time.time()))


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
