"""`index.html` and `cases.csv`, written from the register after every change.

The index is one static page opened from disk: a strict Content-Security-Policy meta tag, no
script, every text escaped, and links only to the readable report.txt files, never to an
attachment. `cases.csv` carries the team's columns too; it is written, never read back.
"""

from __future__ import annotations

import csv
import html
import io
import sqlite3
import unicodedata
from pathlib import Path
from urllib.parse import quote

from portal.formats import durable, questionnaire, territories
from portal.offline import case_facts, names, opening, sniff
from portal.offline.register_query import CaseRow, FileRow, all_files, all_notes, all_submissions
from portal.offline.register_query import cases as case_rows

CSP = "default-src 'none'; style-src 'unsafe-inline'"
NOTES_SHOWN = 3
CSV_COLUMNS = (
    "case", "received_day", "locale", "sealed_by", "follow_ups", "replies", "attachments",
    # counted_state: the State the annual report's tables count the case under (the State
    # responsible, or the country of the events where none was named); the answers follow.
    "last_day", "status", "assigned_to", "awaiting_reply", "counted_state",
    "consent_publish", "consent_changed", "annual_report_paragraph", "notes",
    *case_facts.SUMMARY_FIELDS,
    # The English names beside the ISO codes, for people reading the table.
    "country_name", "state_responsible_name",
)  # fmt: skip


def place_name(code: str) -> str:
    """A country or State's English name (CLDR), or what was written when it is not a code."""
    return territories.ENGLISH_NAMES.get(code, case_facts.label("country", code) if code else "")


def one_line(text: str) -> str:
    """Text on one line with no control or bidirectional-override characters."""
    kept = []
    for char in str(text):
        category = unicodedata.category(char)
        if char in "\n\t\r":
            kept.append(" ")
        elif category == "Cc":
            kept.append("\ufffd")
        elif category == "Cf" and char not in names.KEPT_FORMAT_CHARS:
            continue
        else:
            kept.append(char)
    return "".join(kept)


def printable(text: str) -> str:
    """Text on several lines, each cleaned as `one_line` cleans it."""
    return "\n".join(one_line(line) for line in str(text).split("\n"))


def csv_items(value: str) -> str:
    """A `;`-joined cell with every item guarded against spreadsheet formulas."""
    return ";".join(names.csv_cell(one_line(item)) for item in value.split(";"))


def consent_text(row: CaseRow) -> str:
    """The consent to publish that applies, with a mark when a follow-up changed it."""
    text = row.publish
    if row.consent_to_confirm:
        text += " (CHANGED by a follow-up: to confirm)"
    return text


def file_line(item: FileRow) -> str:
    """An attachment: what it claims, what its first bytes show, and a warning on a mismatch."""
    claim = f"claims {item.type or 'no type'}"
    if sniff.mismatch(item.claimed, item.found):
        return f"{item.path} — {claim}; its first bytes show {sniff.describe(item.found)}: MISMATCH"
    return f"{item.path} — {claim}; first bytes: {sniff.describe(item.found)}"


def _link(relative: str, text: str) -> str:
    return f'<a href="{html.escape(quote(relative))}">{html.escape(text)}</a>'


def _e(text: object) -> str:
    return html.escape(one_line(str(text)))


def _labels(name: str, values: list[str]) -> str:
    return "; ".join(case_facts.label(name, value) for value in values)


INDEX_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="referrer" content="no-referrer">
<title>Case register — reprisals portal</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 1.5rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #bbb; padding: .35rem .5rem; text-align: start; vertical-align: top; }}
th {{ background: #eee; }}
td ul {{ margin: 0; padding-inline-start: 1rem; }}
.none {{ color: #777; }}
.urgent {{ background: #fde2e2; }}
.flag {{ color: #a00; font-weight: bold; }}
.day, a {{ white-space: nowrap; }}
</style>
</head>
<body>
<h1>Case register</h1>
<p>{count} case(s), from register.sqlite. Urgent cases come first, then cases with a follow-up
newer than the team's last reply. Each case links to its report.txt. Attachments are not linked:
open them only as the README says (a disposable offline virtual machine).</p>
<table>
<thead><tr><th>Case</th><th>Status</th><th>Urgent</th><th>First received</th>
<th>State responsible</th><th>What happened</th><th>Consent to publish</th>
<th>Follow-ups / replies</th><th>Attachments</th><th>Notes</th><th>Answers</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""


def _answers(row: CaseRow) -> str:
    """Every structured answer, "other" texts included, with English labels and place names;
    the description and the other long texts are in the case's report.txt."""
    items = []
    for name, value in row.facts.get("answers", {}).items():
        if not value:
            continue
        spec = questionnaire.FIELDS_BY_NAME.get(name)
        if name in ("country", "state_responsible"):
            shown = place_name(value)
        elif spec is not None and spec.choices:
            shown = _labels(name, value.split(";"))
        else:
            shown = value
        items.append(f"<dt>{_e(spec.label if spec else name)}</dt><dd>{_e(shown)}</dd>")
    if not items:
        return "<td></td>"
    summary = f"{len(items)} answer{'s' if len(items) > 1 else ''}"
    return f"<td><details><summary>{summary}</summary><dl>{''.join(items)}</dl></details></td>"


def _index_row(
    row: CaseRow,
    subs: list[tuple[str, str, str]],
    files: list[FileRow],
    notes: list[tuple[str, str]],
) -> str:
    documents = []
    if not row.has_report:
        documents.append('<span class="none">report not opened yet</span>')
    for kind, day, folder in subs:
        text = "report" if kind == "report" else f"{kind} {day}"
        documents.append(_link(f"{folder}/{opening.REPORT_TXT}", text))
    status = _e(row.status)
    if row.assigned:
        status += f"<br>assigned to {_e(row.assigned)}"
    if row.paragraph:
        status += f"<br>paragraph {_e(row.paragraph)}"
    consent = _e(row.publish)
    if row.consent_to_confirm:
        consent += '<br><span class="flag">changed by a follow-up: to confirm</span>'
    latest = f"follow-up {_e(row.last_follow_up or '—')}<br>reply {_e(row.last_reply or '—')}"
    if row.awaiting:
        latest += '<br><span class="flag">awaiting a reply</span>'
    file_items = "".join(
        f"<li{' class=flag' if sniff.mismatch(f.claimed, f.found) else ''}>{_e(file_line(f))}</li>"
        for f in files
    )
    shown = notes[-NOTES_SHOWN:]
    note_items = "".join(f"<li>{_e(day)}: {_e(text)}</li>" for day, text in shown)
    if len(notes) > len(shown):
        note_items += f"<li>and {len(notes) - len(shown)} earlier (portal cases show)</li>"
    cells = [
        f"<td>{_e(row.id)}<ul>{''.join(f'<li>{d}</li>' for d in documents)}</ul></td>",
        f"<td>{status}</td>",
        f"<td>{'URGENT' if row.urgent else ''}</td>",
        f'<td class="day">{_e(row.first_day)}</td>',
        f"<td>{_e(f'{place_name(row.state)} ({row.state})' if row.state else '—')}</td>",
        f"<td>{_e(_labels('violations', row.facts.get('acts', [])))}</td>",
        f"<td>{consent}</td>",
        f"<td>{latest}</td>",
        f"<td><ul>{file_items}</ul></td>" if files else "<td>none</td>",
        f"<td><ul>{note_items}</ul></td>" if notes else "<td></td>",
        _answers(row),
    ]
    attribute = ' class="urgent"' if row.urgent else ""
    return f"<tr{attribute}>" + "".join(cells) + "</tr>"


def render_index(conn: sqlite3.Connection) -> str:
    """The register as one self-contained HTML page, in triage order."""
    subs, files, notes = all_submissions(conn), all_files(conn), all_notes(conn)
    rows = [
        _index_row(row, subs.get(row.id, []), files.get(row.id, []), notes.get(row.id, []))
        for row in case_rows(conn)
    ]
    return INDEX_PAGE.format(csp=CSP, count=len(rows), rows="\n".join(rows))


def render_csv(conn: sqlite3.Connection) -> str:
    """One row per case: the answers' summary, the counts and the team's own columns."""
    notes = all_notes(conn)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_COLUMNS)
    for row in sorted(case_rows(conn), key=lambda r: (r.first_day, r.id)):
        facts, answers = row.facts, row.facts.get("answers", {})
        cells = [
            row.id, row.first_day, facts.get("locale", ""), facts.get("sealed_by", ""),
            str(facts.get("follow_ups", 0)), str(facts.get("replies", 0)),
            str(facts.get("attachments", 0)), row.last_day, row.status, row.assigned,
            "yes" if row.awaiting else "no", row.state,
            row.publish, "to confirm" if row.consent_to_confirm else "",
            row.paragraph, " | ".join(f"{day}: {text}" for day, text in notes.get(row.id, [])),
        ]  # fmt: skip
        writer.writerow(
            [names.csv_cell(one_line(str(cell))) for cell in cells]
            + [csv_items(str(answers.get(name, ""))) for name in case_facts.SUMMARY_FIELDS]
            + [
                names.csv_cell(place_name(str(answers.get(name, ""))))
                for name in ("country", "state_responsible")
            ]
        )
    return buffer.getvalue()


def write_file(out: Path, name: str, text: str) -> None:
    """Write OUT/name durably and atomically, readable by us only."""
    durable.write_bytes(out / name, text.encode("utf-8"))


def write_views(conn: sqlite3.Connection, out: Path) -> None:
    """Regenerate OUT/index.html and OUT/cases.csv from the register."""
    write_file(out, "index.html", render_index(conn))
    write_file(out, "cases.csv", render_csv(conn))
