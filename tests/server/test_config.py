"""Configuration: one typed object from `PORTAL_*` (or a mapping), and a site that will not start
without a usable team public key, saying why, and that never reads a private key."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import MINIMAL_REPORT, TeamKeys, csrf_token

from portal import create_app
from portal.cli import main
from portal.formats import crypto
from portal.server.config import ConfigError, follow_up_site_budget, load_config

MiB = 1024 * 1024


def test_the_defaults() -> None:
    config = load_config({})
    assert config.data_dir == (Path.cwd() / "instance").resolve()
    assert config.database_url == f"sqlite:///{config.data_dir / 'portal.sqlite3'}"
    assert config.team_public_key == (Path.cwd() / "keys" / "team.pub").resolve()
    assert config.hostnames == ("localhost", "127.0.0.1")
    assert config.max_upload_bytes == 500 * MiB
    assert config.storage_quota_bytes is None
    assert config.ratelimit_storage_uri == "memory://"
    assert config.retention_days == 30
    assert config.blob_dir == config.data_dir / "sealed"
    assert config.demo is False


def test_every_variable_is_read(tmp_path: Path) -> None:
    config = load_config(
        {
            "PORTAL_DATA_DIR": str(tmp_path / "data"),
            "PORTAL_DATABASE_URL": "postgresql+psycopg://portal@db/portal",
            "PORTAL_TEAM_PUBLIC_KEY": str(tmp_path / "team.pub"),
            "PORTAL_HOSTNAMES": "Abc.onion:80, localhost",
            "PORTAL_MAX_UPLOAD_BYTES": "1_073_741_824",
            "PORTAL_STORAGE_QUOTA_BYTES": "5000000000",
            "PORTAL_RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
            "PORTAL_RETENTION_DAYS": "7",
            "PORTAL_RECEIPT_COST": "MIN",
            "PORTAL_DEMO": "yes",
        }
    )
    assert config.data_dir == tmp_path / "data"
    assert config.database_url == "postgresql+psycopg://portal@db/portal"
    assert config.team_public_key == tmp_path / "team.pub"
    assert config.hostnames == ("abc.onion", "localhost")
    assert config.max_upload_bytes == 1024 * MiB
    assert config.storage_quota_bytes == 5_000_000_000
    assert config.ratelimit_storage_uri == "redis://127.0.0.1:6379/0"
    assert config.retention_days == 7
    assert config.receipt_cost == "min"
    assert config.demo is True


@pytest.mark.parametrize(
    ("entry", "name"),
    [("Portal.example:8080", "portal.example"), ("[::1]:8080", "[::1]"), ("[::1]", "[::1]")],
)
def test_a_host_name_loses_its_port_only(entry: str, name: str) -> None:
    assert load_config({"PORTAL_HOSTNAMES": entry}).hostnames == (name,)


def test_a_relative_key_path_is_taken_from_the_checkout() -> None:
    assert (
        load_config({"PORTAL_TEAM_PUBLIC_KEY": "keys/other.pub"}).team_public_key
        == (Path.cwd() / "keys" / "other.pub").resolve()
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORTAL_MAX_UPLOAD_BYTES", "lots"),
        ("PORTAL_MAX_UPLOAD_BYTES", "1000"),
        ("PORTAL_STORAGE_QUOTA_BYTES", "-5"),
        ("PORTAL_RETENTION_DAYS", "0"),
        ("PORTAL_RECEIPT_COST", "extreme"),
        ("PORTAL_DEMO", "perhaps"),
        ("PORTAL_HOSTNAMES", " , "),
        ("PORTAL_ONION_LOCATION", "https://example.org"),
    ],
)
def test_a_bad_value_is_named_in_the_message(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config({name: value})


def test_the_configuration_is_frozen() -> None:
    config = load_config({})
    with pytest.raises(AttributeError):
        config.max_upload_bytes = 1  # type: ignore[misc]


def test_a_mapping_given_to_the_factory_is_all_it_reads(
    initialised: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_MAX_UPLOAD_BYTES", "not a number")
    monkeypatch.setenv("PORTAL_TEAM_PUBLIC_KEY", "/nowhere/team.pub")
    app = create_app("public", {**initialised, "PORTAL_MAX_UPLOAD_BYTES": str(3 * MiB)})
    try:
        assert app.config["MAX_CONTENT_LENGTH"] == 3 * MiB
    finally:
        app.extensions["portal"].engine.dispose()


def test_an_unknown_site_is_refused(initialised: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="unknown site"):
        create_app("admin", initialised)


def test_the_site_will_not_start_before_init(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="portal init"):
        create_app("public", env)


# ---------------------------------------------------------------------------------------------
# The team key


def _key_problems(tmp_path: Path, team_keys: TeamKeys) -> dict[str, tuple[Path, str]]:
    """Key files the site must refuse, each with words the message must hold."""
    (tmp_path / "bad").mkdir()
    garbage = tmp_path / "bad" / "garbage.pub"
    garbage.write_text("# a comment\nthis is not base64 at all\n")
    short = tmp_path / "bad" / "short.pub"
    short.write_text(crypto.b64encode(b"\1" * 16) + "\n")
    empty = tmp_path / "bad" / "empty.pub"
    empty.write_text("# only a comment\n")
    binary = tmp_path / "bad" / "binary.pub"
    binary.write_bytes(b"\xff\xfe\0\1" * 10)
    return {
        "missing": (tmp_path / "bad" / "nothing.pub", "No public key file"),
        "garbage": (garbage, "team public key cannot be used"),
        "short": (short, "team public key cannot be used"),
        "empty": (empty, "team public key cannot be used"),
        "binary": (binary, "cannot be read"),
        "folder": (tmp_path / "bad", "cannot be read"),
        "private": (team_keys.private_path, "private key file"),
    }


@pytest.mark.parametrize(
    "problem", ["missing", "garbage", "short", "empty", "binary", "folder", "private"]
)
def test_the_site_refuses_to_start_without_a_usable_public_key(
    initialised: dict[str, str], team_keys: TeamKeys, tmp_path: Path, problem: str
) -> None:
    path, words = _key_problems(tmp_path, team_keys)[problem]
    for site in ("public", "staff"):
        with pytest.raises(ConfigError) as caught:
            create_app(site, {**initialised, "PORTAL_TEAM_PUBLIC_KEY": str(path)})
        message = str(caught.value)
        assert words in message
        assert "will not start" in message
        assert "PORTAL_TEAM_PUBLIC_KEY" in message


@pytest.mark.parametrize("problem", ["missing", "garbage", "private"])
def test_the_commands_say_the_same_and_stop(
    env: dict[str, str],
    team_keys: TeamKeys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    problem: str,
) -> None:
    path, words = _key_problems(tmp_path, team_keys)[problem]
    for name, value in {**env, "PORTAL_TEAM_PUBLIC_KEY": str(path)}.items():
        monkeypatch.setenv(name, value)
    for command in (["init"], ["export", "--out", str(tmp_path / "b.tar")]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1, result.output
        assert words in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "b.tar").exists()


def test_only_the_public_key_is_ever_read(
    initialised: dict[str, str], team_keys: TeamKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The private key is not even on this machine, and nothing may try to open one.
    team_keys.private_path.unlink()

    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a private key was read on the server")

    for name in ("read_private_key_file", "private_key_file_public", "_read_private_document"):
        monkeypatch.setattr(crypto, name, forbidden)
    opened: list[str] = []
    real_open = Path.open

    def watched(self: Path, *args: object, **kwargs: object) -> object:
        opened.append(str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", watched)
    app = create_app("public", initialised)
    app.config.update(TESTING=True)
    try:
        client = app.test_client()
        response = client.post(
            "/en/submit", data={**MINIMAL_REPORT, "csrf_token": csrf_token(client)}
        )
        assert response.status_code == 200
        assert client.get("/en/key").status_code == 200
    finally:
        app.extensions["portal"].engine.dispose()
    key_folder = str(team_keys.public_path.parent)
    assert {path for path in opened if path.startswith(key_folder)} == {str(team_keys.public_path)}


def test_the_key_file_date_is_kept_for_the_download(
    initialised: dict[str, str], team_keys: TeamKeys
) -> None:
    team_keys.public_path.write_text(
        crypto.format_public_key_file(team_keys.public_key, date(2025, 3, 14))
    )
    app = create_app("public", initialised)
    try:
        text = app.test_client().get("/en/key/team.pub").get_data(as_text=True)
    finally:
        app.extensions["portal"].engine.dispose()
    assert "2025-03-14" in text
    assert crypto.parse_public_key_file(text) == team_keys.public_key


@pytest.mark.parametrize(
    ("cost", "cores", "budget"),
    [
        # cores / seconds per derivation x half the machine x 10 seconds
        ("interactive", 2, "100 per 10 seconds"),
        ("interactive", 1, "50 per 10 seconds"),
        ("interactive", 8, "400 per 10 seconds"),
        ("moderate", 2, "16 per 10 seconds"),
        ("moderate", 1, "8 per 10 seconds"),
    ],
)
def test_the_follow_up_budget_is_what_the_machine_can_afford(
    cost: str, cores: int, budget: str
) -> None:
    assert follow_up_site_budget(cost, cores) == budget
    config = load_config({"PORTAL_RECEIPT_COST": cost}, core_count=cores)
    assert config.follow_up_rate_limit == budget
    # Each session's own budget is a small part of the site's.
    assert config.follow_up_session_rate_limit == "10 per minute;30 per hour"


def test_the_follow_up_budgets_can_be_set() -> None:
    config = load_config(
        {
            "PORTAL_FOLLOW_UP_RATE_LIMIT": "5 per second",
            "PORTAL_FOLLOW_UP_SESSION_RATE_LIMIT": "1 per minute",
        }
    )
    assert config.follow_up_rate_limit == "5 per second"
    assert config.follow_up_session_rate_limit == "1 per minute"
