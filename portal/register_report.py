"""The annual report's tables from the register: cases and people within a reporting period.

A case belongs to the period when its report was received in it. Only cases whose consent that
applies allows publication (named or anonymised) are counted in the tables by State, act, UN
body and gender, and listed; the table by consent to publish counts every case of the period, so
the team sees how many were left out and why.
"""

from __future__ import annotations

import csv
import html
import io
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from portal import case_facts, cases
from portal.register_query import CaseRow
from portal.register_query import cases as case_rows
from portal.register_view import CSP, one_line, write_file

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
PUBLISHABLE = ("named", "anonymised")


class PeriodError(ValueError):
    """A reporting period that is not two months in order."""


@dataclass
class Table:
    """One table: rows of (value, label, cases, people), largest first."""

    key: str
    title: str
    rows: list[tuple[str, str, int, int]] = field(default_factory=list)


@dataclass
class Report:
    """The annual report's tables for one period."""

    start: str
    end: str
    tables: list[Table]
    listed: dict[str, list[CaseRow]]
    to_confirm: list[str]

    @property
    def stem(self) -> str:
        """The name the report's files share."""
        return f"annual-report-{self.start}-to-{self.end}"


def period(start: str, end: str) -> tuple[str, str]:
    """The first and last day of a period given as two months, YYYY-MM."""
    for month in (start, end):
        if not MONTH.match(month):
            raise PeriodError(f"{month!r} is not a month written YYYY-MM.")
    if start > end:
        raise PeriodError(f"The period starts ({start}) after it ends ({end}).")
    # Days compare as text, and no month has a day after the 31st.
    return f"{start}-01", f"{end}-31"


def _table(key: str, title: str, counts: Counter[str], people: Counter[str]) -> Table:
    rows = [
        (value, case_facts.label(key, value) if key else value, counts[value], people[value])
        for value in counts
    ]
    rows.sort(key=lambda row: (-row[2], row[1]))
    return Table(key, title, rows)


def build(conn: sqlite3.Connection, start: str, end: str) -> Report:
    """Count the period's cases as the annual report needs them."""
    first, last = period(start, end)
    rows = [row for row in case_rows(conn) if row.has_report and first <= row.first_day <= last]
    consent_cases: Counter[str] = Counter()
    consent_people: Counter[str] = Counter()
    groups: dict[str, tuple[Counter[str], Counter[str]]] = {
        name: (Counter(), Counter()) for name in ("state", "act", "body", "gender")
    }
    listed: dict[str, list[CaseRow]] = {name: [] for name in PUBLISHABLE}
    for row in sorted(rows, key=lambda r: (r.first_day, r.id)):
        people = int(row.facts.get("people") or 1)
        consent_cases[row.publish] += 1
        consent_people[row.publish] += people
        if row.publish not in PUBLISHABLE:
            continue
        listed[row.publish].append(row)
        values = {
            "state": [row.state or "not stated"],
            "act": row.facts.get("acts") or ["not stated"],
            "body": row.facts.get("bodies") or ["not stated"],
        }
        for name, items in values.items():
            for item in dict.fromkeys(items):
                groups[name][0][item] += 1
                groups[name][1][item] += people
        facts = case_facts.Facts(
            gender=str(row.facts.get("gender", "")),
            people=people,
            women=row.facts.get("women"),
        )
        for gender, count in case_facts.gender_counts(facts).items():
            groups["gender"][0][gender] += 1
            groups["gender"][1][gender] += count
    consent = Table("", "By consent to publish (every case of the period)")
    consent.rows = [
        (name, name, consent_cases[name], consent_people[name]) for name in case_facts.PUBLISH_ORDER
    ]
    tables = [
        _table("", "By State responsible", *groups["state"]),
        _table("violations", "By kind of act", *groups["act"]),
        _table("un_bodies", "By UN body engaged", *groups["body"]),
        _table("", "By gender (people)", *groups["gender"]),
        consent,
    ]
    to_confirm = [row.id for row in rows if row.consent_to_confirm]
    return Report(start, end, tables, listed, to_confirm)


def render_text(report: Report) -> str:
    """The tables for the terminal."""
    lines = [f"Annual report tables, cases received {report.start} to {report.end}", ""]
    lines.append("Counted: only cases whose consent allows publication (named or anonymised).")
    for table in report.tables:
        lines += ["", table.title, f"  {'cases':>6} {'people':>7}  value"]
        for value, label, count, people in table.rows:
            shown = label if label == value else f"{label} [{value}]"
            lines.append(f"  {count:>6} {people:>7}  {one_line(shown)}")
        if not table.rows:
            lines.append("  (none)")
    for name, rows in report.listed.items():
        lines += ["", f"Cases that may appear {name} ({len(rows)})"]
        lines += [f"  {row.id}  {one_line(row.state)}  {one_line(row.paragraph)}" for row in rows]
    if report.to_confirm:
        lines += [
            "",
            "WARNING: a follow-up changed the consent of these cases and nobody has confirmed it "
            "yet (portal cases set CASE --confirm-consent): " + ", ".join(report.to_confirm),
        ]
    return "\n".join(lines) + "\n"


def render_csv(report: Report) -> str:
    """Every table as rows of table, value, label, cases, people; then the cases listed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(("table", "value", "label", "cases", "people"))
    for table in report.tables:
        for value, label, count, people in table.rows:
            writer.writerow(
                [cases.csv_cell(one_line(text)) for text in (table.title, value, label)]
                + [count, people]
            )
    for name, rows in report.listed.items():
        for row in rows:
            cells = (f"may appear {name}", row.id, row.state)
            writer.writerow(
                [cases.csv_cell(one_line(text)) for text in cells]
                + [1, int(row.facts.get("people") or 1)]
            )
    return buffer.getvalue()


def _e(text: object) -> str:
    return html.escape(one_line(str(text)))


def render_html(report: Report) -> str:
    """A readable page of the tables: strict CSP, no script, everything escaped."""
    parts = [
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        f'<meta name="referrer" content="no-referrer">\n'
        f"<title>Annual report tables {_e(report.start)} to {_e(report.end)}</title>\n"
        "<style>body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5rem; } "
        "table { border-collapse: collapse; margin-block-end: 1.5rem; } "
        "th, td { border: 1px solid #bbb; padding: .3rem .5rem; text-align: start; } "
        "td.n { text-align: end; } .flag { color: #a00; font-weight: bold; }</style>\n"
        "</head>\n<body>\n",
        f"<h1>Annual report tables: cases received {_e(report.start)} to {_e(report.end)}</h1>",
        "<p>Counted: only cases whose consent that applies allows publication (named or "
        "anonymised). The last table counts every case of the period.</p>",
    ]
    if report.to_confirm:
        parts.append(
            '<p class="flag">A follow-up changed the consent of these cases and nobody has '
            f"confirmed it yet: {_e(', '.join(report.to_confirm))}</p>"
        )
    for table in report.tables:
        parts.append(f"<h2>{_e(table.title)}</h2><table><thead><tr><th>Value</th>"
                     "<th>Cases</th><th>People</th></tr></thead><tbody>")  # fmt: skip
        for value, label, count, people in table.rows:
            shown = label if label == value else f"{label} [{value}]"
            parts.append(
                f'<tr><td>{_e(shown)}</td><td class="n">{count}</td>'
                f'<td class="n">{people}</td></tr>'
            )
        parts.append("</tbody></table>")
    for name, rows in report.listed.items():
        parts.append(f"<h2>Cases that may appear {_e(name)} ({len(rows)})</h2><ul>")
        parts += [
            f"<li>{_e(row.id)} — {_e(row.state or 'State not stated')}"
            + (f" — paragraph {_e(row.paragraph)}" if row.paragraph else "")
            + "</li>"
            for row in rows
        ]
        parts.append("</ul>")
    parts.append("</body>\n</html>\n")
    return "\n".join(parts)


def write(out: Path, report: Report) -> tuple[Path, Path]:
    """Write the report's CSV and HTML into the output folder; return their paths."""
    csv_path, html_path = out / f"{report.stem}.csv", out / f"{report.stem}.html"
    write_file(out, csv_path.name, render_csv(report))
    write_file(out, html_path.name, render_html(report))
    return csv_path, html_path
