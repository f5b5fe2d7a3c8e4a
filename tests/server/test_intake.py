"""Intake and cases, called as plain functions: sealing on arrival, browser-sealed and relay
uploads, receipts that find their case, replies opened with the receipt, and the storage quota."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import replace

import pytest
from conftest import MINIMAL_REPORT, TeamKeys
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.formats import bundle, crypto, envelope, receipts
from portal.server import cases, intake, storage, tickets
from portal.server.models import Case, Submission
from portal.server.services import Services
from portal.web import partstreams, uploads


@pytest.fixture
def services(app: Flask) -> Services:
    """The services of the test deployment."""
    found = app.extensions["portal"]
    assert isinstance(found, Services)
    return found


@pytest.fixture
def session(services: Services) -> Iterator[Session]:
    """A database session."""
    with services.sessions() as opened:
        yield opened


def sealed_parts(staging: storage.Staging, files: dict[str, bytes]) -> list[uploads.Part]:
    """Attachments sealed into `staging` as the request's streams seal them."""
    parts = []
    for index, (name, data) in enumerate(files.items()):
        part_name = f"part-{index}"
        stream = partstreams.SealingStream(staging.open(part_name), crypto.new_file_key())
        stream.write(data)
        parts.append(
            uploads.Part(
                "attachments", name, "text/plain", None, part_name, stream.finish(), stream.key
            )
        )
    return parts


def raw_part(staging: storage.Staging, field: str, data: bytes, index: int) -> uploads.Part:
    """A piece stored as it arrived."""
    staging.write(f"part-{index}", data)
    return uploads.Part(field, f"{index}", "", None, f"part-{index}", len(data))


def open_manifest(services: Services, team_keys: TeamKeys, submission_id: str) -> envelope.Manifest:
    """The manifest of a stored submission, opened with the team's secret key."""
    with services.store.open(submission_id, bundle.STORED_MANIFEST) as handle:
        return envelope.open_manifest(handle.read(), team_keys.secret_key)


def test_a_report_sealed_on_arrival_opens_with_the_team_key(
    services: Services, session: Session, team_keys: TeamKeys
) -> None:
    staging = services.store.stage()
    files = {"one.txt": b"first file", "two.txt": b"x" * 100_000}
    receipt, submission = intake.seal_on_arrival(
        services,
        session,
        staging,
        kind="report",
        locale="es",
        fields=dict(MINIMAL_REPORT),
        parts=sealed_parts(staging, files),
    )
    assert receipt is not None
    manifest = open_manifest(services, team_keys, submission.id)
    assert (manifest.kind, manifest.sealed_by, manifest.locale) == ("report", "server", "es")
    assert manifest.fields == MINIMAL_REPORT
    derived = receipts.derive(
        receipt, services.installation_secret, *services.config.receipt_limits
    )
    assert manifest.reply_public_key == derived.reply_public_key
    for index, (entry, (name, data)) in enumerate(zip(manifest.files, files.items(), strict=True)):
        assert (entry.name, entry.size, entry.type) == (name, len(data), "text/plain")
        with services.store.open(submission.id, bundle.stored_blob(index)) as blob:
            assert b"".join(crypto.decrypt_chunks(blob, entry.key, entry.size)) == data
    assert not (services.store.incoming / staging.name).exists()
    assert (submission.kind, submission.sealed_by, submission.source, submission.seq) == (
        "report",
        "server",
        "form",
        1,
    )


def test_a_follow_up_joins_its_case_with_the_cases_reply_key(
    services: Services, session: Session, team_keys: TeamKeys
) -> None:
    staging = services.store.stage()
    receipt, report = intake.seal_on_arrival(
        services,
        session,
        staging,
        kind="report",
        locale="en",
        fields={"description": "a"},
        parts=[],
    )
    assert receipt is not None
    case, _derived = cases.find_case(services, session, receipt)
    staging = services.store.stage()
    none, follow_up = intake.seal_on_arrival(
        services,
        session,
        staging,
        kind="follow-up",
        locale="en",
        fields={"description": "b"},
        parts=[],
        case=case,
    )
    assert none is None
    assert (follow_up.case_id, follow_up.seq) == (report.case_id, 2)
    manifest = open_manifest(services, team_keys, follow_up.id)
    assert manifest.kind == "follow-up"
    assert manifest.reply_public_key == case.reply_public_key


def test_sealing_on_arrival_refuses_what_was_not_sealed(
    services: Services, session: Session
) -> None:
    staging = services.store.stage()
    part = raw_part(staging, "attachments", b"plain", 0)
    with pytest.raises(cases.Refused, match="was damaged on the way"):
        intake.seal_on_arrival(
            services, session, staging, kind="report", locale="en", fields={}, parts=[part]
        )


def test_sealing_on_arrival_refuses_more_files_than_a_manifest_may_list(
    services: Services, session: Session
) -> None:
    staging = services.store.stage()
    parts = sealed_parts(staging, {f"{i}.txt": b"" for i in range(envelope.MAX_FILES + 1)})
    with pytest.raises(cases.Refused, match="At most 100 files"):
        intake.seal_on_arrival(
            services, session, staging, kind="report", locale="en", fields={}, parts=parts
        )
    assert session.scalars(select(Case)).all() == []


def test_answers_too_long_together_are_refused_with_the_files_still_staged(
    services: Services, session: Session
) -> None:
    staging = services.store.stage()
    parts = sealed_parts(staging, {"a.txt": b"kept"})
    fields = {"description": "\x01" * 200_000}
    with pytest.raises(intake.TooLong):
        intake.seal_on_arrival(
            services, session, staging, kind="report", locale="en", fields=fields, parts=parts
        )
    assert staging.names() == {"part-0"}


def test_a_browser_sealed_envelope_is_stored_as_it_came(
    services: Services, session: Session
) -> None:
    staging = services.store.stage()
    manifest = bytes(range(256)) * 16 + b"\0" * crypto.SEAL_OVERHEAD
    blob = b"\7" * crypto.SEALED_CHUNK_SIZE
    parts = [raw_part(staging, "manifest", manifest, 0), raw_part(staging, "blob", blob, 1)]
    binding = tickets.session_binding("a browser session")
    ticket, reply_key = cases.prepare_report(services, binding)
    receipt, submission = intake.accept_sealed(
        services,
        session,
        staging,
        kind="report",
        declared_files="1",
        parts=parts,
        ticket=ticket,
        binding=binding,
    )
    assert receipt is not None
    # The case is the one the ticket stands for: its receipt finds it, with the key handed out.
    case, derived = cases.find_case(services, session, receipt)
    assert case.id == submission.case_id
    assert case.reply_public_key == derived.reply_public_key == reply_key
    folder = services.store.path(submission.id)
    assert (folder / bundle.STORED_MANIFEST).read_bytes() == manifest
    assert (folder / "0.blob").read_bytes() == blob
    assert (submission.sealed_by, submission.source, submission.size_bytes) == (
        "browser",
        "browser",
        len(manifest) + len(blob),
    )


def test_a_browser_sealed_upload_with_parts_beyond_the_limit_is_refused(
    services: Services, session: Session
) -> None:
    staging = services.store.stage()
    parts = [raw_part(staging, "manifest", bytes(4096 + crypto.SEAL_OVERHEAD), 0)]
    with pytest.raises(cases.Refused, match="At most 100 files"):
        intake.accept_sealed(
            services,
            session,
            staging,
            kind="report",
            declared_files="0",
            parts=parts,
            extra_parts=1,
        )


def test_a_case_file_that_is_no_bundle_is_refused(services: Services, session: Session) -> None:
    staging = services.store.stage()
    part = raw_part(staging, "case_file", b"", 0)
    part.not_bundle = True
    with pytest.raises(cases.Refused, match="not a sealed case file"):
        intake.accept_case_file(services, session, staging, part)


@pytest.mark.parametrize("receipt", ["", "nonsense", "12345 67890 12345 67890 12345"])
def test_a_receipt_without_a_case_finds_nothing(
    services: Services, session: Session, receipt: str
) -> None:
    with pytest.raises(cases.NoSuchCase):
        cases.find_case(services, session, receipt)


def _store_reply(
    services: Services, session: Session, case: Case, sealed: bytes, recipient: str
) -> None:
    staging = services.store.stage()
    staging.write(bundle.STORED_MANIFEST, sealed)
    submission_id = storage.new_id()
    size = services.store.commit(staging, submission_id, case.created_day)
    session.add(
        Submission(
            id=submission_id,
            case_id=case.id,
            seq=len(case.submissions) + 1,
            kind="reply",
            sealed_by="relay-tool",
            source="staff",
            recipient=recipient,
            received_day=case.created_day,
            file_count=0,
            size_bytes=size,
        )
    )
    session.commit()
    session.refresh(case)


def test_replies_open_with_the_receipt_and_only_the_submitters_copies_show(
    services: Services, session: Session, team_keys: TeamKeys
) -> None:
    staging = services.store.stage()
    receipt, _report = intake.seal_on_arrival(
        services,
        session,
        staging,
        kind="report",
        locale="en",
        fields={"description": "a"},
        parts=[],
    )
    assert receipt is not None
    case, derived = cases.find_case(services, session, receipt)

    def reply(message: str, key: bytes) -> bytes:
        manifest = envelope.Manifest("reply", "relay-tool", "en", {"message": message})
        return envelope.seal_manifest(manifest, key)

    _store_reply(services, session, case, reply("for you", case.reply_public_key), "submitter")
    _store_reply(services, session, case, reply("team copy", team_keys.public_key), "team")
    _, stranger = crypto.generate_keypair()
    _store_reply(services, session, case, reply("not yours", stranger), "submitter")
    found = cases.replies(services, case, derived)
    assert [r.message for r in found] == ["for you"]
    assert found[0].day == case.created_day.isoformat()


def test_the_quota_counts_what_is_stored_and_what_arrives(
    session: Session, services: Services
) -> None:
    cases.check_quota(services, session, 10**12)  # no quota: anything goes
    staging = services.store.stage()
    intake.seal_on_arrival(
        services, session, staging, kind="report", locale="en", fields={}, parts=[]
    )
    used = services.storage_used(session)
    assert used == 4096 + crypto.SEAL_OVERHEAD
    limited = replace(services, config=replace(services.config, storage_quota_bytes=used + 100))
    cases.check_quota(limited, session, 100)
    with pytest.raises(cases.QuotaExceeded):
        cases.check_quota(limited, session, 101)


@pytest.mark.parametrize("where", ["incoming", "kept"])
def test_the_quota_counts_what_waits_in_staging(
    session: Session, services: Services, where: str
) -> None:
    limited = replace(services, config=replace(services.config, storage_quota_bytes=10_000))
    cases.check_quota(limited, session, 10_000)
    services.store.ensure()
    folder = getattr(services.store, where) / "waiting"
    folder.mkdir()
    (folder / "part-0").write_bytes(b"\0" * 6_000)
    cases.check_quota(limited, session, 4_000)
    with pytest.raises(cases.QuotaExceeded):
        cases.check_quota(limited, session, 4_001)


@pytest.mark.parametrize("room", [-1, 0])
def test_the_quota_counts_the_bytes_staged_not_what_was_declared(
    session: Session, services: Services, room: int
) -> None:
    # Nothing checked the request's length here: the bytes on disk alone decide.
    manifest = bytes(4096 + crypto.SEAL_OVERHEAD)
    blob = bytes(3 * crypto.SEALED_CHUNK_SIZE)
    quota = len(manifest) + len(blob) + room
    limited = replace(services, config=replace(services.config, storage_quota_bytes=quota))
    staging = services.store.stage()
    parts = [raw_part(staging, "manifest", manifest, 0), raw_part(staging, "blob", blob, 1)]
    full = room < 0
    binding = tickets.session_binding("a browser session")
    ticket, _reply_key = cases.prepare_report(services, binding)
    with pytest.raises(cases.QuotaExceeded) if full else contextlib.nullcontext():
        intake.accept_sealed(
            limited,
            session,
            staging,
            kind="report",
            declared_files="1",
            parts=parts,
            ticket=ticket,
            binding=binding,
        )
    assert services.storage_used(session) == (0 if full else quota)
    assert len(services.store.stored_ids()) == (0 if full else 1)


def test_a_sealing_stream_and_the_manifest_agree_on_sizes(services: Services) -> None:
    staging = services.store.stage()
    stream = partstreams.SealingStream(staging.open("part-0"), crypto.new_file_key())
    for piece in io.BytesIO(b"z" * 200_000):
        stream.write(piece)
    size = stream.finish()
    assert size == 200_000
    assert staging.file("part-0").stat().st_size == crypto.blob_length(size)
