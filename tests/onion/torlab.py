"""A private Tor network on loopback, so tests reach the portal through real v3 onion services.

Nothing here touches the live Tor network: every instance runs with ``TestingTorNetwork 1``,
trusts only the directory authorities started here, and listens on 127.0.0.1 alone. No relay
is an exit, and clients carry ``OnionTrafficOnly``, so no test traffic can leave the machine.

Use::

    with TorNetwork(tmp_path / "tor") as net:              # __enter__ runs start()
        public_onion, staff_onion = net.add_service_host("portal", generated_torrc)
        socks_port = net.add_client("browser")
        net.wait_for_onion(socks_port, public_onion)
        status, headers, body = http_request(socks_port, public_onion, "GET", "/en/")

As a fixture, one network for the whole session (it takes 15 to 40 seconds to form)::

    @pytest.fixture(scope="session")
    def tor_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TorNetwork]:
        if reason := missing_tools():
            pytest.skip(reason)
        with TorNetwork(tmp_path_factory.mktemp("tor")) as net:
            yield net

``TorNetwork(workdir, *, relays=4, authorities=1, log_level="notice")``
    ``workdir`` must be empty or absent. Some onion service circuits take four distinct
    relays (guard, vanguard, middle, and the introduction or rendezvous point): three nodes
    cannot serve an onion at all, four can with no slack, five leave one to spare. One
    authority forms the network sooner than three on a busy machine: it makes one RSA-3072
    key instead of three and votes with nobody (three authorities and two relays work too).

    ``start()``
        Makes the authorities' keys, starts authorities and relays on free ports of 127.0.0.1,
        and returns once a consensus lists every node as usable and every node has
        bootstrapped. A fixture that calls ``start()`` itself must call ``stop()`` in
        ``finally``, even if ``start()`` raised.
    ``network_lines() -> list[str]``
        The torrc lines any other tor needs to join this network (``TestingTorNetwork 1``,
        ``DirAuthority`` lines, path threshold).
    ``add_client(name, *, client_auth_dir=None) -> int``
        Starts a client tor and returns its SOCKS port once it has bootstrapped. The port has
        ``ExtendedErrors`` (onion failures come back as codes 0xF0-0xF7, see ``SocksError``)
        and ``OnionTrafficOnly``. ``client_auth_dir`` becomes ``ClientOnionAuthDir``: put
        ``<name>.auth_private`` files there (``client_auth_private``) before calling. Asked
        for an onion that needs client authorisation, tor answers 0xF4 without a key and 0xF5
        with a wrong one, within a second once the descriptor is published.
    ``add_service_host(name, torrc_text) -> list[str]``
        Starts a tor from a generated torrc and returns the onion host names of its
        ``HiddenServiceDir`` lines, in order. Lines that would escape the test or collide are
        removed first; ``SERVICE_DROPPED_KEYWORDS`` lists them, each with the reason.
    ``wait_for_onion(socks_port, onion_host, path="/", timeout=180) -> Response``
        Repeats a GET through the client until any HTTP answer arrives and returns it. Gives
        up at once on SOCKS errors that waiting cannot heal (0xF4, 0xF5, 0xF6).
    ``stop()``
        SIGTERM to every tor started here, by process id, then SIGKILL to any still running
        after five seconds; waits for each. Idempotent; ``__exit__`` runs it even on error.
    ``logs() -> dict[str, str]``
        Every instance's log text (``<workdir>/<name>/tor.log``) by instance name.
    ``pids -> list[int]``
        The process ids of every tor started here.

    ``add_client`` and ``add_service_host`` may run side by side in threads. A tor that fails
    to start raises ``TorError`` with its last lines; later waits no longer check it, but
    every other tor's death still fails them.

``http_request(socks_port, host, method, path, headers, body) -> Response`` makes one HTTP/1.1
request through a SOCKS5 port, with the host name resolved by tor and never locally, and reads
the whole response (``Content-Length``, chunked or to close, as ``http.client`` does).

Every tor runs in the foreground (``RunAsDaemon 0``) in its own session, with its data and log
in ``<workdir>/<name>/``, no ``User`` line (the tests run as root), and exits on its own within
15 seconds if the Python process that started it dies (``__OwningControllerProcess``).
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

TOR = shutil.which("tor") or "/usr/sbin/tor"
TOR_GENCERT = shutil.which("tor-gencert") or "/usr/bin/tor-gencert"

# Keywords (lower case) removed from a service host's torrc, and why.
SERVICE_DROPPED_KEYWORDS: Mapping[str, str] = {
    "datadirectory": "each instance keeps its state in its own folder under the work directory",
    "runasdaemon": "tor must stay in the foreground so stop() can signal the process it started",
    "user": "tests run as root and must not hand the test folders to another account",
    "log": "the log goes to <datadir>/tor.log, where logs() reads it",
    "pidfile": "would write outside the work directory",
    "%include": "would pull in this machine's own tor configuration",
    "socksport": "a fixed port could collide; the service host needs no SOCKS port",
    "controlport": "a fixed port could collide; the tests need no control port",
    "controlsocket": "would create a socket outside the work directory",
    "orport": "the service host is not a relay",
    "dirport": "the service host is not a directory",
    "dnsport": "a fixed port could collide",
    "transport": "a fixed port could collide",
    "natdport": "a fixed port could collide",
    "httptunnelport": "a fixed port could collide",
    "metricsport": "a fixed port could collide",
}

_STARTED = re.compile(r"Bootstrapped 0%")
_BOOTSTRAPPED = re.compile(r"Bootstrapped 100%")
_SOCKS_OPENED = re.compile(r"Opened Socks listener connection \(ready\) on 127\.0\.0\.1:(\d+)")


class TorError(RuntimeError):
    """A tor instance failed to start or died, or the network did not form in time."""


class SocksError(OSError):
    """The SOCKS5 server refused a CONNECT; ``code`` is its reply byte."""

    MESSAGES: Mapping[int, str] = {
        0x01: "general failure",
        0x02: "connection not allowed by ruleset",
        0x03: "network unreachable",
        0x04: "host unreachable",
        0x05: "connection refused",
        0x06: "TTL expired",
        0x07: "command not supported",
        0x08: "address type not supported",
        0xF0: "onion service descriptor can not be found",
        0xF1: "onion service descriptor is invalid",
        0xF2: "onion service introduction failed",
        0xF3: "onion service rendezvous failed",
        0xF4: "onion service missing client authorization",
        0xF5: "onion service wrong client authorization",
        0xF6: "onion service invalid address",
        0xF7: "onion service introduction timed out",
    }

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(f"SOCKS5 error 0x{code:02X}: {self.MESSAGES.get(code, 'unknown')}")


class Response(NamedTuple):
    """An HTTP response, read to its end."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes


def missing_tools() -> str | None:
    """Say which tor program is missing, or None when a private network can run here."""
    for program in (TOR, TOR_GENCERT):
        if not os.access(program, os.X_OK):
            return f"{Path(program).name} is not installed (apt-get install tor)"
    return None


def _b32(key: bytes) -> str:
    return base64.b32encode(key).decode("ascii").rstrip("=")


def authorized_client(public_key: bytes) -> str:
    """The line of a service's ``authorized_clients/<name>.auth`` file for an x25519 public key."""
    return f"descriptor:x25519:{_b32(public_key)}\n"


def client_auth_private(onion_host: str, private_key: bytes) -> str:
    """The line of a client's ``<name>.auth_private`` file for an onion and its x25519 key."""
    return f"{onion_host.removesuffix('.onion')}:descriptor:x25519:{_b32(private_key)}\n"


# --- SOCKS5 and HTTP ------------------------------------------------------------------------


def _recv_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the SOCKS server closed the connection")
        data += chunk
    return data


def socks5_connect(socks_port: int, host: str, port: int, timeout: float = 30) -> socket.socket:
    """Open a TCP stream to host:port through the SOCKS5 server on 127.0.0.1:socks_port."""
    name = host.encode("ascii")
    if not 0 < len(name) < 256:
        raise ValueError(f"a host name has 1 to 255 bytes: {host!r}")
    sock = socket.create_connection(("127.0.0.1", socks_port), timeout=timeout)
    try:
        sock.sendall(b"\x05\x01\x00")  # version 5, one method offered: no authentication
        if _recv_exact(sock, 2) != b"\x05\x00":
            raise ConnectionError("the SOCKS server refused the no-authentication method")
        # CONNECT by name (address type 0x03): tor resolves it, nothing here does.
        sock.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + port.to_bytes(2, "big"))
        version, reply, _reserved, address_type = _recv_exact(sock, 4)
        if version != 5:
            raise ConnectionError(f"not a SOCKS5 reply (version {version})")
        if reply != 0:
            raise SocksError(reply)
        if address_type == 0x01:
            _recv_exact(sock, 4 + 2)
        elif address_type == 0x04:
            _recv_exact(sock, 16 + 2)
        elif address_type == 0x03:
            _recv_exact(sock, _recv_exact(sock, 1)[0] + 2)
        else:
            raise ConnectionError(f"SOCKS reply with unknown address type {address_type}")
        return sock
    except BaseException:
        sock.close()
        raise


class _SocksHTTPConnection(http.client.HTTPConnection):
    """http.client over a SOCKS5 stream, so the framing is the standard library's."""

    def __init__(self, socks_port: int, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._socks_port = socks_port
        self._socks_timeout = timeout

    def connect(self) -> None:
        """Connect through SOCKS instead of directly."""
        self.sock = socks5_connect(self._socks_port, self.host, self.port, self._socks_timeout)


def http_request(
    socks_port: int,
    host: str,
    method: str = "GET",
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    *,
    port: int = 80,
    timeout: float = 60,
) -> Response:
    """Make one HTTP/1.1 request through a SOCKS5 port and read the whole response."""
    connection = _SocksHTTPConnection(socks_port, host, port, timeout)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


# --- torrc text -----------------------------------------------------------------------------


def _keyword(line: str) -> str:
    words = line.split(None, 1)
    return words[0].lower() if words and not words[0].startswith("#") else ""


def service_torrc(torrc_text: str) -> str:
    """Return torrc_text without the lines whose keyword is in SERVICE_DROPPED_KEYWORDS."""
    lines = torrc_text.splitlines()
    return "".join(f"{line}\n" for line in lines if _keyword(line) not in SERVICE_DROPPED_KEYWORDS)


def hidden_service_dirs(torrc_text: str) -> list[Path]:
    """The HiddenServiceDir paths of a torrc, in order."""
    return [
        Path(line.split(None, 1)[1].strip().strip('"'))
        for line in torrc_text.splitlines()
        if _keyword(line) == "hiddenservicedir"
    ]


def _free_ports(count: int) -> list[int]:
    # Hold every socket until all are picked, so no port is handed out twice.
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# --- the network ----------------------------------------------------------------------------


@dataclass
class _Instance:
    name: str
    datadir: Path
    process: subprocess.Popen[bytes]
    # An instance that failed to start is reported once; later waits no longer check it.
    abandoned: bool = False

    def log_text(self) -> str:
        try:
            return (self.datadir / "tor.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self) -> str:
        # Configuration errors reach the console only: the log file is not open yet.
        console = (self.datadir / "console.log").read_text(errors="replace")
        tail = "\n".join((console + self.log_text()).splitlines()[-25:])
        return f"tor {self.name!r} (pid {self.process.pid}), last lines:\n{tail}"


class TorNetwork:
    """A private Tor network of authorities and relays on 127.0.0.1, plus clients and services."""

    def __init__(
        self, workdir: Path, *, relays: int = 4, authorities: int = 1, log_level: str = "notice"
    ) -> None:
        if authorities < 1 or relays < 0 or authorities + relays < 4:
            raise ValueError("a network needs an authority and four nodes in all")
        self.workdir = Path(workdir).resolve()
        self.relay_count = relays
        self.authority_count = authorities
        self.log_level = log_level
        self._instances: list[_Instance] = []
        self._dir_authority_lines: list[str] = []

    def __enter__(self) -> TorNetwork:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def network_lines(self) -> list[str]:
        """The torrc lines any extra instance needs to join this network."""
        if not self._dir_authority_lines:
            raise TorError("start() the network before asking how to join it")
        return [
            "TestingTorNetwork 1",
            *self._dir_authority_lines,
            # A handful of relays never reach tor's usual share of usable paths.
            "PathsNeededToBuildCircuits 0.25",
        ]

    def start(self) -> None:
        """Start the authorities and relays; return once all are listed usable and bootstrapped."""
        if self.workdir.exists() and any(self.workdir.iterdir()):
            raise TorError(f"the work directory must be empty: {self.workdir}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._empty_torrc().write_text("")
        ports = iter(_free_ports(2 * self.authority_count + self.relay_count))
        authorities = [(f"auth{i}", next(ports), next(ports)) for i in range(self.authority_count)]
        relays = [(f"relay{i}", next(ports)) for i in range(self.relay_count)]
        # RSA key generation takes most of a second per authority: share it between cores.
        with ThreadPoolExecutor() as pool:
            self._dir_authority_lines = list(pool.map(self._make_authority, authorities))
        # The authorities are the only onion service directories (relays have no directory
        # cache, see _RELAY_ONLY_LINES), so every descriptor lands on every one of them.
        fingerprints = ",".join(f"${line.split()[-1]}" for line in self._dir_authority_lines)
        for nickname, or_port, dir_port in authorities:
            lines = [
                *_relay_lines(nickname, or_port),
                *_authority_lines(dir_port),
                f"TestingDirAuthVoteHSDir {fingerprints}",
                "TestingDirAuthVoteHSDirIsStrict 1",
            ]
            self._launch(nickname, lines, datadir=self.workdir / nickname)
        relay_instances = [
            self._launch(nickname, [*_relay_lines(nickname, or_port), *_RELAY_ONLY_LINES])
            for nickname, or_port in relays
        ]
        # A relay that asks for a consensus before there is one backs off for up to half a
        # minute, and circuits through it fail until it has one. SIGHUP makes tor forget its
        # failed downloads and ask again at once; its handler is in place by "Bootstrapped 0%".
        self._wait_until(lambda: bool(self._consensus_flags()), 60, "a first consensus")
        for relay in relay_instances:
            self._wait_for_log(relay, _STARTED, timeout=30)
            relay.process.send_signal(signal.SIGHUP)
        self._wait_for_consensus(timeout=90)
        for instance in self._instances:
            self._wait_for_log(instance, _BOOTSTRAPPED, timeout=60)

    def add_client(self, name: str, *, client_auth_dir: Path | None = None) -> int:
        """Start a client tor and return its SOCKS port once it has bootstrapped."""
        lines = ["SocksPort 127.0.0.1:auto OnionTrafficOnly ExtendedErrors"]
        if client_auth_dir is not None:
            lines.append(f"ClientOnionAuthDir {Path(client_auth_dir).resolve()}")
        instance = self._launch(name, lines)
        port = int(self._wait_for_log(instance, _SOCKS_OPENED, timeout=30).group(1))
        self._wait_for_log(instance, _BOOTSTRAPPED, timeout=90)
        return port

    def add_service_host(self, name: str, torrc_text: str) -> list[str]:
        """Start a tor from a generated torrc; return its onion names in HiddenServiceDir order.

        Lines whose keyword is in SERVICE_DROPPED_KEYWORDS are removed first: the data
        directory, daemon mode, user switching, logging, pid file, includes and every fixed
        listener port. This network's lines and the instance's own follow. Everything else,
        the HiddenService* lines and their paths above all, stays exactly as generated.
        """
        instance = self._launch(name, ["SocksPort 0"], torrc_text=service_torrc(torrc_text))
        # Tor writes each service's hostname file while loading its configuration, before this.
        self._wait_for_log(instance, _STARTED, timeout=30)
        # A relative HiddenServiceDir is relative to tor's working directory, its data directory.
        directories = [instance.datadir / path for path in hidden_service_dirs(torrc_text)]
        return [(directory / "hostname").read_text().strip() for directory in directories]

    def wait_for_onion(
        self, socks_port: int, onion_host: str, path: str = "/", timeout: float = 180
    ) -> Response:
        """Repeat a GET for path through the SOCKS port until any HTTP answer arrives."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            attempt_timeout = max(1.0, min(30.0, deadline - time.monotonic()))
            try:
                return http_request(socks_port, onion_host, "GET", path, timeout=attempt_timeout)
            except SocksError as error:
                if error.code in (0xF4, 0xF5, 0xF6):  # missing or wrong key, bad address
                    raise
                last_error = error
            except (OSError, http.client.HTTPException) as error:
                last_error = error
            time.sleep(1)
        raise TimeoutError(f"no HTTP answer from {onion_host} in {timeout:.0f} s: {last_error}")

    def stop(self) -> None:
        """Stop every tor started here: SIGTERM, SIGKILL after five seconds, and wait for each."""
        for instance in self._instances:
            if instance.process.poll() is None:
                instance.process.terminate()
        # Tor exits at once on SIGTERM, except that under "Sandbox 1" it now and then leaves
        # SIGTERM blocked in every thread (seen with 0.4.9.11): SIGKILL has the last word.
        deadline = time.monotonic() + 5
        for instance in self._instances:
            try:
                instance.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                instance.process.kill()
                instance.process.wait()

    def logs(self) -> dict[str, str]:
        """Every instance's log text, by instance name."""
        return {instance.name: instance.log_text() for instance in self._instances}

    @property
    def pids(self) -> list[int]:
        """The process ids of every tor started here, running or not."""
        return [instance.process.pid for instance in self._instances]

    def _make_authority(self, authority: tuple[str, int, int]) -> str:
        """Write an authority's keys and return its DirAuthority line."""
        nickname, or_port, dir_port = authority
        datadir = self._datadir(nickname)
        keys = datadir / "keys"
        keys.mkdir(mode=0o700)
        # An empty passphrase on standard input leaves the identity key unencrypted.
        _run(
            [TOR_GENCERT, "--create-identity-key", "-m", "12", "-a", f"127.0.0.1:{dir_port}",
             "-i", "authority_identity_key", "-s", "authority_signing_key",
             "-c", "authority_certificate", "--passphrase-fd", "0"],
            cwd=keys,
        )  # fmt: skip
        v3ident = re.search(
            r"^fingerprint ([0-9A-F]{40})$", (keys / "authority_certificate").read_text(), re.M
        )
        listed = _run(
            [TOR, "--list-fingerprint", "--defaults-torrc", str(self._empty_torrc()),
             "-f", str(self._empty_torrc()), "--DataDirectory", str(datadir),
             "--Nickname", nickname, "--Address", "127.0.0.1", "--ORPort", f"127.0.0.1:{or_port}"],
        )  # fmt: skip
        identity = re.search(rf"^{nickname} ((?:[0-9A-F]{{4}} ?){{10}})$", listed, re.M)
        if v3ident is None or identity is None:
            raise TorError(f"could not read the keys of authority {nickname}:\n{listed}")
        return (
            f"DirAuthority {nickname} orport={or_port} no-v2 v3ident={v3ident.group(1)} "
            f"127.0.0.1:{dir_port} {identity.group(1).replace(' ', '')}"
        )

    def _empty_torrc(self) -> Path:
        """An empty file for tor's defaults, so /etc/tor/torrc-defaults stays out of the tests."""
        return self.workdir / "empty-torrc"

    def _datadir(self, name: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,19}", name):
            raise ValueError(f"an instance name has 1 to 19 letters, digits, - or _: {name!r}")
        datadir = self.workdir / name
        try:
            datadir.mkdir(mode=0o700)
        except FileExistsError:
            raise ValueError(f"there is already an instance named {name!r}") from None
        return datadir

    def _launch(
        self, name: str, lines: list[str], *, torrc_text: str = "", datadir: Path | None = None
    ) -> _Instance:
        """Write an instance's torrc and start tor on it, in a new data directory by default."""
        datadir = datadir or self._datadir(name)
        torrc = datadir / "torrc"
        own_lines = [
            f"DataDirectory {datadir}",
            "RunAsDaemon 0",
            f"Log {self.log_level} file {datadir / 'tor.log'}",
            "SafeLogging 0",  # onion addresses in the log help whoever reads a failure
            "LogTimeGranularity 1",
            f"__OwningControllerProcess {os.getpid()}",
            *self.network_lines(),
            *lines,
        ]
        torrc.write_text(torrc_text + "".join(f"{line}\n" for line in own_lines))
        with open(datadir / "console.log", "wb") as console:
            process = subprocess.Popen(
                [TOR, "--defaults-torrc", str(self._empty_torrc()), "-f", str(torrc)],
                cwd=datadir, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        instance = _Instance(name, datadir, process)
        self._instances.append(instance)
        return instance

    def _check_alive(self) -> None:
        for instance in self._instances:
            if not instance.abandoned and instance.process.poll() is not None:
                code = instance.process.returncode
                raise TorError(f"tor exited with status {code}: {instance.describe()}")

    def _wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            if condition():
                return
            if time.monotonic() > deadline:
                raise TorError(f"waited {timeout:.0f} s in vain for {what}")
            time.sleep(0.2)

    def _wait_for_log(
        self, instance: _Instance, pattern: re.Pattern[str], timeout: float
    ) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            match = pattern.search(instance.log_text())
            if match:
                found.append(match)
            return match is not None

        try:
            self._wait_until(seen, timeout, f"{pattern.pattern!r} in the log of {instance.name}")
        except TorError as error:
            instance.abandoned = True
            if instance.process.poll() is not None:
                raise
            raise TorError(f"{error}\n{instance.describe()}") from None
        return found[0]

    def _consensus_flags(self) -> dict[str, set[str]]:
        """Each node's flags in the first authority's latest consensus; empty before the first."""
        try:
            text = (self.workdir / "auth0" / "cached-consensus").read_text(errors="replace")
        except FileNotFoundError:
            return {}
        names = re.findall(r"^r (\S+) ", text, re.M)
        flags = re.findall(r"^s (.*)$", text, re.M)
        return {name: set(line.split()) for name, line in zip(names, flags, strict=False)}

    def _wait_for_consensus(self, timeout: float) -> None:
        """Wait until the consensus lists every node as a running, stable, fast guard.

        The authorities must be onion service directories too.
        """
        usable = {"Running", "Valid", "Guard", "Stable", "Fast"}
        wanted = {f"auth{i}": usable | {"HSDir"} for i in range(self.authority_count)}
        wanted |= {f"relay{i}": usable for i in range(self.relay_count)}

        def complete() -> bool:
            flags = self._consensus_flags()
            return all(needed <= flags.get(name, set()) for name, needed in wanted.items())

        try:
            self._wait_until(complete, timeout, "a consensus that lists every node as usable")
        except TorError as error:
            listed = {name: sorted(flags) for name, flags in self._consensus_flags().items()}
            raise TorError(f"{error}; the consensus lists {listed or 'nothing yet'}") from None


def _run(command: list[str], cwd: Path | None = None) -> str:
    """Run a tor tool to completion and return its output; TorError with the output if it fails."""
    result = subprocess.run(
        command, cwd=cwd, input="", capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise TorError(f"{Path(command[0]).name} failed ({result.returncode}):\n{output}")
    return result.stdout


def _relay_lines(nickname: str, or_port: int) -> list[str]:
    return [
        f"Nickname {nickname}",
        "Address 127.0.0.1",
        f"ORPort 127.0.0.1:{or_port}",
        "ContactInfo tests@localhost",
        "SocksPort 0",
        # No exits: onion services need none, and no test traffic may leave the machine.
        "ExitRelay 0",
        "ExitPolicy reject *:*",
        # Skip the self-test that waits to see the relay from outside.
        "AssumeReachable 1",
    ]


_RELAY_ONLY_LINES = [
    # Only the authorities serve directory documents and onion service descriptors: a
    # relay's cache lags seconds behind each consensus, and a client that asks it too early
    # gets a 404 and tries again ten seconds later.
    "DirCache 0",
    # Fetch each consensus as soon as it is out, as the real network's caches do, rather than
    # at a random moment of its 30-second life: until a relay has the consensus that lists
    # the others, circuits through it fail.
    "FetchDirInfoEarly 1",
    "FetchDirInfoExtraEarly 1",
]


def _authority_lines(dir_port: int) -> list[str]:
    return [
        f"DirPort 127.0.0.1:{dir_port}",
        "AuthoritativeDirectory 1",
        "V3AuthoritativeDirectory 1",
        # Vote as fast as tor allows: a first consensus in seconds rather than minutes.
        "TestingV3AuthInitialVotingInterval 5",
        "TestingV3AuthInitialVoteDelay 2",
        "TestingV3AuthInitialDistDelay 2",
        "V3AuthVotingInterval 10",
        "V3AuthVoteDelay 2",
        "V3AuthDistDelay 2",
        # Grant at once the flags that take relays days of uptime on the real network. Onion
        # service circuits use Stable and Fast nodes only: with half the nodes Stable, as the
        # median rule gives, they fail again and again for want of distinct relays.
        "TestingDirAuthVoteGuard *",
        "AuthDirVoteStableGuaranteeMinUptime 0",
        "AuthDirVoteStableGuaranteeMTBF 0",
        "AuthDirFastGuarantee 0",
    ]
