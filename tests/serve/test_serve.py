"""`portal serve`: both sites under gunicorn, bad input answered short, slow clients let go.

The server here runs with a read timeout of 2 seconds so that the stall tests are quick; the
upload test sends 8 MiB at about 1 MB/s. The figure the portal is built for, 50 MiB at about
200 KB/s (a Tor upload), is measured by `make bench` (bench/bench_serve.py), not here.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from servers import (
    PORTAL,
    Served,
    children,
    connect,
    csrf,
    deployment,
    free_port,
    full_env,
    multipart,
    paced_upload,
    read_to_end,
    status_of,
)

from portal.cli import main

pytestmark = pytest.mark.slow

READ_TIMEOUT = 2
MIN_RATE = 20_000
REPORT = {
    "description": "Travel ban after speaking at the Human Rights Council.",
    "consent_of": "self",
    "consent_raise": "no",
    "consent_report": "anonymous",
    "consent_share_un": "yes",
    "consent_contact": "portal",
}
UPLOAD_BYTES = int(os.environ.get("PORTAL_TEST_UPLOAD_BYTES", 8 * 1024 * 1024))
UPLOAD_RATE = float(os.environ.get("PORTAL_TEST_UPLOAD_RATE", 1_000_000))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One `portal serve` for the module, with a short read timeout and a leftover to sweep."""
    folder = tmp_path_factory.mktemp("serve")
    env = deployment(folder)
    leftover = Path(env["PORTAL_DATA_DIR"]) / "sealed" / ".incoming" / "interrupted"
    leftover.mkdir(parents=True)
    (leftover / "part-0").write_bytes(b"sealed bytes of an upload cut off by a crash")
    args = ["--read-timeout", str(READ_TIMEOUT), "--min-rate", str(MIN_RATE), "--threads", "8"]
    server = Served(folder, env, args).start()
    try:
        yield server
    finally:
        code = server.stop()
    # Stopped as systemd stops it: both sites finish and go, and so do their sockets.
    assert code == 0, server.output.read_text()
    assert not any(Path(path).exists() for path in server.sockets.values())


def test_it_refuses_to_start_without_the_team_key(tmp_path: Path) -> None:
    env = {
        "PORTAL_DATA_DIR": str(tmp_path / "data"),
        "PORTAL_TEAM_PUBLIC_KEY": str(tmp_path / "missing.pub"),
    }
    result = CliRunner().invoke(main, ["serve", "--socket-dir", str(tmp_path)], env=env)
    assert result.exit_code != 0
    assert "team public key cannot be used" in result.output
    assert "Traceback" not in result.output


def test_it_refuses_to_start_before_portal_init(tmp_path: Path, env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["serve", "--socket-dir", str(tmp_path)], env=env)
    assert result.exit_code != 0
    assert "run `portal init` first" in result.output


def test_the_start_up_sweep_can_be_left_to_one_server_of_several(
    initialised: dict[str, str],
) -> None:
    from portal.serve.launch import prepare
    from portal.server.config import load_config

    config = load_config(initialised)
    leftover = config.blob_dir / ".incoming" / "another-servers-upload"
    leftover.mkdir(parents=True)
    assert prepare(config, sweep=False) == 0
    assert leftover.exists()
    assert prepare(config, sweep=True) == 1
    assert not leftover.exists()


def test_both_sites_answer_on_their_sockets_mode_0660(served: Served) -> None:
    public = served.request("GET", "/en/")
    staff = served.request("GET", "/login", site="staff")
    assert public.status == 200
    assert "Report" in public.text
    assert staff.status in (200, 303)
    for path in served.sockets.values():
        assert isinstance(path, Path)
        assert path.stat().st_mode & 0o777 == 0o660


def test_leftovers_of_interrupted_uploads_are_swept_at_start(served: Served) -> None:
    incoming = Path(served.env["PORTAL_DATA_DIR"]) / "sealed" / ".incoming"
    assert not (incoming / "interrupted").exists()


def test_no_header_names_the_software(served: Served) -> None:
    for site, path in (("public", "/en/"), ("public", "/static/portal.css"), ("staff", "/login")):
        answer = served.request("GET", path, site=site)
        names = {name.lower() for name in answer.headers}
        assert "server" not in names
        assert "x-powered-by" not in names
        assert "etag" not in names
        assert "gunicorn" not in str(answer.headers).lower()


def test_forwarding_headers_change_nothing(served: Served) -> None:
    # gunicorn trusts Unix socket peers as proxies; the portal turns that trust off.
    answer = served.request(
        "GET",
        "/en/",
        headers={
            "X-Forwarded-Proto": "https",
            "SCRIPT_NAME": "/elsewhere",
            "X-Forwarded-Host": "x.example",
        },
    )
    assert answer.status == 200
    assert 'href="/en/submit"' in answer.text


BAD_REQUESTS = {
    "oversized header": (
        b"GET /en/ HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        431,
    ),
    "too many headers": (
        b"GET /en/ HTTP/1.1\r\nHost: localhost\r\n"
        + b"".join(b"X-%d: 1\r\n" % i for i in range(60))
        + b"\r\n",
        431,
    ),
    "long request line": (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414),
    "invented method": (b"BREW /en/ HTTP/1.1\r\nHost: localhost\r\n\r\n", 405),
    "malformed method": (b"g\xc3\xa9t /en/ HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
    "not HTTP": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 400),
    "method the route does not use": (
        b"PUT /en/submit HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
        405,
    ),
    "delete a page": (b"DELETE /en/ HTTP/1.1\r\nHost: localhost\r\n\r\n", 405),
    "unknown host": (b"GET /en/ HTTP/1.1\r\nHost: portal.example.org\r\n\r\n", 400),
    "no host": (b"GET /en/ HTTP/1.0\r\n\r\n", 400),
    "dot-dot": (b"GET /static/../portal/config.py HTTP/1.1\r\nHost: localhost\r\n\r\n", 404),
    "encoded dot-dot": (
        b"GET /static/%2e%2e/portal/config.py HTTP/1.1\r\nHost: localhost\r\n\r\n",
        404,
    ),
    "encoded slashes": (
        b"GET /static/..%2f..%2fsetup.cfg HTTP/1.1\r\nHost: localhost\r\n\r\n",
        404,
    ),
    "backslashes": (b"GET /static/..\\..\\setup.cfg HTTP/1.1\r\nHost: localhost\r\n\r\n", 404),
    "bad content length": (
        b"POST /en/submit HTTP/1.1\r\nHost: localhost\r\nContent-Length: -5\r\n\r\n",
        400,
    ),
    "two content lengths": (
        b"POST /en/follow-up HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
    ),
    "smuggled chunked": (
        b"POST /en/follow-up HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "too large": (
        b"POST /en/submit HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\n"
        b"Content-Length: 999999999999\r\n\r\n",
        413,
    ),
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_bad_input_gets_a_short_4xx_and_others_are_served(served: Served, name: str) -> None:
    data, expected = BAD_REQUESTS[name]
    started = time.monotonic()
    raw = served.raw(data)
    assert status_of(raw) == expected, raw[:300]
    assert time.monotonic() - started < 3
    head, _, body = raw.partition(b"\r\n\r\n")
    assert len(body) < 20_000
    assert b"Traceback" not in body
    # The answer does not repeat what was refused.
    assert b"aaaaaaaaaa" not in body
    assert b"content-security-policy: default-src 'none'" in head.lower()
    assert served.request("GET", "/en/").status == 200


def test_a_405_says_which_methods_the_page_takes(served: Served) -> None:
    answer = served.request("PUT", "/en/submit", body=b"")
    assert answer.status == 405
    assert set(answer.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def _start_stalled_body(served: Served, sent: int = 50_000) -> tuple[socket.socket, float]:
    """A report whose attachment stops after `sent` bytes; the socket and when it stopped."""
    token, cookie = csrf(served)
    head, _tail, content_type = multipart(
        {**REPORT, "csrf_token": token}, {"attachments": ("a.bin", 1_000_000)}
    )
    sock = connect(served.sockets["public"], 30)
    sock.sendall(
        (
            f"POST /en/submit HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(head) + 1_000_100}\r\n\r\n"
        ).encode()
        + head
        + os.urandom(sent)
    )
    return sock, time.monotonic()


def test_a_client_that_stalls_mid_body_is_dropped_without_blocking_others(
    served: Served,
) -> None:
    stalled = [_start_stalled_body(served) for _ in range(3)]
    # Meanwhile the site answers everyone else at once.
    with ThreadPoolExecutor(8) as pool:
        started = time.monotonic()
        answers = list(pool.map(lambda _: served.request("GET", "/en/").status, range(16)))
        assert answers == [200] * 16
        assert time.monotonic() - started < READ_TIMEOUT
    for sock, since in stalled:
        with sock:
            raw = read_to_end(sock)
            waited = time.monotonic() - since
        assert status_of(raw) == 408
        assert b"Traceback" not in raw
        assert READ_TIMEOUT * 0.8 < waited < READ_TIMEOUT + 3
    # Nothing of the abandoned uploads stays in the staging folder.
    incoming = Path(served.env["PORTAL_DATA_DIR"]) / "sealed" / ".incoming"
    assert list(incoming.iterdir()) == []


def test_a_client_that_stalls_in_its_headers_gets_a_bare_408(served: Served) -> None:
    with connect(served.sockets["public"], 30) as sock:
        since = time.monotonic()
        sock.sendall(b"GET /en/ HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow")
        raw = read_to_end(sock)
        waited = time.monotonic() - since
    assert status_of(raw) == 408
    assert b"content-security-policy: default-src 'none'" in raw.lower()
    assert READ_TIMEOUT * 0.8 < waited < READ_TIMEOUT + 3


def test_a_trickling_client_is_dropped_once_it_falls_behind_the_minimum_rate(
    served: Served,
) -> None:
    # Nothing of the body yet: the allowance is the read timeout, plus what the head bought.
    sock, since = _start_stalled_body(served, sent=0)
    with sock:
        sock.settimeout(0.2)
        # A few bytes every tenth of a second: never silent, far below the minimum rate.
        while time.monotonic() - since < READ_TIMEOUT + 6:
            try:
                sock.sendall(b"x" * 10)
            except OSError:
                break
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break
            except (TimeoutError, BlockingIOError):
                pass
            time.sleep(0.1)
        waited = time.monotonic() - since
        sock.settimeout(5)
        raw = read_to_end(sock)
    assert status_of(raw) == 408
    assert waited < READ_TIMEOUT + 4


def test_an_upload_at_a_steady_pace_completes(served: Served) -> None:
    upload = paced_upload(served, UPLOAD_BYTES, UPLOAD_RATE, REPORT)
    assert upload.status == 200, upload.body[:500]
    assert re.search(r'class="receipt-number"', upload.body)
    # The pace held: the test measured what it meant to.
    assert upload.seconds > 0.8 * UPLOAD_BYTES / UPLOAD_RATE


# ---------------------------------------------------------------------------------------------
# Starting and stopping


def test_the_demo_serves_loopback_ports_and_stops_when_a_site_dies(tmp_path: Path) -> None:
    env = deployment(tmp_path, PORTAL_HOSTNAMES="portal.example.onion")
    ports = {"public": free_port(), "staff": free_port()}
    server = Served(tmp_path, env, ["--demo"], ports=ports).start()
    try:
        # Loopback names are accepted in the demo only.
        public = server.request("GET", "/en/", headers={"Host": f"127.0.0.1:{ports['public']}"})
        assert public.status == 200
        assert server.request("GET", "/login", site="staff").status in (200, 303)
        # The supervisor announces the sites once both answer, which may be just after this
        # test saw them answer.
        deadline = time.monotonic() + 15
        while "A demonstration on loopback" not in server.output.read_text():
            assert time.monotonic() < deadline, server.output.read_text()
            time.sleep(0.1)
        assert server.process is not None
        arbiters = children(server.process.pid)
        assert len(arbiters) == 2
        # One site dying stops the other, and the exit says something went wrong.
        os.kill(arbiters[0], signal.SIGKILL)
        code = server.process.wait(timeout=45)
    finally:
        server.stop()
    assert code != 0
    assert not any(_alive(pid) for pid in arbiters)


def _alive(pid: int) -> bool:
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False


def test_the_wsgi_entry_points_build_each_site_alone(initialised: dict[str, str]) -> None:
    script = (
        "import portal.wsgi as w; app = w.public; "
        "print(type(app).__name__, app.app.name, 'staff' in vars(w))"
    )
    done = subprocess.run(
        [*PORTAL[:1], "-c", script],
        env=full_env(initialised),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Hardened", "portal_public", "False"]
