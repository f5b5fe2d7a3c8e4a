"""One run's use of a folder's register, from start to end: `portal decrypt` and `portal cases`.

A run that changes the register holds the folder's lock for all of its work (`register.locked`)
and rewrites index.html and cases.csv once its changes are in, so that the views and the case
folders never drift apart from the register.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from portal.formats import bundle
from portal.offline import opening, register, register_view
from portal.offline.writer import Progress

# Given the bytes a run will decrypt, a context that yields the callback counting them (or None).
ProgressBar = Callable[[int], AbstractContextManager[Progress | None]]


@contextlib.contextmanager
def opened(out: Path, change: bool) -> Iterator[sqlite3.Connection]:
    """The register of `out`; for a change, under the folder's lock, then the views rewritten."""
    with contextlib.ExitStack() as stack:
        if change:
            stack.enter_context(register.locked(out))
        conn = register.connect(out)
        stack.callback(conn.close)
        yield conn
        if change:
            register_view.write_views(conn, out)


def plaintext_bytes(path: Path) -> int:
    """The plaintext bytes a bundle holds, roughly, for a progress bar; 0 if unreadable."""
    try:
        with bundle.Reader(path) as reader:
            return sum(
                reader.size(bundle.blob_name(entry.id, i))
                for entry in reader.entries
                for i in range(entry.files)
            )
    except Exception:
        # Only the progress bar needs it: opening the bundle reports what is wrong with it.
        return 0


def open_bundles(
    secret_key: bytes,
    out: Path,
    force: bool,
    bundles: tuple[Path, ...],
    wait: float,
    bar: ProgressBar,
    report: Callable[[opening.Outcome], None],
) -> tuple[list[opening.Outcome], list[str]]:
    """Under the folder's lock, open each bundle (`report` hears of each submission), add what
    it opened to the register in one transaction, then the views; the outcomes and problems."""
    with register.locked(out, wait):
        conn = register.connect(out, create=True)
        try:
            outcomes: list[opening.Outcome] = []
            problems: list[str] = []
            total = sum(plaintext_bytes(path) for path in bundles)
            with bar(total) as advance:
                for path in bundles:
                    added = []
                    for outcome in opening.open_bundle(path, secret_key, out, force, advance):
                        outcomes.append(outcome)
                        report(outcome)
                        if outcome.status == opening.OPENED and outcome.path is not None:
                            added.append(outcome.path.parent.relative_to(out.resolve()).as_posix())
                    # The whole bundle enters the register, or none of it does.
                    problems += register.add_folders(conn, out, added)
            # Folders the register lacks (a run stopped between opening and registering, or
            # written by hand) are caught up, so the register always covers every case folder.
            problems += register.add_folders(conn, out, register.unregistered_folders(conn, out))
            try:
                register_view.write_views(conn, out)
            except OSError as exc:
                problems.append(f"index.html and cases.csv could not be written: {exc}")
            return outcomes, problems
        finally:
            conn.close()
