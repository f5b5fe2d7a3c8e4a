"""`portal cases`: the register through three bundles, the team's edits, triage and the report."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_cli_decrypt import Sub, Team, make_bundle
from test_cli_decrypt import decrypt as run_decrypt

from portal.cli import main
from portal.formats import crypto

PASSPHRASE = "a passphrase long enough"


@pytest.fixture
def team(tmp_path: Path) -> Team:
    secret, public = crypto.generate_keypair()
    key_file, passphrase_file = tmp_path / "team.key", tmp_path / "passphrase"
    key_file.write_text(crypto.private_key_file_text(secret, PASSPHRASE.encode()))
    passphrase_file.write_text(PASSPHRASE + "\n")
    return Team(secret, public, key_file, passphrase_file)


def cases(out: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["cases", "--dir", str(out), *args])


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def report(case: str, day: str, **fields: object) -> Sub:
    base: dict[str, object] = {"description": f"What happened to {case}.", "consent_raise": "yes",
                               "consent_contact": "portal"}  # fmt: skip
    base.update(fields)
    return Sub(f"r{case}", case, "report", day, base)  # type: ignore[arg-type]


def listed(out: Path, *args: str) -> list[str]:
    return [line.split()[0] for line in ok(cases(out, "list", *args)).splitlines()[1:]]


def test_three_bundles_keep_the_team_work_and_the_report_counts_what_consent_allows(
    tmp_path: Path, team: Team
) -> None:
    out = tmp_path / "out"
    first = make_bundle(tmp_path / "1.tar", [
        report("caseb", "2026-04-02", state_responsible="xb", country="xb",
               violations=["threats", "surveillance"], un_bodies=["treaty_bodies"],
               consent_report="anonymous", group_size="5", group_women="3", target_type="group"),
        report("casea", "2026-03-10", urgent="yes", state_responsible="XA", country="XC",
               violations=["travel_ban"], un_bodies=["human_rights_council"],
               target_gender="woman", consent_report="named"),
        report("cased", "2026-03-15", country="XA", violations=["threats"],
               consent_report="no", target_gender="man"),
        report("casec", "2026-06-01", state_responsible="XA", violations=["travel_ban"],
               consent_report="named"),
    ], team.public)  # fmt: skip
    assert run_decrypt(team, out, first).exit_code == 0
    ok(cases(out, "set", "casea", "--status", "raised", "--assign", "Amina"))
    ok(cases(out, "note", "casea", "Raised with the State on 12 March."))
    ok(cases(out, "note", "caseb", "Asked for the names of the group."))
    ok(cases(out, "set", "caseb", "--status", "review", "--paragraph", "A/HRC/63/12 para 40"))

    second = make_bundle(tmp_path / "2.tar", [
        Sub("fb", "caseb", "follow-up", "2026-05-01",
            {"description": "Please do not publish anything.", "consent_report": "no"}),
        Sub("fc", "casec", "follow-up", "2026-06-03", {"description": "News."}),
    ], team.public)  # fmt: skip
    assert run_decrypt(team, out, second).exit_code == 0
    ok(cases(out, "note", "caseb", "Consent withdrawn: check before the report."))
    ok(cases(out, "set", "cased", "--status", "closed"))

    third = make_bundle(tmp_path / "3.tar", [
        Sub("pc", "casec", "reply", "2026-06-04", {"message": "Thank you."},
            sealed_by="relay-tool", recipient="team"),
    ], team.public)  # fmt: skip
    assert run_decrypt(team, out, third).exit_code == 0

    # Every status and note survived three bundles.
    show_a, show_b = ok(cases(out, "show", "casea")), ok(cases(out, "show", "caseb"))
    assert "status: raised   assigned to: Amina" in show_a
    assert "Raised with the State on 12 March." in show_a
    assert "status: review" in show_b
    assert "A/HRC/63/12 para 40" in show_b
    assert "Asked for the names of the group." in show_b
    assert "Consent withdrawn: check before the report." in show_b
    assert "status: closed" in ok(cases(out, "show", "cased"))
    rows = {r["case"]: r for r in csv.DictReader(io.StringIO((out / "cases.csv").read_text()))}
    assert rows["casea"]["status"] == "raised"
    assert rows["casea"]["assigned_to"] == "Amina"
    assert len(rows["caseb"]["notes"].split(" | ")) == 2
    assert "Consent withdrawn" in rows["caseb"]["notes"]

    # The follow-up changed the consent that applies, and the change waits for a person.
    assert "in the annual report: no" in show_b
    assert "CONSENT CHANGED by a follow-up" in show_b
    assert "in the annual report: no (was anonymous)" in show_b
    assert rows["caseb"]["consent_publish"] == "not"
    assert rows["caseb"]["consent_changed"] == "to confirm"
    page = (out / "index.html").read_text()
    assert "changed by a follow-up: to confirm" in page

    # Triage: urgent first, then the follow-up nobody answered, then newest first.
    assert listed(out) == ["casea", "caseb", "casec", "cased"]
    assert listed(out, "--urgent") == ["casea"]
    assert listed(out, "--awaiting") == ["caseb"]  # casec's follow-up was answered
    assert listed(out, "--state", "xa") == ["casea", "casec", "cased"]
    assert listed(out, "--act", "threats") == ["caseb", "cased"]
    assert listed(out, "--status", "closed") == ["cased"]
    assert listed(out, "--from", "2026-03", "--to", "2026-03-31") == ["casea", "cased"]
    assert page.index("casea/report.txt") < page.index("caseb/report.txt")

    # The report of March to April: casea counted, caseb (withdrawn) and cased (no) left out.
    text = ok(cases(out, "report", "--from", "2026-03", "--to", "2026-04"))
    assert "Cases that may appear named (1)\n  casea" in text
    assert "Cases that may appear anonymised (0)" in text
    table = list(csv.reader(io.StringIO(
        (out / "annual-report-2026-03-to-2026-04.csv").read_text())))  # fmt: skip
    counted = {(r[0], r[1]): (r[3], r[4]) for r in table[1:]}
    assert {k: v for k, v in counted.items() if k[0] == "By State responsible"} == {
        ("By State responsible", "XA"): ("1", "1")
    }
    assert {k[1]: v for k, v in counted.items() if k[0] == "By kind of act"} == {
        "travel_ban": ("1", "1")
    }
    assert {k[1]: v for k, v in counted.items() if k[0] == "By UN body engaged"} == {
        "human_rights_council": ("1", "1")
    }
    assert {k[1]: v for k, v in counted.items() if k[0] == "By gender (people)"} == {
        "woman": ("1", "1")
    }
    consent = {k[1]: v for k, v in counted.items() if k[0].startswith("By consent")}
    assert consent == {"named": ("1", "1"), "anonymised": ("0", "0"), "not": ("2", "6"),
                       "not stated": ("0", "0")}  # fmt: skip
    assert ("may appear named", "casea") in counted
    assert not any("caseb" in k or "cased" in k for k in counted)
    report_page = (out / "annual-report-2026-03-to-2026-04.html").read_text()
    assert "default-src 'none'" in report_page
    assert "caseb" in report_page  # named only in the warning that its consent changed
    assert "<script" not in report_page

    # Before the withdrawal, caseb counted as anonymised with its five people, three of them women.
    with sqlite3.connect(out / "register.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 7


def test_a_group_counts_its_people_and_women(tmp_path: Path, team: Team) -> None:
    out = tmp_path / "out"
    bundle = make_bundle(tmp_path / "1.tar", [
        report("g1", "2025-05-02", state_responsible="XB", violations=["threats"],
               consent_report="anonymous", group_size="5", group_women="3"),
        report("i1", "2025-06-02", country="xb", violations=["threats"],
               consent_report="named", target_gender="other"),
    ], team.public)  # fmt: skip
    assert run_decrypt(team, out, bundle).exit_code == 0
    ok(cases(out, "report", "--from", "2025-05", "--to", "2026-04"))
    rows = list(csv.reader(io.StringIO((out / "annual-report-2025-05-to-2026-04.csv").read_text())))
    counted = {(r[0], r[1]): (r[3], r[4]) for r in rows[1:]}
    assert counted[("By State responsible", "XB")] == ("2", "6")
    assert counted[("By gender (people)", "woman")] == ("1", "3")
    assert counted[("By gender (people)", "not stated")] == ("1", "2")
    assert counted[("By gender (people)", "other")] == ("1", "1")
    assert counted[("By consent to publish (every case of the period)", "anonymised")] == (
        "1",
        "5",
    )


def test_confirming_a_consent_change_clears_the_flag(tmp_path: Path, team: Team) -> None:
    out = tmp_path / "out"
    bundle = make_bundle(tmp_path / "1.tar", [
        report("c1", "2026-01-02", consent_report="named"),
        Sub("f1", "c1", "follow-up", "2026-01-05", {"description": "x", "consent_report": "no"}),
    ], team.public)  # fmt: skip
    assert run_decrypt(team, out, bundle).exit_code == 0
    assert "consent?" in ok(cases(out, "list"))
    assert "consent change confirmed" in ok(cases(out, "set", "c1", "--confirm-consent"))
    assert "consent?" not in ok(cases(out, "list"))
    assert "to confirm" not in (out / "index.html").read_text()
    # A later decrypt does not raise the flag again for the change already confirmed.
    again = make_bundle(tmp_path / "2.tar", [Sub("f2", "c1", "follow-up", "2026-01-09",
                                                 {"description": "y"})], team.public)  # fmt: skip
    assert run_decrypt(team, out, again).exit_code == 0
    assert "consent?" not in ok(cases(out, "list"))
    assert "Change, " in ok(cases(out, "show", "c1"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "nope", "--status", "closed"], "holds no case 'nope'"),
        (["set", "c1"], "Give --status"),
        (["set", "c1", "--status", "done"], "Invalid value"),
        (["set", "c1", "--assign", "a\nb"], "one line"),
        (["note", "c1", "   "], "The note is empty"),
        (["note", "c1", "x" * 20_001], "the limit is 20000"),
        (["show", "nope"], "holds no case"),
        (["report", "--from", "2026-13", "--to", "2026-12"], "is not a month"),
        (["report", "--from", "2026-05", "--to", "2026-04"], "starts (2026-05) after"),
        (["list", "--from", "May"], "is not a date"),
    ],
)
def test_bad_input_gets_a_clear_message(
    tmp_path: Path, team: Team, args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    assert run_decrypt(team, out, make_bundle(tmp_path / "b.tar", [Sub("s1", "c1")],
                                              team.public)).exit_code == 0  # fmt: skip
    before = (out / "register.sqlite").read_bytes()
    result = cases(out, *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert (out / "register.sqlite").read_bytes() == before


def test_cases_runs_without_the_web_stack(tmp_path: Path, team: Team) -> None:
    out = tmp_path / "out"
    bundle = make_bundle(tmp_path / "b.tar", [report("c1", "2026-01-02", consent_report="named")],
                         team.public)  # fmt: skip
    assert run_decrypt(team, out, bundle).exit_code == 0
    # A None in sys.modules makes any import of that package fail, as in the base install.
    blocked = ("flask", "sqlalchemy", "alembic", "werkzeug", "jinja2", "gunicorn")
    code = (
        "import sys\n"
        f"sys.modules.update(dict.fromkeys({blocked!r}))\n"
        "from portal.cli import main\n"
        "main()\n"
    )
    for args in (["list"], ["show", "c1"], ["note", "c1", "n"], ["set", "c1", "--status", "review"],
                 ["report", "--from", "2026-01", "--to", "2026-12"]):  # fmt: skip
        run = subprocess.run([sys.executable, "-c", code, "cases", "--dir", str(out), *args],
                             capture_output=True, text=True)  # fmt: skip
        assert run.returncode == 0, run.stderr
    assert "status: review" in ok(cases(out, "show", "c1"))


def test_a_damaged_register_gets_a_clear_message(tmp_path: Path, team: Team) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "register.sqlite").write_bytes(b"not a database at all" * 100)
    for result in (
        run_decrypt(team, out, make_bundle(tmp_path / "b.tar", [Sub()], team.public)),
        cases(out, "list"),
    ):
        assert result.exit_code == 1
        assert "cannot be read as a register" in result.output
        assert "Traceback" not in result.output


def test_cases_refuses_a_folder_without_a_register(tmp_path: Path) -> None:
    result = cases(tmp_path, "list")
    assert result.exit_code == 1
    assert "There is no register" in result.output
    assert list(tmp_path.iterdir()) == []


def test_cases_refuses_a_register_that_leads_elsewhere(tmp_path: Path, team: Team) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere.sqlite"
    assert (
        run_decrypt(team, out, make_bundle(tmp_path / "b.tar", [Sub()], team.public)).exit_code == 0
    )
    (out / "register.sqlite").rename(elsewhere)
    (out / "register.sqlite").symlink_to(elsewhere)
    before = elsewhere.read_bytes()
    result = cases(out, "note", "case1", "a note")
    assert result.exit_code == 1
    assert "only ever kept inside the output folder" in result.output
    assert elsewhere.read_bytes() == before
    result = run_decrypt(team, out, make_bundle(tmp_path / "c.tar", [Sub("s2", "c2")], team.public))
    assert result.exit_code == 1
    assert "only ever kept inside the output folder" in result.output
    assert not (out / "c2").exists()


def test_hand_edits_of_cases_csv_are_not_read_back(tmp_path: Path, team: Team) -> None:
    out = tmp_path / "out"
    assert (
        run_decrypt(team, out, make_bundle(tmp_path / "b.tar", [Sub()], team.public)).exit_code == 0
    )
    ok(cases(out, "note", "case1", '=HYPERLINK("http://x")'))
    (out / "cases.csv").write_text("case,status\ncase1,closed\n")
    ok(cases(out, "set", "case1", "--assign", "Li"))
    rows = list(csv.DictReader(io.StringIO((out / "cases.csv").read_text())))
    assert rows[0]["status"] == "new"
    assert rows[0]["assigned_to"] == "Li"
    assert re.search(r"^'?\d{4}-\d{2}-\d{2}: =HYPERLINK", rows[0]["notes"])
    assert not rows[0]["notes"].startswith("=")
