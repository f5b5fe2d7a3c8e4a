"""A submitter's whole journey in a real browser, at each of Tor Browser's security levels.

Firefox ESR at Tor Browser's Standard, Safer and Safest levels, and Chromium with scripts on and
off, read the landing page and the key page, fill in every kind of question of the report form
with a marker in each answer, attach two files, send, keep the receipt, come back with it, read
the team's reply and add more information with another file.

Where scripts run (Standard, Safer), the report is sealed in the browser: no marker, typed or
attached, is in any request body the server received. At Safest the server seals on arrival,
and says so. Either way `portal export` then `portal decrypt` with the team's private key gives
back every answer and every attached byte exactly as typed and chosen. A 20 MiB attachment
makes the same round trip sealed in the browser, and the report form can be completed with the
keyboard alone where no script runs.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import MINIMAL_REPORT, TeamKeys

from portal.cli import main
from portal.formats import bundle, crypto, questionnaire, receipts, territories
from portal.formats.fields import COUNT, MONTH, RADIO, SELECT, TEXT, TEXTAREA
from portal.server import replies
from portal.server.models import Submission

from .conftest import LiveSite
from .harness import Chromium, Firefox, screenshot_dir

pytestmark = pytest.mark.browser

SCRIPTS_ON = ("firefox-standard", "firefox-safer", "chromium-standard")
SCRIPTS_OFF = ("firefox-safest", "chromium-safest")
ALL_LEVELS = (*SCRIPTS_ON, *SCRIPTS_OFF)
RECEIPT = ".receipt-number code"
CASE_PAGE = "#followup-form"
DONE_PAGE = "[data-sealed-by]"
# What a browser-sealed upload may take on a slow machine; a form post is quicker.
SEND_TIMEOUT = 120.0
# The part of a follow-up form post that adds information (opening the case has step=open).
ADD_STEP = b'name="step"\r\n\r\nadd'

Answers = dict[str, "str | list[str]"]


def levels(*names: str) -> pytest.MarkDecorator:
    """Run a test in the browser of each named level (ids show browser and level)."""
    return pytest.mark.parametrize("browser", names, indirect=True)


def scripts_run(browser: Firefox | Chromium) -> bool:
    """Whether the page's own scripts run in this browser (Standard and Safer)."""
    return browser.javascript_enabled


# --- What the submitter types and attaches ------------------------------------------------------


def report_answers(marker: str) -> Answers:
    """An answer to every question of the report form, each text holding its own marker.

    The choices open every conditional question: an urgent case sent by a relative for a person
    who cannot be asked, "other" in every list that has it, and contact through another channel
    (so the channel is asked).
    """
    answers: Answers = {}
    for spec in questionnaire.REPORT_FIELDS:
        if spec.kind == SELECT:
            answers[spec.name] = "KE" if spec.name == "country" else "UG"
        elif spec.kind == MONTH:
            answers[spec.name] = "2025-03"
        elif spec.kind == COUNT:
            answers[spec.name] = "12"
        elif spec.kind == TEXT:
            answers[spec.name] = f"{marker}-{spec.name} ünïcode 报复 «quoted»"
        elif spec.kind == TEXTAREA:
            answers[spec.name] = f"{marker}-{spec.name} first line\nsecond line: مرحبا"
        elif spec.kind == RADIO:
            answers[spec.name] = spec.choices[-1][0]
        else:
            answers[spec.name] = [spec.choices[0][0], spec.choices[-1][0]]
    answers.update(
        urgent="yes",
        submitter_role="relative",
        consent_of="person_not_reachable",
        group_women="5",
        consent_raise="no",
        consent_report="anonymous",
        consent_contact="other_channel",
    )
    return answers


def text_markers(marker: str, answers: Answers) -> list[str]:
    """The marker of every text answer (what must never reach the server in the clear)."""
    return [
        f"{marker}-{name}"
        for name in answers
        if questionnaire.FIELDS_BY_NAME[name].kind in (TEXT, TEXTAREA)
    ]


@dataclass(frozen=True)
class Attachment:
    """A file the submitter attaches."""

    path: Path
    data: bytes
    marker: str
    type: str

    @property
    def name(self) -> str:
        """The file's name as the browser sends it."""
        return self.path.name


def attachment(folder: Path, name: str, size: int, marker: str, type_: str) -> Attachment:
    """Random bytes of about `size` with the marker inside, written to folder/name."""
    half = max(size - len(marker), 0) // 2
    data = os.urandom(half) + marker.encode() + os.urandom(size - half - len(marker))
    path = folder / name
    path.write_bytes(data)
    return Attachment(path, data, marker, type_)


def plaintext_samples(files: Sequence[Attachment]) -> list[bytes]:
    """Pieces of each attachment (start, middle, end) that no sealed upload may contain."""
    samples = []
    for item in files:
        data = item.data
        samples += [data[:4096], data[len(data) // 2 - 2048 : len(data) // 2 + 2048], data[-4096:]]
    return [s for s in samples if len(s) >= 64]


# --- Driving the pages --------------------------------------------------------------------------


def fill_answers(browser: Firefox | Chromium, answers: Answers) -> None:
    """Type every text and choose every choice, as a person would."""
    for name, value in answers.items():
        if isinstance(value, list):
            for item in value:
                browser.check(f'input[name="{name}"][value="{item}"]')
        elif questionnaire.FIELDS_BY_NAME[name].kind == RADIO:
            browser.check(f'input[name="{name}"][value="{value}"]')
        elif questionnaire.FIELDS_BY_NAME[name].kind == SELECT:
            browser.select(f"#{name}", value)
        else:
            browser.fill(f"#{name}", value)


def send(browser: Firefox | Chromium, button: str, wait_for: str) -> None:
    """Press a form's send button and wait for what the next page shows."""
    browser.submit_and_wait(button, wait_for=wait_for, timeout=SEND_TIMEOUT)


PROTECTION_WORDS = {
    "browser": "Sealed in your browser",
    "server": "Sealed on arrival at the server",
}


def sealed_by(browser: Firefox | Chromium) -> str | None:
    """Which protection the page says was applied ("browser" or "server"), checked against
    what it tells the submitter in words."""
    found = browser.attribute(DONE_PAGE, "data-sealed-by")
    if found in PROTECTION_WORDS:
        assert browser.text(DONE_PAGE).startswith(PROTECTION_WORDS[found])
    return found


def posts(site: LiveSite, path: str) -> list[bytes]:
    """The bodies of every POST to path the site received."""
    return [r.body for r in site.recorder.records() if r.method == "POST" and r.path == path]


def sealed_upload(site: LiveSite, start: str) -> bytes:
    """What one browser-sealed upload sent: its creation (with the sealed manifest) under
    `start` (`/en/submit`, `/en/follow-up`), then every part, in order."""
    records = site.recorder.records()
    created = [r.body for r in records if r.method == "POST" and r.path == f"{start}/uploads"]
    assert len(created) == 1, f"{len(created)} uploads begun"
    return created[0] + b"".join(r.body for r in records if r.method == "PATCH")


def assert_never_sent(site: LiveSite, secrets_: Sequence[str], samples: Sequence[bytes]) -> None:
    """No marker (as UTF-8) and no piece of an attachment is in any body the server received."""
    leaked = [m for m in secrets_ if site.recorder.contains(m.encode())]
    assert not leaked, f"markers sent in the clear: {leaked}"
    assert not any(site.recorder.contains(s) for s in samples), "attachment bytes sent in clear"


# --- The offline side ---------------------------------------------------------------------------


@dataclass
class Offline:
    """The team's offline machine: bundles exported from the server, opened with the key."""

    runner: CliRunner
    team_keys: TeamKeys
    folder: Path
    bundles: int = 0
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def opened(self) -> Path:
        """The folder of case folders `portal decrypt` writes."""
        return self.folder / "opened"

    def export_and_decrypt(self) -> list[dict[str, Any]]:
        """`portal export` of what is new, then `portal decrypt`; the opened records in bundle
        order, each with its attachments' bytes by name."""
        self.bundles += 1
        path = self.folder / f"export-{self.bundles}.tar"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._portal("export", "--out", str(path))
        self._portal(*self._key_options("decrypt"), "--out", str(self.opened), str(path))
        with bundle.Reader(path) as reader:
            order = [e.id for e in reader.entries if e.recipient != "submitter"]
        for found in self.opened.rglob("report.json"):
            record = json.loads(found.read_text(encoding="utf-8"))
            record["folder"] = found.parent
            record["attachments"] = {
                item["name"]: (found.parent / item["saved_as"]).read_bytes()
                for item in record["files"]
            }
            self.records[record["id"]] = record
        return [self.records[i] for i in order]

    def reply(self, site: LiveSite, case_folder: Path, message: str) -> None:
        """`portal reply` to a case, then the reply file stored as the staff site stores it."""
        path = self.folder / f"reply-{secrets.token_hex(4)}.tar"
        self._portal(
            *self._key_options("reply"),
            "--case",
            str(case_folder),
            "--out",
            str(path),
            "--message",
            message,
        )
        services = site.app.extensions["portal"]
        with services.sessions() as session:
            replies.accept(services, session, path, "journey-test")

    def _key_options(self, command: str) -> list[str]:
        return [
            command,
            "--key",
            str(self.team_keys.private_path),
            "--passphrase-file",
            str(self.team_keys.passphrase_path),
        ]

    def _portal(self, *arguments: str) -> None:
        result = self.runner.invoke(main, list(arguments))
        assert result.exit_code == 0, f"portal {arguments[0]}: {result.output}"


@pytest.fixture
def offline(runner: CliRunner, team_keys: TeamKeys, tmp_path: Path) -> Offline:
    """The offline machine of the test deployment."""
    return Offline(runner, team_keys, tmp_path / "offline")


def assert_files_came_back(record: dict[str, Any], files: Sequence[Attachment]) -> None:
    """Every attachment of a record, by name, type, size and byte for byte."""
    assert [(f["name"], f["size"]) for f in record["files"]] == [
        (item.name, len(item.data)) for item in files
    ]
    assert [f["type"] for f in record["files"]] == [item.type for item in files]
    for item in files:
        assert record["attachments"][item.name] == item.data, f"{item.name} differs"


# --- The journey --------------------------------------------------------------------------------


@levels(*ALL_LEVELS)
def test_journey(
    browser: Firefox | Chromium, live_site: LiveSite, offline: Offline, tmp_path: Path
) -> None:
    """Landing, key, report, receipt, reply read, follow-up: sealed where it should be, whole
    after export and decrypt."""
    level = browser.name
    shots = screenshot_dir(f"journeys/{level}")
    sealing = "browser" if scripts_run(browser) else "server"
    site = live_site.url
    marker = f"MARK{secrets.token_hex(6)}"
    fingerprint = live_site.app.extensions["portal"].team_fingerprint

    browser.goto(f"{site}/en/")
    assert "United Nations" in browser.text("h1")
    assert browser.text("code.fingerprint") == fingerprint
    browser.goto(f"{site}/en/key")
    assert browser.text("#server-fingerprint") == fingerprint

    answers = report_answers(marker)
    files = [
        attachment(tmp_path, "evidence.bin", 1 << 20, f"{marker}-big", "application/octet-stream"),
        attachment(tmp_path, f"{marker}-note.txt", 3000, f"{marker}-small", "text/plain"),
    ]
    browser.goto(f"{site}/en/submit")
    fill_answers(browser, answers)
    browser.set_files("#attachments", [f.path for f in files])
    browser.screenshot(shots / "report-filled.png")
    send(browser, "#send-report", RECEIPT)
    receipt = browser.text(RECEIPT)
    assert len(receipt.replace(" ", "")) == 25, receipt
    assert sealed_by(browser) == sealing
    browser.screenshot(shots / "receipt.png", full_page=False)

    secret_texts = [*text_markers(marker, answers), *(f.marker for f in files)]
    if sealing == "browser":
        assert not posts(live_site, "/en/submit"), "the form was posted in the clear"
        upload = sealed_upload(live_site, "/en/submit")
        # The recording holds the whole upload, so finding nothing in it means something.
        assert len(upload) > sum(len(f.data) for f in files)
        assert_never_sent(live_site, [*secret_texts, files[1].name], plaintext_samples(files))
    else:
        [body] = posts(live_site, "/en/submit")
        assert marker.encode() in body
        assert files[0].data in body

    # Offline: the report opens whole; the team answers it.
    [report] = offline.export_and_decrypt()
    assert (report["kind"], report["sealed_by"], report["locale"]) == ("report", sealing, "en")
    assert report["fields"] == answers
    assert_files_came_back(report, files)
    # The reply key was sealed in the manifest, in the browser too, and the receipt derives it:
    # a key swapped in the bundle's index could not redirect the team's replies.
    services = live_site.app.extensions["portal"]
    derived = receipts.derive(
        receipt, services.installation_secret, *services.config.receipt_limits
    )
    assert report["reply_public_key_from"] == "manifest"
    assert report["reply_public_key"] == crypto.b64encode(derived.reply_public_key)
    if sealing == "browser":
        # The receipt was made before sealing, and travelled only inside the ticket.
        assert len(posts(live_site, "/en/submit/prepare")) == 1
        assert b'name="ticket"' in posts(live_site, "/en/submit/uploads")[0]
        assert not live_site.recorder.contains(receipt.replace(" ", "").encode())
    reply_text = f"Reply {marker}: thank you. Could you say more about the travel ban? — شكرا"
    offline.reply(live_site, report["folder"], reply_text)

    # The submitter comes back with the receipt, reads the reply and adds information.
    live_site.recorder.clear()
    browser.goto(f"{site}/en/follow-up")
    browser.fill("#receipt", receipt)
    send(browser, "button[type=submit]", CASE_PAGE)
    assert browser.count(".reply .message") == 1
    assert browser.text(".reply .message").strip() == reply_text
    more = f"{marker}-followup New information, ünïcode 报复\nsecond line"
    later = attachment(
        tmp_path, "later.bin", 200_000, f"{marker}-later", "application/octet-stream"
    )
    browser.fill("#description", more)
    browser.set_files("#attachments", [later.path])
    send(browser, "#followup-form button[type=submit]", DONE_PAGE)
    assert sealed_by(browser) == sealing
    browser.screenshot(shots / "follow-up-done.png", full_page=False)
    if sealing == "browser":
        upload = sealed_upload(live_site, "/en/follow-up")
        assert len(upload) > len(later.data)
        assert not [body for body in posts(live_site, "/en/follow-up") if ADD_STEP in body]
        assert_never_sent(
            live_site, [f"{marker}-followup", later.marker], plaintext_samples([later])
        )
    else:
        added = [body for body in posts(live_site, "/en/follow-up") if ADD_STEP in body]
        assert len(added) == 1
        assert f"{marker}-followup".encode() in added[0]

    # Offline again: the follow-up sits in the case folder; the team's copy of the reply too.
    opened = offline.export_and_decrypt()
    assert sorted(r["kind"] for r in opened) == ["follow-up", "reply"]
    [follow_up] = [r for r in opened if r["kind"] == "follow-up"]
    [team_copy] = [r for r in opened if r["kind"] == "reply"]
    assert follow_up["case"] == report["case"] == team_copy["case"]
    assert follow_up["folder"].parent == report["folder"]
    assert follow_up["sealed_by"] == sealing
    assert follow_up["fields"] == {"description": more}
    assert_files_came_back(follow_up, [later])
    assert team_copy["fields"] == {"message": reply_text}


FIREFOX_LEVELS = ("firefox-standard", "firefox-safer", "firefox-safest")


@levels(*FIREFOX_LEVELS)
@pytest.mark.parametrize("lang", ["en", "ar", "zh"])
def test_an_urgent_case_sent_by_a_relative(
    browser: Firefox | Chromium, live_site: LiveSite, offline: Offline, lang: str
) -> None:
    """The whole new form in English, Arabic and Chinese at Tor Browser's three levels: an
    urgent case sent by a relative for a person who cannot be asked. The receipt says what to
    expect; offline, every new answer is there and report.txt says URGENT first."""
    marker = f"MARK{secrets.token_hex(6)}"
    answers = report_answers(marker)
    browser.goto(f"{live_site.url}/{lang}/submit")
    fill_answers(browser, answers)
    browser.screenshot(screenshot_dir(f"journeys/{browser.name}") / f"urgent-{lang}.png")
    send(browser, "#send-report", RECEIPT)
    assert browser.is_visible("#urgent-note"), "the receipt says nothing of the urgency"
    sealing = "browser" if scripts_run(browser) else "server"
    assert browser.attribute(DONE_PAGE, "data-sealed-by") == sealing

    [report] = offline.export_and_decrypt()
    assert (report["locale"], report["sealed_by"]) == (lang, sealing)
    assert report["fields"] == answers
    new = ("urgent", "urgent_details", "consent_of", "consent_share_un", "country",
           "state_responsible", "incident_from", "incident_to", "cooperation_from",
           "group_size", "group_women", "earlier_reference")  # fmt: skip
    assert all(report["fields"].get(name) for name in new)
    text = (report["folder"] / "report.txt").read_text(encoding="utf-8")
    assert text.splitlines()[2] == "URGENT:      someone is in immediate danger"
    assert "Kenya [KE]" in text
    assert "Uganda [UG]" in text


@levels("firefox-standard", "firefox-safest", "chromium-standard")
def test_answers_that_contradict_each_other_are_asked_about_before_anything_is_sent(
    browser: Firefox | Chromium, live_site: LiveSite
) -> None:
    """More women than people in the group, and an end before the start: with scripts the
    page's own check, without them the server's, says so in the page's language; both keep
    what was typed, and nothing is stored."""
    answers: Answers = {
        **MINIMAL_REPORT,
        "group_size": "3",
        "group_women": "5",
        "incident_from": "2025-06",
        "incident_to": "2025-01",
    }
    browser.goto(f"{live_site.url}/fr/submit")
    fill_answers(browser, answers)
    if scripts_run(browser):
        browser.click("#send-report")
    else:
        browser.submit_and_wait("#send-report")
    browser.wait_for(".error-summary")
    assert "plus que le nombre de personnes du groupe" in browser.text("#group_women-error")
    assert "avant le mois où cela a commencé" in browser.text("#incident_to-error")
    assert browser.value("#group_women") == "5"
    assert browser.value("#incident_to") == "2025-01"
    with live_site.app.extensions["portal"].sessions() as session:
        assert session.query(Submission).count() == 0


@levels(*ALL_LEVELS)
def test_the_key_page_shows_the_key_the_script_seals_to(
    browser: Firefox | Chromium, live_site: LiveSite, sealing_script: Path
) -> None:
    """Beside the server's fingerprint, the script shows that of the key it seals to (where it
    runs); without scripts only the server's is there."""
    fingerprint = live_site.app.extensions["portal"].team_fingerprint
    browser.goto(f"{live_site.url}/en/key")
    assert browser.text("#server-fingerprint") == fingerprint
    if not scripts_run(browser):
        assert not browser.is_visible("#script-fingerprint-line")
        return
    browser.wait_for("#script-fingerprint-line", 10)
    assert browser.text("#script-fingerprint") == fingerprint


# --- A large attachment, sealed in the browser --------------------------------------------------


@levels("firefox-safer", "chromium-standard")
def test_a_20_mib_attachment_is_sealed_in_the_browser_and_comes_back_whole(
    browser: Firefox | Chromium, live_site: LiveSite, offline: Offline, tmp_path: Path
) -> None:
    """At Safer (no JIT) and Standard, 20 MiB are sealed before they leave; no marker and no
    piece of the file reaches the server; export and decrypt give every byte back."""
    marker = f"MARK{secrets.token_hex(6)}"
    answers: Answers = {
        "description": f"{marker}-description A recording of the threats.",
        "consent_of": "self",
        "consent_raise": "yes",
        "consent_report": "no",
        "consent_share_un": "no",
        "consent_contact": "portal",
    }
    big = attachment(
        tmp_path, "recording.bin", 20 << 20, f"{marker}-big", "application/octet-stream"
    )
    browser.goto(f"{live_site.url}/en/submit")
    fill_answers(browser, answers)
    browser.set_files("#attachments", [big.path])
    started = time.monotonic()
    send(browser, "#send-report", RECEIPT)
    seconds = time.monotonic() - started
    assert sealed_by(browser) == "browser"
    assert not posts(live_site, "/en/submit")
    upload = sealed_upload(live_site, "/en/submit")
    assert len(upload) > len(big.data)
    assert_never_sent(live_site, [f"{marker}-description", big.marker], plaintext_samples([big]))

    [report] = offline.export_and_decrypt()
    assert report["sealed_by"] == "browser"
    assert report["fields"] == answers
    assert_files_came_back(report, [big])
    print(f"{browser.name}: 20 MiB sealed and sent in {seconds:.1f} s")


# --- The keyboard alone -------------------------------------------------------------------------

_FOCUSED = """
const e = document.activeElement;
if (!e || e === document.body) return null;
return {tag: e.tagName.toLowerCase(), type: e.type || '', name: e.getAttribute('name') || '',
        id: e.id || '',
        value: e.value || '', checked: !!e.checked, form: e.form ? e.form.id : ''};
"""
# Playwright's names for the keys, and WebDriver's code points for them.
WEBDRIVER_KEYS = {
    "Tab": "\ue004",
    "Enter": "\ue007",
    "Space": "\ue00d",
    "ArrowDown": "\ue015",
}


class Keyboard:
    """Key presses and typing through the browser's own input events, nothing else."""

    def __init__(self, browser: Firefox | Chromium) -> None:
        """Drive the keyboard of this browser."""
        self.browser = browser

    def press(self, key: str) -> None:
        """Press and release one key (Tab, Enter, Space, ArrowDown)."""
        if isinstance(self.browser, Chromium):
            self.browser.page.keyboard.press(key)
            return
        code = WEBDRIVER_KEYS[key]
        sequence = self.browser.marionette.actions.sequence("key", "keyboard")
        sequence.key_down(code).key_up(code).perform()

    def type(self, text: str) -> None:
        """Type text key by key; a line break is the Enter key."""
        if isinstance(self.browser, Chromium):
            self.browser.page.keyboard.type(text)
            return
        sequence = self.browser.marionette.actions.sequence("key", "keyboard")
        for char in text:
            code = WEBDRIVER_KEYS["Enter"] if char == "\n" else char
            sequence.key_down(code).key_up(code)
        sequence.perform()


def focused(browser: Firefox | Chromium) -> dict[str, Any] | None:
    """What has the keyboard focus (read only: it changes nothing on the page)."""
    found: dict[str, Any] | None = browser.execute(_FOCUSED)
    return found


def keyboard_answers(marker: str) -> Answers:
    """An answer to every question, in plain letters a keyboard types anywhere."""
    answers = report_answers(marker)
    for name in answers:
        if questionnaire.FIELDS_BY_NAME[name].kind == TEXT:
            answers[name] = f"{marker}-{name} typed with keys"
        elif questionnaire.FIELDS_BY_NAME[name].kind == TEXTAREA:
            answers[name] = f"{marker}-{name} first line\nsecond line"
    # The second choice, so that an arrow key is needed to reach it.
    answers["consent_raise"] = "no"
    answers["target_age"] = "30_49"
    return answers


@levels(*SCRIPTS_OFF)
def test_the_report_form_by_keyboard_alone(
    browser: Firefox | Chromium, live_site: LiveSite, offline: Offline
) -> None:
    """Tab, Space, arrow keys and typing complete the whole form; Enter on the button sends it."""
    marker = f"MARK{secrets.token_hex(6)}"
    answers = keyboard_answers(marker)
    keyboard = Keyboard(browser)
    browser.goto(f"{live_site.url}/en/submit")
    answered: set[str] = set()
    for _ in range(500):
        keyboard.press("Tab")
        now = focused(browser)
        if now is None or now["form"] != "report-form":
            continue
        if now["id"] == "send-report":
            break
        name, wanted = now["name"], answers.get(now["name"])
        if wanted is None:
            continue
        if now["type"] == "radio":
            # Tab enters a group with nothing chosen on its first choice; Space chooses it and
            # each arrow key moves to, and chooses, the next.
            choices = [value for value, _label in questionnaire.FIELDS_BY_NAME[name].choices]
            assert now["value"] == choices[0], now
            keyboard.press("Space")
            for _step in range(choices.index(str(wanted))):
                keyboard.press("ArrowDown")
            after = focused(browser)
            assert after is not None
            assert (after["name"], after["value"], after["checked"]) == (name, wanted, True)
        elif now["type"] == "checkbox":
            if now["value"] in wanted:
                keyboard.press("Space")
        elif now["tag"] == "textarea" or now["type"] == "text":
            assert isinstance(wanted, str)
            keyboard.type(wanted)
        elif now["tag"] == "select":
            # Typing a name chooses it, as in any list box.
            keyboard.type(territories.ENGLISH_NAMES[str(wanted)])
            after = focused(browser)
            assert after is not None
            assert after["value"] == wanted, after
        else:
            continue
        answered.add(name)
    else:
        pytest.fail("500 presses of Tab never reached the button that sends the report")
    assert answered == set(answers)
    keyboard.press("Enter")
    browser.wait_for(RECEIPT, SEND_TIMEOUT)
    assert len(browser.text(RECEIPT).replace(" ", "")) == 25
    assert sealed_by(browser) == "server"

    [report] = offline.export_and_decrypt()
    assert report["fields"] == answers
