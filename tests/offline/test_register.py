"""The register: idempotence, all-or-nothing bundles, two runs at once, the index, attachments."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_cli_decrypt import Sub, Team, make_bundle
from test_cli_decrypt import decrypt as run_decrypt

from portal.cli import main
from portal.formats import crypto
from portal.offline import case_facts, register, register_view, sniff

PASSPHRASE = "a passphrase long enough"


@pytest.fixture
def team(tmp_path: Path) -> Team:
    secret, public = crypto.generate_keypair()
    key_file, passphrase_file = tmp_path / "team.key", tmp_path / "passphrase"
    key_file.write_text(crypto.private_key_file_text(secret, PASSPHRASE.encode()))
    passphrase_file.write_text(PASSPHRASE + "\n")
    return Team(secret, public, key_file, passphrase_file)


def snapshot(out: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of the register."""
    with sqlite3.connect(out / register.NAME) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(conn.execute(f"SELECT * FROM {t}"), key=repr) for t in tables}  # noqa: S608


def note(out: Path, case: str, text: str) -> None:
    result = CliRunner().invoke(main, ["cases", "--dir", str(out), "note", case, text])
    assert result.exit_code == 0, result.output


def two_bundles(tmp_path: Path, team: Team) -> tuple[Path, Path]:
    first = make_bundle(tmp_path / "1.tar", [Sub("s1", "c1"), Sub("s2", "c2")], team.public)
    second = make_bundle(tmp_path / "2.tar", [
        Sub("f1", "c1", "follow-up", "2026-11-22", {"description": "a", "consent_raise": "yes"}),
        Sub("s3", "c3"),
        Sub("f3", "c3", "follow-up", "2026-11-23", {"description": "b"}),
    ], team.public)  # fmt: skip
    return first, second


def test_the_same_bundle_twice_adds_nothing_twice(tmp_path: Path, team: Team) -> None:
    out = tmp_path / "out"
    first, second = two_bundles(tmp_path, team)
    assert run_decrypt(team, out, first, second).exit_code == 0
    note(out, "c1", "kept")
    before = snapshot(out)
    assert len(before["submissions"]) == 5
    result = run_decrypt(team, out, second, first)
    assert "already there (opened before)" in result.stderr
    assert snapshot(out) == before


def test_a_crash_mid_bundle_leaves_the_register_as_before_then_catches_up(
    tmp_path: Path, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    first, second = two_bundles(tmp_path, team)
    assert run_decrypt(team, out, first).exit_code == 0
    note(out, "c1", "kept through the crash")
    before = snapshot(out)
    real, calls = register.add_record, []

    def crash_on_second(*args: object) -> None:
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(register, "add_record", crash_on_second)
    result = run_decrypt(team, out, second)
    assert isinstance(result.exception, RuntimeError)
    assert len(calls) == 2
    assert snapshot(out) == before  # not half of the bundle: none of it
    monkeypatch.setattr(register, "add_record", real)

    result = run_decrypt(team, out, second)  # its folders are there: the register catches up
    after = snapshot(out)
    assert {row[0] for row in after["submissions"]} == {"s1", "s2", "f1", "s3", "f3"}
    assert [row[2:] for row in after["notes"]] == [row[2:] for row in before["notes"]]
    assert 'href="c3/2026-11-23-follow-up-f3/report.txt"' in (out / "index.html").read_text()


def test_two_decrypts_at_once_both_land_and_the_register_stays_whole(
    tmp_path: Path, team: Team
) -> None:
    out = tmp_path / "out"
    bundles = [
        make_bundle(tmp_path / f"{n}.tar",
                    [Sub(f"s{n}{i}", f"c{n}{i}", files=[("a.txt", b"x" * 5000)]) for i in range(8)],
                    team.public)
        for n in range(2)
    ]  # fmt: skip
    command = [sys.executable, "-c", "from portal.cli import main; main()", "decrypt", "--key",
               str(team.key_file), "--passphrase-file", str(team.passphrase_file), "--out",
               str(out)]  # fmt: skip
    runs = [subprocess.Popen([*command, str(path)], stderr=subprocess.PIPE, text=True)
            for path in bundles]  # fmt: skip
    errors = [run.communicate(timeout=120)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors
    with sqlite3.connect(out / register.NAME) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone() == (16,)
        assert conn.execute("SELECT COUNT(*) FROM cases").fetchone() == (16,)
    assert (out / "index.html").read_text().count("/report.txt") == 16


def test_a_second_run_refuses_clearly_while_the_folder_is_busy(tmp_path: Path, team: Team) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = make_bundle(tmp_path / "b.tar", [Sub()], team.public)
    with register.locked(out):
        result = run_decrypt(team, out, path, extra=("--wait", "0.2"))
        assert result.exit_code == 1
        assert "Another `portal decrypt` or `portal cases` is working in" in result.output
        assert list(out.iterdir()) == []  # nothing opened, no register made
    assert run_decrypt(team, out, path).exit_code == 0


def test_force_replaces_the_answers_and_keeps_the_team_work(tmp_path: Path, team: Team) -> None:
    out = tmp_path / "out"
    assert (
        run_decrypt(team, out, make_bundle(tmp_path / "1.tar", [Sub()], team.public)).exit_code == 0
    )
    note(out, "case1", "kept")
    changed = make_bundle(tmp_path / "2.tar", [Sub("other", fields={
        "description": "changed", "consent_report": "named"})], team.public)  # fmt: skip
    assert run_decrypt(team, out, changed, extra=("--force",)).exit_code == 0
    rows = snapshot(out)
    assert [row[0] for row in rows["submissions"]] == ["other"]
    assert rows["notes"][0][3] == "kept"
    assert rows["cases"][0][13] == "named"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.csp: list[str] = []
        self.tags: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.add(tag)
        if tag == "meta" and values.get("http-equiv") == "Content-Security-Policy":
            self.csp.append(values.get("content") or "")
        if tag == "a":
            self.hrefs.append(values.get("href") or "")


def test_the_index_is_escaped_script_free_and_never_opens_an_attachment(
    tmp_path: Path, team: Team
) -> None:
    out = tmp_path / "out"
    hostile = "<script>alert(1)</script>"
    path = make_bundle(tmp_path / "b.tar", [
        Sub(fields={"description": "x", "state_responsible": hostile, "urgent": "yes"},
            files=[("photo.jpg", b"MZ\x90\x00 a program"), ("a.pdf", b"%PDF-1.7"),
                   ("page.txt", b"<html><script>alert(2)</script>")]),
    ], team.public)  # fmt: skip
    assert run_decrypt(team, out, path).exit_code == 0
    note(out, "case1", '<img src=x onerror="alert(3)">')
    page = (out / "index.html").read_text()
    parser = _Page()
    parser.feed(page)
    [csp] = parser.csp
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives == {"default-src": "'none'", "style-src": "'unsafe-inline'"}
    assert not parser.tags & {"script", "img", "iframe", "object", "embed", "form"}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(3)&quot;&gt;" in page
    assert parser.hrefs == ["case1/report.txt"]  # never an attachment
    assert re.search(r"photo\.jpg — claims [^<]*PROGRAM[^<]*MISMATCH", page)
    assert re.search(r"a\.pdf — claims [^<]*first bytes: a PDF document</li>", page)
    assert "page.txt" in page
    assert "MISMATCH" not in page.split("page.txt")[1].split("</li>")[0]
    for item in (out / "case1" / "attachments").iterdir():
        assert item.stat().st_mode & 0o111 == 0, item  # never executable
    shown = CliRunner().invoke(main, ["cases", "--dir", str(out), "show", "case1"]).stdout
    assert "photo.jpg — claims application/octet-stream; its first bytes show a PROGRAM" in shown
    assert "URGENT" in CliRunner().invoke(main, ["cases", "--dir", str(out), "list"]).stdout


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"%PDF-1.4", "pdf"), (b"\x89PNG\r\n\x1a\n....", "png"), (b"\xff\xd8\xff\xe0", "jpeg"),
        (b"PK\x03\x04", "zip"), (b"MZ\x90\x00", "executable"), (b"\x7fELF\x02", "executable"),
        (b"#!/bin/sh", "script"), (b"  <!DOCTYPE html>", "html"), (b"<svg xmlns=", "svg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8", "webp"), (b"\x00\x00\x00\x18ftypmp42", "mp4"),
        ("plain words, ünïcode".encode(), "text"), (b"", "empty"), (b"\x00\x01\x02\xff", "unknown"),
    ],
)  # fmt: skip
def test_first_bytes_say_what_a_file_is(head: bytes, kind: str) -> None:
    assert sniff.sniff(head) == kind


@pytest.mark.parametrize(
    ("name", "mime", "found", "flagged"),
    [
        ("photo.jpg", "image/jpeg", "jpeg", False),
        ("photo.jpg", "image/jpeg", "executable", True),
        ("report.pdf", "application/pdf", "html", True),
        ("letter.docx", "application/octet-stream", "zip", False),
        ("notes", "application/octet-stream", "script", True),
        ("notes", "application/octet-stream", "pdf", False),
        ("drawing.svg", "image/svg+xml", "xml", False),
        ("clip.mov", "video/quicktime", "mp4", False),
        ("a.txt", "text/plain", "jpeg", True),
    ],
)
def test_a_claim_the_first_bytes_contradict_is_flagged(
    name: str, mime: str, found: str, flagged: bool
) -> None:
    assert sniff.mismatch(sniff.claimed(name, mime), found) is flagged


@pytest.mark.parametrize(
    ("fields", "state", "country", "urgent", "people", "publish"),
    [
        ({"country": "Freedonia", "consent_report": "named"}, "Freedonia", "Freedonia", False, 1,
         "named"),
        ({"country": "xa", "state_responsible": "xb", "urgent": "yes", "group_size": "12",
          "group_women": "40", "consent_report": "anonymous"}, "XB", "XA", True, 12, "anonymised"),
        ({"group_size": "many", "consent_report": ["named"]}, "", "", False, 1, "not stated"),
    ],
)  # fmt: skip
def test_facts_read_the_new_names_and_today_s(
    fields: dict[str, object], state: str, country: str, urgent: bool, people: int, publish: str
) -> None:
    facts = case_facts.derive(fields, [])
    assert (facts.state, facts.country, facts.urgent, facts.people, facts.publish) == (
        state, country, urgent, people, publish
    )  # fmt: skip
    if facts.women is not None:
        assert facts.women <= facts.people


def test_a_follow_up_restates_consent_and_urgency_but_not_the_rest() -> None:
    report = {"consent_report": "named", "country": "XA", "urgent": "no"}
    facts = case_facts.derive(report, [{"consent_report": "no", "country": "XB", "urgent": "yes"}])
    assert (facts.publish, facts.country, facts.urgent) == ("not", "XA", True)


def test_cases_csv_names_each_column_once() -> None:
    # The team's own columns stand beside the answers: none may take an answer's name.
    assert len(set(register_view.CSV_COLUMNS)) == len(register_view.CSV_COLUMNS)
