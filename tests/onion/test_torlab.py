"""The private Tor network launcher: onions answer through it and client authorisation holds."""

from __future__ import annotations

import http.server
import os
import socket
import socketserver
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nacl.public
import pytest

from .torlab import (
    SocksError,
    TorError,
    TorNetwork,
    authorized_client,
    client_auth_private,
    hidden_service_dirs,
    http_request,
    missing_tools,
    service_torrc,
)

MISSING = missing_tools()
needs_tor = pytest.mark.skipif(MISSING is not None, reason=f"no private Tor network: {MISSING}")


class _Greeter(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the name of the site it serves."""

    server: _UnixHTTPServer

    def do_GET(self) -> None:
        """Send a short body naming this site."""
        body = f"hello from {self.server.site}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: a Unix socket peer has no address to log."""


class _UnixHTTPServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, site: str) -> None:
        self.site = site
        super().__init__(str(path), _Greeter)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path: Unix socket paths must stay under 108 bytes."""
    with tempfile.TemporaryDirectory(prefix="torlab-") as name:
        yield Path(name)


def _serve(path: Path, site: str) -> _UnixHTTPServer:
    server = _UnixHTTPServer(path, site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _generated_torrc(public_dir: Path, public_sock: Path, staff_dir: Path, staff_sock: Path) -> str:
    """A torrc shaped like a production one, with the lines the launcher must replace."""
    return f"""\
# Onion services for the portal
DataDirectory /var/lib/tor
User debian-tor
RunAsDaemon 1
PidFile /run/tor/tor.pid
SocksPort 9050
ControlPort 9051
Log notice syslog

HiddenServiceDir {public_dir}
HiddenServicePort 80 unix:{public_sock}

HiddenServiceDir {staff_dir}
HiddenServicePort 80 unix:{staff_sock}
"""


def _expect_socks_error(socks_port: int, host: str, timeout: float = 60) -> tuple[int, float]:
    """Request host until tor gives a final answer; return the SOCKS error code and seconds."""
    started = time.monotonic()
    while True:
        try:
            response = http_request(socks_port, host, timeout=30)
        except SocksError as error:
            # 0xF0 only means the descriptor is not fetched yet; anything else is the answer.
            if error.code != 0xF0 or time.monotonic() - started > timeout:
                return error.code, time.monotonic() - started
        else:
            pytest.fail(f"{host} answered {response.status} to a client without the right key")
        time.sleep(1)


@needs_tor
@pytest.mark.onion
@pytest.mark.slow
def test_onion_services_through_private_network(tmp_path: Path, short_dir: Path) -> None:
    """A client reaches the public onion, the staff onion only with its key; stop() cleans up."""
    public_sock, staff_sock = short_dir / "public.sock", short_dir / "staff.sock"
    servers = [_serve(public_sock, "public"), _serve(staff_sock, "staff")]
    public_dir, staff_dir = tmp_path / "hs-public", tmp_path / "hs-staff"
    for directory in (public_dir, staff_dir, staff_dir / "authorized_clients"):
        directory.mkdir(mode=0o700)

    staff_key, stranger_key = nacl.public.PrivateKey.generate(), nacl.public.PrivateKey.generate()
    (staff_dir / "authorized_clients" / "alice.auth").write_text(
        authorized_client(bytes(staff_key.public_key))
    )
    torrc = _generated_torrc(public_dir, public_sock, staff_dir, staff_sock)

    started = time.monotonic()
    try:
        with TorNetwork(tmp_path / "tor") as net:
            public_onion, staff_onion = net.add_service_host("portal", torrc)
            assert public_onion.endswith(".onion")
            assert staff_onion.endswith(".onion")
            assert public_onion != staff_onion

            auth_dirs = {}
            for client, key in (("alice", staff_key), ("mallory", stranger_key)):
                auth_dirs[client] = tmp_path / f"auth-{client}"
                auth_dirs[client].mkdir(mode=0o700)
                (auth_dirs[client] / f"{client}.auth_private").write_text(
                    client_auth_private(staff_onion, bytes(key))
                )
            anonymous = net.add_client("anonymous")
            alice = net.add_client("alice", client_auth_dir=auth_dirs["alice"])
            mallory = net.add_client("mallory", client_auth_dir=auth_dirs["mallory"])

            response = net.wait_for_onion(anonymous, public_onion)
            first_answer = time.monotonic() - started
            assert (response.status, response.body) == (200, b"hello from public\n")
            assert response.headers["Content-Type"] == "text/plain"

            response = net.wait_for_onion(alice, staff_onion)
            assert (response.status, response.body) == (200, b"hello from staff\n")

            # With the descriptor surely published, refusals are fast and say why.
            code, missing_seconds = _expect_socks_error(anonymous, staff_onion)
            assert code == 0xF4, f"expected missing client authorisation, got 0x{code:02X}"
            code, wrong_seconds = _expect_socks_error(mallory, staff_onion)
            assert code == 0xF5, f"expected wrong client authorisation, got 0x{code:02X}"
            assert missing_seconds < 20
            assert wrong_seconds < 20

            # The generated lines that would escape the test were dropped, the rest kept.
            portal_torrc = (tmp_path / "tor" / "portal" / "torrc").read_text()
            for line in ("DataDirectory /var/lib/tor", "User ", "RunAsDaemon 1", "SocksPort 9050"):
                assert line not in portal_torrc
            assert f"HiddenServicePort 80 unix:{staff_sock}" in portal_torrc

            logs = net.logs()
            assert set(logs) >= {"auth0", "relay0", "portal", "anonymous", "alice", "mallory"}
            assert "Bootstrapped 100%" in logs["alice"]

            with pytest.raises(TorError, match="NoSuchOption"):
                net.add_service_host("broken", "NoSuchOption 1\n")
            pids = net.pids
        print(
            f"first answer through the onion after {first_answer:.1f} s; refused without a key"
            f" in {missing_seconds:.1f} s, with a wrong one in {wrong_seconds:.1f} s"
        )
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()

    net.stop()  # a second stop() does nothing
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_service_torrc_drops_only_conflicting_lines() -> None:
    """Data directory, daemon, user, log, pid file, includes and fixed ports go; the rest stays."""
    text = (
        "datadirectory /var/lib/tor\n  User debian-tor\nRunAsDaemon 1\nLog notice syslog\n"
        "%include /etc/tor/torrc.d/\nSocksPort 9050\nORPort 9001\nPidFile /run/tor.pid\n"
        "# SocksPort in a comment stays\nHiddenServiceDir /srv/hs\nHiddenServicePort 80 unix:/s\n"
    )
    assert service_torrc(text) == (
        "# SocksPort in a comment stays\nHiddenServiceDir /srv/hs\nHiddenServicePort 80 unix:/s\n"
    )
    assert hidden_service_dirs(text) == [Path("/srv/hs")]


class _OneShotSocks:
    """A SOCKS5 server on loopback for one connection: a fixed reply, then a canned HTTP answer."""

    def __init__(self, reply: int, answer: bytes = b"") -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.port: int = self.listener.getsockname()[1]
        self.seen: list[bytes] = []
        self._reply, self._answer = reply, answer
        self._thread = threading.Thread(target=self._serve)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            self.seen.append(conn.recv(3))
            conn.sendall(b"\x05\x00")
            self.seen.append(conn.recv(300))
            conn.sendall(bytes([5, self._reply, 0, 1]) + bytes(6))
            if self._reply == 0:
                request = b""
                while b"\r\n\r\n" not in request and (chunk := conn.recv(4096)):
                    request += chunk
                self.seen.append(request)
                conn.sendall(self._answer)

    def close(self) -> None:
        """Wait for the connection to end and close the listener."""
        self._thread.join(10)
        self.listener.close()


def test_socks_error_reports_tor_extended_code() -> None:
    """A SOCKS5 refusal comes back as SocksError with tor's extended code and its meaning."""
    server = _OneShotSocks(0xF4)
    try:
        with pytest.raises(SocksError, match="missing client authorization") as caught:
            http_request(server.port, "example.onion", timeout=5)
    finally:
        server.close()
    assert caught.value.code == 0xF4
    # No authentication offered; CONNECT by name (0x03), 13 bytes, port 80.
    assert server.seen == [b"\x05\x01\x00", b"\x05\x01\x00\x03\x0dexample.onion\x00\x50"]


def test_http_request_reads_a_chunked_answer_through_socks() -> None:
    """The request goes out whole with the onion as Host; a chunked answer is read to its end."""
    answer = (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n"
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    server = _OneShotSocks(0, answer)
    try:
        status, headers, body = http_request(
            server.port, "example.onion", "POST", "/en/submit", {"X-Test": "1"}, b"a=b", timeout=5
        )
    finally:
        server.close()
    assert (status, body) == (201, b"hello world")
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    request = server.seen[2]
    assert request.startswith(b"POST /en/submit HTTP/1.1\r\n")
    assert b"\r\nHost: example.onion\r\n" in request
    assert b"\r\nX-Test: 1\r\n" in request
