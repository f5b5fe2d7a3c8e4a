"""Languages: the six official UN languages, chosen by the URL prefix and never by headers.

Tor Browser tells every site it prefers English, so `Accept-Language` says nothing about the
person; the prefix `/ar/`, `/zh/`, `/en/`, `/fr/`, `/ru/`, `/es/` is the only source. The
catalogues live in `portal/translations/` (`make translations` re-extracts them; `make setup`
compiles them). The staff site is English-only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask, current_app, g, has_request_context, request, url_for
from flask_babel import Babel, force_locale, gettext

from portal.formats.fields import N_
from portal.web.resources import TRANSLATIONS

DEFAULT = "en"
# In the UN's order (English alphabetical): each language named in itself.
LANGUAGES: dict[str, tuple[str, str]] = {
    "ar": ("العربية", "rtl"),
    "zh": ("中文", "ltr"),
    "en": ("English", "ltr"),
    "fr": ("Français", "ltr"),
    "ru": ("Русский", "ltr"),
    "es": ("Español", "ltr"),
}
# The `lang` attribute of pages in each language: the UN writes Chinese in simplified characters,
# and saying so lets browsers pick simplified glyphs rather than Japanese or traditional ones.
TAGS: dict[str, str] = {"zh": "zh-Hans"}
# The language chooser at `/` shows these in each of the six languages at once.
CHOOSER_HEADING = N_("Choose your language")
CHOOSER_PURPOSE = N_("Report intimidation or reprisals for cooperating with the United Nations")
# A page reached by posting a form has no address of its own: its language links lead to the
# page that holds the same form, empty, in the other language.
SAME_PAGE_AFTER_POST = {
    "public.submit_post": "public.submit",
    "public.follow_up_post": "public.follow_up",
    "public.case_file_post": "public.case_file",
}

log = logging.getLogger("portal")


@dataclass(frozen=True)
class LanguageLink:
    """One entry of the language switcher."""

    code: str
    tag: str
    name: str
    dir: str
    href: str
    current: bool


def current() -> str:
    """The language of the current request (from its URL), English outside any prefix."""
    lang = g.get("lang")
    if lang is None and has_request_context() and current_app.config.get("PORTAL_SITE") == "public":
        # A page that matched no route (a mistyped address under /fr/) still speaks French.
        lang = request.path.lstrip("/").split("/", 1)[0]
    return lang if isinstance(lang, str) and lang in LANGUAGES else DEFAULT


def direction(lang: str) -> str:
    """`rtl` or `ltr`."""
    return LANGUAGES.get(lang, LANGUAGES[DEFAULT])[1]


def tag(lang: str) -> str:
    """The BCP 47 tag for the page's `lang` attribute."""
    return TAGS.get(lang, lang)


def in_language(lang: str, text: str) -> str:
    """`text` translated into `lang` whatever the page's language (for the chooser)."""
    with force_locale(lang):
        return str(gettext(text))


def language_links() -> list[LanguageLink]:
    """The switcher: the same page in each language, or its form when it was reached by a post."""
    endpoint = request.endpoint or ""
    if request.blueprint != "public":
        endpoint = "public.index"
    elif request.method != "GET" or request.view_args:
        # A page whose address holds more than its language (an upload's, answering with an
        # error page) has no twin to link to: its form's page, or the landing page, does.
        endpoint = SAME_PAGE_AFTER_POST.get(endpoint, "public.index")
    lang = current()
    return [
        LanguageLink(code, tag(code), name, rtl, url_for(endpoint, lang=code), code == lang)
        for code, (name, rtl) in LANGUAGES.items()
    ]


def init_app(app: Flask) -> None:
    """Attach Flask-Babel with the URL-prefix locale selector."""
    Babel(app, locale_selector=current, default_translation_directories=str(TRANSLATIONS))
    _warn_if_uncompiled()

    @app.context_processor
    def _language() -> dict[str, object]:
        lang = current()
        return {
            "lang": lang,
            "lang_tag": tag(lang),
            "dir": direction(lang),
            "languages": LANGUAGES,
            "language_links": language_links,
            "in_language": in_language,
        }


def _warn_if_uncompiled() -> None:
    """Say so when a catalogue has no compiled `.mo` or an older one: pages would be English."""
    for code in LANGUAGES:
        po = TRANSLATIONS / code / "LC_MESSAGES" / "messages.po"
        mo = po.with_suffix(".mo")
        if po.exists() and (not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime):
            log.warning("the %s catalogue is not compiled: run `make setup`", code)
