"""Right to left and the language switch in a real browser (Chromium), on a 360-pixel phone screen.

In Arabic the labels sit at the right of their fields and every radio button and checkbox at the
right of its label; nothing is wider than the window; receipts read left to right. In English the
same stylesheet mirrors all of that. A language link on a filled form, or after a receipt, asks
first. Screenshots of the Arabic and Chinese forms are kept under test-artifacts/screenshots/rtl/
for people to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import MINIMAL_REPORT

from .conftest import LiveSite
from .harness import Chromium, chromium_unavailable, layout_problems, screenshot_dir

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(chromium_unavailable()), reason=str(chromium_unavailable())),
]

PHONE = (360, 780)
PAGES = ("/", "/safety", "/key", "/submit", "/follow-up")

# For each visible text field and choice: where its label is, against the field, in pixels.
_SIDES = r"""
const box = (el) => el.getBoundingClientRect();
const shown = (el) => el.getClientRects().length > 0;
const fields = [];
for (const label of document.querySelectorAll('#report-form label[for]')) {
  const control = document.getElementById(label.htmlFor);
  if (!control || !shown(label) || !shown(control) || control.closest('.hp')) continue;
  const l = box(label), c = box(control);
  fields.push({
    name: label.htmlFor, kind: control.type,
    labelLeft: l.left, labelRight: l.right, controlLeft: c.left, controlRight: c.right,
  });
}
// A choice is wrapped in its label: compare its box with the words beside it.
for (const label of document.querySelectorAll('#report-form label.option')) {
  const control = label.querySelector('input');
  const words = Array.from(label.childNodes).filter((n) => n.nodeType === 3 && n.data.trim());
  if (!control || !words.length || !shown(label)) continue;
  const range = document.createRange();
  range.setStartBefore(words[0]);
  range.setEndAfter(words[words.length - 1]);
  const l = range.getBoundingClientRect(), c = box(control);
  fields.push({
    name: control.name + '=' + control.value, kind: control.type,
    labelLeft: l.left, labelRight: l.right, controlLeft: c.left, controlRight: c.right,
  });
}
const legends = [];
for (const legend of document.querySelectorAll('#report-form fieldset > legend')) {
  if (!shown(legend)) continue;
  const l = box(legend), f = box(legend.parentElement);
  legends.push({ text: legend.textContent.trim().slice(0, 30), legendRight: l.right,
                 legendLeft: l.left, fieldsetRight: f.right, fieldsetLeft: f.left });
}
return { fields, legends };
"""


@pytest.fixture(scope="module")
def phone() -> Iterator[Chromium]:
    """Chromium with a 360-pixel-wide window and scripts on, as at Tor Browser's Standard."""
    with Chromium(viewport=PHONE) as browser:
        yield browser


def sides(browser: Chromium) -> dict[str, list[dict[str, Any]]]:
    """Where each label of the report form sits against its field."""
    found: dict[str, list[dict[str, Any]]] = browser.execute(_SIDES)
    assert len(found["fields"]) > 30, found
    assert len(found["legends"]) > 10, found
    return found


def test_arabic_labels_sit_at_the_right_of_their_fields(
    live_site: LiveSite, phone: Chromium
) -> None:
    phone.goto(f"{live_site.url}/ar/submit")
    assert phone.attribute("html", "dir") == "rtl"
    assert phone.attribute("html", "lang") == "ar"
    found = sides(phone)
    for field in found["fields"]:
        if field["kind"] in ("radio", "checkbox"):
            # The box comes first in reading order: at the right, the words to its left.
            assert field["controlLeft"] >= field["labelRight"] - 1, field
        else:
            # A label above its text box starts where the box starts: on the right.
            assert abs(field["labelRight"] - field["controlRight"]) <= 1, field
            # A short box (a month, a number) ends before its label does, on the left.
            short = (
                field["controlRight"] - field["controlLeft"]
                < field["labelRight"] - field["labelLeft"]
            )
            if not short:
                assert field["labelLeft"] >= field["controlLeft"] - 1, field
    for legend in found["legends"]:
        assert abs(legend["legendRight"] - legend["fieldsetRight"]) <= 1, legend
    phone.screenshot(screenshot_dir("rtl") / "ar-submit.png")


def test_english_mirrors_the_same_stylesheet(live_site: LiveSite, phone: Chromium) -> None:
    phone.goto(f"{live_site.url}/en/submit")
    assert phone.attribute("html", "dir") == "ltr"
    for field in sides(phone)["fields"]:
        if field["kind"] in ("radio", "checkbox"):
            assert field["controlRight"] <= field["labelLeft"] + 1, field
        else:
            assert abs(field["labelLeft"] - field["controlLeft"]) <= 1, field


@pytest.mark.parametrize("lang", ["ar", "zh"])
def test_nothing_overflows_a_phone_screen(live_site: LiveSite, phone: Chromium, lang: str) -> None:
    for path in PAGES:
        phone.goto(f"{live_site.url}/{lang}{path}")
        assert layout_problems(phone) == [], f"/{lang}{path}"
    phone.goto(f"{live_site.url}/{lang}/submit")
    phone.screenshot(screenshot_dir("rtl") / f"{lang}-submit.png")
    phone.goto(f"{live_site.url}/")
    assert layout_problems(phone) == [], "the language chooser"
    if lang == "ar":
        phone.screenshot(screenshot_dir("rtl") / "chooser.png")


def test_arabic_problems_and_receipt_fit_and_read_left_to_right(live_site: LiveSite) -> None:
    # Without scripts, as at Safest: the server's own pages for a form with problems and a receipt.
    with Chromium(viewport=PHONE, javascript_enabled=False) as browser:
        browser.goto(f"{live_site.url}/ar/submit")
        browser.click("#report-form button[type=submit]")
        browser.wait_for(".error-summary")
        assert layout_problems(browser) == []
        browser.screenshot(screenshot_dir("rtl") / "ar-submit-problems.png")
        for name, value in MINIMAL_REPORT.items():
            if name == "description":
                browser.fill("#description", "مُنعت من السفر بعد حديثي أمام مجلس حقوق الإنسان.")
            else:
                browser.check(f"input[name={name}][value={value}]")
        browser.submit_and_wait("#report-form button[type=submit]")
        browser.wait_for(".receipt-number")
        assert layout_problems(browser) == []
        style = browser.execute(
            "const s = getComputedStyle(document.querySelector('.receipt-number'));"
            "return [s.direction, s.unicodeBidi];"
        )
        assert style == ["ltr", "isolate"]
        receipt = browser.text(".receipt-number code")
        assert receipt.replace(" ", "").isascii()
        assert len(receipt.split()) == 5
        # The groups are laid out left to right: the first group is the leftmost.
        lefts = browser.execute(
            "const code = document.querySelector('.receipt-number code');"
            "const range = document.createRange(); const text = code.firstChild;"
            "return [0, text.length - 1].map((i) => { range.setStart(text, i);"
            " range.setEnd(text, i + 1); return range.getBoundingClientRect().left; });"
        )
        assert lefts[0] < lefts[1]
        browser.screenshot(screenshot_dir("rtl") / "ar-receipt.png")


def answer(browser: Chromium, choice: str) -> list[str]:
    """Answer the next confirm() with choice ("accept" or "dismiss"); returns its messages."""
    messages: list[str] = []

    def handle(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept() if choice == "accept" else dialog.dismiss()

    browser.page.once("dialog", handle)
    return messages


def test_a_language_link_asks_before_a_filled_form_is_lost(
    live_site: LiveSite, phone: Chromium
) -> None:
    phone.goto(f"{live_site.url}/ar/submit")
    question = phone.execute("return document.getElementById('msg-language-warning').textContent")
    # Nothing typed: the link goes at once.
    phone.click('nav.languages a[hreflang="fr"]')
    phone.page.wait_for_url(f"{live_site.url}/fr/submit")
    phone.goto(f"{live_site.url}/ar/submit")
    phone.fill("#description", "نص مكتوب")
    messages = answer(phone, "dismiss")
    phone.click('nav.languages a[hreflang="en"]')
    assert messages == [question.strip()]
    assert phone.url == f"{live_site.url}/ar/submit"
    assert phone.value("#description") == "نص مكتوب"
    messages = answer(phone, "accept")
    with phone.page.expect_navigation():
        phone.click('nav.languages a[hreflang="en"]')
    assert messages == [question.strip()]
    assert phone.url == f"{live_site.url}/en/submit"


def test_a_language_link_asks_before_a_receipt_is_lost(
    live_site: LiveSite, phone: Chromium
) -> None:
    phone.goto(f"{live_site.url}/zh/submit")
    question = phone.execute("return document.getElementById('msg-language-receipt').textContent")
    phone.fill("#description", "我在人权理事会发言后被禁止出境。")
    for name, value in MINIMAL_REPORT.items():
        if name != "description":
            phone.check(f"input[name={name}][value={value}]")
    phone.click("#report-form button[type=submit]")
    # Sealed in the browser: the receipt replaces the form on the same page.
    phone.wait_for(".receipt-number", timeout=30)
    assert phone.url == f"{live_site.url}/zh/submit"
    messages = answer(phone, "dismiss")
    phone.click('nav.languages a[hreflang="ar"]')
    assert messages == [question.strip()]
    assert phone.is_visible(".receipt-number")
