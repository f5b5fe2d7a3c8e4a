"""Firefox ESR at one of Tor Browser's security levels, driven through Marionette."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from .levels import FIREFOX_BINARY, PrefValue, firefox_prefs, write_user_js

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
