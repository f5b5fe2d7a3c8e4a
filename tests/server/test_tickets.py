"""Tickets carry a fresh receipt from the moment a browser asks for it to its sealed upload:
opaque, bound to one browser session, valid for six hours, and refused when anything differs."""

from __future__ import annotations

import base64
import secrets

import nacl.pwhash
import pytest

from portal.formats import receipts
from portal.server import tickets

SECRET = bytes(range(32))
BINDING = tickets.session_binding("session secret")
NOW = 1_750_000_000.0


def _fresh() -> tuple[str, receipts.Derived]:
    receipt = receipts.new_receipt()
    derived = receipts.derive(
        receipt, SECRET, nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN
    )
    return receipt, derived


def test_a_ticket_opens_to_its_receipt_lookup_and_reply_key() -> None:
    receipt, derived = _fresh()
    text = tickets.issue(SECRET, receipt, derived, BINDING, now=NOW)
    opened = tickets.open_ticket(SECRET, text, BINDING, now=NOW + 60)
    assert opened == tickets.Ticket(receipt, derived.lookup, derived.reply_public_key)


def test_a_ticket_shows_nothing_of_what_it_holds() -> None:
    receipt, derived = _fresh()
    first = tickets.issue(SECRET, receipt, derived, BINDING, now=NOW)
    second = tickets.issue(SECRET, receipt, derived, BINDING, now=NOW)
    # A fresh nonce each time: the same content never gives the same ticket.
    assert first != second
    raw = base64.urlsafe_b64decode(first)
    digits = receipt.replace(" ", "").encode()
    for secret_part in (digits, derived.lookup, derived.reply_public_key, BINDING):
        assert secret_part not in raw
        assert secret_part not in first.encode()


def _flip(text: str, at: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(text))
    raw[at] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda t: _flip(t, 0), "damaged"),
        (lambda t: _flip(t, 30), "damaged"),
        (lambda t: _flip(t, -1), "damaged"),
        (lambda t: t[:-4], "damaged"),
        (lambda t: t + "AAAA", "damaged"),
        (lambda t: "", "no ticket"),
        (lambda t: "not base64 at all!", "damaged"),
        (lambda t: "é" * 10, "damaged"),
        (lambda t: t * 3, "no ticket"),
        (
            lambda t: base64.urlsafe_b64encode(secrets.token_bytes(154)).decode(),
            "damaged",
        ),
    ],
    ids=[
        "nonce",
        "ciphertext",
        "tag",
        "cut",
        "longer",
        "empty",
        "not-base64",
        "not-ascii",
        "much-too-long",
        "forged",
    ],
)
def test_a_changed_or_forged_ticket_is_refused(change: object, words: str) -> None:
    receipt, derived = _fresh()
    text = tickets.issue(SECRET, receipt, derived, BINDING, now=NOW)
    with pytest.raises(tickets.TicketError, match=words):
        tickets.open_ticket(SECRET, change(text), BINDING, now=NOW)  # type: ignore[operator]


def test_a_ticket_of_another_installation_is_refused() -> None:
    receipt, derived = _fresh()
    text = tickets.issue(bytes(32), receipt, derived, BINDING, now=NOW)
    with pytest.raises(tickets.TicketError, match="damaged"):
        tickets.open_ticket(SECRET, text, BINDING, now=NOW)


def test_a_ticket_from_another_session_is_refused() -> None:
    receipt, derived = _fresh()
    text = tickets.issue(SECRET, receipt, derived, BINDING, now=NOW)
    other = tickets.session_binding("another session's secret")
    with pytest.raises(tickets.TicketError, match="another session"):
        tickets.open_ticket(SECRET, text, other, now=NOW)


@pytest.mark.parametrize(
    ("age", "usable"),
    [
        (0, True),
        (tickets.MAX_AGE_SECONDS, True),
        (tickets.MAX_AGE_SECONDS + 1, False),
        (30 * 24 * 3600, False),
        (-tickets.CLOCK_SKEW_SECONDS, True),
        (-tickets.CLOCK_SKEW_SECONDS - 1, False),
    ],
)
def test_a_ticket_is_good_for_six_hours(age: int, usable: bool) -> None:
    receipt, derived = _fresh()
    text = tickets.issue(SECRET, receipt, derived, BINDING, now=NOW)
    if usable:
        assert tickets.open_ticket(SECRET, text, BINDING, now=NOW + age).receipt == receipt
    else:
        with pytest.raises(tickets.TicketError, match="too old"):
            tickets.open_ticket(SECRET, text, BINDING, now=NOW + age)


def test_session_bindings_differ_by_session_and_are_not_the_secret() -> None:
    assert tickets.session_binding("a") != tickets.session_binding("b")
    assert len(tickets.session_binding("a")) == tickets.BINDING_BYTES
    with pytest.raises(ValueError, match="16 bytes"):
        tickets.issue(SECRET, *_fresh(), b"short")
