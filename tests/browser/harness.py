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

import contextlib
import dataclasses
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from playwright.sync_api import CDPSession, Page, Playwright, Request

LEVELS = ("standard", "safer", "safest")
FIREFOX_BINARY = "/usr/bin/firefox-esr"
CHROMIUM_BINARY = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
BROWSERS = (*(f"firefox-{level}" for level in LEVELS), "chromium-js", "chromium-nojs")
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]

PrefValue = bool | int | str

_SAFER_PREFS: dict[str, PrefValue] = {
    "javascript.options.ion": False,
    "javascript.options.baselinejit": False,
    "javascript.options.native_regexp": False,
    "javascript.options.asmjs": False,
    "javascript.options.wasm": False,
    "mathml.disabled": True,
    "gfx.font_rendering.graphite.enabled": False,
    "gfx.font_rendering.opentype_svg.enabled": False,
    "webgl.disabled": True,
}
SECURITY_LEVEL_PREFS: dict[str, dict[str, PrefValue]] = {
    "standard": {},
    "safer": dict(_SAFER_PREFS),
    "safest": {
        **_SAFER_PREFS,
        "svg.disabled": True,
        "javascript.enabled": False,
        "gfx.downloadable_fonts.enabled": False,
    },
}

# What Tor Browser sets at every level and a page can notice.
TOR_BROWSER_PREFS: dict[str, PrefValue] = {
    "privacy.resistFingerprinting": True,
    "browser.privatebrowsing.autostart": True,
    "privacy.spoof_english": 2,
    "intl.accept_languages": "en-US, en",
    "dom.securecontext.allowlist_onions": True,
    # HTTPS-Only mode, which leaves .onion and loopback addresses on plain http.
    "dom.security.https_only_mode": True,
    "dom.security.https_only_mode.upgrade_onion": False,
    "dom.security.https_only_mode.upgrade_local": False,
    "media.peerconnection.enabled": False,
}

# Firefox must not call home from the test machine: no updates, telemetry, studies, safe
# browsing lists, connectivity probes, prefetching or first-run pages.
QUIET_PREFS: dict[str, PrefValue] = {
    "app.update.disabledForTesting": True,
    "app.update.auto": False,
    "app.update.checkInstallTime": False,
    "app.normandy.enabled": False,
    "app.normandy.api_url": "",
    "app.shield.optoutstudies.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "browser.startup.homepage_override.mstone": "ignore",
    "startup.homepage_welcome_url": "",
    "startup.homepage_welcome_url.additional": "",
    "browser.aboutwelcome.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.newtabpage.activity-stream.feeds.system.topstories": False,
    "browser.newtabpage.activity-stream.feeds.section.topstories": False,
    "browser.newtabpage.activity-stream.feeds.telemetry": False,
    "browser.newtabpage.activity-stream.telemetry": False,
    "browser.topsites.contile.enabled": False,
    "browser.ping-centre.telemetry": False,
    "browser.region.network.url": "",
    "browser.region.update.enabled": False,
    "browser.search.update": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False,
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.sessionstore.resume_from_crash": False,
    "browser.tabs.warnOnClose": False,
    "browser.translations.enable": False,
    "browser.ml.enable": False,
    "browser.urlbar.speculativeConnect.enabled": False,
    "browser.urlbar.suggest.searches": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.policy.dataSubmissionPolicyBypassNotification": True,
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.healthreport.service.enabled": False,
    "datareporting.usage.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.server": "",
    "toolkit.telemetry.archive.enabled": False,
    "toolkit.telemetry.newProfilePing.enabled": False,
    "toolkit.telemetry.shutdownPingSender.enabled": False,
    "toolkit.telemetry.firstShutdownPing.enabled": False,
    "toolkit.telemetry.updatePing.enabled": False,
    "toolkit.telemetry.bhrPing.enabled": False,
    "dom.push.enabled": False,
    "dom.push.connection.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.systemAddon.update.enabled": False,
    "extensions.blocklist.enabled": False,
    "geo.enabled": False,
    "geo.provider.network.url": "",
    "identity.fxaccounts.enabled": False,
    "media.gmp-manager.url": "",
    "media.gmp-gmpopenh264.enabled": False,
    "media.eme.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.http.speculative-parallel-limit": 0,
    "network.predictor.enabled": False,
    "network.prefetch-next": False,
    "network.trr.mode": 5,
    "security.OCSP.enabled": 0,
    "security.remote_settings.crlite_filters.enabled": False,
    "security.remote_settings.intermediates.enabled": False,
    # Release builds honour this exact value only with MOZ_DISABLE_NONLOCAL_CONNECTIONS set.
    "services.settings.server": "data:,#remote-settings-dummy/v1",
    # No proxy unless asked for: never the system's (environment) proxy settings.
    "network.proxy.type": 0,
}


def socks_proxy_prefs(host: str, port: int) -> dict[str, PrefValue]:
    """Prefs that send every request, loopback included, through a SOCKS5 proxy with remote DNS."""
    return {
        "network.proxy.type": 1,
        "network.proxy.socks": host,
        "network.proxy.socks_port": port,
        "network.proxy.socks_version": 5,
        "network.proxy.socks_remote_dns": True,
        "network.proxy.allow_hijacking_localhost": True,
        "network.proxy.no_proxies_on": "",
    }


def firefox_prefs(
    level: str,
    *,
    socks_proxy: tuple[str, int] | None = None,
    tor_browser: bool = True,
    extra: Mapping[str, PrefValue] | None = None,
) -> dict[str, PrefValue]:
    """All prefs for a Firefox profile at a Tor Browser security level."""
    if level not in SECURITY_LEVEL_PREFS:
        raise ValueError(f"unknown security level {level!r}; expected one of {LEVELS}")
    prefs: dict[str, PrefValue] = dict(QUIET_PREFS)
    if tor_browser:
        prefs.update(TOR_BROWSER_PREFS)
    prefs.update(SECURITY_LEVEL_PREFS[level])
    if socks_proxy is not None:
        prefs.update(socks_proxy_prefs(*socks_proxy))
    prefs.update(extra or {})
    return prefs


def write_user_js(profile_dir: Path, prefs: Mapping[str, PrefValue]) -> Path:
    """Write prefs as a profile's user.js (JSON literals are valid pref values)."""
    lines = [
        f"user_pref({json.dumps(name)}, {json.dumps(value)});" for name, value in prefs.items()
    ]
    path = profile_dir / "user.js"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- What is installed ---------------------------------------------------------------------


def firefox_unavailable(binary: str = FIREFOX_BINARY) -> str | None:
    """Why Firefox tests cannot run here (what to install), or None when they can."""
    if not (os.access(binary, os.X_OK) or shutil.which(binary)):
        return f"Firefox ESR not found at {binary}: apt-get install firefox-esr"
    if importlib.util.find_spec("marionette_driver") is None:
        return "marionette_driver is not installed: pip install marionette-driver==3.7.1"
    return None


def chromium_unavailable(binary: str = CHROMIUM_BINARY) -> str | None:
    """Why Chromium tests cannot run here (what to install), or None when they can."""
    if not (os.access(binary, os.X_OK) or shutil.which(binary)):
        return f"Chromium not found at {binary}: apt-get install chromium"
    if importlib.util.find_spec("playwright") is None:
        return (
            "Playwright is not installed: pip install playwright==1.65.2 (no `playwright install`)"
        )
    return None


def browser_unavailable(spec: str) -> str | None:
    """Why the browser named by spec (one of BROWSERS) cannot run here, or None."""
    if spec not in BROWSERS:
        raise ValueError(f"unknown browser {spec!r}; expected one of {BROWSERS}")
    return firefox_unavailable() if spec.startswith("firefox-") else chromium_unavailable()


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


# --- Firefox through Marionette --------------------------------------------------------------


def group_alive(pgid: int) -> bool:
    """Whether any process of a process group still runs (zombies awaiting init do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # Fields after the parenthesised command: state, ppid, pgrp, ...
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
    return False


def _kill_group(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """End a process started in its own session, and its children: SIGTERM, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
        # Content processes outlive the parent for a moment, reparented to init.
        deadline = time.monotonic() + grace
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if process.returncode is not None and not group_alive(process.pid):
            return


def _marionette_driver() -> Any:
    """The marionette_driver package, imported without its dependencies' deprecation warnings."""
    with warnings.catch_warnings():
        # mozinfo calls distro.linux_distribution(), which warns; the suite makes warnings errors.
        warnings.simplefilter("ignore", DeprecationWarning)
        import marionette_driver.by  # type: ignore[import-untyped]
        import marionette_driver.errors  # type: ignore[import-untyped]
        import marionette_driver.marionette  # type: ignore[import-untyped]
    return marionette_driver


class Firefox:
    """Firefox ESR at one Tor Browser security level, driven through Marionette."""

    def __init__(
        self,
        level: str = "standard",
        *,
        socks_proxy: tuple[str, int] | None = None,
        tor_browser: bool = True,
        extra_prefs: Mapping[str, PrefValue] | None = None,
        binary: str = FIREFOX_BINARY,
        startup_timeout: float = 60.0,
        default_timeout: float = 10.0,
    ) -> None:
        """Describe the browser; nothing starts before the with statement."""
        self.level = level
        self.name = f"firefox-{level}"
        self.prefs = firefox_prefs(
            level, socks_proxy=socks_proxy, tor_browser=tor_browser, extra=extra_prefs
        )
        self.prefs["marionette.port"] = 0  # Firefox picks a free port and writes it to the profile
        self.javascript_enabled = self.prefs.get("javascript.enabled", True) is not False
        self.binary = binary
        self.startup_timeout = startup_timeout
        self.default_timeout = default_timeout
        self.startup_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._profile: Path | None = None
        self._log: IO[bytes] | None = None
        self._client: Any = None

    def __enter__(self) -> Firefox:
        """Start Firefox on a fresh profile and open a Marionette session."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Always end the session, the process group and the profile."""
        self.close()

    def _start(self) -> None:
        started = time.monotonic()
        self._profile = Path(tempfile.mkdtemp(prefix=f"portal-{self.name}-"))
        profile = self._profile / "profile"
        profile.mkdir()
        write_user_js(profile, self.prefs)
        self._log = (self._profile / "firefox.log").open("wb")
        # -remote-allow-system-access lets tests read prefs in the chrome context.
        self._process = subprocess.Popen(
            [
                self.binary,
                "--headless",
                "--marionette",
                "--no-remote",
                "-remote-allow-system-access",
                "--profile",
                str(profile),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # MOZ_DISABLE_NONLOCAL_CONNECTIONS: Firefox refuses any connection to a non-loopback
            # address (a SOCKS proxy on loopback still works), whatever a pref forgets.
            env={
                **os.environ,
                "MOZ_HEADLESS": "1",
                "MOZ_CRASHREPORTER_DISABLE": "1",
                "MOZ_DISABLE_NONLOCAL_CONNECTIONS": "1",
            },
        )
        port = self._wait_for_port(profile / "MarionetteActivePort", started + self.startup_timeout)
        self._client = _marionette_driver().marionette.Marionette(
            host="127.0.0.1", port=port, socket_timeout=120
        )
        self._client.start_session(capabilities={"strictFileInteractability": False})
        self._client.timeout.page_load = 60
        self._client.timeout.script = 30
        self.startup_seconds = time.monotonic() - started

    def _wait_for_port(self, port_file: Path, deadline: float) -> int:
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"Firefox exited with status {self._process.returncode}:\n{self._log_tail()}"
                )
            with contextlib.suppress(OSError, ValueError):
                text = port_file.read_text().strip()
                if text:
                    return int(text)
            time.sleep(0.05)
        raise TimeoutError(
            f"Firefox opened no Marionette port in {self.startup_timeout:.0f} s:\n"
            + self._log_tail()
        )

    def _log_tail(self) -> str:
        if self._profile is None:
            return ""
        with contextlib.suppress(OSError):
            return (self._profile / "firefox.log").read_text(errors="replace")[-4000:]
        return ""

    def close(self) -> None:
        """End the Marionette session, kill Firefox's process group, delete the profile."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                # A hung Firefox must not hold up the end of a failed test for minutes.
                client.client.socket_timeout = 10
                client.delete_session()
        process, self._process = self._process, None
        if process is not None:
            _kill_group(process)
        if self._log is not None:
            self._log.close()
            self._log = None
        profile, self._profile = self._profile, None
        if profile is not None:
            shutil.rmtree(profile, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        """Process id (and process group id) of the running Firefox."""
        return self._process.pid if self._process is not None else None

    @property
    def marionette(self) -> Any:
        """The Marionette client, for what the helpers do not cover."""
        if self._client is None:
            raise RuntimeError("Firefox is not running; use it in a with statement")
        return self._client

    @property
    def url(self) -> str:
        """The current page's URL."""
        return str(self.marionette.get_url())

    def _find(self, css: str) -> Any:
        driver = _marionette_driver()
        try:
            return self.marionette.find_element(driver.by.By.CSS_SELECTOR, css)
        except driver.errors.NoSuchElementException:
            raise LookupError(f"no element matches {css!r} on {self.url}") from None

    def _find_all(self, css: str) -> list[Any]:
        return list(self.marionette.find_elements(_marionette_driver().by.By.CSS_SELECTOR, css))

    def goto(self, url: str) -> None:
        """Load url and wait for its load event."""
        self.marionette.navigate(url)

    def fill(self, css: str, text: str) -> None:
        """Clear a text control and type text into it, key by key."""
        element = self._find(css)
        element.clear()
        if text:
            element.send_keys(text)

    def set_files(self, css: str, paths: Sequence[str | os.PathLike[str]]) -> None:
        """Choose files in a file input (several need the multiple attribute)."""
        element = self._find(css)
        # Keys sent to a file input add to its files; clear first so the list is exactly paths.
        element.clear()
        if paths:
            element.send_keys("\n".join(str(Path(p).resolve()) for p in paths))

    def check(self, css: str) -> None:
        """Tick a checkbox or choose a radio button by clicking it, unless already so."""
        element = self._find(css)
        if not element.is_selected():
            element.click()

    def uncheck(self, css: str) -> None:
        """Untick a checkbox by clicking it, unless already unticked."""
        element = self._find(css)
        if element.is_selected():
            element.click()

    def select(self, css: str, value: str | Sequence[str]) -> None:
        """Choose the option(s) with these values in a select, by clicking the options."""
        wanted = {value} if isinstance(value, str) else set(value)
        element = self._find(css)
        options = element.find_elements(_marionette_driver().by.By.CSS_SELECTOR, "option")
        found = {option.get_property("value") for option in options}
        if missing := wanted - found:
            raise LookupError(f"{css!r} has no option with value {sorted(missing)}")
        multiple = bool(element.get_property("multiple"))
        for option in options:
            selected = option.is_selected()
            if option.get_property("value") in wanted:
                if not selected:
                    option.click()
            elif multiple and selected:
                option.click()  # in a multiple select a click toggles

    def click(self, css: str) -> None:
        """Click an element as a user would (fails if something covers it)."""
        self._find(css).click()

    def submit_and_wait(
        self, css: str = "[type=submit]", *, wait_for: str | None = None, timeout: float = 30.0
    ) -> None:
        """Click a submit control; wait for wait_for to show, or else for a new page to load."""
        errors = _marionette_driver().errors
        old_root = self._find("html")
        self._find(css).click()
        if wait_for is not None:
            self.wait_for(wait_for, timeout)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                _ = old_root.tag_name  # fails once the page it belonged to is gone
            except (errors.StaleElementException, errors.NoSuchElementException):
                break
            time.sleep(0.05)
        else:
            raise TimeoutError(
                f"clicking {css!r} on {self.url} loaded no new page in {timeout:.0f} s"
            )
        while self.execute("return document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.url} did not finish loading in {timeout:.0f} s")
            time.sleep(0.05)

    def text(self, css: str) -> str:
        """The rendered text of the first element matching css."""
        return str(self._find(css).text)

    def value(self, css: str) -> str:
        """The current value of a form control."""
        return str(self._find(css).get_property("value"))

    def attribute(self, css: str, name: str) -> str | None:
        """An attribute of the first element matching css, or None."""
        result = self._find(css).get_attribute(name)
        return None if result is None else str(result)

    def count(self, css: str) -> int:
        """How many elements match css."""
        return len(self._find_all(css))

    def is_visible(self, css: str) -> bool:
        """Whether the first element matching css exists and is displayed."""
        elements = self._find_all(css)
        return bool(elements) and bool(elements[0].is_displayed())

    def wait_for(self, css: str, timeout: float | None = None, *, visible: bool = True) -> None:
        """Wait until an element matching css exists (and, by default, is displayed)."""
        errors = _marionette_driver().errors
        seconds = self.default_timeout if timeout is None else timeout
        deadline = time.monotonic() + seconds
        while True:
            with contextlib.suppress(errors.StaleElementException, errors.NoSuchElementException):
                elements = self._find_all(css)
                if elements and (not visible or elements[0].is_displayed()):
                    return
            if time.monotonic() > deadline:
                state = "visible" if visible else "present"
                raise TimeoutError(
                    f"no {state} element matches {css!r} on {self.url} after {seconds} s"
                )
            time.sleep(0.05)

    def page_source(self) -> str:
        """The current DOM serialised as HTML."""
        return str(self.marionette.page_source)

    def screenshot(self, path: str | os.PathLike[str], full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole document unless full_page is False)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.marionette.screenshot(format="binary", full=full_page))
        return target

    def execute(self, script: str, *args: Any) -> Any:
        """Run a function body (``return``, ``arguments[i]``) in Marionette's sandbox, any level."""
        return self.marionette.execute_script(script, script_args=args)

    def get_pref(self, name: str) -> PrefValue | None:
        """A pref's current value read in the browser itself, or None when unset."""
        with self.marionette.using_context("chrome"):
            return self.marionette.execute_script(  # type: ignore[no-any-return]
                """
                const [name] = arguments;
                switch (Services.prefs.getPrefType(name)) {
                  case Services.prefs.PREF_BOOL: return Services.prefs.getBoolPref(name);
                  case Services.prefs.PREF_INT: return Services.prefs.getIntPref(name);
                  case Services.prefs.PREF_STRING: return Services.prefs.getStringPref(name);
                  default: return null;
                }
                """,
                script_args=(name,),
            )

    def set_viewport(self, width: int, height: int) -> None:
        """Size the window for a width x height CSS pixel viewport (500 px wide or more)."""
        client = self.marionette
        client.set_window_rect(width=width, height=height)
        inner = self.execute("return [window.innerWidth, window.innerHeight]")
        client.set_window_rect(
            width=width + (width - inner[0]), height=height + (height - inner[1])
        )
        inner = self.execute("return [window.innerWidth, window.innerHeight]")
        if inner != [width, height]:
            raise RuntimeError(
                f"Firefox gave a {inner[0]}x{inner[1]} viewport for {width}x{height}; "
                "headless Firefox windows are at least 500 px wide: test narrow layouts in Chromium"
            )


# --- Chromium through Playwright -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One request a Chromium page sent."""

    method: str
    url: str
    resource_type: str
    body: bytes | None
    # Chromium leaves the bytes of chosen files out of what it reports for a form posted by
    # navigation; for such requests the body is incomplete: check the server side instead.
    body_complete: bool


class _PlaywrightShare:
    """One sync Playwright per process: a second concurrent one refuses to start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._manager: Any = None
        self._playwright: Playwright | None = None

    def acquire(self) -> Playwright:
        from playwright.sync_api import sync_playwright

        with self._lock:
            if self._playwright is None:
                self._manager = sync_playwright()
                self._playwright = self._manager.start()
            self._users += 1
            return self._playwright

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._manager is not None:
                manager, self._manager, self._playwright = self._manager, None, None
                manager.__exit__(None, None, None)


_PLAYWRIGHT = _PlaywrightShare()


class Chromium:
    """Chromium through Playwright's sync API: one browser, one context, one page.

    Its element helpers wait up to default_timeout for their element (Playwright's auto-waiting);
    Firefox's act at once, so tests wait_for what a script adds before using it in both.
    """

    def __init__(
        self,
        *,
        javascript_enabled: bool = True,
        viewport: tuple[int, int] = (1280, 800),
        binary: str = CHROMIUM_BINARY,
        extra_args: Iterable[str] = (),
        default_timeout: float = 10.0,
        context_options: Mapping[str, Any] | None = None,
    ) -> None:
        """Describe the browser; nothing starts before the with statement."""
        self.javascript_enabled = javascript_enabled
        self.name = "chromium-js" if javascript_enabled else "chromium-nojs"
        self.viewport = viewport
        self.binary = binary
        self.args = [*CHROMIUM_ARGS, *extra_args]
        self.default_timeout = default_timeout
        self.context_options = dict(context_options or {})
        self.startup_seconds = 0.0
        self._playwright: Playwright | None = None
        self._browser: Any = None
        self._context: Any = None
        self._page: Page | None = None
        self._requests: list[Request] = []

    def __enter__(self) -> Chromium:
        """Launch Chromium and open a page."""
        started = time.monotonic()
        self._playwright = _PLAYWRIGHT.acquire()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=self.binary, args=self.args, headless=True
            )
            self._context = self._browser.new_context(
                java_script_enabled=self.javascript_enabled,
                viewport={"width": self.viewport[0], "height": self.viewport[1]},
                **self.context_options,
            )
            # With request interception on, Chromium reports the whole body of script-sent
            # requests (FormData with Blobs included); without it those bodies read as None.
            self._context.route("**/*", lambda route: route.fallback())
            self._context.on("request", lambda request: self._requests.append(request))
            self._page = self._context.new_page()
            self._page.set_default_timeout(self.default_timeout * 1000)
        except BaseException:
            self.close()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Always close the context and the browser."""
        self.close()

    def close(self) -> None:
        """Close the context and the browser, and let go of Playwright."""
        context, self._context = self._context, None
        browser, self._browser = self._browser, None
        self._page = None
        for thing in (context, browser):
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.close()
        if self._playwright is not None:
            self._playwright = None
            _PLAYWRIGHT.release()

    @property
    def page(self) -> Page:
        """The Playwright page, for what the helpers do not cover."""
        if self._page is None:
            raise RuntimeError("Chromium is not running; use it in a with statement")
        return self._page

    @property
    def url(self) -> str:
        """The current page's URL."""
        return self.page.url

    def requests(self) -> list[RequestRecord]:
        """Every request the page has sent so far, with its body where it had one."""
        records = []
        for request in self._requests:
            body = request.post_data_buffer
            content_type = request.headers.get("content-type", "")
            complete = not (
                request.resource_type == "document" and content_type.startswith("multipart/")
            )
            records.append(
                RequestRecord(request.method, request.url, request.resource_type, body, complete)
            )
        return records

    def clear_requests(self) -> None:
        """Forget the requests recorded so far."""
        self._requests.clear()

    def goto(self, url: str) -> None:
        """Load url and wait for its load event."""
        self.page.goto(url, wait_until="load")

    def fill(self, css: str, text: str) -> None:
        """Set a text control's value (with input events, as Playwright's fill does)."""
        self.page.fill(css, text)

    def set_files(self, css: str, paths: Sequence[str | os.PathLike[str]]) -> None:
        """Choose files in a file input (several need the multiple attribute)."""
        self.page.set_input_files(css, [str(Path(p).resolve()) for p in paths])

    def check(self, css: str) -> None:
        """Tick a checkbox or choose a radio button."""
        self.page.check(css)

    def uncheck(self, css: str) -> None:
        """Untick a checkbox."""
        self.page.uncheck(css)

    def select(self, css: str, value: str | Sequence[str]) -> None:
        """Choose the option(s) with these values in a select."""
        self.page.select_option(css, value=[value] if isinstance(value, str) else list(value))

    def click(self, css: str) -> None:
        """Click an element as a user would."""
        self.page.click(css)

    def submit_and_wait(
        self, css: str = "[type=submit]", *, wait_for: str | None = None, timeout: float = 30.0
    ) -> None:
        """Click a submit control; wait for wait_for to show, or else for a new page to load."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        if wait_for is not None:
            self.page.click(css)
            self.wait_for(wait_for, timeout)
            return
        try:
            with self.page.expect_navigation(wait_until="load", timeout=timeout * 1000):
                self.page.click(css)
        except PlaywrightTimeout as error:
            raise TimeoutError(f"clicking {css!r} on {self.url} loaded no new page") from error

    def text(self, css: str) -> str:
        """The rendered text of the first element matching css."""
        return self.page.inner_text(css)

    def value(self, css: str) -> str:
        """The current value of a form control."""
        return self.page.input_value(css)

    def attribute(self, css: str, name: str) -> str | None:
        """An attribute of the first element matching css, or None."""
        return self.page.get_attribute(css, name)

    def count(self, css: str) -> int:
        """How many elements match css."""
        return self.page.locator(css).count()

    def is_visible(self, css: str) -> bool:
        """Whether the first element matching css exists and is displayed."""
        return self.page.locator(css).first.is_visible()

    def wait_for(self, css: str, timeout: float | None = None, *, visible: bool = True) -> None:
        """Wait until an element matching css exists (and, by default, is displayed)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        seconds = self.default_timeout if timeout is None else timeout
        state: Literal["visible", "attached"] = "visible" if visible else "attached"
        try:
            self.page.wait_for_selector(css, state=state, timeout=seconds * 1000)
        except PlaywrightTimeout as error:
            message = f"no {state} element matches {css!r} on {self.url} after {seconds} s"
            raise TimeoutError(message) from error

    def page_source(self) -> str:
        """The current DOM serialised as HTML."""
        return self.page.content()

    def screenshot(self, path: str | os.PathLike[str], full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole document unless full_page is False)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(target), full_page=full_page, type="png")
        return target

    def execute(self, script: str, *args: Any) -> Any:
        """Run a synchronous function body (``return``, ``arguments[i]``) in the page's world."""
        # DevTools evaluation is not bound by the page's CSP, and runs even with scripts off.
        return self.page.evaluate(
            f"(args) => (function () {{\n{script}\n}}).apply(null, args)", list(args)
        )


# --- Accessibility: axe-core ------------------------------------------------------------------

# The CDP session through which an audit turned a no-JS page's scripts on and off again, kept
# for that page's next audits (Playwright's own session is not reachable from here).
_SCRIPT_SWITCHES: weakref.WeakKeyDictionary[Any, CDPSession] = weakref.WeakKeyDictionary()


def _page_of(target: Any) -> Page:
    if isinstance(target, Firefox):
        raise TypeError("run_axe needs Chromium (a Chromium wrapper or a Playwright page)")
    page: Page = target.page if isinstance(target, Chromium) else target
    return page


def _scripts_run(page: Page) -> bool:
    """Whether the page runs timers (false in a java_script_enabled=False context)."""
    page.evaluate(
        "() => { window.__harnessTimerProbe = 0;"
        " setTimeout(() => { window.__harnessTimerProbe = 1; }, 0); }"
    )
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        if page.evaluate("() => window.__harnessTimerProbe") == 1:
            return True
        time.sleep(0.02)
    return False


def _set_scripts_disabled(page: Page, disabled: bool) -> None:
    session = _SCRIPT_SWITCHES.get(page)
    if session is None:
        session = page.context.new_cdp_session(page)
        _SCRIPT_SWITCHES[page] = session
    # The emulation agent ignores a value equal to what this session last sent, and each
    # session starts at "enabled": send the opposite first so the wanted value always lands.
    session.send("Emulation.setScriptExecutionDisabled", {"value": not disabled})
    session.send("Emulation.setScriptExecutionDisabled", {"value": disabled})


@contextlib.contextmanager
def scripts_running(target: Any) -> Iterator[Page]:
    """Let a Chromium page run timers for a measurement, then restore its no-JS state."""
    page = _page_of(target)
    disabled = (
        not target.javascript_enabled if isinstance(target, Chromium) else not _scripts_run(page)
    )
    if not disabled:
        yield page
        return
    _set_scripts_disabled(page, False)
    try:
        yield page
    finally:
        _set_scripts_disabled(page, True)


_AXE_RUN = """async (tags) => {
  const options = {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']};
  const result = await axe.run(document, options);
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl, tags: v.tags,
    nodes: v.nodes.map((n) => ({target: n.target, html: n.html, summary: n.failureSummary})),
  }));
}"""


def run_axe(
    target: Any, axe_path: str | os.PathLike[str], tags: Sequence[str] = WCAG_TAGS
) -> list[dict[str, Any]]:
    """Run axe-core on a Chromium page and return its WCAG 2.0/2.1 A and AA violations."""
    source = Path(axe_path).read_text(encoding="utf-8")
    with scripts_running(target) as page:
        # Evaluated over DevTools, the script is not bound by the page's CSP (a <script> tag
        # added by Playwright would be), and the page's own CSP stays enforced for the audit.
        if not page.evaluate(
            "() => typeof window.axe === 'object' && typeof window.axe.run === 'function'"
        ):
            page.evaluate(source + "\n;void 0")
        violations: list[dict[str, Any]] = page.evaluate(_AXE_RUN, list(tags))
    return violations


def format_violations(violations: Sequence[Mapping[str, Any]]) -> str:
    """Readable text of axe violations for an assertion message."""
    if not violations:
        return "no accessibility violations"
    lines = [f"{len(violations)} accessibility violation(s):"]
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation.get('impact')}): {violation.get('help')}"
            f" <{violation.get('helpUrl')}>"
        )
        for node in violation.get("nodes", []):
            selector = " >> ".join(
                " ".join(part) if isinstance(part, list) else part for part in node["target"]
            )
            lines.append(f"    {selector}: {node.get('html', '')[:160]}")
    return "\n".join(lines)


# --- Layout -------------------------------------------------------------------------------------

_LAYOUT_SCRIPT = r"""
const root = document.documentElement;
const width = root.clientWidth;
const problems = [];
const describe = (el) => {
  let text = el.tagName.toLowerCase();
  if (el.id) text += '#' + el.id;
  const name = el.getAttribute('name');
  if (name) text += '[name="' + name + '"]';
  if (el.tagName === 'LABEL' && el.htmlFor) text += '[for="' + el.htmlFor + '"]';
  if (el.tagName === 'INPUT') text += '[type="' + el.type + '"]';
  const words = (el.textContent || '').trim().replace(/\s+/g, ' ');
  if (words && (el.tagName === 'LABEL' || el.tagName === 'BUTTON')) {
    text += ' "' + words.slice(0, 30) + '"';
  }
  return text;
};
const px = (n) => n.toFixed(0);
const box = (r) => `[x ${px(r.left)}, y ${px(r.top)}, ${px(r.width)}x${px(r.height)}]`;
const visible = (el) => {
  if (!el.getClientRects().length) return false;
  const style = getComputedStyle(el);
  const shown = style.visibility !== 'hidden' && style.visibility !== 'collapse';
  return shown && Number(style.opacity) !== 0;
};
// Content inside a box that clips or scrolls its overflow does not widen the page.
const clipped = (el) => {
  for (let a = el.parentElement; a && a !== document.body && a !== root; a = a.parentElement) {
    if (getComputedStyle(a).overflowX !== 'visible') return true;
  }
  return false;
};
if (root.scrollWidth > width) {
  problems.push(`the page is ${root.scrollWidth - width} px wider than the window`
    + ` (scrollWidth ${root.scrollWidth} > clientWidth ${width})`);
}
const reported = [];
for (const el of document.body ? document.body.querySelectorAll('*') : []) {
  if (reported.some((r) => r.contains(el)) || !visible(el) || clipped(el)) continue;
  const r = el.getBoundingClientRect();
  if (r.width * r.height <= 1) continue;  // visually-hidden text for screen readers
  const left = r.left + window.scrollX, right = r.right + window.scrollX;
  if (right > width + 1) {
    problems.push(`${describe(el)} ${box(r)} extends ${px(right - width)} px`
      + ` past the right edge of the ${width} px window`);
    reported.push(el);
  } else if (left < -1) {
    problems.push(`${describe(el)} ${box(r)} extends ${px(-left)} px`
      + ' past the left edge of the window');
    reported.push(el);
  }
}
const controls = Array.from(
  document.querySelectorAll('input:not([type=hidden]), select, textarea, button, label'),
).filter(visible);
for (let i = 0; i < controls.length; i++) {
  for (let j = i + 1; j < controls.length; j++) {
    const a = controls[i], b = controls[j];
    if (a.contains(b) || b.contains(a)) continue;  // a label wrapping its own control
    const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
    const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
    const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
    if (w > 1 && h > 1) {
      problems.push(`${describe(a)} ${box(ra)} and ${describe(b)} ${box(rb)}`
        + ` overlap by ${px(w)}x${px(h)} px`);
    }
  }
}
return problems;
"""


def layout_problems(browser: Firefox | Chromium) -> list[str]:
    """Content wider than the window and overlapping form controls on the current page."""
    # Synchronous DOM measurement: fine in Firefox's sandbox at Safest and in Chromium with
    # scripts off (only timers stop there).
    return [str(problem) for problem in browser.execute(_LAYOUT_SCRIPT)]


# --- Server side: recording bodies, serving WSGI apps ------------------------------------------


@dataclasses.dataclass
class RecordedRequest:
    """A request that passed through a BodyRecorder."""

    method: str
    path: str
    _spool: Any = dataclasses.field(repr=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def _write(self, data: bytes | memoryview) -> None:
        with self._lock:
            self._spool.seek(0, io.SEEK_END)
            self._spool.write(data)

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The recorded body in pieces, without loading it all."""
        position = 0
        while True:
            with self._lock:
                self._spool.seek(position)
                piece = self._spool.read(size)
            if not piece:
                return
            position += len(piece)
            yield piece

    @property
    def body(self) -> bytes:
        """The whole recorded body."""
        return b"".join(self.chunks())


class _TeeInput(io.RawIOBase):
    """A wsgi.input that copies every byte the application reads into a recording."""

    def __init__(self, stream: Any, record: RecordedRequest) -> None:
        super().__init__()
        self._stream = stream
        self._record = record
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def _keep(self, data: bytes | memoryview) -> None:
        if data:
            self.consumed += len(data)
            self._record._write(data)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if hasattr(self._stream, "readinto"):
            count = self._stream.readinto(view) or 0
        else:
            data = self._stream.read(len(view))
            count = len(data)
            view[:count] = data
        self._keep(view[:count])
        return count

    def read(self, size: int | None = -1) -> bytes:
        data: bytes = self._stream.read() if size is None or size < 0 else self._stream.read(size)
        self._keep(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data: bytes = (
            self._stream.readline() if size is None or size < 0 else self._stream.readline(size)
        )
        self._keep(data)
        return data


class _ClosingBody:
    """The application's response, with a hook run once it has all been sent."""

    def __init__(self, body: Iterable[bytes], after: Callable[[], None]) -> None:
        self._body = body
        self._after = after

    def __iter__(self) -> Iterator[bytes]:
        yield from self._body
        # Here, not in close(): werkzeug's server discards the unread input before close().
        self._after()

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


class BodyRecorder:
    """WSGI middleware keeping every raw request body (spooled to disk when large)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, spool_bytes: int = 1 << 20) -> None:
        """Wrap app; bodies above spool_bytes go to a temporary file instead of memory."""
        self.app = app
        self.spool_bytes = spool_bytes
        self._records: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Pass the request on with a recording wsgi.input."""
        record = RecordedRequest(
            method=environ.get("REQUEST_METHOD", ""),
            path=environ.get("PATH_INFO", ""),
            # Closed by clear() / close(): records outlive this call.
            _spool=tempfile.SpooledTemporaryFile(max_size=self.spool_bytes),  # noqa: SIM115
        )
        with self._lock:
            self._records.append(record)
        tee = _TeeInput(environ["wsgi.input"], record)
        environ["wsgi.input"] = tee
        body = self.app(environ, start_response)
        return _ClosingBody(body, lambda: self._drain(environ, tee))

    @staticmethod
    def _drain(environ: Mapping[str, Any], tee: _TeeInput) -> None:
        # Record what the client sent even where the application did not read it all (a
        # rejected upload): "the server never received X" checks must see every byte.
        with contextlib.suppress(Exception):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length:
                while tee.consumed < length and tee.read(min(1 << 20, length - tee.consumed)):
                    pass
            elif environ.get("wsgi.input_terminated"):
                while tee.read(1 << 20):
                    pass

    def records(self) -> list[RecordedRequest]:
        """Every request recorded so far, oldest first."""
        with self._lock:
            return list(self._records)

    def bodies(self) -> list[tuple[str, str, bytes]]:
        """(method, path, body) of every request recorded so far."""
        return [(r.method, r.path, r.body) for r in self.records()]

    def contains(self, marker: bytes) -> bool:
        """Whether marker occurs in any recorded body (searched piecewise, across piece borders)."""
        if not marker:
            raise ValueError("an empty marker matches everything")
        for record in self.records():
            tail = b""
            for piece in record.chunks():
                if marker in tail + piece:
                    return True
                tail = (tail + piece)[-(len(marker) - 1) :] if len(marker) > 1 else b""
        return False

    def clear(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            records, self._records = self._records, []
        for record in records:
            record._spool.close()

    close = clear

    def __enter__(self) -> BodyRecorder:
        """Use the recorder; its spooled bodies are deleted at the end."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Delete the spooled bodies."""
        self.close()


@contextlib.contextmanager
def serve_wsgi(app: Callable[..., Iterable[bytes]], host: str = "127.0.0.1") -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a thread; yield its base URL (no final slash)."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    server = make_server(host, 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, name=f"wsgi-{server.server_port}", daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


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
