"""`portal seal`: a relaying organisation seals cases on its own computer, with no network.

With a key file from the site (which publishes its receipt salt and cost), each case gets its
receipt here: shown once (one case) or written to `receipts.txt` beside the sealed files (a
list of cases), never put in the sealed file or sent anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from portal.cli.keys import EXISTING_FILE, NEW_FILE
from portal.formats import crypto, receipts
from portal.offline import relay, relay_files


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[relay.Progress | None]:
    """A byte-counting progress bar on stderr, shown only on a terminal (else no callback)."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda advance: bar.advance(task, advance)


def _read_cases(
    json_path: Path | None,
    csv_path: Path | None,
    fields: tuple[str, ...],
    files: tuple[Path, ...],
    locale: str,
) -> tuple[list[relay.Case], bool]:
    """The cases the options describe, all checked, and whether they came as a list."""
    given = [json_path is not None, csv_path is not None, bool(fields)]
    if sum(given) != 1:
        raise click.UsageError("Give the case with exactly one of --json, --csv or --field.")
    if csv_path is not None:
        if files:
            raise click.UsageError("With --csv, attachments go in the CSV's attachments column.")
        return relay.load_csv(csv_path, locale), True
    if json_path is not None:
        cases, many = relay.load_json(json_path, locale)
        if many and files:
            raise click.UsageError("With a list of cases, attachments go in each case's files.")
        if files:
            case = cases[0]
            cases = [relay.make_case(case.fields, case.files + files, case.locale, case.where)]
        return cases, many
    raw = relay.parse_field_options(fields)
    return [relay.make_case(raw, files, locale, "--field")], False


KEEP_SAFE = (
    "Keep it safe: it opens the case's follow-up page and the team's replies; it was never "
    "sent anywhere, and the site cannot give it again."
)
NO_RECEIPT_LINES = (
    "This key file does not publish the site's receipt salt and cost, so the site will make "
    "each case's receipt when its file is uploaded (with team.pub from the site's key page, "
    "receipts are made here and each case's reply key is sealed inside it)."
)


@click.command()
@click.option(
    "--to",
    "to_key",
    required=True,
    type=EXISTING_FILE,
    help="The team's public key file (team.pub).",
)
@click.option("--out", type=NEW_FILE, help="The sealed case file to write (one case).")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder for case-001.sealed, ... (a list of cases).",
)
@click.option(
    "--json",
    "json_path",
    type=EXISTING_FILE,
    help="A case as JSON, or a list of cases: {fields, files, locale}.",
)
@click.option(
    "--csv",
    "csv_path",
    type=EXISTING_FILE,
    help="Cases as CSV: a row per case, a column per field, ';' between values.",
)
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="NAME=VALUE",
    help="One answer; repeat for each field and for each choice of a checkbox field.",
)
@click.option(
    "--locale", default="en", show_default=True, help="The language the case is written in."
)
@click.argument("files", nargs=-1, type=EXISTING_FILE)
def seal(
    to_key: Path,
    out: Path | None,
    out_dir: Path | None,
    json_path: Path | None,
    csv_path: Path | None,
    fields: tuple[str, ...],
    locale: str,
    files: tuple[Path, ...],
) -> None:
    """Seal cases offline to the team's public key, as files to upload on the portal."""
    try:
        public_key = crypto.load_public_key(to_key)
        site = relay_files.receipt_site(to_key)
        cases, many = _read_cases(json_path, csv_path, fields, files, locale)
        if many and (out is not None or out_dir is None):
            raise click.UsageError(f"{len(cases)} cases: give --out-dir for their sealed files.")
        if not many and (out is None or out_dir is not None):
            raise click.UsageError("One case: give --out for its sealed file.")
        if out_dir is not None:
            targets = relay_files.folder_targets(out_dir, len(cases), site is not None)
        else:
            assert out is not None
            targets = [out]
    except (crypto.CryptoError, relay.SealError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Sealing to the team key {crypto.fingerprint(public_key)}: check that this is the "
        "fingerprint the team gave you.",
        err=True,
    )
    if site is None:
        click.echo(NO_RECEIPT_LINES, err=True)
    book: IO[str] | None = None
    if site is not None and out_dir is not None:
        try:
            book = relay_files.open_receipts(out_dir)
        except relay.SealError as exc:
            raise click.ClickException(str(exc)) from exc
    total = sum(case.total_bytes() for case in cases)
    sealed = 0
    try:
        with progress_bar(f"Sealing {len(cases)} case(s)", total) as advance:
            for case, target in zip(cases, targets, strict=True):
                receipt, derived = receipts.for_relay(site) if site else (None, None)
                relay.seal_case(case, public_key, target, advance, derived)
                sealed += 1
                click.echo(f"{target}  ({case.where}, {len(case.files)} attachment(s))")
                if book is not None:
                    assert receipt is not None
                    relay_files.add_receipt(book, target, receipt)
                elif receipt is not None:
                    click.echo(f"Receipt of this case: {receipt}")
                    click.echo(KEEP_SAFE, err=True)
    except (relay.SealError, crypto.CryptoError, OSError) as exc:
        done = f" The {sealed} case(s) listed above are sealed." if sealed else ""
        raise click.ClickException(f"Sealing stopped: {exc}{done}") from exc
    finally:
        if book is not None:
            book.close()
    if book is not None and out_dir is not None:
        click.echo(
            f"Receipts: {out_dir / relay_files.RECEIPTS_FILE}, one per sealed file. {KEEP_SAFE} "
            "That file is as sensitive as the cases: keep it as safe as they are and never "
            "upload it.",
            err=True,
        )
    click.echo(
        f"Sealed {len(cases)} case(s). Upload each file on the portal's report form.", err=True
    )
