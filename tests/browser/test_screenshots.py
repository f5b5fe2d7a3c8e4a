"""Screenshots of every public page at every security level, and layout on a 360-pixel screen.

Firefox ESR stands in for Tor Browser at Standard, Safer and Safest, at its default window size,
in English. Chromium shows a 360 x 740 phone screen with scripts on (Standard) and off (Safest),
in all six languages (pictures of English, Arabic and Chinese); there the test fails on a page
whose content is wider than the window or whose form controls overlap. (Headless Firefox windows
are at least 500 pixels wide, so the phone screen is Chromium's.) Every page fails that draws an
element marked hidden. The screenshots are kept for people to look at, one folder per browser
and level: test-artifacts/screenshots/levels/<browser>-<level>/<language>-<page>.png.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import LiveSite
from .harness import (
    Chromium,
    Firefox,
    browser_unavailable,
    is_png,
    launch,
    layout_problems,
    screenshot_dir,
)
from .test_accessibility import ERROR_PAGES, LANGUAGES, PAGES, serving_trouble

pytestmark = pytest.mark.browser

PHONE = (360, 740)
FIREFOX_LEVELS = ("firefox-standard", "firefox-safer", "firefox-safest")
# Chromium has no Safer level: scripts on stand for Standard, scripts off for Safest.
PHONE_LEVELS = {"chromium-standard": "chromium-js", "chromium-safest": "chromium-nojs"}
# A full page picture costs a second or more: Firefox keeps English at each level; Chromium
# checks the layout in every language and keeps pictures of three scripts: Latin, Arabic (right
# to left) and Chinese.
FIREFOX_LANGUAGES = ("en",)
PICTURED = ("all", "en", "ar", "zh")
# Elements the page marks hidden that are drawn all the same (a stylesheet's display beats the
# browser's own [hidden] rule unless the site's stylesheet says otherwise).
_SHOWN_HIDDEN = """
return Array.from(document.querySelectorAll('body [hidden]'))
  .filter((el) => el.getClientRects().length > 0)
  .map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : ''));
"""


def pages(languages: tuple[str, ...]) -> list[object]:
    """(page, language) for every public page, named page-language."""
    # The chooser and the leave page are the same in every language: "all".
    found = [pytest.param(page, "all", id=f"{page}-all") for page in ("chooser", "leave")]
    for page in [*PAGES, *ERROR_PAGES]:
        found += [pytest.param(page, lang, id=f"{page}-{lang}") for lang in languages]
    return found


@pytest.fixture(scope="module")
def firefox(request: pytest.FixtureRequest) -> Iterator[Firefox]:
    """Firefox at one level, at its default window, for every page at that level."""
    if reason := browser_unavailable(request.param):
        pytest.skip(reason)
    with launch(request.param) as browser:
        assert isinstance(browser, Firefox)
        yield browser


@pytest.fixture(scope="module")
def phone(request: pytest.FixtureRequest) -> Iterator[Chromium]:
    """Chromium on a 360 x 740 screen, scripts on or off, for every page at that level."""
    spec = PHONE_LEVELS[request.param]
    if reason := browser_unavailable(spec):
        pytest.skip(reason)
    with launch(spec, viewport=PHONE) as browser:
        assert isinstance(browser, Chromium)
        yield browser


@pytest.fixture(scope="module")
def trouble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveSite]]:
    """The deployments that give the error pages."""
    with serving_trouble(tmp_path_factory) as sites:
        yield sites


def show(
    browser: Firefox | Chromium,
    site: LiveSite,
    trouble: dict[str, LiveSite],
    page: str,
    lang: str,
) -> None:
    """Bring the browser to a page in a language, as a person gets there."""
    if page == "chooser":
        browser.goto(f"{site.url}/")
    elif page == "leave":
        browser.goto(f"{site.url}/leave")
    elif page in PAGES:
        PAGES[page](browser, site, lang)
    else:
        ERROR_PAGES[page](browser, trouble, lang)
    assert browser.execute(_SHOWN_HIDDEN) == [], f"{page} in {lang} draws hidden elements"


@pytest.mark.parametrize(("page", "lang"), pages(FIREFOX_LANGUAGES))
@pytest.mark.parametrize("firefox", FIREFOX_LEVELS, indirect=True)
def test_firefox_level(
    firefox: Firefox, module_site: LiveSite, trouble: dict[str, LiveSite], page: str, lang: str
) -> None:
    show(firefox, module_site, trouble, page, lang)
    shot = firefox.screenshot(screenshot_dir(f"levels/{firefox.name}") / f"{lang}-{page}.png")
    assert is_png(shot)


@pytest.mark.parametrize(("page", "lang"), pages(LANGUAGES))
@pytest.mark.parametrize("phone", list(PHONE_LEVELS), indirect=True)
def test_phone_screen(
    phone: Chromium,
    module_site: LiveSite,
    trouble: dict[str, LiveSite],
    request: pytest.FixtureRequest,
    page: str,
    lang: str,
) -> None:
    show(phone, module_site, trouble, page, lang)
    if lang in PICTURED:
        level = request.node.callspec.params["phone"]
        shot = phone.screenshot(screenshot_dir(f"levels/{level}") / f"{lang}-{page}.png")
        assert is_png(shot)
    assert phone.execute("return document.documentElement.clientWidth") == PHONE[0]
    problems = layout_problems(phone)
    assert problems == [], f"{page} in {lang} at 360 px:\n" + "\n".join(problems)
