"""Reply files on the staff site: what is stored, what the submitter sees, what is refused."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from conftest import TeamKeys
from flask import Flask
from sqlalchemy import select
from test_staff_helpers import Staff, make_submission, services_of, token
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from portal.formats import bundle, crypto, envelope
from portal.offline.replying import seal_reply
from portal.server import cases, replies
from portal.server.models import AuditEvent, Case, Submission

pytest_plugins = ["test_staff_helpers"]
pytestmark = pytest.mark.usefixtures("cheap_staff_kdf")

MESSAGE = "REPLY-MARKER-2b9d: we have received your report and will contact you."


def _case(app: Flask) -> tuple[str, str]:
    """A case opened as the public site opens one: its receipt and id."""
    services = services_of(app)
    with services.sessions() as session:
        receipt, case, _derived = cases.new_case(services, session)
        session.commit()
        make_submission(app, case_id=case.id)
        return receipt, case.id


def _reply_key(app: Flask, case_id: str) -> bytes:
    with services_of(app).sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.reply_public_key


def _reply_file(
    tmp_path: Path, app: Flask, case_id: str, team_keys: TeamKeys, name: str = "reply.tar"
) -> Path:
    out = tmp_path / name
    seal_reply(out, case_id, "en", MESSAGE, _reply_key(app, case_id), team_keys.public_key)
    return out


def _upload(staff: Staff, data: bytes, name: str = "reply.tar") -> tuple[int, str]:
    # The body is built in memory: the test client would spool a large one to a file that it
    # never closes.
    boundary, body = encode_multipart(
        {
            "csrf_token": token(staff.client, "/reply"),
            "reply_file": FileStorage(io.BytesIO(data), name),
        }
    )
    response = staff.client.post(
        "/reply", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    return response.status_code, response.get_data(as_text=True)


def _replies(app: Flask) -> list[Submission]:
    with services_of(app).sessions() as session:
        return list(
            session.scalars(
                select(Submission).where(Submission.kind == "reply").order_by(Submission.seq)
            )
        )


def test_reply_is_stored_sealed_and_the_submitter_reads_it(
    staff: Staff, staff_app: Flask, app: Flask, tmp_path: Path, team_keys: TeamKeys
) -> None:
    receipt, case_id = _case(staff_app)
    status, page = _upload(staff, _reply_file(tmp_path, staff_app, case_id, team_keys).read_bytes())
    assert status == 200, page
    assert f"The reply to case {case_id} is stored" in page
    assert MESSAGE not in page
    rows = _replies(staff_app)
    assert [(r.recipient, r.source, r.kind, r.file_count, r.case_id) for r in rows] == [
        ("submitter", "staff", "reply", 0, case_id),
        ("team", "staff", "reply", 0, case_id),
    ]
    assert [r.seq for r in rows] == [2, 3]
    store = services_of(staff_app).store
    for row in rows:
        sealed = (store.path(row.id) / "manifest.sealed").read_bytes()
        assert MESSAGE.encode() not in sealed
        assert row.size_bytes == len(sealed)
    # The team's copy opens with the team key and comes back in the next bundle.
    with store.open(rows[1].id, "manifest.sealed") as handle:
        assert envelope.open_manifest(handle.read(), team_keys.secret_key).fields == {
            "message": MESSAGE
        }
    # The submitter reads it with the receipt, on the follow-up page.
    from conftest import csrf_token

    public = app.test_client()
    page = public.post(
        "/en/follow-up",
        data={
            "csrf_token": csrf_token(public, "/en/follow-up"),
            "receipt": receipt,
            "step": "open",
        },
    ).get_data(as_text=True)
    assert MESSAGE.split(":")[0] in page
    # No staff page shows it.
    for path in ("/", "/audit", "/reply"):
        assert "REPLY-MARKER" not in staff.client.get(path).get_data(as_text=True)
    with services_of(staff_app).sessions() as session:
        event = session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()))
    assert event is not None
    assert event.action == "reply"
    assert case_id not in event.detail


def test_list_shows_both_copies_and_only_the_team_copy_is_downloaded(
    staff: Staff, staff_app: Flask, tmp_path: Path, team_keys: TeamKeys
) -> None:
    _receipt, case_id = _case(staff_app)
    _upload(staff, _reply_file(tmp_path, staff_app, case_id, team_keys).read_bytes())
    page = staff.client.get("/").get_data(as_text=True)
    assert "reply (team copy)" in page
    assert "reply (submitter copy)" in page
    assert "kept for the submitter" in page
    response = staff.client.post(
        "/download", data={"csrf_token": token(staff.client, "/"), "scope": "pending"}
    )
    entries = bundle.read_bytes(response.get_data()).entries
    assert sorted((e.kind, str(e.recipient)) for e in entries) == [
        ("reply", "team"),
        ("report", "None"),
    ]


def _bundle(
    entries: list[bundle.Entry], manifests: dict[str, bytes], blobs: dict[str, bytes] | None = None
) -> bytes:
    """A bundle written as it is, without the sealing tool's own checks."""
    members = [bundle.bytes_member(bundle.manifest_name(e.id), manifests[e.id]) for e in entries]
    members += [bundle.bytes_member(name, data) for name, data in (blobs or {}).items()]
    out = io.BytesIO()
    bundle.write(out, entries, members)
    return out.getvalue()


def _sealed(key: bytes) -> bytes:
    return envelope.seal_manifest(
        envelope.Manifest("reply", "relay-tool", "en", {"message": MESSAGE}), key
    )


Maker = Callable[[Path, str, bytes, bytes], bytes]


def _one_copy(tmp: Path, case: str, submitter: bytes, team: bytes) -> bytes:
    entry = bundle.Entry("a1", case, "reply", "2031-05-06", 0, "submitter")
    return _bundle([entry], {"a1": _sealed(submitter)})


def _two_submitter_copies(tmp: Path, case: str, submitter: bytes, team: bytes) -> bytes:
    entries = [bundle.Entry(i, case, "reply", "2031-05-06", 0, "submitter") for i in ("a1", "a2")]
    return _bundle(entries, {"a1": _sealed(submitter), "a2": _sealed(submitter)})


def _two_cases(tmp: Path, case: str, submitter: bytes, team: bytes) -> bytes:
    entries = [
        bundle.Entry("a1", case, "reply", "2031-05-06", 0, "submitter"),
        bundle.Entry("a2", "othercase", "reply", "2031-05-06", 0, "team"),
    ]
    return _bundle(entries, {"a1": _sealed(submitter), "a2": _sealed(team)})


def _not_replies(tmp: Path, case: str, submitter: bytes, team: bytes) -> bytes:
    entries = [
        bundle.Entry("a1", case, "report", "2031-05-06", 0),
        bundle.Entry("a2", case, "follow-up", "2031-05-06", 0),
    ]
    return _bundle(entries, {"a1": _sealed(team), "a2": _sealed(team)})


def _same_bytes(tmp: Path, case: str, submitter: bytes, team: bytes) -> bytes:
    entries = [
        bundle.Entry("a1", case, "reply", "2031-05-06", 0, "submitter"),
        bundle.Entry("a2", case, "reply", "2031-05-06", 0, "team"),
    ]
    same = _sealed(team)
    return _bundle(entries, {"a1": same, "a2": same})


def _declared_other_key(tmp: Path, case: str, submitter: bytes, team: bytes) -> bytes:
    other = crypto.generate_keypair()[1]
    entries = [
        bundle.Entry("a1", case, "reply", "2031-05-06", 0, "submitter", crypto.b64encode(other)),
        bundle.Entry("a2", case, "reply", "2031-05-06", 0, "team"),
    ]
    return _bundle(entries, {"a1": _sealed(other), "a2": _sealed(team)})


def _short_manifest(tmp: Path, case: str, submitter: bytes, team: bytes) -> bytes:
    entries = [
        bundle.Entry("a1", case, "reply", "2031-05-06", 0, "submitter"),
        bundle.Entry("a2", case, "reply", "2031-05-06", 0, "team"),
    ]
    return _bundle(entries, {"a1": _sealed(submitter)[:-10], "a2": _sealed(team)})


def _with_files(tmp: Path, case: str, submitter: bytes, team: bytes) -> bytes:
    entries = [
        bundle.Entry("a1", case, "reply", "2031-05-06", 1, "submitter"),
        bundle.Entry("a2", case, "reply", "2031-05-06", 0, "team"),
    ]
    blob = {bundle.blob_name("a1", 0): b"\0" * crypto.SEALED_CHUNK_SIZE}
    return _bundle(entries, {"a1": _sealed(submitter), "a2": _sealed(team)}, blob)


def _not_a_tar(tmp: Path, case: str, submitter: bytes, team: bytes) -> bytes:
    return b"Dear submitter, thank you." * 40


def _cut_short(tmp: Path, case: str, submitter: bytes, team: bytes) -> bytes:
    out = tmp / "whole.tar"
    seal_reply(out, case, "en", MESSAGE, submitter, team)
    return out.read_bytes()[:3000]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_not_a_tar, "This is not a reply file made by “portal reply”"),
        (_cut_short, "This is not a reply file made by “portal reply”"),
        (_one_copy, "exactly two sealed copies"),
        (_not_replies, "this file holds: report, follow-up"),
        (_two_submitter_copies, "does not say which copy is whose"),
        (_two_cases, "name different cases"),
        (_with_files, "carries no attached files"),
        (_short_manifest, "48 bytes more than a whole number of 4096-byte blocks"),
        (_same_bytes, "sealed to the wrong key"),
        (_declared_other_key, "sealed to another key than case"),
    ],
)
def test_bad_reply_files_are_refused_with_the_reason(
    staff: Staff, staff_app: Flask, tmp_path: Path, team_keys: TeamKeys, make: Maker, reason: str
) -> None:
    _receipt, case_id = _case(staff_app)
    data = make(tmp_path, case_id, _reply_key(staff_app, case_id), team_keys.public_key)
    status, page = _upload(staff, data)
    assert status == 400
    assert "The reply was refused:" in page
    assert reason in page
    assert _replies(staff_app) == []
    assert not list(services_of(staff_app).store.incoming.iterdir())


def test_a_bundle_downloaded_from_the_site_is_not_a_reply(staff: Staff, staff_app: Flask) -> None:
    make_submission(staff_app)
    body = staff.client.post(
        "/download", data={"csrf_token": token(staff.client, "/"), "scope": "pending"}
    ).get_data()
    status, page = _upload(staff, body)
    assert status == 400
    assert "A bundle downloaded from this site is not a reply" in page


def test_reply_for_a_case_that_no_longer_exists(
    staff: Staff, staff_app: Flask, tmp_path: Path, team_keys: TeamKeys
) -> None:
    _receipt, case_id = _case(staff_app)
    reply = _reply_file(tmp_path, staff_app, case_id, team_keys).read_bytes()
    with services_of(staff_app).sessions() as session:
        from portal.server import retention

        retention.delete(services_of(staff_app), session, list(session.scalars(select(Submission))))
    status, page = _upload(staff, reply)
    assert status == 400
    assert f"Case {case_id} is not on this server" in page
    assert _replies(staff_app) == []


def test_the_same_reply_is_not_stored_twice(
    staff: Staff, staff_app: Flask, tmp_path: Path, team_keys: TeamKeys
) -> None:
    _receipt, case_id = _case(staff_app)
    reply = _reply_file(tmp_path, staff_app, case_id, team_keys).read_bytes()
    assert _upload(staff, reply)[0] == 200
    status, page = _upload(staff, reply)
    assert status == 400
    assert "was uploaded already" in page
    assert len(_replies(staff_app)) == 2
    # A second, different reply to the same case is welcome.
    other = _reply_file(tmp_path, staff_app, case_id, team_keys, "second.tar").read_bytes()
    assert _upload(staff, other)[0] == 200
    assert len(_replies(staff_app)) == 4


def test_a_reply_made_for_another_key_is_refused(
    staff: Staff, staff_app: Flask, tmp_path: Path, team_keys: TeamKeys
) -> None:
    _receipt, case_id = _case(staff_app)
    out = tmp_path / "stranger.tar"
    seal_reply(out, case_id, "en", MESSAGE, crypto.generate_keypair()[1], team_keys.public_key)
    status, page = _upload(staff, out.read_bytes())
    assert status == 400
    assert "sealed to another key than case" in page
    assert _replies(staff_app) == []


def test_a_copy_sealed_to_another_key_than_declared_cannot_be_told_apart(
    staff_app: Flask, team_keys: TeamKeys, tmp_path: Path
) -> None:
    """What the server cannot check: a copy sealed to a key other than the one its index
    declares is stored, and the submitter simply does not see it (it never opens with their
    key)."""
    services = services_of(staff_app)
    with services.sessions() as session:
        _receipt, case, derived = cases.new_case(services, session)
        session.commit()
        stranger = crypto.generate_keypair()[1]
        entries = [
            bundle.Entry(
                "a1",
                case.id,
                "reply",
                "2031-05-06",
                0,
                "submitter",
                crypto.b64encode(case.reply_public_key),
            ),
            bundle.Entry("a2", case.id, "reply", "2031-05-06", 0, "team"),
        ]
        out = tmp_path / "lying.tar"
        out.write_bytes(
            _bundle(entries, {"a1": _sealed(stranger), "a2": _sealed(team_keys.public_key)})
        )
        replies.accept(services, session, out, "amina")
        session.refresh(case)
        assert len(case.submissions) == 2
        assert cases.replies(services, case, derived) == []


@pytest.mark.parametrize("data", [b""])
def test_no_file_is_refused(staff: Staff, data: bytes) -> None:
    status, page = _upload(staff, data, name="")
    assert status == 400
    assert "Choose the reply file" in page


def test_an_oversized_file_is_refused_unread(staff: Staff, staff_app: Flask) -> None:
    status, page = _upload(staff, b"\0" * (replies.MAX_FILE_BYTES + 1))
    assert status == 413
    assert "far larger than any reply" in page
    assert _replies(staff_app) == []


def test_reply_form_is_labelled_and_posts_multipart(staff: Staff) -> None:
    page = staff.client.get("/reply").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page
    assert '<label for="reply_file">' in page
    assert 'id="reply_file"' in page


def test_received_day_is_today(
    staff: Staff, staff_app: Flask, tmp_path: Path, team_keys: TeamKeys
) -> None:
    _receipt, case_id = _case(staff_app)
    _upload(staff, _reply_file(tmp_path, staff_app, case_id, team_keys).read_bytes())
    assert {r.received_day for r in _replies(staff_app)} == {date.today()}
