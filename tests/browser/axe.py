"""Accessibility (axe-core) and layout checks run in a page of either browser."""

from __future__ import annotations

import contextlib
import os
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import CDPSession, Page

from .chromium import Chromium
from .firefox import Firefox
from .levels import WCAG_TAGS

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
