"""What `portal seal` reads and writes besides the cases: the site's key file, the output folder.

The site's key file may publish its receipt salt and cost (`receipts.read_published`); then a
relay makes each case's receipt on its own computer. A list of cases is sealed into an output
folder as `case-001.sealed`, `case-002.sealed`, ..., and their receipts go into `receipts.txt`
beside them, readable by its owner only: never into a sealed file, never sent anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from portal.formats import receipts
from portal.offline.relay import SealError

RECEIPTS_FILE = "receipts.txt"
RECEIPTS_HEADER = (
    "# Receipts of the sealed cases in this folder: each opens its case's follow-up page\n"
    "# and the team's replies. As sensitive as the cases: keep this file as safe as they\n"
    "# are, never upload it, and give each receipt only to whoever follows that case.\n"
)


def receipt_site(to_key: Path) -> receipts.Published | None:
    """The receipt salt and cost the key file publishes, if it does."""
    try:
        return receipts.read_published(to_key.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SealError(f"{to_key} cannot be read: {exc}.") from exc
    except receipts.ReceiptError as exc:
        raise SealError(f"{exc} Download team.pub again from the site's key page.") from exc


def _taken(path: Path) -> SealError:
    return SealError(f"{path} already exists; choose an empty folder (nothing was overwritten).")


def folder_targets(out_dir: Path, count: int, with_receipts: bool) -> list[Path]:
    """The sealed files of `count` cases in `out_dir`, which is made if missing; SealError if
    one of them (or receipts.txt, when receipts are made) is there already."""
    width = max(3, len(str(count)))
    targets = [out_dir / f"case-{n:0{width}d}.sealed" for n in range(1, count + 1)]
    taken = [path for path in targets if path.exists()]
    if taken:
        raise _taken(taken[0])
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SealError(f"{out_dir} cannot be made: {exc.strerror or exc}.") from exc
    if with_receipts and (out_dir / RECEIPTS_FILE).exists():
        raise _taken(out_dir / RECEIPTS_FILE)
    return targets


def open_receipts(folder: Path) -> IO[str]:
    """receipts.txt in the output folder, new, readable by its owner only."""
    path = folder / RECEIPTS_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise _taken(path) from None
    handle = os.fdopen(fd, "w", encoding="utf-8")
    handle.write(RECEIPTS_HEADER)
    return handle


def add_receipt(book: IO[str], target: Path, receipt: str) -> None:
    """One sealed file's line in receipts.txt, on the disk before the next case is sealed."""
    book.write(f"{target.name}  {receipt}\n")
    book.flush()
    os.fsync(book.fileno())
