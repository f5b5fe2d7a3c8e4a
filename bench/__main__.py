"""Run every benchmark module (`bench/bench_*.py`) in name order, or those named.

Each module has `run() -> None`, which prints its figures; ratios are measured in the same run
on the same machine, so they carry over between machines better than absolute numbers.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run the benchmarks and print how long each took."""
    names = argv or sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    for name in names:
        module = importlib.import_module(f"bench.{name.removesuffix('.py')}")
        print(f"\n== {module.__doc__.splitlines()[0] if module.__doc__ else name}", flush=True)
        started = time.perf_counter()
        module.run()
        print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
