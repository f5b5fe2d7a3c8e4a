"""The case register: `portal cases list`, `report` and `note` on 10,000 cases, and its size.

The register is filled directly (no decryption) with 10,000 reports of about 2 KB of answers,
3,000 follow-ups, 1,000 replies and 5,000 notes, then each command runs through the real
`portal cases` entry point. `note` includes regenerating index.html and cases.csv, which every
change does.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

from portal import register
from portal.cli import main

CASES = 10_000
FOLLOW_UPS = 3_000
REPLIES = 1_000
NOTES = 5_000
STATES = ("XA", "XB", "XC", "XD", "XE", "XF", "XG", "XH")
ACTS = ("travel_ban", "threats", "smear_campaign", "surveillance", "arbitrary_detention",
        "torture", "disappearance", "relatives")  # fmt: skip
BODIES = ("human_rights_council", "universal_periodic_review", "special_procedures",
          "treaty_bodies", "ohchr")  # fmt: skip


def _record(rng: random.Random, sid: str, case: str, kind: str, day: str) -> dict[str, object]:
    fields: dict[str, object]
    if kind == "report":
        fields = {
            "description": "lorem ipsum dolor sit amet " * 70,
            "urgent": "yes" if rng.random() < 0.05 else "no",
            "state_responsible": rng.choice(STATES),
            "country": rng.choice(STATES),
            "violations": rng.sample(ACTS, rng.randint(1, 3)),
            "un_bodies": rng.sample(BODIES, rng.randint(1, 2)),
            "target_gender": rng.choice(("woman", "man", "other", "undisclosed")),
            "consent_report": rng.choice(("named", "anonymous", "no")),
            "consent_raise": "yes",
            "consent_contact": "portal",
        }
        if rng.random() < 0.1:
            fields["group_size"], fields["group_women"] = "6", "2"
    elif kind == "follow-up":
        fields = {"description": "more news " * 30}
        if rng.random() < 0.2:
            fields["consent_report"] = "no"
    else:
        fields = {"message": "Thank you; we have raised it."}
    return {"id": sid, "case": case, "kind": kind, "received_day": day, "bundle": "bench.tar",
            "sealed_by": "browser", "locale": "en", "fields": fields, "files": []}  # fmt: skip


def fill(out: Path) -> float:
    """Fill a register with the benchmark's cases; return the seconds it took."""
    rng = random.Random(7)
    started = time.perf_counter()
    conn = register.connect(out, create=True)
    try:
        with register.transaction(conn):
            for n in range(CASES):
                day = f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}"
                case = f"case{n:05d}"
                register.add_record(conn, out, case, _record(rng, f"r{n}", case, "report", day))
            for n in range(FOLLOW_UPS):
                case = f"case{rng.randrange(CASES):05d}"
                folder = f"{case}/2026-01-10-follow-up-f{n}"
                record = _record(rng, f"f{n}", case, "follow-up", "2026-01-10")
                register.add_record(conn, out, folder, record)
            for n in range(REPLIES):
                case = f"case{rng.randrange(CASES):05d}"
                folder = f"{case}/2026-01-12-reply-p{n}"
                register.add_record(
                    conn, out, folder, _record(rng, f"p{n}", case, "reply", "2026-01-12")
                )
            conn.executemany(
                "INSERT INTO notes (case_id, day, text) VALUES (?, '2026-01-15', ?)",
                [
                    (f"case{rng.randrange(CASES):05d}", "Raised with the State.")
                    for _ in range(NOTES)
                ],
            )
    finally:
        conn.close()
    return time.perf_counter() - started


def _timed(out: Path, *args: str) -> float:
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["cases", "--dir", str(out), *args])
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    return elapsed


def run() -> None:
    """Fill the register, then time the commands and print its size."""
    out = Path(tempfile.mkdtemp(prefix="bench-register-"))
    try:
        filled = fill(out)
        print(f"   filled {CASES:,} cases ({FOLLOW_UPS:,} follow-ups, {REPLIES:,} replies, "
              f"{NOTES:,} notes) in {filled:.1f} s")  # fmt: skip
        size = (out / register.NAME).stat().st_size
        print(f"   register size: {size / 1e6:.1f} MB ({size / CASES / 1e3:.1f} KB per case)")
        for label, args in (
            ("list (all cases)", ("list",)),
            ("list --urgent", ("list", "--urgent")),
            ("list --act torture --state XB", ("list", "--act", "torture", "--state", "XB")),
            (
                "report --from 2025-01 --to 2025-12",
                ("report", "--from", "2025-01", "--to", "2025-12"),
            ),
            ("note (with index.html and cases.csv)", ("note", "case00042", "A note.")),
            ("show", ("show", "case00042")),
        ):
            best = min(_timed(out, *args) for _ in range(3))
            print(f"   {label:<40} {best:6.2f} s (best of 3)")
        index = (out / "index.html").stat().st_size
        print(f"   index.html: {index / 1e6:.1f} MB; cases.csv: "
              f"{(out / 'cases.csv').stat().st_size / 1e6:.1f} MB")  # fmt: skip
    finally:
        shutil.rmtree(out, ignore_errors=True)
