"""The six languages: complete catalogues, the right plural rules, `lang` and `dir` on every page,
no English left on a page in another language, language links, and the offline report.txt.

The catalogues are checked against a fresh extraction (the `make translations` command run into a
temporary folder), and the pages are rendered with the catalogues compiled from the `.po` files
as they are now, so these tests need no earlier `make setup`.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from click.testing import CliRunner
from conftest import MINIMAL_REPORT, TeamKeys, csrf_token, receipt_of
from flask import Flask, g, render_template
from flask.testing import FlaskClient
from test_export import export_and_decrypt
from werkzeug.datastructures import MultiDict

from portal.web import errors, i18n, limits
from portal.web.public.followup import limited_follow_up

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "portal" / "translations"
LANGUAGES = list(i18n.LANGUAGES)
OTHERS = [lang for lang in LANGUAGES if lang != "en"]
# Four or more Latin-script words in a row, allowing punctuation between them.
LATIN_WORD = r"[A-Za-z][\w'\u2019-]*"
LATIN_RUN = re.compile(rf"{LATIN_WORD}(?:[\s,.:;()\"“”«»]+{LATIN_WORD}){{3,}}", re.ASCII)
RECEIPT_DIGITS = re.compile(r"^\d{5}( \d{5}){4}$")
FINGERPRINT = re.compile(r"^[0-9A-F]{4}( [0-9A-F]{4}){9}$")

# English that may stay on a page in another language, each with its reason. Text inside an
# element marked translate="no" (the receipt, the key file) is never compared.
ENGLISH_ALLOWED: dict[str, str] = {}


def arabic_plural(n: int) -> int:
    """Arabic's form for n, in the order zero, one, two, few, many, other (as GNU gettext)."""
    if n <= 2:
        return n
    return 3 if 3 <= n % 100 <= 10 else 4 if n % 100 >= 11 else 5


def russian_plural(n: int) -> int:
    """Russian's form for n: one (1, 21, …), few (2-4, 22-24, …), many (0, 5-20, …)."""
    if n % 10 == 1 and n % 100 != 11:
        return 0
    return 1 if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14 else 2


# The index of the plural form each number takes, from the CLDR rules the catalogues follow.
PLURAL_RULES: dict[str, Callable[[int], int]] = {
    "ar": arabic_plural,
    "ru": russian_plural,
    "zh": lambda n: 0,
    "en": lambda n: int(n != 1),
    "es": lambda n: int(n != 1),
    "fr": lambda n: int(n > 1),
}


def load(path: Path, locale: str | None = None) -> Catalog:
    """A catalogue or template read from its file."""
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def po_path(lang: str) -> Path:
    """The catalogue file of one language."""
    return TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"


def ids(catalog: Catalog) -> set[str | tuple[str, ...]]:
    """The message ids of a catalogue, without its header."""
    return {message.id for message in catalog if message.id}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """What `make translations` extracts from the sources now, into a temporary template."""
    out = tmp_path_factory.mktemp("extract") / "messages.pot"
    CommandLineInterface().run(
        [
            "pybabel",
            "--quiet",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "N_",
            "--add-location=file",
            "-o",
            str(out),
            str(ROOT),
        ]
    )
    return load(out)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `.po` files as they are now, compiled into a temporary translations folder."""
    folder = tmp_path_factory.mktemp("translations")
    for lang in LANGUAGES:
        target = folder / lang / "LC_MESSAGES" / "messages.mo"
        target.parent.mkdir(parents=True)
        with target.open("wb") as handle:
            write_mo(handle, load(po_path(lang), lang))
    return folder


@pytest.fixture(autouse=True)
def use_compiled(compiled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every app made in these tests reads the freshly compiled catalogues."""
    monkeypatch.setattr(i18n, "TRANSLATIONS", compiled)


# ---------------------------------------------------------------------------------------------
# The catalogues


def test_the_template_is_in_step_with_the_sources(extracted: Catalog) -> None:
    committed = load(TRANSLATIONS / "messages.pot")
    assert ids(extracted) - ids(committed) == set(), "run `make translations`"
    assert ids(committed) - ids(extracted) == set(), "run `make translations`"


def test_the_staff_site_stays_out_of_the_catalogues(extracted: Catalog) -> None:
    # The staff site is English-only: none of its pages' texts is sent to translators.
    files = {location.split(":")[0] for message in extracted for location, _ in message.locations}
    assert files, "nothing was extracted"
    assert not [name for name in files if "staff" in name], files


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_text_is_in_the_catalogue(lang: str, extracted: Catalog) -> None:
    catalog = load(po_path(lang), lang)
    missing = ids(extracted) - ids(catalog)
    assert not missing, (lang, "run `make translations` and translate", sorted(map(str, missing)))
    stale = ids(catalog) - ids(extracted)
    assert not stale, f"{lang}: no longer in the sources, run `make translations`: {stale}"
    assert not catalog.obsolete, f"{lang}: obsolete entries {list(catalog.obsolete)}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_entry_is_translated_and_none_is_fuzzy(lang: str) -> None:
    catalog = load(po_path(lang), lang)
    assert not catalog.fuzzy, f"{lang}: the header is marked fuzzy"
    problems = []
    for message in catalog:
        if not message.id:
            continue
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        elif not all(forms):
            problems.append(f"untranslated: {message.id!r}")
        elif lang == "en" and forms[0] != (message.id[0] if message.pluralizable else message.id):
            # English pages show the source text; the English catalogue only repeats it.
            problems.append(f"differs from the source: {message.id!r}")
    assert not problems, f"{lang}:\n" + "\n".join(problems)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_placeholders_and_plural_counts_survive_translation(lang: str) -> None:
    catalog = load(po_path(lang), lang)
    problems = [f"{message.id!r}: {errors}" for message, errors in catalog.check()]
    assert not problems, f"{lang}:\n" + "\n".join(problems)


@pytest.mark.parametrize("lang", OTHERS)
def test_a_button_named_in_a_sentence_keeps_its_own_words(lang: str) -> None:
    # "Press “Send the report”" must name the button as the translated button reads.
    catalog = load(po_path(lang), lang)
    named = [
        (quoted, message.id)
        for message in catalog
        if isinstance(message.id, str)
        for quoted in re.findall(r"“([^”]+)”", message.id)
        if catalog.get(quoted) is not None
    ]
    assert named, "no sentence names another text"
    wrong = [
        (catalog[quoted].string, catalog[sentence].string)
        for quoted, sentence in named
        if catalog[quoted].string not in catalog[sentence].string
    ]
    assert not wrong, wrong


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_plural_rule_is_that_of_the_language(lang: str) -> None:
    catalog = load(po_path(lang), lang)
    expected = PLURAL_RULES[lang]
    assert catalog.num_plurals == max(expected(n) for n in range(1000)) + 1
    rule = gettext.c2py(catalog.plural_expr)
    wrong = [n for n in range(1000) if rule(n) != expected(n)]
    assert not wrong, f"{lang}: {catalog.plural_expr} gives the wrong form for {wrong[:10]}"


def test_russian_has_three_plural_forms_and_arabic_six() -> None:
    assert load(po_path("ru"), "ru").num_plurals == 3
    assert load(po_path("ar"), "ar").num_plurals == 6


# ---------------------------------------------------------------------------------------------
# The pages


class Text(HTMLParser):
    """The words a page says to a person: not what they typed, nor what is marked translate="no"."""

    VOID = frozenset(
        {
            "area",
            "base",
            "br",
            "col",
            "embed",
            "hr",
            "img",
            "input",
            "link",
            "meta",
            "source",
            "track",
            "wbr",
        }
    )
    SPOKEN = ("aria-label", "title", "alt", "placeholder")

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._stack: list[bool] = []
        self.root: dict[str, str] = {}
        self.feed(page)
        self.text = " ".join(" ".join(self.parts).split())

    def _skipping(self) -> bool:
        return any(self._stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "html":
            self.root = values
        # A textarea holds what the person typed, not what the page says.
        skip = tag in ("script", "style", "textarea") or values.get("translate") == "no"
        if not (skip or self._skipping()):
            self.parts += [values[name] for name in self.SPOKEN if values.get(name)]
        if tag not in self.VOID:
            self._stack.append(skip)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping():
            self.parts.append(data)


def english_sentences() -> dict[str, str]:
    """Each sentence of more than three words in the English catalogue, with its message."""
    sentences: dict[str, str] = {}
    for message in load(po_path("en"), "en"):
        for text in message.id if isinstance(message.id, tuple) else (message.id,):
            # Placeholders are filled at render time: only the text around them is compared.
            for piece in re.split(r"%\(\w+\)[sd]", text):
                for sentence in re.split(r"(?<=[.;:?!])\s+", piece):
                    sentence = " ".join(sentence.split()).strip(" .;:")
                    if len(sentence.split()) > 3:
                        sentences[sentence] = text
    return sentences


def rendered_pages(app: Flask, client: FlaskClient, lang: str) -> Iterator[tuple[str, str]]:
    """Every public page in one language, as (what it is, its HTML): each page, each state of
    the forms, the receipt, the follow-up, and each error page."""
    for path in ("/", "/safety", "/key", "/submit", "/follow-up", "/no-such-page"):
        response = client.get(f"/{lang}{path}")
        yield path, response.get_data(as_text=True)
    token = csrf_token(client, f"/{lang}/submit")
    yield (
        "form with problems",
        client.post(
            f"/{lang}/submit",
            data={
                "csrf_token": token,
                "description": "x",
                "target_age": "nonsense",
                # Answers that contradict each other.
                "group_size": "3",
                "group_women": "5",
                "incident_from": "2025-06",
                "incident_to": "2025-01",
            },
        ).get_data(as_text=True),
    )
    yield (
        "resumable upload not known here",
        client.post(f"/{lang}/submit/uploads/{'x' * 43}/finish").get_data(as_text=True),
    )
    yield "expired form", client.post(f"/{lang}/submit", data=MINIMAL_REPORT).get_data(as_text=True)
    page = client.post(
        f"/{lang}/submit",
        data={**MINIMAL_REPORT, "csrf_token": token},
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    yield "receipt", page
    receipt = receipt_of(page)
    token = csrf_token(client, f"/{lang}/follow-up")
    yield (
        "unknown receipt",
        client.post(
            f"/{lang}/follow-up", data={"csrf_token": token, "receipt": "1" * 25, "step": "open"}
        ).get_data(as_text=True),
    )
    yield (
        "case",
        client.post(
            f"/{lang}/follow-up", data={"csrf_token": token, "receipt": receipt, "step": "open"}
        ).get_data(as_text=True),
    )
    yield (
        "follow-up with a problem",
        client.post(
            f"/{lang}/follow-up",
            data={"csrf_token": token, "receipt": receipt, "step": "add"},
            content_type="multipart/form-data",
        ).get_data(as_text=True),
    )
    yield (
        "follow-up received",
        client.post(
            f"/{lang}/follow-up",
            data={"csrf_token": token, "receipt": receipt, "step": "add", "description": "..."},
            content_type="multipart/form-data",
        ).get_data(as_text=True),
    )
    # Pages that take a crowd, a full disk or a failure to reach, rendered as the views do.
    with app.test_request_context(f"/{lang}/submit"):
        g.lang = lang
        for name, context in (
            ("errors/error.html", {"code": 400}),
            ("errors/error.html", {"code": 404}),
            ("errors/error.html", {"code": 500}),
            ("errors/limited.html", {}),
            ("errors/too_large.html", {"limit": "500 MiB"}),
            ("errors/unavailable.html", {}),
            ("public/dropped.html", {}),
            ("public/refused.html", {"reason": "-"}),
            (
                "public/receipt.html",
                {"receipt": "12345 67890 12345 67890 12345", "sealed_by": "browser"},
            ),
            (
                "public/receipt.html",
                {"receipt": "12345 67890 12345 67890 12345", "sealed_by": "relay-tool"},
            ),
            ("public/follow_up_done.html", {"sealed_by": "browser"}),
        ):
            yield f"{name} {context}", render_template(name, **context)
        # The wait, counted in the language's own plural, and why the follow-up waits.
        for seconds in (1, 2, 5, 11, 59, 60, 180, 660):
            wait = errors.wait_sentence(seconds)
            yield f"limited, {seconds} s", render_template("errors/limited.html", wait=wait)
        for whose in ("session", "site"):
            notice = errors.follow_up_notice(limits.OverBudget(whose, 30), 30)
            page, _status = limited_follow_up(MultiDict(), notice)
            yield f"follow-up over the {whose}'s budget", page


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_has_the_language_and_direction_of_its_address(
    app: Flask, client: FlaskClient, lang: str
) -> None:
    expected = {"lang": i18n.tag(lang), "dir": i18n.direction(lang)}
    for what, page in rendered_pages(app, client, lang):
        root = Text(page).root
        assert {"lang": root.get("lang"), "dir": root.get("dir")} == expected, what
    assert expected["dir"] == ("rtl" if lang == "ar" else "ltr")


@pytest.mark.parametrize("lang", OTHERS)
def test_no_english_sentence_is_left_on_a_page_in_another_language(
    app: Flask, client: FlaskClient, lang: str
) -> None:
    sentences = english_sentences()
    assert len(sentences) > 100, "the English catalogue is nearly empty"
    left = []
    for what, page in rendered_pages(app, client, lang):
        text = Text(page).text
        assert text, what
        left += [
            f"{what}: {sentence!r}"
            for sentence in sentences
            if sentence in text and sentence not in ENGLISH_ALLOWED
        ]
    assert not left, f"{lang}:\n" + "\n".join(left)


@pytest.mark.parametrize("lang", ["ar", "ru", "zh"])
def test_no_text_outside_the_catalogue_is_left_in_latin_letters(
    app: Flask, client: FlaskClient, lang: str
) -> None:
    # Text written into a template without _() is in no catalogue, so the comparison above
    # cannot see it; in a language of another script, four Latin words in a row give it away.
    # Names that stay as they are (Tor Browser, JavaScript, Signal, PDF, "portal seal") are
    # never four words long.
    left = []
    for what, page in rendered_pages(app, client, lang):
        left += [f"{what}: {run!r}" for run in LATIN_RUN.findall(Text(page).text)]
    assert not left, f"{lang}:\n" + "\n".join(left)


def test_the_check_for_english_finds_english(app: Flask, client: FlaskClient) -> None:
    # The English pages are full of the catalogue's sentences: the comparison can see them.
    # The offline sealer's texts are in the catalogue too; its file shows them in English.
    sentences = english_sentences()
    pages = [page for _what, page in rendered_pages(app, client, "en")]
    pages.append(client.get("/en/key/sealer.html").get_data(as_text=True))
    pages.append(client.get("/en/sealed-case").get_data(as_text=True))
    text = " ".join(Text(page).text for page in pages)
    found = [sentence for sentence in sentences if sentence in text]
    assert len(found) > 0.8 * len(sentences), len(found)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_receipts_and_fingerprints_stay_ascii_digits_left_to_right(
    client: FlaskClient, lang: str
) -> None:
    page = client.post(
        f"/{lang}/submit",
        data={**MINIMAL_REPORT, "csrf_token": csrf_token(client, f"/{lang}/submit")},
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert RECEIPT_DIGITS.match(receipt_of(page))
    assert re.search(r'<p class="receipt-number" dir="ltr" translate="no"><code>', page)
    for path in ("/", "/key"):
        codes = re.findall(
            r'<code class="fingerprint" dir="ltr" translate="no"[^>]*>([^<]*)</code>',
            client.get(f"/{lang}{path}").get_data(as_text=True),
        )
        assert codes, path
        assert all(FINGERPRINT.match(code) for code in codes if code), (path, codes)
    css = (ROOT / "portal" / "static" / "portal.css").read_text(encoding="utf-8")
    for rule in (".receipt-number", "code.fingerprint"):
        block = css.split(rule, 1)[1].split("}", 1)[0]
        assert "unicode-bidi: isolate" in block, rule
        assert "direction: ltr" in block, rule


def test_one_stylesheet_serves_both_directions() -> None:
    # Physical sides (left, right) would stay put when Arabic mirrors the page; logical ones
    # (inline-start, inline-end) follow the direction.
    css = "\n".join(
        (ROOT / "portal" / "static" / name).read_text(encoding="utf-8")
        for name in ("portal.css", "staff.css")
    )
    physical = re.findall(
        r"[\w-]*(?:-left|-right)\b[\w-]*\s*:|(?<![\w-])(?:left|right)\s*:"
        r"|text-align:\s*(?:left|right)|float:\s*(?:left|right)|clear:\s*(?:left|right)",
        re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL),
    )
    assert physical == []


def test_the_address_alone_chooses_the_language(client: FlaskClient) -> None:
    # Tor Browser says en-US to every site; a browser asking for Arabic gets what the URL says.
    for path, lang in (("/fr/", "fr"), ("/en/", "en"), ("/zh/safety", "zh-Hans")):
        page = client.get(path, headers={"Accept-Language": "ar, en-US;q=0.5"})
        assert Text(page.get_data(as_text=True)).root["lang"] == lang
    assert client.get("/de/").status_code == 404


def test_the_chooser_names_each_language_in_itself(client: FlaskClient) -> None:
    page = client.get("/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    for code, (name, direction) in i18n.LANGUAGES.items():
        tag = i18n.tag(code)
        assert re.search(
            rf'<li lang="{tag}" dir="{direction}"><a href="/{code}/" hreflang="{tag}">'
            rf'<span class="name">{name}</span>',
            page,
        ), code
    for heading in (
        "اختر لغتك",
        "请选择语言",
        "Choose your language",
        "Choisissez votre langue",
        "Выберите язык",
        "Elija su idioma",
    ):
        assert heading in page


def language_links(page: str) -> dict[str, str]:
    """The language switcher's links of a page: language code to the whole tag."""
    nav = page.split('<nav class="languages"', 1)[1].split("</nav>", 1)[0]
    return {
        match.group(1): match.group(0)
        for match in re.finditer(r'<a href="/(\w\w)/[^"]*"[^>]*>', nav)
    }


@pytest.mark.parametrize("path", ["/", "/safety", "/key", "/submit", "/follow-up"])
def test_the_language_links_keep_the_same_page(client: FlaskClient, path: str) -> None:
    links = language_links(client.get(f"/fr{path}").get_data(as_text=True))
    assert sorted(links) == sorted(set(LANGUAGES) - {"fr"})
    for code, tag in links.items():
        assert f'href="/{code}{path}"' in tag
        assert f'lang="{i18n.tag(code)}" dir="{i18n.direction(code)}"' in tag


def test_a_filled_form_asks_before_its_language_changes(client: FlaskClient) -> None:
    page = client.get("/ar/submit").get_data(as_text=True)
    assert all("data-warn-language" in tag for tag in language_links(page).values())
    # The question is in the page's language, ready for the script; and without the script the
    # page says to choose the language first.
    warning = re.search(r'<span id="msg-language-warning">([^<]+)</span>', page)
    assert warning
    assert "هل تريد تغيير اللغة" in warning.group(1)
    assert 'id="msg-language-receipt"' in page
    assert 'class="language-note"' in page
    # After a post with problems, the links lead to the same form, and still ask.
    token = csrf_token(client, "/ar/submit")
    page = client.post("/ar/submit", data={"csrf_token": token}).get_data(as_text=True)
    links = language_links(page)
    assert all(
        f'href="/{code}/submit"' in tag and "data-warn-language" in tag
        for code, tag in links.items()
    )
    # Pages without a form leave at once.
    assert not any(
        "data-warn-language" in tag
        for tag in language_links(client.get("/ar/safety").get_data(as_text=True)).values()
    )


def test_the_receipt_page_opens_other_languages_in_a_new_tab(client: FlaskClient) -> None:
    page = client.post(
        "/es/submit",
        data={**MINIMAL_REPORT, "csrf_token": csrf_token(client, "/es/submit")},
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    links = language_links(page)
    assert links
    assert all('target="_blank"' in tag and "noopener" in tag for tag in links.values())


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_error_summary_counts_in_the_language_s_own_plural(
    client: FlaskClient, lang: str
) -> None:
    token = csrf_token(client, f"/{lang}/submit")
    page = client.post(f"/{lang}/submit", data={"csrf_token": token}).get_data(as_text=True)
    heading = re.search(r'<div class="error-summary"[^>]*>\s*<h2>([^<]+)</h2>', page)
    assert heading, "no error summary"
    problems = page.count('<li><a href="#')
    catalog = load(po_path(lang), lang)
    message = catalog["%(num)d answer needs your attention"]
    form = message.string[PLURAL_RULES[lang](problems)]
    assert heading.group(1) == form.replace("%(num)d", str(problems))


# ---------------------------------------------------------------------------------------------
# The offline tools


def test_report_txt_keeps_the_text_as_written_under_english_labels(
    client: FlaskClient, initialised: dict[str, str], team_keys: TeamKeys, tmp_path: Path
) -> None:
    description = "Après mon intervention à Genève, on m'a interdit de quitter le pays."
    response = client.post(
        "/fr/submit",
        data={
            **MINIMAL_REPORT,
            "description": description,
            "target_age": "30_49",
            "csrf_token": csrf_token(client, "/fr/submit"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    export_and_decrypt(CliRunner(), team_keys, tmp_path / "offline")
    [report] = (tmp_path / "offline" / "opened").glob("*/report.txt")
    text = report.read_text(encoding="utf-8")
    assert description in text
    assert re.search(r"^Language:\s+French \(fr\)$", text, re.MULTILINE), text
    for label in (
        "Description",
        "Age group",
        "30 to 49",
        "Does the person targeted agree that the team raises the case with the State concerned?",
    ):
        assert label in text
    assert "Tranche d'âge" not in text
    assert "Oui" not in text
