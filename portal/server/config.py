"""The portal's configuration: one frozen object built by a pure function from a mapping.

The sites and every server-side command read `PORTAL_*` from the environment through
`load_config(os.environ)`; tests pass a dict. Nothing here reads a file or the environment
at import time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import nacl.pwhash

MiB = 1024 * 1024

RECEIPT_COSTS: dict[str, tuple[int, int]] = {
    # name: (opslimit, memlimit) for the Argon2id that turns a receipt into its lookup value.
    "min": (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN),
    "interactive": (
        nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
    ),
    "moderate": (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE),
}

# Seconds one receipt derivation takes on one core of a modest server, rounded up: about twice
# what a current server core measures (interactive: 0.05 s; moderate: 0.37 s), so the budget
# below holds on slower machines too.
RECEIPT_SECONDS: dict[str, float] = {"min": 0.001, "interactive": 0.1, "moderate": 0.6}
# Share of the machine's derivations that follow-up lookups may take: the rest is left for
# the reports (each derives its new receipt), the pages, sealing uploads and staff sign-ins.
FOLLOW_UP_SHARE = 0.5
# The site-wide window is short so that a burst within budget queues a few seconds of work
# at most, not a minute's.
FOLLOW_UP_WINDOW_SECONDS = 10
# One browser session's own budget: a person opens their case, adds to it, mistypes a digit or
# two; ten tries a minute is far beyond that, and far below the site's budget.
FOLLOW_UP_SESSION_BUDGET = "10 per minute;30 per hour"
# One browser session's parts of resumable uploads (and its questions about how far they got):
# about a megabyte each, so this is a gigabyte a minute, beyond any connection to an onion
# service, while a loop of empty requests is still cut short.
UPLOAD_PART_SESSION_BUDGET = "1000 per minute;20000 per hour"


def cores() -> int:
    """The processor cores this process may run on."""
    return len(os.sched_getaffinity(0)) or 1


def follow_up_site_budget(receipt_cost: str, core_count: int) -> str:
    """The site-wide follow-up budget the machine can afford, as a Flask-Limiter limit.

    Every lookup costs one Argon2id derivation, one per core at a time. The machine can do
    `core_count / RECEIPT_SECONDS[cost]` derivations a second; follow-ups get FOLLOW_UP_SHARE of
    that, counted over FOLLOW_UP_WINDOW_SECONDS. Two cores at the interactive cost:
    2 / 0.1 s x 0.5 x 10 s = 100 lookups per 10 seconds (600 a minute).
    """
    per_second = core_count / RECEIPT_SECONDS[receipt_cost]
    allowed = max(1, math.floor(per_second * FOLLOW_UP_SHARE * FOLLOW_UP_WINDOW_SECONDS))
    return f"{allowed} per {FOLLOW_UP_WINDOW_SECONDS} seconds"


class ConfigError(Exception):
    """The configuration cannot be used; the message says which variable and why."""


@dataclass(frozen=True)
class Config:
    """Everything the sites and commands need to know about their deployment."""

    data_dir: Path
    database_url: str
    team_public_key: Path
    hostnames: tuple[str, ...]
    max_upload_bytes: int
    storage_quota_bytes: int | None
    kept_session_bytes: int
    kept_total_bytes: int
    ratelimit_storage_uri: str
    retention_days: int
    unexported_retention_days: int
    receipt_cost: str
    demo: bool
    onion_location: str | None
    staff_session_minutes: int
    report_rate_limit: str
    follow_up_rate_limit: str
    follow_up_session_rate_limit: str
    login_rate_limit: str
    max_uploads: int
    upload_wait_seconds: int
    upload_expiry_hours: int
    upload_part_rate_limit: str

    @property
    def blob_dir(self) -> Path:
        """Where sealed submissions are stored."""
        return self.data_dir / "sealed"

    @property
    def secret_key_file(self) -> Path:
        """The generated secret that signs sessions and salts receipt lookups."""
        return self.data_dir / "secret.key"

    @property
    def receipt_limits(self) -> tuple[int, int]:
        """Argon2id (opslimit, memlimit) for receipts."""
        return RECEIPT_COSTS[self.receipt_cost]


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}.")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be 1 or 0, not {raw!r}.")


def _host_name(entry: str) -> str:
    """A host name without its port; an IPv6 address keeps its brackets ([::1]:8080)."""
    host = entry.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0]


def load_config(
    env: Mapping[str, str], root: Path | None = None, core_count: int | None = None
) -> Config:
    """Build the configuration from `PORTAL_*` variables; ConfigError names what is wrong.

    Relative defaults (`instance/`, `keys/team.pub`) are taken from `root`, the working folder
    unless given: an installed package has no checkout to point into, and a checkout's commands
    run from its top. `core_count` (the machine's, unless given) sizes the default follow-up
    budget.
    """
    root = Path.cwd() if root is None else root
    data_dir = Path(env.get("PORTAL_DATA_DIR") or root / "instance").resolve()
    database_url = env.get("PORTAL_DATABASE_URL") or f"sqlite:///{data_dir / 'portal.sqlite3'}"
    key = Path(env.get("PORTAL_TEAM_PUBLIC_KEY") or root / "keys" / "team.pub")
    if not key.is_absolute():
        key = (root / key).resolve()
    hostnames = tuple(
        _host_name(h)
        for h in env.get("PORTAL_HOSTNAMES", "localhost,127.0.0.1").split(",")
        if h.strip()
    )
    if not hostnames:
        raise ConfigError("PORTAL_HOSTNAMES names no host.")
    quota = _int(env, "PORTAL_STORAGE_QUOTA_BYTES", 0)
    cost = env.get("PORTAL_RECEIPT_COST", "interactive").strip().lower()
    if cost not in RECEIPT_COSTS:
        raise ConfigError(f"PORTAL_RECEIPT_COST must be one of {', '.join(RECEIPT_COSTS)}.")
    onion_location = env.get("PORTAL_ONION_LOCATION", "").strip() or None
    if onion_location and not onion_location.startswith("http://"):
        raise ConfigError("PORTAL_ONION_LOCATION must be an http:// onion address.")
    return Config(
        data_dir=data_dir,
        database_url=database_url,
        team_public_key=key,
        hostnames=hostnames,
        max_upload_bytes=_int(env, "PORTAL_MAX_UPLOAD_BYTES", 500 * MiB, minimum=MiB),
        storage_quota_bytes=quota or None,
        # Attachments kept across a form that came back with a problem (see `portal.web.kept`):
        # enough for a long video per person, and a bound on what a flood of such forms costs.
        kept_session_bytes=_int(env, "PORTAL_KEPT_SESSION_BYTES", 256 * MiB),
        kept_total_bytes=_int(env, "PORTAL_KEPT_TOTAL_BYTES", 2048 * MiB),
        ratelimit_storage_uri=env.get("PORTAL_RATELIMIT_STORAGE_URI", "memory://"),
        retention_days=_int(env, "PORTAL_RETENTION_DAYS", 30, minimum=1),
        unexported_retention_days=_int(env, "PORTAL_UNEXPORTED_RETENTION_DAYS", 180, minimum=1),
        receipt_cost=cost,
        demo=_flag(env, "PORTAL_DEMO"),
        onion_location=onion_location,
        staff_session_minutes=_int(env, "PORTAL_STAFF_SESSION_MINUTES", 20, minimum=1),
        report_rate_limit=env.get("PORTAL_REPORT_RATE_LIMIT", "60 per minute;600 per hour"),
        follow_up_rate_limit=env.get("PORTAL_FOLLOW_UP_RATE_LIMIT")
        or follow_up_site_budget(cost, core_count or cores()),
        follow_up_session_rate_limit=env.get("PORTAL_FOLLOW_UP_SESSION_RATE_LIMIT")
        or FOLLOW_UP_SESSION_BUDGET,
        login_rate_limit=env.get("PORTAL_LOGIN_RATE_LIMIT", "10 per minute;60 per hour"),
        max_uploads=_int(env, "PORTAL_MAX_UPLOADS", 200, minimum=1),
        upload_wait_seconds=_int(env, "PORTAL_UPLOAD_WAIT_SECONDS", 60),
        # A resumable upload left unfinished this long is removed (see `portal.server.resumable`).
        upload_expiry_hours=_int(env, "PORTAL_UPLOAD_EXPIRY_HOURS", 24, minimum=1),
        upload_part_rate_limit=env.get("PORTAL_UPLOAD_PART_RATE_LIMIT")
        or UPLOAD_PART_SESSION_BUDGET,
    )
