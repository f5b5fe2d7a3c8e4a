"""Languages: the six official UN languages, chosen by the URL prefix and never by headers.

Tor Browser tells every site it prefers English, so `Accept-Language` says nothing about the
person; the prefix `/ar/`, `/zh/`, `/en/`, `/fr/`, `/ru/`, `/es/` is the only source.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, g
from flask_babel import Babel

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
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


def current() -> str:
    """The language of the current request (from its URL), English outside any prefix."""
    lang = g.get("lang")
    return lang if isinstance(lang, str) and lang in LANGUAGES else DEFAULT


def direction(lang: str) -> str:
    """`rtl` or `ltr`."""
    return LANGUAGES.get(lang, LANGUAGES[DEFAULT])[1]


def init_app(app: Flask) -> None:
    """Attach Flask-Babel with the URL-prefix locale selector."""
    Babel(app, locale_selector=current, default_translation_directories=str(TRANSLATIONS))

    @app.context_processor
    def _language() -> dict[str, object]:
        lang = current()
        return {"lang": lang, "dir": direction(lang), "languages": LANGUAGES}
