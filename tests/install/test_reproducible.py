"""Reproducible browser code: two builds from the same tree and lockfile give the same bytes.

Each build runs in its own fresh folder (a copy of the tracked files, `npm ci`, `npm run
build`, the catalogues compiled, `portal sealer` for one key), as `make verify-bundle` does. The
folders have different names, so an absolute path in the output would also tell them apart.
"""

from __future__ import annotations

import importlib.util
import shutil
from datetime import date
from pathlib import Path

import pytest

from portal.formats import crypto

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("verify_bundle", ROOT / "tools" / "verify_bundle.py")
assert spec is not None
assert spec.loader is not None
verify_bundle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(verify_bundle)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("npm") is None or shutil.which("git") is None, reason="needs npm and git"
    ),
]


def test_two_builds_in_two_fresh_folders_are_identical(tmp_path: Path) -> None:
    key = tmp_path / "team.pub"
    key.write_text(crypto.format_public_key_file(bytes(range(32)), date(2026, 1, 1)))
    first = verify_bundle.rebuild(tmp_path / "one", key)
    second = verify_bundle.rebuild(tmp_path / "another-folder", key)
    assert set(first) == {"portal/static/portal.js", "portal/static/sealer.js", "sealer.html"}
    for name, data in first.items():
        assert data, name
        assert second[name] == data, f"{name} differs between two builds"
        # No path of the machine that built it, and no build time, is in the output.
        for folder in (tmp_path, Path.home()):
            assert str(folder).encode() not in data, name
        assert b"node_modules" not in data, name
    today = date.today().isoformat().encode()
    assert today not in first["sealer.html"]
