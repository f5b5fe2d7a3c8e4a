"""`portal serve` from start to end: check that the sites can start, clear what interrupted
uploads left, make the sockets' folder, give each site its options, keep both running under
`portal.serve.supervisor`, and remove their sockets after.

It reads the same `PORTAL_*` environment as the sites. `PORTAL_SOCKET_DIR` (or `--socket-dir`)
says where the two sites' Unix sockets are, so that `portal serve` and `portal tor-config` agree.
"""

from __future__ import annotations

import logging.config
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from portal.serve import logs
from portal.server.config import Config, ConfigError

if TYPE_CHECKING:
    from portal.serve.site import SiteOptions


class CannotStart(Exception):
    """The sites cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class Request:
    """What `portal serve` was asked for, as its options say."""

    socket_dir: Path | None
    port: int | None
    staff_port: int | None
    site: str  # "both", "public" or "staff"
    workers: int
    worker_class: str
    connections: int
    threads: int
    read_timeout: float
    min_rate: int
    graceful_timeout: int
    log_file: str | None
    access_log: str | None
    log_level: str
    sweep: bool
    demo: bool


def socket_dir_of(config: Config, socket_dir: Path | None) -> Path:
    """Where the two sites' Unix sockets are: `--socket-dir`, else the data folder's `run/`."""
    return (socket_dir or config.data_dir / "run").resolve()


def prepare(config: Config, sweep: bool) -> int:
    """Check that the sites can start; clear what interrupted uploads left (return how many)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from portal.server import retention, services
    from portal.web import resources

    try:
        for site in resources.SITE_TEMPLATES:
            resources.check(site)
    except resources.MissingResource as exc:
        raise CannotStart(str(exc)) from exc
    try:
        state = services.load(config)
    except ConfigError as exc:
        raise CannotStart(str(exc)) from exc
    try:
        if not sweep:
            with state.sessions() as session:
                session.execute(text("SELECT 1 FROM submissions LIMIT 1"))
            return 0
        return retention.sweep(state)
    except SQLAlchemyError as exc:
        raise CannotStart(
            "The database is not ready for the portal: run `portal init` first "
            f"({type(exc).__name__})."
        ) from exc
    finally:
        state.engine.dispose()


def socket_folder(folder: Path) -> str | None:
    """Make the sockets' folder if needed; a warning when anyone at all could connect."""
    if not folder.exists():
        folder.mkdir(mode=0o750, parents=True)
    mode = folder.stat().st_mode
    if mode & stat.S_IXOTH:
        return (
            f"Warning: every user of this machine can reach {folder}: make it 2750, "
            "group debian-tor (see the deployment guide)."
        )
    return None


def site_options(request: Request, binds: Mapping[str, str]) -> list[SiteOptions]:
    """The options of each site asked for, at its bind address."""
    from portal.serve.site import STAFF_THREADS, SiteOptions

    chosen = ["public", "staff"] if request.site == "both" else [request.site]
    return [
        SiteOptions(
            site=name,
            bind=binds[name],
            # The staff site serves a handful of authorised people: one process, a few threads.
            workers=request.workers if name == "public" else 1,
            worker_class=request.worker_class if name == "public" else "gthread",
            connections=request.connections,
            threads=request.threads if name == "public" else STAFF_THREADS,
            read_timeout=request.read_timeout,
            min_rate=request.min_rate,
            graceful_timeout=request.graceful_timeout,
            log_file=request.log_file,
            access_log=request.access_log,
            log_level=request.log_level,
        )
        for name in chosen
    ]


def run(
    request: Request,
    config: Config,
    env: dict[str, str],
    report: Callable[[str], None],
    announce: Callable[[str], None],
) -> int:
    """Serve the sites asked for until told to stop; the exit status for `portal serve`.

    `report` takes what goes to standard error (what was cleared, warnings) and `announce`
    where each site is once all of them accept connections. CannotStart when they cannot.
    """
    from portal.serve import supervisor

    logging.config.dictConfig(logs.logconfig_dict(request.log_file, None, request.log_level))
    removed = prepare(config, sweep=request.sweep)
    if removed:
        report(f"Removed {removed} leftover(s) of interrupted uploads.")

    folder = socket_dir_of(config, request.socket_dir)
    unix = supervisor.binds_in(folder)
    binds = {
        "public": supervisor.loopback(request.port) if request.port else unix["public"],
        "staff": supervisor.loopback(request.staff_port) if request.staff_port else unix["staff"],
    }
    sites = site_options(request, binds)
    if any(options.bind.startswith("unix:") for options in sites):
        warning = socket_folder(folder)
        if warning is not None:
            report(warning)
    if request.workers > 1 and config.ratelimit_storage_uri.startswith("memory"):
        report(
            "Warning: with more than one worker and memory:// storage, each worker "
            "counts rate limits alone; set PORTAL_RATELIMIT_STORAGE_URI to a Redis URL."
        )

    def ready() -> None:
        for options in sites:
            where = options.bind
            url = f"http://{where}/" if not where.startswith("unix:") else where
            announce(f"The {options.site} site is at {url}")
        if request.demo:
            announce(
                "A demonstration on loopback, which also answers to localhost names. "
                "Stop it with Ctrl-C."
            )

    code = supervisor.supervise(sites, env, on_ready=ready)
    supervisor.unlink_sockets(options.bind for options in sites)
    # A site killed by a signal has a negative status; the shell and systemd want 1 to 255.
    return code if 0 <= code < 256 else 1
