"""An upload at Tor speed through `portal serve`: 50 MiB at about 200 KB/s (about four minutes).

The figure the server is built for: a report with a large attachment sent over a slow onion
circuit finishes, and the site keeps answering other people quickly meanwhile. Printed as
ratios measured in this run: the pace reached against the pace asked for, and the time a
page takes during the upload against the time it takes when the server is idle.
`PORTAL_BENCH_UPLOAD_MIB` and `PORTAL_BENCH_UPLOAD_KBPS` change the size and the pace.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import MINIMAL_REPORT, Served, deployment, paced_upload  # noqa: E402

SIZE = int(float(os.environ.get("PORTAL_BENCH_UPLOAD_MIB", "50")) * 1024 * 1024)
RATE = float(os.environ.get("PORTAL_BENCH_UPLOAD_KBPS", "200")) * 1000
REPORT = {
    **MINIMAL_REPORT,
    "description": "Benchmark: a report with one large attachment, sent at Tor speed.",
}


def page_seconds(served: Served, count: int) -> list[float]:
    """How long the landing page takes, `count` times."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        assert served.request("GET", "/en/").status == 200
        times.append(time.perf_counter() - started)
        time.sleep(0.5)
    return times


def run() -> None:
    """Upload once at the set pace and print what was measured."""
    with tempfile.TemporaryDirectory() as folder:
        env = deployment(Path(folder))
        with Served(Path(folder), env) as served:
            idle = statistics.median(page_seconds(served, 10))
            during: list[float] = []
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    during.extend(page_seconds(served, 1))

            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                upload = paced_upload(served, SIZE, RATE, REPORT)
            finally:
                done.set()
                sampler.join()
    print(
        f"   upload of {SIZE / 1024 / 1024:.0f} MiB asked at {RATE / 1000:.0f} KB/s: "
        f"status {upload.status}, {upload.seconds:.0f} s, {upload.rate / 1000:.0f} KB/s"
    )
    print(f"   pace reached / pace asked: {upload.rate / RATE:.2f}")
    print(
        f"   page time during the upload / idle: "
        f"{statistics.median(during) / idle:.2f} (median of {len(during)}; "
        f"idle {idle * 1000:.0f} ms)"
    )
    if upload.status != 200 or "receipt-number" not in upload.body:
        raise SystemExit("the upload did not end with a receipt")
