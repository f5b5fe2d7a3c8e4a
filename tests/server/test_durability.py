"""Crashes: a server killed with SIGKILL in the middle of 20 uploads, and a process that dies
at each step of storing a submission, leave every receipt already given decryptable and no
half submission once `portal init` has run. A disk that fills up meanwhile gets the calm "cannot
accept now" page and leaves nothing half-written."""

from __future__ import annotations

import errno
import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import MINIMAL_REPORT, TeamKeys, csrf_token
from flask import Flask
from flask.testing import FlaskClient
from servers import free_port
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from test_export import export_and_decrypt
from test_uploads import FilePart, error_message, multipart, post_parts, report_parts, stored

from portal import create_app
from portal.cli import main
from portal.formats import crypto
from portal.server import cases, storage
from portal.server.models import Submission

ROOT = Path(__file__).resolve().parents[2]
UPLOADS = 20
PIECE = 64 * 1024


@dataclass
class Server:
    """The public site under gunicorn in its own process group, and its log."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def kill(self) -> None:
        """SIGKILL the arbiter and its workers at once: nothing gets to clean up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def server(initialised: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    """The public site of the test deployment, served by gunicorn on a free loopback port."""
    port = free_port()
    log = tmp_path / "server.log"
    environment = {**os.environ, **initialised, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--worker-class",
                "gthread",
                "--workers",
                "2",
                "--threads",
                str(UPLOADS),
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "60",
                "portal.wsgi:public",
            ],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Server(process, port, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                connection.request("GET", "/en/submit")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            finally:
                connection.close()
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield running
    finally:
        if process.poll() is None:
            running.kill()


@dataclass
class Upload:
    """One client sending a report with an attachment, slowly, and what came of it."""

    index: int
    marker: str
    attachment: bytes
    receipt: str | None = None
    failure: str | None = None

    @property
    def description(self) -> str:
        return f"{self.marker} report {self.index}"

    def run(self, port: int) -> None:
        """Fetch the form, then post the report in pieces with pauses, as a slow link does."""
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", "/en/submit")
            response = connection.getresponse()
            page = response.read().decode()
            cookie = response.getheader("Set-Cookie", "").split(";")[0]
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token
            body, content_type = multipart(
                [
                    ("csrf_token", token.group(1)),
                    *{**MINIMAL_REPORT, "description": self.description}.items(),
                    ("website", ""),
                    FilePart("attachments", f"evidence-{self.index}.bin", self.attachment),
                ]
            )
            connection.putrequest("POST", "/en/submit")
            connection.putheader("Content-Type", content_type)
            connection.putheader("Content-Length", str(len(body)))
            connection.putheader("Cookie", cookie)
            connection.endheaders()
            for start in range(0, len(body), PIECE):
                connection.send(body[start : start + PIECE])
                time.sleep(0.03)
            response = connection.getresponse()
            page = response.read().decode()
            found = re.search(r'class="receipt-number"[^>]*><code>([\d ]+)</code>', page)
            if response.status == 200 and found:
                self.receipt = found.group(1)
            else:
                self.failure = f"status {response.status}"
        except (OSError, http.client.HTTPException) as exc:
            self.failure = type(exc).__name__
        finally:
            connection.close()


def _check_store(app: Flask) -> dict[str, Submission]:
    """Every row has its whole folder and every folder its row; the rows by id."""
    services = app.extensions["portal"]
    with services.sessions() as session:
        rows = {s.id: s for s in session.scalars(select(Submission))}
    assert services.store.stored_ids() == set(rows)
    assert stored(app).staging == []
    for submission in rows.values():
        folder = services.store.path(submission.id)
        names = {p.name for p in folder.iterdir()}
        assert names == {"manifest.sealed"} | {f"{i}.blob" for i in range(submission.file_count)}
        assert (folder / "manifest.sealed").stat().st_size % 4096 == crypto.SEAL_OVERHEAD
    return rows


@pytest.mark.slow
def test_a_server_killed_during_20_uploads_keeps_every_receipt_and_no_half_submission(
    server: Server,
    initialised: dict[str, str],
    runner: CliRunner,
    team_keys: TeamKeys,
    tmp_path: Path,
) -> None:
    marker = f"MARKER{os.getpid()}x{time.time_ns()}"
    # From about 0.2 to 2.7 seconds of sending each: the first are done before the kill, the
    # last are still arriving, and some are being stored when it comes.
    uploads = [
        Upload(i, marker, (marker.encode() + bytes([i])) * ((3 + 4 * i) * PIECE // 30))
        for i in range(UPLOADS)
    ]
    threads = [threading.Thread(target=u.run, args=(server.port,), daemon=True) for u in uploads]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while sum(u.receipt is not None for u in uploads) < UPLOADS // 4:
        assert time.monotonic() < deadline, [u.failure for u in uploads]
        time.sleep(0.01)
    in_flight = sum(u.receipt is None and u.failure is None for u in uploads)
    server.kill()
    for thread in threads:
        thread.join(timeout=30)
    receipts = {u.index: u.receipt for u in uploads if u.receipt}
    assert in_flight >= UPLOADS // 2, "the kill came too late to test anything"
    assert len(receipts) < UPLOADS

    result = runner.invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    app = create_app("public", initialised)
    try:
        rows = _check_store(app)
        services = app.extensions["portal"]
        with services.sessions() as session:
            for receipt in receipts.values():
                case, _derived = cases.find_case(services, session, receipt)
                assert [s.kind for s in case.submissions] == ["report"]
    finally:
        app.extensions["portal"].engine.dispose()
    # Some uploads may have been stored as the kill came, before their receipt was sent.
    assert len(receipts) <= len(rows) <= UPLOADS
    records = export_and_decrypt(runner, team_keys, tmp_path / "offline")
    assert len(records) == len(rows)
    by_index = {int(r["fields"]["description"].rsplit(" ", 1)[1]): r for r in records}
    assert set(receipts) <= set(by_index)
    for index, record in by_index.items():
        upload = uploads[index]
        assert record["fields"]["description"] == upload.description
        assert record["attachments"] == {f"evidence-{index}.bin": upload.attachment}
    log = server.log.read_bytes()
    assert marker.encode() not in log
    for path in Path(initialised["PORTAL_DATA_DIR"]).rglob("*"):
        if path.is_file():
            assert marker.encode() not in path.read_bytes(), path


# ---------------------------------------------------------------------------------------------
# Dying at each step, deterministically

CRASH = textwrap.dedent(
    """
    import os, sys
    from sqlalchemy.orm import Session
    from portal import create_app
    from portal.server import storage
    from portal.web import partstreams

    where = sys.argv[1]
    if where == "upload":
        real_write = partstreams.SealingStream.write
        calls = []
        def write(self, data):
            calls.append(len(data))
            if len(calls) == 3:
                os._exit(9)
            return real_write(self, data)
        partstreams.SealingStream.write = write
    elif where == "rename":
        real_commit = storage.BlobStore.commit
        def commit(self, staging, submission_id, day):
            # Every file synced, the folder not yet in place.
            for name in staging.names():
                with staging.file(name).open("rb") as handle:
                    os.fsync(handle.fileno())
            os._exit(9)
        storage.BlobStore.commit = commit
    elif where == "row":
        def commit(self):
            os._exit(9)
        Session.commit = commit
    app = create_app("public")
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    client = app.test_client()
    page = client.get("/en/submit").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    data = {"csrf_token": token, "attachments": (open(sys.argv[2], "rb"), "a.bin")}
    data.update(json.loads(sys.argv[3]))
    client.post("/en/submit", data=data, content_type="multipart/form-data")
    print("not crashed")
    """
).replace("import os, sys", "import json, os, sys")


@pytest.mark.parametrize("where", ["upload", "rename", "row"])
def test_a_process_that_dies_while_storing_leaves_nothing_after_init(
    initialised: dict[str, str], runner: CliRunner, tmp_path: Path, where: str
) -> None:
    attachment = tmp_path / "a.bin"
    attachment.write_bytes(os.urandom(5 * PIECE))
    done = subprocess.run(
        [sys.executable, "-c", CRASH, where, str(attachment), json.dumps(MINIMAL_REPORT)],
        cwd=ROOT,
        env={**os.environ, **initialised, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 9, done.stdout + done.stderr
    app = create_app("public", initialised)
    try:
        leftovers = stored(app)
        assert leftovers.rows == 0
        assert leftovers.staging or leftovers.folders
        result = runner.invoke(main, ["init"])
        assert result.exit_code == 0, result.output
        assert "leftover" in result.output
        assert _check_store(app) == {}
    finally:
        app.extensions["portal"].engine.dispose()


# ---------------------------------------------------------------------------------------------
# A full disk


class FullDisk:
    """A disk with `free` bytes left for staging: a write beyond them puts what fits on disk,
    then fails with ENOSPC, as a real one does."""

    def __init__(self, free: int) -> None:
        self.free = free

    def take(self, out: Any, data: bytes) -> int:
        if len(data) > self.free:
            out.write(data[: self.free])
            out.flush()
            self.free = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.free -= len(data)
        return int(out.write(data))


class _FillingFile:
    def __init__(self, out: Any, disk: FullDisk) -> None:
        self._out = out
        self._disk = disk

    def write(self, data: bytes) -> int:
        return self._disk.take(self._out, bytes(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._out.close()


ATTACHMENT = os.urandom(5 * PIECE)


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("/en/submit", "first attachment byte"),
        ("/en/submit", "middle of an attachment"),
        ("/en/submit", "manifest"),
        ("/en/submit", "fsync"),
        ("/en/submit", "database"),
        ("/en/submit/sealed", "first attachment byte"),
        ("/en/follow-up", "middle of an attachment"),
    ],
)
def test_a_full_disk_gets_the_calm_page_and_leaves_nothing_half_written(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, path: str, where: str
) -> None:
    receipt = ""
    if path == "/en/follow-up":
        from test_public import submit

        receipt = submit(client)
    before = _check_store(app)
    free = {
        "first attachment byte": 0,
        "middle of an attachment": 2 * PIECE,
        "manifest": crypto.blob_length(len(ATTACHMENT)),
    }.get(where)
    if free is not None:
        disk = FullDisk(free)
        real_open = storage.Staging.open
        monkeypatch.setattr(
            storage.Staging, "open", lambda self, name: _FillingFile(real_open(self, name), disk)
        )
    elif where == "fsync":

        def no_space(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "fsync", no_space)
    else:
        full = sqlite3.OperationalError("database or disk is full")
        full.sqlite_errorcode = 13  # type: ignore[attr-defined]

        def fails(self: Session) -> None:
            raise OperationalError("COMMIT", {}, full)

        monkeypatch.setattr(Session, "commit", fails)
    token = csrf_token(client)
    if path == "/en/submit/sealed":
        parts = [
            ("csrf_token", token),
            ("file_count", "0"),
            FilePart("manifest", "manifest.sealed", os.urandom(4096 + crypto.SEAL_OVERHEAD)),
        ]
    elif path == "/en/follow-up":
        parts = [
            ("csrf_token", token),
            ("step", "add"),
            ("receipt", receipt),
            ("description", "More information."),
            FilePart("attachments", "a.bin", ATTACHMENT),
        ]
    else:
        parts = [*report_parts(token), FilePart("attachments", "a.bin", ATTACHMENT)]
    response = post_parts(client, path, parts)
    text = response.get_data(as_text=True)
    assert response.status_code == 503, text
    assert "temporarily unable to accept new submissions" in error_message(text)
    monkeypatch.undo()
    # No partial blob, no staging left, no row: exactly what was there before.
    assert _check_store(app).keys() == before.keys()
