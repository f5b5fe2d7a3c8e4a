"""The whole journey through real onion addresses, on a private Tor network on loopback.

A submitter's tor client resolves the public site's onion name (`socks5h`: the name goes to
tor, never to a resolver here), and a circuit through the private network reaches the tor
that runs `portal tor-config`'s torrc, which hands the stream to `portal serve` on its Unix
socket. The staff site answers only a client holding a key it lists. Every journey ends on the
offline machine: exported, decrypted and compared with what was sent. Last, no tor log and no
portal log holds anything a client sent.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import nacl.signing
import pytest
from browser.harness import Firefox, firefox_unavailable

from portal.formats import crypto
from portal.serve import torconfig

from .conftest import OnionClient, OnionPortal, receipt_of, text
from .torlab import SERVICE_DROPPED_KEYWORDS, SocksError, TorError, http_request

pytestmark = [pytest.mark.onion, pytest.mark.slow]

REPORT_FIELDS = {
    "consent_of": "self",
    "consent_raise": "no",
    "consent_report": "anonymous",
    "consent_share_un": "yes",
    "consent_contact": "portal",
}
# What a browser-sealed upload may take on a loaded machine; a form post is quicker.
SEND_TIMEOUT = 120.0


def marker() -> str:
    """A string that appears nowhere unless a test put it there."""
    return f"ONION{secrets.token_hex(6).upper()}"


def attachment(mark: str, size: int) -> bytes:
    """Random bytes with the marker in the middle."""
    half = (size - len(mark)) // 2
    return os.urandom(half) + mark.encode() + os.urandom(size - half - len(mark))


def random_onion() -> str:
    """A well-formed v3 onion address (checksum and all) that no service here has."""
    key = bytes(nacl.signing.SigningKey.generate().verify_key)
    checksum = hashlib.sha3_256(b".onion checksum" + key + b"\x03").digest()[:2]
    name = base64.b32encode(key + checksum + b"\x03").decode().lower() + ".onion"
    return torconfig.check_onion(name)


def refusal(socks_port: int, host: str, timeout: float = 60) -> tuple[int, float]:
    """The SOCKS error tor gives for host once it has the descriptor (0xF0: not yet fetched),
    and the seconds it took."""
    started = time.monotonic()
    while True:
        try:
            response = http_request(socks_port, host, "GET", "/login", timeout=30)
        except SocksError as error:
            if error.code != 0xF0 or time.monotonic() > started + timeout:
                return error.code, time.monotonic() - started
        else:
            pytest.fail(f"{host} answered {response.status} to a client without its key")
        time.sleep(1)


# --- The deployment as tor runs it ---------------------------------------------------------------


def test_tor_runs_portal_tor_config_s_own_torrc(onion_portal: OnionPortal) -> None:
    """The service host's torrc is the generated one, less only the lines that would escape
    the test; the onion names are those tor wrote, and the sites answer to them alone."""
    used = (onion_portal.net.workdir / "portal" / "torrc").read_text()
    generated = onion_portal.torrc.splitlines()
    keywords = [line.split(None, 1)[0] if line.strip() else "" for line in generated]
    dropped = [word for word in keywords if word.lower() in SERVICE_DROPPED_KEYWORDS]
    assert sorted(dropped) == ["DataDirectory", "Log", "SocksPort"]
    kept = [line for line, word in zip(generated, keywords, strict=True) if word not in dropped]
    assert used.startswith("\n".join(kept) + "\n")
    assert "HiddenServicePoWDefensesEnabled 1" in used
    data = onion_portal.folder / "tor-data"
    assert (data / "reprisals-public" / "hostname").read_text().strip() == (
        onion_portal.public_onion
    )
    assert (data / "reprisals-staff" / "hostname").read_text().strip() == onion_portal.staff_onion
    authorised = list((data / "reprisals-staff" / "authorized_clients").iterdir())
    assert [p.name for p in authorised] == [f"{onion_portal.staff.name}.auth"]
    assert onion_portal.env["PORTAL_HOSTNAMES"] == (
        f"{onion_portal.public_onion},{onion_portal.staff_onion}"
    )
    assert "PORTAL_DEMO" not in onion_portal.env
    logs = onion_portal.net.logs()
    assert set(logs) >= {"auth0", "relay0", "portal", "visitor", onion_portal.staff.name}
    assert "Bootstrapped 100%" in logs[onion_portal.staff.name]


def test_headers_through_the_onion(onion_portal: OnionPortal) -> None:
    """The security headers arrive intact through tor, and nothing names the software."""
    visitor = onion_portal.visitor()
    staff = onion_portal.staff_client()
    for client, path in ((visitor, "/en/"), (visitor, "/static/portal.css"), (staff, "/login")):
        response = client.get(path)
        assert response.status == 200, path
        headers = response.headers
        assert headers["Content-Security-Policy"].startswith("default-src 'none'"), path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"
        names = {name.lower() for name in headers}
        assert not names & {"server", "x-powered-by", "etag", "onion-location"}, path
    page = text(visitor.get("/en/"))
    fingerprint = crypto.fingerprint(
        crypto.load_public_key(Path(onion_portal.env["PORTAL_TEAM_PUBLIC_KEY"]))
    )
    assert fingerprint in page


def test_the_host_check_refuses_any_other_name(onion_portal: OnionPortal) -> None:
    """Through the right onion, a request naming another host gets the bare 400 on both
    sites; the right name (with or without the port) is served."""
    sites = (
        (onion_portal.visitor_socks, onion_portal.public_onion, "/en/"),
        (onion_portal.staff_socks, onion_portal.staff_onion, "/login"),
    )
    for socks, onion, path in sites:
        for wrong in (random_onion(), "localhost", "127.0.0.1", f"{onion}.example.org"):
            answer = http_request(socks, onion, "GET", path, {"Host": wrong})
            assert (answer.status, answer.body) == (400, b"Bad request.\n"), wrong
            assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
        for right in (onion, f"{onion}:80", onion.upper()):
            assert http_request(socks, onion, "GET", path, {"Host": right}).status == 200


def test_the_staff_site_answers_only_its_key_holders(onion_portal: OnionPortal) -> None:
    """Without a client key tor cannot even find the staff site; with a key it does not list,
    neither; with the staff member's key the sign-in page answers."""
    code, missing_seconds = refusal(onion_portal.visitor_socks, onion_portal.staff_onion)
    assert code == 0xF4, f"expected missing client authorisation, got 0x{code:02X}"
    code, wrong_seconds = refusal(onion_portal.stranger_socks, onion_portal.staff_onion)
    assert code == 0xF5, f"expected wrong client authorisation, got 0x{code:02X}"
    # Once the descriptor is published, a refusal is quick and says why.
    assert missing_seconds < 20
    assert wrong_seconds < 20
    answer = onion_portal.staff_client().get("/login")
    assert answer.status == 200
    assert 'name="passphrase"' in text(answer)
    # The staff member's client reaches the public site like anyone else's.
    assert OnionClient(onion_portal.staff_socks, onion_portal.public_onion).get("/en/").status == (
        200
    )


# --- The staff member, signed in through the staff onion ---------------------------------------


class StaffSession:
    """The staff member signed in to the staff site through her tor client."""

    def __init__(self, portal: OnionPortal) -> None:
        """Sign in with passphrase and TOTP code."""
        self.portal = portal
        self.client = portal.staff_client()
        token = self.client.csrf("/login")
        answer = self.client.post(
            "/login",
            fields={
                "csrf_token": token,
                "name": portal.staff.name,
                "passphrase": portal.staff.passphrase,
                "code": portal.staff.code(),
            },
        )
        assert answer.status == 303, text(answer)
        assert answer.headers["Location"].endswith("/")

    def download_pending(self) -> Path:
        """Download the bundle of what is new, as the team does before going offline."""
        token = self.client.csrf("/")
        answer = self.client.post("/download", fields={"csrf_token": token, "scope": "pending"})
        assert answer.status == 200, text(answer)
        assert answer.headers["Content-Type"].startswith("application/x-tar")
        path = self.portal.folder / "offline" / f"download-{secrets.token_hex(4)}.tar"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(answer.body)
        return path

    def upload_reply(self, case_folder: Path, message: str) -> None:
        """`portal reply` offline, then the reply file uploaded on the staff site."""
        path = self.portal.folder / "offline" / f"reply-{secrets.token_hex(4)}.tar"
        self.portal.portal(
            "reply", *self.portal.offline_key(), "--case", str(case_folder),
            "--out", str(path), "--message", message,
        )  # fmt: skip
        token = self.client.csrf("/reply")
        answer = self.client.post(
            "/reply",
            fields={"csrf_token": token},
            files=[("reply_file", "reply.tar", "application/x-tar", path.read_bytes())],
        )
        assert answer.status == 200, text(answer)
        assert message not in text(answer)


@pytest.fixture(scope="module")
def staff_session(onion_portal: OnionPortal) -> StaffSession:
    """One sign-in for the module: a TOTP code is good for one sign-in only."""
    return StaffSession(onion_portal)


# --- The report journey without JavaScript -------------------------------------------------------


def test_report_journey_without_javascript(
    onion_portal: OnionPortal, staff_session: StaffSession
) -> None:
    """Report with an attachment, receipt; the staff download it through the staff onion and
    it opens offline as sent; a reply goes up; the submitter reads it with the receipt and
    adds information with another file, which `portal export` brings back whole."""
    mark = marker()
    description = f"{mark} I was stopped at the airport after the session. — مرحبا 报复"
    evidence = attachment(f"{mark}-FILE", 300_000)
    onion_portal.sent += [mark, f"{mark}-FILE"]

    visitor = onion_portal.visitor()
    assert "United Nations" in text(visitor.get("/en/"))
    token = visitor.csrf("/en/submit")
    answer = visitor.post(
        "/en/submit",
        fields={**REPORT_FIELDS, "description": description, "csrf_token": token},
        files=[("attachments", f"{mark}-letter.pdf", "application/pdf", evidence)],
    )
    assert answer.status == 200, text(answer)[:2000]
    receipt = receipt_of(answer)
    assert 'data-sealed-by="server"' in text(answer)
    onion_portal.sent += [receipt, receipt.replace(" ", "")]

    # The team downloads through the staff onion and opens it offline.
    [report] = onion_portal.decrypt(staff_session.download_pending())
    assert (report["kind"], report["sealed_by"], report["locale"]) == ("report", "server", "en")
    assert report["fields"] == {**REPORT_FIELDS, "description": description}
    assert [(f["name"], f["type"], f["size"]) for f in report["files"]] == [
        (f"{mark}-letter.pdf", "application/pdf", len(evidence))
    ]
    assert report["attachments"][f"{mark}-letter.pdf"] == evidence

    reply = f"Reply {mark}-REPLY: thank you, we have raised it."
    onion_portal.sent.append(f"{mark}-REPLY")
    staff_session.upload_reply(report["folder"], reply)

    # The submitter comes back with the receipt, on a new visit.
    later = onion_portal.visitor()
    token = later.csrf("/en/follow-up")
    answer = later.post(
        "/en/follow-up", fields={"csrf_token": token, "receipt": receipt, "step": "open"}
    )
    assert answer.status == 200, text(answer)[:2000]
    assert reply in text(answer)
    token = re.findall(r'name="csrf_token" value="([^"]+)"', text(answer))[-1]
    more = f"{mark}-MORE They came to my home the next week."
    photo = attachment(f"{mark}-PHOTO", 70_000)
    onion_portal.sent += [f"{mark}-MORE", f"{mark}-PHOTO"]
    answer = later.post(
        "/en/follow-up",
        fields={"csrf_token": token, "step": "add", "receipt": receipt, "description": more},
        files=[("attachments", "door.jpg", "image/jpeg", photo)],
    )
    assert answer.status == 200, text(answer)[:2000]
    assert 'data-sealed-by="server"' in text(answer)

    opened = onion_portal.export_and_decrypt()
    assert sorted(r["kind"] for r in opened) == ["follow-up", "reply"]
    [follow_up] = [r for r in opened if r["kind"] == "follow-up"]
    [team_copy] = [r for r in opened if r["kind"] == "reply"]
    assert follow_up["case"] == report["case"] == team_copy["case"]
    assert follow_up["fields"] == {"description": more}
    assert follow_up["attachments"] == {"door.jpg": photo}
    assert team_copy["fields"] == {"message": reply}


# --- The same journey in Firefox, loading the onion itself ---------------------------------------


@pytest.fixture(params=["safest", "safer"])
def firefox(request: pytest.FixtureRequest, onion_portal: OnionPortal) -> Iterator[Firefox]:
    """Firefox ESR at a Tor Browser security level, every request through the visitor's tor
    client with remote DNS, so that only tor ever resolves the onion name."""
    if reason := firefox_unavailable():
        pytest.skip(reason)
    with Firefox(request.param, socks_proxy=("127.0.0.1", onion_portal.visitor_socks)) as browser:
        assert browser.get_pref("network.proxy.socks_remote_dns") is True
        assert browser.get_pref("network.proxy.socks_port") == onion_portal.visitor_socks
        yield browser


def test_report_journey_in_firefox(
    firefox: Firefox, onion_portal: OnionPortal, staff_session: StaffSession, tmp_path: Path
) -> None:
    """Landing page, report with an attachment, receipt, reply, follow-up, at Safest (the
    server seals) and at Safer (the browser seals), each opened offline as sent."""
    sealing = "browser" if firefox.javascript_enabled else "server"
    site = f"http://{onion_portal.public_onion}"
    mark = marker()
    onion_portal.sent += [mark, f"{mark}-FILE", f"{mark}-MORE", f"{mark}-LATER"]

    firefox.goto(f"{site}/en/")
    assert firefox.url.startswith(f"{site}/en/")
    assert "United Nations" in firefox.text("h1")

    firefox.goto(f"{site}/en/submit")
    description = f"{mark} Threatened by phone after the review. — شكرا"
    firefox.fill("#description", description)
    for name, value in REPORT_FIELDS.items():
        firefox.check(f'input[name="{name}"][value="{value}"]')
    evidence = attachment(f"{mark}-FILE", 150_000)
    path = tmp_path / "recording.bin"
    path.write_bytes(evidence)
    firefox.set_files("#attachments", [path])
    firefox.submit_and_wait(
        "#report-form button[type=submit]", wait_for=".receipt-number code", timeout=SEND_TIMEOUT
    )
    receipt = firefox.text(".receipt-number code")
    assert len(receipt.replace(" ", "")) == 25, receipt
    assert firefox.attribute("[data-sealed-by]", "data-sealed-by") == sealing
    onion_portal.sent += [receipt, receipt.replace(" ", "")]

    [report] = onion_portal.export_and_decrypt()
    assert (report["kind"], report["sealed_by"]) == ("report", sealing)
    assert report["fields"] == {**REPORT_FIELDS, "description": description}
    assert [(f["name"], f["size"]) for f in report["files"]] == [("recording.bin", len(evidence))]
    assert report["attachments"]["recording.bin"] == evidence

    reply = f"Reply {mark}-REPLY: thank you."
    onion_portal.sent.append(f"{mark}-REPLY")
    staff_session.upload_reply(report["folder"], reply)

    firefox.goto(f"{site}/en/follow-up")
    firefox.fill("#receipt", receipt)
    firefox.submit_and_wait("button[type=submit]", wait_for="#followup-form", timeout=60)
    assert firefox.text(".reply .message").strip() == reply
    more = f"{mark}-MORE And again yesterday."
    later = attachment(f"{mark}-LATER", 40_000)
    path = tmp_path / "later.bin"
    path.write_bytes(later)
    firefox.fill("#description", more)
    firefox.set_files("#attachments", [path])
    firefox.submit_and_wait(
        "#followup-form button[type=submit]", wait_for="[data-sealed-by]", timeout=SEND_TIMEOUT
    )
    assert firefox.attribute("[data-sealed-by]", "data-sealed-by") == sealing

    opened = onion_portal.export_and_decrypt()
    assert sorted(r["kind"] for r in opened) == ["follow-up", "reply"]
    [follow_up] = [r for r in opened if r["kind"] == "follow-up"]
    assert follow_up["case"] == report["case"]
    assert follow_up["sealed_by"] == sealing
    assert follow_up["fields"] == {"description": more}
    assert follow_up["attachments"] == {"later.bin": later}


# --- Afterwards -----------------------------------------------------------------------------------


def test_no_log_and_no_stored_file_holds_what_a_client_sent(onion_portal: OnionPortal) -> None:
    """After the journeys, no tor log, no portal log (errors, access, output) and no file the
    server keeps holds any marker, receipt or passphrase that a client sent."""
    journeys = [s for s in onion_portal.sent if s.startswith("ONION")]
    if not journeys:
        pytest.skip("no journey ran in this session, so no client sent anything to look for")
    logs = {f"tor {name}": log for name, log in onion_portal.net.logs().items()}
    logs["portal serve"] = onion_portal.served.logs()
    assert onion_portal.served.access_log.exists()
    assert "POST /<lang>/submit" in logs["portal serve"]
    for name, log in logs.items():
        leaked = [s for s in onion_portal.sent if s.lower() in log.lower()]
        assert not leaked, f"the {name} log holds {leaked}"

    stored = [
        path
        for path in (onion_portal.folder / "data").rglob("*")
        if path.is_file() and "tor-clients" not in path.parts
    ]
    stored += list(onion_portal.folder.glob("portal.sqlite3*"))
    assert any("sealed" in path.parts for path in stored)
    for path in stored:
        data = path.read_bytes()
        leaked = [s for s in onion_portal.sent if s.encode() in data]
        assert not leaked, f"{path} holds {leaked}"


def test_the_launcher_reports_a_torrc_that_tor_refuses(onion_portal: OnionPortal) -> None:
    """A torrc tor refuses ends in TorError with tor's own words. (Last: the network then
    holds a dead instance, which the launcher's waits would report.)"""
    with pytest.raises(TorError, match="NoSuchOption"):
        onion_portal.net.add_service_host("broken", "NoSuchOption 1\n")
