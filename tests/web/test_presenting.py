"""How sizes read on the public pages: Babel's (CLDR's) units in the page's language, in whole
decimal units, rounded down, up to gigabytes."""

from __future__ import annotations

import pytest
from flask import Flask, g

from portal.web import presenting

NNBSP = "\u202f"  # the narrow no-break space French puts between a number and its unit
NBSP = "\u00a0"

# What each language's page has always shown for these sizes.
KNOWN = {
    "en": ["0 byte", "999 byte", "1 kB", "1 kB", "999 kB", "1 MB", "1 GB", "5,000 GB"],
    "fr": [
        f"0{NNBSP}o",
        f"999{NNBSP}o",
        f"1{NNBSP}ko",
        f"1{NNBSP}ko",
        f"999{NNBSP}ko",
        f"1{NNBSP}Mo",
        f"1{NNBSP}Go",
        f"5{NNBSP}000{NNBSP}Go",
    ],
    "es": ["0 B", "999 B", "1 kB", "1 kB", "999 kB", "1 MB", "1 GB", "5.000 GB"],
    "ar": [
        "0 بايت",
        "999 بايت",
        "1 كيلوبايت",
        "1 كيلوبايت",
        "999 كيلوبايت",
        "1 م.ب",
        "1 غ.ب",
        "5,000 غ.ب",
    ],
    "ru": ["0 Б", "999 Б", "1 кБ", "1 кБ", "999 кБ", "1 МБ", "1 ГБ", f"5{NBSP}000 ГБ"],
    "zh": ["0 B", "999 B", "1 kB", "1 kB", "999 kB", "1 MB", "1 GB", "5,000 GB"],
}
SIZES = [0, 999, 1000, 1500, 999_999, 1_234_567, 10**9, 5 * 10**12]


@pytest.mark.parametrize("lang", sorted(KNOWN))
def test_sizes_read_in_the_pages_language_as_they_always_have(app: Flask, lang: str) -> None:
    with app.test_request_context(f"/{lang}/submit"):
        g.lang = lang
        assert [presenting.filesize(size) for size in SIZES] == KNOWN[lang]
