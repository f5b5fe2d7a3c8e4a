"""Attachments kept across a form that comes back: only for a trusted form, only what was asked
for, within a budget per session and for the whole site, and swept within the hour once
abandoned."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import csrf_token
from flask import Flask
from flask.testing import FlaskClient
from test_uploads import FilePart, Part, post_parts, staging_files, stored

from portal import create_app
from portal.formats import crypto
from portal.server import retention, storage
from portal.web import kept

CHUNK = crypto.SEALED_CHUNK_SIZE
NO_CONSENT = ("description", "the consent questions are left unanswered")


@contextmanager
def site(initialised: dict[str, str], **overrides: str) -> Iterator[tuple[Flask, FlaskClient]]:
    """The public site of the test deployment with some settings changed."""
    app = create_app("public", {**initialised, **overrides})
    app.config.update(TESTING=True, RATELIMIT_ENABLED=False)
    try:
        yield app, app.test_client()
    finally:
        app.extensions["portal"].engine.dispose()


def one_byte_files(count: int, field: str = "attachments") -> list[Part]:
    """`count` attachments of one byte each: each costs a whole sealed chunk on disk."""
    return [FilePart(field, f"{i}.txt", b"x") for i in range(count)]


def kept_bytes(app: Flask) -> int:
    """What the staging and kept folders of the deployment hold."""
    return int(app.extensions["portal"].store.staging_bytes())


def _receipt(client: FlaskClient) -> str:
    from test_public import submit  # here: test_public imports this module's neighbours

    return submit(client)


@pytest.mark.parametrize("path", ["/en/submit", "/en/follow-up"])
@pytest.mark.parametrize("form", ["no-session", "forged-token", "expired-token"])
def test_a_form_that_fails_its_csrf_check_keeps_nothing_on_disk(
    app: Flask, client: FlaskClient, path: str, form: str
) -> None:
    receipt = _receipt(client) if path == "/en/follow-up" else ""
    token = csrf_token(client)
    if form == "no-session":
        client = app.test_client()  # no cookie at all, as a script posting cold would send
    elif form == "forged-token":
        token = "forged"
    else:
        app.config["WTF_CSRF_TIME_LIMIT"] = -1
    parts: list[Part] = [("csrf_token", token), NO_CONSENT, *one_byte_files(100)]
    if path == "/en/follow-up":
        parts = [("step", "add"), ("receipt", receipt), *parts]
    response = post_parts(client, path, parts)
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Your attachments could not be kept" in text
    assert 'name="keep_file"' not in text
    assert stored(app).staging == []
    assert kept_bytes(app) == 0


def test_a_file_part_under_another_name_is_never_written(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = storage.Staging.open

    def spy(self: storage.Staging, name: str) -> object:
        opened.append(name)
        return real_open(self, name)

    monkeypatch.setattr(storage.Staging, "open", spy)
    parts = [
        ("csrf_token", csrf_token(client)),
        NO_CONSENT,
        FilePart("attachments", "evidence.txt", b"evidence"),
        *one_byte_files(50, field="photo"),
        FilePart("description", "d.txt", b"a file where text belongs"),
    ]
    response = post_parts(client, "/en/submit", parts)
    assert response.status_code == 400
    assert opened == ["part-0"]
    # The one attachment is kept, and nothing else of the request.
    assert [p.name for p in staging_files(app)] == ["part-0"]
    assert kept_bytes(app) == CHUNK


@pytest.mark.parametrize("setting", ["PORTAL_KEPT_SESSION_BYTES", "PORTAL_KEPT_TOTAL_BYTES"])
def test_kept_attachments_stay_within_their_budgets(
    initialised: dict[str, str], setting: str
) -> None:
    def post(poster: FlaskClient, files: int) -> str:
        parts = [("csrf_token", csrf_token(poster)), NO_CONSENT, *one_byte_files(files)]
        return post_parts(poster, "/en/submit", parts).get_data(as_text=True)

    with site(initialised, **{setting: str(2 * CHUNK)}) as (app, client):
        # Over the budget at once: let go, and asked for again.
        assert "Your attachments could not be kept" in post(client, 3)
        assert kept_bytes(app) == 0
        # Within it: kept.
        assert post(client, 2).count('name="keep_file"') == 2
        assert kept_bytes(app) == 2 * CHUNK
        # One more from the same session (its own budget) or from another (the site's).
        poster = client if setting == "PORTAL_KEPT_SESSION_BYTES" else app.test_client()
        assert "Your attachments could not be kept" in post(poster, 1)
        assert kept_bytes(app) == 2 * CHUNK


def test_the_budget_of_one_session_leaves_another_its_own(initialised: dict[str, str]) -> None:
    with site(initialised, PORTAL_KEPT_SESSION_BYTES=str(CHUNK)) as (app, client):
        for poster in (client, app.test_client()):
            post_parts(
                poster,
                "/en/submit",
                [("csrf_token", csrf_token(poster)), NO_CONSENT, *one_byte_files(1)],
            )
        assert kept_bytes(app) == 2 * CHUNK


def test_a_kept_token_brings_nothing_back_in_another_session(
    app: Flask, client: FlaskClient
) -> None:
    response = post_parts(
        client, "/en/submit", [("csrf_token", csrf_token(client)), NO_CONSENT, *one_byte_files(1)]
    )
    text = response.get_data(as_text=True)
    marker = 'name="kept_files" value="'
    token = text[text.index(marker) + len(marker) :].split('"', 1)[0]
    other = app.test_client()
    response = post_parts(
        other,
        "/en/submit",
        [("csrf_token", csrf_token(other)), NO_CONSENT, (kept.FIELD, token), (kept.KEEP, "0")],
    )
    assert 'name="keep_file"' not in response.get_data(as_text=True)
    # The first session's file still waits for it.
    assert kept_bytes(app) == CHUNK


def _age(folder: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(folder, (then, then))


def test_abandoned_staging_is_swept_from_requests_at_most_once_an_hour(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = app.extensions["portal"].store
    store.ensure()

    def leftovers() -> dict[str, Path]:
        made = {
            "stale upload": store.incoming / "abandonedupload",
            "recent upload": store.incoming / "slowupload",
            "stale kept": store.kept / "abandonedform",
            "recent kept": store.kept / "recentform",
        }
        for path in made.values():
            path.mkdir()
            (path / "part-0").write_bytes(b"\0" * CHUNK)
        _age(made["stale upload"], retention.STALE_SECONDS + 60)
        _age(made["recent upload"], kept.MAX_AGE_SECONDS + 60)  # a long upload, still alive
        _age(made["stale kept"], kept.MAX_AGE_SECONDS + 60)
        return made

    def left() -> set[str]:
        return {name for name, path in made.items() if path.exists()}

    def visit() -> None:
        # The sweep runs when the server closes the response, after the page has been sent.
        client.get("/en/").close()

    clock = [time.monotonic()]
    monkeypatch.setattr(retention.time, "monotonic", lambda: clock[0])
    made = leftovers()
    visit()
    assert left() == {"recent upload", "recent kept"}
    for path in made.values():
        if path.exists():
            for item in path.iterdir():
                item.unlink()
            path.rmdir()
    # Within the hour, requests leave even stale folders for the next sweep.
    made = leftovers()
    clock[0] += retention.SWEEP_EVERY_SECONDS - 1
    visit()
    assert left() == set(made)
    clock[0] += 2
    visit()
    assert left() == {"recent upload", "recent kept"}
