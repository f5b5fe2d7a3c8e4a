"""The offline sealer: one self-contained HTML file that seals cases to the team key.

`portal sealer` and the public site's key page make it from a public key. It holds the page's
markup, the style sheet, the pre-built script (`static/sealer.js`, built by `npm run build`
from js/sealer.js), the team key and its fingerprint, the questionnaire generated here from
`formats.questionnaire` (so the file and the report form cannot drift), and the texts of the six
languages read from the compiled catalogues with the standard `gettext` module. Nothing in it
loads anything: its own Content-Security-Policy allows only its inline script and style, by
their hashes, and no connection at all.

Made from the site's key file (or by the site itself), it also holds the site's receipt salt and
cost (see `receipts`): the page then makes each case's receipt with Argon2id in the browser,
seals the case's reply key inside it, and shows the receipt to the relay. Made from a key file
without them, it seals as before and the site makes the receipt at upload.

The file holds no date and nothing of the machine that made it, so the same key and the same
build give the same bytes, whose SHA-256 can be published.

This module imports no web stack: relays make the file with the base install.
"""

from __future__ import annotations

import base64
import gettext
import hashlib
import json
from html import escape
from pathlib import Path

from portal.formats import crypto, questionnaire, receipts, shipped
from portal.formats.fields import CHECKBOXES, COUNT, RADIO, SELECT, TEXTAREA, Field
from portal.offline import sealer_texts

SCRIPT = shipped.SEALER_SCRIPT
STYLESHEET = shipped.STYLESHEET
# The six languages in the UN's order, each named in itself (as the site's chooser names them).
LANGUAGES: dict[str, str] = {
    "ar": "العربية",
    "zh": "中文",
    "en": "English",
    "fr": "Français",
    "ru": "Русский",
    "es": "Español",
}
TAGS = {"zh": "zh-Hans"}
RTL = frozenset({"ar"})
INTRO = ' class="intro"'
OPT = ' class="opt"'
ATTACHMENTS_HELP = ' class="help" id="attachments-help"'
EXTRA_STYLE = """
.sealer-bar select { font: inherit; padding: 0.25rem; }
.keybox { border: 2px solid var(--accent); padding: 0.5rem 1rem; margin-block: 1rem; }
.fingerprint { font-size: 1.15rem; font-weight: 700; letter-spacing: 0.03em; }
#sealer-saved, #csv-saved { padding-inline-start: 1.2rem; }
#sealer-saved li, #csv-saved li { margin-block: 0.5rem; }
progress { inline-size: 100%; block-size: 1.2rem; }
"""


class SealerError(Exception):
    """The sealer file cannot be made; the message says what is missing."""


def texts() -> tuple[str, ...]:
    """Every English text the sealer shows: its own, and the questionnaire's."""
    wanted: list[str] = [*sealer_texts.PAGE, *sealer_texts.SCRIPT]
    for section in questionnaire.REPORT_SECTIONS:
        wanted += [section.title, section.intro]
        for field in section.fields:
            wanted += [field.label, *([field.help] if field.help else [])]
            if field.order:
                wanted.append(field.order[2])
            # Territories are named by CLDR, not by the catalogues: only "other" is translated.
            choices = [
                (v, lbl) for v, lbl in field.choices if not field.territories or v == "other"
            ]
            wanted += [label for _value, label in choices]
            if field.kind == SELECT:
                wanted.append(sealer_texts.CHOOSE)
    return tuple(dict.fromkeys(wanted))


def translations(folder: Path = shipped.TRANSLATIONS) -> dict[str, dict[str, str]]:
    """The sealer's texts in each language, from the compiled catalogues (English is the key)."""
    table: dict[str, dict[str, str]] = {}
    for code in LANGUAGES:
        try:
            catalogue = gettext.translation("messages", str(folder), [code])
        except OSError as exc:
            raise SealerError(
                f"The compiled catalogue of {code!r} is missing from {folder} (compile the "
                "catalogues: pybabel compile -d portal/translations, or install a wheel made "
                "by `make dist`)."
            ) from exc
        entries = {"@tag": TAGS.get(code, code)}
        for text in texts():
            translated = catalogue.gettext(text)
            if translated != text:
                entries[text] = translated
        table[code] = entries
    return table


def _e(text: str) -> str:
    return escape(text, quote=True)


def _t(text: str, tag: str = "span", attributes: str = "") -> str:
    """An element whose text the page's script replaces with the chosen language's."""
    return f'<{tag}{attributes} data-t="{_e(text)}">{_e(text)}</{tag}>'


def _marker(field: Field) -> str:
    if field.required:
        return _t(sealer_texts.REQUIRED, attributes=' class="req"')
    if field.required_when:
        return _t(sealer_texts.REQUIRED_IF, attributes=' class="opt"')
    return _t(sealer_texts.OPTIONAL, attributes=' class="opt"')


def _help(field: Field) -> str:
    if not field.help:
        return ""
    return _t(field.help, "p", f' class="help" id="{field.name}-help"')


def field_markup(field: Field) -> str:
    """One question of the report form, with the same names and values as the site's form."""
    described = f' aria-describedby="{field.name}-help"' if field.help else ""
    required = " required" if field.required else ""
    if field.kind in (RADIO, CHECKBOXES):
        kind = "radio" if field.kind == RADIO else "checkbox"
        options = "".join(
            f'<label class="option"><input type="{kind}" name="{field.name}" value="{_e(value)}"'
            f"{required if kind == 'radio' else ''}> {_t(label)}</label>\n"
            for value, label in field.choices
        )
        return (
            f'<fieldset class="field choice" id="{field.name}"{described}>\n'
            f"<legend>{_t(field.label)} {_marker(field)}</legend>\n{_help(field)}\n"
            f'<div class="options">\n{options}</div>\n</fieldset>\n'
        )
    label = f'<label for="{field.name}">{_t(field.label)} {_marker(field)}</label>\n'
    common = f'name="{field.name}" id="{field.name}" maxlength="{field.limit}"{required}{described}'
    if field.kind == TEXTAREA:
        rows = 10 if field.name == "description" else 4
        control = f'<textarea {common} rows="{rows}"></textarea>'
    elif field.kind == SELECT:
        # The places keep their English (CLDR) names here: the file carries no territory names
        # in other languages. The values are the same ISO codes as the site's.
        named = sorted(
            (item for item in field.choices if item[0] != "other"), key=lambda item: item[1]
        )
        options = "".join(f'<option value="{_e(v)}">{_e(label)}</option>' for v, label in named)
        other = _t(field.choice_label("other"), "option", ' value="other"')
        choose = _t(sealer_texts.CHOOSE, "option", ' value=""')
        control = (
            f'<select name="{field.name}" id="{field.name}"{required}{described}>'
            f"{choose}{options}{other}</select>"
        )
    elif field.pattern:
        numeric = ' inputmode="numeric"' if field.kind == COUNT else ""
        control = (
            f'<input type="text" {common} autocomplete="off" pattern="{field.pattern}" dir="ltr"'
            f"{numeric}>"
        )
    else:
        control = f'<input type="text" {common} autocomplete="off">'
    return f'<div class="field">\n{label}{_help(field)}\n{control}\n</div>\n'


def form_markup() -> str:
    """The questionnaire's sections, generated from `formats.questionnaire.REPORT_SECTIONS`."""
    parts = []
    for section in questionnaire.REPORT_SECTIONS:
        fields = "".join(field_markup(field) for field in section.fields)
        parts.append(
            f'<section class="form-section" id="section-{section.name}">\n'
            f"{_t(section.title, 'h2')}\n{_t(section.intro, 'p', INTRO)}\n"
            f"{fields}</section>\n"
        )
    return "".join(parts)


def field_definitions() -> list[dict[str, object]]:
    """The questionnaire's rules for the page's own check (js/cases.js)."""
    return [
        {
            "name": field.name,
            "kind": field.kind,
            "label": field.label,
            "choices": [value for value, _label in field.choices],
            "required": field.required,
            "required_when": list(field.required_when) if field.required_when else None,
            "limit": field.limit,
            "pattern": field.pattern,
            "order": list(field.order) if field.order else None,
        }
        for field in questionnaire.REPORT_FIELDS
    ]


def _json_block(element_id: str, value: object) -> str:
    # "<" never appears raw inside the block, so no text in it can close the element.
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    text = text.replace("<", "\\u003c")
    return f'<script type="application/json" id="{element_id}">{text}</script>\n'


def _sha256_source(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def policy(script: str, style: str) -> str:
    """The file's own Content-Security-Policy: its inline script and style, nothing else."""
    return (
        "default-src 'none'; "
        f"script-src {_sha256_source(script)}; "
        f"style-src {_sha256_source(style)}; "
        "connect-src 'none'; img-src 'none'; font-src 'none'; media-src 'none'; "
        "object-src 'none'; frame-src 'none'; worker-src 'none'; form-action 'none'; "
        "base-uri 'none'"
    )


def _noscript(table: dict[str, dict[str, str]]) -> str:
    lines = []
    for code in LANGUAGES:
        text = table[code].get(sealer_texts.NO_SCRIPT, sealer_texts.NO_SCRIPT)
        direction = "rtl" if code in RTL else "ltr"
        lines.append(f'<p lang="{TAGS.get(code, code)}" dir="{direction}">{_e(text)}</p>')
    return '<noscript><div class="notice">\n' + "\n".join(lines) + "\n</div></noscript>\n"


def _chooser() -> str:
    options = "".join(
        f'<option value="{code}" lang="{TAGS.get(code, code)}"'
        f"{' selected' if code == 'en' else ''}>{_e(name)}</option>"
        for code, name in LANGUAGES.items()
    )
    return (
        f'<label for="sealer-language">{_t(sealer_texts.LANGUAGE)}</label> '
        f'<select id="sealer-language">{options}</select>'
    )


def _build_script(path: Path) -> str:
    try:
        script = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SealerError(
            f"{path} is not built: run `npm ci && npm run build` in a checkout, or install a "
            "wheel made by `make dist`."
        ) from exc
    if "</script" in script.lower() or "<!--" in script:
        raise SealerError(f"{path} holds text that would end an inline script; rebuild it.")
    return script.strip()


def _receipt_attributes(site: receipts.Published | None) -> str:
    """The site's receipt salt and cost, as attributes the page's script reads."""
    if site is None:
        return ""
    salt = base64.b64encode(site.salt).decode("ascii")
    return (
        f' data-receipt-salt="{salt}" data-receipt-opslimit="{site.opslimit}"'
        f' data-receipt-memlimit="{site.memlimit}"'
    )


def build(
    public_key: bytes, *, script_path: Path = SCRIPT, site: receipts.Published | None = None
) -> bytes:
    """The sealer file for this key (and the site's receipt salt and cost, when given), as
    UTF-8 bytes; the same inputs and build give the same bytes."""
    script = _build_script(script_path)
    style = STYLESHEET.read_text(encoding="utf-8").strip() + "\n" + EXTRA_STYLE.strip()
    table = translations()
    key_b64 = base64.b64encode(public_key).decode("ascii")
    fingerprint = crypto.fingerprint(public_key)
    s = sealer_texts
    page = "".join(
        [
            '<!doctype html>\n<html lang="en" dir="ltr">\n<head>\n<meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{policy(script, style)}">\n',
            '<meta name="referrer" content="no-referrer">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{_e(s.TITLE)}</title>\n<style>{style}</style>\n</head>\n<body>\n",
            f'<header class="site"><div class="bar sealer-bar">{_t(s.TITLE, "strong")}\n',
            f"{_chooser()}</div></header>\n",
            '<main id="main" tabindex="-1">\n',
            f"{_t(s.TITLE, 'h1')}\n{_t(s.INTRO, 'p')}\n{_noscript(table)}",
            f'<section class="keybox">\n{_t(s.KEY_HEADING, "h2")}\n',
            f'<p>{_t(s.FINGERPRINT, "strong")}</p>\n<p class="fingerprint-box"><code ',
            f'class="fingerprint" dir="ltr" translate="no" id="sealer-fingerprint">{fingerprint}',
            f"</code></p>\n{_t(s.COMPARE, 'p')}\n",
            '<pre class="keyfile" dir="ltr" translate="no" id="sealer-key" data-team-key="',
            f'{key_b64}"{_receipt_attributes(site)}>{key_b64}</pre>\n</section>\n',
            '<p id="sealer-refused" class="notice" role="alert" data-t="" hidden></p>\n',
            '<p id="sealer-receipt-note" data-t="" hidden></p>\n',
            '<div id="sealer-app" hidden>\n',
            '<form id="sealer-form" novalidate>\n',
            '<div id="sealer-problems" class="error-summary" role="alert" tabindex="-1" hidden>',
            f"{_t(s.PROBLEMS, 'p')}<ul></ul></div>\n",
            form_markup(),
            '<div class="field">\n<label for="attachments">',
            f"{_t(s.ATTACHMENTS)} {_t(s.OPTIONAL, attributes=OPT)}</label>\n",
            f"{_t(s.ATTACHMENTS_HELP, 'p', ATTACHMENTS_HELP)}\n",
            '<input type="file" name="attachments" id="attachments" multiple ',
            'aria-describedby="attachments-help">\n</div>\n',
            f'<button type="submit">{_t(s.SEAL)}</button>\n</form>\n',
            '<div id="sealer-status" role="status" aria-live="polite" hidden></div>\n',
            '<progress id="sealer-progress" max="1" value="0" hidden></progress>\n',
            '<div id="sealer-done" tabindex="-1" hidden>\n<ul id="sealer-saved"></ul>\n',
            f'<button type="button" class="secondary" id="sealer-another">{_t(s.ANOTHER)}',
            "</button>\n</div>\n",
            f'<section class="form-section" id="sealer-csv">\n{_t(s.CSV_HEADING, "h2")}\n',
            f"{_t(s.CSV_INTRO, 'p', INTRO)}\n",
            '<form id="csv-form" novalidate>\n',
            f'<div class="field"><label for="csv-file">{_t(s.CSV_FILE)}</label>\n',
            '<input type="file" id="csv-file" accept=".csv,text/csv"></div>\n',
            f'<div class="field"><label for="csv-attachments">{_t(s.CSV_ATTACHMENTS)}</label>\n',
            '<input type="file" id="csv-attachments" multiple></div>\n',
            f'<button type="submit" class="secondary" id="csv-seal">{_t(s.CSV_SEAL)}</button>\n',
            '</form>\n<ul id="csv-saved"></ul>\n</section>\n</div>\n</main>\n',
            _json_block("sealer-texts", table),
            _json_block("sealer-fields", field_definitions()),
            f"<script>{script}</script>\n</body>\n</html>\n",
        ]
    )
    return page.encode("utf-8")


def sha256(data: bytes) -> str:
    """The SHA-256 of a file's bytes, in hex, as `sha256sum` prints it."""
    return hashlib.sha256(data).hexdigest()


def check_fingerprint(public_key: bytes, expected: str | None) -> None:
    """Refuse a key whose fingerprint is not the one given (spaces and case do not matter)."""
    if expected is None:
        return
    given = "".join(expected.split()).upper()
    actual = crypto.fingerprint(public_key)
    if given != "".join(actual.split()):
        raise SealerError(
            f"The key's fingerprint is {actual}, not the one given: no sealer was made. Check "
            "that this is the team's key file."
        )
