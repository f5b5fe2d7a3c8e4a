"""The torrc for the portal's two onion services, and the staff's client authorisation keys.

The public site gets Tor's denial-of-service defences (proof of work at the service, rate
limits at the introduction points, a cap on streams per circuit). The staff site is reachable
only with a client key: its descriptor is encrypted to the keys listed in its
`authorized_clients/` folder, so without one the address leads nowhere. Each key pair is
X25519 (PyNaCl), written in Tor's base32 files: `NAME.auth` (the public half, for the server's
`authorized_clients/`) and the private half, which the person pastes into Tor Browser when it
asks, or which a tor client reads from `NAME.auth_private`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nacl.public

from portal.formats import durable

if TYPE_CHECKING:
    from portal.server.config import Config

PUBLIC_SERVICE = "reprisals-public"
STAFF_SERVICE = "reprisals-staff"
AUTHORIZED_CLIENTS = "authorized_clients"
NAME = re.compile(r"[a-z][a-z0-9._-]{0,31}")
# Paths go into the torrc unquoted: nothing that tor would read as a separator or a quote.
SAFE_PATH = re.compile(r"[A-Za-z0-9_./@+-]+")
ONION = re.compile(r"[a-z2-7]{56}\.onion")


class TorConfigError(Exception):
    """A torrc or a key cannot be made as asked; the message says why."""


class NotListed(TorConfigError):
    """A key is to be replaced for someone who is not among the people listed."""


@dataclass(frozen=True)
class OnionServices:
    """Where tor keeps each onion service and where it passes each site's connections."""

    data_dir: Path
    public_target: str  # "unix:/path" or "127.0.0.1:port"
    staff_target: str
    log: str = "syslog"  # "syslog" or a file path
    pow_queue_rate: int = 250
    pow_queue_burst: int = 2500
    max_streams: int = 20

    @property
    def public_dir(self) -> Path:
        """The public site's HiddenServiceDir."""
        return self.data_dir / PUBLIC_SERVICE

    @property
    def staff_dir(self) -> Path:
        """The staff site's HiddenServiceDir."""
        return self.data_dir / STAFF_SERVICE


def _path(path: Path | str) -> str:
    text = str(path)
    if not SAFE_PATH.fullmatch(text):
        raise TorConfigError(
            f"{text} cannot go into a torrc: use a path of letters, digits and ./_-@+ only."
        )
    return text


def target(bind: str) -> str:
    """The HiddenServicePort target for a gunicorn bind address (unix:/path or host:port)."""
    if bind.startswith("unix:"):
        return "unix:" + _path(bind.removeprefix("unix:"))
    host, _, port = bind.rpartition(":")
    if host not in ("127.0.0.1", "[::1]", "localhost") or not port.isdigit():
        raise TorConfigError(f"{bind} is not a loopback address: tor must reach the site locally.")
    return f"{host}:{port}"


def torrc(services: OnionServices) -> str:
    """A complete torrc serving both sites as v3 onion services."""
    log_line = (
        "Log notice syslog"
        if services.log == "syslog"
        else f"Log notice file {_path(services.log)}"
    )
    return f"""\
## torrc for the reprisals portal, made by `portal tor-config`.
## Two v3 onion services: the public site, and the staff site for authorised clients only.
## On Debian install it as /etc/tor/torrc; tor's service adds User and its control socket.

DataDirectory {_path(services.data_dir)}
## This tor only publishes the portal: no SOCKS port for local programs.
SocksPort 0
## Addresses and onion names are scrubbed from tor's own log.
SafeLogging 1
{log_line}
AvoidDiskWrites 1

## The public site.
HiddenServiceDir {_path(services.public_dir)}
HiddenServiceVersion 3
HiddenServicePort 80 {target(services.public_target)}
## Under attack, clients solve a proof-of-work puzzle and the most work is served first.
HiddenServicePoWDefensesEnabled 1
HiddenServicePoWQueueRate {services.pow_queue_rate}
HiddenServicePoWQueueBurst {services.pow_queue_burst}
## The introduction points themselves turn away floods of introductions.
HiddenServiceEnableIntroDoSDefense 1
HiddenServiceEnableIntroDoSRatePerSec 25
HiddenServiceEnableIntroDoSBurstPerSec 200
## A browser opens a few connections per site; a circuit asking for more is closed.
HiddenServiceMaxStreams {services.max_streams}
HiddenServiceMaxStreamsCloseCircuit 1

## The staff site: its descriptor is encrypted to the keys in
## {_path(services.staff_dir / AUTHORIZED_CLIENTS)}/, so only they can reach it.
HiddenServiceDir {_path(services.staff_dir)}
HiddenServiceVersion 3
HiddenServicePort 80 {target(services.staff_target)}
HiddenServiceMaxStreams {services.max_streams}
HiddenServiceMaxStreamsCloseCircuit 1
"""


# ---------------------------------------------------------------------------------------------
# Client authorisation


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def _unb32(text: str) -> bytes:
    text = text.strip().upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


@dataclass(frozen=True)
class ClientKey:
    """One person's client authorisation key pair, in Tor's base32.

    `private` is None once the private half was handed over and deleted from the server.
    """

    name: str
    public: str
    private: str | None

    @classmethod
    def generate(cls, name: str) -> ClientKey:
        """A new X25519 key pair from the OS random source."""
        secret = nacl.public.PrivateKey.generate()
        return cls(name, _b32(bytes(secret.public_key)), _b32(bytes(secret)))

    @classmethod
    def from_private(cls, name: str, private: str) -> ClientKey:
        """The key pair of a stored private half."""
        try:
            secret = nacl.public.PrivateKey(_unb32(private))
        except (ValueError, TypeError) as exc:
            raise TorConfigError(f"The stored key of {name} is damaged: {exc}.") from exc
        return cls(name, _b32(bytes(secret.public_key)), private.strip().upper())

    @classmethod
    def from_auth(cls, name: str, line: str) -> ClientKey:
        """The public half alone, from an `authorized_clients/NAME.auth` file."""
        found = re.fullmatch(r"descriptor:x25519:([A-Z2-7]{52})", line.strip())
        if found is None:
            raise TorConfigError(f"The stored public key of {name} is damaged.")
        return cls(name, found.group(1), None)

    def auth(self) -> str:
        """The line of `authorized_clients/NAME.auth` on the server."""
        return f"descriptor:x25519:{self.public}\n"

    def auth_private(self, onion: str) -> str:
        """The line of `NAME.auth_private` for a tor client's ClientOnionAuthDir."""
        if self.private is None:
            raise TorConfigError(f"The private key of {self.name} is no longer kept here.")
        return f"{onion.removesuffix('.onion')}:descriptor:x25519:{self.private}\n"


def check_name(name: str) -> str:
    """A staff name usable as a key's file name, or TorConfigError."""
    normalised = name.strip().lower()
    if not NAME.fullmatch(normalised):
        raise TorConfigError(
            f"{name!r} cannot name a key: use 1 to 32 lowercase letters, digits, dots, hyphens "
            "and underscores, starting with a letter."
        )
    return normalised


def check_onion(host: str) -> str:
    """A v3 onion address (checksum and version checked), lowercase with `.onion`."""
    host = host.strip().lower()
    if not host.endswith(".onion"):
        host += ".onion"
    if not ONION.fullmatch(host):
        raise TorConfigError(f"{host} is not a v3 onion address (56 characters, then .onion).")
    raw = _unb32(host.removesuffix(".onion"))
    public_key, checksum, version = raw[:32], raw[32:34], raw[34:]
    expected = hashlib.sha3_256(b".onion checksum" + public_key + version).digest()[:2]
    if version != b"\x03" or checksum != expected:
        raise TorConfigError(f"{host} is not a valid v3 onion address (its checksum is wrong).")
    return host


def _write(path: Path, text: str) -> None:
    """Write a small secret file, 0600, replacing it atomically and durably."""
    durable.write_bytes(path, text.encode("ascii"))


def client_keys(
    folder: Path, names: Sequence[str], renew: Iterable[str] = (), onion: str | None = None
) -> tuple[list[ClientKey], list[str]]:
    """Keep one key pair per name in `folder` (made when missing or in `renew`).

    Writes `NAME.key` (the private half, for Tor Browser), `authorized_clients/NAME.auth` and,
    when the staff site's onion address is known, `NAME.auth_private`. Once a person has their
    key, `NAME.key` and `NAME.auth_private` may be deleted: the public half alone keeps their
    access. Keys of names no longer listed are deleted. Returns the keys and the names whose
    keys were removed.
    """
    renew = set(renew)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    authorised = folder / AUTHORIZED_CLIENTS
    authorised.mkdir(mode=0o700, exist_ok=True)
    keys = []
    for name in names:
        stored, public = folder / f"{name}.key", authorised / f"{name}.auth"
        if name in renew or not (stored.exists() or public.exists()):
            key = ClientKey.generate(name)
            _write(stored, f"{key.private}\n")
            (folder / f"{name}.auth_private").unlink(missing_ok=True)
        elif stored.exists():
            key = ClientKey.from_private(name, stored.read_text(encoding="ascii"))
        else:
            key = ClientKey.from_auth(name, public.read_text(encoding="ascii"))
        _write(public, key.auth())
        if onion is not None and key.private is not None:
            _write(folder / f"{name}.auth_private", key.auth_private(onion))
        keys.append(key)
    kept = {p.stem for p in folder.glob("*.key")} | {p.stem for p in authorised.glob("*.auth")}
    removed = sorted(kept - set(names))
    for name in removed:
        for path in (
            folder / f"{name}.key",
            folder / f"{name}.auth_private",
            authorised / f"{name}.auth",
        ):
            path.unlink(missing_ok=True)
    return keys, removed


def install_authorized_clients(keys: Sequence[ClientKey], service_dir: Path) -> Path:
    """Write the `.auth` files into a HiddenServiceDir (only those of `keys`), as tor needs them.

    Run as root, the folders and files are handed to the owner of tor's data directory.
    """
    folder = service_dir / AUTHORIZED_CLIENTS
    owner = service_dir.parent.stat()
    for path in (service_dir, folder):
        path.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    wanted = {f"{key.name}.auth" for key in keys}
    for stale in folder.glob("*.auth"):
        if stale.name not in wanted:
            stale.unlink()
    for key in keys:
        _write(folder / f"{key.name}.auth", key.auth())
    if os.geteuid() == 0:
        for path in (service_dir, folder, *folder.iterdir()):
            os.chown(path, owner.st_uid, owner.st_gid)
    return folder


def read_onion(service_dir: Path) -> str | None:
    """The onion address tor wrote for a service, if it exists and can be read."""
    try:
        return check_onion((service_dir / "hostname").read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError, TorConfigError):
        return None


# ---------------------------------------------------------------------------------------------
# What `portal tor-config` writes


@dataclass(frozen=True)
class Plan:
    """The torrc of both onion services, whose keys to keep and where, and the staff's address."""

    services: OnionServices
    torrc: str
    names: list[str]
    renew: set[str]
    onion: str | None
    clients: Path


def staff_names(config: Config) -> list[str]:
    """The names of the staff accounts in the database."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from portal.server import db
    from portal.server.models import StaffMember

    engine = db.make_engine(config.database_url)
    try:
        with engine.connect() as connection:
            return sorted(connection.scalars(select(StaffMember.name)))
    except SQLAlchemyError as exc:
        raise TorConfigError(
            "The staff accounts could not be read from the database "
            f"({type(exc).__name__}); name the staff with --staff instead."
        ) from exc
    finally:
        engine.dispose()


def plan(
    config: Config,
    data_dir: Path,
    socket_dir: Path | None,
    port: int | None,
    staff_port: int | None,
    log_file: str | None,
    staff: Sequence[str],
    new_key: Sequence[str],
    clients_dir: Path | None,
    staff_onion: str | None,
) -> Plan:
    """What `portal tor-config` writes, from its options (`staff` empty: every staff account).

    TorConfigError when it cannot be made; NotListed when `new_key` names someone not listed.
    """
    from portal.serve import launch, supervisor

    unix = supervisor.binds_in(launch.socket_dir_of(config, socket_dir))
    services = OnionServices(
        data_dir=data_dir.absolute(),
        public_target=supervisor.loopback(port) if port else unix["public"],
        staff_target=supervisor.loopback(staff_port) if staff_port else unix["staff"],
        log=str(Path(log_file).absolute()) if log_file else "syslog",
    )
    text = torrc(services)
    names = (
        sorted({check_name(name) for name in staff})
        if staff
        else [check_name(name) for name in staff_names(config)]
    )
    renew = {check_name(name) for name in new_key}
    onion = check_onion(staff_onion) if staff_onion else read_onion(services.staff_dir)
    if not names:
        raise TorConfigError(
            "There is no staff account yet, so nobody could reach the staff site: add "
            "accounts with `portal staff add NAME`, or name people with --staff."
        )
    if unknown := renew - set(names):
        raise NotListed(f"--new-key names someone not listed: {', '.join(sorted(unknown))}.")
    clients = (clients_dir or config.data_dir / "tor-clients").absolute()
    return Plan(services, text, names, renew, onion, clients)
