"""Real-browser test harness: Firefox ESR at Tor Browser's security levels, Chromium, and helpers.

Firefox ESR stands in for Tor Browser. It is driven through Marionette (the ``marionette_driver``
package, no geckodriver) with a fresh profile whose ``user.js`` holds the prefs of one security
level, taken from Tor Browser's ``SecurityLevel.sys.mjs``:

* **standard**: nothing extra.
* **safer**: no JIT (``javascript.options.ion``, ``baselinejit``, ``native_regexp``), no asm.js or
  WebAssembly, no MathML, no Graphite or OpenType-SVG fonts. Tor Browser's NoScript also makes
  WebGL click-to-play here; ``webgl.disabled`` is the nearest Firefox pref. NoScript allows
  scripts at Safer only on HTTPS and ``.onion`` sites: the harness models the ``.onion`` case
  (scripts run on the plain-http loopback test servers), and does not model media click-to-play.
* **safest**: the Safer prefs plus ``svg.disabled``, and what NoScript does there: no scripts
  (``javascript.enabled`` false) and no downloadable fonts (``gfx.downloadable_fonts.enabled``).

Every level also gets what Tor Browser has at all levels and that changes what a page sees
(fingerprinting resistance, permanent private browsing, English ``Accept-Language``, ``.onion``
as a secure context), and prefs that keep Firefox quiet and offline. An optional SOCKS5 proxy
sends every request, loopback included, through a (private) Tor network's client.

What works at Safest: everything in :class:`Firefox`. Its element commands are Marionette
commands, and :meth:`Firefox.execute` runs in Marionette's sandbox, which keeps running with
``javascript.enabled`` false (it sees the DOM through Xray wrappers, never the page's own
script objects). So ``execute`` proves nothing about page scripts; check an effect they leave.

Chromium runs through Playwright's sync API with the distribution's binary. Its
``javascript_enabled=False`` context approximates Safest. ``page.evaluate`` still works there
for synchronous code, but timers never fire, so anything awaiting one hangs for ever (Playwright
puts no timeout on ``evaluate``). :func:`run_axe` therefore lets scripts run for the duration of
the audit on such pages (the page's own scripts were never run, so the document stays the no-JS
one) and turns them off again.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    pass

# The parts, each in a module of its own; tests import them from here or from the part.
from .axe import format_violations, layout_problems, run_axe, scripts_running
from .chromium import Chromium, RequestRecord
from .firefox import Firefox, group_alive
from .levels import (
    BROWSERS,
    CHROMIUM_BINARY,
    FIREFOX_BINARY,
    LEVELS,
    REPOSITORY_ROOT,
    SECURITY_LEVEL_PREFS,
    WCAG_TAGS,
    browser_unavailable,
    chromium_unavailable,
    firefox_prefs,
    firefox_unavailable,
    socks_proxy_prefs,
    write_user_js,
)
from .recorder import BodyRecorder, RecordedRequest, serve_wsgi

__all__ = [
    "BROWSERS", "CHROMIUM_BINARY", "FIREFOX_BINARY", "LEVELS", "REPOSITORY_ROOT",
    "SECURITY_LEVEL_PREFS", "WCAG_TAGS", "BodyRecorder", "Browser", "Chromium", "Firefox",
    "RecordedRequest", "RequestRecord", "browser_unavailable", "chromium_unavailable",
    "firefox_prefs", "firefox_unavailable", "format_violations", "group_alive", "is_png",
    "launch", "layout_problems", "run_axe", "screenshot_dir", "scripts_running", "serve_wsgi",
    "socks_proxy_prefs", "write_user_js",
]  # fmt: skip


def launch(spec: str, **options: Any) -> Firefox | Chromium:
    """An unstarted browser (use it in a with statement) named by spec, one of BROWSERS."""
    if spec not in BROWSERS:
        raise ValueError(f"unknown browser {spec!r}; expected one of {BROWSERS}")
    if spec.startswith("firefox-"):
        return Firefox(spec.removeprefix("firefox-"), **options)
    return Chromium(javascript_enabled=spec == "chromium-js", **options)


class Browser(Protocol):
    """What the browser tests may call on either browser."""

    name: str
    javascript_enabled: bool

    def goto(self, url: str) -> None: ...
    def fill(self, css: str, text: str) -> None: ...
    def set_files(self, css: str, paths: Sequence[str | os.PathLike[str]]) -> None: ...
    def check(self, css: str) -> None: ...
    def uncheck(self, css: str) -> None: ...
    def select(self, css: str, value: str | Sequence[str]) -> None: ...
    def click(self, css: str) -> None: ...
    def submit_and_wait(
        self, css: str = ..., *, wait_for: str | None = ..., timeout: float = ...
    ) -> None: ...
    def text(self, css: str) -> str: ...
    def value(self, css: str) -> str: ...
    def attribute(self, css: str, name: str) -> str | None: ...
    def count(self, css: str) -> int: ...
    def is_visible(self, css: str) -> bool: ...
    def wait_for(self, css: str, timeout: float = ..., *, visible: bool = ...) -> None: ...
    def page_source(self) -> str: ...
    def screenshot(self, path: str | os.PathLike[str], full_page: bool = ...) -> Path: ...
    def execute(self, script: str, *args: Any) -> Any: ...
    @property
    def url(self) -> str: ...


# --- Artifacts ----------------------------------------------------------------------------------


def screenshot_dir(name: str) -> Path:
    """A folder for screenshots at test-artifacts/screenshots/<name> (ignored by git).

    Slashes in name make subfolders; anything else outside [A-Za-z0-9._-] (a pytest node id's
    brackets, say) becomes "_", so the folder always stays under test-artifacts/screenshots/.
    """
    parts = [re.sub(r"[^A-Za-z0-9._-]+", "_", part).strip("._") for part in name.split("/")]
    folder = REPOSITORY_ROOT / "test-artifacts" / "screenshots"
    folder = folder.joinpath(*[part for part in parts if part] or ["unnamed"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def is_png(path: str | os.PathLike[str]) -> bool:
    """Whether a file starts with the PNG signature."""
    with open(path, "rb") as handle:
        return handle.read(8) == b"\x89PNG\r\n\x1a\n"
