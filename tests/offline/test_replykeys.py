"""Reply keys: the sealed one before the index's, pinned per case, `portal reply` bound to it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_cli_decrypt import Sub, Team, decrypt, flip, make_bundle, make_team

from portal.cli import main
from portal.formats import bundle, crypto, envelope
from portal.offline import replykeys

TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return make_team(tmp_path)


@pytest.fixture
def keys() -> list[tuple[bytes, bytes]]:
    """Three reply key pairs: the case's, an attacker's, another case's."""
    return [crypto.generate_keypair() for _ in range(3)]


def b64(key: tuple[bytes, bytes]) -> str:
    return crypto.b64encode(key[1])


def record(out: Path, case: str = "case1") -> dict[str, object]:
    return dict(json.loads((out / case / "report.json").read_text()))


def reply(team: Team, folder: Path, out: Path) -> Result:
    return CliRunner().invoke(
        main,
        ["reply", "--key", str(team.key_file), "--passphrase-file", str(team.passphrase_file),
         "--case", str(folder), "--out", str(out), "--message", "We have raised it."],
    )  # fmt: skip


def sealed_to(path: Path) -> bytes:
    """The submitter's copy of a reply file."""
    with bundle.Reader(path) as reader:
        [entry] = [e for e in reader.entries if e.recipient == "submitter"]
        return reader.read_manifest(entry)


def test_an_index_key_is_pinned_and_said_to_be_unauthenticated(
    tmp_path: Path, team: Team, keys: list[tuple[bytes, bytes]]
) -> None:
    out = tmp_path / "out"
    sub = Sub(sealed_by="relay-tool", index_reply_key=b64(keys[0]))
    assert decrypt(team, out, make_bundle(tmp_path / "a.tar", [sub], team.public)).exit_code == 0
    text = (out / "case1" / "report.txt").read_text()
    assert (
        "Reply key:   from the server's bundle index (not authenticated; "
        f"first seen on {TODAY})" in text
    )
    assert record(out)["reply_public_key_from"] == "bundle index"
    assert record(out)["reply_public_key_first_seen"] == TODAY
    pin = replykeys.read_pin(out / "case1")
    assert pin == replykeys.Pin("case1", keys[0][1], "bundle index", TODAY, "a.tar")
    assert (out / "case1" / replykeys.PIN_NAME).stat().st_mode & 0o077 == 0


def test_the_sealed_key_wins_over_the_index(
    tmp_path: Path, team: Team, keys: list[tuple[bytes, bytes]]
) -> None:
    out = tmp_path / "out"
    sub = Sub(reply_public_key=keys[0][1], index_reply_key=b64(keys[1]))
    result = decrypt(team, out, make_bundle(tmp_path / "a.tar", [sub], team.public))
    assert result.exit_code == 1  # opened, with a warning
    assert "the sealed one is used" in result.stderr
    assert record(out)["reply_public_key"] == b64(keys[0])
    assert record(out)["reply_public_key_from"] == "manifest"
    assert "Reply key:   inside the sealed report" in (out / "case1" / "report.txt").read_text()
    assert (
        "WARNING:     the bundle index names reply key"
        in (out / "case1" / "report.txt").read_text()
    )


@pytest.mark.parametrize("later", ["follow-up", "forced report", "sealed follow-up"])
def test_a_later_bundle_naming_another_key_is_refused(
    tmp_path: Path, team: Team, keys: list[tuple[bytes, bytes]], later: str
) -> None:
    out = tmp_path / "out"
    first = Sub(sealed_by="browser", index_reply_key=b64(keys[0]))
    assert decrypt(team, out, make_bundle(tmp_path / "a.tar", [first], team.public)).exit_code == 0
    subs = [Sub("other", "case2", index_reply_key=b64(keys[2]))]
    if later == "follow-up":
        subs.append(Sub("fol1", "case1", "follow-up", index_reply_key=b64(keys[1])))
    elif later == "sealed follow-up":
        subs.append(Sub("fol1", "case1", "follow-up", reply_public_key=keys[1][1]))
    else:
        subs.append(Sub("sub2", "case1", index_reply_key=b64(keys[1])))
    extra = ("--force",) if later == "forced report" else ()
    result = decrypt(team, out, make_bundle(tmp_path / "b.tar", subs, team.public), extra=extra)
    assert result.exit_code == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("refused")]
    assert line.startswith("refused  b.tar: case case1, ")
    assert f"pinned {replykeys.short(keys[0][1])} for case case1 on {TODAY}" in line
    assert "nothing of it was opened" in line
    assert "1 submission(s) opened, 0 skipped, 1 refused, 0 failed." in result.stderr
    assert (out / "case2" / "report.txt").exists()  # the other case still opens
    assert record(out)["reply_public_key"] == b64(keys[0])
    assert record(out)["id"] == "sub1"
    assert [p.name for p in (out / "case1").iterdir() if p.is_dir()] == []
    pin = replykeys.read_pin(out / "case1")
    assert pin is not None
    assert pin.key == keys[0][1]


def test_a_case_opened_before_pins_is_pinned_from_its_report(
    tmp_path: Path, team: Team, keys: list[tuple[bytes, bytes]]
) -> None:
    out = tmp_path / "out"
    first = Sub(index_reply_key=b64(keys[0]))
    assert decrypt(team, out, make_bundle(tmp_path / "a.tar", [first], team.public)).exit_code == 0
    (out / "case1" / replykeys.PIN_NAME).unlink()  # as an older version left it
    later = Sub("fol1", "case1", "follow-up", index_reply_key=b64(keys[1]))
    result = decrypt(team, out, make_bundle(tmp_path / "b.tar", [later], team.public))
    assert result.exit_code == 1
    assert "refused  b.tar: case case1, follow-up fol1" in result.stderr


def test_a_damaged_pin_stops_its_case_only(
    tmp_path: Path, team: Team, keys: list[tuple[bytes, bytes]]
) -> None:
    out = tmp_path / "out"
    first = Sub(index_reply_key=b64(keys[0]))
    assert decrypt(team, out, make_bundle(tmp_path / "a.tar", [first], team.public)).exit_code == 0
    (out / "case1" / replykeys.PIN_NAME).write_text("{")
    subs = [Sub("fol1", "case1", "follow-up", index_reply_key=b64(keys[0])),
            Sub("other", "case2", index_reply_key=b64(keys[2]))]  # fmt: skip
    result = decrypt(team, out, make_bundle(tmp_path / "b.tar", subs, team.public))
    assert result.exit_code == 1
    assert "failed   b.tar: case case1, follow-up fol1: the reply key pin" in result.stderr
    assert (out / "case2" / "report.txt").exists()
    assert reply(team, out / "case1", tmp_path / "r.sealed").exit_code == 1
    assert not (tmp_path / "r.sealed").exists()


def test_a_failed_submission_pins_nothing(
    tmp_path: Path, team: Team, keys: list[tuple[bytes, bytes]]
) -> None:
    out = tmp_path / "out"
    bad = Sub(index_reply_key=b64(keys[1]), files=[("a.txt", b"x")])
    path = make_bundle(tmp_path / "a.tar", [bad], team.public, flip("sub1/files/0.blob"))
    assert decrypt(team, out, path).exit_code == 1
    assert not (out / "case1").exists()
    good = Sub(index_reply_key=b64(keys[0]))
    assert decrypt(team, out, make_bundle(tmp_path / "b.tar", [good], team.public)).exit_code == 0
    assert record(out)["reply_public_key"] == b64(keys[0])


def test_reply_seals_to_the_pinned_key(
    tmp_path: Path, team: Team, keys: list[tuple[bytes, bytes]]
) -> None:
    out = tmp_path / "out"
    first = Sub(sealed_by="relay-tool", index_reply_key=b64(keys[0]))
    assert decrypt(team, out, make_bundle(tmp_path / "a.tar", [first], team.public)).exit_code == 0
    result = reply(team, out / "case1", tmp_path / "r.sealed")
    assert result.exit_code == 0, result.output
    assert f"from the server's bundle index (not authenticated; first seen on {TODAY})" in (
        result.stderr
    )
    manifest = envelope.open_manifest(sealed_to(tmp_path / "r.sealed"), keys[0][0])
    assert manifest.fields == {"message": "We have raised it."}


@pytest.mark.parametrize("change", ["key", "case"])
def test_reply_refuses_a_case_folder_that_disagrees_with_its_pin(
    tmp_path: Path, team: Team, keys: list[tuple[bytes, bytes]], change: str
) -> None:
    out = tmp_path / "out"
    first = Sub(sealed_by="relay-tool", index_reply_key=b64(keys[0]))
    assert decrypt(team, out, make_bundle(tmp_path / "a.tar", [first], team.public)).exit_code == 0
    path = out / "case1" / "report.json"
    changed = json.loads(path.read_text())
    if change == "key":
        changed["reply_public_key"] = b64(keys[1])
    else:
        pin = json.loads((out / "case1" / replykeys.PIN_NAME).read_text())
        (out / "case1" / replykeys.PIN_NAME).write_text(json.dumps({**pin, "case": "case9"}))
    path.write_text(json.dumps(changed))
    result = reply(team, out / "case1", tmp_path / "r.sealed")
    assert result.exit_code == 1
    assert "No reply was sealed." in result.output
    assert ("for case case9, not case1" if change == "case" else "its report.json names") in (
        result.output
    )
    assert not (tmp_path / "r.sealed").exists()


def test_reply_pins_a_case_folder_opened_before_pins(
    tmp_path: Path, team: Team, keys: list[tuple[bytes, bytes]]
) -> None:
    out = tmp_path / "out"
    first = Sub(index_reply_key=b64(keys[0]))
    assert decrypt(team, out, make_bundle(tmp_path / "a.tar", [first], team.public)).exit_code == 0
    (out / "case1" / replykeys.PIN_NAME).unlink()
    result = reply(team, out / "case1", tmp_path / "r.sealed")
    assert result.exit_code == 0, result.output
    assert "is pinned now" in result.stderr
    pin = replykeys.read_pin(out / "case1")
    assert pin is not None
    assert (pin.key, pin.source) == (keys[0][1], "bundle index")
    envelope.open_manifest(sealed_to(tmp_path / "r.sealed"), keys[0][0])
