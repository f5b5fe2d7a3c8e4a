"""The team's case register: one SQLite file beside the case folders, never rebuilt from scratch.

`portal decrypt` adds every submission it opens, one transaction per bundle, and then catches
up with any case folder the register does not know yet (one opened by a run that crashed before
its transaction, or written by hand). `portal cases` keeps the team's own fields: status,
assignment, dated notes, the annual report's paragraph, and the confirmation of a consent that a
follow-up changed. The register holds plaintext: it is as sensitive as the case folders.

Two runs on one folder never interleave: each takes an exclusive `flock` on the folder itself
for its whole run (waiting a while, then refusing), and every write is an SQLite transaction
begun with BEGIN IMMEDIATE, so a crash leaves the register as it was before the transaction.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from portal.formats import bundle
from portal.offline import case_facts, sniff

NAME = "register.sqlite"
VERSION = 1
STATUSES = ("new", "review", "raised", "annual-report", "closed")
KINDS = ("report", "follow-up", "reply")
LOCK_WAIT_SECONDS = 30.0
BUSY_TIMEOUT_SECONDS = 30.0
SCHEMA = """
CREATE TABLE cases (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL DEFAULT 'new',
    assigned TEXT NOT NULL DEFAULT '',
    paragraph TEXT NOT NULL DEFAULT '',
    consent_to_confirm INTEGER NOT NULL DEFAULT 0,
    has_report INTEGER NOT NULL DEFAULT 0,
    first_day TEXT NOT NULL DEFAULT '',
    last_day TEXT NOT NULL DEFAULT '',
    last_follow_up TEXT NOT NULL DEFAULT '',
    last_reply TEXT NOT NULL DEFAULT '',
    urgent INTEGER NOT NULL DEFAULT 0,
    country TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT '',
    publish TEXT NOT NULL DEFAULT '',
    facts TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE submissions (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases(id),
    kind TEXT NOT NULL,
    received_day TEXT NOT NULL,
    seq INTEGER NOT NULL,
    folder TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX submissions_by_case ON submissions(case_id);
CREATE INDEX submissions_by_folder ON submissions(folder);
CREATE INDEX submissions_by_seq ON submissions(seq);
CREATE TABLE files (
    submission_id TEXT NOT NULL REFERENCES submissions(id),
    position INTEGER NOT NULL,
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    size INTEGER NOT NULL,
    claimed TEXT NOT NULL,
    found TEXT NOT NULL,
    PRIMARY KEY (submission_id, position)
);
CREATE TABLE case_values (
    case_id TEXT NOT NULL REFERENCES cases(id),
    field TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX case_values_by_value ON case_values(field, value);
CREATE INDEX case_values_by_case ON case_values(case_id);
CREATE TABLE consent (
    case_id TEXT NOT NULL REFERENCES cases(id),
    submission_id TEXT NOT NULL,
    day TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    previous TEXT,
    confirmed INTEGER NOT NULL
);
CREATE INDEX consent_by_case ON consent(case_id);
CREATE TABLE notes (
    id INTEGER PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases(id),
    day TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX notes_by_case ON notes(case_id);
CREATE TABLE changes (
    id INTEGER PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases(id),
    day TEXT NOT NULL,
    what TEXT NOT NULL
);
CREATE INDEX changes_by_case ON changes(case_id);
"""


class RegisterError(Exception):
    """The register cannot be used as asked; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------
# Opening, locking, transactions


@contextlib.contextmanager
def locked(out: Path, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold the folder's exclusive lock, waiting up to `wait` seconds for another run to end."""
    try:
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise RegisterError(f"The folder {out} cannot be opened: {exc.strerror}.") from exc
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RegisterError(
                        f"Another `portal decrypt` or `portal cases` is working in {out}; "
                        "nothing was changed. Run this again when it has finished."
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def path_in(out: Path) -> Path:
    """The register's path in an output folder, refused if it would lead anywhere else."""
    path = out / NAME
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise RegisterError(
            f"{path} is not a plain file (a link, or a folder); the register is only ever "
            "kept inside the output folder, so nothing was written."
        )
    if path.resolve().parent != out.resolve():
        raise RegisterError(f"{path} leads outside {out}; nothing was written.")
    return path


def connect(out: Path, create: bool = False) -> sqlite3.Connection:
    """Open the register of `out`; create it (mode 0600) only when `create` is set."""
    path = path_in(out)
    if not path.exists():
        if not create:
            raise RegisterError(
                f"There is no register in {out}: run `portal decrypt --out {out} …` first "
                "(the register lives only in the folder of case folders)."
            )
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        # Deleted text is overwritten, not left in free pages of a file that holds plaintext.
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("PRAGMA synchronous = FULL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > VERSION:
            raise RegisterError(f"{path} was made by a newer portal; update this one.")
        if version == 0:
            with transaction(conn):
                if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {VERSION}")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise RegisterError(f"{path} cannot be read as a register: {exc}.") from exc
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One all-or-nothing change: BEGIN IMMEDIATE, then COMMIT, or ROLLBACK on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# ---------------------------------------------------------------------------------------------
# Adding submissions


def check_record(record: object, folder: str) -> str:
    """Why a report.json cannot go into the register, or "" when it can."""
    if not isinstance(record, dict) or not isinstance(record.get("fields"), dict):
        return "it is not a case record"
    if not all(isinstance(record.get(key), str) for key in ("id", "case", "kind", "received_day")):
        return "it lacks its id, case, kind or day"
    if not bundle.ID_PATTERN.match(record["id"]) or record["kind"] not in KINDS:
        return "its id or kind is not one a bundle can hold"
    if not bundle.DAY_PATTERN.match(record["received_day"]):
        return "its day is not a date"
    case_folder, _, submission = folder.partition("/")
    if case_folder != record["case"]:
        return f"it names case {record['case']!r} but lies in another case's folder"
    # A record counts only in the folder decrypt gives it: a case's report at the top, a later
    # submission in DAY-KIND-ID. Anything else (an attachment named report.json) is not one.
    named = f"{record['received_day']}-{record['kind']}-{record['id']}"
    if (record["kind"] == "report") != (submission == "") or (submission and submission != named):
        return "it does not match its folder's name"
    return ""


def add_record(conn: sqlite3.Connection, out: Path, folder: str, record: dict[str, Any]) -> None:
    """Add or replace one opened submission (inside a transaction) and refresh its case."""
    case = record["case"]
    conn.execute("INSERT OR IGNORE INTO cases (id) VALUES (?)", (case,))
    # A report replaced with --force may carry a new id: the folder holds one submission only.
    for (other,) in conn.execute(
        "SELECT id FROM submissions WHERE folder = ? AND id != ?", (folder, record["id"])
    ).fetchall():
        conn.execute("DELETE FROM files WHERE submission_id = ?", (other,))
        conn.execute("DELETE FROM submissions WHERE id = ?", (other,))
    row = conn.execute("SELECT seq FROM submissions WHERE id = ?", (record["id"],)).fetchone()
    if row is None:
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM submissions").fetchone()[0]
    else:
        seq = row[0]
        conn.execute("DELETE FROM files WHERE submission_id = ?", (record["id"],))
    conn.execute(
        "INSERT OR REPLACE INTO submissions VALUES (?, ?, ?, ?, ?, ?, ?)",
        (record["id"], case, record["kind"], record["received_day"], seq, folder,
         json.dumps(record, ensure_ascii=False)),
    )  # fmt: skip
    files = record.get("files") if isinstance(record.get("files"), list) else []
    for position, item in enumerate(files or []):
        if not isinstance(item, dict):
            continue
        saved = str(item.get("saved_as", ""))
        name, mime = str(item.get("name", "")), str(item.get("type", ""))
        parts = saved.split("/")
        safe = len(parts) == 2 and parts[0] == "attachments" and parts[1] not in ("", ".", "..")
        found = sniff.sniff_file(out / folder / saved) if safe else "missing"
        size = item.get("size") if isinstance(item.get("size"), int) else 0
        conn.execute(
            "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (record["id"], position, f"{folder}/{saved}", name, mime, size,
             sniff.claimed(name, mime), found),
        )  # fmt: skip
    refresh(conn, case)


def refresh(conn: sqlite3.Connection, case: str) -> None:
    """Recompute what a case's answers say: its facts, its effective consent and the flag."""
    rows = conn.execute(
        "SELECT id, kind, received_day, record FROM submissions WHERE case_id = ? "
        "ORDER BY received_day, seq",
        (case,),
    ).fetchall()
    records = [(sid, kind, day, json.loads(text)) for sid, kind, day, text in rows]
    reports = [r for _, kind, _, r in records if kind == "report"]
    report = reports[-1]["fields"] if reports else {}
    follow_ups = [r["fields"] for _, kind, _, r in records if kind == "follow-up"]
    facts = case_facts.derive(report, follow_ups)

    confirmed = {
        (sid, name)
        for sid, name in conn.execute(
            "SELECT submission_id, field FROM consent WHERE case_id = ? AND confirmed = 1", (case,)
        )
    }
    conn.execute("DELETE FROM consent WHERE case_id = ?", (case,))
    effective: dict[str, str] = {}
    to_confirm = False
    for sid, kind, day, record in records:
        if kind == "reply":
            continue
        for name, value in case_facts.statements(record["fields"]).items():
            previous = effective.get(name)
            ok = previous is None or previous == value or (sid, name) in confirmed
            to_confirm = to_confirm or not ok
            conn.execute(
                "INSERT INTO consent VALUES (?, ?, ?, ?, ?, ?, ?)",
                (case, sid, day, name, value, previous, int(ok)),
            )
            effective[name] = value

    days = {kind: [day for _, k, day, _ in records if k == kind] for kind in KINDS}
    first = (days["report"] or days["follow-up"] or days["reply"] or [""])[0]
    summary = {
        "acts": facts.acts, "bodies": facts.bodies, "gender": facts.gender,
        "people": facts.people, "women": facts.women, "consent": facts.consent,
        "answers": facts.answers,
        "locale": str(reports[-1].get("locale", "")) if reports else "",
        "sealed_by": str(reports[-1].get("sealed_by", "")) if reports else "",
        "follow_ups": len(days["follow-up"]), "replies": len(days["reply"]),
        "attachments": sum(len(r.get("files") or []) for _, k, _, r in records if k != "reply"),
    }  # fmt: skip
    conn.execute(
        "UPDATE cases SET has_report = ?, first_day = ?, last_day = ?, last_follow_up = ?, "
        "last_reply = ?, urgent = ?, country = ?, state = ?, publish = ?, facts = ?, "
        "consent_to_confirm = ? WHERE id = ?",
        (int(bool(reports)), first, max(day for _, _, day, _ in records),
         max(days["follow-up"], default=""), max(days["reply"], default=""), int(facts.urgent),
         facts.country, facts.state, facts.publish, json.dumps(summary, ensure_ascii=False),
         int(to_confirm), case),
    )  # fmt: skip
    conn.execute("DELETE FROM case_values WHERE case_id = ?", (case,))
    conn.executemany(
        "INSERT INTO case_values VALUES (?, ?, ?)",
        [(case, "act", act) for act in dict.fromkeys(facts.acts)]
        + [(case, "body", body) for body in dict.fromkeys(facts.bodies)],
    )


def read_record(path: Path) -> tuple[dict[str, Any] | None, str]:
    """A report.json's record, or None and why it cannot be read."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None, "it cannot be read"
    return (record, "") if isinstance(record, dict) else (None, "it is not a case record")


def add_folders(conn: sqlite3.Connection, out: Path, folders: Iterable[str]) -> list[str]:
    """Add the submissions opened into these folders (relative to `out`) in one transaction."""
    problems: list[str] = []
    with transaction(conn):
        for folder in folders:
            record, why = read_record(out / folder / "report.json")
            why = why or check_record(record, folder)
            if record is None or why:
                problems.append(f"{out / folder / 'report.json'}: {why}; left out of the index")
                continue
            add_record(conn, out, folder, record)
    return problems


def unregistered_folders(conn: sqlite3.Connection, out: Path) -> list[str]:
    """Case and submission folders under `out` that hold a report.json the register lacks."""
    known_reports = {row[0] for row in conn.execute("SELECT folder FROM submissions")}
    missing = []
    for case in sorted(out.iterdir()):
        if case.name.startswith(".") or case.is_symlink() or not case.is_dir():
            continue
        if (case / "report.json").is_file() and case.name not in known_reports:
            missing.append(case.name)
        for sub in sorted(case.iterdir()):
            relative = f"{case.name}/{sub.name}"
            # Only the folders decrypt names: DAY-KIND-ID, never the team's own folders.
            if (
                relative not in known_reports
                and submission_folder_name(sub.name)
                and not sub.is_symlink()
                and (sub / "report.json").is_file()
            ):
                missing.append(relative)
    return missing


def submission_folder_name(name: str) -> bool:
    """Whether a name is one `portal decrypt` gives a follow-up's or a reply's folder."""
    day, _, rest = name[:10], name[10:11], name[11:]
    for kind in ("follow-up", "reply"):
        if rest.startswith(kind + "-"):
            return bool(
                bundle.DAY_PATTERN.match(day) and bundle.ID_PATTERN.match(rest[len(kind) + 1 :])
            )
    return False
