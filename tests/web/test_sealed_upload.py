"""Uploads sealed in the browser (`/<lang>/submit/sealed`, `/<lang>/follow-up/sealed`): only
their structure (and a report's ticket, from `/<lang>/submit/prepare`) is checked, anything
malformed is refused with a clear message and nothing stored, and what the browser's own code
seals opens offline byte for byte, with the reply key its receipt derives. Relays' sealed case
files whose tar headers claim more than they hold are refused the same way."""

from __future__ import annotations

import html
import io
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import hostile_tar
import pytest
from click.testing import CliRunner
from conftest import MINIMAL_REPORT, TeamKeys, csrf_token, prepare, receipt_of
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_export import export_and_decrypt
from test_public import _seal_case, site
from test_uploads import (
    FilePart,
    Part,
    assert_nothing_stored,
    error_message,
    post_parts,
    report_parts,
    stored,
)
from werkzeug.test import TestResponse

from portal.formats import bundle, crypto, envelope, receipts
from portal.server import storage, tickets
from portal.server.models import Case, Submission

ROOT = Path(__file__).resolve().parents[2]
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

    def parts(
        self, token: str, receipt: str | None = None, ticket: str | None = None
    ) -> list[Part]:
        """The multipart parts in the contract's order."""
        parts: list[Part] = [("csrf_token", token), ("website", "")]
        if receipt is not None:
            parts.append(("receipt", receipt))
        if ticket is not None:
            parts.append(("ticket", ticket))
        count = str(len(self.blobs)) if self.file_count is None else self.file_count
        parts += [
            ("file_count", count),
            FilePart("manifest", "manifest.sealed", self.manifest),
            *(FilePart("blob", f"{i}.blob", blob) for i, blob in enumerate(self.blobs)),
            *self.extra,
        ]
        return parts


def seal_like_the_browser(
    public_key: bytes,
    files: dict[str, bytes],
    kind: str = "report",
    fields: dict | None = None,
    reply_key: bytes | None = None,
) -> Sealed:
    """An envelope sealed as the browser seals it: sealed_by "browser", a report's reply key."""
    entries, blobs = [], []
    for name, data in files.items():
        key = crypto.new_file_key()
        out = io.BytesIO()
        crypto.encrypt_stream(io.BytesIO(data), out, key)
        entries.append(envelope.FileEntry(name, "application/pdf", len(data), key))
        blobs.append(out.getvalue())
    manifest = envelope.Manifest(
        kind, "browser", "fr", dict(fields or FIELDS), tuple(entries), reply_key
    )
    return Sealed(envelope.seal_manifest(manifest, public_key), tuple(blobs))


def test_a_report_sealed_in_the_browser_is_stored_as_sent_and_opens_offline(
    app: Flask, client: FlaskClient, runner: CliRunner, team_keys: TeamKeys, tmp_path: Path
) -> None:
    files = {"scan.pdf": b"%PDF " + bytes(range(256)) * 600, "empty.pdf": b""}
    prepared = prepare(client, "fr")
    sealed = seal_like_the_browser(team_keys.public_key, files, reply_key=prepared.reply_public_key)
    token = csrf_token(client, "/fr/submit")
    response = post_parts(client, "/fr/submit/sealed", sealed.parts(token, ticket=prepared.ticket))
    text = response.get_data(as_text=True)
    assert response.status_code == 200, text
    assert 'data-sealed-by="browser"' in text
    derived = _derive(app, receipt_of(text))
    services = app.extensions["portal"]
    with services.sessions() as session:
        submission = session.scalars(select(Submission)).one()
        case = session.scalars(select(Case)).one()
    # The case is the ticket's: found by the receipt shown, replying to the key it derives.
    assert (case.receipt_lookup, case.reply_public_key) == (
        derived.lookup,
        derived.reply_public_key,
    )
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
    # The reply key was sealed in the browser, and it is the one the receipt derives.
    assert record["reply_public_key_from"] == "manifest"
    assert record["reply_public_key"] == crypto.b64encode(derived.reply_public_key)


def _derive(app: Flask, receipt: str) -> receipts.Derived:
    services = app.extensions["portal"]
    opslimit, memlimit = services.config.receipt_limits
    return receipts.derive(receipt, services.installation_secret, opslimit, memlimit)


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
# Relays' case files that claim more than they hold


def _case_file_with(tmp_path: Path, team_keys: TeamKeys, change: Callable[..., bytes]) -> bytes:
    """A case file made by `portal seal`, each member rewritten by `change(name, data)`."""
    attachment = tmp_path / "evidence.bin"
    attachment.write_bytes(b"e" * 1000)
    members = hostile_tar.members_of(_seal_case(tmp_path, team_keys, attachment))
    return hostile_tar.tar_of(*(change(name, data) for name, data in members.items()))


def stored_bytes(app: Flask) -> int:
    """The bytes in the blob store on disk: what the quota must count."""
    root = app.extensions["portal"].store.root
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def _sparse_blob(real_size: int) -> Callable[[str, bytes], bytes]:
    def change(name: str, data: bytes) -> bytes:
        if name.endswith(".blob"):
            return hostile_tar.gnu_sparse(name, data[:512], real_size)
        return hostile_tar.regular(name, data)

    return change


def _deep_index(name: str, data: bytes) -> bytes:
    return hostile_tar.regular(name, b"[" * 200_000 if name == bundle.INDEX_NAME else data)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        # Whatever is wrong inside, a person reads that the file is damaged, in their language.
        (_sparse_blob(3_000 * SEALED_CHUNK), "is damaged or incomplete"),
        (_deep_index, "is damaged or incomplete"),
    ],
    ids=["sparse-member", "deep-index"],
)
def test_a_case_file_that_claims_more_than_it_holds_is_refused_and_the_quota_holds(
    initialised: dict[str, str],
    team_keys: TeamKeys,
    tmp_path: Path,
    change: Callable[[str, bytes], bytes],
    reason: str,
) -> None:
    hostile = _case_file_with(tmp_path, team_keys, change)
    assert len(hostile) < 1024 * 1024
    # Room for 10 MiB more than what is stored; the sparse member would unpack to 197 MB.
    with site(initialised) as (app, client):
        post_parts(client, "/en/submit", [*report_parts(csrf_token(client))])
        used = stored_bytes(app)
    quota = used + 10 * 1024 * 1024
    with site(initialised, PORTAL_STORAGE_QUOTA_BYTES=str(quota)) as (app, client):
        token = csrf_token(client, "/en/sealed-case")
        parts = [("csrf_token", token), FilePart("case_file", "c.sealed", hostile)]
        response = post_parts(client, "/en/sealed-case", parts)
        text = response.get_data(as_text=True)
        assert response.status_code == 400, text
        assert reason in html.unescape(error_message(text))
        assert stored_bytes(app) == used
        assert stored(app).staging == []
        # The store is not full: an ordinary report still gets in.
        response = post_parts(client, "/en/submit", [*report_parts(csrf_token(client))])
        assert response.status_code == 200, error_message(response.get_data(as_text=True))


@pytest.fixture
def opened_in_staging(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files each request opens in its staging folder, in order."""
    names: list[str] = []
    real_open = storage.Staging.open

    def recording(self: storage.Staging, name: str) -> BinaryIO:
        names.append(name)
        return real_open(self, name)

    monkeypatch.setattr(storage.Staging, "open", recording)
    return names


def test_a_stray_file_part_with_a_sealed_upload_is_never_written(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, opened_in_staging: list[str]
) -> None:
    good = seal_like_the_browser(team_keys.public_key, {"a.pdf": b"a" * 70_000})
    stray = FilePart("photo", "p.jpg", b"plain text the server must not keep" * 1000)
    parts = good.parts(csrf_token(client))
    response = post_parts(client, "/en/submit/sealed", [*parts[:2], stray, *parts[2:]])
    assert response.status_code == 400
    assert DAMAGED in error_message(response.get_data(as_text=True))
    # The manifest and the one blob had somewhere to go; the stray part never did.
    assert opened_in_staging == ["part-0", "part-1"]
    assert_nothing_stored(app)


def test_a_stray_file_part_with_a_case_file_is_never_written(
    app: Flask,
    client: FlaskClient,
    team_keys: TeamKeys,
    tmp_path: Path,
    opened_in_staging: list[str],
) -> None:
    sealed = _seal_case(tmp_path, team_keys)
    parts = [
        ("csrf_token", csrf_token(client, "/en/sealed-case")),
        # Before the case file: it must not take the one place the case file has.
        FilePart("attachments", "p.jpg", b"plain text the server must not keep" * 1000),
        FilePart("case_file", "c.sealed", sealed),
    ]
    response = post_parts(client, "/en/sealed-case", parts)
    assert response.status_code == 200, error_message(response.get_data(as_text=True))
    # Only the case file was written as a part (its members then become the stored files).
    assert [name for name in opened_in_staging if name.startswith("part-")] == ["part-0"]
    assert len(stored(app).folders) == 1
    assert stored(app).staging == []


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
    prepared = prepare(client, "ru")
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
            "--reply-key",
            crypto.b64encode(prepared.reply_public_key),
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
    token = csrf_token(client, "/ru/submit")
    response = post_parts(client, "/ru/submit/sealed", sealed.parts(token, ticket=prepared.ticket))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert stored(app).rows == 1
    derived = _derive(app, receipt_of(response.get_data(as_text=True)))
    (record,) = export_and_decrypt(runner, team_keys, tmp_path / "offline")
    assert record["sealed_by"] == "browser"
    assert record["locale"] == "ru"
    assert record["fields"] == fields
    assert record["attachments"] == originals
    assert record["reply_public_key_from"] == "manifest"
    assert record["reply_public_key"] == crypto.b64encode(derived.reply_public_key)


# ---------------------------------------------------------------------------------------------
# The ticket: a report's receipt made before it is sealed


def _upload(client: FlaskClient, team_keys: TeamKeys, ticket: str | None) -> TestResponse:
    sealed = seal_like_the_browser(team_keys.public_key, {"a.pdf": b"a"})
    return post_parts(client, "/en/submit/sealed", sealed.parts(csrf_token(client), ticket=ticket))


def test_prepare_hands_out_a_reply_key_and_a_ticket_and_stores_nothing(
    app: Flask, client: FlaskClient
) -> None:
    token = csrf_token(client)
    response = client.post("/en/submit/prepare", data={"csrf_token": token})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    assert sorted(response.get_json()) == ["reply_public_key", "ticket"]
    assert_nothing_stored(app)
    with app.extensions["portal"].sessions() as session:
        assert session.scalars(select(Case)).all() == []
    # Each call makes a new receipt: a new reply key, a new ticket.
    again = prepare(client, token=token)
    assert again.reply_public_key != crypto.b64decode(response.get_json()["reply_public_key"])
    assert again.ticket != response.get_json()["ticket"]


@pytest.mark.parametrize("token", ["", "forged"])
def test_prepare_without_the_forms_token_is_refused(
    app: Flask, client: FlaskClient, token: str
) -> None:
    response = client.post("/en/submit/prepare", data={"csrf_token": token})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "This form had expired" in error_message(response.get_data(as_text=True))


def test_prepare_says_at_once_when_the_store_is_full(
    initialised: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_receipt_wanted(*args: object) -> None:
        raise AssertionError("a receipt was derived for a report that cannot be stored")

    monkeypatch.setattr(receipts, "derive", no_receipt_wanted)
    with site(initialised, PORTAL_STORAGE_QUOTA_BYTES=str(MANIFEST - 1)) as (_app, client):
        response = client.post("/en/submit/prepare", data={"csrf_token": csrf_token(client)})
        assert response.status_code == 503
        assert "temporarily unable" in error_message(response.get_data(as_text=True))


def test_prepare_takes_no_get(client: FlaskClient) -> None:
    assert client.get("/en/submit/prepare").status_code == 405


def _tamper(ticket: str) -> str:
    middle = len(ticket) // 2
    return ticket[:middle] + ("A" if ticket[middle] != "A" else "B") + ticket[middle + 1 :]


@pytest.mark.parametrize(
    "change",
    [lambda t: None, lambda t: "", _tamper, lambda t: t[:-8]],
    ids=["missing", "empty", "tampered", "cut"],
)
def test_a_report_without_a_good_ticket_is_refused_and_nothing_stored(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, change: Callable[[str], str | None]
) -> None:
    ticket = change(prepare(client).ticket)
    response = _upload(client, team_keys, ticket)
    assert response.status_code == 400
    # The script asks for a new ticket on the next try, so the remedy is to send again.
    assert "This form had expired" in error_message(response.get_data(as_text=True))
    assert_nothing_stored(app)


def test_a_ticket_from_another_browser_session_is_refused(
    app: Flask, client: FlaskClient, team_keys: TeamKeys
) -> None:
    ticket = prepare(app.test_client()).ticket
    response = _upload(client, team_keys, ticket)
    assert response.status_code == 400
    assert "This form had expired" in error_message(response.get_data(as_text=True))
    assert_nothing_stored(app)


def test_a_ticket_older_than_six_hours_is_refused(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = time.time()
    monkeypatch.setattr(tickets, "clock", lambda: made)
    ticket = prepare(client).ticket
    monkeypatch.setattr(tickets, "clock", lambda: made + tickets.MAX_AGE_SECONDS + 1)
    response = _upload(client, team_keys, ticket)
    assert response.status_code == 400
    assert "This form had expired" in error_message(response.get_data(as_text=True))
    assert_nothing_stored(app)
    monkeypatch.setattr(tickets, "clock", lambda: made + tickets.MAX_AGE_SECONDS - 60)
    assert _upload(client, team_keys, ticket).status_code == 200


def test_a_ticket_makes_one_case_only(app: Flask, client: FlaskClient, team_keys: TeamKeys) -> None:
    ticket = prepare(client).ticket
    first = _upload(client, team_keys, ticket)
    assert first.status_code == 200
    replayed = _upload(client, team_keys, ticket)
    assert replayed.status_code == 400
    text = replayed.get_data(as_text=True)
    assert "already received" in error_message(text)
    assert "receipt-number" not in text
    assert stored(app).rows == 1
    with app.extensions["portal"].sessions() as session:
        assert len(session.scalars(select(Case)).all()) == 1


def test_a_ticket_sent_twice_at_once_makes_one_case(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both uploads pass the look for a used ticket before either is stored: the database's
    # unique lookup value refuses the second.
    ticket = prepare(client).ticket
    assert _upload(client, team_keys, ticket).status_code == 200
    real_scalar = Session.scalar

    def blind(self: Session, statement: object, *args: object, **kwargs: object) -> object:
        if "receipt_lookup" in str(statement) and "cases.id" in str(statement):
            return None
        return real_scalar(self, statement, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Session, "scalar", blind)
    response = _upload(client, team_keys, ticket)
    assert response.status_code == 400
    assert "already received" in error_message(response.get_data(as_text=True))
    monkeypatch.undo()
    assert stored(app).rows == 1


def test_the_receipt_of_a_browser_sealed_report_is_stored_nowhere(
    app: Flask, client: FlaskClient, team_keys: TeamKeys
) -> None:
    token = csrf_token(client)
    prepared = client.post("/en/submit/prepare", data={"csrf_token": token})
    ticket = prepared.get_json()["ticket"]
    sealed = seal_like_the_browser(team_keys.public_key, {"a.pdf": b"a"})
    response = post_parts(client, "/en/submit/sealed", sealed.parts(token, ticket=ticket))
    receipt = receipt_of(response.get_data(as_text=True))
    digits = receipt.replace(" ", "")
    data_dir = Path(app.extensions["portal"].config.data_dir)
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for secret in (digits, receipt, ticket):
                assert secret.encode() not in content, path
    # Nor in a header or a cookie of either answer, nor in the ticket as it travels.
    for answer in (prepared, response):
        for name, value in answer.headers.items():
            assert digits not in value.replace(" ", ""), name
    assert digits not in ticket
    # The session cookie is signed, not encrypted, and may be compressed: read what it holds.
    cookie = client.get_cookie("portal_public")
    assert cookie is not None
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    held = json.dumps(serializer.loads(cookie.value))
    assert "csrf_token" in held
    for secret in (digits, receipt, ticket):
        assert secret not in held
