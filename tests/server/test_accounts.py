"""Staff accounts: passphrases, Argon2id, one-time codes without replay, lockout, sessions."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import date, timedelta

import nacl.pwhash
import pyotp
import pytest
from sqlalchemy.orm import Session
from test_staff_helpers import START, Clock

from portal.server import accounts, db
from portal.server.models import Base, StaffMember
from portal.server.wordlist import WORDS

pytest_plugins = ["test_staff_helpers"]
pytestmark = pytest.mark.usefixtures("cheap_staff_kdf")
# Read before any fixture lowers them for speed.
PRODUCTION_LIMITS = (accounts.OPSLIMIT, accounts.MEMLIMIT)


@pytest.fixture
def session(tmp_path: object) -> Iterator[Session]:
    """A database session on a fresh SQLite file with the portal's tables."""
    engine = db.make_engine(f"sqlite:///{tmp_path}/accounts.sqlite3")
    Base.metadata.create_all(engine)
    with db.make_sessionmaker(engine)() as opened:
        yield opened
    engine.dispose()


def test_word_list_is_long_distinct_and_plain() -> None:
    assert len(WORDS) >= 2048
    assert len(set(WORDS)) == len(WORDS)
    assert all(re.fullmatch(r"[a-z]{3,9}", word) for word in WORDS)
    assert math.log2(len(WORDS)) >= 11


def test_passphrase_has_seven_words_from_the_list_and_77_bits() -> None:
    phrases = {accounts.new_passphrase() for _ in range(50)}
    assert len(phrases) == 50
    for phrase in phrases:
        words = phrase.split(" ")
        assert len(words) == accounts.PASSPHRASE_WORDS >= 7
        assert set(words) <= set(WORDS)
    assert accounts.PASSPHRASE_WORDS * math.log2(len(WORDS)) >= 77


def test_hash_is_argon2id_and_verifies_only_the_passphrase() -> None:
    phrase = accounts.new_passphrase()
    hashed = accounts.hash_passphrase(phrase)
    assert hashed.startswith("$argon2id$")
    assert phrase not in hashed
    assert accounts.verify_passphrase(hashed, phrase)
    # Case and spacing slips are forgiven; a different word is not.
    assert accounts.verify_passphrase(hashed, "  " + phrase.upper().replace(" ", "   ") + "\n")
    assert not accounts.verify_passphrase(hashed, phrase + " extra")
    assert not accounts.verify_passphrase(hashed, "")
    assert not accounts.verify_passphrase("not a hash", phrase)


def test_production_cost_is_at_least_argon2id_interactive() -> None:
    opslimit, memlimit = PRODUCTION_LIMITS
    assert opslimit >= nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
    assert memlimit >= nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


@pytest.mark.parametrize(
    "name", ["", "A b", "-x", "1abc", "a" * 33, "ami\tna", "ami\nna", "émile", "a/b"]
)
def test_bad_names_are_refused(session: Session, name: str) -> None:
    with pytest.raises(accounts.AccountError, match="account name"):
        accounts.create(session, name, date(2031, 1, 1))


def test_names_are_normalised_and_unique(session: Session) -> None:
    made = accounts.create(session, "  Amina ", date(2031, 1, 1))
    session.commit()
    assert made.name == "amina"
    with pytest.raises(accounts.AccountError, match="exists already"):
        accounts.create(session, "AMINA", date(2031, 1, 1))


def test_provisioning_uri_names_issuer_and_account(session: Session) -> None:
    made = accounts.create(session, "j.smith", date(2031, 1, 1))
    parsed = pyotp.parse_uri(made.provisioning_uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.secret == made.totp_secret
    assert parsed.name == "j.smith"
    assert parsed.issuer == accounts.TOTP_ISSUER
    assert len(made.totp_secret) == 32


def _account(session: Session) -> accounts.Credentials:
    made = accounts.create(session, "amina", date(2031, 1, 1))
    session.commit()
    return made


def _code(made: accounts.Credentials, clock: Clock, steps: int = 0) -> str:
    return pyotp.TOTP(made.totp_secret).at(clock(), counter_offset=steps)


def test_sign_in_needs_passphrase_and_code(session: Session, clock: Clock) -> None:
    made = _account(session)
    member = accounts.authenticate(session, "amina", made.passphrase, _code(made, clock))
    assert member.name == "amina"


@pytest.mark.parametrize("which", ["passphrase", "code", "both", "name"])
def test_any_wrong_factor_is_refused_alike(session: Session, clock: Clock, which: str) -> None:
    made = _account(session)
    passphrase = made.passphrase if which in ("code", "name") else accounts.new_passphrase()
    code = _code(made, clock) if which in ("passphrase", "name") else "000000"
    if code == _code(made, clock):
        code = "111111" if which in ("code", "both") else code
    name = "nobody" if which == "name" else "amina"
    with pytest.raises(accounts.LoginRefused) as refused:
        accounts.authenticate(session, name, passphrase, code)
    assert refused.value.locked_until is None
    assert str(refused.value) == "sign-in refused"


def test_unknown_name_still_runs_argon2id(
    session: Session, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real = accounts.verify_passphrase

    def counting(hashed: str, passphrase: str) -> bool:
        seen.append(hashed)
        return real(hashed, passphrase)

    monkeypatch.setattr(accounts, "verify_passphrase", counting)
    with pytest.raises(accounts.LoginRefused):
        accounts.authenticate(session, "nobody", "some words", "123456")
    with pytest.raises(accounts.LoginRefused):
        accounts.authenticate(session, "Not A Valid Name!", "some words", "123456")
    assert len(seen) == 2
    assert all(h.startswith("$argon2id$") for h in seen)


def test_a_code_is_never_accepted_twice(session: Session, clock: Clock) -> None:
    made = _account(session)
    code = _code(made, clock)
    accounts.authenticate(session, "amina", made.passphrase, code)
    session.commit()
    with pytest.raises(accounts.LoginRefused):
        accounts.authenticate(session, "amina", made.passphrase, code)
    # Nor an older one still inside the window.
    with pytest.raises(accounts.LoginRefused):
        accounts.authenticate(session, "amina", made.passphrase, _code(made, clock, -1))
    # The next step's code works, once.
    clock.advance(seconds=30)
    accounts.authenticate(session, "amina", made.passphrase, _code(made, clock))


def test_codes_one_step_either_side_are_accepted(session: Session, clock: Clock) -> None:
    made = _account(session)
    accounts.authenticate(session, "amina", made.passphrase, _code(made, clock, -1))
    accounts.authenticate(session, "amina", made.passphrase, _code(made, clock, 1))
    with pytest.raises(accounts.LoginRefused):
        accounts.authenticate(session, "amina", made.passphrase, _code(made, clock, 3))


def test_a_valid_code_with_a_wrong_passphrase_is_not_used_up(
    session: Session, clock: Clock
) -> None:
    made = _account(session)
    code = _code(made, clock)
    with pytest.raises(accounts.LoginRefused):
        accounts.authenticate(session, "amina", "wrong words", code)
    assert accounts.authenticate(session, "amina", made.passphrase, code).name == "amina"


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 34 5"])
def test_malformed_codes_are_refused(session: Session, clock: Clock, code: str) -> None:
    made = _account(session)
    with pytest.raises(accounts.LoginRefused):
        accounts.authenticate(session, "amina", made.passphrase, code)


def test_code_with_spaces_is_accepted(session: Session, clock: Clock) -> None:
    made = _account(session)
    code = _code(made, clock)
    member = accounts.authenticate(session, "amina", made.passphrase, f" {code[:3]} {code[3:]} ")
    assert member.name == "amina"


def test_failures_slow_down_then_lock(session: Session, clock: Clock) -> None:
    made = _account(session)
    for _ in range(accounts.SLOW_AFTER - 1):
        with pytest.raises(accounts.LoginRefused) as refused:
            accounts.authenticate(session, "amina", "wrong", "000000")
        assert refused.value.locked_until is None
    # Third failure: a short wait, ending on a whole minute, and not told to whoever failed.
    with pytest.raises(accounts.LoginRefused) as refused:
        accounts.authenticate(session, "amina", "wrong", "000000")
    assert refused.value.locked_until is None
    assert refused.value.locked_now
    member = accounts.get(session, "amina")
    until = accounts.locked_until(member, clock())
    assert until is not None
    assert until.second == 0
    assert timedelta(minutes=1) <= until - START <= timedelta(minutes=2)
    # While it lasts, a wrong try is refused like any other, and not counted.
    with pytest.raises(accounts.LoginRefused) as refused:
        accounts.authenticate(session, "amina", "wrong", "000000")
    assert refused.value.was_locked
    assert refused.value.locked_until is None
    # The right passphrase and code are refused too, and only they learn until when.
    with pytest.raises(accounts.LoginRefused) as refused:
        accounts.authenticate(session, "amina", made.passphrase, _code(made, clock))
    assert refused.value.was_locked
    assert refused.value.locked_until == until
    assert member.failed_logins == accounts.SLOW_AFTER
    clock.moment = until
    with pytest.raises(accounts.LoginRefused):
        accounts.authenticate(session, "amina", "wrong", "000000")
    clock.moment = accounts.aware(member.locked_until)  # type: ignore[arg-type]
    with pytest.raises(accounts.LoginRefused) as refused:
        accounts.authenticate(session, "amina", "wrong", "000000")
    assert member.failed_logins == accounts.LOCK_AFTER
    assert refused.value.locked_now
    assert not refused.value.was_locked
    assert refused.value.locked_until is None
    locked = accounts.locked_until(member, clock())
    assert locked is not None
    assert locked - clock() >= timedelta(minutes=accounts.LOCK_MINUTES)
    # After the lock, the right passphrase and code sign in and clear the count.
    clock.moment = locked + timedelta(seconds=1)
    accounts.authenticate(session, "amina", made.passphrase, _code(made, clock))
    assert member.failed_logins == 0
    assert member.locked_until is None


def _argon2_cost(hashed: bytes) -> str:
    """The memory, passes and lanes of an Argon2id hash string ("m=65536,t=2,p=1")."""
    return hashed.decode("ascii").split("$")[3]


@pytest.mark.parametrize("case", ["unknown", "malformed", "wrong", "locked", "locked-right"])
def test_every_refusal_costs_one_argon2id_verification_of_the_same_cost(
    session: Session, clock: Clock, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    made = _account(session)
    if case.startswith("locked"):
        accounts.get(session, "amina").locked_until = START + timedelta(minutes=5)
    real = nacl.pwhash.argon2id.verify
    costs: list[str] = []

    def counting(hashed: bytes, password: bytes) -> bool:
        costs.append(_argon2_cost(hashed))
        return bool(real(hashed, password))

    monkeypatch.setattr(nacl.pwhash.argon2id, "verify", counting)
    name = {"unknown": "nobody", "malformed": "Not A Valid Name!"}.get(case, "amina")
    right = case == "locked-right"
    with pytest.raises(accounts.LoginRefused):
        accounts.authenticate(
            session,
            name,
            made.passphrase if right else "wrong words",
            _code(made, clock) if right else "000000",
        )
    # Exactly one verification, at the cost of the real account's hash.
    assert costs == [_argon2_cost(accounts.get(session, "amina").password_hash.encode())]


def test_lock_survives_a_round_trip_through_the_database(session: Session, clock: Clock) -> None:
    _account(session)
    member = accounts.get(session, "amina")
    member.locked_until = START + timedelta(minutes=5)
    session.commit()
    session.expire_all()
    member = accounts.get(session, "amina")
    assert accounts.locked_until(member, START) == START + timedelta(minutes=5)
    assert accounts.locked_until(member, START + timedelta(minutes=6)) is None


def test_reset_changes_both_secrets_and_ends_the_session(session: Session, clock: Clock) -> None:
    made = _account(session)
    member = accounts.authenticate(session, "amina", made.passphrase, _code(made, clock))
    nonce = accounts.start_session(member)
    assert accounts.session_matches(member, nonce)
    member.failed_logins, member.locked_until = 4, START + timedelta(hours=1)
    fresh = accounts.reset(session, "amina")
    assert fresh.passphrase != made.passphrase
    assert fresh.totp_secret != made.totp_secret
    assert not accounts.session_matches(member, nonce)
    assert member.failed_logins == 0
    assert member.locked_until is None
    clock.advance(seconds=30)
    with pytest.raises(accounts.LoginRefused):
        accounts.authenticate(session, "amina", made.passphrase, _code(fresh, clock))
    accounts.authenticate(session, "amina", fresh.passphrase, _code(fresh, clock))


def test_sessions_one_at_a_time_and_ended(session: Session) -> None:
    member = StaffMember(name="x", password_hash="", totp_secret="", created_day=date.today())
    first = accounts.start_session(member)
    second = accounts.start_session(member)
    assert not accounts.session_matches(member, first)
    assert accounts.session_matches(member, second)
    assert member.session_nonce != second  # only a hash is stored
    accounts.end_session(member)
    assert not accounts.session_matches(member, second)


def test_remove_and_unknown_accounts(session: Session) -> None:
    _account(session)
    accounts.remove(session, "AMINA")
    session.commit()
    assert accounts.find(session, "amina") is None
    with pytest.raises(accounts.AccountError, match="no staff account"):
        accounts.reset(session, "amina")
