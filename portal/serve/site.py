"""One site served by its own gunicorn arbiter: the process `portal serve` starts per site.

`portal.serve.supervisor` starts `python -m portal.serve.site SITE OPTIONS PARENT` once for
each site, so that each site has its own workers and settings fit for it (that module says why).

Uploads at Tor speeds (a few KB/s, an hour for a large file) must cost memory, not a thread:
the public site runs `portal.serve.green.GreenWorker`, gunicorn's gevent worker, where thousands of
slow clients can be in flight at once while everyone else is answered; large bodies take turns
(`portal.web.gate`) so that what must always answer never waits behind them. The staff site, which
a handful of authorised people use, runs `portal.serve.workers.PortalWorker`, gunicorn's threaded
worker, which the public site can also be given (`--worker-class gthread`). Both bound every
read from a client by time and by pace (see `portal.serve.workers`).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import resource
import signal
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from portal.serve import logs
from portal.serve.workers import MIN_RATE, READ_TIMEOUT, PortalWorker

# The name the serving processes' log lines carry (`portal.serve.workers` logs under it too).
log = logging.getLogger("portal.serve.serving")

# gunicorn's heartbeat: both workers' main loops beat every second whatever their requests do
# (the gevent worker's too, since nothing costly runs on its event loop), so this only catches
# a worker that is stuck, never a slow request.
HEARTBEAT_SECONDS = 60
KEEPALIVE_SECONDS = 10
LIMIT_REQUEST_LINE = 4094
LIMIT_REQUEST_FIELDS = 50
LIMIT_REQUEST_FIELD_SIZE = 8190
# Sockets 0660: the owner and the group (debian-tor, through a setgid folder) may connect.
SOCKET_UMASK = 0o117
STAFF_THREADS = 8
WORKER_CLASSES = ("gevent", "gthread")
# Connections one gevent worker holds at once; beyond them, new ones wait in the listen queue.
CONNECTIONS = 4000


@dataclass(frozen=True)
class SiteOptions:
    """How one site is served."""

    site: str
    bind: str  # "unix:/path" or "127.0.0.1:port"
    workers: int = 1
    worker_class: str = "gevent"
    threads: int = 16  # gthread only
    connections: int = CONNECTIONS  # gevent only
    read_timeout: float = READ_TIMEOUT
    min_rate: int = MIN_RATE
    graceful_timeout: int = 30
    log_file: str | None = None
    access_log: str | None = None
    log_level: str = "info"

    def to_json(self) -> str:
        """The options as one command-line argument."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SiteOptions:
        """The options from `to_json`."""
        return cls(**json.loads(text))


def _post_fork(server: Any, worker: Any) -> None:
    """In each new worker: database connections are never shared with the parent process."""
    flask_app = getattr(worker.app, "flask_app", None)
    if flask_app is not None:
        flask_app.extensions["portal"].engine.dispose(close=False)


def gunicorn_settings(options: SiteOptions) -> dict[str, Any]:
    """gunicorn's settings for one site."""
    green = options.worker_class == "gevent"
    return {
        "bind": [options.bind],
        "workers": options.workers,
        "threads": options.threads,
        # Named, not imported: only a process that serves with gevent ever imports it.
        "worker_class": "portal.serve.green.GreenWorker" if green else PortalWorker,
        "worker_connections": options.connections,
        "timeout": HEARTBEAT_SECONDS,
        "graceful_timeout": options.graceful_timeout,
        "keepalive": KEEPALIVE_SECONDS,
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_fields": LIMIT_REQUEST_FIELDS,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        "umask": SOCKET_UMASK,
        # The gevent worker patches the standard library as it starts; the site is built after
        # that, in the worker, so that its locks and connections are gevent's.
        "preload_app": not green,
        "post_fork": _post_fork,
        "proc_name": f"portal-{options.site}",
        "control_socket_disable": True,
        # Tor passes what clients send verbatim, and gunicorn trusts every Unix socket peer
        # as a proxy: no header may set the scheme, the script name or the path.
        "forwarded_allow_ips": "",
        "secure_scheme_headers": {},
        "forwarder_headers": "",
        "header_map": "drop",
        "http_protocols": "h1",
        "logger_class": logs.GunicornLogger,
        "logconfig_dict": logs.logconfig_dict(
            options.log_file, options.access_log, options.log_level
        ),
        "accesslog": options.access_log,
        "loglevel": options.log_level,
        "capture_output": False,
    }


class PortalApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn's application for one site, configured in code."""

    def __init__(self, options: SiteOptions) -> None:
        """Serve `options.site` as `options` say."""
        self.options = options
        self.flask_app: Any = None
        super().__init__()

    def load_config(self) -> None:
        """Apply `gunicorn_settings`."""
        for name, value in gunicorn_settings(self.options).items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        """Build the site (once, in the arbiter, before the workers are forked)."""
        from portal.server.config import ConfigError
        from portal.wsgi import build

        try:
            hardened = build(self.options.site)
        except ConfigError as exc:
            raise RuntimeError(str(exc)) from exc
        self.flask_app = hardened.app
        return hardened


def _die_with_parent(parent: int) -> None:
    """Stop when `portal serve` dies, even by SIGKILL (Linux; elsewhere the parent must live)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit(1)


def _allow_connections(options: SiteOptions) -> None:
    """Raise this process's open-file limit to what its connections need, within the hard one.

    Every connection is a file descriptor; the usual soft limit of 1024 would refuse clients
    long before the gevent worker runs out of memory.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = options.workers * options.connections + 256
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < options.connections:
        log.warning(
            "at most %d files may be open; raise the limit (LimitNOFILE) for %d connections",
            wanted,
            options.connections,
        )


def run_site(options: SiteOptions) -> None:
    """Run one site's arbiter in this process until it is told to stop."""
    PortalApplication(options).run()


def main(argv: Sequence[str]) -> int:
    """`python -m portal.serve.site SITE OPTIONS PARENT`: what `portal serve` starts per site."""
    options = SiteOptions.from_json(argv[2])
    # A shell may start `portal serve` with INT ignored, and children inherit that: until
    # gunicorn installs its own handlers, INT and TERM stop a site that is still starting.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(int(argv[3]))
    _allow_connections(options)
    run_site(options)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
