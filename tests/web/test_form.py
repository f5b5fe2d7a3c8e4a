"""The report form's second edition: essentials first, whose consent, urgency, countries and
months that can be counted, the problem summary, and refusals in the page's language."""

from __future__ import annotations

import html
import re

import pytest
from conftest import MINIMAL_REPORT, csrf_token
from flask import Flask
from flask.testing import FlaskClient
from test_uploads import FilePart, post_parts

from portal.formats import questionnaire
from portal.web import presenting


def page(client: FlaskClient, path: str) -> str:
    """The text of a page that must answer 200."""
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize("lang", ["en", "ar", "zh"])
def test_the_essentials_come_first_and_required_is_marked_boldly(
    client: FlaskClient, lang: str
) -> None:
    text = page(client, f"/{lang}/submit")
    order = [
        text.index('id="description"'),
        text.index('id="urgent"'),
        text.index('id="consent_of"'),
        text.index('id="consent_share_un"'),
        text.index('id="details-title"'),
        text.index('id="submitter_role"'),
        text.index('id="country"'),
        text.index('id="send-report"'),
    ]
    assert order == sorted(order)
    # Required is a bold marker of its own; optional stays the quiet grey.
    assert text.count('<strong class="req">') == sum(
        f.required for f in questionnaire.REPORT_FIELDS
    )
    assert '<span class="req">' not in text


def test_the_country_lists_are_named_in_the_pages_language(client: FlaskClient) -> None:
    text = page(client, "/fr/submit")
    assert "<option value=KE>Kenya" in text
    assert "<option value=DE>Allemagne" in text
    assert text.count("<option value=other>") == 2
    zh = page(client, "/zh/submit")
    assert "<option value=KE>肯尼亚" in zh


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("incident_from", "March 2025", "year and month as numbers"),
        ("cooperation_from", "2025-13", "year and month as numbers"),
        ("group_size", "about 12", "digits only"),
        ("country", "Freedonia", "choose one of the options"),
    ],
)
def test_a_month_a_number_or_a_country_not_as_asked_comes_back(
    client: FlaskClient, name: str, value: str, words: str
) -> None:
    data = {**MINIMAL_REPORT, name: value, "csrf_token": csrf_token(client)}
    response = client.post("/en/submit", data=data)
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert words in text
    assert f'id="{name}-error"' in text


@pytest.mark.parametrize(
    ("answers", "problem"),
    [
        ({"group_size": "3", "group_women": "5"}, "group_women"),
        ({"incident_from": "2025-06", "incident_to": "2025-01"}, "incident_to"),
        ({"incident_from": "2025-06", "incident_to": "2024-12"}, "incident_to"),
    ],
)
def test_answers_that_contradict_each_other_come_back_with_both_kept(
    client: FlaskClient, answers: dict[str, str], problem: str
) -> None:
    data = {**MINIMAL_REPORT, **answers, "csrf_token": csrf_token(client, "/fr/submit")}
    response = client.post("/fr/submit", data=data)
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'id="{problem}-error"' in text
    assert "veuillez vérifier" in text
    for name, value in answers.items():
        assert f'name="{name}" id="{name}" value="{value}"' in text


@pytest.mark.parametrize(
    "answers",
    [
        {"group_size": "5", "group_women": "5"},
        {"group_size": "12", "group_women": "0"},
        {"group_size": "", "group_women": "5"},  # the group's size not given: nothing to compare
        {"incident_from": "2025-06", "incident_to": "2025-06"},
        {"incident_from": "2024-12", "incident_to": "2025-01"},
        {"incident_to": "2020-01"},
    ],
)
def test_answers_that_agree_are_taken(client: FlaskClient, answers: dict[str, str]) -> None:
    data = {**MINIMAL_REPORT, **answers, "csrf_token": csrf_token(client)}
    response = client.post("/en/submit", data=data)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    assert "receipt-number" in response.get_data(as_text=True)


def test_a_malformed_other_answer_gets_its_own_problem_only(client: FlaskClient) -> None:
    data = {
        **MINIMAL_REPORT,
        "group_size": "about 3",
        "group_women": "5",
        "csrf_token": csrf_token(client),
    }
    text = client.post("/en/submit", data=data).get_data(as_text=True)
    assert 'id="group_size-error"' in text
    assert 'id="group_women-error"' not in text


def test_the_problem_summary_names_a_question_without_doubling_its_punctuation(
    client: FlaskClient,
) -> None:
    data = {"description": "x", "csrf_token": csrf_token(client)}
    text = client.post("/en/submit", data=data).get_data(as_text=True)
    assert "<title>There is a problem: Report a case" in text
    assert "?:" not in text
    assert "Whose consent do these answers give? Please answer this question." in text
    zh = client.post("/zh/submit", data={**data, "csrf_token": csrf_token(client, "/zh/submit")})
    assert "\uff1f\uff1a" not in zh.get_data(as_text=True)


@pytest.mark.parametrize(
    ("label", "joined"),
    [
        ("Description", "Description: Please fill in this field."),
        ("Is this a new case?", "Is this a new case? Please fill in this field."),
    ],
)
def test_problem_line(app: Flask, label: str, joined: str) -> None:
    with app.test_request_context("/en/submit"):
        assert presenting.problem_line(label, "Please fill in this field.") == joined


@pytest.mark.parametrize("urgent", ["yes", "no"])
def test_the_receipt_of_an_urgent_report_says_what_to_expect(
    client: FlaskClient, urgent: str
) -> None:
    data = {**MINIMAL_REPORT, "urgent": urgent, "csrf_token": csrf_token(client)}
    text = client.post("/en/submit", data=data).get_data(as_text=True)
    note = re.search(r'<section class="urgent-note" id="urgent-note"[^>]*>', text)
    assert note, "the receipt page has no note for urgent reports"
    assert ("hidden" not in note.group(0)) == (urgent == "yes")


def test_a_file_that_is_not_a_sealed_case_file_is_refused_in_the_pages_language(
    app: Flask, client: FlaskClient
) -> None:
    parts = [
        ("csrf_token", csrf_token(client, "/fr/sealed-case")),
        FilePart("case_file", "photo.jpg", b"\xff\xd8 a photo, not a case" * 100),
    ]
    response = post_parts(client, "/fr/sealed-case", parts)
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "n'est pas un fichier de cas scellé" in html.unescape(text)
    assert "<title>Il y a un problème" in text


def test_a_damaged_sealed_report_is_refused_in_the_pages_language(client: FlaskClient) -> None:
    parts = [("csrf_token", csrf_token(client, "/ar/submit")), ("file_count", "0")]
    text = post_parts(client, "/ar/submit/sealed", parts).get_data(as_text=True)
    assert "تلف البلاغ المختوم" in text


@pytest.mark.parametrize(
    ("lang", "unit"), [("en", "180 kB"), ("fr", "180\u202fko"), ("ru", "180 кБ")]
)
def test_file_sizes_are_in_the_pages_language(app: Flask, lang: str, unit: str) -> None:
    with app.test_request_context(f"/{lang}/submit"):
        from flask import g

        g.lang = lang
        assert presenting.filesize(180_000) == unit


def test_the_landing_page_does_not_promise_what_a_server_cannot_keep(client: FlaskClient) -> None:
    text = page(client, "/en/")
    assert "Whoever runs" not in text
    assert "could read it at that moment" in text


def test_the_safety_page_names_the_offices_other_channels(client: FlaskClient) -> None:
    text = page(client, "/en/safety")
    for words in (
        "reprisals@ohchr.org",
        "urgent-action@ohchr.org",
        "bridge",
        "Android",
        "lose your receipt",
        "Audio and video",
        "can be evidence",
    ):
        assert words in text, words


def test_the_form_says_once_without_scripts_what_back_does(client: FlaskClient) -> None:
    text = page(client, "/en/submit")
    assert text.count("<noscript>") == 1
    assert "the Back button brings the page back" in text
    # "Leave quickly" is the first link of the page, before the skip link.
    assert text.index('class="leave"') < text.index('class="skip"')
