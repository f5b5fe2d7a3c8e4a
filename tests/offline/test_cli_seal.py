"""`portal seal`: relays seal cases offline; what it writes opens as the team expects."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import nacl.pwhash
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from portal.cli import main
from portal.formats import bundle, crypto, envelope, receipts
from portal.offline import relay

REQUIRED = [
    "description=Detained at the airport after speaking in Geneva.",
    "consent_of=self",
    "consent_raise=yes",
    "consent_share_un=no",
    "consent_report=anonymous",
    "consent_contact=no",
]
REQUIRED_FIELDS = dict(item.split("=", 1) for item in REQUIRED)


@pytest.fixture
def team(tmp_path: Path) -> tuple[bytes, Path]:
    """The team's secret key and the path of its public key file."""
    secret, public = crypto.generate_keypair()
    path = tmp_path / "team.pub"
    path.write_text(crypto.format_public_key_file(public, datetime.now(UTC).date()))
    return secret, path


def seal(tmp_path: Path, team_pub: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["seal", "--to", str(team_pub), *args])


def fields_args(*extra: str) -> list[str]:
    """--field options for the required answers, some replaced, plus more answers."""
    replaced = {item.split("=", 1)[0] for item in extra} & set(REQUIRED_FIELDS)
    kept = [item for item in REQUIRED if item.split("=", 1)[0] not in replaced]
    return [arg for item in (*kept, *extra) for arg in ("--field", item)]


def opened(path: Path, secret: bytes) -> tuple[bundle.Entry, envelope.Manifest, list[bytes]]:
    """Open a sealed case file with the project's readers: its entry, manifest and files."""
    with bundle.Reader(path) as reader:
        reader.check_structure()
        [entry] = reader.entries
        manifest = envelope.open_manifest(reader.read_manifest(entry), secret)
        files = []
        for i, item in enumerate(manifest.files):
            with reader.open(bundle.blob_name(entry.id, i)) as handle:
                files.append(
                    b"".join(crypto.decrypt_chunks(io.BytesIO(handle.read()), item.key, item.size))
                )
    return entry, manifest, files


def test_seal_one_case_with_fields_and_files(tmp_path: Path, team: tuple[bytes, Path]) -> None:
    secret, team_pub = team
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8" + bytes(70000))
    (tmp_path / "empty.txt").write_bytes(b"")
    out = tmp_path / "case.sealed"
    result = seal(
        tmp_path, team_pub, "--out", str(out), "--locale", "fr",
        *fields_args("violations=threats", "violations=surveillance", "country=KE"),
        str(tmp_path / "photo.jpg"), str(tmp_path / "empty.txt"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert crypto.fingerprint(crypto.public_from_secret(secret)) in result.stderr
    entry, manifest, files = opened(out, secret)
    assert entry.kind == "report"
    assert entry.received_day == datetime.now(UTC).date().isoformat()
    assert len(entry.id) == len(entry.case) == 16
    assert entry.id.isalnum()
    assert entry.id == entry.id.lower()
    assert entry.id != entry.case
    assert manifest.sealed_by == "relay-tool"
    assert manifest.kind == "report"
    assert manifest.locale == "fr"
    assert manifest.fields == {
        **REQUIRED_FIELDS,
        "violations": ["threats", "surveillance"],
        "country": "KE",
    }
    assert [(f.name, f.type, f.size) for f in manifest.files] == [
        ("photo.jpg", "image/jpeg", 70002),
        ("empty.txt", "text/plain", 0),
    ]
    assert files == [b"\xff\xd8" + bytes(70000), b""]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "case.sealed",
        "empty.txt",
        "photo.jpg",
        "team.pub",
    ]  # no temporary file left behind


def test_each_case_gets_fresh_ids(tmp_path: Path, team: tuple[bytes, Path]) -> None:
    _, team_pub = team
    ids = set()
    for n in range(3):
        out = tmp_path / f"{n}.sealed"
        assert seal(tmp_path, team_pub, "--out", str(out), *fields_args()).exit_code == 0
        with bundle.Reader(out) as reader:
            ids.update({reader.entries[0].id, reader.entries[0].case})
    assert len(ids) == 6


@pytest.mark.parametrize(
    ("answers", "args", "message"),
    [
        (["bogus=1"], [], "no field 'bogus'. Known fields: description, urgent"),
        (["novalue"], [], "NAME=VALUE"),
        (["consent_raise=maybe"], [], "consent_raise: Please choose one of the options"),
        (["violations=flying"], [], "violations: Please choose among the options"),
        (["violations=threats", "violations=threats"], [], "violations: Please choose among"),
        (["country=KE", "country=UG"], [], "given twice"),
        (["country=Freedonia"], [], "country: Please choose one of the options. (choices: an ISO"),
        (["incident_from=March 2025"], [], "incident_from: Please write the year and month"),
        (["group_size=about 20"], [], "group_size: Please write a number"),
        (["description=" + "x" * 100_001], [], "description: This is too long"),
        ([], ["--locale", "not a locale"], "not a language code"),
    ],
)
def test_seal_refuses_bad_fields(
    tmp_path: Path, team: tuple[bytes, Path], answers: list[str], args: list[str], message: str
) -> None:
    _, team_pub = team
    out = tmp_path / "c.sealed"
    result = seal(tmp_path, team_pub, "--out", str(out), *fields_args(*answers), *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_the_description_is_required(tmp_path: Path, team: tuple[bytes, Path]) -> None:
    _, team_pub = team
    args = [a for item in REQUIRED[1:] for a in ("--field", item)]
    result = seal(tmp_path, team_pub, "--out", str(tmp_path / "c.sealed"), *args)
    assert result.exit_code == 1
    assert "description: Please fill in this field" in result.output
    result = seal(tmp_path, team_pub, "--out", str(tmp_path / "c.sealed"), *args, "--field",
                  "description=   ")  # fmt: skip
    assert result.exit_code == 1


def test_seal_never_overwrites(tmp_path: Path, team: tuple[bytes, Path]) -> None:
    _, team_pub = team
    out = tmp_path / "c.sealed"
    out.write_bytes(b"earlier")
    result = seal(tmp_path, team_pub, "--out", str(out), *fields_args())
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert out.read_bytes() == b"earlier"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--json", "{json}", "--field", "country=KE"],
        ["--json", "{json}", "--csv", "{csv}"],
        ["--json", "{json}"],  # one case without --out
        ["--json", "{json}", "--out", "{out}", "--out-dir", "{dir}"],
        ["--json", "{list}", "--out", "{out}"],  # a list needs --out-dir
        ["--csv", "{csv}", "--out-dir", "{dir}", "{file}"],
        ["--json", "{list}", "--out-dir", "{dir}", "{file}"],
    ],
)
def test_usage_errors(tmp_path: Path, team: tuple[bytes, Path], args: list[str]) -> None:
    _, team_pub = team
    case = {"fields": REQUIRED_FIELDS}
    paths = {
        "json": tmp_path / "case.json", "list": tmp_path / "cases.json",
        "csv": tmp_path / "cases.csv", "out": tmp_path / "c.sealed", "dir": tmp_path / "out",
        "file": tmp_path / "photo.jpg",
    }  # fmt: skip
    paths["json"].write_text(json.dumps(case))
    paths["list"].write_text(json.dumps([case, case]))
    paths["csv"].write_text(",".join(REQUIRED_FIELDS) + "\n" + ",".join(REQUIRED_FIELDS.values()))
    paths["file"].write_bytes(b"x")
    filled = [arg.format(**{k: str(v) for k, v in paths.items()}) for arg in args]
    result = seal(tmp_path, team_pub, *filled)
    assert result.exit_code == 2, result.output
    assert not paths["out"].exists()
    assert not paths["dir"].exists()


def test_seal_one_case_from_json(tmp_path: Path, team: tuple[bytes, Path]) -> None:
    secret, team_pub = team
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "letter.pdf").write_bytes(b"%PDF-1.7 letter")
    (tmp_path / "extra.txt").write_bytes(b"extra")
    fields = {**REQUIRED_FIELDS, "violations": "travel_ban", "submitter_role": "representative"}
    fields["consent_of"] = "person_told"
    case = {"fields": fields, "files": ["docs/letter.pdf"], "locale": "es"}
    (tmp_path / "case.json").write_text(json.dumps(case))
    out = tmp_path / "c.sealed"
    result = seal(tmp_path, team_pub, "--json", str(tmp_path / "case.json"), "--out", str(out),
                  str(tmp_path / "extra.txt"))  # fmt: skip
    assert result.exit_code == 0, result.output
    _, manifest, files = opened(out, secret)
    assert manifest.locale == "es"
    assert manifest.fields["violations"] == ["travel_ban"]
    assert files == [b"%PDF-1.7 letter", b"extra"]


def test_seal_many_cases_from_a_json_list(tmp_path: Path, team: tuple[bytes, Path]) -> None:
    secret, team_pub = team
    (tmp_path / "a.bin").write_bytes(bytes(200_000))
    cases = [
        {"fields": REQUIRED_FIELDS, "files": ["a.bin"]},
        {"fields": {**REQUIRED_FIELDS, "target_name": "Ahmed"}, "locale": "ar"},
        {"fields": REQUIRED_FIELDS},
    ]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    out_dir = tmp_path / "sealed"
    result = seal(tmp_path, team_pub, "--json", str(tmp_path / "cases.json"), "--out-dir",
                  str(out_dir))  # fmt: skip
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == ["case-001.sealed", "case-002.sealed", "case-003.sealed"]
    assert opened(out_dir / "case-001.sealed", secret)[2] == [bytes(200_000)]
    _, second, _ = opened(out_dir / "case-002.sealed", secret)
    assert second.locale == "ar"
    assert second.fields["target_name"] == "Ahmed"
    cases_seen = {opened(out_dir / name, secret)[0].case for name in names}
    assert len(cases_seen) == 3


def test_a_bad_case_in_a_list_stops_before_anything_is_sealed(
    tmp_path: Path, team: tuple[bytes, Path]
) -> None:
    _, team_pub = team
    cases = [{"fields": REQUIRED_FIELDS}, {"fields": {"description": "no consent answers"}}]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    result = seal(tmp_path, team_pub, "--json", str(tmp_path / "cases.json"), "--out-dir",
                  str(tmp_path / "out"))  # fmt: skip
    assert result.exit_code == 1
    assert "case 2 of cases.json" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot be read as UTF-8 JSON"),
        ("[]", "one case object or a list"),
        ('"text"', "one case object or a list"),
        ('[{"description": "x"}]', 'an object with "fields"'),
        ('{"fields": {}, "extra": 1}', "unknown key 'extra'"),
        ('{"fields": {"description": ["a", "b"]}}', "takes one answer"),
        ('{"fields": {"description": 5}}', "must be text"),
        ('{"fields": {}, "files": "a.txt"}', "list of paths"),
        ('{"fields": {}, "locale": 3}', "language code"),
        ('{"fields": {"consent_raise": ["yes"]}}', "takes one answer"),
    ],
)
def test_bad_json(tmp_path: Path, team: tuple[bytes, Path], content: str, message: str) -> None:
    _, team_pub = team
    (tmp_path / "case.json").write_text(content)
    result = seal(tmp_path, team_pub, "--json", str(tmp_path / "case.json"), "--out",
                  str(tmp_path / "c.sealed"))  # fmt: skip
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_missing_attachment_is_named(tmp_path: Path, team: tuple[bytes, Path]) -> None:
    _, team_pub = team
    (tmp_path / "case.json").write_text(
        json.dumps({"fields": REQUIRED_FIELDS, "files": ["gone.jpg"]})
    )
    result = seal(tmp_path, team_pub, "--json", str(tmp_path / "case.json"), "--out",
                  str(tmp_path / "c.sealed"))  # fmt: skip
    assert result.exit_code == 1
    assert "gone.jpg is not a file" in result.output


def test_seal_many_cases_from_csv(tmp_path: Path, team: tuple[bytes, Path]) -> None:
    secret, team_pub = team
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "one.txt").write_text("one")
    (tmp_path / "files" / "two.txt").write_text("two")
    header = (
        "description,consent_of,consent_raise,consent_report,consent_share_un,consent_contact,"
        "violations,attachments,locale"
    )
    rows = [
        '"Line one\nline two, with a comma",self,yes,named,yes,no,threats; surveillance ,'
        "files/one.txt;files/two.txt,fr",
        "Second case,person_told,no,no,no,no,,,",
        ",,,,,,,,",
    ]
    (tmp_path / "cases.csv").write_text("\ufeff" + header + "\r\n" + "\r\n".join(rows) + "\r\n")
    out_dir = tmp_path / "out"
    result = seal(tmp_path, team_pub, "--csv", str(tmp_path / "cases.csv"), "--out-dir",
                  str(out_dir))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out_dir.iterdir()) == ["case-001.sealed", "case-002.sealed"]
    _, first, files = opened(out_dir / "case-001.sealed", secret)
    assert first.fields["description"] == "Line one\nline two, with a comma"
    assert first.fields["violations"] == ["threats", "surveillance"]
    assert first.locale == "fr"
    assert [f.name for f in first.files] == ["one.txt", "two.txt"]
    assert files == [b"one", b"two"]
    _, second, _ = opened(out_dir / "case-002.sealed", secret)
    assert "violations" not in second.fields
    assert second.locale == "en"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("description,colour\nx,red\n", "no field 'colour'"),
        ("description,description\nx,y\n", "appears twice"),
        ("description\n", "holds no cases"),
        (
            "description,consent_raise,consent_report,consent_contact\nx,yes,no,no,extra\n",
            "more cells",
        ),
        ("description,consent_raise,consent_report,consent_contact\nx,perhaps,no,no\n", "row 2 of"),
    ],
)
def test_bad_csv(tmp_path: Path, team: tuple[bytes, Path], content: str, message: str) -> None:
    _, team_pub = team
    (tmp_path / "cases.csv").write_text(content)
    result = seal(tmp_path, team_pub, "--csv", str(tmp_path / "cases.csv"), "--out-dir",
                  str(tmp_path / "out"))  # fmt: skip
    assert result.exit_code == 1
    assert message in result.output


def test_existing_numbered_files_are_never_overwritten(
    tmp_path: Path, team: tuple[bytes, Path]
) -> None:
    _, team_pub = team
    (tmp_path / "cases.json").write_text(json.dumps([{"fields": REQUIRED_FIELDS}] * 2))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "case-002.sealed").write_bytes(b"earlier")
    result = seal(tmp_path, team_pub, "--json", str(tmp_path / "cases.json"), "--out-dir",
                  str(tmp_path / "out"))  # fmt: skip
    assert result.exit_code == 1
    assert "case-002.sealed already exists" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["case-002.sealed"]


def test_seal_refuses_a_private_key_as_recipient(tmp_path: Path) -> None:
    secret, _ = crypto.generate_keypair()
    (tmp_path / "team.key").write_text(crypto.private_key_file_text(secret, b"a long passphrase"))
    result = seal(tmp_path, tmp_path / "team.key", "--out", str(tmp_path / "c"), *fields_args())
    assert result.exit_code == 1
    assert "private key file" in result.output


@pytest.mark.parametrize("change", [b"more", None])
def test_a_file_that_changes_while_sealing_leaves_nothing(
    tmp_path: Path, team: tuple[bytes, Path], monkeypatch: pytest.MonkeyPatch, change: bytes | None
) -> None:
    _, public_path = team
    log = tmp_path / "growing.log"
    log.write_bytes(bytes(100))
    case = relay.make_case(REQUIRED_FIELDS, [log], "en", "test")
    read_chunk = relay._EncryptedBlob._read_chunk

    def change_then_read(self: relay._EncryptedBlob) -> bytes:
        if change is None:
            log.write_bytes(b"")  # shrinks under the open handle
        else:
            with log.open("ab") as handle:
                handle.write(change)
        return read_chunk(self)

    monkeypatch.setattr(relay._EncryptedBlob, "_read_chunk", change_then_read)
    with pytest.raises((relay.SealError, bundle.BundleError)):
        relay.seal_case(case, crypto.load_public_key(public_path), tmp_path / "c.sealed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["growing.log", "team.pub"]


def test_progress_is_drawn_on_a_terminal(
    tmp_path: Path, team: tuple[bytes, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret, team_pub = team
    monkeypatch.setattr(Console, "is_terminal", property(lambda self: True))
    (tmp_path / "big.bin").write_bytes(bytes(300_000))
    out = tmp_path / "c.sealed"
    result = seal(tmp_path, team_pub, "--out", str(out), *fields_args(), str(tmp_path / "big.bin"))
    assert result.exit_code == 0, result.output
    assert opened(out, secret)[2] == [bytes(300_000)]


# ---------------------------------------------------------------------------------------------
# Receipts made by the relay (the key file publishes the site's receipt salt and cost)

SITE_SECRET = bytes(range(32))
MIN_COST = (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)


@pytest.fixture
def salted(team: tuple[bytes, Path], tmp_path: Path) -> tuple[bytes, Path]:
    """The team's secret key and a key file as the site serves it, with its receipt lines."""
    secret, team_pub = team
    lines = team_pub.read_text().splitlines(keepends=True)
    published = receipts.published(SITE_SECRET, *MIN_COST).lines()
    path = tmp_path / "served.pub"
    path.write_text("".join(lines[:-1]) + published + lines[-1])
    return secret, path


def test_a_batch_writes_its_receipts_to_a_private_file(
    tmp_path: Path, salted: tuple[bytes, Path]
) -> None:
    secret, served = salted
    (tmp_path / "cases.json").write_text(json.dumps([{"fields": REQUIRED_FIELDS}] * 2))
    out_dir = tmp_path / "sealed"
    result = seal(tmp_path, served, "--json", str(tmp_path / "cases.json"), "--out-dir",
                  str(out_dir))  # fmt: skip
    assert result.exit_code == 0, result.output
    book = out_dir / "receipts.txt"
    assert book.stat().st_mode & 0o777 == 0o600
    assert "as sensitive as the cases" in " ".join(result.stderr.split())
    written = dict(
        line.split("  ", 1) for line in book.read_text().splitlines() if not line.startswith("#")
    )
    assert sorted(written) == ["case-001.sealed", "case-002.sealed"]
    # No receipt is printed for a batch: the file is the one place they are kept.
    for name, receipt in written.items():
        assert receipt not in result.output
        entry, manifest, _files = opened(out_dir / name, secret)
        derived = receipts.derive(receipt, SITE_SECRET, *MIN_COST)
        assert manifest.reply_public_key == derived.reply_public_key
        assert entry.receipt_lookup == crypto.b64encode(derived.lookup)
        assert entry.reply_public_key == crypto.b64encode(derived.reply_public_key)


def test_a_batch_never_overwrites_a_receipts_file(
    tmp_path: Path, salted: tuple[bytes, Path]
) -> None:
    _secret, served = salted
    (tmp_path / "cases.json").write_text(json.dumps([{"fields": REQUIRED_FIELDS}] * 2))
    out_dir = tmp_path / "sealed"
    out_dir.mkdir()
    (out_dir / "receipts.txt").write_text("earlier receipts\n")
    result = seal(tmp_path, served, "--json", str(tmp_path / "cases.json"), "--out-dir",
                  str(out_dir))  # fmt: skip
    assert result.exit_code == 1
    assert "receipts.txt already exists" in result.output
    assert (out_dir / "receipts.txt").read_text() == "earlier receipts\n"
    assert sorted(p.name for p in out_dir.iterdir()) == ["receipts.txt"]


@pytest.mark.parametrize(
    ("replace", "by", "reason"),
    [
        ("# receipt-salt: ", "# receipt-salt: AAAA", "not the base64 of 16 bytes"),
        ("opslimit=1", "opslimit=x", "not of the form"),
        ("memlimit=8192", "memlimit=1", "outside Argon2id's usual bounds"),
        ("# receipt-cost:", "# another:", "one receipt line without the other"),
    ],
    ids=["short-salt", "not-a-number", "too-cheap", "cost-missing"],
)
def test_a_key_file_with_broken_receipt_lines_is_refused(
    tmp_path: Path, salted: tuple[bytes, Path], replace: str, by: str, reason: str
) -> None:
    _secret, served = salted
    text = served.read_text()
    assert replace in text
    served.write_text(text.replace(replace, by, 1))
    out = tmp_path / "case.sealed"
    result = seal(tmp_path, served, "--out", str(out), *fields_args())
    assert result.exit_code == 1
    assert reason in result.output
    assert not out.exists()


def test_an_output_folder_that_cannot_be_made_gets_a_message(
    tmp_path: Path, team: tuple[bytes, Path]
) -> None:
    _, team_pub = team
    (tmp_path / "cases.json").write_text(json.dumps([{"fields": REQUIRED_FIELDS}] * 2))
    (tmp_path / "a-file").write_bytes(b"not a folder")
    result = seal(tmp_path, team_pub, "--json", str(tmp_path / "cases.json"), "--out-dir",
                  str(tmp_path / "a-file" / "out"))  # fmt: skip
    assert result.exit_code == 1
    assert "a-file/out cannot be made: Not a directory." in result.output
    assert not isinstance(result.exception, NotADirectoryError)
    assert (tmp_path / "a-file").read_bytes() == b"not a folder"
