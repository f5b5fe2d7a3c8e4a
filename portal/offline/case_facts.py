"""What the register reads from a case's answers, under today's form and the redesigned one.

The questionnaire's field names are a contract (`formats.questionnaire`). The redesigned form adds
`urgent`, `state_responsible`, `group_size`, `group_women`, `consent_share_un` and others; this
module reads those names when a submission has them and today's names otherwise, so that the
register works on cases sent before and after the change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from portal.formats import questionnaire

# Consent questions, in the order they are shown. The latest answer the submitter gave to each,
# in the report or any follow-up, is the one that applies.
CONSENT_FIELDS = ("consent_report", "consent_raise", "consent_contact", "consent_share_un",
                  "consent_of")  # fmt: skip
CONSENT_TITLES = {
    "consent_report": "in the annual report",
    "consent_raise": "may raise with the State",
    "consent_contact": "may contact",
    "consent_share_un": "may share within the UN",
    "consent_of": "whose consent",
}
# Fields a follow-up may restate; anything else in a follow-up is new information only.
RESTATED = (*CONSENT_FIELDS, "urgent", "urgent_details")
# Consent to publish, as the annual report's tables name it.
PUBLISH = {"named": "named", "anonymous": "anonymised", "no": "not"}
PUBLISH_ORDER = ("named", "anonymised", "not", "not stated")
NEW_FIELDS = ("urgent", "urgent_details", "consent_of", "consent_share_un", "state_responsible",
              "incident_from", "incident_to", "cooperation_from", "group_size", "group_women",
              "earlier_reference")  # fmt: skip
# The columns of a case's row in `cases.csv`: every answer (the "other" texts included, so
# that a row says what "other" was) but the description, which is in report.txt whole (a
# spreadsheet cell holds at most 32,767 characters).
STRUCTURED_FIELDS = tuple(f.name for f in questionnaire.REPORT_FIELDS if f.name != "description")
# The answers kept beside each case for cases.csv: today's structured fields and the new ones.
SUMMARY_FIELDS = tuple(dict.fromkeys((*STRUCTURED_FIELDS, *NEW_FIELDS)))
MAX_PEOPLE = 1_000_000
ISO_CODE = re.compile(r"^[A-Za-z]{2}$")


@dataclass
class Facts:
    """One case as the register files it."""

    urgent: bool = False
    country: str = ""
    state: str = ""
    acts: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    gender: str = ""
    people: int = 1
    women: int | None = None
    consent: dict[str, str] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)

    @property
    def publish(self) -> str:
        """Consent to publish that applies: named, anonymised, not, or "not stated"."""
        return PUBLISH.get(self.consent.get("consent_report", ""), "not stated")


def text_of(value: object) -> str:
    """A field's value as one string; several values joined with `;`."""
    if isinstance(value, list):
        return ";".join(str(item) for item in value)
    return "" if value is None else str(value)


def items_of(value: object) -> list[str]:
    """A field's values as a list, whether it was sent as one string or a list."""
    if isinstance(value, list):
        return [str(item) for item in value if str(item)]
    return [str(value)] if isinstance(value, str) and value else []


def place(value: object) -> str:
    """A country or State as the register files it: ISO codes in capitals, else as written."""
    text = " ".join(text_of(value).split())
    return text.upper() if ISO_CODE.match(text) else text


def _count(value: object) -> int | None:
    text = text_of(value).strip()
    if not text.isdigit():
        return None
    return min(int(text), MAX_PEOPLE)


def statements(fields: dict[str, Any]) -> dict[str, str]:
    """The consent answers one submission states (strings only; anything else is ignored)."""
    return {
        name: fields[name]
        for name in CONSENT_FIELDS
        if isinstance(fields.get(name), str) and fields[name]
    }


def derive(report: dict[str, Any], later: list[dict[str, Any]]) -> Facts:
    """A case's facts from its report's fields and its follow-ups' fields, oldest first."""
    effective = dict(report)
    for fields in later:
        effective.update((name, fields[name]) for name in RESTATED if name in fields)
    facts = Facts()
    facts.urgent = text_of(effective.get("urgent")).strip().lower() == "yes"
    facts.country = place(effective.get("country"))
    # Today's form asks only where it happened; that country is the best guess of the State.
    facts.state = place(effective.get("state_responsible")) or facts.country
    facts.acts = items_of(effective.get("violations"))
    facts.bodies = items_of(effective.get("un_bodies"))
    facts.gender = text_of(effective.get("target_gender"))
    size = _count(effective.get("group_size"))
    if size:
        facts.people = size
        women = _count(effective.get("group_women"))
        facts.women = None if women is None else min(women, size)
    facts.consent = statements(effective)
    facts.answers = {name: text_of(effective[name]) for name in SUMMARY_FIELDS if name in effective}
    return facts


def gender_counts(facts: Facts) -> dict[str, int]:
    """People by gender: a group's women as given and the rest not stated; else the one person."""
    if facts.women is not None:
        counts = {"woman": facts.women, "not stated": facts.people - facts.women}
        return {name: count for name, count in counts.items() if count}
    label = facts.gender if facts.gender in ("woman", "man", "other") else "not stated"
    return {label: facts.people}


def label(name: str, value: str) -> str:
    """The English label of one choice of a form field, or the value itself."""
    spec = questionnaire.FIELDS_BY_NAME.get(name)
    return spec.choice_label(value) if spec else value
