"""The report and follow-up forms as data: every field, its choices and its rules.

One description serves the web form (labels translated at render time), the server-side
check of what was posted, and the offline `report.txt` (labels in English). It follows the
reprisals team's call for information and the taxonomy of the Secretary-General's reports on
cooperation with the United Nations. Only the description and the consent questions are
required; no field forces a person to identify themselves.

This module imports nothing of the web stack: the offline tools use it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def N_(text: str) -> str:  # the conventional gettext marker name
    """Mark a string for translation without translating it here."""
    return text


TEXT, TEXTAREA, RADIO, CHECKBOXES = "text", "textarea", "radio", "checkboxes"
TEXT_MAX = 500
TEXTAREA_MAX = 20_000
DESCRIPTION_MAX = 100_000


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

    @property
    def limit(self) -> int:
        """The longest text accepted."""
        if self.max_length:
            return self.max_length
        return TEXTAREA_MAX if self.kind == TEXTAREA else TEXT_MAX

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


YES_NO = (("yes", N_("Yes")), ("no", N_("No")))

REPORT_SECTIONS: tuple[Section, ...] = (
    Section(
        "submitter",
        N_("About you"),
        N_("Tell us how you are connected to what happened."),
        (
            Field(
                "submitter_role",
                RADIO,
                N_("Who is submitting this information?"),
                choices=(
                    ("targeted", N_("I am the person targeted")),
                    ("relative", N_("A relative of the person targeted")),
                    ("witness", N_("A witness")),
                    ("representative", N_("A representative or an organisation relaying the case")),
                ),
            ),
            Field(
                "relay_consent",
                RADIO,
                N_("If you are relaying the case: did the person targeted give informed consent?"),
                N_(
                    "The team acts on a case only with the consent of the person concerned, or of "
                    "their family when they cannot give it."
                ),
                choices=(
                    ("yes", N_("Yes")),
                    ("no", N_("No")),
                    ("unable", N_("They cannot give it (for example, detained or disappeared)")),
                ),
                required_when=("submitter_role", "representative"),
            ),
            Field(
                "relay_consent_how",
                TEXTAREA,
                N_("How was consent given?"),
                N_("For example: in person, by a secure message, through a relative."),
            ),
        ),
    ),
    Section(
        "target",
        N_("The person or group targeted"),
        N_("All of this is optional. A pseudonym is enough."),
        (
            Field("target_name", TEXT, N_("Name or pseudonym")),
            Field(
                "target_type",
                RADIO,
                N_("Is this an individual or an organisation?"),
                choices=(
                    ("individual", N_("An individual")),
                    ("group", N_("A group of people")),
                    ("organisation", N_("An organisation")),
                ),
            ),
            Field(
                "target_gender",
                RADIO,
                N_("Gender"),
                choices=(
                    ("woman", N_("Woman")),
                    ("man", N_("Man")),
                    ("other", N_("Another gender identity")),
                    ("undisclosed", N_("Prefer not to say")),
                ),
            ),
            Field(
                "target_age",
                RADIO,
                N_("Age group"),
                choices=(
                    ("under_18", N_("Under 18")),
                    ("18_29", N_("18 to 29")),
                    ("30_49", N_("30 to 49")),
                    ("50_64", N_("50 to 64")),
                    ("65_plus", N_("65 or older")),
                ),
            ),
            Field(
                "target_occupation",
                CHECKBOXES,
                N_("Occupation or role"),
                N_("Choose all that apply."),
                choices=(
                    ("human_rights_defender", N_("Human rights defender")),
                    ("journalist", N_("Journalist or media worker")),
                    ("lawyer", N_("Lawyer")),
                    ("trade_unionist", N_("Trade unionist")),
                    ("victim_or_witness", N_("Victim or witness of human rights violations")),
                    ("other", N_("Other")),
                ),
            ),
            Field("target_occupation_other", TEXT, N_("Other occupation or role")),
        ),
    ),
    Section(
        "cooperation",
        N_("The cooperation with the United Nations"),
        N_("What contact with the UN do you believe led to the reprisal?"),
        (
            Field(
                "un_bodies",
                CHECKBOXES,
                N_("Which United Nations body or mechanism?"),
                N_("Choose all that apply."),
                choices=(
                    ("human_rights_council", N_("Human Rights Council")),
                    ("universal_periodic_review", N_("Universal Periodic Review")),
                    (
                        "special_procedures",
                        N_("Special procedures (special rapporteurs, working groups)"),
                    ),
                    ("treaty_bodies", N_("Human rights treaty bodies")),
                    ("ohchr", N_("OHCHR or one of its field presences")),
                    ("un_country_team", N_("UN country team")),
                    ("peace_operation", N_("UN peace operation")),
                    ("security_council", N_("Security Council")),
                    ("specialised_agency", N_("Specialised agency, fund or programme")),
                    ("other", N_("Other")),
                ),
            ),
            Field("un_bodies_other", TEXT, N_("Other body or mechanism")),
            Field(
                "cooperation_when",
                TEXT,
                N_("When did this cooperation take place?"),
                N_("A month and year is enough, for example: March 2026."),
            ),
        ),
    ),
    Section(
        "incident",
        N_("What happened"),
        N_("Describe the reprisal or intimidation."),
        (
            Field(
                "violations",
                CHECKBOXES,
                N_("What happened?"),
                N_("Choose all that apply."),
                choices=(
                    ("travel_ban", N_("Travel ban")),
                    ("threats", N_("Threats and harassment, including by officials")),
                    ("smear_campaign", N_("Smear campaign")),
                    ("surveillance", N_("Surveillance, including online")),
                    ("restrictive_legislation", N_("Restrictive legislation")),
                    ("physical_attack", N_("Physical attack")),
                    ("arbitrary_detention", N_("Arbitrary arrest and detention")),
                    (
                        "torture",
                        N_(
                            "Torture or ill-treatment, including sexual violence and denial of "
                            "medical care"
                        ),
                    ),
                    ("disappearance", N_("Enforced disappearance or abduction")),
                    ("killing", N_("Killing")),
                    ("fines_or_sentences", N_("Fines or lengthy sentences")),
                    ("relatives", N_("Reprisals against relatives")),
                    ("other", N_("Other")),
                ),
            ),
            Field("violations_other", TEXT, N_("Other kind of reprisal")),
            Field(
                "incident_dates",
                TEXT,
                N_("When did it happen?"),
                N_("Dates or approximate periods."),
            ),
            Field("country", TEXT, N_("Country")),
            Field("place", TEXT, N_("Place"), N_("City, region or facility, if you wish to say.")),
            Field(
                "perpetrators",
                CHECKBOXES,
                N_("Who are the alleged perpetrators?"),
                N_("Choose all that apply."),
                choices=(
                    ("state", N_("State officials")),
                    ("non_state", N_("Non-State actors")),
                    ("unknown", N_("Unknown")),
                ),
            ),
            Field("perpetrators_details", TEXTAREA, N_("More about the alleged perpetrators")),
        ),
    ),
    Section(
        "since",
        N_("What was done since"),
        N_("Anything already done about it."),
        (
            Field(
                "remedies",
                TEXTAREA,
                N_("Domestic remedies sought"),
                N_(
                    "For example: a complaint to the police, a court or a national human rights "
                    "institution, and what came of it."
                ),
            ),
            Field(
                "others_informed",
                TEXTAREA,
                N_("Other UN bodies or organisations informed, with any references"),
            ),
            Field(
                "case_status",
                RADIO,
                N_("Is this a new case?"),
                choices=(
                    ("new", N_("A new case")),
                    ("update", N_("News on a case already reported")),
                ),
            ),
        ),
    ),
    Section(
        "consent",
        N_("Your consent"),
        N_("Each question is a separate choice. The team follows your answers."),
        (
            Field(
                "consent_raise",
                RADIO,
                N_("May the reprisals team raise the case with the State concerned?"),
                N_("Raising a case can protect, but can also draw attention. Choose no if unsure."),
                choices=YES_NO,
                required=True,
            ),
            Field(
                "consent_report",
                RADIO,
                N_("May the case appear in the Secretary-General's annual report on reprisals?"),
                choices=(
                    ("named", N_("Yes, with names")),
                    ("anonymous", N_("Yes, without names")),
                    ("no", N_("No, not at all")),
                ),
                required=True,
            ),
            Field(
                "consent_contact",
                RADIO,
                N_("Are you willing to be contacted?"),
                choices=(
                    ("portal", N_("Yes, through this portal only, with my receipt")),
                    ("other_channel", N_("Yes, through another secure channel I give below")),
                    ("no", N_("No")),
                ),
                required=True,
            ),
            Field(
                "contact_channel",
                TEXTAREA,
                N_("The secure channel to contact you"),
                N_("For example a Signal number or a secure e-mail address. Only if you chose it."),
                required_when=("consent_contact", "other_channel"),
            ),
        ),
    ),
    Section(
        "account",
        N_("Your account"),
        N_("Tell us what happened, in your own words."),
        (
            Field(
                "description",
                TEXTAREA,
                N_("Description"),
                N_(
                    "Who, what, when, where, and why you believe it is linked to cooperation with "
                    "the UN. Write in any language."
                ),
                required=True,
                max_length=DESCRIPTION_MAX,
            ),
        ),
    ),
)

FOLLOW_UP_FIELDS: tuple[Field, ...] = (
    Field(
        "description",
        TEXTAREA,
        N_("New information"),
        N_("Anything new: answers to the team's questions, what happened since, corrections."),
        required=True,
        max_length=DESCRIPTION_MAX,
    ),
)

REPORT_FIELDS: tuple[Field, ...] = tuple(f for section in REPORT_SECTIONS for f in section.fields)
FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in REPORT_FIELDS}

# Names that travel with the form but are never fields of a report.
NOT_FIELDS = frozenset({"csrf_token", "website", "attachments", "receipt"})
HONEYPOT = "website"

# Fields whose choices summarise a case in one row of `cases.csv`.
STRUCTURED_FIELDS = (
    *(f.name for f in REPORT_FIELDS if f.kind in (RADIO, CHECKBOXES)),
    "country",
    "incident_dates",
)


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
                        if f.kind == RADIO
                        else N_("Please fill in this field."),
                    )
                )
            continue
        allowed = {choice for choice, _ in f.choices}
        # A list where one choice belongs (a crafted post, a relay's JSON) is refused, not hashed.
        if f.kind == RADIO and (not isinstance(value, str) or value not in allowed):
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
    return problems
