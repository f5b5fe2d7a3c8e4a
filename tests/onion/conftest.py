"""The portal as a real deployment behind real onion services, on a private Tor network.

One network and one deployment serve every test under tests/onion (the network alone takes
seconds to form), started for the first and stopped after the last: scoped to this package
rather than to the whole session, so that no tor and no server idles on while the rest of
the suite runs. The fixture does what the deployment guide says, in a temporary folder:

1. a team key pair, `portal init`, and a staff account made with `portal staff add`;
2. `portal tor-config --install-clients`: its torrc, taken as printed, starts the service
   host's tor; the launcher drops only the lines that would escape the test (data directory,
   log, user, fixed ports) and adds the private network's lines;
3. tor writes both onion names at once; `portal tor-config` runs again, reads the staff
   site's name and writes the staff member's `.auth_private` file, which goes (as if handed
   over) into the staff member's own tor client folder;
4. `portal serve` on the Unix sockets the torrc points at, with `PORTAL_HOSTNAMES` set to the
   two onion names, and nothing else: no loopback name, no demo mode;
5. three tor clients: a visitor's without any key, the staff member's with hers, and a
   stranger's with a key of their own that the staff site does not list.

It yields once the public site answers through the visitor's client and the staff site
through the staff member's. At the end it stops `portal serve` and every tor, each by its own
process id, even when a test failed, and then fails if any of their processes is still alive.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import nacl.public
import nacl.pwhash
import pyotp
import pytest
from browser.harness import group_alive
from click.testing import CliRunner, Result
from servers import Served

from portal.cli import main
from portal.formats import bundle, crypto

from .torlab import Response, TorNetwork, client_auth_private, http_request, missing_tools

PASSPHRASE = "offline machine passphrase for the onion tests"
STAFF_NAME = "amina"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
RECEIPT = re.compile(r'class="receipt-number"[^>]*><code>([\d ]+)</code>')


# --- HTTP through a tor client, with cookies ----------------------------------------------------


def multipart(
    fields: Sequence[tuple[str, str]], files: Sequence[tuple[str, str, str, bytes]]
) -> tuple[bytes, str]:
    """A multipart/form-data body of text fields and (field, file name, type, bytes) files."""
    boundary = f"onion-test-{uuid.uuid4().hex}"
    parts = []
    for name, value in fields:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, filename, content_type, data in files:
        parts.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@dataclass
class OnionClient:
    """One person's visits to one onion site through their tor client: a cookie jar and HTTP."""

    socks_port: int
    host: str
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        *,
        fields: Sequence[tuple[str, str]] | Mapping[str, str] = (),
        files: Sequence[tuple[str, str, str, bytes]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """One request with the jar's cookies; cookies the answer sets go into the jar."""
        sent = {"Accept-Language": "en-US, en", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if method == "POST":
            pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
            body, sent["Content-Type"] = multipart(pairs, files)
        response = http_request(self.socks_port, self.host, method, path, sent, body)
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response

    def get(self, path: str, **options: Any) -> Response:
        """GET path."""
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> Response:
        """POST a multipart form to path."""
        return self.request("POST", path, **options)

    def csrf(self, path: str) -> str:
        """Load a form page and return its CSRF token (its session cookie is kept)."""
        response = self.get(path)
        assert response.status == 200, f"GET {path}: {response.status}"
        found = CSRF.search(text(response))
        assert found, f"no CSRF token on {path}"
        return found.group(1)


def text(response: Response) -> str:
    """A response's body as text."""
    return response.body.decode("utf-8", errors="replace")


def receipt_of(response: Response) -> str:
    """The receipt shown on a receipt page."""
    found = RECEIPT.search(text(response))
    assert found, f"no receipt on the page ({response.status})"
    return found.group(1)


# --- The deployment -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffAccount:
    """A staff account as `portal staff add` printed it."""

    name: str
    passphrase: str
    totp_secret: str

    def code(self) -> str:
        """The current TOTP code."""
        return pyotp.TOTP(self.totp_secret).now()


@dataclass
class OnionPortal:
    """The running deployment, its onion names, the three tor clients and the offline key."""

    folder: Path
    env: dict[str, str]
    net: TorNetwork
    served: Served
    torrc: str
    public_onion: str
    staff_onion: str
    visitor_socks: int
    staff_socks: int
    stranger_socks: int
    staff: StaffAccount
    private_key: Path
    passphrase_file: Path
    # Everything a client sent that must appear in no log: markers, receipts, the passphrase.
    sent: list[str] = field(default_factory=list)
    opened_count: int = 0

    def visitor(self) -> OnionClient:
        """A new visitor of the public site (no cookies), through the client without keys."""
        return OnionClient(self.visitor_socks, self.public_onion)

    def staff_client(self) -> OnionClient:
        """A new visit to the staff site through the staff member's tor client."""
        return OnionClient(self.staff_socks, self.staff_onion)

    def portal(self, *arguments: str) -> Result:
        """Run a `portal` command with the deployment's environment; fail if it fails."""
        result = portal_command(self.env, arguments)
        assert result.exit_code == 0, f"portal {arguments[0]}: {result.output}"
        return result

    def offline_key(self) -> list[str]:
        """The options that open the team's private key on the offline machine."""
        return ["--key", str(self.private_key), "--passphrase-file", str(self.passphrase_file)]

    def decrypt(self, path: Path) -> list[dict[str, Any]]:
        """`portal decrypt` of a bundle: each opened record (team copies of replies too), in
        bundle order, with its attachments' bytes by file name."""
        self.opened_count += 1
        out = self.folder / "offline" / f"opened-{self.opened_count}"
        self.portal("decrypt", *self.offline_key(), "--out", str(out), str(path))
        with bundle.Reader(path) as reader:
            order = [entry.id for entry in reader.entries if entry.recipient != "submitter"]
        records = {}
        for found in out.rglob("report.json"):
            record = json.loads(found.read_text(encoding="utf-8"))
            record["folder"] = found.parent
            record["attachments"] = {
                item["name"]: (found.parent / item["saved_as"]).read_bytes()
                for item in record["files"]
            }
            records[record["id"]] = record
        return [records[i] for i in order]

    def export_and_decrypt(self) -> list[dict[str, Any]]:
        """`portal export` of what is new on the server, then `portal decrypt` offline."""
        path = self.folder / "offline" / f"export-{secrets.token_hex(4)}.tar"
        path.parent.mkdir(exist_ok=True)
        self.portal("export", "--out", str(path))
        return self.decrypt(path)


def portal_command(env: Mapping[str, str], arguments: Sequence[str]) -> Result:
    """`portal ARGUMENTS` in this process with exactly the deployment's `PORTAL_*` variables."""
    isolated: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PORTAL_")}
    return CliRunner().invoke(main, list(arguments), env={**isolated, **env})


def _team_keys(folder: Path) -> tuple[Path, Path, Path]:
    """The team's key files: public, private (cheap Argon2id, as the unit tests use), passphrase."""
    folder.mkdir(mode=0o700)
    secret, public = crypto.generate_keypair()
    public_path = folder / "team.pub"
    public_path.write_text(crypto.format_public_key_file(public, date.today()))
    private_path = folder / "team.key"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(crypto, "PASSPHRASE_OPSLIMIT", nacl.pwhash.argon2id.OPSLIMIT_MIN)
        patch.setattr(crypto, "PASSPHRASE_MEMLIMIT", nacl.pwhash.argon2id.MEMLIMIT_MIN)
        text_ = crypto.private_key_file_text(secret, PASSPHRASE.encode())
    crypto.write_new_file(private_path, text_.encode())
    passphrase_path = folder / "passphrase.txt"
    passphrase_path.write_text(PASSPHRASE + "\n")
    return public_path, private_path, passphrase_path


def _staff_account(env: Mapping[str, str]) -> StaffAccount:
    result = portal_command(env, ["staff", "add", STAFF_NAME, "--no-qr"])
    assert result.exit_code == 0, result.output
    passphrase = re.search(r"^Passphrase:\s+(.+)$", result.stdout, re.M)
    totp = re.search(r"^TOTP secret:\s+(\S+)$", result.stdout, re.M)
    assert passphrase, result.stdout
    assert totp, result.stdout
    return StaffAccount(STAFF_NAME, passphrase.group(1).strip(), totp.group(1))


def _tor_config(env: Mapping[str, str], options: Sequence[str]) -> tuple[str, str]:
    """`portal tor-config OPTIONS`: the torrc it prints and what it tells the operator."""
    result = portal_command(env, ["tor-config", *options])
    assert result.exit_code == 0, result.output
    return result.stdout, result.stderr


def _auth_dir(path: Path) -> Path:
    """A tor client's ClientOnionAuthDir: private to its owner, as tor insists."""
    path.mkdir(mode=0o700)
    return path


def _stop(served: Served | None, net: TorNetwork | None) -> list[str]:
    """Stop the server and the network side by side; say which processes outlived that."""
    problems = []
    with ThreadPoolExecutor(1) as pool:
        stopping = pool.submit(served.stop) if served is not None else None
        if net is not None:
            net.stop()
            net.stop()  # a second stop() does nothing
            # Each tor runs in its own session: its process group has its pid.
            problems += [f"tor {pid} still runs" for pid in net.pids if group_alive(pid)]
        code = stopping.result() if stopping is not None else 0
    if code != 0:
        problems.append(f"portal serve exited with status {code}")
    # portal serve, its two site processes and their workers share its process group.
    if served is not None and served.process is not None and group_alive(served.process.pid):
        problems.append(f"processes of portal serve (group {served.process.pid}) still run")
    return problems


@pytest.fixture(scope="package")
def onion_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OnionPortal]:
    """The portal served behind its two onion services on a private Tor network."""
    if reason := missing_tools():
        pytest.skip(f"no private Tor network here: {reason}")
    folder = tmp_path_factory.mktemp("onion")
    public_key, private_key, passphrase_file = _team_keys(folder / "keys")
    env = {
        "PORTAL_DATA_DIR": str(folder / "data"),
        "PORTAL_TEAM_PUBLIC_KEY": str(public_key),
        # Its own SQLite file: the shared test database is emptied by other tests.
        "PORTAL_DATABASE_URL": f"sqlite:///{folder / 'portal.sqlite3'}",
        "PORTAL_RECEIPT_COST": "min",
        "PORTAL_SOCKET_DIR": str(folder / "run"),
    }
    result = portal_command(env, ["init"])
    assert result.exit_code == 0, result.output
    staff = _staff_account(env)

    tor_data = folder / "tor-data"
    tor_data.mkdir(mode=0o700)
    options = ["--data-dir", str(tor_data), "--staff", staff.name]
    torrc, _told = _tor_config(env, [*options, "--install-clients"])

    net: TorNetwork | None = None
    served: Served | None = None
    try:
        net = TorNetwork(folder / "tor")
        net.start()
        public_onion, staff_onion = net.add_service_host("portal", torrc)

        # Run again now that tor made the staff site's name: the same torrc, and the
        # `.auth_private` line for a tor client.
        again, told = _tor_config(env, options)
        assert again == torrc
        assert staff_onion in told
        clients = Path(env["PORTAL_DATA_DIR"]) / "tor-clients"
        staff_auth = _auth_dir(folder / f"{staff.name}-auth")
        shutil.copy(clients / f"{staff.name}.auth_private", staff_auth)
        # Someone holding a key of their own, not one the staff site lists.
        stranger_auth = _auth_dir(folder / "stranger-auth")
        (stranger_auth / "stranger.auth_private").write_text(
            client_auth_private(staff_onion, bytes(nacl.public.PrivateKey.generate()))
        )

        served = Served(
            folder,
            {**env, "PORTAL_HOSTNAMES": f"{public_onion},{staff_onion}"},
            ["--access-log", str(folder / "access.log")],
        )
        # The server and the three clients start side by side: each mostly waits.
        with ThreadPoolExecutor(4) as pool:
            starting = pool.submit(served.start)
            visitor = pool.submit(net.add_client, "visitor")
            staff_client = pool.submit(net.add_client, staff.name, client_auth_dir=staff_auth)
            stranger = pool.submit(net.add_client, "stranger", client_auth_dir=stranger_auth)
            starting.result()
        portal = OnionPortal(
            folder=folder,
            env=served.env,
            net=net,
            served=served,
            torrc=torrc,
            public_onion=public_onion,
            staff_onion=staff_onion,
            visitor_socks=visitor.result(),
            staff_socks=staff_client.result(),
            stranger_socks=stranger.result(),
            staff=staff,
            private_key=private_key,
            passphrase_file=passphrase_file,
            sent=[staff.passphrase],
        )
        with ThreadPoolExecutor(2) as pool:
            public = pool.submit(net.wait_for_onion, portal.visitor_socks, public_onion, "/en/")
            staff_site = pool.submit(net.wait_for_onion, portal.staff_socks, staff_onion, "/login")
            assert public.result().status == 200
            assert staff_site.result().status == 200
        yield portal
    finally:
        problems = _stop(served, net)
    assert not problems, "; ".join(problems)
