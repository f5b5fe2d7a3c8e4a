"""The form's rules, for any of its fields: gather what was posted, check it, show it again.

The report and follow-up pages and `portal seal` (a relay's cases) gather and check what they
receive by these rules, over the fields of `formats.questionnaire`; the offline sealer's own
check (js/cases.js) gives the same problems. The problems are English texts marked for
translation.

This module imports nothing of the web stack: the offline tools use it too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from portal.formats.fields import (
    CHECKBOXES,
    COUNT,
    MONTH,
    N_,
    RADIO,
    SELECT,
    TEXT,
    TEXTAREA,
    Field,
)

# Names that travel with the form but are never fields of a report (js/envelope.js skips the
# same names when it gathers the fields).
NOT_FIELDS = frozenset({"csrf_token", "website", "attachments", "receipt"})
HONEYPOT = "website"


@dataclass(frozen=True)
class Problem:
    """A problem with one field, for the person who filled it in."""

    field: str
    message: str


FieldValues = dict[str, "str | list[str]"]


def collect(form: Mapping[str, Sequence[str]], fields: Sequence[Field]) -> FieldValues:
    """Gather posted values by the shared rule: text as typed, lists for checkboxes, no empties.

    Line endings become LF so the browser and server paths give identical manifests.
    """
    values: FieldValues = {}
    for f in fields:
        posted = [v.replace("\r\n", "\n").replace("\r", "\n") for v in form.get(f.name, ())]
        if f.kind == CHECKBOXES:
            chosen = [v for v in posted if v]
            if chosen:
                values[f.name] = chosen
        elif posted and posted[0]:
            values[f.name] = posted[0]
    return values


def echo(form: Mapping[str, Sequence[str]], fields: Sequence[Field]) -> dict[str, list[str]]:
    """What was posted, to show again in its form: the form's own fields, each within its limit.

    A choice is shown only if it is one of the field's own; a text is cut to its limit (with
    line endings as LF, as `collect` counts them). However large the post, the page that
    answers it is no larger than the form itself can hold.
    """
    shown: dict[str, list[str]] = {}
    for f in fields:
        posted = form.get(f.name, ())
        if f.kind in (RADIO, CHECKBOXES):
            allowed = {choice for choice, _ in f.choices}
            chosen = [v for v in posted if v in allowed][: len(allowed)]
        else:
            chosen = [v.replace("\r\n", "\n").replace("\r", "\n")[: f.limit] for v in posted[:1]]
        if chosen:
            shown[f.name] = chosen
    return shown


def check(values: FieldValues, fields: Sequence[Field]) -> list[Problem]:
    """Check values against the fields' rules; messages are English and marked for translation."""
    problems: list[Problem] = []
    for f in fields:
        value = values.get(f.name)
        needed = f.required or (
            f.required_when is not None and values.get(f.required_when[0]) == f.required_when[1]
        )
        if value is None:
            if needed:
                problems.append(
                    Problem(
                        f.name,
                        N_("Please answer this question.")
                        if f.kind in (RADIO, SELECT)
                        else N_("Please fill in this field."),
                    )
                )
            continue
        allowed = {choice for choice, _ in f.choices}
        # A list where one choice belongs (a crafted post, a relay's JSON) is refused, not hashed.
        if f.kind in (RADIO, SELECT) and (not isinstance(value, str) or value not in allowed):
            problems.append(Problem(f.name, N_("Please choose one of the options.")))
        elif f.kind == CHECKBOXES and (
            not isinstance(value, list)
            or not set(value) <= allowed
            or len(set(value)) != len(value)
        ):
            problems.append(Problem(f.name, N_("Please choose among the options.")))
        elif f.kind in (TEXT, TEXTAREA):
            if not isinstance(value, str):
                problems.append(Problem(f.name, N_("Please fill in this field.")))
            elif len(value) > f.limit:
                problems.append(Problem(f.name, N_("This is too long; please shorten it.")))
            elif f.required and not value.strip():
                problems.append(Problem(f.name, N_("Please fill in this field.")))
        elif f.kind in (MONTH, COUNT):
            if not _matches(f, value):
                problems.append(Problem(f.name, PATTERN_PROBLEMS[f.kind]))
            elif f.order and _out_of_order(f, str(value), values.get(f.order[1])):
                problems.append(Problem(f.name, f.order[2]))
    return problems


def _matches(f: Field, value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(f.pattern, value, re.ASCII) is not None


def _out_of_order(f: Field, value: str, other: object) -> bool:
    """Whether a month or count passes the other answer its order names (a well-formed one of
    the same kind: a missing or malformed other answer has its own problem, or none)."""
    assert f.order is not None
    if not _matches(f, other):
        return False
    at_most = f.order[0] == "<="
    if f.kind == COUNT:
        mine, theirs = int(value), int(str(other))
        return mine > theirs if at_most else mine < theirs
    # Months as YYYY-MM: their order is the order of their text.
    return value > str(other) if at_most else value < str(other)


# What a person reads when a month or a count is not written as the form asks.
PATTERN_PROBLEMS = {
    MONTH: N_("Please write the year and month as numbers, for example 2025-11."),
    COUNT: N_("Please write a number with digits only, for example 12."),
}
