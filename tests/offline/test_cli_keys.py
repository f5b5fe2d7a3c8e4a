"""`portal keygen` and `portal fingerprint` through click's runner."""

from __future__ import annotations

import json
import stat
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from portal.cli import main
from portal.formats import crypto

PASSPHRASE = "a passphrase long enough"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def keygen_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["keygen", "--private", str(tmp_path / "team.key"), "--public",
            str(tmp_path / "team.pub"), *extra]  # fmt: skip


def test_keygen_with_a_passphrase_file(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "pass").write_text(PASSPHRASE + "\n")
    result = runner.invoke(main, keygen_args(tmp_path, "--passphrase-file", str(tmp_path / "pass")))
    assert result.exit_code == 0, result.output
    private, public = tmp_path / "team.key", tmp_path / "team.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    public_key = crypto.load_public_key(public)
    # The trailing newline of the file is not part of the passphrase.
    assert (
        crypto.public_from_secret(crypto.read_private_key_file(private, PASSPHRASE.encode()))
        == public_key
    )
    fp = crypto.fingerprint(public_key)
    assert fp in result.stdout
    assert f"# Fingerprint: {fp}" in public.read_text()
    assert f"# Created: {datetime.now(UTC).date().isoformat()}" in public.read_text()


def test_keygen_asks_twice_and_retries_a_short_or_mismatched_passphrase(
    runner: CliRunner, tmp_path: Path
) -> None:
    typed = "\n".join(["short", PASSPHRASE, "a different one entirely", PASSPHRASE, PASSPHRASE])
    result = runner.invoke(
        main,
        keygen_args(tmp_path),
        input=typed + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "5 characters" in result.output
    assert "seized" in result.output  # says why a long passphrase matters
    assert PASSPHRASE not in result.output  # hidden input is not echoed
    crypto.read_private_key_file(tmp_path / "team.key", PASSPHRASE.encode())


@pytest.mark.parametrize("passphrase", ["", "\n", "eleven char", "            "])
def test_keygen_refuses_a_short_passphrase_file(
    runner: CliRunner, tmp_path: Path, passphrase: str
) -> None:
    (tmp_path / "pass").write_text(passphrase)
    result = runner.invoke(main, keygen_args(tmp_path, "--passphrase-file", str(tmp_path / "pass")))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "empty" in result.output or "12 characters" in result.output
    assert not (tmp_path / "team.key").exists()
    assert not (tmp_path / "team.pub").exists()


@pytest.mark.parametrize("existing", ["team.key", "team.pub"])
def test_keygen_never_overwrites(runner: CliRunner, tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("precious")
    (tmp_path / "pass").write_text(PASSPHRASE)
    result = runner.invoke(main, keygen_args(tmp_path, "--passphrase-file", str(tmp_path / "pass")))
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert (tmp_path / existing).read_text() == "precious"
    assert len(list(tmp_path.iterdir())) == 2


def test_keygen_refuses_the_same_file_twice(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "pass").write_text(PASSPHRASE)
    result = runner.invoke(
        main,
        ["keygen", "--private", str(tmp_path / "k"), "--public", str(tmp_path / "k"),
         "--passphrase-file", str(tmp_path / "pass")],
    )  # fmt: skip
    assert result.exit_code == 2


def test_keygen_in_a_missing_folder(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "pass").write_text(PASSPHRASE)
    result = runner.invoke(
        main,
        ["keygen", "--private", str(tmp_path / "no" / "k"), "--public", str(tmp_path / "p"),
         "--passphrase-file", str(tmp_path / "pass")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_passphrase_is_normalised(runner: CliRunner, tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "café crème brûlée")
    (tmp_path / "pass").write_text(decomposed)
    result = runner.invoke(main, keygen_args(tmp_path, "--passphrase-file", str(tmp_path / "pass")))
    assert result.exit_code == 0, result.output
    composed = unicodedata.normalize("NFC", decomposed).encode()
    crypto.read_private_key_file(tmp_path / "team.key", composed)


def test_fingerprint_of_both_files(runner: CliRunner, tmp_path: Path) -> None:
    secret, public = crypto.generate_keypair()
    (tmp_path / "team.key").write_text(crypto.private_key_file_text(secret, b"a long passphrase"))
    (tmp_path / "team.pub").write_text(crypto.format_public_key_file(public, datetime.now(UTC)))
    fp = crypto.fingerprint(public)
    result = runner.invoke(main, ["fingerprint", str(tmp_path / "team.pub")])
    assert result.exit_code == 0
    assert result.stdout == fp + "\n"
    assert "a public key file" in result.stderr
    result = runner.invoke(main, ["fingerprint", str(tmp_path / "team.key")], input="")
    assert result.exit_code == 0
    assert result.stdout == fp + "\n"
    assert "a private key file" in result.stderr
    assert "passphrase was not asked" in result.stderr


@pytest.mark.parametrize("content", ["nothing here\n", "# only comments\n", "\xff"])
def test_fingerprint_of_something_else(runner: CliRunner, tmp_path: Path, content: str) -> None:
    (tmp_path / "file").write_bytes(content.encode("latin-1"))
    result = runner.invoke(main, ["fingerprint", str(tmp_path / "file")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ")


def test_fingerprint_of_a_damaged_private_key_file(runner: CliRunner, tmp_path: Path) -> None:
    secret, _ = crypto.generate_keypair()
    document = json.loads(crypto.private_key_file_text(secret, b"a long passphrase"))
    document["public_key"] = "QUJD"
    (tmp_path / "team.key").write_text(json.dumps(document))
    result = runner.invoke(main, ["fingerprint", str(tmp_path / "team.key")])
    assert result.exit_code == 1
    assert "damaged" in result.output
