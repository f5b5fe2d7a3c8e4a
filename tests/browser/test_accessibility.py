"""Accessibility: axe-core finds no WCAG 2.0/2.1 A or AA violation on any page of either site.

Every public page in each of the six languages, and every staff page, is audited in Chromium
with scripts on (Tor Browser's Standard and Safer levels run the sealing script) and with
scripts off (Safest). axe-core comes from the npm registry, pinned in package.json. Pages that
only follow from a form (problems, a receipt, a case, errors) are reached as a person reaches
them: by posting to the real site. The error pages come from small deployments set up to give
them: a store already full (503), a 1 MiB upload limit (413), a report limit already spent (429).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyotp
import pytest
from conftest import MINIMAL_REPORT, receipt_of

from portal.server import accounts

from .conftest import LiveSite, make_deployment, serving
from .harness import (
    REPOSITORY_ROOT,
    Chromium,
    Firefox,
    chromium_unavailable,
    format_violations,
    launch,
    run_axe,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(chromium_unavailable()), reason=str(chromium_unavailable())),
]

LANGUAGES = ("en", "fr", "es", "ru", "ar", "zh")
SPECS = ("chromium-js", "chromium-nojs")
Browser = Firefox | Chromium
AXE = REPOSITORY_ROOT / "node_modules" / "axe-core" / "axe.min.js"
# More than the site's 1 MiB floor for PORTAL_MAX_UPLOAD_BYTES.
TOO_LARGE = 2 * 1024 * 1024


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """axe-core's script as npm installed it from the lockfile."""
    if not AXE.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("axe-core is not installed and npm is missing: apt-get install npm")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=REPOSITORY_ROOT,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return AXE


@pytest.fixture(scope="module", params=SPECS)
def chromium(request: pytest.FixtureRequest) -> Iterator[Chromium]:
    """Chromium with scripts on, then with scripts off: one browser for each, for the module."""
    with launch(request.param) as browser:
        assert isinstance(browser, Chromium)
        yield browser


@contextlib.contextmanager
def serving_trouble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveSite]]:
    """Deployments that answer with the error pages: one full, one with a small upload limit
    and its report limit spent."""
    full = make_deployment(tmp_path_factory.mktemp("full"), PORTAL_STORAGE_QUOTA_BYTES="1")
    strict = make_deployment(
        tmp_path_factory.mktemp("strict"),
        PORTAL_MAX_UPLOAD_BYTES=str(1024 * 1024),
        PORTAL_REPORT_RATE_LIMIT="1 per day",
    )
    with serving("public", full) as full_site, serving("public", strict, rate_limits=True) as s:
        # Spend the one receipt of the day, so the next report is turned away.
        s.app.test_client().post("/en/submit/prepare")
        yield {"full": full_site, "strict": s}


@pytest.fixture(scope="module")
def trouble_sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveSite]]:
    """The deployments that give the error pages, for the module."""
    with serving_trouble(tmp_path_factory) as sites:
        yield sites


# --- Reaching each page ---------------------------------------------------------------------

# A form built and posted by the test: it skips the page's checks and its sealing script, so the
# server answers exactly as it would to that form posted without scripts. Runs in DevTools
# (Chromium) or Marionette's sandbox (Firefox), so it works with the page's scripts off.
_POST = """
const [action, fields] = arguments;
const form = document.createElement('form');
form.method = 'post';
form.enctype = 'multipart/form-data';
form.action = action;
for (const [name, value] of Object.entries(fields)) {
  const input = document.createElement('input');
  input.type = 'hidden';
  input.name = name;
  input.value = value;
  form.append(input);
}
document.body.append(form);
HTMLFormElement.prototype.submit.call(form);
"""
_SUBMIT = "HTMLFormElement.prototype.submit.call(document.querySelector(arguments[0]));"


def navigate_by(browser: Browser, script: str, *args: Any, timeout: float = 30.0) -> None:
    """Run a script that leaves the page, and wait until the next page has loaded."""
    if isinstance(browser, Chromium):
        with browser.page.expect_navigation(wait_until="load", timeout=timeout * 1000):
            browser.execute(script, *args)
        return
    browser.execute("document.documentElement.dataset.left = 'yes';")
    browser.execute(script, *args)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # between two documents
            if browser.execute(
                "return !document.documentElement.dataset.left"
                " && document.readyState === 'complete'"
            ):
                return
        time.sleep(0.05)
    raise TimeoutError(f"no new page loaded after {timeout:.0f} s on {browser.url}")


def post(browser: Browser, url: str, fields: dict[str, str]) -> None:
    """Post fields to url (on the current page's site) as a form would, and wait for the page."""
    navigate_by(browser, _POST, url, fields)


def post_unchecked(browser: Browser, form: str) -> None:
    """Post the page's form as it stands, past its checks and its sealing script."""
    navigate_by(browser, _SUBMIT, form)


def new_receipt(site: LiveSite, lang: str) -> str:
    """A receipt for a new report, sent with the site's test client (no browser needed)."""
    client = site.app.test_client()
    page = client.get(f"/{lang}/submit").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(f"/{lang}/submit", data={**MINIMAL_REPORT, "csrf_token": token})
    assert response.status_code == 200
    return receipt_of(response.get_data(as_text=True))


def fill_minimal_report(browser: Browser) -> None:
    """Answer what a report needs: a description and the three consents."""
    for name, value in MINIMAL_REPORT.items():
        if name == "description":
            browser.fill("#report-form #description", value)
        else:
            browser.check(f"#report-form input[name={name}][value={value}]")


def open_case(browser: Browser, site: LiveSite, lang: str) -> None:
    """Open a case with its receipt, on the follow-up page."""
    browser.goto(f"{site.url}/{lang}/follow-up")
    browser.fill("#receipt", new_receipt(site, lang))
    browser.submit_and_wait("main form button[type=submit]")
    browser.wait_for("#followup-form")


def receipt_page(browser: Browser, site: LiveSite, lang: str) -> None:
    """Send a report from the form: sealed in the browser with scripts, by the server without."""
    browser.goto(f"{site.url}/{lang}/submit")
    fill_minimal_report(browser)
    if browser.javascript_enabled:
        browser.click("#send-report")
    else:
        browser.submit_and_wait("#send-report")
    browser.wait_for(".receipt-number", timeout=30)


def follow_up_done(browser: Browser, site: LiveSite, lang: str) -> None:
    """Add information to a case."""
    open_case(browser, site, lang)
    browser.fill("#followup-form #description", "The ban was extended.")
    if browser.javascript_enabled:
        browser.click("#followup-form button[type=submit]")
        browser.wait_for("main p.protection[data-sealed-by]", timeout=30)
    else:
        browser.submit_and_wait("#followup-form button[type=submit]")


def submit_problems(browser: Browser, site: LiveSite, lang: str) -> None:
    """The report form posted empty: the server names each problem."""
    browser.goto(f"{site.url}/{lang}/submit")
    post_unchecked(browser, "#report-form")
    browser.wait_for(".error-summary")


def submit_checked(browser: Browser, site: LiveSite, lang: str) -> None:
    """The report form sent empty with its send button: with scripts, the page script's own
    problem summary; without, the server's."""
    browser.goto(f"{site.url}/{lang}/submit")
    if browser.javascript_enabled:
        browser.click("#send-report")
    else:
        browser.submit_and_wait("#send-report")
    browser.wait_for(".error-summary")


def case_file_refused(browser: Browser, site: LiveSite, lang: str) -> None:
    """The organisations' upload page after a file that is not a sealed case file."""
    browser.goto(f"{site.url}/{lang}/sealed-case")
    browser.set_files("#case_file", [Path(__file__)])
    browser.submit_and_wait("main form button[type=submit]")
    browser.wait_for("[data-error-message]")


def follow_up_problem(browser: Browser, site: LiveSite, lang: str) -> None:
    """A receipt that opens no case."""
    browser.goto(f"{site.url}/{lang}/follow-up")
    browser.fill("#receipt", "1234")
    browser.submit_and_wait("main form button[type=submit]")
    browser.wait_for("[data-error-message]")


def error(code: int) -> Callable[[Browser, dict[str, LiveSite], str], None]:
    """How to get the error page of this status in a language."""

    def visit(browser: Browser, sites: dict[str, LiveSite], lang: str) -> None:
        if code == 404:
            browser.goto(f"{sites['strict'].url}/{lang}/no-such-page")
            return
        site = sites["full" if code == 503 else "strict"]
        browser.goto(f"{site.url}/{lang}/safety")
        if code == 503:
            post(browser, f"/{lang}/submit", {"description": "x"})
        elif code == 413:
            post(browser, f"/{lang}/follow-up", {"receipt": "1", "padding": "x" * TOO_LARGE})
        else:
            post(browser, f"/{lang}/submit/prepare", {})

    return visit


def limited_report(browser: Browser, sites: dict[str, LiveSite], lang: str) -> None:
    """The report form, when too many reports arrive: everything typed kept, with a notice."""
    browser.goto(f"{sites['strict'].url}/{lang}/safety")
    post(browser, f"/{lang}/submit", {"description": "Kept as typed."})


def path(suffix: str) -> Callable[[Browser, LiveSite, str], None]:
    """A page reached by its address."""

    def visit(browser: Browser, site: LiveSite, lang: str) -> None:
        browser.goto(f"{site.url}/{lang}{suffix}")

    return visit


# Each page of the public site, and how to reach it in a language.
PAGES: dict[str, Callable[[Browser, LiveSite, str], None]] = {
    "index": path("/"),
    "submit": path("/submit"),
    "submit-problems": submit_problems,
    "submit-checked": submit_checked,
    "sealed-case": path("/sealed-case"),
    "sealed-case-refused": case_file_refused,
    "receipt": receipt_page,
    "follow-up": path("/follow-up"),
    "follow-up-problem": follow_up_problem,
    "case": open_case,
    "follow-up-done": follow_up_done,
    "key": path("/key"),
    "safety": path("/safety"),
}
ERROR_PAGES: dict[str, Callable[[Browser, dict[str, LiveSite], str], None]] = {
    "error-404": error(404),
    "error-413": error(413),
    "error-429": error(429),
    "error-503": error(503),
    "submit-limited": limited_report,
}
EXPECTED_STATUS = {"error-404": 404, "error-413": 413, "error-429": 429, "error-503": 503}


def audit(browser: Chromium, axe_script: Path, where: str) -> None:
    """Fail with axe's findings if the current page has any WCAG A or AA violation."""
    violations = run_axe(browser, axe_script)
    assert violations == [], f"{where} ({browser.name}, {browser.url}):\n" + format_violations(
        violations
    )


# --- The public site ------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["chooser", "leave"])
def test_pages_outside_a_language(
    chromium: Chromium, module_site: LiveSite, axe_script: Path, page: str
) -> None:
    chromium.goto(f"{module_site.url}/" + ("" if page == "chooser" else "leave"))
    audit(chromium, axe_script, page)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("page", list(PAGES))
def test_public_page(
    chromium: Chromium, module_site: LiveSite, axe_script: Path, page: str, lang: str
) -> None:
    PAGES[page](chromium, module_site, lang)
    assert chromium.attribute("html", "lang") is not None
    audit(chromium, axe_script, f"{page} in {lang}")


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("page", list(ERROR_PAGES))
def test_public_error_page(
    chromium: Chromium,
    trouble_sites: dict[str, LiveSite],
    axe_script: Path,
    page: str,
    lang: str,
) -> None:
    statuses: list[int] = []

    def keep(response: Any) -> None:
        if response.request.resource_type == "document":
            statuses.append(response.status)

    chromium.page.on("response", keep)
    try:
        ERROR_PAGES[page](chromium, trouble_sites, lang)
    finally:
        chromium.page.remove_listener("response", keep)
    assert statuses[-1:] == [EXPECTED_STATUS.get(page, 429)], (page, statuses)
    audit(chromium, axe_script, f"{page} in {lang}")


@pytest.mark.parametrize("chromium", ["chromium-js"], indirect=True)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_report_while_it_is_sent_and_when_sending_failed(
    chromium: Chromium, module_site: LiveSite, axe_script: Path, lang: str
) -> None:
    # What the sealing script shows: status, progress and the cancel button while the upload
    # hangs, the message while it waits to try again after the connection failed, and the page
    # once cancelled. Scripts off, none of this exists.
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)

    chromium.page.route("**/submit/uploads", hold)
    try:
        chromium.goto(f"{module_site.url}/{lang}/submit")
        fill_minimal_report(chromium)
        chromium.click("#send-report")
        chromium.wait_for("#seal-cancel")
        assert chromium.is_visible("#seal-status")
        audit(chromium, axe_script, f"report being sent in {lang}")
        sending = chromium.text("#seal-status").strip()
        held[0].abort("connectionfailed")
        chromium.page.wait_for_function(
            "said => document.getElementById('seal-status').textContent.trim() !== said",
            arg=sending,
        )
        retrying = (chromium.page.text_content("#seal-msg-retrying") or "").strip()
        assert chromium.text("#seal-status").strip() == retrying
        audit(chromium, axe_script, f"report after a failed connection in {lang}")
        chromium.click("#seal-cancel")
        chromium.wait_for("#report-form:not([aria-busy])", visible=False)
        assert chromium.text("#seal-status").strip()
    finally:
        chromium.page.unroute("**/submit/uploads")


# --- The staff site -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def staff_site(module_deployment: dict[str, str], module_site: LiveSite) -> Iterator[LiveSite]:
    """The staff site of the module's deployment, with reports on it to list."""
    for lang in ("en", "ar"):
        new_receipt(module_site, lang)
    with serving("staff", module_deployment) as site:
        yield site


@pytest.fixture(scope="module")
def signed_in(chromium: Chromium, staff_site: LiveSite) -> Chromium:
    """The module's Chromium signed in to the staff site, with an account of its own."""
    # Each browser gets its own account: signing in ends any other session of the account.
    with staff_site.app.extensions["portal"].sessions() as db:
        made = accounts.create(db, f"axe-{chromium.name}", date.today())
        db.commit()
    chromium.goto(f"{staff_site.url}/login")
    chromium.fill("#name", made.name)
    chromium.fill("#passphrase", made.passphrase)
    chromium.fill("#code", pyotp.TOTP(made.totp_secret).now())
    chromium.submit_and_wait("main form button[type=submit]")
    assert chromium.url == f"{staff_site.url}/", chromium.text("main")
    return chromium


def _delete_confirmation(browser: Browser, site: LiveSite) -> None:
    browser.goto(f"{site.url}/")
    browser.check("input[name=ids]")
    browser.submit_and_wait("button[formaction$='/delete']")


def _reply_problem(browser: Browser, site: LiveSite) -> None:
    browser.goto(f"{site.url}/reply")
    post_unchecked(browser, "main form")


def _expired_form(browser: Browser, site: LiveSite) -> None:
    browser.goto(f"{site.url}/audit")
    post(browser, "/delete", {"csrf_token": "expired", "ids": "none"})


STAFF_PAGES: dict[str, Callable[[Browser, LiveSite], None]] = {
    "submissions": lambda b, s: b.goto(f"{s.url}/"),
    "submissions-selected": lambda b, s: b.goto(f"{s.url}/?select=all"),
    "delete-confirmation": _delete_confirmation,
    "audit-log": lambda b, s: b.goto(f"{s.url}/audit"),
    "reply-upload": lambda b, s: b.goto(f"{s.url}/reply"),
    "reply-problem": _reply_problem,
    "error-404": lambda b, s: b.goto(f"{s.url}/no-such-page"),
    "form-expired": _expired_form,
}


@pytest.mark.parametrize("page", list(STAFF_PAGES))
def test_staff_page(signed_in: Chromium, staff_site: LiveSite, axe_script: Path, page: str) -> None:
    STAFF_PAGES[page](signed_in, staff_site)
    audit(signed_in, axe_script, f"staff {page}")


@pytest.mark.parametrize("page", ["login", "login-refused", "login-ended"])
def test_staff_sign_in_page(
    chromium: Chromium, staff_site: LiveSite, axe_script: Path, page: str
) -> None:
    # A context of its own: a refused sign-in must not end the module browser's session.
    browser = chromium.page.context.browser
    assert browser is not None
    context = browser.new_context(java_script_enabled=chromium.javascript_enabled)
    try:
        other = context.new_page()
        suffix = "/login?ended=1" if page == "login-ended" else "/login"
        other.goto(f"{staff_site.url}{suffix}")
        if page == "login-refused":
            other.fill("#name", "nobody")
            other.fill("#passphrase", "not the passphrase")
            other.fill("#code", "000000")
            with other.expect_navigation(wait_until="load"):
                other.click("main form button[type=submit]")
            assert other.locator("[role=alert]").count() == 1
        violations = run_axe(other, axe_script)
        assert violations == [], f"staff {page} ({chromium.name}):\n" + format_violations(
            violations
        )
    finally:
        context.close()
