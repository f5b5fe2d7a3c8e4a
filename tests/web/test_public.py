"""The public site without JavaScript: its pages, the report form, the receipt, the follow-up,
the key, and every kind of bad input coming back as a page that keeps what was typed."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import MINIMAL_REPORT, TeamKeys, csrf_token, receipt_of
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from test_uploads import (
    FilePart,
    assert_nothing_stored,
    error_message,
    post_parts,
    report_parts,
    staging_files,
    stored,
)

from portal import create_app
from portal.cli import main
from portal.formats import bundle, crypto, envelope, questionnaire, receipts
from portal.formats.fields import TEXT, TEXTAREA
from portal.server import cases, storage
from portal.server.models import Case, Submission
from portal.server.services import today
from portal.web import i18n, limits

LANGUAGES = list(i18n.LANGUAGES)
PAGES = ["/", "/submit", "/follow-up", "/key", "/safety"]
ROOT = Path(__file__).resolve().parents[2]
# The ten digits as people in some scripts type them.
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


class Page(HTMLParser):
    """The tags of a page with their attributes, and the text of its inline scripts."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.inline_scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)

    def find(self, tag: str, **wanted: str) -> list[dict[str, str]]:
        """The attributes of every `tag` whose attributes include `wanted`."""
        return [
            attrs
            for name, attrs in self.tags
            if name == tag and all(attrs.get(k.rstrip("_")) == v for k, v in wanted.items())
        ]


def csp(response: object) -> dict[str, str]:
    """The Content-Security-Policy header as directives."""
    header = response.headers["Content-Security-Policy"]  # type: ignore[attr-defined]
    directives = {}
    for item in header.split(";"):
        name, _space, value = item.strip().partition(" ")
        directives[name] = value.strip()
    return directives


def field_value(page: str, name: str) -> str:
    """The value a text input or textarea shows, unescaped."""
    textarea = re.search(rf'<textarea name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    if textarea:
        return html.unescape(textarea.group(1))
    found = re.search(rf'<input type="text" name="{name}"[^>]*value="([^"]*)"', page)
    assert found, f"no field {name}"
    return html.unescape(found.group(1))


def all_pages(client: FlaskClient) -> Iterator[tuple[str, str]]:
    """Every page of the no-JavaScript path, in every language, as (path, html)."""
    for path in ("/", "/leave"):
        yield path, client.get(path).get_data(as_text=True)
    for lang in LANGUAGES:
        for page in PAGES:
            path = f"/{lang}{page}"
            yield path, client.get(path).get_data(as_text=True)


def submit(client: FlaskClient, fields: dict[str, str] | None = None) -> str:
    """Send a minimal report and return its receipt."""
    response = client.post(
        "/en/submit", data={**MINIMAL_REPORT, **(fields or {}), "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 200, error_message(response.get_data(as_text=True))
    return receipt_of(response.get_data(as_text=True))


# ---------------------------------------------------------------------------------------------
# Pages


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_is_under_every_language_prefix(client: FlaskClient, lang: str) -> None:
    for page in PAGES:
        response = client.get(f"/{lang}{page}")
        assert response.status_code == 200, page
        tags = Page(response.get_data(as_text=True))
        assert tags.find("html")[0]["lang"].split("-")[0] == lang
        assert tags.find("html")[0]["dir"] == ("rtl" if lang == "ar" else "ltr")


def test_the_root_offers_the_six_languages(client: FlaskClient) -> None:
    page = Page(client.get("/").get_data(as_text=True))
    links = {a["href"] for a in page.find("a") if "hreflang" in a}
    assert links == {f"/{lang}/" for lang in LANGUAGES}


@pytest.mark.parametrize("path", ["/de/submit", "/EN/submit", "/en/nothing", "/submit"])
def test_other_addresses_are_a_404_page(client: FlaskClient, path: str) -> None:
    response = client.get(path, follow_redirects=True)
    assert response.status_code == 404
    assert "data-error-message" in response.get_data(as_text=True)


def test_no_page_runs_or_needs_javascript(client: FlaskClient) -> None:
    for path, text in all_pages(client):
        page = Page(text)
        assert page.inline_scripts == [], path
        for tag, attrs in page.tags:
            assert not [a for a in attrs if a.startswith("on")], (path, tag)
            assert not any(v.strip().lower().startswith("javascript:") for v in attrs.values())
        # The one script is the self-hosted sealing script, deferred and pinned by its hash:
        # progressive enhancement of a form that works without it.
        for script in page.find("script"):
            assert script["src"] == "/static/portal.js", path
            assert "defer" in script
            assert script["integrity"].startswith("sha384-")
        for form in page.find("form"):
            assert form["method"] == "post", path
            assert form["action"].startswith("/"), path


def test_the_form_pages_load_the_sealing_script_and_allow_it(client: FlaskClient) -> None:
    response = client.get("/en/submit")
    page = Page(response.get_data(as_text=True))
    assert len(page.find("script")) == 1
    policy = csp(response)
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    (form,) = page.find("form", id="report-form")
    assert form["enctype"] == "multipart/form-data"
    assert form["action"] == "/en/submit"
    assert form["data-sealed-action"] == "/en/submit/sealed"
    assert form["data-kind"] == "report"
    assert form["data-locale"] == "en"


def test_pages_without_the_script_allow_no_script(client: FlaskClient) -> None:
    for path in ("/", "/en/", "/en/safety", "/en/follow-up"):
        response = client.get(path)
        assert "script-src" not in csp(response), path
        assert not Page(response.get_data(as_text=True)).find("script")


def test_the_policy_of_every_page_allows_nothing_from_elsewhere(client: FlaskClient) -> None:
    for lang in LANGUAGES:
        for page in PAGES:
            policy = csp(client.get(f"/{lang}{page}"))
            assert policy["default-src"] == "'none'"
            assert policy["style-src"] == "'self'"
            assert policy["form-action"] == "'self'"
            assert policy["frame-ancestors"] == "'none'"
            assert policy["base-uri"] == "'none'"
            for value in policy.values():
                assert "unsafe" not in value
                assert "http" not in value


def test_no_page_loads_anything_from_another_site(client: FlaskClient) -> None:
    for path, text in all_pages(client):
        for _tag, attrs in Page(text).tags:
            for name in ("src", "href", "action", "data", "poster", "srcset"):
                value = attrs.get(name)
                if value is None:
                    continue
                assert value.startswith(("/", "#", "data:,")), (path, name, value)
                assert not value.startswith("//"), (path, name, value)


def test_the_stylesheet_uses_no_web_font_and_nothing_from_elsewhere() -> None:
    css = (ROOT / "portal" / "static" / "portal.css").read_text(encoding="utf-8")
    assert "@font-face" not in css
    assert "@import" not in css
    assert "url(" not in css


def test_a_cold_load_of_the_form_is_the_page_and_one_stylesheet(client: FlaskClient) -> None:
    response = client.get("/en/submit")
    page = Page(response.get_data(as_text=True))
    # What a browser without JavaScript fetches: stylesheets, images, frames, objects. The
    # icon is an empty data: URL, so no request for /favicon.ico either.
    fetched = [link["href"] for link in page.find("link") if link.get("rel") == "stylesheet"]
    fetched += [tag["src"] for name, tag in page.tags if name in ("img", "iframe", "embed")]
    fetched += [tag["data"] for name, tag in page.tags if name == "object"]
    assert fetched == ["/static/portal.css"]
    assert [link["href"] for link in page.find("link", rel="icon")] == ["data:,"]
    with client.get("/static/portal.css") as css:
        assert css.status_code == 200
        # Two lists of the 250 ISO 3166 territories (the country and the State responsible)
        # take about 14 KB of it; the rest is the questions.
        assert len(response.data) + len(css.data) <= 56 * 1024


def test_the_key_page_shows_the_fingerprint_and_offers_the_key_file(
    client: FlaskClient, team_keys: TeamKeys
) -> None:
    text = client.get("/en/key").get_data(as_text=True)
    assert crypto.fingerprint(team_keys.public_key) in text
    page = Page(text)
    (link,) = [a for a in page.find("a") if a["href"] == "/en/key/team.pub"]
    assert "download" in link
    response = client.get("/en/key/team.pub")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment; filename=team.pub"
    assert response.mimetype == "text/plain"
    assert crypto.parse_public_key_file(response.get_data(as_text=True)) == team_keys.public_key


def test_the_landing_page_shows_the_fingerprint(client: FlaskClient, team_keys: TeamKeys) -> None:
    assert crypto.fingerprint(team_keys.public_key) in client.get("/en/").get_data(as_text=True)


# ---------------------------------------------------------------------------------------------
# The report form


def test_a_report_needs_only_the_description_and_the_consent_answers(
    app: Flask, client: FlaskClient
) -> None:
    assert {f.name for f in questionnaire.REPORT_FIELDS if f.required} == set(MINIMAL_REPORT)
    page = Page(client.get("/en/submit").get_data(as_text=True))
    names = {attrs["name"] for tag, attrs in page.tags if "name" in attrs and tag != "meta"}
    assert {f.name for f in questionnaire.REPORT_FIELDS} <= names
    assert "website" in names  # the honeypot
    submit(client)
    with app.extensions["portal"].sessions() as session:
        submission = session.scalars(select(Submission)).one()
    assert (submission.kind, submission.sealed_by, submission.source) == (
        "report",
        "server",
        "form",
    )
    assert submission.received_day == today()


@pytest.mark.parametrize("missing", sorted(MINIMAL_REPORT))
def test_a_missing_required_answer_is_named_next_to_its_field(
    app: Flask, client: FlaskClient, missing: str
) -> None:
    data = {k: v for k, v in MINIMAL_REPORT.items() if k != missing}
    response = client.post("/en/submit", data={**data, "csrf_token": csrf_token(client)})
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'id="{missing}-error"' in text
    assert f'<a href="#{missing}">' in text
    # The message sits inside the field's own group, tied to it by aria-describedby.
    group = re.search(rf'id="{missing}"[^>]*aria-describedby="[^"]*{missing}-error', text)
    assert group, "the error is not tied to its field"
    assert_nothing_stored(app)


@pytest.mark.parametrize(
    ("condition", "needed"),
    [
        ({"consent_contact": "other_channel"}, "contact_channel"),
    ],
)
def test_an_answer_required_by_another_is_asked_for(
    client: FlaskClient, condition: dict[str, str], needed: str
) -> None:
    data = {**MINIMAL_REPORT, **condition, "csrf_token": csrf_token(client)}
    response = client.post("/en/submit", data=data)
    assert response.status_code == 400
    assert f'id="{needed}-error"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("name", "value"),
    [("consent_raise", "maybe"), ("target_age", "150"), ("violations", "invented")],
)
def test_an_answer_that_is_no_choice_is_refused(client: FlaskClient, name: str, value: str) -> None:
    data = {**MINIMAL_REPORT, name: value, "csrf_token": csrf_token(client)}
    response = client.post("/en/submit", data=data)
    assert response.status_code == 400
    assert f'id="{name}-error"' in response.get_data(as_text=True)


def test_a_form_with_problems_comes_back_with_everything_typed(
    app: Flask, client: FlaskClient
) -> None:
    typed = {
        f.name: f"<b>{f.name}</b> & \"quoted\" 'text' — ünïcode 报复"
        for f in questionnaire.REPORT_FIELDS
        if f.kind in (TEXT, TEXTAREA)
    }
    typed["description"] = "line one\nline two <script>alert(1)</script>"
    choices = {"submitter_role": "witness", "target_occupation": ["journalist", "lawyer"]}
    data = {**typed, **choices, "csrf_token": csrf_token(client)}  # no consent answers
    response = client.post("/en/submit", data=data)
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "<script>alert" not in text
    for name, value in typed.items():
        assert field_value(text, name) == value
    assert 'value="witness" checked' in text
    assert 'value="journalist" checked' in text
    assert 'value="lawyer" checked' in text
    assert 'value="trade_unionist" checked' not in text
    assert_nothing_stored(app)


def test_attachments_are_kept_sealed_across_problems_and_sent_with_the_report(
    app: Flask, client: FlaskClient
) -> None:
    evidence = b"EVIDENCE-" * 20_000
    response = post_parts(
        client,
        "/en/submit",
        [
            ("csrf_token", csrf_token(client)),
            ("description", "no consent yet"),
            FilePart("attachments", "photo.jpg", evidence, "image/jpeg"),
            FilePart("attachments", "leave-out.txt", b"not wanted"),
        ],
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "photo.jpg (180 kB)" in text
    assert all(b"EVIDENCE" not in p.read_bytes() for p in staging_files(app))
    token = re.search(r'name="kept_files" value="([^"]+)"', text)
    assert token
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert fresh
    # A second problem in a row (the description left empty) keeps it again.
    response = client.post(
        "/en/submit",
        data={
            "csrf_token": fresh.group(1),
            "kept_files": token.group(1),
            "keep_file": "0",
            **{k: v for k, v in MINIMAL_REPORT.items() if k != "description"},
        },
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "photo.jpg" in text
    assert "leave-out.txt" not in text
    token = re.search(r'name="kept_files" value="([^"]+)"', text)
    assert token
    data = {**MINIMAL_REPORT, "kept_files": token.group(1), "keep_file": "0"}
    response = client.post("/en/submit", data={**data, "csrf_token": csrf_token(client)})
    assert response.status_code == 200
    services = app.extensions["portal"]
    with services.sessions() as session:
        submission = session.scalars(select(Submission)).one()
    assert submission.file_count == 1
    blob = services.store.path(submission.id) / "0.blob"
    assert blob.stat().st_size == crypto.blob_length(len(evidence))
    # Nothing is left in staging: neither the kept file's old folder nor the one left out.
    assert stored(app).staging == []


@pytest.mark.parametrize("token", ["", "garbage", "expired"])
def test_a_missing_or_expired_form_token_comes_back_as_the_form(
    app: Flask, client: FlaskClient, token: str
) -> None:
    if token == "expired":
        token = csrf_token(client)
        app.config["WTF_CSRF_TIME_LIMIT"] = -1
    parts = [
        ("csrf_token", token),
        *{**MINIMAL_REPORT, "description": "typed before the token expired"}.items(),
        FilePart("attachments", "kept.pdf", b"%PDF-1.7 evidence"),
    ]
    response = post_parts(client, "/en/submit", parts)
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "This form had expired" in error_message(text)
    assert field_value(text, "description") == "typed before the token expired"
    # An untrusted form keeps no attachment on disk; the page asks for them again.
    assert "kept.pdf" not in text
    assert "Your attachments could not be kept" in text
    assert_nothing_stored(app)


def test_the_honeypot_gets_a_page_like_success_and_nothing_is_stored(
    app: Flask, client: FlaskClient
) -> None:
    parts = [
        ("csrf_token", csrf_token(client)),
        *MINIMAL_REPORT.items(),
        ("website", "http://spam.example"),
        FilePart("attachments", "spam.bin", b"spam" * 1000),
    ]
    response = post_parts(client, "/en/submit", parts)
    assert response.status_code == 200
    assert "receipt-number" not in response.get_data(as_text=True)
    assert_nothing_stored(app)


# ---------------------------------------------------------------------------------------------
# The receipt


def test_the_receipt_page_explains_the_receipt_once(app: Flask, client: FlaskClient) -> None:
    response = client.post("/en/submit", data={**MINIMAL_REPORT, "csrf_token": csrf_token(client)})
    text = response.get_data(as_text=True)
    receipt = receipt_of(text)
    assert re.fullmatch(r"\d{5}( \d{5}){4}", receipt)
    for words in (
        "What it is for",
        "shown only once",
        "How to keep it safe",
        "You can print this page",
        "Sealed on arrival at the server",
    ):
        assert words in text
    assert 'data-sealed-by="server"' in text
    # Never in a header, a cookie or an address.
    digits = receipt.replace(" ", "")
    for name, value in response.headers.items():
        assert digits not in value.replace(" ", ""), name
        assert receipt not in value, name
    assert "Location" not in response.headers
    # The stylesheet has a print layout for this page.
    css = (ROOT / "portal" / "static" / "portal.css").read_text(encoding="utf-8")
    assert "@media print" in css
    # Two reports, two receipts.
    assert submit(client) != receipt


def test_the_receipt_is_stored_nowhere(app: Flask, client: FlaskClient) -> None:
    receipt = submit(client)
    digits = receipt.replace(" ", "").encode()
    data_dir = Path(app.extensions["portal"].config.data_dir)
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert digits not in content, path
            assert receipt.encode() not in content, path


def test_a_case_keeps_only_a_lookup_value_and_its_reply_key(
    app: Flask, client: FlaskClient
) -> None:
    receipt = submit(client)
    services = app.extensions["portal"]
    opslimit, memlimit = services.config.receipt_limits
    derived = receipts.derive(receipt, services.installation_secret, opslimit, memlimit)
    with services.sessions() as session:
        case = session.scalars(select(Case)).one()
    assert case.receipt_lookup == derived.lookup
    assert case.reply_public_key == derived.reply_public_key


# ---------------------------------------------------------------------------------------------
# Follow-up


def _open_case(client: FlaskClient, receipt: str, lang: str = "en") -> str:
    response = client.post(
        f"/{lang}/follow-up",
        data={
            "receipt": receipt,
            "step": "open",
            "csrf_token": csrf_token(client, f"/{lang}/follow-up"),
        },
    )
    assert response.status_code == 200, error_message(response.get_data(as_text=True))
    return response.get_data(as_text=True)


def _add_reply(app: Flask, receipt: str, message: str) -> None:
    """Store a reply as the staff site does: sealed to the case's reply key."""
    services = app.extensions["portal"]
    with services.sessions() as session:
        case, _derived = cases.find_case(services, session, receipt)
        manifest = envelope.Manifest("reply", "relay-tool", "en", {"message": message})
        staging = services.store.stage()
        staging.write(
            bundle.STORED_MANIFEST, envelope.seal_manifest(manifest, case.reply_public_key)
        )
        submission_id = storage.new_id()
        size = services.store.commit(staging, submission_id, today())
        seq = len(case.submissions) + 1
        session.add(
            Submission(
                id=submission_id,
                case_id=case.id,
                seq=seq,
                kind="reply",
                sealed_by="relay-tool",
                source="staff",
                recipient="submitter",
                received_day=today(),
                file_count=0,
                size_bytes=size,
            )
        )
        session.commit()


@pytest.mark.parametrize(
    "written",
    [
        lambda r: r,
        lambda r: r.replace(" ", ""),
        lambda r: r.replace(" ", "-"),
        lambda r: "  " + r.replace(" ", " \u2013 ") + "\n",
        # The same digits typed in Arabic-Indic and in full-width forms.
        lambda r: r.translate(ARABIC_INDIC),
        lambda r: r.translate(FULL_WIDTH),
    ],
    ids=["grouped", "plain", "dashes", "en-dashes", "arabic-indic", "full-width"],
)
def test_a_receipt_opens_its_case_however_it_is_written(
    client: FlaskClient, written: object
) -> None:
    receipt = submit(client)
    text = _open_case(client, written(receipt))  # type: ignore[operator]
    assert "No reply yet" in text
    assert 'id="followup-form"' in text


def test_the_case_page_shows_the_teams_replies(app: Flask, client: FlaskClient) -> None:
    receipt = submit(client)
    _add_reply(app, receipt, "Thank you. Could you tell us the date of the travel ban?")
    text = _open_case(client, receipt)
    assert "Could you tell us the date of the travel ban?" in text
    assert "No reply yet" not in text
    other = submit(client)
    assert "travel ban?" not in _open_case(client, other)


def test_more_information_and_files_join_the_same_case(app: Flask, client: FlaskClient) -> None:
    receipt = submit(client)
    page = _open_case(client, receipt)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = post_parts(
        client,
        "/en/follow-up",
        [
            ("csrf_token", token.group(1)),
            ("step", "add"),
            ("receipt", receipt),
            ("description", "The ban was lifted last week."),
            ("website", ""),
            FilePart("attachments", "letter.pdf", b"%PDF letter"),
        ],
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 200, error_message(text)
    assert "Your new information was received" in text
    assert "receipt-number" not in text
    with app.extensions["portal"].sessions() as session:
        case = session.scalars(select(Case)).one()
        kinds = [(s.seq, s.kind, s.file_count) for s in case.submissions]
    assert kinds == [(1, "report", 0), (2, "follow-up", 1)]


def test_a_follow_up_with_problems_keeps_its_text_and_files(
    app: Flask, client: FlaskClient
) -> None:
    receipt = submit(client)
    response = post_parts(
        client,
        "/en/follow-up",
        [
            ("csrf_token", csrf_token(client, "/en/follow-up")),
            ("step", "add"),
            ("receipt", receipt),
            ("description", "   "),
            FilePart("attachments", "more.txt", b"more evidence"),
        ],
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    # Named with the label this page gives the field.
    assert '<a href="#description">New information:' in text
    assert "more.txt" in text
    assert stored(app).rows == 1


def test_an_expired_token_while_adding_brings_back_the_case_page_as_typed(
    app: Flask, client: FlaskClient
) -> None:
    receipt = submit(client)
    _add_reply(app, receipt, "A question from the team.")
    response = post_parts(
        client,
        "/en/follow-up",
        [
            ("csrf_token", "expired-long-ago"),
            ("step", "add"),
            ("receipt", receipt),
            ("description", "Typed while the form expired."),
            FilePart("attachments", "late.txt", b"late evidence"),
        ],
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "This form had expired" in error_message(text)
    assert 'id="followup-form"' in text
    assert "A question from the team." in text
    assert field_value(text, "description") == "Typed while the form expired."
    assert "late.txt" not in text
    assert "Your attachments could not be kept" in text
    assert stored(app).rows == 2
    assert stored(app).staging == []


@pytest.mark.parametrize(
    "entered",
    ["", "12345", "1234567890123456789012345", "not a receipt", "\u0661" * 24],
    ids=["empty", "short", "unknown", "words", "arabic-indic-short"],
)
def test_a_receipt_that_opens_nothing_is_said_so_and_kept_to_correct(
    client: FlaskClient, entered: str
) -> None:
    submit(client)
    response = client.post(
        "/en/follow-up",
        data={
            "receipt": entered,
            "step": "open",
            "csrf_token": csrf_token(client, "/en/follow-up"),
        },
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "No case matches this receipt" in error_message(text)
    if entered:
        assert f'value="{html.escape(entered)}"' in text


def test_an_expired_token_on_the_receipt_page_keeps_the_receipt(client: FlaskClient) -> None:
    receipt = submit(client)
    response = client.post(
        "/en/follow-up", data={"receipt": receipt, "step": "open", "csrf_token": "stale"}
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "This form had expired" in error_message(text)
    assert f'value="{receipt}"' in text


# ---------------------------------------------------------------------------------------------
# Relays

CASE_FILE_PAGE = "/en/sealed-case"


def test_the_sealed_case_file_upload_is_on_its_own_page(client: FlaskClient) -> None:
    """A photo chosen by mistake in the organisations' upload cannot cost the report form."""
    form = client.get("/en/submit").get_data(as_text=True)
    assert 'name="case_file"' not in form
    assert f'href="{CASE_FILE_PAGE}"' in form
    assert f'href="{CASE_FILE_PAGE}"' in client.get("/en/key").get_data(as_text=True)
    page = client.get(CASE_FILE_PAGE).get_data(as_text=True)
    assert 'name="case_file"' in page
    assert f'action="{CASE_FILE_PAGE}"' in page


def test_a_case_file_posted_to_the_report_form_is_not_taken_for_a_report(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, tmp_path: Path
) -> None:
    sealed = _seal_case(tmp_path, team_keys)
    parts = [("csrf_token", csrf_token(client)), FilePart("case_file", "case.sealed", sealed)]
    response = post_parts(client, "/en/submit", parts)
    assert response.status_code == 400
    assert 'id="description-error"' in response.get_data(as_text=True)
    assert_nothing_stored(app)


def _seal_case(tmp_path: Path, team_keys: TeamKeys, *files: Path) -> bytes:
    out = tmp_path / f"case-{len(list(tmp_path.glob('case-*')))}.sealed"
    fields = [f"--field={k}={v}" for k, v in MINIMAL_REPORT.items()]
    result = CliRunner().invoke(
        main,
        ["seal", "--to", str(team_keys.public_path), "--out", str(out), *fields, *map(str, files)],
    )
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def test_a_relays_sealed_case_file_is_stored_as_it_is(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, tmp_path: Path
) -> None:
    attachment = tmp_path / "evidence.bin"
    attachment.write_bytes(b"relay evidence" * 10_000)
    sealed = _seal_case(tmp_path, team_keys, attachment)
    parts = [
        ("csrf_token", csrf_token(client, CASE_FILE_PAGE)),
        FilePart("case_file", "case.sealed", sealed),
    ]
    response = post_parts(client, CASE_FILE_PAGE, parts)
    text = response.get_data(as_text=True)
    assert response.status_code == 200, error_message(text)
    assert 'data-sealed-by="relay-tool"' in text
    receipt_of(text)
    services = app.extensions["portal"]
    with services.sessions() as session:
        submission = session.scalars(select(Submission)).one()
    assert (submission.sealed_by, submission.source, submission.file_count) == (
        "relay-tool",
        "relay",
        1,
    )
    folder = services.store.path(submission.id)
    with bundle.read_bytes(sealed) as reader:
        (entry,) = reader.entries
        with reader.open(f"{entry.id}/manifest.sealed") as manifest:
            assert (folder / bundle.STORED_MANIFEST).read_bytes() == manifest.read()
        with reader.open(f"{entry.id}/files/0.blob") as blob:
            assert (folder / "0.blob").read_bytes() == blob.read()


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda b: b"A plain text file, not sealed." * 100, "is not a sealed case file"),
        (lambda b: b[: len(b) // 2], "is damaged or incomplete"),
        (lambda b: b[:1024], "is damaged or incomplete"),
        # Same length, so the tar stays whole and only the index says something else.
        (lambda b: b.replace(b'"kind": "report"', b'"kind":  "reply"'), "exactly one report"),
        (lambda b: b.replace(b'"version": 1', b'"version": 2'), "is damaged or incomplete"),
    ],
    ids=["plain-text", "truncated", "index-only", "a-reply", "another-version"],
)
def test_a_malformed_case_file_is_refused_with_what_is_wrong(
    app: Flask,
    client: FlaskClient,
    team_keys: TeamKeys,
    tmp_path: Path,
    mangle: object,
    reason: str,
) -> None:
    attachment = tmp_path / "evidence.bin"
    attachment.write_bytes(b"x" * 70_000)
    sealed = mangle(_seal_case(tmp_path, team_keys, attachment))  # type: ignore[operator]
    parts = [
        ("csrf_token", csrf_token(client, CASE_FILE_PAGE)),
        FilePart("case_file", "case.sealed", sealed),
    ]
    response = post_parts(client, CASE_FILE_PAGE, parts)
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    message = error_message(text)
    assert reason in message
    assert "none of it was stored" in message
    assert_nothing_stored(app)


def test_a_case_file_from_an_expired_form_is_not_kept(
    app: Flask, client: FlaskClient, team_keys: TeamKeys, tmp_path: Path
) -> None:
    sealed = _seal_case(tmp_path, team_keys)
    parts = [("csrf_token", "stale"), FilePart("case_file", "case.sealed", sealed)]
    response = post_parts(client, CASE_FILE_PAGE, parts)
    assert response.status_code == 400
    assert "choose it again" in error_message(response.get_data(as_text=True))
    assert_nothing_stored(app)


def test_the_case_file_form_posted_without_a_file_says_so(app: Flask, client: FlaskClient) -> None:
    parts = [("csrf_token", csrf_token(client, CASE_FILE_PAGE)), FilePart("case_file", "", b"")]
    response = post_parts(client, CASE_FILE_PAGE, parts)
    assert response.status_code == 400
    assert (
        error_message(response.get_data(as_text=True)) == "Choose the sealed case file to upload."
    )
    assert_nothing_stored(app)


# ---------------------------------------------------------------------------------------------
# Limits


@contextmanager
def site(initialised: dict[str, str], **overrides: str) -> Iterator[tuple[Flask, FlaskClient]]:
    """The public site of the test deployment with some settings changed."""
    app = create_app("public", {**initialised, **overrides})
    app.config.update(TESTING=True, RATELIMIT_ENABLED=False)
    try:
        yield app, app.test_client()
    finally:
        app.extensions["portal"].engine.dispose()


def test_a_request_over_the_size_limit_gets_a_page_that_says_the_limit(
    initialised: dict[str, str],
) -> None:
    with site(initialised, PORTAL_MAX_UPLOAD_BYTES=str(2 * 1024 * 1024)) as (app, client):
        parts = [
            *report_parts(csrf_token(client)),
            FilePart("attachments", "big.bin", b"\0" * (3 * 1024 * 1024)),
        ]
        response = post_parts(client, "/en/submit", parts)
        assert response.status_code == 413
        assert "at most 2 MB" in error_message(response.get_data(as_text=True))
        assert_nothing_stored(app)


def test_a_full_store_says_it_is_temporarily_unable_to_accept(
    initialised: dict[str, str],
) -> None:
    # Room for the first report's sealed manifest and not much more.
    quota = 4096 + crypto.SEAL_OVERHEAD + 100
    with site(initialised, PORTAL_STORAGE_QUOTA_BYTES=str(quota)) as (app, client):
        submit(client)
        response = client.post(
            "/en/submit", data={**MINIMAL_REPORT, "csrf_token": csrf_token(client)}
        )
        assert response.status_code == 503
        assert "temporarily unable to accept" in error_message(response.get_data(as_text=True))
        assert stored(app).rows == 1
        assert stored(app).staging == []


def test_answers_too_long_together_come_back_instead_of_failing(
    app: Flask, client: FlaskClient
) -> None:
    # Every answer within its own limit, but escaped in JSON the manifest passes a megabyte.
    data = {
        f.name: "\x01" * f.limit for f in questionnaire.REPORT_FIELDS if f.kind in (TEXT, TEXTAREA)
    }
    parts = [
        ("csrf_token", csrf_token(client)),
        *{**MINIMAL_REPORT, **data}.items(),
        FilePart("attachments", "a.txt", b"kept"),
    ]
    response = post_parts(client, "/en/submit", parts)
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "too long to send at once" in text
    assert "a.txt" in text
    assert stored(app).rows == 0


def test_a_flood_of_reports_is_limited_across_both_ways_in_and_keeps_the_text(
    initialised: dict[str, str],
) -> None:
    with site(initialised, PORTAL_REPORT_RATE_LIMIT="2 per hour") as (app, client):
        app.config["RATELIMIT_ENABLED"] = True
        limits.of(app).reset()
        submit(client)
        submit(client)
        prepared = client.post("/en/submit/prepare", data={"csrf_token": csrf_token(client)})
        assert prepared.status_code == 429
        response = client.post(
            "/en/submit",
            data={**MINIMAL_REPORT, "description": "words typed", "csrf_token": csrf_token(client)},
        )
        text = response.get_data(as_text=True)
        assert response.status_code == 429
        assert field_value(text, "description") == "words typed"
        assert "Too many reports are arriving right now" in text
        assert stored(app).rows == 2
        # Follow-ups have their own budget.
        assert client.get("/en/follow-up").status_code == 200
