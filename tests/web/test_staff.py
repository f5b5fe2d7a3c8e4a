"""The staff site: sign-in, sessions, CSRF, the list, download, deletion and the audit log."""

from __future__ import annotations

import io
import re
import tarfile
from datetime import date, timedelta

import nacl.pwhash
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from test_staff_helpers import (
    START,
    Clock,
    Staff,
    add_account,
    code,
    make_submission,
    services_of,
    sign_in,
    token,
)

from portal.formats import bundle, envelope
from portal.server import accounts
from portal.server.models import AuditEvent, Case, StaffMember, Submission

pytest_plugins = ["test_staff_helpers"]
pytestmark = pytest.mark.usefixtures("cheap_staff_kdf")

WRONG = "The name, passphrase or code is not right."
PAGES = ["/", "/reply", "/audit"]
CSRF_FIELD = re.compile(r'name="csrf_token" value="[^"]+"')


def _events(app: Flask) -> list[AuditEvent]:
    with services_of(app).sessions() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def _rows(app: Flask) -> list[Submission]:
    with services_of(app).sessions() as session:
        return list(session.scalars(select(Submission)))


# ---------------------------------------------------------------------------------------------
# Signing in


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_sign_in(staff_app: Flask, path: str) -> None:
    response = staff_app.test_client().get(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("path", ["/download", "/delete", "/logout", "/reply"])
def test_posts_need_sign_in(staff_app: Flask, path: str) -> None:
    client = staff_app.test_client()
    response = client.post(path, data={"csrf_token": token(client), "scope": "pending"})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")


def test_sign_in_and_out(staff_app: Flask, clock: Clock) -> None:
    credentials = add_account(staff_app)
    client = staff_app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert 'type="password"' in page
    assert 'autocomplete="one-time-code"' in page
    status, where = sign_in(client, credentials, clock)
    assert (status, where) == (303, "/")
    page = client.get("/").get_data(as_text=True)
    assert "Sign out (amina)" in page
    response = client.post("/logout", data={"csrf_token": token(client, "/")})
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?out=1"
    assert client.get("/").status_code == 303
    assert [e.action for e in _events(staff_app)] == ["login", "logout"]


def test_session_cookie_flags(staff_app: Flask, clock: Clock) -> None:
    credentials = add_account(staff_app)
    client = staff_app.test_client()
    client.get("/login")
    response = client.post(
        "/login",
        data={
            "csrf_token": token(client),
            "name": "amina",
            "passphrase": credentials.passphrase,
            "code": code(credentials, clock()),
        },
    )
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("portal_staff=")
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite"} <= flags
    assert "samesite=strict" in cookie.lower()
    # A session cookie: no Expires or Max-Age, so it goes when the browser closes.
    assert "expires" not in flags
    assert "max-age" not in flags


@pytest.mark.parametrize("which", ["passphrase", "code", "name"])
def test_wrong_factor_gives_one_message(staff_app: Flask, clock: Clock, which: str) -> None:
    credentials = add_account(staff_app)
    client = staff_app.test_client()
    right = code(credentials, clock())
    status, page = sign_in(
        client,
        accounts.Credentials(
            "nobody" if which == "name" else "amina",
            credentials.passphrase,
            credentials.totp_secret,
        ),
        clock,
        passphrase="wrong horse battery" if which == "passphrase" else None,
        totp=("000000" if right != "000000" else "111111") if which == "code" else None,
    )
    assert status == 401
    assert WRONG in page
    assert "passphrase is wrong" not in page.lower()
    assert "code is wrong" not in page.lower()
    event = _events(staff_app)[-1]
    assert event.action == "login-failed"
    assert event.staff_name == ("(unknown name)" if which == "name" else "amina")


def test_wrong_passphrase_and_wrong_code_pages_are_identical(
    staff_app: Flask, clock: Clock
) -> None:
    credentials = add_account(staff_app)
    pages = []
    for passphrase, totp in ((None, "000000"), ("wrong words", None)):
        client = staff_app.test_client()
        _status, page = sign_in(client, credentials, clock, passphrase, totp)
        pages.append(re.sub(r'name="csrf_token" value="[^"]+"', "", page))
    assert pages[0] == pages[1]


def test_a_code_is_never_accepted_twice(staff_app: Flask, clock: Clock) -> None:
    credentials = add_account(staff_app)
    client = staff_app.test_client()
    used = code(credentials, clock())
    assert sign_in(client, credentials, clock, totp=used)[0] == 303
    client.post("/logout", data={"csrf_token": token(client, "/")})
    status, page = sign_in(client, credentials, clock, totp=used)
    assert status == 401
    assert WRONG in page


def test_repeated_failures_lock_the_account_and_say_until_when_only_to_its_holder(
    staff_app: Flask, clock: Clock
) -> None:
    credentials = add_account(staff_app)
    client = staff_app.test_client()
    for _ in range(accounts.SLOW_AFTER):
        assert WRONG in sign_in(client, credentials, clock, passphrase="wrong")[1]
    # Locked now: a wrong try hears what any wrong try hears.
    status, page = sign_in(client, credentials, clock, passphrase="wrong")
    assert (status, WRONG in page, "locked" in page) == (401, True, False)
    # The right passphrase and code do not get in while it is locked, and are told why.
    status, page = sign_in(client, credentials, clock)
    assert status == 401
    assert "This account is locked until 09:17 UTC" in page
    assert "ask an administrator" in page
    clock.moment = START.replace(minute=17, second=0)
    sign_in(client, credentials, clock, passphrase="wrong")
    clock.moment = START.replace(minute=19, second=0)
    assert WRONG in sign_in(client, credentials, clock, passphrase="wrong")[1]
    assert "locked until 09:34 UTC" in sign_in(client, credentials, clock)[1]
    clock.moment = START.replace(minute=34, second=5)
    assert sign_in(client, credentials, clock)[0] == 303
    actions = [e.action for e in _events(staff_app)]
    assert actions.count("login-failed") == 5
    assert actions.count("login-locked") == 3
    assert actions[-1] == "login"


def test_unknown_locked_and_wrong_look_alike_and_cost_alike(
    staff_app: Flask, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = add_account(staff_app)
    other = add_account(staff_app, "omar")
    for _ in range(accounts.LOCK_AFTER):
        sign_in(staff_app.test_client(), locked, clock, passphrase="wrong")
    verifications: list[str] = []
    real = nacl.pwhash.argon2id.verify

    def counting(hashed: bytes, password: bytes) -> bool:
        verifications.append(hashed.decode("ascii").split("$")[3])
        return bool(real(hashed, password))

    monkeypatch.setattr(nacl.pwhash.argon2id, "verify", counting)
    pages, costs = {}, {}
    tries = {
        "unknown": accounts.Credentials("nobody", other.passphrase, other.totp_secret),
        "locked": locked,
        "wrong": other,
    }
    for case, credentials in tries.items():
        verifications.clear()
        status, page = sign_in(staff_app.test_client(), credentials, clock, passphrase="wrong")
        pages[case] = (status, CSRF_FIELD.sub("", page))
        costs[case] = list(verifications)
    assert pages["unknown"] == pages["locked"] == pages["wrong"]
    assert pages["wrong"][0] == 401
    assert costs["unknown"] == costs["locked"] == costs["wrong"]
    assert len(costs["wrong"]) == 1


def test_login_rate_limit_is_per_account(staff_app: Flask, clock: Clock) -> None:
    staff_app.config["RATELIMIT_ENABLED"] = True
    credentials = add_account(staff_app)
    other = add_account(staff_app, "bob")
    client = staff_app.test_client()
    limit = int(services_of(staff_app).config.login_rate_limit.split()[0])
    statuses = [
        sign_in(client, credentials, clock, passphrase="wrong")[0] for _ in range(limit + 1)
    ]
    assert statuses[-1] == 429
    assert 429 not in statuses[:-1]
    # Another account is not held back by the first one's attempts.
    assert sign_in(client, other, clock)[0] == 303


def test_login_form_without_csrf_is_refused_with_a_message(staff_app: Flask, clock: Clock) -> None:
    credentials = add_account(staff_app)
    client = staff_app.test_client()
    client.get("/login")
    response = client.post(
        "/login",
        data={
            "name": "amina",
            "passphrase": credentials.passphrase,
            "code": code(credentials, clock()),
        },
    )
    assert response.status_code == 400
    assert "The sign-in form had expired" in response.get_data(as_text=True)
    assert client.get("/").status_code == 303  # not signed in


# ---------------------------------------------------------------------------------------------
# Sessions


def test_session_expires_after_inactivity(staff: Staff, clock: Clock, staff_app: Flask) -> None:
    minutes = services_of(staff_app).config.staff_session_minutes
    clock.advance(minutes=minutes - 1)
    assert staff.client.get("/").status_code == 200
    # Activity moved the limit on.
    clock.advance(minutes=minutes - 1)
    assert staff.client.get("/").status_code == 200
    clock.advance(minutes=minutes, seconds=1)
    response = staff.client.get("/")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?ended=1"
    assert "Your session has ended" in staff.client.get("/login?ended=1").get_data(as_text=True)
    # And it stays ended: the server forgot it.
    clock.moment = START
    assert staff.client.get("/").status_code == 303


def test_logout_ends_the_session_on_the_server(staff: Staff) -> None:
    stolen = staff.client.get_cookie("portal_staff")
    assert stolen is not None
    staff.client.post("/logout", data={"csrf_token": token(staff.client, "/")})
    staff.client.set_cookie("portal_staff", stolen.value)
    assert staff.client.get("/").status_code == 303


@pytest.mark.parametrize("command", ["remove", "reset"])
def test_remove_and_reset_end_sessions(staff: Staff, staff_app: Flask, command: str) -> None:
    with services_of(staff_app).sessions() as session:
        getattr(accounts, command)(session, "amina")
        session.commit()
    assert staff.client.get("/").status_code == 303


def test_a_new_sign_in_ends_the_older_session(staff: Staff, staff_app: Flask, clock: Clock) -> None:
    other = staff_app.test_client()
    clock.advance(seconds=30)
    assert sign_in(other, staff.credentials, clock)[0] == 303
    assert other.get("/").status_code == 200
    assert staff.client.get("/").status_code == 303


def test_session_holds_only_id_nonce_and_time(staff: Staff) -> None:
    with staff.client.session_transaction() as session:
        assert set(session) <= {"staff", "nonce", "seen", "csrf_token"}
        assert staff.credentials.passphrase not in str(dict(session))


# ---------------------------------------------------------------------------------------------
# CSRF on every form


@pytest.mark.parametrize("path", ["/download", "/delete", "/logout"])
def test_every_form_needs_its_csrf_token(staff: Staff, staff_app: Flask, path: str) -> None:
    submission = make_submission(staff_app)
    response = staff.client.post(
        path, data={"ids": [submission.id], "confirm": "yes", "scope": "pending"}
    )
    assert response.status_code == 400
    assert "This form had expired" in response.get_data(as_text=True)
    assert len(_rows(staff_app)) == 1
    assert _rows(staff_app)[0].exported_day is None
    assert staff.client.get("/").status_code == 200  # still signed in


def test_reply_upload_needs_its_csrf_token(staff: Staff) -> None:
    response = staff.client.post(
        "/reply",
        data={"reply_file": (io.BytesIO(b"x"), "r.tar")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "This form had expired" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", PAGES)
def test_forms_carry_csrf_tokens_and_no_script(staff: Staff, staff_app: Flask, path: str) -> None:
    make_submission(staff_app)
    page = staff.client.get(path).get_data(as_text=True)
    forms = page.count("<form")
    assert forms >= 1
    assert page.count('name="csrf_token"') == forms
    assert "<script" not in page.lower()
    response = staff.client.get(path)
    assert "script-src" not in response.headers["Content-Security-Policy"]


# ---------------------------------------------------------------------------------------------
# The list


def test_list_shows_what_the_server_knows(staff: Staff, staff_app: Flask) -> None:
    report = make_submission(staff_app, files=2)
    make_submission(staff_app, kind="follow-up", case_id=report.case_id)
    make_submission(staff_app, source="relay", exported=date.today())
    page = staff.client.get("/").get_data(as_text=True)
    assert report.id in page
    assert report.case_id in page
    for text in ("report", "follow-up", "relay upload", "not yet", date.today().isoformat()):
        assert text in page
    config = services_of(staff_app).config
    assert (date.today() + timedelta(days=config.unexported_retention_days)).isoformat() in page
    assert (date.today() + timedelta(days=config.retention_days)).isoformat() in page
    assert "3 sealed submissions on the server" in page
    assert "2 not yet downloaded" in page
    assert '<th scope="col">' in page
    assert "<caption id=" in page
    assert 'class="table-wrap"' in page
    # Every checkbox has its label.
    boxes = re.findall(r'<input type="checkbox"[^>]*id="([^"]+)"', page)
    assert len(boxes) == 3
    assert all(f'<label for="{box}">' in page for box in boxes)


def test_selecting_without_javascript(staff: Staff, staff_app: Flask) -> None:
    old = make_submission(staff_app, exported=date.today())
    new = make_submission(staff_app)
    page = staff.client.get("/?select=pending").get_data(as_text=True)
    assert f'value="{new.id}" id="sel-{new.id}" checked' in page
    assert f'value="{old.id}" id="sel-{old.id}">' in page
    page = staff.client.get("/?select=all").get_data(as_text=True)
    assert page.count(" checked>") == 2


def test_empty_list(staff: Staff) -> None:
    page = staff.client.get("/").get_data(as_text=True)
    assert "There are no submissions on the server." in page


# ---------------------------------------------------------------------------------------------
# Download


def _download(staff: Staff, **data: object) -> tuple[int, bytes, dict[str, str]]:
    response = staff.client.post("/download", data={"csrf_token": token(staff.client, "/"), **data})
    return response.status_code, response.get_data(), dict(response.headers)


def _bundle_ids(body: bytes) -> list[str]:
    reader = bundle.read_bytes(body)
    reader.check_structure()
    return [entry.id for entry in reader.entries]


def test_download_all_not_yet_exported(staff: Staff, staff_app: Flask) -> None:
    done = make_submission(staff_app, exported=date(2031, 1, 1))
    first = make_submission(staff_app, files=2)
    second = make_submission(staff_app, kind="follow-up", case_id=first.case_id, files=1)
    status, body, headers = _download(staff, scope="pending")
    assert status == 200
    assert headers["Content-Type"] == "application/x-tar"
    assert headers["Content-Disposition"].startswith("attachment; filename=portal-bundle-")
    assert int(headers["Content-Length"]) == len(body)
    assert sorted(_bundle_ids(body)) == sorted([first.id, second.id])
    exported = {s.id: s.exported_day for s in _rows(staff_app)}
    assert exported[first.id] == exported[second.id] == date.today()
    assert exported[done.id] == date(2031, 1, 1)
    event = _events(staff_app)[-1]
    assert (event.action, event.staff_name) == ("export", "amina")
    assert event.detail.startswith("2 submissions")
    # Nothing is left to download.
    status, body, _headers = _download(staff, scope="pending")
    assert status == 400
    assert b"Every submission has been downloaded already." in body


def test_download_selected_includes_exported_ones(staff: Staff, staff_app: Flask) -> None:
    done = make_submission(staff_app, exported=date(2031, 1, 1), files=1)
    other = make_submission(staff_app)
    status, body, _headers = _download(staff, ids=[done.id], scope="selected")
    assert status == 200
    assert _bundle_ids(body) == [done.id]
    rows = {s.id: s for s in _rows(staff_app)}
    assert rows[done.id].exported_day == date.today()
    assert rows[other.id].exported_day is None


def test_bundle_entries_carry_case_and_reply_key(staff: Staff, staff_app: Flask) -> None:
    first = make_submission(staff_app, files=1)
    _status, body, _headers = _download(staff, scope="pending")
    entry = bundle.read_bytes(body).entries[0]
    with services_of(staff_app).sessions() as session:
        case = session.get(Case, first.case_id)
        assert case is not None
        assert entry.case == case.id
        assert entry.files == 1
        assert entry.kind == "report"
        assert entry.reply_public_key is not None
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert all(member.mtime == 0 for member in tar.getmembers())


@pytest.mark.parametrize("ids", [[], ["nosuchsubmission"], ["../../etc"]])
def test_download_of_nothing_or_unknown_ids_is_refused(
    staff: Staff, staff_app: Flask, ids: list[str]
) -> None:
    make_submission(staff_app)
    status, body, _headers = _download(staff, ids=ids, scope="selected")
    assert status == 400
    text = body.decode()
    assert "Select at least one submission" in text or "no longer on the server" in text
    assert _rows(staff_app)[0].exported_day is None


def test_interrupted_download_marks_nothing_exported(staff: Staff, staff_app: Flask) -> None:
    make_submission(staff_app, files=3, blob_chunks=20)
    response = staff.client.post(
        "/download",
        data={"csrf_token": token(staff.client, "/"), "scope": "pending"},
        buffered=False,
    )
    assert response.status_code == 200
    iterator = iter(response.iter_encoded())
    next(iterator)
    next(iterator)
    response.close()  # the browser went away
    assert all(s.exported_day is None for s in _rows(staff_app))
    assert _events(staff_app)[-1].action == "export-interrupted"


def test_download_that_fails_midway_marks_nothing(staff: Staff, staff_app: Flask) -> None:
    submission = make_submission(staff_app, files=2, blob_chunks=3)
    response = staff.client.post(
        "/download",
        data={"csrf_token": token(staff.client, "/"), "scope": "pending"},
        buffered=False,
    )
    blob = services_of(staff_app).store.path(submission.id) / "1.blob"
    blob.write_bytes(blob.read_bytes()[:100])  # damaged on disk after the headers were made
    with pytest.raises(envelope.EnvelopeError):
        response.get_data()
    assert _rows(staff_app)[0].exported_day is None


def test_submitter_copies_cannot_be_downloaded(staff: Staff, staff_app: Flask) -> None:
    submission = make_submission(staff_app)
    with services_of(staff_app).sessions() as session:
        row = session.get(Submission, submission.id)
        assert row is not None
        row.kind, row.recipient = "reply", "submitter"
        session.commit()
    status, body, _headers = _download(staff, ids=[submission.id], scope="selected")
    assert status == 400
    assert b"cannot be downloaded" in body
    status, body, _headers = _download(staff, scope="pending")
    assert status == 400


# ---------------------------------------------------------------------------------------------
# Delete


def test_delete_asks_then_deletes_rows_and_blobs(staff: Staff, staff_app: Flask) -> None:
    keep = make_submission(staff_app)
    gone = make_submission(staff_app, files=2)
    folder = services_of(staff_app).store.path(gone.id)
    assert folder.exists()
    csrf = token(staff.client, "/")
    response = staff.client.post("/delete", data={"csrf_token": csrf, "ids": [gone.id]})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Delete 1 submission?" in page
    assert gone.id in page
    assert keep.id not in page
    assert "never been downloaded" in page
    assert len(_rows(staff_app)) == 2
    assert folder.exists()
    response = staff.client.post(
        "/delete", data={"csrf_token": csrf, "ids": [gone.id], "confirm": "yes"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/?deleted=1"
    assert [s.id for s in _rows(staff_app)] == [keep.id]
    assert not folder.exists()
    with services_of(staff_app).sessions() as session:
        assert session.get(Case, gone.case_id) is None
    assert "1 submission was deleted." in staff.client.get("/?deleted=1").get_data(as_text=True)
    event = _events(staff_app)[-1]
    assert (event.action, event.detail) == ("delete", "1 submission, 135.2 kB")  # 2 blobs


def test_delete_of_nothing_is_refused(staff: Staff, staff_app: Flask) -> None:
    make_submission(staff_app)
    response = staff.client.post(
        "/delete", data={"csrf_token": token(staff.client, "/"), "confirm": "yes"}
    )
    assert response.status_code == 400
    assert "Select at least one submission" in response.get_data(as_text=True)
    assert len(_rows(staff_app)) == 1


# ---------------------------------------------------------------------------------------------
# Nothing of a report, anywhere


def _crawl(client: FlaskClient, ids: list[str]) -> list[str]:
    csrf = token(client, "/")
    pages = [client.get(path).get_data(as_text=True) for path in PAGES]
    pages.append(client.get("/?select=all").get_data(as_text=True))
    pages.append(
        client.post("/delete", data={"csrf_token": csrf, "ids": ids}).get_data(as_text=True)
    )
    pages.append(
        client.post("/download", data={"csrf_token": csrf, "scope": "selected"}).get_data(
            as_text=True
        )
    )
    return pages


def test_no_staff_page_shows_a_report(staff: Staff, staff_app: Flask, app: Flask) -> None:
    from conftest import MINIMAL_REPORT, csrf_token

    marker = "MARKER-7c1f0e"
    public = app.test_client()
    response = public.post(
        "/en/submit",
        data={
            **MINIMAL_REPORT,
            "description": f"{marker} description",
            "place": marker,
            "csrf_token": csrf_token(public),
            "attachments": (io.BytesIO(f"{marker} in a file".encode()), f"{marker}.txt"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    ids = [s.id for s in _rows(staff_app)]
    assert len(ids) == 1
    for page in _crawl(staff.client, ids):
        assert marker not in page
        assert marker.lower() not in page.lower()
    # Not even in the bundle: everything in it is sealed.
    _status, body, _headers = _download(staff, ids=ids, scope="selected")
    assert marker.encode() not in body


# ---------------------------------------------------------------------------------------------
# Audit log


def test_audit_page_lists_actions_without_ids(staff: Staff, staff_app: Flask) -> None:
    submission = make_submission(staff_app, files=1)
    _download(staff, scope="pending")
    staff.client.post(
        "/delete",
        data={"csrf_token": token(staff.client, "/"), "ids": [submission.id], "confirm": "yes"},
    )
    page = staff.client.get("/audit").get_data(as_text=True)
    for text in (
        "Signed in",
        "Downloaded a bundle",
        "Deleted submissions",
        "amina",
        date.today().isoformat(),
    ):
        assert text in page
    assert submission.id not in page
    assert submission.case_id not in page
    for event in _events(staff_app):
        assert submission.id not in event.detail
        assert submission.case_id not in event.detail


def test_staff_member_row_keeps_no_secret_in_clear(staff: Staff, staff_app: Flask) -> None:
    with services_of(staff_app).sessions() as session:
        member = session.scalar(select(StaffMember))
        assert member is not None
        assert staff.credentials.passphrase not in member.password_hash
        assert member.session_nonce is not None
        assert len(member.session_nonce) == 64
