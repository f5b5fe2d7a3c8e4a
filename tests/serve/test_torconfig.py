"""`portal tor-config`: a torrc that tor accepts, and the staff's client authorisation keys.

The torrc is checked by the real tor from Debian's packages (`make test` installs it when
running as root): `tor --verify-config`, then a tor started with the network off, which must
publish both services' addresses and load every staff key without a complaint.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import time
from datetime import date
from pathlib import Path

import nacl.public
import nacl.signing
import pytest
from click.testing import CliRunner, Result

from portal.cli import main
from portal.serve import torconfig

TOR = shutil.which("tor") or "/usr/sbin/tor"
needs_tor = pytest.mark.skipif(
    not os.access(TOR, os.X_OK), reason="tor is not installed (apt-get install tor)"
)
KEY = re.compile(r"[A-Z2-7]{52}")


def onion_address(seed: bytes = b"\x07" * 32) -> str:
    """A v3 onion address, made the way tor makes one."""
    public = bytes(nacl.signing.SigningKey(seed).verify_key)
    checksum = hashlib.sha3_256(b".onion checksum" + public + b"\x03").digest()[:2]
    return base64.b32encode(public + checksum + b"\x03").decode().lower() + ".onion"


def tor_config(env: dict[str, str], *args: str) -> Result:
    """Run `portal tor-config` with standard error kept apart."""
    return CliRunner().invoke(main, ["tor-config", *args], env=env)


@pytest.fixture
def layout(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    """The environment and the folders for one run: tor's data, sockets, client keys."""
    tor_data = tmp_path / "tor"
    tor_data.mkdir(mode=0o700)
    return {
        **env,
        "TOR_DATA": str(tor_data),
        "SOCKETS": str(tmp_path / "run"),
        "CLIENTS": str(tmp_path / "clients"),
    }


def run(layout: dict[str, str], *args: str) -> Result:
    """`portal tor-config` for the layout's folders."""
    env = {k: v for k, v in layout.items() if k.startswith("PORTAL_")}
    return tor_config(
        env,
        "--data-dir",
        layout["TOR_DATA"],
        "--socket-dir",
        layout["SOCKETS"],
        "--clients-dir",
        layout["CLIENTS"],
        *args,
    )


def lines(torrc: str) -> list[tuple[str, str]]:
    """A torrc as (keyword, value) pairs, comments dropped."""
    found = []
    for line in torrc.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, value = line.strip().partition(" ")
            found.append((keyword, value.strip()))
    return found


def services(torrc: str) -> dict[str, dict[str, list[str]]]:
    """Each HiddenServiceDir's options."""
    found: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for keyword, value in lines(torrc):
        if keyword == "HiddenServiceDir":
            current = found.setdefault(Path(value).name, {})
        elif keyword.startswith("HiddenService"):
            assert current is not None, f"{keyword} before any HiddenServiceDir"
            current.setdefault(keyword, []).append(value)
    return found


def test_the_torrc_serves_both_sites_with_the_defences_each_needs(
    layout: dict[str, str],
) -> None:
    result = run(layout, "--staff", "amina")
    assert result.exit_code == 0, result.output
    torrc = result.stdout
    options = dict(lines(torrc))
    assert options["SocksPort"] == "0"
    assert options["SafeLogging"] == "1"
    assert options["Log"] == "notice syslog"
    assert options["DataDirectory"] == layout["TOR_DATA"]
    found = services(torrc)
    public, staff = found[torconfig.PUBLIC_SERVICE], found[torconfig.STAFF_SERVICE]
    assert public["HiddenServicePort"] == [f"80 unix:{layout['SOCKETS']}/public.sock"]
    assert staff["HiddenServicePort"] == [f"80 unix:{layout['SOCKETS']}/staff.sock"]
    for service in (public, staff):
        assert service["HiddenServiceVersion"] == ["3"]
        assert service["HiddenServiceMaxStreamsCloseCircuit"] == ["1"]
        assert 0 < int(service["HiddenServiceMaxStreams"][0]) <= 50
    assert public["HiddenServicePoWDefensesEnabled"] == ["1"]
    assert public["HiddenServiceEnableIntroDoSDefense"] == ["1"]
    # The staff site is reachable only with a key: nobody else can even ask it for work.
    assert "HiddenServicePoWDefensesEnabled" not in staff


def test_loopback_ports_and_a_log_file_when_asked(layout: dict[str, str]) -> None:
    result = run(
        layout,
        "--staff",
        "amina",
        "--port",
        "8000",
        "--staff-port",
        "8001",
        "--log-file",
        "/var/log/tor/notices.log",
    )
    assert result.exit_code == 0, result.output
    found = services(result.stdout)
    assert found[torconfig.PUBLIC_SERVICE]["HiddenServicePort"] == ["80 127.0.0.1:8000"]
    assert found[torconfig.STAFF_SERVICE]["HiddenServicePort"] == ["80 127.0.0.1:8001"]
    assert dict(lines(result.stdout))["Log"] == "notice file /var/log/tor/notices.log"


@needs_tor
@pytest.mark.parametrize(
    "extra",
    [(), ("--port", "8000", "--staff-port", "8001"), ("--log-file", "/tmp/tor-notices.log")],
)
def test_tor_accepts_the_torrc(
    layout: dict[str, str], tmp_path: Path, extra: tuple[str, ...]
) -> None:
    result = run(layout, "--staff", "amina", *extra)
    assert result.exit_code == 0, result.output
    torrc = tmp_path / "torrc"
    torrc.write_text(result.stdout)
    empty = tmp_path / "defaults"
    empty.write_text("")
    verified = subprocess.run(
        [TOR, "--verify-config", "--defaults-torrc", str(empty), "-f", str(torrc)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Configuration was valid" in verified.stdout


def start_tor(folder: Path, torrc: str, wanted: list[Path], log_needs: list[str]) -> str:
    """Run tor with the network off until it wrote `wanted` and logged `log_needs`; its log."""
    folder.mkdir(mode=0o700, exist_ok=True)
    log = folder / "tor.log"
    config = folder / "torrc"
    kept = [line for line in torrc.splitlines() if not line.startswith(("Log ", "DataDirectory"))]
    config.write_text(
        "\n".join(
            [*kept, f"DataDirectory {folder / 'data'}", f"Log info file {log}", "DisableNetwork 1"]
        )
        + "\n"
    )
    empty = folder / "defaults"
    empty.write_text("")
    process = subprocess.Popen(
        [TOR, "--defaults-torrc", str(empty), "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            text = log.read_text() if log.exists() else ""
            if all(p.exists() for p in wanted) and all(n in text for n in log_needs):
                break
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=10)
    text = log.read_text()
    missing = [n for n in log_needs if n not in text] + [str(p) for p in wanted if not p.exists()]
    assert not missing, f"tor did not get to {missing}:\n{text}"
    return text


@needs_tor
def test_tor_publishes_both_sites_and_loads_every_staff_key_and_the_clients_theirs(
    layout: dict[str, str],
    tmp_path: Path,
) -> None:
    result = run(layout, "--staff", "amina", "--staff", "omar", "--install-clients")
    assert result.exit_code == 0, result.output
    tor_data = Path(layout["TOR_DATA"])
    staff_dir = tor_data / torconfig.STAFF_SERVICE
    log = start_tor(
        tor_data,
        result.stdout,
        [tor_data / torconfig.PUBLIC_SERVICE / "hostname", staff_dir / "hostname"],
        [
            "Loaded a client authorization key file amina.auth.",
            "Loaded a client authorization key file omar.auth.",
        ],
    )
    warnings = [
        line
        for line in log.splitlines()
        if "[warn]" in line
        and "running Tor as root" not in line
        and 'more than "notice"' not in line
    ]
    assert warnings == []
    # Run again: now that tor named the staff site, each person's tor file can be written.
    again = run(layout, "--staff", "amina", "--staff", "omar")
    assert again.exit_code == 0, again.output
    onion = (staff_dir / "hostname").read_text().strip()
    assert f"http://{onion}/" in again.stderr
    clients = Path(layout["CLIENTS"])
    for name in ("amina", "omar"):
        text = (clients / f"{name}.auth_private").read_text()
        assert text.startswith(onion.removesuffix(".onion") + ":descriptor:x25519:")
    # Amina's own tor reads her file (one person's tor holds one key per site).
    client_dir = tmp_path / "client-auth"
    client_dir.mkdir(mode=0o700)
    shutil.copy(clients / "amina.auth_private", client_dir)
    start_tor(
        tmp_path / "client",
        f"SocksPort 0\nClientOnionAuthDir {client_dir}\n",
        [],
        ["Loaded a client authorization key file amina.auth_private."],
    )


def test_each_person_gets_a_key_pair_kept_private(layout: dict[str, str]) -> None:
    result = run(layout, "--staff", "amina", "--staff", "Omar")
    assert result.exit_code == 0, result.output
    clients = Path(layout["CLIENTS"])
    assert clients.stat().st_mode & 0o777 == 0o700
    for name in ("amina", "omar"):
        private = (clients / f"{name}.key").read_text().strip()
        assert KEY.fullmatch(private)
        public = (clients / "authorized_clients" / f"{name}.auth").read_text()
        assert re.fullmatch(r"descriptor:x25519:[A-Z2-7]{52}\n", public)
        derived = nacl.public.PrivateKey(base64.b32decode(private + "====")).public_key
        assert public.split(":")[2].strip() == base64.b32encode(bytes(derived)).decode().rstrip("=")
        for path in (clients / f"{name}.key", clients / "authorized_clients" / f"{name}.auth"):
            assert path.stat().st_mode & 0o777 == 0o600
        # Each person is told the key to paste into Tor Browser.
        assert f"{name}: {private}" in result.stderr
    # The torrc on standard output holds no key.
    assert not KEY.search(result.stdout)
    assert "Tor Browser" in result.stderr


def test_keys_are_kept_renewed_when_asked_and_removed_with_the_person(
    layout: dict[str, str],
) -> None:
    clients = Path(layout["CLIENTS"])
    assert run(layout, "--staff", "amina", "--staff", "omar").exit_code == 0
    amina, omar = ((clients / f"{n}.key").read_text() for n in ("amina", "omar"))
    assert run(layout, "--staff", "amina", "--staff", "omar").exit_code == 0
    assert (clients / "amina.key").read_text() == amina
    assert run(layout, "--staff", "amina", "--staff", "omar", "--new-key", "omar").exit_code == 0
    assert (clients / "amina.key").read_text() == amina
    assert (clients / "omar.key").read_text() != omar
    result = run(layout, "--staff", "amina")
    assert result.exit_code == 0
    assert not (clients / "omar.key").exists()
    assert not (clients / "authorized_clients" / "omar.auth").exists()
    assert "Removed the keys of omar" in result.stderr


def test_a_private_key_deleted_after_the_handover_keeps_that_persons_access(
    layout: dict[str, str],
) -> None:
    clients = Path(layout["CLIENTS"])
    assert run(layout, "--staff", "amina").exit_code == 0
    public = (clients / "authorized_clients" / "amina.auth").read_text()
    (clients / "amina.key").unlink()
    result = run(layout, "--staff", "amina", "--staff-onion", onion_address())
    assert result.exit_code == 0, result.output
    assert (clients / "authorized_clients" / "amina.auth").read_text() == public
    assert not (clients / "amina.key").exists()
    assert not (clients / "amina.auth_private").exists()
    assert "amina: (has their key; it is no longer kept here)" in result.stderr
    renewed = run(layout, "--staff", "amina", "--new-key", "amina")
    assert renewed.exit_code == 0
    assert (clients / "authorized_clients" / "amina.auth").read_text() != public
    assert (clients / "amina.key").exists()


def test_installed_keys_are_exactly_those_listed(layout: dict[str, str]) -> None:
    assert run(layout, "--staff", "amina", "--staff", "omar", "--install-clients").exit_code == 0
    installed = Path(layout["TOR_DATA"]) / torconfig.STAFF_SERVICE / "authorized_clients"
    assert sorted(p.name for p in installed.iterdir()) == ["amina.auth", "omar.auth"]
    assert installed.stat().st_mode & 0o777 == 0o700
    assert run(layout, "--staff", "amina", "--install-clients").exit_code == 0
    assert sorted(p.name for p in installed.iterdir()) == ["amina.auth"]


def test_the_staff_are_read_from_the_accounts_when_not_named(
    layout: dict[str, str],
    initialised: dict[str, str],
) -> None:
    from portal.server import accounts, services
    from portal.server.config import load_config

    empty = run(layout)
    assert empty.exit_code != 0
    assert "no staff account yet" in empty.output
    state = services.load(load_config(initialised))
    with state.sessions() as session:
        for name in ("amina", "j.smith"):
            accounts.create(session, name, date.today())
        session.commit()
    state.engine.dispose()
    result = run(layout)
    assert result.exit_code == 0, result.output
    assert "Client keys of amina, j.smith are in" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--staff", "../../etc/passwd"),
        ("--staff", "amina", "--new-key", "omar"),
        ("--staff", "amina", "--staff-onion", "notanonion.onion"),
        ("--staff", "amina", "--staff-onion", onion_address()[:-8] + "aa.onion"),
        ("--staff", "amina", "--data-dir", "/var/lib/tor with space"),
    ],
)
def test_bad_input_gets_a_message(layout: dict[str, str], args: tuple[str, ...]) -> None:
    result = run(layout, *args)
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


def test_onion_addresses_are_checked_to_the_checksum() -> None:
    good = onion_address()
    assert torconfig.check_onion(good.upper().removesuffix(".ONION")) == good
    with pytest.raises(torconfig.TorConfigError):
        torconfig.check_onion(good[:10] + ("a" if good[10] != "a" else "b") + good[11:])
    with pytest.raises(torconfig.TorConfigError):
        torconfig.check_onion("expyuzz4wqqyqhjn.onion")  # version 2


def test_a_given_onion_address_completes_each_persons_tor_file(layout: dict[str, str]) -> None:
    onion = onion_address(b"\x09" * 32)
    result = run(layout, "--staff", "amina", "--staff-onion", onion)
    assert result.exit_code == 0, result.output
    line = (Path(layout["CLIENTS"]) / "amina.auth_private").read_text()
    assert re.fullmatch(rf"{onion[:-6]}:descriptor:x25519:[A-Z2-7]{{52}}\n", line)


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (b"\xff\xfe not a key\n", "The stored key of amina is damaged (amina.key)."),
        (b"AAAA\n", "The stored key of amina is damaged:"),
    ],
)
def test_a_damaged_stored_key_gets_a_message_and_changes_nothing(
    layout: dict[str, str], damage: bytes, said: str
) -> None:
    clients = Path(layout["CLIENTS"])
    assert run(layout, "--staff", "amina", "--staff", "omar").exit_code == 0
    omar = (clients / "omar.key").read_text()
    (clients / "amina.key").write_bytes(damage)
    result = run(layout, "--staff", "amina", "--staff", "omar")
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert said in result.stderr
    assert "Traceback" not in result.output
    assert (clients / "amina.key").read_bytes() == damage
    assert (clients / "omar.key").read_text() == omar
