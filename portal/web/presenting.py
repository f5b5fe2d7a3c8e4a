"""How questions, answers and sizes read on a page, in the page's language.

The country lists name each territory as Babel (CLDR) names it in the page's language; the
problem summary joins a question and its problem without doubling punctuation; file sizes use
CLDR's units for the language.
"""

from __future__ import annotations

import unicodedata

from babel import Locale
from babel.units import format_unit
from flask_babel import gettext

from portal.formats import answers, questionnaire, sizes
from portal.formats.fields import Field
from portal.web import i18n


def _(text: str, **variables: str) -> str:
    return str(gettext(text, **variables))


def choice_labels(f: Field) -> list[tuple[str, str]]:
    """A list field's choices named in the page's language: the territories from Babel (CLDR),
    in the order of their names, then "other"."""
    if not f.territories:
        return [(value, _(label)) for value, label in f.choices]
    names = Locale.parse(i18n.current()).territories
    places = [(code, names.get(code, english)) for code, english in f.choices]
    places = [p for p in places if p[0] != questionnaire.OTHER_COUNTRY]
    places.sort(key=lambda place: _sort_key(place[1]))
    return [*places, (questionnaire.OTHER_COUNTRY, _(f.choice_label(questionnaire.OTHER_COUNTRY)))]


def _sort_key(name: str) -> str:
    # Accents sort with their letter (Åland near Albania, Émirats near Égypte).
    return "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))


def pattern_problem(f: Field) -> str:
    """What a person reads when a month or a count is not written as asked."""
    return answers.PATTERN_PROBLEMS.get(f.kind, "")


# A label that ends in its own punctuation (a question) is not followed by a colon as well.
_ENDS_IN_PUNCTUATION = ("?", "\u061f", "\uff1f", ":", "\uff1a", ".", "\u3002")


def problem_line(label: str, message: str) -> str:
    """One line of the problem summary: the question's label, then what is wrong."""
    label = label.strip()
    if label.endswith(_ENDS_IN_PUNCTUATION):
        return f"{label} {message}"
    return _("%(label)s: %(problem)s", label=label, problem=message)


# The public pages count sizes up to gigabytes (5,000 GB, not 5 TB), in whole units.
_LARGEST_UNIT = "digital-gigabyte"


def filesize(size: int) -> str:
    """A file size in the page's language (CLDR's units: "kB" in English, "ko" in French, "КБ"
    in Russian…), in decimal units, rounded down."""
    value, unit = sizes.scaled(size, _LARGEST_UNIT)
    return str(format_unit(int(value), unit, "short", locale=i18n.current()))
