"""Chromium through Playwright's sync API, with the distribution's binary (see `harness`)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright, Request

from .levels import CHROMIUM_ARGS, CHROMIUM_BINARY

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
