"""`portal decrypt`: bundles into case folders, and every way a bundle can be bad."""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, cast

import hostile_tar
import hypothesis.strategies as st
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings

from portal.cli import main
from portal.formats import bundle, crypto, envelope
from portal.offline import names

PASSPHRASE = "a passphrase long enough"
TODAY = datetime.now(UTC).date().isoformat()
CHUNK = crypto.CHUNK_SIZE


@dataclass
class Team:
    """The team's key pair and its files."""

    secret: bytes
    public: bytes
    key_file: Path
    passphrase_file: Path

    @property
    def fingerprint(self) -> str:
        return crypto.fingerprint(self.public)


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return make_team(tmp_path)


def make_team(tmp_path: Path) -> Team:
    """A new team key pair, its passphrase-protected key file and its passphrase file."""
    secret, public = crypto.generate_keypair()
    key_file, passphrase_file = tmp_path / "team.key", tmp_path / "passphrase"
    key_file.write_text(crypto.private_key_file_text(secret, PASSPHRASE.encode()))
    passphrase_file.write_text(PASSPHRASE + "\n")
    return Team(secret, public, key_file, passphrase_file)


@dataclass
class Sub:
    """One submission to put in a test bundle."""

    id: str = "sub1"
    case: str = "case1"
    kind: str = "report"
    day: str = "2026-11-20"
    fields: dict[str, envelope.FieldValue] = field(
        default_factory=lambda: {"description": "They took my passport.", "consent_raise": "no"}
    )
    files: list[tuple[str, bytes]] = field(default_factory=list)
    locale: str = "en"
    sealed_by: str = "browser"
    recipient: str | None = None
    reply_public_key: bytes | None = None
    index_reply_key: str | None = None
    to: bytes | None = None  # seal to this key instead of the team's


Tamper = Callable[[str, bytes], bytes]


def make_bundle(
    path: Path,
    subs: list[Sub],
    team_public: bytes,
    tamper: Tamper | None = None,
    entry_changes: dict[str, dict[str, object]] | None = None,
) -> Path:
    """Write a bundle with the project's own helpers; `tamper` may alter any member's bytes."""
    entries, members = [], []
    for sub in subs:
        keys = [crypto.new_file_key() for _ in sub.files]
        manifest = envelope.Manifest(
            sub.kind, sub.sealed_by, sub.locale, sub.fields,
            tuple(envelope.FileEntry(name, "application/octet-stream", len(data), key)
                  for (name, data), key in zip(sub.files, keys, strict=True)),
            sub.reply_public_key,
        )  # fmt: skip
        datas = {
            bundle.manifest_name(sub.id): envelope.seal_manifest(manifest, sub.to or team_public)
        }
        for i, ((_, data), key) in enumerate(zip(sub.files, keys, strict=True)):
            out = io.BytesIO()
            crypto.encrypt_stream(io.BytesIO(data), out, key)
            datas[bundle.blob_name(sub.id, i)] = out.getvalue()
        values: dict[str, object] = {
            "id": sub.id, "case": sub.case, "kind": sub.kind, "received_day": sub.day,
            "files": len(sub.files), "recipient": sub.recipient,
            "reply_public_key": sub.index_reply_key,
        }  # fmt: skip
        values.update((entry_changes or {}).get(sub.id, {}))
        entries.append(bundle.Entry(**values))  # type: ignore[arg-type]
        for name, data in datas.items():
            data = tamper(name, data) if tamper else data
            members.append(
                bundle.Member(name, len(data), lambda d=data: cast(BinaryIO, io.BytesIO(d)))
            )
    with path.open("wb") as handle:
        bundle.write(handle, entries, members)
    return path


def decrypt(
    team: Team, out: Path, *paths: Path, extra: tuple[str, ...] = (), stdin: str | None = None
) -> Result:
    args = ["decrypt", "--key", str(team.key_file), "--out", str(out), *extra, *map(str, paths)]
    if stdin is None:
        args[3:3] = ["--passphrase-file", str(team.passphrase_file)]
    return CliRunner().invoke(main, args, input=stdin)


def all_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def flip(target: str, offset: int = 100) -> Tamper:
    def tamper(name: str, data: bytes) -> bytes:
        if name != target:
            return data
        damaged = bytearray(data)
        damaged[offset] ^= 0x01
        return bytes(damaged)

    return tamper


# ---------------------------------------------------------------------------------------------
# Opening


def test_opens_a_report_its_follow_up_and_the_team_reply(tmp_path: Path, team: Team) -> None:
    _, reply_public = crypto.generate_keypair()
    subs = [
        Sub(
            "rep1", "casea", fields={
                "description": "تم حظر سفري بعد جنيف.\nسطر ثان.",
                "violations": ["travel_ban", "surveillance"],
                "submitter_role": "targeted",
                "consent_raise": "yes", "consent_report": "anonymous", "consent_contact": "portal",
                "country": "Freedonia",
            },
            files=[("صورة.jpg", b"\xff\xd8jpeg"), ("big.bin", bytes(3 * CHUNK + 1))],
            locale="ar", reply_public_key=reply_public,
        ),
        Sub("fol1", "casea", "follow-up", "2026-11-21", {"description": "More news."},
            [("more.pdf", b"%PDF")], sealed_by="server"),
        Sub("rpt1", "casea", "reply", "2026-11-22", {"message": "We have raised it."},
            recipient="submitter", sealed_by="relay-tool", to=reply_public),
        Sub("rpt2", "casea", "reply", "2026-11-22", {"message": "We have raised it."},
            recipient="team", sealed_by="relay-tool"),
    ]  # fmt: skip
    path = make_bundle(tmp_path / "export.tar", subs, team.public)
    out = tmp_path / "out"
    result = decrypt(team, out, path)
    assert result.exit_code == 0, result.output
    assert "skipped" in result.stderr
    assert "submitter's copy of a reply" in result.stderr
    assert "3 submission(s) opened, 1 skipped, 0 refused, 0 failed." in result.stderr
    assert all_files(out) == [
        "casea",
        "casea/2026-11-21-follow-up-fol1",
        "casea/2026-11-21-follow-up-fol1/attachments",
        "casea/2026-11-21-follow-up-fol1/attachments/more.pdf",
        "casea/2026-11-21-follow-up-fol1/report.json",
        "casea/2026-11-21-follow-up-fol1/report.txt",
        "casea/2026-11-22-reply-rpt2",
        "casea/2026-11-22-reply-rpt2/report.json",
        "casea/2026-11-22-reply-rpt2/report.txt",
        "casea/attachments",
        "casea/attachments/big.bin",
        "casea/attachments/صورة.jpg",
        "casea/reply-key.json",
        "casea/report.json",
        "casea/report.txt",
        "cases.csv",
        "index.html",
        "register.sqlite",
    ]
    case = out / "casea"
    for path in [out, case, *case.rglob("*")]:
        assert path.stat().st_mode & 0o077 == 0, path  # nothing readable by other accounts
    assert (case / "attachments" / "big.bin").read_bytes() == bytes(3 * CHUNK + 1)
    assert (case / "attachments" / "صورة.jpg").read_bytes() == b"\xff\xd8jpeg"

    text = (case / "report.txt").read_text(encoding="utf-8")
    assert "Case:        casea" in text
    assert "Received:    2026-11-20" in text
    assert "Language:    Arabic (ar)" in text
    assert "the submitter's browser" in text
    assert "Who is submitting this information?\n  I am the person targeted [targeted]" in text
    assert "  - Travel ban [travel_ban]\n  - Surveillance, including online [surveillance]" in text
    assert "Yes, without names [anonymous]" in text
    assert "تم حظر سفري بعد جنيف.\nسطر ثان." in text
    assert "attachments/big.bin  196.6 kB (196,609 bytes)" in text
    assert "attachments/صورة.jpg  6 bytes" in text
    assert "Replies:     possible" in text
    assert f"Reply key:   inside the sealed report (pinned for this case on {TODAY})" in text

    record = json.loads((case / "report.json").read_text(encoding="utf-8"))
    assert record["id"] == "rep1"
    assert record["case"] == "casea"
    assert record["kind"] == "report"
    assert record["received_day"] == "2026-11-20"
    assert record["sealed_by"] == "browser"
    assert record["locale"] == "ar"
    assert record["fields"] == subs[0].fields
    assert record["reply_public_key"] == crypto.b64encode(reply_public)
    assert record["reply_public_key_from"] == "manifest"
    assert record["reply_public_key_first_seen"] == TODAY
    assert record["files"][1] == {
        "name": "big.bin", "type": "application/octet-stream", "size": 3 * CHUNK + 1,
        "saved_as": "attachments/big.bin",
    }  # fmt: skip
    assert all("key" not in item for item in record["files"])

    follow_up = (case / "2026-11-21-follow-up-fol1" / "report.txt").read_text()
    assert "Follow-up from the submitter" in follow_up
    assert "New information" in follow_up
    assert "the portal's server" in follow_up
    reply = (case / "2026-11-22-reply-rpt2" / "report.txt").read_text()
    assert "Message from the team" in reply
    assert "We have raised it." in reply
    assert (
        json.loads((case / "2026-11-22-reply-rpt2" / "report.json").read_text())["recipient"]
        == "team"
    )

    page = (out / "index.html").read_text()
    assert 'href="casea/report.txt"' in page
    assert 'href="casea/2026-11-21-follow-up-fol1/report.txt"' in page
    assert "Travel ban; Surveillance, including online" in page
    rows = list(csv.DictReader(io.StringIO((out / "cases.csv").read_text())))
    assert len(rows) == 1
    assert rows[0]["case"] == "casea"
    assert rows[0]["violations"] == "travel_ban;surveillance"
    assert rows[0]["follow_ups"] == "1"
    assert rows[0]["replies"] == "1"
    assert rows[0]["attachments"] == "3"
    assert rows[0]["country"] == "Freedonia"
    assert rows[0]["last_day"] == "2026-11-22"


def test_a_relay_case_opens_and_records_the_reply_key_from_the_index(
    tmp_path: Path, team: Team
) -> None:
    key = crypto.b64encode(crypto.generate_keypair()[1])
    path = make_bundle(
        tmp_path / "b.tar", [Sub(sealed_by="relay-tool", index_reply_key=key)], team.public
    )
    result = decrypt(team, tmp_path / "out", path)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "case1" / "report.json").read_text())
    assert record["reply_public_key"] == key
    assert record["reply_public_key_from"] == "bundle index"
    assert "relaying organisation" in (tmp_path / "out" / "case1" / "report.txt").read_text()


def test_runs_accumulate_and_never_overwrite_without_force(tmp_path: Path, team: Team) -> None:
    out = tmp_path / "out"
    first = make_bundle(tmp_path / "1.tar", [Sub("s1", "c1")], team.public)
    second = make_bundle(
        tmp_path / "2.tar", [Sub("s2", "c2"), Sub("f2", "c1", "follow-up")], team.public
    )
    assert decrypt(team, out, first).exit_code == 0
    result = decrypt(team, out, second)
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    assert 'href="c1/report.txt"' in page
    assert 'href="c2/report.txt"' in page
    assert len(list(csv.reader(io.StringIO((out / "cases.csv").read_text())))) == 3

    (out / "c1" / "report.txt").write_text("the team's notes")
    again = make_bundle(tmp_path / "3.tar", [Sub("s1", "c1", fields={"description": "changed"}),
                                            Sub("s3", "c3")], team.public)  # fmt: skip
    result = decrypt(team, out, again)
    assert result.exit_code == 1
    assert "refused" in result.stderr
    assert "already there (opened before)" in result.stderr
    assert "use --force" in result.stderr
    assert (out / "c1" / "report.txt").read_text() == "the team's notes"
    assert (out / "c3" / "report.txt").exists()  # the other case still opened

    result = decrypt(team, out, again, extra=("--force",))
    assert result.exit_code == 0, result.output
    assert "changed" in (out / "c1" / "report.txt").read_text()
    assert (out / "c1" / "2026-11-20-follow-up-f2" / "report.txt").exists()  # kept


def test_force_replaces_a_follow_up(tmp_path: Path, team: Team) -> None:
    out = tmp_path / "out"
    path = make_bundle(
        tmp_path / "b.tar", [Sub("f1", "c1", "follow-up", files=[("a", b"1")])], team.public
    )
    assert decrypt(team, out, path).exit_code == 0
    folder = out / "c1" / "2026-11-20-follow-up-f1"
    (folder / "notes.txt").write_text("notes")
    assert decrypt(team, out, path).exit_code == 1
    assert (folder / "notes.txt").exists()
    assert decrypt(team, out, path, extra=("--force",)).exit_code == 0
    assert not (folder / "notes.txt").exists()
    assert (folder / "attachments" / "a").read_bytes() == b"1"
    assert [p.name for p in (out / "c1").iterdir()] == ["2026-11-20-follow-up-f1"]


def test_the_passphrase_is_asked_once(tmp_path: Path, team: Team) -> None:
    paths = [
        make_bundle(tmp_path / f"{n}.tar", [Sub(f"s{n}", f"c{n}")], team.public) for n in range(3)
    ]
    result = decrypt(team, tmp_path / "out", *paths, stdin=PASSPHRASE + "\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("Passphrase") == 1
    assert PASSPHRASE not in result.output


# ---------------------------------------------------------------------------------------------
# Bad input


def test_wrong_passphrase_writes_nothing(tmp_path: Path, team: Team) -> None:
    path = make_bundle(tmp_path / "b.tar", [Sub()], team.public)
    result = decrypt(team, tmp_path / "out", path, stdin="not the passphrase\n")
    assert result.exit_code == 1
    assert "The passphrase does not open" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_not_a_private_key_file(tmp_path: Path, team: Team) -> None:
    team.key_file.write_text(
        crypto.format_public_key_file(team.public, __import__("datetime").date.today())
    )
    result = decrypt(team, tmp_path / "out", make_bundle(tmp_path / "b.tar", [Sub()], team.public))
    assert result.exit_code == 1
    assert "is not a private key file" in result.output


def test_a_bundle_sealed_to_another_key(tmp_path: Path, team: Team) -> None:
    _, other = crypto.generate_keypair()
    path = make_bundle(tmp_path / "b.tar", [Sub("s1", "c1"), Sub("s2", "c2")], other)
    result = decrypt(team, tmp_path / "out", path)
    assert result.exit_code == 1
    assert f"does not open with the key {team.fingerprint}" in result.stderr
    assert "none of its 2 submission(s) opens" in result.stderr
    assert "does not record the key it was sealed to" in result.stderr
    assert all_files(tmp_path / "out") == ["cases.csv", "index.html", "register.sqlite"]


def bad_bundle(kind: str, path: Path, team: Team) -> tuple[Path, str]:
    """A bundle whose case `bad` is damaged in one way; case `good` beside it is fine."""
    good = Sub("good", "good", files=[("fine.txt", b"fine")])
    bad = Sub("bad", "bad", files=[("one.txt", b"1" * 10), ("two.bin", bytes(2 * CHUNK + 5))])
    blob = bundle.blob_name("bad", 1)
    manifest = bundle.manifest_name("bad")
    changes: dict[str, dict[str, object]] = {}
    tamper: Tamper | None = None
    if kind == "flipped blob":
        tamper, message = (
            flip(blob, CHUNK + 700),
            "attachment 2 ('two.bin') is damaged: chunk 2 of 3",
        )
    elif kind == "flipped tag":
        tamper, message = flip(blob, 3 * crypto.SEALED_CHUNK_SIZE - 1), "chunk 3 of 3 fails"
    elif kind == "truncated blob":

        def tamper(name: str, data: bytes) -> bytes:
            return data[: -crypto.SEALED_CHUNK_SIZE] if name == blob else data

        message = "truncated or altered"
    elif kind == "swapped chunks":

        def tamper(name: str, data: bytes) -> bytes:
            n = crypto.SEALED_CHUNK_SIZE
            return data[n : 2 * n] + data[:n] + data[2 * n :] if name == blob else data

        message = "chunk 1 of 3 fails authentication"
    elif kind == "flipped manifest":
        tamper, message = flip(manifest, 500), "does not open with the key"
    elif kind == "kind changed in the index":
        changes, message = {"bad": {"kind": "follow-up"}}, "the bundle calls it a follow-up"
    elif kind == "file count changed in the index":
        changes, message = {"bad": {"files": 3}}, "lists 3 file(s) but its sealed manifest lists 2"
    elif kind == "manifest not padded":

        def tamper(name: str, data: bytes) -> bytes:
            return data + b"x" if name == manifest else data

        message = "sealed manifest is damaged"
    elif kind == "blob of another file":
        bad.files[0] = ("one.txt", bytes(2 * CHUNK + 5))

        def tamper(name: str, data: bytes) -> bytes:
            return swapped.get(name, data)

        swapped: dict[str, bytes] = {}
        original = make_bundle(path.with_suffix(".orig"), [bad], team.public)
        with bundle.Reader(original) as reader:
            for i in (0, 1):
                with reader.open(bundle.blob_name("bad", i)) as handle:
                    swapped[bundle.blob_name("bad", 1 - i)] = handle.read()
        original.unlink()
        message = "attachment 1 ('one.txt') is damaged"
    elif kind == "manifest nested too deep":

        def tamper(name: str, data: bytes) -> bytes:
            deep = envelope.pad(b"[" * 200_000)
            return crypto.seal(deep, team.public) if name == manifest else data

        message = "its manifest opened but breaks the format: The manifest cannot be read as "
        message += "UTF-8 JSON: it nests deeper than 32 levels."
    else:
        raise AssertionError(kind)
    return make_bundle(path, [bad, good], team.public, tamper, changes), message


BAD_KINDS = [
    "flipped blob", "flipped tag", "truncated blob", "swapped chunks", "flipped manifest",
    "kind changed in the index", "file count changed in the index", "manifest not padded",
    "blob of another file", "manifest nested too deep",
]  # fmt: skip


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_a_bad_case_fails_alone_and_leaves_nothing(tmp_path: Path, team: Team, kind: str) -> None:
    path, message = bad_bundle(kind, tmp_path / "b.tar", team)
    out = tmp_path / "out"
    result = decrypt(team, out, path)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    failure = [line for line in result.stderr.splitlines() if line.startswith("failed")]
    assert len(failure) == 1
    assert failure[0].startswith("failed   b.tar: case bad, ")
    assert " bad: " in failure[0]
    assert message in failure[0]
    assert "1 submission(s) opened, 0 skipped, 0 refused, 1 failed." in result.stderr
    assert all_files(out) == [
        "cases.csv", "good", "good/attachments", "good/attachments/fine.txt", "good/report.json",
        "good/report.txt", "index.html", "register.sqlite",
    ]  # fmt: skip


def test_damaged_bundles_never_stop_the_others(tmp_path: Path, team: Team) -> None:
    good = make_bundle(
        tmp_path / "good.tar", [Sub("s1", "c1", files=[("a", bytes(CHUNK * 2))])], team.public
    )
    whole = good.read_bytes()
    (tmp_path / "half.tar").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "noise.tar").write_bytes(os.urandom(5000))
    (tmp_path / "empty.tar").write_bytes(b"")
    (tmp_path / "cut.tar").write_bytes(whole[: -1024 - 600])  # inside the blob's last chunk
    result = decrypt(team, tmp_path / "out", tmp_path / "half.tar", tmp_path / "noise.tar",
                     tmp_path / "empty.tar", tmp_path / "cut.tar", good)  # fmt: skip
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    for name in ("half.tar", "noise.tar", "empty.tar", "cut.tar"):
        assert f"failed   {name}: " in result.stderr
    assert (tmp_path / "out" / "c1" / "attachments" / "a").read_bytes() == bytes(CHUNK * 2)
    assert not list((tmp_path / "out").rglob("*.partial"))
    assert not list((tmp_path / "out").rglob(".opening-*"))


def _rewritten(good: Path, change: Callable[[str, bytes], bytes], path: Path) -> Path:
    members = hostile_tar.members_of(good.read_bytes())
    path.write_bytes(hostile_tar.tar_of(*(change(name, data) for name, data in members.items())))
    return path


def _sparse_blob(name: str, data: bytes) -> bytes:
    if name.endswith(".blob"):
        return hostile_tar.gnu_sparse(name, data[:512], 19_000 * crypto.SEALED_CHUNK_SIZE)
    return hostile_tar.regular(name, data)


def _deep_index(name: str, data: bytes) -> bytes:
    return hostile_tar.regular(name, b"[" * 200_000 if name == bundle.INDEX_NAME else data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_sparse_blob, "'s1/files/0.blob', which is not a plain file: a sparse file."),
        (_deep_index, "index cannot be read as UTF-8 JSON: it nests deeper than 32 levels."),
    ],
    ids=["sparse-member", "deep-index"],
)
def test_a_hostile_bundle_fails_alone_and_the_next_one_opens(
    tmp_path: Path, team: Team, change: Callable[[str, bytes], bytes], message: str
) -> None:
    good = make_bundle(
        tmp_path / "good.tar", [Sub("s1", "c1", files=[("a", b"fine")])], team.public
    )
    hostile = _rewritten(good, change, tmp_path / "hostile.tar")
    result = decrypt(team, tmp_path / "out", hostile, good)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    (failure,) = [line for line in result.stderr.splitlines() if line.startswith("failed")]
    assert failure.startswith("failed   hostile.tar: ")
    assert failure.endswith(message)
    assert (tmp_path / "out" / "c1" / "attachments" / "a").read_bytes() == b"fine"


def test_an_unforeseen_error_in_one_bundle_never_stops_the_next(
    tmp_path: Path, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = make_bundle(
        tmp_path / "good.tar", [Sub("s1", "c1", files=[("a", b"fine")])], team.public
    )
    (tmp_path / "odd.tar").write_bytes(good.read_bytes())
    real = bundle.Reader

    def reader(source: Path) -> bundle.Reader:
        if source.name == "odd.tar":
            raise RecursionError("maximum recursion depth exceeded")
        return real(source)

    monkeypatch.setattr(bundle, "Reader", reader)
    result = decrypt(team, tmp_path / "out", tmp_path / "odd.tar", good)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "failed   odd.tar: case -, bundle -: unexpected RecursionError: maximum" in result.stderr
    assert (tmp_path / "out" / "c1" / "attachments" / "a").read_bytes() == b"fine"


def test_hostile_attachment_names_are_made_safe(tmp_path: Path, team: Team) -> None:
    names = ["../../etc/passwd", "CON.txt", ".bashrc", "a.txt", "A.TXT", "a.txt", "x\u202egpj.exe",
             "", "-rf", "/abs/path.doc", "dots...pdf"]  # fmt: skip
    sub = Sub(files=[(name, name.encode()) for name in names])
    path = make_bundle(tmp_path / "b.tar", [sub], team.public)
    result = decrypt(team, tmp_path / "out", path)
    assert result.exit_code == 1  # opened, but the suspicious names are flagged
    assert "case case1: attachment 1 was named '../../etc/passwd'" in result.stderr
    assert "attachment 10 was named '/abs/path.doc'" in result.stderr
    folder = tmp_path / "out" / "case1" / "attachments"
    saved = sorted(p.name for p in folder.iterdir())
    expected = ["etc_passwd", "_CON.txt", "bashrc", "a.txt", "A (2).TXT", "a (3).txt",
                "xgpj.exe", "attachment", "_rf", "abs_path.doc", "dots.pdf"]  # fmt: skip
    assert saved == sorted(expected)
    assert (folder / "etc_passwd").read_bytes() == b"../../etc/passwd"
    record = json.loads((tmp_path / "out" / "case1" / "report.json").read_text())
    assert record["files"][0]["name"] == "../../etc/passwd"
    assert record["files"][0]["saved_as"] == "attachments/etc_passwd"
    text = (tmp_path / "out" / "case1" / "report.txt").read_text()
    assert "attachments/etc_passwd  16 bytes" in text
    assert "(sent as '../../etc/passwd')" in text
    assert "WARNING:" in text
    assert not (tmp_path / "etc").exists()


def test_never_writes_through_a_symbolic_link(tmp_path: Path, team: Team) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "case1").symlink_to(outside)
    path = make_bundle(tmp_path / "b.tar", [Sub(), Sub("s2", "case2")], team.public)
    result = decrypt(team, out, path)
    assert result.exit_code == 1
    assert "leads outside the output folder" in result.stderr
    assert list(outside.iterdir()) == []
    assert (out / "case2" / "report.txt").exists()


def test_control_characters_never_reach_report_txt(tmp_path: Path, team: Team) -> None:
    fields: dict[str, envelope.FieldValue] = {
        "description": "red \x1b[31malert\x07 and\r\nnext line",
        "country": "<script>alert(1)</script>",
        "violations": ["=cmd|' /C calc'!A0", "threats"], "made_up_field": "+SUM(A1)",
    }  # fmt: skip
    path = make_bundle(tmp_path / "b.tar", [Sub(fields=fields)], team.public)
    out = tmp_path / "out"
    assert decrypt(team, out, path).exit_code == 0
    text = (out / "case1" / "report.txt").read_text()
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "\r" not in text
    assert "red \ufffd[31malert\ufffd and\nnext line" in text
    assert "control characters were replaced" in text
    assert "[=cmd|' /C calc'!A0] (not a choice of the form)" in text
    assert "== Other fields (not on the form) ==\n\nmade_up_field" in text
    record = json.loads((out / "case1" / "report.json").read_text())
    assert record["fields"]["description"] == fields["description"]  # exact in report.json
    page = (out / "index.html").read_text()
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "default-src 'none'" in page
    rows = list(csv.DictReader(io.StringIO((out / "cases.csv").read_text())))
    assert rows[0]["violations"] == "'=cmd|' /C calc'!A0;threats"
    assert rows[0]["country"] == "<script>alert(1)</script>"


@pytest.mark.parametrize(
    ("value", "guarded"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t'=1"),
        ("\r=1", "'\r'=1"),
        ("2024-05-01;=1+1", "2024-05-01;'=1+1"),
        ("a,+1;b\t@c", "a,'+1;b\t'@c"),
        ("a; =1", "a;' =1"),
        ("Smith - Jones", "Smith - Jones"),
        ("2024-05-01", "2024-05-01"),
        ("safe", "safe"),
        ("", ""),
    ],
)
def test_csv_cells_are_guarded(value: str, guarded: str) -> None:
    assert names.csv_cell(value) == guarded


def test_no_piece_of_a_csv_cell_starts_a_formula(tmp_path: Path, team: Team) -> None:
    fields: dict[str, envelope.FieldValue] = {
        "place": "2024-05-01;=1+1",
        "violations": ["travel_ban", "=1+1", "@SUM(A1)", "\t=2", "-3+4"],
        "country": "Freedonia,+5;ok",
    }
    out = tmp_path / "out"
    result = decrypt(team, out, make_bundle(tmp_path / "b.tar", [Sub(fields=fields)], team.public))
    assert result.exit_code == 0, result.output
    text = (out / "cases.csv").read_text(encoding="utf-8")
    [header, row] = list(csv.reader(io.StringIO(text)))
    cells = dict(zip(header, row, strict=True))
    assert cells["place"] == "2024-05-01;'=1+1"
    assert cells["violations"] == "travel_ban;'=1+1;'@SUM(A1);' =2;'-3+4"
    assert cells["country"] == "Freedonia,'+5;ok"
    # Every cell is quoted, and however a spreadsheet splits a cell, no piece starts a formula.
    for line in text.splitlines():
        assert line.startswith('"')
        assert line.endswith('"')
        assert line.count('","') == len(header) - 1
    for cell in row:
        for piece in re.split(r"[;,\t\r\n]", cell):
            assert piece.lstrip(" ")[:1] not in ("=", "+", "-", "@"), cell


@pytest.mark.parametrize(
    "where", ["attachments", "follow-up attachments", "stray folder", "copied case folder"]
)
def test_records_come_only_from_the_folders_decrypt_names(
    tmp_path: Path, team: Team, where: str
) -> None:
    fake = json.dumps({"id": "x", "case": "case1", "kind": "reply", "received_day": "2031-01-01",
                       "fields": {"message": "fake"}, "files": []})  # fmt: skip
    attached = [("report.json", fake.encode())]
    subs = [
        Sub(files=attached if where == "attachments" else []),
        Sub("fol1", "case1", "follow-up", "2026-11-21", {"description": "more"},
            files=attached if where.startswith("follow") else []),
    ]  # fmt: skip
    out = tmp_path / "out"
    result = decrypt(team, out, make_bundle(tmp_path / "b.tar", subs, team.public))
    assert result.exit_code == 0, result.output
    if where in ("stray folder", "copied case folder"):
        if where == "stray folder":  # a folder named like decrypt's, whose record is not its own
            (out / "case1" / "2031-01-01-reply-y").mkdir()
            (out / "case1" / "2031-01-01-reply-y" / "report.json").write_text(fake)
        else:  # records that name another case than their folder
            shutil.copytree(out / "case1", out / "case9")
        # The next decrypt catches the register up with folders it lacks, and leaves these out.
        other = make_bundle(tmp_path / "c.tar", [Sub("rep2", "case2")], team.public)
        result = decrypt(team, out, other)
        assert result.exit_code == 1
        left_out = [line for line in result.stderr.splitlines() if "left out" in line]
        if where == "stray folder":
            assert len(left_out) == 1
            assert "does not match its folder's name" in left_out[0]
        else:
            assert len(left_out) == 2
            assert all(str(out / "case9") in line for line in left_out)
        assert "case9" not in (out / "index.html").read_text()
    row = next(
        r
        for r in csv.DictReader(io.StringIO((out / "cases.csv").read_text()))
        if r["case"] == "case1"
    )
    assert (row["follow_ups"], row["replies"], row["last_day"]) == ("1", "0", "2026-11-21")
    assert "2031-01-01" not in (out / "index.html").read_text()


def test_a_damaged_record_is_left_out_of_the_index(tmp_path: Path, team: Team) -> None:
    out = tmp_path / "out"
    (out / "old").mkdir(parents=True)
    (out / "old" / "report.json").write_text("{broken")
    result = decrypt(team, out, make_bundle(tmp_path / "b.tar", [Sub()], team.public))
    assert result.exit_code == 1
    assert "left out of the index" in result.stderr
    assert 'href="case1/report.txt"' in (out / "index.html").read_text()


def test_a_follow_up_before_its_report(tmp_path: Path, team: Team) -> None:
    path = make_bundle(tmp_path / "b.tar", [Sub("f1", "c1", "follow-up")], team.public)
    out = tmp_path / "out"
    assert decrypt(team, out, path).exit_code == 0
    assert "report not opened yet" in (out / "index.html").read_text()
    later = make_bundle(tmp_path / "c.tar", [Sub("r1", "c1", day="2026-11-01")], team.public)
    assert decrypt(team, out, later).exit_code == 0
    assert (out / "c1" / "report.txt").exists()
    assert "report not opened yet" not in (out / "index.html").read_text()


# ---------------------------------------------------------------------------------------------
# Names and isolation


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_safe_names_never_escape_their_folder(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    safe = names.safe_name(name)
    assert safe
    assert "/" not in safe
    assert "\\" not in safe
    assert "\0" not in safe
    assert not safe.startswith((".", "-", " "))
    assert ".." not in safe
    assert safe not in (".", "..")
    assert len(safe.encode("utf-8")) <= 255
    assert not any(ch in safe for ch in '<>:"|?*')
    assert safe.split(".")[0].strip().upper() not in names.WINDOWS_RESERVED
    assert names.safe_name(safe) == safe
    folder = Path("/srv/out/case/attachments")
    assert (folder / safe).parent == folder
    assert os.path.normpath(folder / safe).startswith(str(folder) + "/")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a.txt", "A.txt", "a (2).txt", "b", "B", "a"]), max_size=12))
def test_numbered_names_are_unique(given_names: list[str]) -> None:
    taken: set[str] = set()
    result = [names.numbered(names.safe_name(n), taken) for n in given_names]
    assert len({r.casefold() for r in result}) == len(result)


def test_long_names_keep_their_extension() -> None:
    name = names.safe_name("ش" * 300 + ".docx")
    assert name.endswith(".docx")
    assert len(name.encode()) <= names.MAX_NAME_BYTES


# Every answer of the second edition of the form, as a relative sends an urgent case.
URGENT_CASE: dict[str, envelope.FieldValue] = {
    "description": "My brother was detained after he spoke to a special rapporteur.",
    "urgent": "yes",
    "urgent_details": "Hearing on 12 June; held without a lawyer.",
    "consent_of": "person_not_reachable",
    "consent_raise": "yes",
    "consent_report": "anonymous",
    "consent_share_un": "yes",
    "consent_contact": "other_channel",
    "contact_channel": "Signal username: example.42",
    "submitter_role": "relative",
    "target_type": "group",
    "group_size": "12",
    "group_women": "5",
    "target_occupation": ["lawyer", "other"],
    "target_occupation_other": "Blogger",
    "un_bodies": ["special_procedures", "other"],
    "un_bodies_other": "A UN conference",
    "cooperation_from": "2025-03",
    "violations": ["arbitrary_detention", "criminal_charges", "other"],
    "violations_other": "Bank accounts frozen",
    "incident_from": "2025-04",
    "incident_to": "2025-06",
    "country": "KE",
    "state_responsible": "UG",
    "case_status": "update",
    "earlier_reference": "Sent in January 2025",
}


def test_an_urgent_case_comes_first_with_every_answer(tmp_path: Path, team: Team) -> None:
    """report.txt, index.html and cases.csv flag an urgent case first and show every answer,
    the "other" texts included, with the countries' English names."""
    subs = [
        Sub("old1", "casea", day="2026-11-01"),
        Sub("urg1", "caseb", day="2026-11-20", fields=URGENT_CASE),
    ]
    out = tmp_path / "out"
    result = decrypt(team, out, make_bundle(tmp_path / "b.tar", subs, team.public))
    assert result.exit_code == 0, result.output
    text = (out / "caseb" / "report.txt").read_text(encoding="utf-8")
    assert text.splitlines()[2] == "URGENT:      someone is in immediate danger"
    assert "Hearing on 12 June" in text.splitlines()[3]
    for shown in (
        "Kenya [KE]",
        "Uganda [UG]",
        "Blogger",
        "A UN conference",
        "2025-04",
        "Bank accounts frozen",
        "Criminal charges or prosecution [criminal_charges]",
    ):
        assert shown in text, shown
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index.index("caseb") < index.index("casea"), "the urgent case is not first"
    assert "URGENT" in index
    assert "Uganda (UG)" in index
    answers = index[index.index("caseb") :]
    for shown in ("Kenya", "Blogger", "A UN conference", "Bank accounts frozen", "2025-04",
                  "Criminal charges or prosecution", "Sent in January 2025", "12"):  # fmt: skip
        assert html.escape(shown) in answers, shown
    [header, *rows] = list(csv.reader(io.StringIO((out / "cases.csv").read_text("utf-8"))))
    row = dict(zip(header, rows[1], strict=True))
    for name, value in URGENT_CASE.items():
        if name != "description":
            expected = ";".join(value) if isinstance(value, list) else value
            assert row[name] == expected, name
    assert (row["country_name"], row["state_responsible_name"]) == ("Kenya", "Uganda")
