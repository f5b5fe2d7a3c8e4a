"""The report and follow-up forms as data: every field, its choices and its rules.

One description serves the web form (labels translated at render time), the server-side
check of what was posted, and the offline `report.txt` (labels in English). It follows the
reprisals team's call for information and the taxonomy of the Secretary-General's reports on
cooperation with the United Nations. Only the description and the consent questions are
required; no field forces a person to identify themselves. The kinds of field and their limits
are in `formats.fields`, the rules that gather and check what was posted in `formats.answers`.

This module imports nothing of the web stack: the offline tools use it too.
"""

from __future__ import annotations

from portal.formats import territories
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
    Section,
)

DESCRIPTION_MAX = 100_000
OTHER_COUNTRY = "other"


YES_NO = (("yes", N_("Yes")), ("no", N_("No")))
# Every ISO 3166-1 code with its English name, then "other / prefer not to say".
TERRITORIES: tuple[tuple[str, str], ...] = (
    *territories.ENGLISH_NAMES.items(),
    (OTHER_COUNTRY, N_("Other, or I prefer not to say")),
)
MONTH_HELP = N_("Year and month as numbers, for example 2025-11 for November 2025.")
DETAILS_TITLE = N_("More details (optional)")
DETAILS_INTRO = N_(
    "Every question below is optional. Each answer helps the team act on the case and count "
    "reprisals by country, by UN body and by gender in the Secretary-General's report."
)

REPORT_SECTIONS: tuple[Section, ...] = (
    Section(
        "account",
        N_("What happened"),
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
            Field(
                "urgent",
                RADIO,
                N_(
                    "Is anyone in immediate danger (for example detained now, or a hearing or "
                    "travel date coming)?"
                ),
                choices=YES_NO,
            ),
            Field(
                "urgent_details",
                TEXTAREA,
                N_("If so: what is the danger, and when?"),
                N_("For example: detained since 3 May; court hearing on 12 June."),
                max_length=2000,
            ),
        ),
    ),
    Section(
        "consent",
        N_("Consent"),
        N_(
            "The team acts on a case only with the consent of the person targeted. If that is "
            "you, answer for yourself. Each question is a separate choice, and the team follows "
            "the answers."
        ),
        (
            Field(
                "consent_of",
                RADIO,
                N_("Whose consent do these answers give?"),
                choices=(
                    ("self", N_("Mine: I am the person targeted")),
                    (
                        "person_told",
                        N_("The person targeted's: they were told of the risks and agree"),
                    ),
                    (
                        "person_not_reachable",
                        N_(
                            "The person targeted cannot be asked (for example detained or "
                            "disappeared): I answer as their relative or representative"
                        ),
                    ),
                ),
                required=True,
            ),
            Field(
                "consent_raise",
                RADIO,
                N_(
                    "Does the person targeted agree that the team raises the case with the State "
                    "concerned?"
                ),
                N_(
                    "The team would give the State's authorities the name of the person targeted, "
                    "because a State cannot look into a case it cannot identify. Raising a case "
                    "can protect, but can also draw attention. Choose no if unsure."
                ),
                choices=YES_NO,
                required=True,
            ),
            Field(
                "consent_report",
                RADIO,
                N_(
                    "Does the person targeted agree that the case appears in the "
                    "Secretary-General's annual report on reprisals?"
                ),
                N_(
                    "Even without names, a case can sometimes be recognised from its details, "
                    "such as the place, the dates and what happened."
                ),
                choices=(
                    ("named", N_("Yes, with names")),
                    ("anonymous", N_("Yes, without names")),
                    ("no", N_("No, not at all")),
                ),
                required=True,
            ),
            Field(
                "consent_share_un",
                RADIO,
                N_(
                    "Does the person targeted agree that the team shares the case with other UN "
                    "bodies that can help, such as special procedures or a UN field presence?"
                ),
                choices=YES_NO,
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
                N_(
                    "For example a Signal username (not a phone number) or a secure e-mail "
                    "address. Only if you chose it."
                ),
                required_when=("consent_contact", "other_channel"),
            ),
        ),
    ),
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
                "relay_consent_how",
                TEXTAREA,
                N_("If you answer for the person targeted: how was their consent given?"),
                N_("For example: in person, by a secure message, through a relative."),
            ),
        ),
        details=True,
    ),
    Section(
        "target",
        N_("The person or group targeted"),
        N_("A pseudonym is enough."),
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
            Field("group_size", COUNT, N_("If it is a group: how many people?")),
            Field(
                "group_women",
                COUNT,
                N_("If it is a group: how many of them are women?"),
                N_("An estimate is enough."),
                order=(
                    "<=",
                    "group_size",
                    N_("This is more than the number of people in the group; please check both."),
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
        details=True,
    ),
    Section(
        "cooperation",
        N_("The cooperation with the United Nations"),
        N_(
            "What contact with the UN do you believe led to the reprisal? Trying to cooperate "
            "counts too."
        ),
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
                "cooperation_from",
                MONTH,
                N_("When did the cooperation with the UN take place?"),
                MONTH_HELP,
            ),
        ),
        details=True,
    ),
    Section(
        "incident",
        N_("The acts"),
        N_("What was done, where and when."),
        (
            Field(
                "violations",
                CHECKBOXES,
                N_("What was done?"),
                N_("Choose all that apply."),
                choices=(
                    ("travel_ban", N_("Travel ban")),
                    ("threats", N_("Threats and harassment, including by officials")),
                    ("smear_campaign", N_("Smear campaign")),
                    ("surveillance", N_("Surveillance, including online")),
                    ("restrictive_legislation", N_("Restrictive legislation")),
                    ("criminal_charges", N_("Criminal charges or prosecution")),
                    (
                        "organisation_closed",
                        N_("Closing or de-registering an organisation, or blocking its funding"),
                    ),
                    ("job_or_licence", N_("Loss of job or professional licence")),
                    (
                        "prevented_cooperation",
                        N_(
                            "Being prevented from cooperating with the UN, including when trying to"
                        ),
                    ),
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
            Field("incident_from", MONTH, N_("When did it start?"), MONTH_HELP),
            Field(
                "incident_to",
                MONTH,
                N_("When did it end?"),
                N_(
                    "Leave this empty if it is still going on. Year and month, for example 2026-01."
                ),
                order=(
                    ">=",
                    "incident_from",
                    N_("This is before the month it started; please check both months."),
                ),
            ),
            Field(
                "country",
                SELECT,
                N_("In which country did it happen?"),
                choices=TERRITORIES,
                territories=True,
            ),
            Field(
                "state_responsible",
                SELECT,
                N_("Which State is responsible?"),
                N_(
                    "It can differ from the country where it happened, for example when a person "
                    "is targeted abroad."
                ),
                choices=TERRITORIES,
                territories=True,
            ),
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
        details=True,
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
            Field(
                "earlier_reference",
                TEXT,
                N_("If it was reported before: a reference to the earlier report"),
                N_(
                    "For example the month you sent it, or a reference the team gave you. Never "
                    "your receipt: to add to your own case, use the follow-up page."
                ),
            ),
        ),
        details=True,
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

# The field that says someone is in immediate danger: such cases come first offline (the
# register's index and report.txt).
URGENT = "urgent"
