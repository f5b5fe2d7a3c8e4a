"""Resumable uploads of browser-sealed envelopes (`server.resumable`, `web.public.resumable`).

A report or follow-up sealed in the browser arrives in parts of whole chunks and is stored only
when every blob is whole, exactly as a one-request sealed upload. Parts sent twice, out of order,
with a gap, of the wrong length or from another session are refused with a clear answer and
leave nothing behind; a finished upload cannot be added to, and asking to finish it again shows
the same page; an abandoned one is removed after the expiry and counts against the quota until
then.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TeamKeys, csrf_token, prepare, receipt_of
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from test_export import export_and_decrypt
from test_sealed_upload import FIELDS, Sealed, seal_like_the_browser
from test_uploads import error_message
from werkzeug.test import TestResponse

from portal import create_app
from portal.server import resumable, retention
from portal.server.models import Submission

CHUNK = resumable.CHUNK
PART = resumable.PART_BYTES
TYPE = "application/offset+octet-stream"
# 20 chunks of plaintext: two parts, 16 chunks and 4.
BIG = bytes(range(256)) * (20 * 65536 // 256 - 3)


@dataclass
class Begun:
    """An upload as the script begins it."""

    sealed: Sealed
    location: str
    finish: str
    ticket: str


def begin(client: FlaskClient, team_keys: TeamKeys, files: dict[str, bytes] | None = None) -> Begun:
    """Prepare, seal like the browser, and create the upload."""
    prepared = prepare(client)
    sealed = seal_like_the_browser(
        team_keys.public_key,
        {"big.bin": BIG, "empty.bin": b""} if files is None else files,
        reply_key=prepared.reply_public_key,
    )
    response = create(client, sealed, prepared.ticket)
    assert response.status_code == 201, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["part_chunks"] == resumable.PART_CHUNKS
    assert response.headers["Location"] == answer["location"]
    return Begun(sealed, answer["location"], answer["finish"], prepared.ticket)


def create(
    client: FlaskClient, sealed: Sealed, ticket: str, chunks: str | None = None, **extra: str
) -> TestResponse:
    """POST the creation request for `sealed`."""
    counts = ",".join(str(len(blob) // CHUNK) for blob in sealed.blobs)
    return client.post(
        "/en/submit/uploads",
        data={
            "csrf_token": csrf_token(client),
            "website": "",
            "ticket": ticket,
            "manifest": base64.b64encode(sealed.manifest).decode(),
            "chunks": counts if chunks is None else chunks,
            **extra,
        },
    )


def patch(client: FlaskClient, begun: Begun, blob: int, offset: int, data: bytes) -> TestResponse:
    """Send one part."""
    return client.patch(
        f"{begun.location}?blob={blob}",
        data=data,
        content_type=TYPE,
        headers={"Upload-Offset": str(offset)},
    )


def part(begun: Begun, blob: int, number: int) -> tuple[int, bytes]:
    """The offset and bytes of part `number` of a blob."""
    start = number * PART
    return start, begun.sealed.blobs[blob][start : start + PART]


def send_everything(client: FlaskClient, begun: Begun) -> None:
    """Every part of every blob, in order."""
    for blob, data in enumerate(begun.sealed.blobs):
        for start in range(0, len(data), PART):
            response = patch(client, begun, blob, start, data[start : start + PART])
            assert response.status_code == 204, response.get_data(as_text=True)
            assert response.headers["Upload-Offset"] == str(start + len(data[start:][:PART]))


def begin_follow_up(
    client: FlaskClient, team_keys: TeamKeys, files: dict[str, bytes], lang: str = "en"
) -> Begun:
    """A report sent and stored, then a follow-up to its case begun, in `lang`."""
    first = begin(client, team_keys, {"a.bin": b"first"})
    send_everything(client, first)
    receipt = receipt_of(finish(client, first).get_data(as_text=True))
    sealed = seal_like_the_browser(
        team_keys.public_key, files, kind="follow-up", fields={"description": "more"}
    )
    response = client.post(
        f"/{lang}/follow-up/uploads",
        data={
            "csrf_token": csrf_token(client, f"/{lang}/follow-up"),
            "receipt": receipt,
            "manifest": base64.b64encode(sealed.manifest).decode(),
            "chunks": ",".join(str(len(blob) // CHUNK) for blob in sealed.blobs),
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    answer = response.get_json()
    return Begun(sealed, answer["location"], answer["finish"], "")


def finish(client: FlaskClient, begun: Begun) -> TestResponse:
    """Ask for the upload to be stored."""
    return client.post(begun.finish, data={"ticket": begun.ticket})


def offsets(client: FlaskClient, begun: Begun) -> list[int]:
    """Where each blob stands, as the script asks after a failure."""
    response = client.get(begun.location)
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(response.get_json()["offsets"])


def rows(app: Flask) -> int:
    """Submission rows stored."""
    with app.extensions["portal"].sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Submission)) or 0)


def upload_folders(app: Flask) -> list[Path]:
    """Unfinished uploads' folders."""
    folder = app.extensions["portal"].store.uploads
    return [p for p in folder.iterdir() if p.is_dir()] if folder.exists() else []


def test_a_report_sent_in_parts_is_stored_whole_and_opens_offline(
    app: Flask, client: FlaskClient, runner: CliRunner, team_keys: TeamKeys, tmp_path: Path
) -> None:
    begun = begin(client, team_keys)
    assert offsets(client, begun) == [0, 0]
    send_everything(client, begun)
    head = client.head(f"{begun.location}?blob=0")
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == str(20 * CHUNK)
    response = finish(client, begun)
    text = response.get_data(as_text=True)
    assert response.status_code == 200, text
    assert 'data-sealed-by="browser"' in text
    receipt_of(text)
    assert rows(app) == 1
    assert upload_folders(app) == []
    (record,) = export_and_decrypt(runner, team_keys, tmp_path)
    assert record["fields"] == FIELDS
    assert record["attachments"] == {"big.bin": BIG, "empty.bin": b""}


def test_a_part_sent_twice_is_refused_with_where_the_file_stands(
    app: Flask, client: FlaskClient, team_keys: TeamKeys
) -> None:
    begun = begin(client, team_keys)
    offset, data = part(begun, 0, 0)
    assert patch(client, begun, 0, offset, data).status_code == 204
    again = patch(client, begun, 0, offset, data)
    assert again.status_code == 409
    assert again.headers["Upload-Offset"] == str(PART)
    assert "stands at" in again.get_json()["error"]
    assert offsets(client, begun) == [PART, 0]


@pytest.mark.parametrize(
    ("sent", "stands"),
    [
        pytest.param([1], 0, id="out-of-order"),
        pytest.param([0, 2], PART, id="gap"),
    ],
)
def test_a_part_that_does_not_follow_is_refused_and_nothing_of_it_kept(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, sent: list[int], stands: int
) -> None:
    big = bytes(40 * 65536)
    begun = begin(client, team_keys, {"big.bin": big})
    *before, last = sent
    for number in before:
        assert patch(client, begun, 0, *part(begun, 0, number)).status_code == 204
    response = patch(client, begun, 0, *part(begun, 0, last))
    assert response.status_code == 409
    assert response.headers["Upload-Offset"] == str(stands)
    assert offsets(client, begun) == [stands]
    (folder,) = upload_folders(app)
    assert not [p for p in folder.iterdir() if p.name.startswith(".part-")]


@pytest.mark.parametrize(
    ("offset", "length", "reason"),
    [
        pytest.param(0, CHUNK - 1, "whole number", id="not-whole-chunks"),
        pytest.param(0, 0, "its length", id="empty"),
        pytest.param(0, 15 * CHUNK, "except the last", id="short-part-not-last"),
        pytest.param(0, 17 * CHUNK, "except the last", id="too-long"),
        pytest.param(CHUNK, 16 * CHUNK, "starting at a multiple", id="mid-part-offset"),
        pytest.param(PART, 16 * CHUNK, "passes", id="past-the-end"),
    ],
)
def test_a_part_of_the_wrong_length_or_place_is_refused(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, offset: int, length: int, reason: str
) -> None:
    begun = begin(client, team_keys)
    response = patch(client, begun, 0, offset, bytes(length))
    assert response.status_code == 400
    assert reason in response.get_json()["error"]
    assert offsets(client, begun) == [0, 0]


@pytest.mark.parametrize(
    ("query", "headers", "content_type"),
    [
        pytest.param("?blob=2", {"Upload-Offset": "0"}, TYPE, id="no-such-file"),
        pytest.param("?blob=x", {"Upload-Offset": "0"}, TYPE, id="file-not-a-number"),
        pytest.param("?blob=0", {}, TYPE, id="no-offset"),
        pytest.param("?blob=0", {"Upload-Offset": "-0"}, TYPE, id="offset-not-digits"),
        pytest.param("?blob=0", {"Upload-Offset": "0"}, "text/plain", id="wrong-type"),
    ],
)
def test_a_part_that_does_not_say_what_it_is_is_refused(
    client: FlaskClient, team_keys: TeamKeys, query: str, headers: dict[str, str], content_type: str
) -> None:
    begun = begin(client, team_keys)
    response = client.patch(
        begun.location + query, data=bytes(PART), content_type=content_type, headers=headers
    )
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert offsets(client, begun) == [0, 0]


def test_another_sessions_upload_is_not_found(
    app: Flask, client: FlaskClient, team_keys: TeamKeys
) -> None:
    begun = begin(client, team_keys)
    assert patch(client, begun, 0, *part(begun, 0, 0)).status_code == 204
    stranger = app.test_client()
    csrf_token(stranger)
    response = patch(stranger, begun, 0, *part(begun, 0, 1))
    assert response.status_code == 404
    assert "another browser session" in response.get_json()["error"]
    assert stranger.get(begun.location).status_code == 404
    assert stranger.post(begun.finish, data={"ticket": begun.ticket}).status_code == 404
    assert offsets(client, begun) == [PART, 0]
    assert rows(app) == 0


def test_a_finished_upload_takes_nothing_more_and_finishing_again_shows_the_same_receipt(
    app: Flask, client: FlaskClient, team_keys: TeamKeys
) -> None:
    begun = begin(client, team_keys)
    send_everything(client, begun)
    receipt = receipt_of(finish(client, begun).get_data(as_text=True))
    response = patch(client, begun, 0, *part(begun, 0, 0))
    assert response.status_code == 409
    assert "already received" in response.get_json()["error"]
    # The answer to the finish was lost on the way: asking again shows the same receipt.
    again = finish(client, begun)
    assert again.status_code == 200
    assert receipt_of(again.get_data(as_text=True)) == receipt
    assert rows(app) == 1
    # Another session learns nothing of it, and a wrong ticket gets no receipt.
    stranger = app.test_client()
    assert stranger.post(begun.finish, data={"ticket": begun.ticket}).status_code == 404
    wrong = client.post(begun.finish, data={"ticket": prepare(client).ticket})
    assert wrong.status_code == 409
    assert "already received" in error_message(wrong.get_data(as_text=True))


def test_finishing_early_says_what_is_missing_and_the_upload_goes_on(
    app: Flask, client: FlaskClient, team_keys: TeamKeys
) -> None:
    begun = begin(client, team_keys)
    assert patch(client, begun, 0, *part(begun, 0, 0)).status_code == 204
    early = finish(client, begun)
    assert early.status_code == 400
    assert "File 0 has not fully arrived" in error_message(early.get_data(as_text=True))
    assert rows(app) == 0
    assert patch(client, begun, 0, *part(begun, 0, 1)).status_code == 204
    assert patch(client, begun, 1, *part(begun, 1, 0)).status_code == 204
    assert finish(client, begun).status_code == 200
    assert rows(app) == 1


def test_finishing_with_another_ticket_is_refused(
    app: Flask, client: FlaskClient, team_keys: TeamKeys
) -> None:
    begun = begin(client, team_keys)
    send_everything(client, begun)
    response = client.post(begun.finish, data={"ticket": prepare(client).ticket})
    assert response.status_code == 400
    assert rows(app) == 0
    assert finish(client, begun).status_code == 200


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"chunks": "0"}, "at least one chunk", id="empty-blob"),
        pytest.param({"chunks": "1,x"}, "does not say", id="chunks-not-numbers"),
        pytest.param({"manifest": "not base64!"}, "does not say", id="manifest-not-base64"),
        pytest.param(
            {"manifest": base64.b64encode(b"x" * 100).decode()}, "4096", id="manifest-length"
        ),
        pytest.param({"chunks": "100000"}, "larger than", id="too-large"),
        pytest.param({"ticket": "forged"}, "expired", id="bad-ticket"),
        pytest.param({"csrf_token": "stale"}, "expired", id="stale-form"),
    ],
)
def test_an_upload_that_cannot_be_honest_is_not_begun(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, change: dict[str, str], reason: str
) -> None:
    prepared = prepare(client)
    sealed = seal_like_the_browser(team_keys.public_key, {"a.bin": b"a"})
    data = {
        "csrf_token": csrf_token(client),
        "ticket": prepared.ticket,
        "manifest": base64.b64encode(sealed.manifest).decode(),
        "chunks": "1",
        **change,
    }
    response = client.post("/en/submit/uploads", data=data)
    assert response.status_code == 400
    assert reason in error_message(response.get_data(as_text=True))
    assert upload_folders(app) == []


def test_an_abandoned_upload_counts_against_the_quota_and_is_removed_after_the_expiry(
    app: Flask, client: FlaskClient, team_keys: TeamKeys
) -> None:
    services = app.extensions["portal"]
    begun = begin(client, team_keys)
    declared = len(begun.sealed.manifest) + 21 * CHUNK
    # Counted for all it will hold before a byte of it arrives.
    assert services.store.staging_bytes() >= declared
    assert patch(client, begun, 0, *part(begun, 0, 0)).status_code == 204
    (folder,) = upload_folders(app)
    assert retention.sweep_stale(services) == 0
    hours = services.config.upload_expiry_hours
    assert hours == 24
    old = time.time() - hours * 3600 - 60
    os.utime(folder, (old, old))
    assert retention.sweep_stale(services) == 1
    assert upload_folders(app) == []
    assert services.store.staging_bytes() == 0
    response = patch(client, begun, 0, *part(begun, 0, 1))
    assert response.status_code == 404
    assert rows(app) == 0


@contextmanager
def site(initialised: dict[str, str], **overrides: str) -> Iterator[Flask]:
    """A site of the test deployment with settings changed."""
    app = create_app("public", {**initialised, **overrides})
    app.config.update(TESTING=True)
    try:
        yield app
    finally:
        app.extensions["portal"].engine.dispose()


def test_an_upload_the_quota_has_no_room_for_is_not_begun(
    initialised: dict[str, str], team_keys: TeamKeys
) -> None:
    with site(initialised, PORTAL_STORAGE_QUOTA_BYTES=str(10 * CHUNK)) as app:
        app.config["RATELIMIT_ENABLED"] = False
        client = app.test_client()
        prepared = prepare(client)
        sealed = seal_like_the_browser(team_keys.public_key, {"big.bin": BIG})
        response = create(client, sealed, prepared.ticket)
        assert response.status_code == 503
        assert upload_folders(app) == []


def test_parts_spend_the_sessions_part_budget_not_the_report_budget(
    initialised: dict[str, str], team_keys: TeamKeys
) -> None:
    overrides = {
        "PORTAL_REPORT_RATE_LIMIT": "2 per minute",
        "PORTAL_UPLOAD_PART_RATE_LIMIT": "6 per minute",
    }
    with site(initialised, **overrides) as app:
        client = app.test_client()
        # prepare spends the report budget, creation the sealed reports'; parts neither.
        begun = begin(client, team_keys, {"big.bin": bytes(40 * 65536)})
        for number in range(3):
            assert patch(client, begun, 0, *part(begun, 0, number)).status_code == 204
        assert offsets(client, begun) == [40 * CHUNK]
        assert finish(client, begun).status_code == 200
        # Five of the session's six are spent; the sixth is answered, the seventh refused.
        assert client.get(begun.location).status_code == 409
        assert client.get(begun.location).status_code == 429


def test_a_follow_up_sent_in_parts_joins_its_case(
    app: Flask, client: FlaskClient, runner: CliRunner, team_keys: TeamKeys, tmp_path: Path
) -> None:
    begun = begin_follow_up(client, team_keys, {"more.bin": BIG})
    send_everything(client, begun)
    done = client.post(begun.finish)
    assert done.status_code == 200
    assert 'data-sealed-by="browser"' in done.get_data(as_text=True)
    with app.extensions["portal"].sessions() as session:
        cases = {s.case_id for s in session.scalars(select(Submission))}
    assert len(cases) == 1
    records = export_and_decrypt(runner, team_keys, tmp_path)
    assert records[-1]["attachments"] == {"more.bin": BIG}


def test_a_follow_up_upload_needs_a_receipt_that_opens_a_case(
    app: Flask, client: FlaskClient, team_keys: TeamKeys
) -> None:
    sealed = seal_like_the_browser(team_keys.public_key, {}, kind="follow-up")
    response = client.post(
        "/en/follow-up/uploads",
        data={
            "csrf_token": csrf_token(client, "/en/follow-up"),
            "receipt": "1" * 25,
            "manifest": base64.b64encode(sealed.manifest).decode(),
            "chunks": "",
        },
    )
    assert response.status_code == 400
    assert "No case matches" in error_message(response.get_data(as_text=True))
    assert upload_folders(app) == []


def test_what_a_person_may_be_told_of_an_upload_is_said_in_the_pages_language(
    app: Flask, client: FlaskClient, team_keys: TeamKeys
) -> None:
    # An upload begun in one session, then taken up by another (a New Identity in Tor
    # Browser forgets the session): French answers, in the script's JSON and on the page.
    begun = begin(client, team_keys)
    stranger = app.test_client()
    csrf_token(stranger, "/fr/submit")
    in_french = Begun(
        begun.sealed,
        begun.location.replace("/en/", "/fr/", 1),
        begun.finish.replace("/en/", "/fr/", 1),
        begun.ticket,
    )
    gone = "Cet envoi n\N{RIGHT SINGLE QUOTATION MARK}est pas connu ici : il est déjà terminé"
    response = patch(stranger, in_french, 0, *part(begun, 0, 0))
    assert response.status_code == 404
    assert response.get_json()["error"].startswith(gone)
    page = stranger.post(in_french.finish, data={"ticket": begun.ticket})
    assert page.status_code == 404
    assert error_message(page.get_data(as_text=True)).startswith(gone)

    # More than the site accepts, in Arabic.
    prepared = prepare(client, "ar")
    response = client.post(
        "/ar/submit/uploads",
        data={
            "csrf_token": csrf_token(client, "/ar/submit"),
            "ticket": prepared.ticket,
            "manifest": base64.b64encode(begun.sealed.manifest).decode(),
            "chunks": "100000",
        },
    )
    assert response.status_code == 400
    assert (
        error_message(response.get_data(as_text=True)) == "حجم الإرسال أكبر مما يقبله هذا الموقع."
    )


def test_a_follow_up_whose_case_went_meanwhile_is_told_so_in_its_language(
    app: Flask, client: FlaskClient, team_keys: TeamKeys
) -> None:
    begun = begin_follow_up(client, team_keys, {"more.bin": b"more"}, "ru")
    send_everything(client, begun)
    # Retention runs out for the case while the follow-up is on its way.
    services = app.extensions["portal"]
    with services.sessions() as session:
        retention.delete(services, session, list(session.scalars(select(Submission))))
    done = client.post(begun.finish)
    assert done.status_code == 400
    assert error_message(done.get_data(as_text=True)).startswith(
        "Случая по этой квитанции на сайте больше нет"
    )
    assert rows(app) == 0
