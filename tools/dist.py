"""Build the wheel and a wheelhouse for installing without a network (`make dist`).

    python tools/dist.py --out dist

writes `dist/reprisals_portal-VERSION-py3-none-any.whl` and `dist/wheelhouse/` holding that
wheel and every wheel both install profiles need (for this machine's platform and Python),
`requirements-offline.txt` and `requirements-server.txt` pinning each file by its SHA-256 for
`pip install --require-hashes`, and `SHA256SUMS` over everything in the folder. The sealing
script and the compiled catalogues must be built first (`make dist` does that): a wheel
without them would give a site that cannot serve its pages.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "reprisals-portal"
PROFILES = {"offline": PROJECT, "server": f"{PROJECT}[server]"}
NEEDED = [
    ROOT / "portal" / "static" / "portal.js",
    ROOT / "portal" / "static" / "sealer.js",
    *(
        ROOT / "portal" / "translations" / code / "LC_MESSAGES" / "messages.mo"
        for code in ("ar", "en", "es", "fr", "ru", "zh")
    ),
]
# name-version-... of a wheel file (PEP 427); names in wheel files use underscores.
WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def sha256(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def pip(*args: str) -> None:
    """Run this Python's pip quietly; its own words on failure."""
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


def build_wheel(out: Path) -> Path:
    """Build the project's wheel into `out` from a clean copy of the tracked tree."""
    missing = [str(path.relative_to(ROOT)) for path in NEEDED if not path.is_file()]
    if missing:
        sys.exit(f"Build these first (make dist does): {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="portal-build-") as scratch:
        # A copy without build/ or egg-info leftovers, so nothing stale enters the wheel.
        source = Path(scratch) / "source"
        shutil.copytree(
            ROOT,
            source,
            ignore=shutil.ignore_patterns(
                ".git",
                ".venv",
                "node_modules",
                "build",
                "dist",
                "instance",
                "*.egg-info",
                "__pycache__",
                ".*_cache",
                "test-artifacts",
                "bench-output",
            ),
        )
        pip("wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(source))
    wheels = sorted(out.glob("reprisals_portal-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"Expected one wheel in {out}, found {len(wheels)}.")
    return wheels[0]


def requirement(path: Path, extra: str = "") -> str:
    """One hash-pinned requirement line for a wheel file."""
    match = WHEEL_NAME.match(path.name)
    if match is None:
        sys.exit(f"Not a wheel file name: {path.name}")
    name = match["name"].replace("_", "-").lower()
    return f"{name}{extra}=={match['version']} --hash=sha256:{sha256(path)}"


def wheelhouse(wheel: Path, house: Path) -> None:
    """Fill `house` with the wheel and every dependency wheel of both profiles, with hashes."""
    house.mkdir(parents=True, exist_ok=True)
    for profile, spec in PROFILES.items():
        with tempfile.TemporaryDirectory(prefix=f"portal-{profile}-") as scratch:
            # Binary wheels only: the offline machine has no compiler and must build nothing.
            target = spec.replace(PROJECT, str(wheel))
            pip("download", "--quiet", "--only-binary=:all:", "--dest", scratch, target)
            files = sorted(Path(scratch).glob("*.whl"))
            lines = [
                requirement(
                    path, "[server]" if profile == "server" and path.name == wheel.name else ""
                )
                for path in files
            ]
            for path in files:
                shutil.copy2(path, house / path.name)
        (house / f"requirements-{profile}.txt").write_text(
            "# pip install --no-index --find-links WHEELHOUSE --require-hashes "
            f"-r requirements-{profile}.txt\n" + "\n".join(lines) + "\n",
            encoding="utf-8",
        )
    sums = [
        f"{sha256(path)}  {path.name}"
        for path in sorted(house.iterdir())
        if path.is_file() and path.name != "SHA256SUMS"
    ]
    (house / "SHA256SUMS").write_text("\n".join(sums) + "\n", encoding="utf-8")


def main() -> None:
    """Build dist/: the wheel and the wheelhouse."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    args = parser.parse_args()
    out: Path = args.out.resolve()
    for old in out.glob("reprisals_portal-*.whl"):
        old.unlink()
    shutil.rmtree(out / "wheelhouse", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(out)
    wheelhouse(wheel, out / "wheelhouse")
    house = out / "wheelhouse"
    print(f"{wheel.relative_to(out.parent) if out.parent in wheel.parents else wheel}")
    print(f"{house}: {len(list(house.glob('*.whl')))} wheels, SHA256SUMS, requirements files")


if __name__ == "__main__":
    main()
