"""What a form is made of: the kinds of field, a field and a section, and their limits.

The questionnaire (`formats.questionnaire`) describes the report and follow-up forms with these,
and the form's rules (`formats.answers`) gather and check what was posted by them. `N_` marks a
text for translation where it is written, for `pybabel extract`, without translating it: the
web pages translate at render time, and the offline tools write English.

This module imports nothing of the web stack: the offline tools use it too.
"""

from __future__ import annotations

from dataclasses import dataclass


def N_(text: str) -> str:  # the conventional gettext marker name
    """Mark a string for translation without translating it here."""
    return text


TEXT, TEXTAREA, RADIO, CHECKBOXES = "text", "textarea", "radio", "checkboxes"
# A list to choose one from (the countries), a year and month, a whole number.
SELECT, MONTH, COUNT = "select", "month", "count"
TEXT_MAX = 500
TEXTAREA_MAX = 20_000
# What the form accepts for a month (YYYY-MM) and a count; the page gives the same patterns to
# the browser, so that both paths refuse the same answers.
MONTH_PATTERN = "[0-9]{4}-(0[1-9]|1[0-2])"
COUNT_PATTERN = "[0-9]{1,7}"


@dataclass(frozen=True)
class Field:
    """One question of the form."""

    name: str
    kind: str
    label: str
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    required: bool = False
    # The field is required only when another field has a given value: (name, value).
    required_when: tuple[str, str] | None = None
    max_length: int = 0
    # Fields that belong to a choice ("other", "another channel") are shown just below it.
    autocomplete: str = "off"
    # The choices are the ISO 3166 territories (named in the page's language from Babel).
    territories: bool = False
    # A month or count that may not pass another of the same kind when both are given:
    # ("<=" or ">=", the other field, what to say when it does).
    order: tuple[str, str, str] | None = None

    @property
    def limit(self) -> int:
        """The longest text accepted."""
        if self.max_length:
            return self.max_length
        if self.kind == MONTH:
            return 7
        if self.kind == COUNT:
            return 7
        return TEXTAREA_MAX if self.kind == TEXTAREA else TEXT_MAX

    @property
    def pattern(self) -> str:
        """The whole-value pattern an answer must match, or "" for free text."""
        return {MONTH: MONTH_PATTERN, COUNT: COUNT_PATTERN}.get(self.kind, "")

    def choice_label(self, value: str) -> str:
        """The English label of a choice value."""
        return dict(self.choices).get(value, value)


@dataclass(frozen=True)
class Section:
    """A short group of fields under one heading."""

    name: str
    title: str
    intro: str
    fields: tuple[Field, ...]
    # Sections under "More details (optional)": shown after the essentials, all optional.
    details: bool = False
