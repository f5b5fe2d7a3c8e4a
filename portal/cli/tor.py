"""`portal tor-config`: the torrc for both onion services, and the staff's client keys.

It reads the same `PORTAL_*` environment as the sites, and finds the sites' sockets where
`portal serve` makes them (`PORTAL_SOCKET_DIR` or `--socket-dir`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from portal.cli.deploy import SOCKET_DIR, config_from

if TYPE_CHECKING:
    from portal.serve.torconfig import ClientKey


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
    from portal.serve import torconfig

    config = config_from(dict(os.environ))
    try:
        plan = torconfig.plan(
            config,
            data_dir=data_dir,
            socket_dir=socket_dir,
            port=port,
            staff_port=staff_port,
            log_file=log_file,
            staff=staff,
            new_key=new_key,
            clients_dir=clients_dir,
            staff_onion=staff_onion,
        )
    except torconfig.NotListed as exc:
        raise click.UsageError(str(exc)) from exc
    except torconfig.TorConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    services, names, onion, clients = plan.services, plan.names, plan.onion, plan.clients
    keys, removed = torconfig.client_keys(clients, names, plan.renew, onion)
    click.echo(plan.torrc, nl=False)

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
