"""Both sites, watched: `portal serve` starts each site's arbiter as a child process and keeps
them together.

Why two arbiters rather than one whose application picks the site by listening socket: each
site then has its own workers, so a flood of slow uploads on the public site can never take
what the staff need, and each runs with settings fit for it (the public site takes hour-long
uploads; the staff site does not). `portal serve` starts one child process per site
(`python -m portal.serve.site SITE OPTIONS`, see `portal.serve.site`), passes on the signals it
receives (TERM: finish requests then stop, INT: stop now, HUP: reload workers, USR1: reopen log
files), and stops the other site and exits with an error when one of them stops by itself, so
that systemd restarts both.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal import SITES
from portal.serve.site import SiteOptions

# The name the serving processes' log lines carry, as `portal.serve.site`'s.
log = logging.getLogger("portal.serve.serving")

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


@dataclass
class Supervisor:
    """Starts each site's arbiter as a child process and keeps them together."""

    sites: Sequence[SiteOptions]
    env: dict[str, str]
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopping: bool = False

    def start(self) -> None:
        """Start every site."""
        for options in self.sites:
            self.children[options.site] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "portal.serve.site",
                    options.site,
                    options.to_json(),
                    str(os.getpid()),
                ],
                env=self.env,
                stdin=subprocess.DEVNULL,
            )

    def forward(self, signum: int, _frame: object = None) -> None:
        """Pass a signal on to every site; TERM and INT also mean that stopping is expected."""
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stopping = True
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signum)

    def wait_ready(self, timeout: float) -> bool:
        """Wait until every site accepts connections; False if one stopped or time ran out."""
        deadline = time.monotonic() + timeout
        pending = list(self.sites)
        while pending and time.monotonic() < deadline:
            if any(child.poll() is not None for child in self.children.values()):
                return False
            pending = [options for options in pending if not accepts(options.bind)]
            if pending:
                time.sleep(0.1)
        return not pending

    def wait(self) -> int:
        """Block until a site stops; stop the others; the exit status for `portal serve`."""
        while True:
            for site, child in self.children.items():
                code = child.poll()
                if code is not None:
                    return self._stop_others(site, code)
            time.sleep(0.2)

    def _stop_others(self, site: str, code: int) -> int:
        expected = self.stopping
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        grace = max(options.graceful_timeout for options in self.sites) + 10
        for child in self.children.values():
            try:
                child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if expected and all(
            c.returncode in (0, -signal.SIGTERM, -signal.SIGINT) for c in self.children.values()
        ):
            return 0
        if not expected:
            log.error(
                "the %s site stopped by itself (exit status %s); the others were stopped",
                site,
                code,
            )
        return code or 1


def accepts(bind: str) -> bool:
    """Whether something accepts connections at a gunicorn bind address."""
    if bind.startswith("unix:"):
        family, address = socket.AF_UNIX, bind.removeprefix("unix:")
        target: Any = address
    else:
        host, _, port = bind.rpartition(":")
        family, target = socket.AF_INET, (host, int(port))
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(target)
        except OSError:
            return False
    return True


def supervise(
    sites: Sequence[SiteOptions],
    env: dict[str, str],
    on_ready: Callable[[], None] | None = None,
    ready_timeout: float = 60,
) -> int:
    """Serve every site until told to stop; the exit status for `portal serve`."""
    supervisor = Supervisor(sites, env)
    previous = {signum: signal.signal(signum, supervisor.forward) for signum in FORWARDED}
    try:
        supervisor.start()
        if supervisor.wait_ready(ready_timeout):
            if on_ready is not None:
                on_ready()
        elif all(child.poll() is None for child in supervisor.children.values()):
            log.warning("the sites did not accept connections within %.0f s", ready_timeout)
        return supervisor.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for child in supervisor.children.values():
            if child.poll() is None:
                child.kill()
                child.wait()


def binds_in(folder: Path) -> dict[str, str]:
    """The Unix socket of each site in `folder`."""
    return {site: f"unix:{folder / f'{site}.sock'}" for site in SITES}


def loopback(port: int) -> str:
    """A bind address on the loopback interface."""
    return f"127.0.0.1:{port}"


def unlink_sockets(binds: Iterable[str]) -> None:
    """Remove the socket files gunicorn leaves behind."""
    for bind in binds:
        if bind.startswith("unix:"):
            with_path = Path(bind.removeprefix("unix:"))
            if with_path.is_socket():
                with_path.unlink(missing_ok=True)
