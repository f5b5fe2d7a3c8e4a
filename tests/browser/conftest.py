"""Fixtures of the real-browser tests: the public site served on loopback, and the browsers.

The site is a fresh deployment for each test (its own data folder, database and team key), so
that `portal export` after a journey holds that journey's submissions and nothing else. The
browsers are started once per module and security level, because a Firefox start costs
seconds: tests take one by indirect parametrisation (`@pytest.mark.parametrize("browser",
[...], indirect=True)`), and pytest runs every test of one level before starting the next.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from portal import SCRIPT, create_app
from portal.formats import crypto

from .harness import (
    REPOSITORY_ROOT,
    BodyRecorder,
    Chromium,
    Firefox,
    browser_unavailable,
    launch,
    serve_wsgi,
)

# The levels the tests name, and the harness's browser for each. Firefox ESR stands in for Tor
# Browser at its three levels. Chromium has no Safer level (no pref turns its JIT and
# WebAssembly off the way Tor Browser does), so it runs at Standard (scripts on) and at Safest
# (scripts off) only.
LEVEL_BROWSERS = {
    "firefox-standard": "firefox-standard",
    "firefox-safer": "firefox-safer",
    "firefox-safest": "firefox-safest",
    "chromium-standard": "chromium-js",
    "chromium-safest": "chromium-nojs",
}
SCRIPT_SOURCES = REPOSITORY_ROOT / "js"


def _bundle_is_current() -> bool:
    """Whether static/portal.js exists and is newer than every source it is built from."""
    if not SCRIPT.is_file():
        return False
    built = SCRIPT.stat().st_mtime
    sources = [*SCRIPT_SOURCES.glob("*.js"), REPOSITORY_ROOT / "package-lock.json"]
    return all(not source.is_file() or source.stat().st_mtime <= built for source in sources)


@pytest.fixture(scope="session")
def sealing_script() -> Path:
    """The sealing script, built from js/ when it is missing or older than its sources."""
    if _bundle_is_current():
        return SCRIPT
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(
            f"{SCRIPT} is not built and npm is not installed: apt-get install nodejs npm, "
            "then run `npm ci && npm run build` in the repository"
        )
    if not (REPOSITORY_ROOT / "node_modules" / ".bin" / "esbuild").exists():
        _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"])
    _run([npm, "run", "--silent", "build"])
    assert SCRIPT.is_file(), f"npm run build made no {SCRIPT}"
    return SCRIPT


def _run(command: list[str]) -> None:
    """Run an npm command in the repository; a failure fails the test with npm's words."""
    result = subprocess.run(
        command, cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


@dataclass(frozen=True)
class LiveSite:
    """The public site served on loopback, with every request body it received."""

    url: str
    app: Flask
    recorder: BodyRecorder
    env: dict[str, str]


@pytest.fixture
def live_site(initialised: dict[str, str], sealing_script: Path) -> Iterator[LiveSite]:
    """The test deployment's public site on 127.0.0.1, recording every raw request body."""
    env = {**initialised, "PORTAL_DEMO": "1"}
    # Made after the script is built: the page's integrity hash is read when the app is made.
    app = create_app("public", env)
    # A journey sends a report and a follow-up a minute; the limits are tested elsewhere.
    app.config.update(RATELIMIT_ENABLED=False)
    assert app.jinja_env.globals["script_sri"], "the app did not see the sealing script"
    try:
        with BodyRecorder(app) as recorder, serve_wsgi(recorder) as url:
            yield LiveSite(url, app, recorder, env)
    finally:
        app.extensions["portal"].engine.dispose()


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Iterator[Firefox | Chromium]:
    """One browser at one security level (named as in LEVEL_BROWSERS) for a whole module."""
    level: str = request.param
    spec = LEVEL_BROWSERS[level]
    reason = browser_unavailable(spec)
    if reason:
        pytest.skip(reason)
    with launch(spec) as started:
        yield started


# --- One deployment for a whole module -------------------------------------------------------
# Tests that only look at pages (accessibility, layout, screenshots) share one deployment per
# module: a fresh one per test would cost a `portal init` each, hundreds of times over.


def make_deployment(folder: Path, **settings: str) -> dict[str, str]:
    """A fresh deployment in folder after `portal init` (SQLite, cheap receipts): its PORTAL_*
    environment, with settings (`PORTAL_*` names) added."""
    folder.mkdir(parents=True, exist_ok=True)
    _secret, public = crypto.generate_keypair()
    key_path = folder / "team.pub"
    key_path.write_text(crypto.format_public_key_file(public, date.today()))
    env = {
        "PORTAL_DATA_DIR": str(folder / "data"),
        "PORTAL_TEAM_PUBLIC_KEY": str(key_path),
        "PORTAL_RECEIPT_COST": "min",
        "PORTAL_HOSTNAMES": "localhost,127.0.0.1",
        "PORTAL_DEMO": "1",
        **settings,
    }
    from portal.cli import main

    result = CliRunner().invoke(main, ["init"], env=env)
    assert result.exit_code == 0, result.output
    return env


@contextlib.contextmanager
def serving(site: str, env: Mapping[str, str], *, rate_limits: bool = False) -> Iterator[LiveSite]:
    """Serve the deployment's public or staff site on 127.0.0.1 (rate limits off unless asked)."""
    app = create_app(site, dict(env))
    app.config.update(RATELIMIT_ENABLED=rate_limits)
    try:
        with BodyRecorder(app) as recorder, serve_wsgi(recorder) as url:
            yield LiveSite(url, app, recorder, dict(env))
    finally:
        app.extensions["portal"].engine.dispose()


@pytest.fixture(scope="module")
def module_deployment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One deployment shared by the tests of a module."""
    return make_deployment(tmp_path_factory.mktemp("deployment"))


@pytest.fixture(scope="module")
def module_site(module_deployment: dict[str, str], sealing_script: Path) -> Iterator[LiveSite]:
    """The module's deployment's public site on 127.0.0.1, for every test of the module."""
    with serving("public", module_deployment) as site:
        yield site
