"""The private Tor network launcher's offline parts: torrc filtering, SOCKS5 and HTTP framing.

The network itself (onions answering, client authorisation refusing with the right codes,
every tor stopped) is proven by the journeys in test_journeys.py, on the session's network.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from .torlab import (
    SocksError,
    hidden_service_dirs,
    http_request,
    service_torrc,
)


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
