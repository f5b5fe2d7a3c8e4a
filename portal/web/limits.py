"""Flood protection with Flask-Limiter, keyed never by address.

Every request to an onion service arrives from the same local Tor daemon, so an address says
nothing. Limits are keyed on what each endpoint protects: the whole site for reports and
receipt lookups (`whole_site`), the account for staff sign-ins (`account`), the browser
session where a person's own pace is what matters (`session_key`). Storage is in memory for one
process, Redis by URL for several workers; keys carry a prefix derived from the installation
secret, so deployments sharing a Redis server never count each other's requests. Windows are
moving, so "10 per minute" means at most 10 in any 60 seconds.

Each application has a Limiter of its own, made by `init_app` and found with `current()`, that
counts in the application's storage under its prefix; its switch is the application's
`RATELIMIT_ENABLED`, read at each request. So two sites, or many test applications, in one
process never share counters. The blueprints are made once, at import, for every application
that registers them: `limit` and `shared_limit` only note a limit on a view, `limit_views` puts
each such view under the application's own Limiter once the views are registered, and a
`budget` spends in the Limiter of the application that serves the request.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from flask import Flask, current_app, request, session
from flask_limiter import Limiter, RateLimitExceeded, RouteLimit
from limits import RateLimitItem, WindowStats, parse_many
from limits.strategies import RateLimiter
from werkzeug.exceptions import HTTPException, TooManyRequests

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
View = TypeVar("View", bound=Callable[..., Any])

# Where each application keeps its Limiter.
STATE = "portal.web.limits"
# Where a view keeps the limits declared on it, for `limit_views`.
DECLARED = "portal_limits"


def key_prefix(site: str, installation_secret: bytes) -> str:
    """The prefix of this installation's rate-limit keys for one site."""
    digest = hashlib.blake2b(installation_secret, digest_size=6, person=b"ratelimit").hexdigest()
    return f"portal-{digest}-{site}"


def init_app(app: Flask, storage_uri: str) -> None:
    """Give `app` a Limiter of its own, counting in the configured storage."""
    services = app.extensions["portal"]
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri
    app.config["RATELIMIT_KEY_PREFIX"] = key_prefix(
        app.config["PORTAL_SITE"], services.installation_secret
    )
    app.config["RATELIMIT_STRATEGY"] = "moving-window"
    # If Redis goes away, count in this process rather than not at all, and say so in the log.
    app.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] = True
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter = Limiter(
        key_func=whole_site("site"),
        default_limits=[],
        headers_enabled=False,
        strategy="moving-window",
    )
    # Flask-Limiter reads the switch once, in init_app; the filter reads it at each request, so
    # that limits turned off (or back on) after the application is made are off (or on).
    limiter.request_filter(_switched_off)
    limiter.init_app(app)
    app.extensions[STATE] = limiter


def of(app: Flask) -> Limiter:
    """The Limiter of `app` (see `init_app`)."""
    limiter: Limiter = app.extensions[STATE]
    return limiter


def current() -> Limiter:
    """The Limiter of the current application."""
    return of(current_app)


def _switched_off() -> bool:
    """Whether the current application has its limits off (RATELIMIT_ENABLED false)."""
    return not current_app.config.get("RATELIMIT_ENABLED", True)


# Limits noted on the views, made in each application's Limiter


@dataclass(frozen=True, eq=False)
class Declared:
    """A Flask-Limiter limit noted on views: `rate` for each value of `key_func`, counted for
    each view, or for all the views it decorates together when it has a `scope`."""

    rate: str | Callable[[], str]
    key_func: Callable[[], str] | None = None
    scope: str | None = None

    def __call__(self, view: View) -> View:
        """Note the limit on `view`, which is otherwise left as it is."""
        setattr(view, DECLARED, (*getattr(view, DECLARED, ()), self))
        return view

    def made_for(self, limiter: Limiter) -> RouteLimit:
        """The limit as a decorator of `limiter`."""
        if self.scope is None:
            return limiter.limit(self.rate, key_func=self.key_func)
        return limiter.shared_limit(self.rate, self.scope, key_func=self.key_func)


def limit(
    limit_value: str | Callable[[], str], *, key_func: Callable[[], str] | None = None
) -> Declared:
    """A limit of the one view it decorates (Flask-Limiter's `Limiter.limit`)."""
    return Declared(limit_value, key_func)


def shared_limit(
    limit_value: str | Callable[[], str], scope: str, *, key_func: Callable[[], str] | None = None
) -> Declared:
    """One limit for all the views it decorates (Flask-Limiter's `Limiter.shared_limit`)."""
    return Declared(limit_value, key_func, scope)


def limit_views(app: Flask) -> None:
    """Put each view of `app` that has limits noted under the application's own Limiter.

    Called once, when every view is registered. The limits wrap the view in the order their
    decorators did, innermost first, and a limit noted on several views is one limit of the
    Limiter for all of them, as when a Limiter's own decorator is applied to each.
    """
    limiter = of(app)
    made: dict[Declared, RouteLimit] = {}
    for endpoint, view in list(app.view_functions.items()):
        limited: Callable[..., Any] = view
        for declared in getattr(view, DECLARED, ()):
            if declared not in made:
                made[declared] = declared.made_for(limiter)
            limited = made[declared](limited)
        app.view_functions[endpoint] = limited


# Budgets, spent in order


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
            spend(budgets)
            return view(*args, **kwargs)

        return limited

    return decorate


def spend(budgets: tuple[Budget, ...]) -> None:
    """Count this request against each budget in turn, in the current application's Limiter;
    OverBudget from the first that has no room, and the budgets after it are not spent."""
    if _switched_off():
        return
    limiter = current()
    prefix = str(current_app.config["RATELIMIT_KEY_PREFIX"])
    for each in budgets:
        identifiers = (prefix, each.key(), each.scope)
        for item in parse_many(each.rates()):
            if not _hit(limiter, item, identifiers):
                stats = _window(limiter, item, identifiers)
                raise OverBudget(each.whose, math.ceil(stats.reset_time - time.time()))


def _hit(limiter: Limiter, item: RateLimitItem, identifiers: tuple[str, ...]) -> bool:
    return _counting(limiter, lambda strategy: strategy.hit(item, *identifiers))


def _window(limiter: Limiter, item: RateLimitItem, identifiers: tuple[str, ...]) -> WindowStats:
    return _counting(limiter, lambda strategy: strategy.get_window_stats(item, *identifiers))


def _counting(limiter: Limiter, call: Callable[[RateLimiter], T]) -> T:
    """Count with `limiter`'s strategy; if its storage (Redis) fails, in this process.

    As Flask-Limiter does for its own limits, and with its own mark of a failed storage, so that
    its limits and the budgets count in this process together, and go back to the storage
    together when its periodic check finds it again. That switch and that mark are the only parts
    of Flask-Limiter used here that it does not document.
    """
    try:
        return call(limiter.limiter)
    except Exception:
        if not limiter._in_memory_fallback_enabled or limiter._storage_dead:
            raise
        limiter.logger.warning("Rate limit storage unreachable: counting in this process")
        limiter._storage_dead = True
        return call(limiter.limiter)


def wait_seconds(error: HTTPException) -> int | None:
    """The seconds to wait after a 429, if the limit that refused can tell."""
    if isinstance(error, OverBudget):
        return error.wait_seconds
    if not isinstance(error, RateLimitExceeded):
        return None
    refused = current().current_limit
    if refused is None:
        return None
    try:
        reset_at = refused.reset_at
    except Exception:  # the storage failed since it refused: a vaguer page, not an error
        return None
    return max(1, math.ceil(reset_at - time.time()))


# Key functions


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
