"""`portal serve`: both sites under gunicorn, each on its own socket (`portal tor-config`, in
`portal.cli.tor`, points the onion services at the same sockets).

Both commands read the same `PORTAL_*` environment as the sites. `PORTAL_SOCKET_DIR` (or
`--socket-dir`) says where the two sites' Unix sockets are, so that the two commands agree.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

# At the top: an install without the server extra answers that gunicorn is missing.
from portal.serve import launch
from portal.server.config import Config, ConfigError, load_config

SOCKET_DIR = click.Path(file_okay=False, path_type=Path)
DEMO_PORTS = (8000, 8001)


def config_from(env: dict[str, str]) -> Config:
    """The configuration from `env`, or the reason it cannot be used, for the command line."""
    try:
        return load_config(env)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command()
@click.option(
    "--demo",
    is_flag=True,
    help="A demonstration on 127.0.0.1 ports 8000 and 8001, which also answers to localhost names.",
)
@click.option(
    "--socket-dir",
    type=SOCKET_DIR,
    envvar="PORTAL_SOCKET_DIR",
    help="Folder of the sites' Unix sockets public.sock and staff.sock "
    "[default: PORTAL_DATA_DIR/run].",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Serve the public site on 127.0.0.1:PORT instead of its Unix socket.",
)
@click.option(
    "--staff-port",
    type=click.IntRange(1, 65535),
    help="Serve the staff site on 127.0.0.1:PORT instead of its Unix socket.",
)
@click.option(
    "--site",
    type=click.Choice(["both", "public", "staff"]),
    default="both",
    show_default=True,
    help="Which sites to serve.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes of the public site (more than one needs Redis for the "
    "rate limits: PORTAL_RATELIMIT_STORAGE_URI).",
)
@click.option(
    "--worker-class",
    type=click.Choice(["gevent", "gthread"]),
    default="gevent",
    show_default=True,
    help="How the public site waits on clients: gevent (a slow client costs memory; "
    "thousands at once) or gthread (a thread per connection, --threads at once).",
)
@click.option(
    "--connections",
    type=click.IntRange(10, 100_000),
    default=4000,
    show_default=True,
    help="Connections each gevent worker of the public site holds at once (slow uploads "
    "included); raise the open-file limit to match.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 1024),
    default=32,
    show_default=True,
    help="Threads per public gthread worker: how many requests (uploads) run at once.",
)
@click.option(
    "--read-timeout",
    type=click.FloatRange(0.5, 3600),
    default=60.0,
    show_default=True,
    help="Seconds a client may send nothing in the middle of a request.",
)
@click.option(
    "--min-rate",
    type=click.IntRange(0),
    default=1024,
    show_default=True,
    help="Bytes a second a client must average once the first read-timeout has "
    "passed (0: no minimum).",
)
@click.option(
    "--graceful-timeout",
    type=click.IntRange(1, 3600),
    default=30,
    show_default=True,
    help="Seconds requests may take to finish when the server stops or reloads.",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False),
    help="Write the log here [default: standard error].",
)
@click.option(
    "--access-log",
    help="Also log each request (method, route pattern, status, size, duration; "
    "never who asked or what they sent) to this file, or '-' for standard "
    "error. Off by default.",
)
@click.option(
    "--no-sweep",
    is_flag=True,
    help="Skip the start-up sweep of interrupted uploads: for several servers sharing one blob "
    "store, where one server's sweep would remove another's uploads in progress.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def serve(
    demo: bool,
    socket_dir: Path | None,
    port: int | None,
    staff_port: int | None,
    site: str,
    workers: int,
    worker_class: str,
    connections: int,
    threads: int,
    read_timeout: float,
    min_rate: int,
    graceful_timeout: int,
    log_file: str | None,
    access_log: str | None,
    log_level: str,
    no_sweep: bool,
) -> None:
    """Serve the public and the staff site with gunicorn, each on its own socket."""
    env = dict(os.environ)
    if demo:
        env["PORTAL_DEMO"] = "1"
        port = port or DEMO_PORTS[0]
        staff_port = staff_port or DEMO_PORTS[1]
    if port is not None and port == staff_port:
        raise click.UsageError("--port and --staff-port must differ.")
    config = config_from(env)
    request = launch.Request(
        socket_dir=socket_dir,
        port=port,
        staff_port=staff_port,
        site=site,
        workers=workers,
        worker_class=worker_class,
        connections=connections,
        threads=threads,
        read_timeout=read_timeout,
        min_rate=min_rate,
        graceful_timeout=graceful_timeout,
        log_file=log_file,
        access_log=access_log,
        log_level=log_level,
        sweep=not no_sweep,
        demo=demo,
    )
    try:
        code = launch.run(
            request,
            config,
            env,
            report=lambda line: click.echo(line, err=True),
            announce=click.echo,
        )
    except launch.CannotStart as exc:
        raise click.ClickException(str(exc)) from exc
    if code:
        sys.exit(code)
