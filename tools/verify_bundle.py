"""Rebuild the browser code from the tracked source and compare it byte for byte.

`make verify-bundle` copies the files git tracks into a temporary folder, installs the pinned
npm packages there (`npm ci`, from package-lock.json), builds `portal.js` and `sealer.js`,
compiles the catalogues and makes `sealer.html` for a key, then compares each with the
checkout's own build, or with what a running site serves (`--url`). It prints the SHA-256 of
each file, so that anyone can compare them with the hashes the key page shows.

    python tools/verify_bundle.py [--key keys/team.pub] [--url http://127.0.0.1:8080]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILT = ("portal/static/portal.js", "portal/static/sealer.js")
# The `portal` command of the copy, run by this Python with the copy first on its path.
PORTAL = "import sys; from portal.cli import main; sys.argv[0] = 'portal'; main()"


def sha256(data: bytes) -> str:
    """The SHA-256 of some bytes, in hex."""
    return hashlib.sha256(data).hexdigest()


def tracked_copy(source: Path, target: Path) -> None:
    """Copy the files git tracks in `source` (as they are in the working tree) to `target`."""
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=source, check=True, capture_output=True
    ).stdout
    for name in filter(None, listing.decode("utf-8").split("\0")):
        origin = source / name
        if not origin.is_file():
            continue  # deleted in the working tree
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, destination)


def rebuild(folder: Path, key: Path | None) -> dict[str, bytes]:
    """Build the browser code (and sealer.html for `key`) from a tracked copy made in `folder`."""
    tracked_copy(ROOT, folder)
    quiet = {"capture_output": True, "check": True, "cwd": folder}
    try:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], **quiet)
        subprocess.run(["npm", "run", "--silent", "build"], **quiet)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"{' '.join(exc.cmd)} failed in {folder}:\n{exc.stderr.decode(errors='replace')}")
    outputs = {name: (folder / name).read_bytes() for name in BUILT}
    if key is not None:
        python = Path(sys.executable)
        subprocess.run(
            [str(python.parent / "pybabel"), "compile", "-d", "portal/translations"], **quiet
        )
        out = folder / "sealer.html"
        env = {**os.environ, "PYTHONPATH": str(folder)}
        subprocess.run(
            [str(python), "-c", PORTAL, "sealer", "--to", str(key), "--out", str(out)],
            env=env,
            **quiet,
        )
        outputs["sealer.html"] = out.read_bytes()
    return outputs


def current(key: Path | None, url: str | None) -> dict[str, bytes]:
    """What to compare with: the checkout's build, or what the site at `url` serves."""
    if url is not None:
        base = url.rstrip("/")
        served = {"portal/static/portal.js": _fetch(f"{base}/static/portal.js")}
        served["sealer.html"] = _fetch(f"{base}/en/key/sealer.html")
        return served
    found = {name: (ROOT / name).read_bytes() for name in BUILT if (ROOT / name).is_file()}
    if key is not None:
        sys.path.insert(0, str(ROOT))
        from portal import crypto, sealer

        found["sealer.html"] = sealer.build(crypto.load_public_key(key))
    return found


def _fetch(address: str) -> bytes:
    with urllib.request.urlopen(address, timeout=60) as response:  # noqa: S310 (an operator's URL)
        data: bytes = response.read()
    return data


def main() -> int:
    """Rebuild, compare, print each file's SHA-256; exit 1 when any file differs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", type=Path, help="the team's public key file, to make sealer.html")
    parser.add_argument("--url", help="compare with what this site serves instead of static/")
    args = parser.parse_args()
    key = args.key.resolve() if args.key else None
    if args.url and key is None:
        with tempfile.NamedTemporaryFile(suffix=".pub", delete=False) as handle:
            handle.write(_fetch(f"{args.url.rstrip('/')}/en/key/team.pub"))
        key = Path(handle.name)
    with tempfile.TemporaryDirectory(prefix="portal-verify-") as scratch:
        rebuilt = rebuild(Path(scratch), key)
    here = current(key, args.url)
    differ = 0
    for name, data in rebuilt.items():
        theirs = here.get(name)
        verdict = "identical" if theirs == data else "DIFFERENT" if theirs else "missing here"
        differ += theirs != data
        print(f"{sha256(data)}  {name}  (rebuilt; {verdict})")
        if theirs is not None and theirs != data:
            print(f"{sha256(theirs)}  {name}  (compared)")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
