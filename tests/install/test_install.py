"""The portal installed as its users install it: from the wheelhouse, with no index, elsewhere.

One wheel and wheelhouse are built per run (`tools/dist.py`, what `make dist` runs). Two fresh
virtual environments outside the checkout get the two profiles with pip's `--no-index` and
`--require-hashes`, and every command runs from a folder that is neither the checkout nor the
environment: the offline half seals and opens a case and cannot import the web stack; the server
half serves every public page in six languages with its stylesheet and script, and takes a
report with scripts off.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ("ar", "zh", "en", "fr", "ru", "es")
PAGES = ("", "submit", "follow-up", "key", "safety")
PASSPHRASE = "an offline passphrase long enough for the key ceremony"

pytestmark = [pytest.mark.install, pytest.mark.slow]


@dataclass(frozen=True)
class Install:
    """A virtual environment with one profile installed, and a working folder away from both."""

    prefix: Path
    workdir: Path

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a program of the environment in the working folder, with no checkout in sight."""
        program = args[0] if "/" in args[0] else str(self.prefix / "bin" / args[0])
        return subprocess.run(
            [program, *args[1:]],
            cwd=self.workdir,
            env={**clean_env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def clean_env() -> dict[str, str]:
    """This process's environment less what would point Python or the portal at the checkout."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PORTAL_", "PYTHON", "VIRTUAL_ENV", "PIP_"))
    }


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and wheelhouse, built once for this module as `make dist` builds them."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "dist.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def install(tmp_path_factory: pytest.TempPathFactory, house: Path, profile: str) -> Install:
    """A fresh environment with `profile` installed from `house` alone, hashes checked."""
    prefix = tmp_path_factory.mktemp(f"venv-{profile}")
    venv.create(prefix, with_pip=True, clear=True)
    workdir = tmp_path_factory.mktemp(f"work-{profile}")
    target = Install(prefix, workdir)
    result = target.run(
        "pip", "install", "--disable-pip-version-check", "--quiet", "--no-index",
        "--find-links", str(house), "--require-hashes",
        "-r", str(house / f"requirements-{profile}.txt"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return target


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory, dist: Path) -> Install:
    """The base profile: what the team's offline machine and relays install."""
    return install(tmp_path_factory, dist / "wheelhouse", "offline")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, dist: Path) -> Install:
    """The server profile."""
    return install(tmp_path_factory, dist / "wheelhouse", "server")


def test_the_wheel_carries_what_the_sites_serve(dist: Path) -> None:
    import zipfile

    (wheel,) = dist.glob("reprisals_portal-*-py3-none-any.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "portal/templates/base.html",
        "portal/templates/public/submit.html",
        "portal/templates/staff/login.html",
        "portal/static/portal.css",
        "portal/static/staff.css",
        "portal/static/portal.js",
        *(f"portal/translations/{code}/LC_MESSAGES/messages.mo" for code in LANGUAGES),
    ):
        assert needed in names, needed
    assert not any(name.startswith(("tests/", "bench/", "tools/")) for name in names)
    sums = (dist / "wheelhouse" / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    listed = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in sums}
    assert wheel.name in listed
    for name, digest in listed.items():
        data = (dist / "wheelhouse" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name


def test_the_offline_profile_seals_and_opens_a_case_without_the_web_stack(
    offline: Install,
) -> None:
    work = offline.workdir
    (work / "passphrase.txt").write_text(PASSPHRASE + "\n", encoding="utf-8")
    (work / "photo.jpg").write_bytes(os.urandom(200_000))
    steps = [
        ("portal", "keygen", "--private", "team.key", "--public", "team.pub",
         "--passphrase-file", "passphrase.txt"),
        ("portal", "fingerprint", "team.pub"),
        ("portal", "seal", "--to", "team.pub", "--out", "case.sealed",
         "--field", "description=Detained after speaking in Geneva.",
         "--field", "consent_of=self", "--field", "consent_share_un=yes",
         "--field", "consent_raise=no", "--field", "consent_report=anonymous",
         "--field", "consent_contact=portal", "photo.jpg"),
        ("portal", "decrypt", "--key", "team.key", "--passphrase-file", "passphrase.txt",
         "--out", "cases", "case.sealed"),
    ]  # fmt: skip
    for step in steps:
        result = offline.run(*step)
        assert result.returncode == 0, f"{step}: {result.stdout}{result.stderr}"
    (folder,) = [path for path in (work / "cases").iterdir() if path.is_dir()]
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["fields"]["description"] == "Detained after speaking in Geneva."
    (attachment,) = (folder / "attachments").iterdir()
    assert attachment.read_bytes() == (work / "photo.jpg").read_bytes()

    for module in ("flask", "sqlalchemy", "gunicorn", "flask_limiter", "psycopg"):
        imported = offline.run("python", "-c", f"import {module}")
        assert imported.returncode != 0, module
        assert "ModuleNotFoundError" in imported.stderr, module
    for command in (["serve", "--port", "8080"], ["init"], ["staff", "list"]):
        result = offline.run("portal", *command)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "pip install 'reprisals-portal[server]'" in lines[0]


def test_a_wheelhouse_with_a_changed_file_is_refused(
    tmp_path: Path, dist: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    house = tmp_path / "wheelhouse"
    shutil.copytree(dist / "wheelhouse", house)
    (click,) = house.glob("click-*.whl")
    with click.open("ab") as stream:
        stream.write(b"\0")
    prefix = tmp_path / "venv"
    venv.create(prefix, with_pip=True)
    target = Install(prefix, tmp_path)
    result = target.run(
        "pip", "install", "--disable-pip-version-check", "--no-index", "--find-links", str(house),
        "--require-hashes", "-r", str(house / "requirements-offline.txt"),
    )  # fmt: skip
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stdout + result.stderr
    assert target.run("python", "-c", "import portal").returncode != 0


def free_port() -> int:
    """A loopback port that nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def deployment(server: Install, name: str) -> dict[str, str]:
    """A deployment in the server's working folder, made with the installed commands."""
    folder = server.workdir / name
    folder.mkdir()
    (folder / "pass.txt").write_text(PASSPHRASE + "\n", encoding="utf-8")
    made = server.run(
        "portal", "keygen", "--private", str(folder / "team.key"), "--public",
        str(folder / "team.pub"), "--passphrase-file", str(folder / "pass.txt"),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    env = {
        "PORTAL_DATA_DIR": str(folder / "data"),
        "PORTAL_TEAM_PUBLIC_KEY": str(folder / "team.pub"),
        "PORTAL_RECEIPT_COST": "min",
    }
    init = server.run("portal", "init", env=env)
    assert init.returncode == 0, init.stderr
    return env


@pytest.fixture(scope="module")
def served(server: Install) -> Iterator[tuple[int, int]]:
    """`portal serve` from the server install: (public port, staff port)."""
    env = deployment(server, "served")
    public, staff = free_port(), free_port()
    log = server.workdir / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(server.prefix / "bin" / "portal"), "serve", "--port", str(public),
             "--staff-port", str(staff)],
            cwd=server.workdir,
            env={**clean_env(), **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if get(public, "/en/")[0] == 200 and get(staff, "/login")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("portal serve did not answer within 60 s")
        yield public, staff
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request to loopback: status, headers (lower-case names) and body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def get(port: int, path: str) -> tuple[int, bytes]:
    """GET a path: status and body."""
    status, _headers, body = request(port, "GET", path)
    return status, body


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_installed_server_answers_every_public_page(served: tuple[int, int], lang: str) -> None:
    public, _staff = served
    status, chooser = get(public, "/")
    assert status == 200
    script = get(public, "/static/portal.js")
    assert script[0] == 200
    sri = "sha384-" + base64.b64encode(hashlib.sha384(script[1]).digest()).decode()
    for page in PAGES:
        status, body = get(public, f"/{lang}/{page}")
        assert status == 200, (lang, page)
        html = body.decode("utf-8")
        for sheet in re.findall(r'<link rel="stylesheet" href="([^"]+)"', html) or ["missing"]:
            assert get(public, sheet)[0] == 200, sheet
        assert 'href="/static/portal.css"' in html
        for integrity in re.findall(r'<script src="/static/portal.js" integrity="([^"]+)"', html):
            assert integrity == sri
    submit = get(public, f"/{lang}/submit")[1].decode("utf-8")
    assert f'integrity="{sri}"' in submit
    assert b"portal.css" in chooser


def test_the_installed_staff_site_answers(served: tuple[int, int]) -> None:
    _public, staff = served
    status, body = get(staff, "/login")
    assert status == 200
    assert b"staff.css" in body


def test_the_installed_server_takes_a_report_with_scripts_off(served: tuple[int, int]) -> None:
    public, _staff = served
    status, headers, form = request(public, "GET", "/en/submit")
    assert status == 200
    cookie = headers["set-cookie"].split(";", 1)[0]
    match = re.search(rb'name="csrf_token" value="([^"]+)"', form)
    assert match
    fields = {
        "csrf_token": match.group(1).decode(),
        "description": "Banned from travel after speaking at the Council.",
        "consent_of": "self",
        "consent_raise": "no",
        "consent_report": "anonymous",
        "consent_share_un": "yes",
        "consent_contact": "portal",
    }
    # As a browser with scripts off sends the form: multipart, with an attachment.
    boundary = "----portal-install-test"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; '
        'filename="note.txt"\r\nContent-Type: text/plain\r\n\r\nwhat was seen\r\n'
    )
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    status, _headers, page = request(
        public,
        "POST",
        "/en/submit",
        body=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "Cookie": cookie},
    )
    assert status == 200, page[:500]
    assert re.search(rb'class="receipt-number"[^>]*><code>[\d ]{29}</code>', page)


def test_an_install_without_its_catalogues_will_not_serve(server: Install) -> None:
    site_packages = next((server.prefix / "lib").glob("python3*/site-packages"))
    catalogue = site_packages / "portal" / "translations" / "fr" / "LC_MESSAGES" / "messages.mo"
    aside = catalogue.with_suffix(".aside")
    env = deployment(server, "incomplete")
    catalogue.rename(aside)
    try:
        started = time.monotonic()
        result = server.run("portal", "serve", "--port", str(free_port()), env=env, timeout=60)
        assert time.monotonic() - started < 30
    finally:
        aside.rename(catalogue)
    assert result.returncode == 1
    assert "translations/fr/LC_MESSAGES/messages.mo" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
