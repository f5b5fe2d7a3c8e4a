"""Server commands for deployment: `portal serve` (both sites under gunicorn) and
`portal tor-config` (the torrc for both onion services, and the staff's client keys).

Both read the same `PORTAL_*` environment as the sites. `PORTAL_SOCKET_DIR` (or
`--socket-dir`) says where the two sites' Unix sockets are, so that the two commands agree.
"""

from __future__ import annotations

import logging.config
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from portal import logs
from portal.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from portal.torconfig import ClientKey

SOCKET_DIR = click.Path(file_okay=False, path_type=Path)
DEMO_PORTS = (8000, 8001)


def _config(env: dict[str, str]) -> Config:
    try:
        return load_config(env)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _socket_dir(config: Config, socket_dir: Path | None) -> Path:
    return (socket_dir or config.data_dir / "run").resolve()


# ---------------------------------------------------------------------------------------------
# portal serve


def _prepare(config: Config, sweep: bool) -> int:
    """Check that the sites can start; clear what interrupted uploads left (return how many)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from portal import resources, retention, services

    try:
        for site in resources.SITE_TEMPLATES:
            resources.check(site)
    except resources.MissingResource as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        state = services.load(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        if not sweep:
            with state.sessions() as session:
                session.execute(text("SELECT 1 FROM submissions LIMIT 1"))
            return 0
        return retention.sweep(state)
    except SQLAlchemyError as exc:
        raise click.ClickException(
            "The database is not ready for the portal: run `portal init` first "
            f"({type(exc).__name__})."
        ) from exc
    finally:
        state.engine.dispose()


def _socket_folder(folder: Path) -> None:
    """Make the sockets' folder if needed; warn when anyone at all could connect."""
    if not folder.exists():
        folder.mkdir(mode=0o750, parents=True)
    mode = folder.stat().st_mode
    if mode & stat.S_IXOTH:
        click.echo(
            f"Warning: every user of this machine can reach {folder}: make it 2750, "
            "group debian-tor (see the deployment guide).",
            err=True,
        )


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
    from portal import serving

    env = dict(os.environ)
    if demo:
        env["PORTAL_DEMO"] = "1"
        port = port or DEMO_PORTS[0]
        staff_port = staff_port or DEMO_PORTS[1]
    if port is not None and port == staff_port:
        raise click.UsageError("--port and --staff-port must differ.")
    config = _config(env)
    logging.config.dictConfig(logs.logconfig_dict(log_file, None, log_level))
    removed = _prepare(config, sweep=not no_sweep)
    if removed:
        click.echo(f"Removed {removed} leftover(s) of interrupted uploads.", err=True)

    folder = _socket_dir(config, socket_dir)
    unix = serving.binds_in(folder)
    binds = {
        "public": serving.loopback(port) if port else unix["public"],
        "staff": serving.loopback(staff_port) if staff_port else unix["staff"],
    }
    chosen = ["public", "staff"] if site == "both" else [site]
    if any(binds[name].startswith("unix:") for name in chosen):
        _socket_folder(folder)
    if workers > 1 and config.ratelimit_storage_uri.startswith("memory"):
        click.echo(
            "Warning: with more than one worker and memory:// storage, each worker "
            "counts rate limits alone; set PORTAL_RATELIMIT_STORAGE_URI to a Redis URL.",
            err=True,
        )
    sites = [
        serving.SiteOptions(
            site=name,
            bind=binds[name],
            # The staff site serves a handful of authorised people: one process, a few threads.
            workers=workers if name == "public" else 1,
            worker_class=worker_class if name == "public" else "gthread",
            connections=connections,
            threads=threads if name == "public" else serving.STAFF_THREADS,
            read_timeout=read_timeout,
            min_rate=min_rate,
            graceful_timeout=graceful_timeout,
            log_file=log_file,
            access_log=access_log,
            log_level=log_level,
        )
        for name in chosen
    ]

    def announce() -> None:
        for options in sites:
            where = options.bind
            url = f"http://{where}/" if not where.startswith("unix:") else where
            click.echo(f"The {options.site} site is at {url}")
        if demo:
            click.echo(
                "A demonstration on loopback, which also answers to localhost names. "
                "Stop it with Ctrl-C."
            )

    code = serving.supervise(sites, env, on_ready=announce)
    serving.unlink_sockets(options.bind for options in sites)
    if code:
        # A site killed by a signal has a negative status; the shell and systemd want 1 to 255.
        sys.exit(code if 0 < code < 256 else 1)


# ---------------------------------------------------------------------------------------------
# portal tor-config


def _staff_names(config: Config) -> list[str]:
    """The names of the staff accounts in the database."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from portal import db
    from portal.models import StaffMember

    engine = db.make_engine(config.database_url)
    try:
        with engine.connect() as connection:
            return sorted(connection.scalars(select(StaffMember.name)))
    except SQLAlchemyError as exc:
        raise click.ClickException(
            "The staff accounts could not be read from the database "
            f"({type(exc).__name__}); name the staff with --staff instead."
        ) from exc
    finally:
        engine.dispose()


def _tell(keys: Sequence[ClientKey], onion: str | None, clients: Path) -> None:
    """What each person puts into Tor Browser."""
    where = f"http://{onion}/" if onion else "the staff site's onion address"
    click.echo(
        f"\nFor each person, in Tor Browser: open {where}; when Tor Browser asks for a key "
        'to reach it, paste that person\'s key below and tick "Remember this key". Hand each '
        "key over in person or over an end-to-end encrypted channel. The keys are also in "
        f"{clients}/NAME.key: delete each once its person has it (their access stays).",
        err=True,
    )
    for key in keys:
        if key.private is None:
            click.echo(f"  {key.name}: (has their key; it is no longer kept here)", err=True)
        else:
            click.echo(f"  {key.name}: {key.private}", err=True)


@click.command("tor-config")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/var/lib/tor"),
    show_default=True,
    help="tor's DataDirectory; each onion service's folder is made inside it.",
)
@click.option(
    "--socket-dir",
    type=SOCKET_DIR,
    envvar="PORTAL_SOCKET_DIR",
    help="Folder of the sites' Unix sockets, as given to `portal serve` "
    "[default: PORTAL_DATA_DIR/run].",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="The public site is on 127.0.0.1:PORT rather than its Unix socket.",
)
@click.option(
    "--staff-port",
    type=click.IntRange(1, 65535),
    help="The staff site is on 127.0.0.1:PORT rather than its Unix socket.",
)
@click.option(
    "--log-file", type=click.Path(dir_okay=False), help="tor's notice log [default: syslog]."
)
@click.option(
    "--staff",
    "staff",
    multiple=True,
    help="A person who may reach the staff site (repeat for each; default: every "
    "staff account in the database). Keys of people not listed are removed.",
)
@click.option("--new-key", multiple=True, help="Replace this person's key (a lost or exposed key).")
@click.option(
    "--clients-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the key pairs are kept [default: PORTAL_DATA_DIR/tor-clients].",
)
@click.option(
    "--staff-onion",
    help="The staff site's onion address [default: read from its HiddenServiceDir when readable].",
)
@click.option(
    "--install-clients",
    is_flag=True,
    help="Also write the public keys into the staff site's HiddenServiceDir "
    "(as root, or as tor's user).",
)
def tor_config(
    data_dir: Path,
    socket_dir: Path | None,
    port: int | None,
    staff_port: int | None,
    log_file: str | None,
    staff: tuple[str, ...],
    new_key: tuple[str, ...],
    clients_dir: Path | None,
    staff_onion: str | None,
    install_clients: bool,
) -> None:
    """Print a torrc for both onion services and keep the staff's client keys.

    The torrc goes to standard output; the key pairs go into the clients folder, and what to
    do with them is written to standard error.
    """
    from portal import serving, torconfig

    config = _config(dict(os.environ))
    unix = serving.binds_in(_socket_dir(config, socket_dir))
    try:
        services = torconfig.OnionServices(
            data_dir=data_dir.absolute(),
            public_target=serving.loopback(port) if port else unix["public"],
            staff_target=serving.loopback(staff_port) if staff_port else unix["staff"],
            log=str(Path(log_file).absolute()) if log_file else "syslog",
        )
        text = torconfig.torrc(services)
        names = (
            sorted({torconfig.check_name(name) for name in staff})
            if staff
            else [torconfig.check_name(name) for name in _staff_names(config)]
        )
        renew = {torconfig.check_name(name) for name in new_key}
        onion = (
            torconfig.check_onion(staff_onion)
            if staff_onion
            else torconfig.read_onion(services.staff_dir)
        )
    except torconfig.TorConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if not names:
        raise click.ClickException(
            "There is no staff account yet, so nobody could reach the staff site: add "
            "accounts with `portal staff add NAME`, or name people with --staff."
        )
    if unknown := renew - set(names):
        raise click.UsageError(f"--new-key names someone not listed: {', '.join(sorted(unknown))}.")
    clients = (clients_dir or config.data_dir / "tor-clients").absolute()
    keys, removed = torconfig.client_keys(clients, names, renew, onion)
    click.echo(text, nl=False)

    click.echo(f"Client keys of {', '.join(names)} are in {clients}.", err=True)
    if removed:
        click.echo(
            f"Removed the keys of {', '.join(removed)}: remove their .auth files from "
            "the server's authorized_clients folder too (the commands below do).",
            err=True,
        )
    authorised = services.staff_dir / torconfig.AUTHORIZED_CLIENTS
    if install_clients:
        try:
            folder = torconfig.install_authorized_clients(keys, services.staff_dir)
        except OSError as exc:
            raise click.ClickException(f"{authorised} could not be written: {exc}.") from exc
        click.echo(f"Installed the public keys in {folder}; reload tor to apply them.", err=True)
    else:
        click.echo(
            "To give tor the public keys (as root), then reload it:\n"
            f"  install -d -o debian-tor -g debian-tor -m 0700 {services.staff_dir} {authorised}\n"
            f"  rm -f {authorised}/*.auth\n"
            "  install -o debian-tor -g debian-tor -m 0600 "
            f"{clients / torconfig.AUTHORIZED_CLIENTS}/*.auth {authorised}/\n"
            "  systemctl reload tor",
            err=True,
        )
    _tell(keys, onion, clients)
    if onion is None:
        click.echo(
            "\nOnce tor has made the staff site's address, run this again (with "
            "--staff-onion ADDRESS if its folder is unreadable here) to write each "
            "NAME.auth_private file for tor clients.",
            err=True,
        )
