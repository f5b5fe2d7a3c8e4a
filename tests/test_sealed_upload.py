"""Uploads sealed in the browser (`/<lang>/submit/sealed`, `/<lang>/follow-up/sealed`): only
their structure is checked, anything malformed is refused with a clear message and nothing
stored, and what the browser's own code seals opens offline byte for byte."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import MINIMAL_REPORT, TeamKeys, csrf_token, receipt_of
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from test_export import export_and_decrypt
from test_public import site
from test_uploads import FilePart, Part, assert_nothing_stored, error_message, post_parts, stored

from portal import crypto, envelope
from portal.models import Submission

ROOT = Path(__file__).resolve().parent.parent
SEAL_CLI = ROOT / "tests" / "js" / "seal_cli.mjs"
FIELDS: dict[str, envelope.FieldValue] = {
    **MINIMAL_REPORT,
    "violations": ["travel_ban", "surveillance"],
    "place": "  kept as typed  ",
}


@dataclass(frozen=True)
class Sealed:
    """The parts of an upload as the sealing script sends them."""

    manifest: bytes
    blobs: tuple[bytes, ...]
    file_count: str | None = None
    extra: tuple[Part, ...] = ()

    def parts(self, token: str, receipt: str | None = None) -> list[Part]:
        """The multipart parts in the contract's order."""
        parts: list[Part] = [("csrf_token", token), ("website", "")]
        if receipt is not None:
            parts.append(("receipt", receipt))
        count = str(len(self.blobs)) if self.file_count is None else self.file_count
        parts += [
            ("file_count", count),
            FilePart("manifest", "manifest.sealed", self.manifest),
            *(FilePart("blob", f"{i}.blob", blob) for i, blob in enumerate(self.blobs)),
            *self.extra,
        ]
        return parts


def seal_like_the_browser(
    public_key: bytes, files: dict[str, bytes], kind: str = "report", fields: dict | None = None
) -> Sealed:
    """An envelope sealed as the browser seals it: no reply key, sealed_by "browser"."""
    entries, blobs = [], []
    for name, data in files.items():
        key = crypto.new_file_key()
        out = io.BytesIO()
        crypto.encrypt_stream(io.BytesIO(data), out, key)
        entries.append(envelope.FileEntry(name, "application/pdf", len(data), key))
        blobs.append(out.getvalue())
    manifest = envelope.Manifest(kind, "browser", "fr", dict(fields or FIELDS), tuple(entries))
    return Sealed(envelope.seal_manifest(manifest, public_key), tuple(blobs))


def test_a_report_sealed_in_the_browser_is_stored_as_sent_and_opens_offline(
    app: Flask, client: FlaskClient, runner: CliRunner, team_keys: TeamKeys, tmp_path: Path
) -> None:
    files = {"scan.pdf": b"%PDF " + bytes(range(256)) * 600, "empty.pdf": b""}
    sealed = seal_like_the_browser(team_keys.public_key, files)
    response = post_parts(client, "/fr/submit/sealed", sealed.parts(csrf_token(client)))
    text = response.get_data(as_text=True)
    assert response.status_code == 200, text
    assert 'data-sealed-by="browser"' in text
    receipt_of(text)
    services = app.extensions["portal"]
    with services.sessions() as session:
        submission = session.scalars(select(Submission)).one()
    assert (submission.sealed_by, submission.source, submission.file_count) == (
        "browser",
        "browser",
        2,
    )
    folder = services.store.path(submission.id)
    assert (folder / "manifest.sealed").read_bytes() == sealed.manifest
    assert [(folder / f"{i}.blob").read_bytes() for i in range(2)] == list(sealed.blobs)
    (record,) = export_and_decrypt(runner, team_keys, tmp_path)
    assert record["sealed_by"] == "browser"
    assert record["fields"] == FIELDS
    assert record["attachments"] == files
    # The browser cannot know the reply key; the bundle carries the one the receipt made.
    assert record["reply_public_key_from"] == "bundle index"


def test_a_follow_up_sealed_in_the_browser_joins_its_case(
    app: Flask, client: FlaskClient, runner: CliRunner, team_keys: TeamKeys, tmp_path: Path
) -> None:
    response = client.post("/en/submit", data={**MINIMAL_REPORT, "csrf_token": csrf_token(client)})
    receipt = receipt_of(response.get_data(as_text=True))
    sealed = seal_like_the_browser(
        team_keys.public_key, {"new.pdf": b"more"}, "follow-up", {"description": "more news"}
    )
    token = csrf_token(client, "/en/follow-up")
    response = post_parts(client, "/en/follow-up/sealed", sealed.parts(token, receipt))
    text = response.get_data(as_text=True)
    assert response.status_code == 200, text
    assert "Your new information was received" in text
    assert "receipt-number" not in text
    report, follow_up = export_and_decrypt(runner, team_keys, tmp_path)
    assert follow_up["case"] == report["case"]
    assert follow_up["fields"] == {"description": "more news"}
    assert follow_up["attachments"] == {"new.pdf": b"more"}


@pytest.mark.parametrize("receipt", ["", "12345 67890 12345 67890 12345", "nonsense"])
def test_a_sealed_follow_up_without_its_case_is_refused(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, receipt: str
) -> None:
    sealed = seal_like_the_browser(team_keys.public_key, {}, "follow-up", {"description": "x"})
    response = post_parts(
        client, "/en/follow-up/sealed", sealed.parts(csrf_token(client, "/en/follow-up"), receipt)
    )
    assert response.status_code == 400
    assert "No case matches this receipt" in error_message(response.get_data(as_text=True))
    assert_nothing_stored(app)


SEALED_CHUNK = crypto.SEALED_CHUNK_SIZE
# Whatever broke, a person reads the same words in their language: the upload was damaged.
DAMAGED = "was damaged on the way"
MANIFEST = 4096 + crypto.SEAL_OVERHEAD
Breakage = Callable[[Sealed], Sealed]


@pytest.mark.parametrize(
    ("breakage", "words"),
    [
        (lambda s: replace(s, manifest=s.manifest[:-1]), DAMAGED),
        (lambda s: replace(s, manifest=s.manifest + b"\0"), DAMAGED),
        (lambda s: replace(s, manifest=b"\0" * 4096), DAMAGED),
        (lambda s: replace(s, manifest=b""), DAMAGED),
        (lambda s: replace(s, manifest=bytes(4096 + 100 + 48)), DAMAGED),
        (lambda s: replace(s, blobs=(s.blobs[0][:-1], s.blobs[1])), DAMAGED),
        (lambda s: replace(s, blobs=(s.blobs[0], s.blobs[1] + b"\0")), DAMAGED),
        (lambda s: replace(s, blobs=(s.blobs[0], b"")), DAMAGED),
        (lambda s: replace(s, file_count="3"), DAMAGED),
        (lambda s: replace(s, file_count="1"), DAMAGED),
        (lambda s: replace(s, file_count="two"), DAMAGED),
        (lambda s: replace(s, file_count=""), DAMAGED),
        (lambda s: replace(s, blobs=(*s.blobs, s.blobs[0]) * 40), "At most 100 files"),
        (
            lambda s: replace(s, extra=(FilePart("manifest", "manifest.sealed", s.manifest),)),
            DAMAGED,
        ),
        (
            lambda s: replace(s, extra=(FilePart("attachments", "a.txt", b"plain"),)),
            DAMAGED,
        ),
    ],
    ids=[
        "manifest-short",
        "manifest-long",
        "manifest-without-overhead",
        "manifest-empty",
        "manifest-not-padded",
        "blob-short",
        "blob-long",
        "blob-empty",
        "count-too-high",
        "count-too-low",
        "count-not-a-number",
        "count-missing",
        "too-many-files",
        "two-manifests",
        "a-stray-file",
    ],
)
def test_a_malformed_sealed_upload_is_refused_with_a_message_and_nothing_stored(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, breakage: Breakage, words: str
) -> None:
    good = seal_like_the_browser(team_keys.public_key, {"a.pdf": b"a" * 70_000, "b.pdf": b"b"})
    assert len(good.manifest) == MANIFEST
    assert [len(b) for b in good.blobs] == [2 * SEALED_CHUNK, SEALED_CHUNK]
    response = post_parts(client, "/en/submit/sealed", breakage(good).parts(csrf_token(client)))
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert words in error_message(text)
    assert "Nothing was stored" in text
    assert_nothing_stored(app)


def test_a_sealed_upload_without_a_manifest_is_refused(app: Flask, client: FlaskClient) -> None:
    parts = [("csrf_token", csrf_token(client)), ("file_count", "0")]
    response = post_parts(client, "/en/submit/sealed", parts)
    assert response.status_code == 400
    assert DAMAGED in error_message(response.get_data(as_text=True))
    assert_nothing_stored(app)


@pytest.mark.parametrize("token", ["", "forged"])
def test_a_sealed_upload_with_a_bad_token_is_refused_with_a_message(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, token: str
) -> None:
    sealed = seal_like_the_browser(team_keys.public_key, {})
    response = post_parts(client, "/en/submit/sealed", sealed.parts(token))
    assert response.status_code == 400
    assert "This form had expired" in error_message(response.get_data(as_text=True))
    assert_nothing_stored(app)


def test_a_sealed_upload_over_the_size_limit_says_the_limit(
    initialised: dict[str, str], team_keys: TeamKeys
) -> None:
    with site(initialised, PORTAL_MAX_UPLOAD_BYTES=str(1024 * 1024)) as (app, client):
        data = bytes(20 * SEALED_CHUNK)
        sealed = Sealed(bytes(MANIFEST), (data,))
        response = post_parts(client, "/en/submit/sealed", sealed.parts(csrf_token(client)))
        assert response.status_code == 413
        assert "at most 1 MB" in error_message(response.get_data(as_text=True))
        assert_nothing_stored(app)


def test_the_honeypot_on_a_sealed_upload_stores_nothing(
    app: Flask, client: FlaskClient, team_keys: TeamKeys
) -> None:
    sealed = seal_like_the_browser(team_keys.public_key, {"a.pdf": b"a"})
    parts = sealed.parts(csrf_token(client))
    parts[1] = ("website", "http://spam.example")
    response = post_parts(client, "/en/submit/sealed", parts)
    assert response.status_code == 200
    assert "receipt-number" not in response.get_data(as_text=True)
    assert_nothing_stored(app)


# ---------------------------------------------------------------------------------------------
# The browser's own code


def _node_ready() -> bool:
    return bool(shutil.which("node")) and (ROOT / "node_modules" / "@noble" / "ciphers").is_dir()


@pytest.mark.skipif(not _node_ready(), reason="needs node and `npm ci` (node_modules)")
def test_what_the_browsers_code_seals_goes_through_the_server_and_opens_byte_for_byte(
    app: Flask, client: FlaskClient, runner: CliRunner, team_keys: TeamKeys, tmp_path: Path
) -> None:
    fields = {
        **MINIMAL_REPORT,
        # Written in several scripts on purpose.
        "description": "Écrit dans le navigateur.\nДве строки, 两行, سطران.",  # noqa: RUF001
        "violations": ["threats", "surveillance"],
        "place": "  spaces kept  ",
    }
    (tmp_path / "fields.json").write_text(json.dumps(fields), encoding="utf-8")
    originals = {
        "photo.jpg": bytes(range(256)) * 700,
        "chunk.bin": b"\x01" * crypto.CHUNK_SIZE,
        "empty.txt": b"",
    }
    paths = []
    for name, data in originals.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    out = tmp_path / "sealed"
    done = subprocess.run(
        [
            "node",
            str(SEAL_CLI),
            "--key",
            str(team_keys.public_path),
            "--out",
            str(out),
            "--kind",
            "report",
            "--locale",
            "ru",
            "--fields",
            str(tmp_path / "fields.json"),
            *paths,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    blobs = tuple((out / "files" / f"{i}.blob").read_bytes() for i in range(len(originals)))
    sealed = Sealed((out / "manifest.sealed").read_bytes(), blobs)
    response = post_parts(client, "/ru/submit/sealed", sealed.parts(csrf_token(client)))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert stored(app).rows == 1
    (record,) = export_and_decrypt(runner, team_keys, tmp_path / "offline")
    assert record["sealed_by"] == "browser"
    assert record["locale"] == "ru"
    assert record["fields"] == fields
    assert record["attachments"] == originals
