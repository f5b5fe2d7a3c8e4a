"""Interoperability: the offline tools against code written from the format's description alone.

Bundles written from DESIGN.md open with `portal decrypt`, what `portal seal` and `portal reply`
write opens with code written from DESIGN.md, and envelopes sealed by the browser's own code
open offline.

The spec-only code below uses PyNaCl's libsodium bindings, `tarfile` and `json` directly, never
the project's helpers, so that a mistake shared by the project's writer and reader cannot hide.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nacl.bindings as sodium
import pytest
from click.testing import CliRunner

from portal.cli import main
from portal.formats import bundle, crypto
from portal.formats.bundle import writing

ROOT = Path(__file__).resolve().parents[2]
CHUNK = 65536
PASSPHRASE = "a passphrase long enough"


# ---------------------------------------------------------------------------------------------
# The format, written from DESIGN.md


def spec_blob(data: bytes, key: bytes) -> bytes:
    """Zero-pad to whole 64 KiB chunks (at least one); AES-256-GCM each, nonce = index || last."""
    count = max(1, -(-len(data) // CHUNK))
    padded = data + bytes(count * CHUNK - len(data))
    out = []
    for i in range(count):
        nonce = i.to_bytes(11, "big") + (b"\x01" if i == count - 1 else b"\x00")
        out.append(
            sodium.crypto_aead_aes256gcm_encrypt(
                padded[i * CHUNK : (i + 1) * CHUNK], None, nonce, key
            )
        )
    return b"".join(out)


def spec_unblob(blob: bytes, key: bytes, size: int) -> bytes:
    step = CHUNK + 16
    count = max(1, -(-size // CHUNK))
    assert len(blob) == count * step
    plain = b"".join(
        sodium.crypto_aead_aes256gcm_decrypt(
            blob[i * step : (i + 1) * step], None,
            i.to_bytes(11, "big") + (b"\x01" if i == count - 1 else b"\x00"), key,
        )
        for i in range(count)
    )  # fmt: skip
    assert plain[size:] == bytes(len(plain) - size)  # the padding is zeros
    return plain[:size]


def spec_manifest(document: dict[str, Any], public_key: bytes) -> bytes:
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return sodium.crypto_box_seal(text + b" " * (-len(text) % 4096), public_key)


def spec_bundle(path: Path, submissions: list[dict[str, Any]], public_key: bytes) -> None:
    """A bundle with members in an order of its own, the index last, in tarfile's default format."""
    index = {"format": "portal-bundle", "version": 1, "submissions": []}
    members: list[tuple[str, bytes]] = []
    for sub in submissions:
        keys = [bytes(hashlib.sha256(name.encode()).digest()) for name, _ in sub["files"]]
        files = [
            {"name": name, "type": "application/octet-stream", "size": len(data),
             "key": crypto_b64(key)}
            for (name, data), key in zip(sub["files"], keys, strict=True)
        ]  # fmt: skip
        document = {
            "format": "portal-envelope", "version": 1, "kind": sub["kind"], "sealed_by": "browser",
            "locale": sub["locale"], "fields": sub["fields"], "files": files,
        }  # fmt: skip
        for i, ((_, data), key) in enumerate(zip(sub["files"], keys, strict=True)):
            members.append((f"{sub['id']}/files/{i}.blob", spec_blob(data, key)))
        members.append((f"{sub['id']}/manifest.sealed", spec_manifest(document, public_key)))
        index["submissions"].append(  # type: ignore[attr-defined]
            {"id": sub["id"], "case": sub["case"], "kind": sub["kind"],
             "received_day": sub["day"], "files": len(sub["files"])}
        )  # fmt: skip
    members.append(("portal-bundle.json", json.dumps(index).encode()))
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def crypto_b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def spec_open(
    path: Path, secret_key: bytes
) -> list[tuple[dict[str, Any], dict[str, Any], list[bytes]]]:
    """Open a bundle as the description says: (index entry, manifest, file contents) each."""
    public_key = sodium.crypto_scalarmult_base(secret_key)
    result = []
    with tarfile.open(path, "r:") as tar:
        names = tar.getnames()

        def read(name: str) -> bytes:
            handle = tar.extractfile(name)
            assert handle is not None
            return handle.read()

        index = json.loads(read("portal-bundle.json"))
        assert index["format"] == "portal-bundle"
        assert index["version"] == 1
        for entry in index["submissions"]:
            assert set(entry) >= {"id", "case", "kind", "received_day", "files"}
            sealed = read(f"{entry['id']}/manifest.sealed")
            padded = sodium.crypto_box_seal_open(sealed, public_key, secret_key)
            assert len(padded) % 4096 == 0
            text = padded.rstrip(b" ")
            assert padded[len(text) :] == b" " * (len(padded) - len(text))
            manifest = json.loads(text.decode("utf-8"))
            assert json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode() == text
            assert list(manifest)[:7] == [
                "format", "version", "kind", "sealed_by", "locale", "fields", "files"
            ]  # fmt: skip
            assert len(manifest["files"]) == entry["files"]
            contents = [
                spec_unblob(read(f"{entry['id']}/files/{i}.blob"),
                            base64.b64decode(item["key"], validate=True), item["size"])
                for i, item in enumerate(manifest["files"])
            ]  # fmt: skip
            result.append((entry, manifest, contents))
        expected = {"portal-bundle.json"} | {
            name
            for e in index["submissions"]
            for name in [f"{e['id']}/manifest.sealed"]
            + [f"{e['id']}/files/{i}.blob" for i in range(e["files"])]
        }
        assert set(names) == expected
    return result


# ---------------------------------------------------------------------------------------------


@pytest.fixture
def team(tmp_path: Path) -> tuple[bytes, bytes, Path, Path]:
    secret, public = sodium.crypto_box_keypair()[::-1]
    key_file, passphrase_file = tmp_path / "team.key", tmp_path / "passphrase"
    key_file.write_text(crypto.private_key_file_text(secret, PASSPHRASE.encode()))
    passphrase_file.write_text(PASSPHRASE)
    return secret, public, key_file, passphrase_file


def decrypt(team: tuple[bytes, bytes, Path, Path], out: Path, *paths: Path) -> Any:
    _, _, key_file, passphrase_file = team
    return CliRunner().invoke(
        main,
        ["decrypt", "--key", str(key_file), "--passphrase-file", str(passphrase_file),
         "--out", str(out), *map(str, paths)],
    )  # fmt: skip


def test_a_spec_only_bundle_opens_with_portal_decrypt(
    tmp_path: Path, team: tuple[bytes, bytes, Path, Path]
) -> None:
    big = bytes((i * 7 + 3) % 256 for i in range(2 * CHUNK + 1))
    submissions = [
        {"id": "a1", "case": "ca", "kind": "report", "day": "2026-11-01", "locale": "zh",
         "fields": {"description": "报复。", "violations": ["threats"], "consent_raise": "yes"},
         "files": [("empty", b""), ("one", b"1"), ("exact", bytes(CHUNK)), ("big.bin", big)]},
        {"id": "b2", "case": "ca", "kind": "follow-up", "day": "2026-11-02", "locale": "zh",
         "fields": {"description": "更多。"}, "files": []},
    ]  # fmt: skip
    path = tmp_path / "spec.tar"
    spec_bundle(path, submissions, team[1])
    out = tmp_path / "out"
    result = decrypt(team, out, path)
    assert result.exit_code == 0, result.output
    folder = out / "ca" / "attachments"
    assert (folder / "empty").read_bytes() == b""
    assert (folder / "one").read_bytes() == b"1"
    assert (folder / "exact").read_bytes() == bytes(CHUNK)
    assert (folder / "big.bin").read_bytes() == big
    assert "报复。" in (out / "ca" / "report.txt").read_text()
    assert "Language:    Chinese (zh)" in (out / "ca" / "report.txt").read_text()
    assert "更多。" in (out / "ca" / "2026-11-02-follow-up-b2" / "report.txt").read_text()


def test_what_portal_seal_writes_opens_with_spec_only_code(
    tmp_path: Path, team: tuple[bytes, bytes, Path, Path]
) -> None:
    secret, public = team[0], team[1]
    (tmp_path / "team.pub").write_text(crypto.format_public_key_file(public, datetime.now(UTC)))
    sizes = {"zero": 0, "one": 1, "below": CHUNK - 1, "exact": CHUNK, "above": CHUNK + 1,
             "multi": 3 * CHUNK + 100}  # fmt: skip
    paths = []
    for name, size in sizes.items():
        path = tmp_path / f"{name}.dat"
        path.write_bytes(bytes((i * 13 + len(name)) % 256 for i in range(size)))
        paths.append(str(path))
    out = tmp_path / "case.sealed"
    result = CliRunner().invoke(
        main,
        ["seal", "--to", str(tmp_path / "team.pub"), "--out", str(out), "--locale", "ru",
         "--field", "description=Угрозы после сессии.", "--field", "consent_of=self",
         "--field", "consent_raise=no", "--field", "consent_report=no",
         "--field", "consent_share_un=no", "--field", "consent_contact=no", *paths],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [(entry, manifest, contents)] = spec_open(out, secret)
    assert entry["kind"] == "report"
    assert manifest["kind"] == "report"
    assert manifest["sealed_by"] == "relay-tool"
    assert manifest["locale"] == "ru"
    assert manifest["fields"]["description"] == "Угрозы после сессии."
    assert [f["name"] for f in manifest["files"]] == [f"{n}.dat" for n in sizes]
    assert [f["size"] for f in manifest["files"]] == list(sizes.values())
    assert contents == [Path(p).read_bytes() for p in paths]
    with tarfile.open(out) as tar:
        assert all(info.mtime == 0 for info in tar.getmembers())


def test_what_portal_reply_writes_opens_with_spec_only_code(
    tmp_path: Path, team: tuple[bytes, bytes, Path, Path]
) -> None:
    reply_public, reply_secret = sodium.crypto_box_keypair()
    folder = tmp_path / "case1"
    folder.mkdir()
    record = {"case": "case1", "locale": "es", "fields": {}}
    record["reply_public_key"] = crypto_b64(reply_public)
    (folder / "report.json").write_text(json.dumps(record))
    out = tmp_path / "reply.sealed"
    result = CliRunner().invoke(
        main,
        ["reply", "--key", str(team[2]), "--passphrase-file", str(team[3]), "--case", str(folder),
         "--out", str(out), "--message", "Hemos planteado su caso."],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with tarfile.open(out) as tar:
        handle = tar.extractfile("portal-bundle.json")
        assert handle is not None
        entries = json.load(handle)["submissions"]
        sealed = {}
        for e in entries:
            member = tar.extractfile(f"{e['id']}/manifest.sealed")
            assert member is not None
            sealed[e["recipient"]] = member.read()
    for recipient, (secret, public) in {
        "submitter": (reply_secret, reply_public), "team": (team[0], team[1])
    }.items():  # fmt: skip
        padded = sodium.crypto_box_seal_open(sealed[recipient], public, secret)
        manifest = json.loads(padded.rstrip(b" "))
        assert manifest["kind"] == "reply"
        assert manifest["fields"] == {"message": "Hemos planteado su caso."}
        assert manifest["locale"] == "es"


NODE = shutil.which("node")
BROWSER_CODE_READY = NODE is not None and (ROOT / "node_modules" / "@noble").is_dir()


@pytest.mark.skipif(not BROWSER_CODE_READY, reason="node and the npm packages are not installed")
def test_an_envelope_sealed_by_the_browser_code_opens_offline(
    tmp_path: Path, team: tuple[bytes, bytes, Path, Path]
) -> None:
    (tmp_path / "team.pub").write_text(crypto.format_public_key_file(team[1], datetime.now(UTC)))
    fields = {"description": "Sealed in the browser.", "violations": ["smear_campaign"]}
    (tmp_path / "fields.json").write_text(json.dumps(fields))
    (tmp_path / "photo.jpg").write_bytes(bytes(range(256)) * 700)
    sealed_dir = tmp_path / "sealed"
    assert NODE is not None
    subprocess.run(
        [NODE, str(ROOT / "tests" / "js" / "seal_cli.mjs"), "--key", str(tmp_path / "team.pub"),
         "--out", str(sealed_dir), "--kind", "report", "--locale", "fr",
         "--fields", str(tmp_path / "fields.json"), str(tmp_path / "photo.jpg")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    (sealed_dir / "files" / "0.blob").rename(sealed_dir / "0.blob")
    entry = bundle.Entry("web1", "webcase", "report", "2026-11-22", 1)
    path = tmp_path / "export.tar"
    with path.open("wb") as handle:
        bundle.write(handle, [entry], bundle.members_of(entry, sealed_dir))
    out = tmp_path / "out"
    result = decrypt(team, out, path)
    assert result.exit_code == 0, result.output
    assert (out / "webcase" / "attachments" / "photo.jpg").read_bytes() == bytes(range(256)) * 700
    record = json.loads((out / "webcase" / "report.json").read_text())
    assert record["sealed_by"] == "browser"
    assert record["fields"] == fields


@pytest.mark.skipif(not BROWSER_CODE_READY, reason="node and the npm packages are not installed")
def test_what_the_offline_sealer_writes_opens_with_spec_only_code(
    tmp_path: Path, team: tuple[bytes, bytes, Path, Path]
) -> None:
    (tmp_path / "team.pub").write_text(crypto.format_public_key_file(team[1], datetime.now(UTC)))
    fields = {"description": "تهديدات بعد الجلسة.", "violations": ["threats", "surveillance"],
              "consent_raise": "no", "consent_report": "no", "consent_contact": "no"}  # fmt: skip
    (tmp_path / "fields.json").write_text(json.dumps(fields))
    sizes = {"zero": 0, "one": 1, "exact": CHUNK, "above": 2 * CHUNK + 7}
    paths = []
    for name, size in sizes.items():
        path = tmp_path / f"{name}.dat"
        path.write_bytes(bytes((i * 11 + len(name)) % 256 for i in range(size)))
        paths.append(str(path))
    out = tmp_path / "CASE.sealed"
    assert NODE is not None
    subprocess.run(
        [NODE, str(ROOT / "tests" / "js" / "sealer_cli.mjs"), "--key", str(tmp_path / "team.pub"),
         "--out", str(out), "--locale", "ar", "--fields", str(tmp_path / "fields.json"), *paths],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    [(entry, manifest, contents)] = spec_open(out, team[0])
    assert entry["kind"] == "report"
    assert manifest["sealed_by"] == "relay-tool"
    assert manifest["locale"] == "ar"
    assert manifest["fields"] == fields
    assert "reply_public_key" not in manifest
    assert [f["name"] for f in manifest["files"]] == [f"{n}.dat" for n in sizes]
    assert contents == [Path(p).read_bytes() for p in paths]
    # The tar is written as `portal seal` writes it: the index first, the same headers.
    data = out.read_bytes()
    with tarfile.open(out) as tar:
        infos = tar.getmembers()
    assert infos[0].name == "portal-bundle.json"
    for info in infos:
        header = data[info.offset : info.offset + 512]
        assert header == writing._header(info.name, info.size), info.name
    assert data.endswith(bytes(1024))
    assert len(data) % 512 == 0
    result = decrypt(team, tmp_path / "cases", out)
    assert result.exit_code == 0, result.output
