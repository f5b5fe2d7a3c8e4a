"""Receipts: 25 random digits in five groups, read back however they are typed, and what the
server derives from them (a lookup value and a reply key pair) without keeping them."""

from __future__ import annotations

import re

import nacl.bindings as sodium
import nacl.pwhash
import pytest

from portal.formats import crypto, receipts

COST = (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)
SECRET = bytes(range(32))
DIGITS = "0123456789"


def test_a_receipt_is_25_digits_in_five_groups() -> None:
    for _ in range(200):
        assert re.fullmatch(r"\d{5}( \d{5}){4}", receipts.new_receipt())


def test_receipts_do_not_repeat_and_use_every_digit_in_every_place() -> None:
    made = [receipts.new_receipt().replace(" ", "") for _ in range(2000)]
    assert len(set(made)) == len(made)
    # At least 80 bits: 25 decimal digits are 83.
    assert receipts.DIGITS * 3.3219 >= 80
    for place in range(receipts.DIGITS):
        assert {r[place] for r in made} == set(DIGITS)


@pytest.mark.parametrize(
    "written",
    [
        "12345 67890 12345 67890 12345",
        "1234567890123456789012345",
        "12345-67890-12345-67890-12345",
        "12345\u201167890\u201312345\u201467890_12345",
        "12345.67890\u00b712345 67890\t12345\n",
        "".join(chr(0x0660 + int(d)) for d in "1234567890123456789012345"),
        "".join(chr(0x06F0 + int(d)) for d in "1234567890123456789012345"),
        "".join(chr(0x0966 + int(d)) for d in "1234567890123456789012345"),
        "".join(chr(0xFF10 + int(d)) for d in "1234567890123456789012345"),
    ],
    ids=[
        "grouped",
        "plain",
        "hyphens",
        "dashes",
        "dots-and-tabs",
        "arabic-indic",
        "persian",
        "devanagari",
        "full-width",
    ],
)
def test_a_receipt_is_read_however_it_is_written(written: str) -> None:
    assert receipts.normalise(written) == "1234567890123456789012345"


@pytest.mark.parametrize(
    "written",
    ["", "1234", "12345 67890 12345 67890 1234", "12345 67890 12345 67890 123456", "I2345" * 5],
)
def test_what_is_no_receipt_is_refused(written: str) -> None:
    with pytest.raises(receipts.ReceiptError):
        receipts.normalise(written)


def test_the_derivation_is_the_same_for_the_same_receipt_however_written() -> None:
    first = receipts.derive("12345 67890 12345 67890 12345", SECRET, *COST)
    again = receipts.derive("1234567890-1234567890-12345", SECRET, *COST)
    assert first == again
    assert len(first.lookup) == 32
    assert len(first.reply_public_key) == crypto.KEY_BYTES


def test_the_derivation_depends_on_the_receipt_and_the_installation() -> None:
    base = receipts.derive("12345 67890 12345 67890 12345", SECRET, *COST)
    other_receipt = receipts.derive("12345 67890 12345 67890 12346", SECRET, *COST)
    other_secret = receipts.derive("12345 67890 12345 67890 12345", bytes(32), *COST)
    for other in (other_receipt, other_secret):
        assert other.lookup != base.lookup
        assert other.reply_public_key != base.reply_public_key


def test_the_lookup_value_says_nothing_of_the_reply_key() -> None:
    derived = receipts.derive("12345 67890 12345 67890 12345", SECRET, *COST)
    assert derived.lookup not in (derived.reply_public_key, derived.reply_secret_key)


def test_the_reply_key_pair_opens_what_is_sealed_to_it() -> None:
    derived = receipts.derive(receipts.new_receipt(), SECRET, *COST)
    assert sodium.crypto_scalarmult_base(derived.reply_secret_key) == derived.reply_public_key
    sealed = crypto.seal(b"a reply from the team", derived.reply_public_key)
    assert crypto.open_sealed(sealed, derived.reply_secret_key) == b"a reply from the team"


def test_a_receipt_that_is_no_receipt_derives_nothing() -> None:
    with pytest.raises(receipts.ReceiptError):
        receipts.derive("not a receipt", SECRET, *COST)
