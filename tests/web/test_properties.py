"""Property-based tests: whatever is posted to the public site, as a form, a relay's sealed case
file, a browser-sealed upload or raw bytes, the answer is a page and never a 5xx; and what is
accepted is always whole."""

from __future__ import annotations

import secrets
from pathlib import Path

import hypothesis.strategies as st
import pytest
from click.testing import CliRunner
from conftest import MINIMAL_REPORT, TeamKeys, csrf_token, prepare
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, assume, given, settings
from sqlalchemy import select
from test_uploads import FilePart, Part, multipart, post_parts

from portal.cli import main
from portal.formats import bundle, crypto, envelope, questionnaire
from portal.server.models import Submission

PAGES = ("/en/submit", "/ar/follow-up", "/zh/submit/sealed", "/fr/follow-up/sealed")
ANSWERS = {200, 400, 404, 405, 413, 429, 503}
FIELD_NAMES = [f.name for f in questionnaire.REPORT_FIELDS] + [
    "csrf_token",
    "website",
    "receipt",
    "step",
    "file_count",
    "kept_files",
    "keep_file",
    "relay_upload",
]
FILE_FIELDS = ["attachments", "case_file", "manifest", "blob", "other"]
CHOICES = [value for f in questionnaire.REPORT_FIELDS for value, _label in f.choices]
# Each example is a request or two; the suite stays quick, and the search still covers the
# shapes that matter (deadline off: the first request of a test builds templates).
EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(CHOICES),
    st.sampled_from(["add", "open", "1", "0", "101", "-1", " 3 ", "\x00", "\r\n"]),
    st.text(alphabet="0123456789 -", min_size=20, max_size=40),
)
text_parts = st.lists(
    st.tuples(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12)), values),
    max_size=25,
)
file_parts = st.lists(
    st.builds(
        FilePart,
        st.sampled_from(FILE_FIELDS),
        st.one_of(st.just(""), st.text(max_size=30)),
        st.binary(max_size=3000),
        st.sampled_from(["application/octet-stream", "text/plain", "", "x/y; charset=utf-8"]),
    ),
    max_size=4,
)


def _assert_a_page(response: object) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    assert status in ANSWERS, status
    if status != 200:
        # Either a message for the whole request, or the form with its problems listed.
        text = response.get_data(as_text=True)  # type: ignore[attr-defined]
        assert "data-error-message" in text or 'class="error-summary"' in text


@EXAMPLES
@given(
    page=st.sampled_from(PAGES),
    token=st.booleans(),
    texts=text_parts,
    files=file_parts,
    minimal=st.booleans(),
)
def test_no_form_gets_a_5xx(
    client: FlaskClient,
    page: str,
    token: bool,
    texts: list[tuple[str, str]],
    files: list[FilePart],
    minimal: bool,
) -> None:
    parts: list[Part] = [("csrf_token", csrf_token(client) if token else "x")]
    if minimal:
        parts += list(MINIMAL_REPORT.items())
    parts += texts
    parts += files
    _assert_a_page(post_parts(client, page, parts))


@EXAMPLES
@given(
    page=st.sampled_from(PAGES),
    body=st.binary(max_size=4000),
    boundary=st.sampled_from(["XX", "boundary", "", "a b", "--"]),
    kind=st.sampled_from(
        ["multipart/form-data", "application/x-www-form-urlencoded", "text/plain", ""]
    ),
)
def test_no_body_gets_a_5xx(
    client: FlaskClient, page: str, body: bytes, boundary: str, kind: str
) -> None:
    content_type = f"{kind}; boundary={boundary}" if kind.startswith("multipart") else kind
    response = client.post(page, data=body, content_type=content_type)
    _assert_a_page(response)


@EXAMPLES
@given(receipt=st.one_of(st.text(max_size=60), st.text(alphabet="0123456789 -", max_size=40)))
def test_no_receipt_gets_a_5xx(client: FlaskClient, receipt: str) -> None:
    response = client.post(
        "/en/follow-up",
        data={
            "receipt": receipt,
            "step": "open",
            "csrf_token": csrf_token(client, "/en/follow-up"),
        },
    )
    assert response.status_code in (200, 400)


# ---------------------------------------------------------------------------------------------
# Sealed pieces: refused with a page, or accepted whole


@pytest.fixture
def case_file(team_keys: TeamKeys, tmp_path: Path) -> bytes:
    """A relay's sealed case file with two attachments (one of two chunks)."""
    for name, size in (("a.bin", 70_000), ("b.txt", 10)):
        (tmp_path / name).write_bytes(secrets.token_bytes(size))
    out = tmp_path / "case.sealed"
    fields = [f"--field={k}={v}" for k, v in MINIMAL_REPORT.items()]
    result = CliRunner().invoke(
        main,
        [
            "seal",
            "--to",
            str(team_keys.public_path),
            "--out",
            str(out),
            *fields,
            str(tmp_path / "a.bin"),
            str(tmp_path / "b.txt"),
        ],
    )
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def _stored_whole(app: Flask) -> None:
    """Every stored submission is structurally whole: a sealed manifest and whole blobs."""
    services = app.extensions["portal"]
    with services.sessions() as session:
        for submission in session.scalars(select(Submission)):
            folder = services.store.path(submission.id)
            envelope.check_sealed_manifest_length((folder / bundle.STORED_MANIFEST).stat().st_size)
            for index in range(submission.file_count):
                size = (folder / bundle.stored_blob(index)).stat().st_size
                envelope.check_blob_length(size, index)


mutations = st.lists(
    st.one_of(
        st.tuples(st.just("cut"), st.floats(0, 1)),
        st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
        st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=600)),
        st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 600)),
    ),
    min_size=1,
    max_size=3,
)


def _mutate(data: bytes, steps: list[tuple]) -> bytes:  # type: ignore[type-arg]
    for step in steps:
        at = int(step[1] * len(data))
        if step[0] == "cut":
            data = data[:at]
        elif step[0] == "flip" and at < len(data):
            data = data[:at] + bytes([data[at] ^ step[2]]) + data[at + 1 :]
        elif step[0] == "insert":
            data = data[:at] + step[2] + data[at:]
        elif step[0] == "delete":
            data = data[:at] + data[at + step[2] :]
    return data


@EXAMPLES
@given(steps=mutations)
def test_a_damaged_case_file_is_refused_or_stored_whole(
    app: Flask,
    client: FlaskClient,
    case_file: bytes,
    steps: list[tuple],  # type: ignore[type-arg]
) -> None:
    damaged = _mutate(case_file, steps)
    assume(damaged != case_file)
    parts: list[Part] = [
        ("csrf_token", csrf_token(client, "/en/sealed-case")),
        FilePart("case_file", "case.sealed", damaged),
    ]
    response = post_parts(client, "/en/sealed-case", parts)
    assert response.status_code in (200, 400), response.status_code
    if response.status_code == 400:
        assert "none of it was stored" in response.get_data(as_text=True)
    _stored_whole(app)


@EXAMPLES
@given(data=st.binary(max_size=5000))
def test_any_bytes_as_a_case_file_get_a_page(app: Flask, client: FlaskClient, data: bytes) -> None:
    token = csrf_token(client, "/en/sealed-case")
    parts: list[Part] = [("csrf_token", token), FilePart("case_file", "x", data)]
    response = post_parts(client, "/en/sealed-case", parts)
    assert response.status_code in (200, 400)
    _stored_whole(app)


SEALED = crypto.SEALED_CHUNK_SIZE
lengths = st.one_of(
    st.integers(0, 3 * SEALED),
    st.integers(0, 3).map(lambda n: n * SEALED),
)


@EXAMPLES
@given(
    manifest=st.one_of(
        st.integers(0, 9000), st.integers(1, 3).map(lambda n: n * 4096 + crypto.SEAL_OVERHEAD)
    ),
    blobs=st.lists(lengths, max_size=4),
    declared=st.one_of(st.none(), st.text(max_size=4)),
    extra=st.lists(st.sampled_from(["manifest", "blob", "attachments"]), max_size=2),
)
def test_a_browser_sealed_upload_is_stored_exactly_when_its_structure_is_whole(
    app: Flask,
    client: FlaskClient,
    manifest: int,
    blobs: list[int],
    declared: str | None,
    extra: list[str],
) -> None:
    count = str(len(blobs)) if declared is None else declared
    parts: list[Part] = [
        ("csrf_token", csrf_token(client)),
        ("website", ""),
        ("ticket", prepare(client).ticket),
        ("file_count", count),
        FilePart("manifest", "manifest.sealed", bytes(manifest)),
        *(FilePart("blob", f"{i}.blob", bytes(size)) for i, size in enumerate(blobs)),
        *(FilePart(name, "x", b"x") for name in extra),
    ]
    body, content_type = multipart(parts)
    response = client.post("/en/submit/sealed", data=body, content_type=content_type)
    try:
        whole = (
            not extra
            and int(count) == len(blobs)
            and (manifest - crypto.SEAL_OVERHEAD) > 0
            and (manifest - crypto.SEAL_OVERHEAD) % 4096 == 0
            and all(size > 0 and size % SEALED == 0 for size in blobs)
        )
    except ValueError:
        whole = False
    assert response.status_code == (200 if whole else 400)
    _stored_whole(app)
