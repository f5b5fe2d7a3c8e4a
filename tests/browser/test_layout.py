"""The report form on a 360 x 740 phone screen: essentials near the top, "Leave quickly" always
in view, and every tappable thing at least 44 x 44 CSS pixels.

Chromium with scripts on (Standard) and off (Safest), in every language (headless Firefox
windows are at least 500 pixels wide, so the phone screen is Chromium's). The figures of the
form's length (screens of scrolling to each send button) are printed for the record.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import LiveSite
from .harness import Chromium, browser_unavailable, launch

pytestmark = pytest.mark.browser

PHONE = (360, 740)
TAP = 44
LANGUAGES = ("en", "fr", "es", "ru", "ar", "zh")

# Every visible thing a finger can tap, with its box. A radio button or a checkbox is tapped
# through the label around it, so the label is measured; text in a label is not a control.
_TAPPABLE = r"""
const shown = (el) => {
  if (!el.getClientRects().length) return false;
  const style = getComputedStyle(el);
  if (style.visibility === 'hidden' || el.closest('[hidden], .hp, .visually-hidden')) return false;
  return true;
};
const selector = 'a[href], button, select, textarea, summary, label.option,'
  + ' input:not([type=hidden]):not([type=radio]):not([type=checkbox])';
return Array.from(document.querySelectorAll(selector)).filter(shown)
  .filter((el) => !el.classList.contains('skip'))
  .map((el) => {
    const r = el.getBoundingClientRect();
    const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
      + (el.getAttribute('name') ? '[name=' + el.getAttribute('name') + ']' : '')
      + ' "' + (el.textContent || el.value || '').trim().slice(0, 30) + '"';
    return [name, r.width, r.height];
  });
"""
_TOP = "return document.getElementById(arguments[0]).getBoundingClientRect().top + window.scrollY"
_LEAVE_IN_VIEW = """
window.scrollTo(0, document.documentElement.scrollHeight);
const r = document.querySelector('a.leave').getBoundingClientRect();
return [r.top, r.bottom, r.left, r.right, window.innerWidth, window.innerHeight, window.scrollY];
"""


@pytest.fixture(scope="module", params=["chromium-js", "chromium-nojs"])
def phone(request: pytest.FixtureRequest) -> Iterator[Chromium]:
    """Chromium on a 360 x 740 screen, scripts on or off."""
    if reason := browser_unavailable(request.param):
        pytest.skip(reason)
    with launch(request.param, viewport=PHONE) as browser:
        assert isinstance(browser, Chromium)
        yield browser


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_report_form_on_a_phone(phone: Chromium, module_site: LiveSite, lang: str) -> None:
    phone.goto(f"{module_site.url}/{lang}/submit")
    screens = {
        name: phone.execute(_TOP, name) / PHONE[1]
        for name in ("description", "consent_of", "send-report")
    }
    print(f"{phone.name} {lang}: " + ", ".join(f"{k} at {v:.1f}" for k, v in screens.items()))
    assert screens["description"] < 2, "the description does not start within two screens"

    small = [
        f"{name} is {width:.0f}x{height:.0f}"
        for name, width, height in phone.execute(_TAPPABLE)
        if width < TAP - 0.5 or height < TAP - 0.5
    ]
    assert small == [], f"smaller than {TAP}x{TAP} in {lang}:\n" + "\n".join(small)

    top, bottom, left, right, width, height, scrolled = phone.execute(_LEAVE_IN_VIEW)
    assert scrolled > 0
    where = f'"Leave quickly" at the end of the form in {lang}'
    assert top >= 0, where
    assert bottom <= height, where
    assert left >= 0, where
    assert right <= width, where


@pytest.mark.parametrize("path", ["/en/", "/en/submit", "/ar/safety"])
def test_no_console_error(phone: Chromium, module_site: LiveSite, path: str) -> None:
    """Not even the empty icon's: the policy allows that one data: image."""
    errors: list[str] = []

    def keep(message: object) -> None:
        if getattr(message, "type", "") == "error":
            errors.append(str(getattr(message, "text", "")))

    phone.page.on("console", keep)
    try:
        phone.goto(f"{module_site.url}{path}")
    finally:
        phone.page.remove_listener("console", keep)
    assert errors == []
