"""The offline sealer file: made from the key and the questionnaire, the same bytes each time,
loading nothing, in six languages; `portal sealer`; the key page that offers it."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import subprocess
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from click.testing import CliRunner
from flask.testing import FlaskClient

from portal.cli import main
from portal.formats import answers, crypto, fields, questionnaire, receipts
from portal.offline import sealer, sealer_texts
from portal.web import resources

ROOT = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))
pytestmark = pytest.mark.skipif(
    not sealer.SCRIPT.is_file(), reason="static/sealer.js is not built (npm run build)"
)


class Page(HTMLParser):
    """The parts of a page the tests look at: controls, scripts, styles, links and sources."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.controls: list[dict[str, str | None]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self.csp = ""
        self.loads: list[str] = []
        self._in: tuple[str, dict[str, str | None]] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record controls, the policy and anything that would load something."""
        attributes = dict(attrs)
        if tag in ("input", "textarea", "select"):
            self.controls.append({"tag": tag, **attributes})
        if tag == "meta" and attributes.get("http-equiv") == "Content-Security-Policy":
            self.csp = attributes.get("content") or ""
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            if attributes.get(name) and not str(attributes[name]).startswith("#"):
                self.loads.append(f"{tag} {name}={attributes[name]}")
        if tag in ("script", "style"):
            self._in = (tag, attributes)

    def handle_data(self, data: str) -> None:
        """Keep the text of scripts and styles."""
        if self._in and self._in[0] == "script":
            self.scripts.append((self._in[1], data))
        elif self._in:
            self.styles.append(data)
        self._in = None

    def handle_endtag(self, tag: str) -> None:
        """Leave a script or style."""
        self._in = None


def directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy as its directives."""
    parts = [part.split() for part in policy.split(";") if part.strip()]
    return {part[0]: part[1:] for part in parts}


def source_hash(text: str) -> str:
    """The CSP source expression of an inline script or style."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.fixture(scope="module")
def page() -> str:
    return sealer.build(KEY).decode("utf-8")


def test_the_same_key_and_build_give_the_same_bytes() -> None:
    first = sealer.build(KEY)
    assert sealer.build(KEY) == first
    other = sealer.build(bytes(32))
    assert other != first
    assert date.today().isoformat().encode() not in first


def test_it_carries_the_key_and_shows_its_fingerprint(page: str) -> None:
    assert f'data-team-key="{base64.b64encode(KEY).decode()}"' in page
    assert re.search(
        r'<code class="fingerprint" dir="ltr" translate="no" id="sealer-fingerprint">'
        + re.escape(crypto.fingerprint(KEY))
        + "</code>",
        page,
    )


def test_its_policy_allows_its_own_script_and_style_and_no_connection(page: str) -> None:
    parsed = Page(page)
    policy = directives(parsed.csp)
    assert policy["default-src"] == ["'none'"]
    assert policy["connect-src"] == ["'none'"]
    assert policy["form-action"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    code = [text for attributes, text in parsed.scripts if "type" not in attributes]
    assert len(code) == 1
    assert policy["script-src"] == [source_hash(code[0])]
    assert len(parsed.styles) == 1
    assert policy["style-src"] == [source_hash(parsed.styles[0])]
    # Nothing in the file names anything to load: no src, no href but in-page anchors.
    assert parsed.loads == []
    data = [attributes for attributes, _text in parsed.scripts if "type" in attributes]
    assert {a["type"] for a in data} == {"application/json"}


def test_without_scripts_it_says_so_in_six_languages_and_shows_no_form(page: str) -> None:
    noscript = page.split("<noscript>", 1)[1].split("</noscript>", 1)[0]
    assert noscript.count("portal seal") == 6
    table = sealer.translations()
    for code in sealer.LANGUAGES:
        assert table[code].get(sealer_texts.NO_SCRIPT, sealer_texts.NO_SCRIPT) in noscript
    assert '<div id="sealer-app" hidden>' in page


def _choices(controls: list[dict[str, str | None]]) -> set[tuple[str | None, ...]]:
    return {
        (c.get("name"), c.get("type", c["tag"]), c.get("value") or "")
        for c in controls
        if c.get("name") in questionnaire.FIELDS_BY_NAME
    }


def test_its_questions_are_the_report_form_s(page: str, client: FlaskClient) -> None:
    ours = _choices(Page(page).controls)
    theirs = _choices(Page(client.get("/en/submit").get_data(as_text=True)).controls)
    assert ours == theirs
    assert {name for name, *_ in ours} == set(questionnaire.FIELDS_BY_NAME)


def test_its_rules_come_from_the_questionnaire() -> None:
    rules = {rule["name"]: rule for rule in sealer.field_definitions()}
    assert list(rules) == [f.name for f in questionnaire.REPORT_FIELDS]
    for field in questionnaire.REPORT_FIELDS:
        assert rules[field.name]["choices"] == [value for value, _ in field.choices]
        assert rules[field.name]["required"] == field.required
        assert rules[field.name]["limit"] == field.limit


def test_every_text_the_script_shows_is_in_the_catalogues() -> None:
    pattern = re.compile(r"(?:\bt\(|dataset\.t = |new CsvError\(|: )'((?:[^'\\]|\\.)+)'")
    used = set()
    for name in ("sealer.js", "cases.js"):
        source = (ROOT / "js" / name).read_text(encoding="utf-8")
        used |= {m.group(1) for m in pattern.finditer(source) if " " in m.group(1)}
    assert len(used) > 30, used
    assert used - set(sealer.texts()) == set()


def test_every_text_is_in_the_catalogues() -> None:
    # tests/test_i18n.py checks that every entry of the catalogues is translated in each language.
    with (resources.TRANSLATIONS / "messages.pot").open("rb") as handle:
        known = {message.id for message in read_po(handle)}
    assert set(sealer.texts()) - known == set()


@pytest.mark.parametrize("lang", [code for code in sealer.LANGUAGES if code != "en"])
def test_the_file_carries_each_language_s_texts(lang: str) -> None:
    table = sealer.translations()[lang]
    # A few words are the same in English (Description, No); every sentence differs.
    same = [text for text in sealer.texts() if text not in table and len(text.split()) > 2]
    assert same == []
    assert len(table) > 0.9 * len(sealer.texts())


def test_a_missing_catalogue_is_named(tmp_path: Path) -> None:
    with pytest.raises(sealer.SealerError, match="pybabel compile"):
        sealer.translations(tmp_path)


def _key_file(folder: Path, key: bytes = KEY) -> Path:
    path = folder / "team.pub"
    path.write_text(crypto.format_public_key_file(key, date(2026, 1, 1)))
    return path


def test_portal_sealer_writes_the_file_and_its_hash(tmp_path: Path) -> None:
    out = tmp_path / "sealer.html"
    result = CliRunner().invoke(
        main, ["sealer", "--to", str(_key_file(tmp_path)), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == sealer.build(KEY)
    assert hashlib.sha256(out.read_bytes()).hexdigest() in result.output
    assert crypto.fingerprint(KEY) in result.output


@pytest.mark.parametrize(
    ("given", "ok"),
    [
        (crypto.fingerprint(KEY), True),
        (crypto.fingerprint(KEY).lower().replace(" ", ""), True),
        (crypto.fingerprint(bytes(32)), False),
        ("0000", False),
    ],
)
def test_a_key_whose_fingerprint_differs_is_refused(tmp_path: Path, given: str, ok: bool) -> None:
    out = tmp_path / "sealer.html"
    result = CliRunner().invoke(
        main,
        ["sealer", "--to", str(_key_file(tmp_path)), "--out", str(out), "--fingerprint", given],
    )
    assert (result.exit_code == 0) is ok, result.output
    assert out.exists() is ok
    if not ok:
        assert "no sealer was made" in result.output
        assert list(tmp_path.iterdir()) == [tmp_path / "team.pub"]


def test_an_existing_file_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "sealer.html"
    out.write_text("mine")
    result = CliRunner().invoke(
        main, ["sealer", "--to", str(_key_file(tmp_path)), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "nothing was overwritten" in result.output
    assert out.read_text() == "mine"


def test_the_key_page_offers_the_sealer_made_from_the_site_s_key(client: FlaskClient) -> None:
    page = client.get("/fr/key").get_data(as_text=True)
    download = client.get("/fr/key/sealer.html")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == "attachment; filename=sealer.html"
    assert download.mimetype == "application/octet-stream"
    assert client.get("/ar/key/sealer.html").data == download.data
    shown = re.search(r'id="sealer-sha256">([0-9a-f]{64})<', page)
    assert shown
    assert shown.group(1) == hashlib.sha256(download.data).hexdigest()
    key_file = client.get("/en/key/team.pub").get_data(as_text=True)
    # The same bytes as `portal sealer` makes from the served key file, receipt lines included.
    site = receipts.read_published(key_file)
    assert site is not None
    assert download.data == sealer.build(crypto.parse_public_key_file(key_file), site=site)
    assert 'href="/fr/key/sealer.html"' in page


def test_the_key_page_shows_the_hash_of_the_script_it_serves(client: FlaskClient) -> None:
    page = client.get("/en/key").get_data(as_text=True)
    with client.get("/static/portal.js") as response:
        served = response.data
    shown = re.search(r'id="script-sha256">([0-9a-f]{64})<', page)
    assert shown
    assert shown.group(1) == hashlib.sha256(served).hexdigest()
    assert resources.SCRIPT.read_bytes() == served


def test_the_page_checks_answers_as_the_report_form_and_portal_seal_do() -> None:
    # Every kind of answer, right and wrong, for every question: the offline sealer's check
    # (js/cases.js, with the rules the file carries) names the same problems as answers.check.
    rng = random.Random(20261206)
    defs = sealer.field_definitions()

    def answers_for(field: fields.Field) -> list[object]:
        choices = [value for value, _ in field.choices if value]
        arabic_digits = "\u0662\u0660\u0662\u0665-\u0661\u0661"  # 2025-11, not the form's digits
        shaped = {
            fields.MONTH: [
                *("2024-05", "2025-11", "2026-01", "2025-11"),
                *("2025-13", "2025-1", "1999-00", "November", arabic_digits),
            ],
            fields.COUNT: [
                *("12", "0", "3", "12", "007"),
                *("about 20", "-3", "1.5", "\u0661\u0662", "1" * 40),
            ],
        }.get(field.kind, [])
        return [
            *choices[:3],
            *shaped,
            "not a choice" if field.choices else "An answer",
            " ",
            "x" * (field.limit + 1),
            "\U0001f600" * field.limit,
            [choices[0]] if choices else ["a list"],
            choices[:2] + choices[:1],
            7,
        ]

    cases: list[dict[str, object]] = []
    for _ in range(400):
        values: dict[str, object] = {}
        for field in questionnaire.REPORT_FIELDS:
            if rng.random() < 0.5:
                values[field.name] = rng.choice(answers_for(field))
        cases.append(values)
    result = subprocess.run(
        ["node", str(ROOT / "tests" / "js" / "check_cli.mjs")],
        input=json.dumps({"defs": defs, "cases": cases}),
        capture_output=True,
        text=True,
        check=True,
    )
    in_the_page = json.loads(result.stdout)
    named = 0
    for values, page in zip(cases, in_the_page, strict=True):
        server = [[p.field, p.message] for p in answers.check(values, questionnaire.REPORT_FIELDS)]
        assert page == server, values
        named += len(server)
    assert named > 1000
    # The answers that contradict each other came up, and were named alike.
    order_problems = {f.order[2] for f in questionnaire.REPORT_FIELDS if f.order}
    assert order_problems <= {message for page in in_the_page for _field, message in page}
