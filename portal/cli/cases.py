"""`portal cases`: the team's register on the offline machine (list, show, set, note, report).

It works only on a folder that `portal decrypt --out` made: the register is never created or
written anywhere else, and every change regenerates that folder's index.html and cases.csv.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import click

from portal.offline import (
    case_facts,
    casetext,
    register,
    register_edit,
    register_report,
    register_session,
    register_view,
)
from portal.offline.register_query import DayError, Filters, day_bound, detail
from portal.offline.register_query import cases as case_rows
from portal.offline.register_view import one_line, printable


@contextlib.contextmanager
def _register(ctx: click.Context, change: bool) -> Iterator[sqlite3.Connection]:
    """The register of --dir (`register_session.opened`), its errors as the command's messages."""
    try:
        with register_session.opened(ctx.obj, change) as conn:
            yield conn
    except register.RegisterError as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.Error as exc:
        raise click.ClickException(f"The register cannot be used: {exc}.") from exc


def _day(value: str | None, last: bool) -> str | None:
    try:
        return day_bound(value, last)
    except DayError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.group()
@click.option(
    "--dir",
    "folder",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The folder `portal decrypt --out` wrote.",
)
@click.pass_context
def cases_command(ctx: click.Context, folder: Path) -> None:
    """The team's case register: triage, status, notes, and the annual report's tables."""
    ctx.obj = folder


@cases_command.command("list")
@click.option("--status", type=click.Choice(register.STATUSES))
@click.option("--urgent", is_flag=True, help="Only urgent cases.")
@click.option("--awaiting", is_flag=True, help="Only cases with a follow-up newer than the reply.")
@click.option("--country", help="Country (ISO code, or as written).")
@click.option("--state", help="State responsible (ISO code, or as written).")
@click.option("--act", help="Kind of act, as its form value (travel_ban, threats, ...).")
@click.option("--body", help="UN body, as its form value (treaty_bodies, ...).")
@click.option("--from", "received_from", help="Received on or after (YYYY-MM-DD or YYYY-MM).")
@click.option("--to", "received_to", help="Received on or before (YYYY-MM-DD or YYYY-MM).")
@click.pass_context
def list_command(
    ctx: click.Context,
    status: str | None,
    urgent: bool,
    awaiting: bool,
    country: str | None,
    state: str | None,
    act: str | None,
    body: str | None,
    received_from: str | None,
    received_to: str | None,
) -> None:
    """Cases, urgent first, then those with a follow-up awaiting a reply, newest first."""
    filters = Filters(
        status, urgent, awaiting, case_facts.place(country) if country else None,
        case_facts.place(state) if state else None, act, body,
        _day(received_from, last=False), _day(received_to, last=True),
    )  # fmt: skip
    with _register(ctx, change=False) as conn:
        rows = case_rows(conn, filters)
    click.echo(f"{'case':<18} {'status':<13} {'flags':<25} {'received':<10} {'State':<8} assigned")
    for row in rows:
        flags = ",".join(
            name
            for name, on in (
                ("URGENT", row.urgent),
                ("awaiting", row.awaiting),
                ("consent?", row.consent_to_confirm),
            )
            if on
        )
        click.echo(
            f"{one_line(row.id):<18} {row.status:<13} {flags:<25} {row.first_day:<10} "
            f"{one_line(row.state)[:8]:<8} {one_line(row.assigned)}"
        )
    click.echo(f"{len(rows)} case(s).", err=True)


@cases_command.command("show")
@click.argument("case")
@click.pass_context
def show_command(ctx: click.Context, case: str) -> None:
    """Everything about one case, in date order: answers, follow-ups, replies, notes, changes."""
    with _register(ctx, change=False) as conn:
        found = detail(conn, case)
    if found is None:
        raise click.ClickException(
            f"The register holds no case {case!r} (see `portal cases list`)."
        )
    row = found.case
    lines = [
        f"Case {one_line(row.id)}",
        f"  status: {row.status}   assigned to: {one_line(row.assigned) or '(nobody)'}"
        f"   annual report paragraph: {one_line(row.paragraph) or '(none)'}",
        f"  urgent: {'YES' if row.urgent else 'no'}   awaiting a reply: "
        f"{'yes' if row.awaiting else 'no'}   State responsible: {one_line(row.state) or '-'}",
        "  consent that applies: "
        + ", ".join(
            f"{case_facts.CONSENT_TITLES[name]}: {one_line(value)}"
            for name, value in row.consent.items()
        ),
    ]
    if row.consent_to_confirm:
        lines.append(
            "  CONSENT CHANGED by a follow-up: confirm with the submitter if you can, then "
            f"`portal cases set {row.id} --confirm-consent`"
        )
    lines.append("  consent history:")
    for sid, day, name, value, previous, ok in found.consent:
        change = "" if previous in (None, value) else f" (was {one_line(previous or '')})"
        mark = "" if ok else "  <- to confirm"
        lines.append(
            f"    {day}  {case_facts.CONSENT_TITLES[name]}: {one_line(value)}{change}"
            f"  [{sid}]{mark}"
        )
    events: list[tuple[str, int, str]] = []
    for sub in found.submissions:
        record = dict(sub.record)
        files = [f for f in found.files if f.submission == sub.id]
        text = casetext.render_report(record)
        if files:
            text += "Attachments, as their first bytes show (open only as the README says):\n"
            text += "".join(f"  {one_line(register_view.file_line(f))}\n" for f in files)
        events.append((sub.day, 0, text))
    events += [
        (day, 1, f"Note of the team, {day}:\n{printable(text)}\n") for day, text in found.notes
    ]
    events += [(day, 2, f"Change, {day}: {one_line(what)}\n") for day, what in found.changes]
    for _, _, text in sorted(events, key=lambda event: (event[0], event[1])):
        lines += ["", text.rstrip("\n")]
    click.echo("\n".join(lines))


@cases_command.command("set")
@click.argument("case")
@click.option("--status", type=click.Choice(register.STATUSES))
@click.option("--assign", help="Who on the team follows the case (empty to clear).")
@click.option("--paragraph", help="The annual report's paragraph reference (empty to clear).")
@click.option("--confirm-consent", is_flag=True, help="A consent change has been checked.")
@click.pass_context
def set_command(
    ctx: click.Context,
    case: str,
    status: str | None,
    assign: str | None,
    paragraph: str | None,
    confirm_consent: bool,
) -> None:
    """Change the team's fields of a case."""
    if status is None and assign is None and paragraph is None and not confirm_consent:
        raise click.UsageError("Give --status, --assign, --paragraph or --confirm-consent.")
    with _register(ctx, change=True) as conn:
        done = register_edit.update(conn, case, status, assign, paragraph, confirm_consent)
    click.echo(f"case {case}: " + ("; ".join(done) if done else "nothing changed"))


@cases_command.command("note")
@click.argument("case")
@click.argument("text")
@click.pass_context
def note_command(ctx: click.Context, case: str, text: str) -> None:
    """Add a dated note to a case."""
    with _register(ctx, change=True) as conn:
        register_edit.add_note(conn, case, text)
    click.echo(f"case {case}: note added")


@cases_command.command("report")
@click.option("--from", "start", required=True, help="First month of the period (YYYY-MM).")
@click.option("--to", "end", required=True, help="Last month of the period (YYYY-MM).")
@click.pass_context
def report_command(ctx: click.Context, start: str, end: str) -> None:
    """Print the annual report's tables and write them as CSV and HTML into the folder."""
    try:
        register_report.period(start, end)
    except register_report.PeriodError as exc:
        raise click.BadParameter(str(exc)) from exc
    with _register(ctx, change=False) as conn:
        report = register_report.build(conn, start, end)
        written = register_report.write(ctx.obj, report)
    click.echo(register_report.render_text(report), nl=False)
    click.echo(f"Written: {written[0]} and {written[1]}", err=True)
