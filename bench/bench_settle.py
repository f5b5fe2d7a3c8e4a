"""Settling: the daily rewrite of a day's submissions into new inodes, timed.

Two stores on the machine's own disk: 1,000 submissions of a manifest and one 60 KB file (a
busy day of reports), and one submission of a 100 MiB file (the largest a report may carry).
Each is settled as `portal purge` does it, the next day; printed are the time, the pace in
MB/s, and the ratio to copying the same files with `shutil.copyfile` and one fsync each in the
same run (settling also reads each copy back before swapping it in). The peak of what Python
allocated while settling (tracemalloc) shows the copy holds a megabyte at a time whatever the
file's size.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from portal.formats import bundle
from portal.server import settling, storage

MB = 1000**2
MIB = 1024**2


def _fill(store: storage.BlobStore, count: int, size: int) -> int:
    """`count` submissions of today, each a manifest and one file of `size` random bytes."""
    noise = os.urandom(size)
    day = datetime.now(UTC).date()
    total = 0
    for _ in range(count):
        staging = store.stage()
        staging.write(bundle.STORED_MANIFEST, noise[:600])
        staging.write(bundle.stored_blob(0), noise)
        total += store.commit(staging, storage.new_id(), day)
    return total


def _plain_copy(store: storage.BlobStore, into: Path) -> float:
    """Seconds to copy every stored file into `into`, one fsync per file."""
    started = time.perf_counter()
    for submission_id in store.stored_ids():
        target = into / submission_id
        target.mkdir()
        for item in store.path(submission_id).iterdir():
            shutil.copyfile(item, target / item.name)
            with (target / item.name).open("rb") as handle:
                os.fsync(handle.fileno())
    return time.perf_counter() - started


def _case(name: str, count: int, size: int) -> None:
    with tempfile.TemporaryDirectory(dir="/var/tmp") as folder:
        store = storage.BlobStore(Path(folder) / "sealed")
        store.ensure()
        total = _fill(store, count, size)
        plain = Path(folder) / "plain"
        plain.mkdir()
        plain_seconds = _plain_copy(store, plain)
        shutil.rmtree(plain)
        tomorrow = time.time() + 86400
        tracemalloc.start()
        started = time.perf_counter()
        settled = settling.settle(store, now=tomorrow)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert settled == count, (settled, count)
        print(
            f"   {name}: {count} submission(s), {total / MB:.1f} MB settled in {seconds:.2f} s"
            f" ({total / MB / seconds:.0f} MB/s); plain copy {plain_seconds:.2f} s,"
            f" ratio {seconds / plain_seconds:.2f}; peak memory {peak / MIB:.1f} MiB"
        )


def run() -> None:
    """Print the figures of both stores."""
    _case("a busy day", 1000, 60 * 1000)
    _case("one large report", 1, 100 * MIB)
