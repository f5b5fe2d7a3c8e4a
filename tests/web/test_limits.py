"""Flood protection that works when every request comes from the same Tor daemon.

Limits are keyed on what they protect, never on an address: a burst of reports uses up the
report budget and only it, so a person with a receipt can still look up their case. With
several gunicorn workers the counts live in Redis (`PORTAL_TEST_REDIS_URL`, set by CI), and
the workers share them.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest
from conftest import MINIMAL_REPORT, REDIS_URL, TeamKeys, csrf_token, prepare, receipt_of
from flask import Flask, g
from flask.testing import FlaskClient
from markupsafe import escape
from servers import Served, csrf, deployment
from test_sealed_upload import seal_like_the_browser
from test_uploads import post_parts
from werkzeug.test import TestResponse

from portal import create_app
from portal.formats import answers
from portal.web import errors, i18n, limits

BURST = 200


@contextmanager
def limited_site(
    initialised: dict[str, str], name: str = "public", **overrides: str
) -> Iterator[Flask]:
    """A site with rate limits on (the shared fixtures turn them off)."""
    app = create_app(name, {**initialised, **overrides})
    app.config.update(TESTING=True, RATELIMIT_ENABLED=True)
    try:
        yield app
    finally:
        # No limits.of(app).reset() here: on Redis it would clear every deployment's counts.
        app.extensions["portal"].engine.dispose()


def report(client: FlaskClient, token: str, **fields: str) -> TestResponse:
    """Post the report form without JavaScript."""
    return client.post("/en/submit", data={**MINIMAL_REPORT, "csrf_token": token, **fields})


def test_a_burst_of_reports_is_limited_and_a_follow_up_still_works(
    initialised: dict[str, str],
) -> None:
    with limited_site(initialised, PORTAL_REPORT_RATE_LIMIT="10 per minute") as app:
        client = app.test_client()
        token = csrf_token(client)
        typed = "Summoned by the security services after the session in Geneva."
        answers = [report(client, token, description=typed) for _ in range(BURST)]
        statuses = Counter(answer.status_code for answer in answers)
        assert statuses == {200: 10, 429: BURST - 10}
        limited = answers[-1].get_data(as_text=True)
        # Calm, says to try again later, and keeps what was typed.
        assert "Please wait a few minutes and send it again" in limited
        assert typed in limited
        assert "Traceback" not in limited
        # The browser's way in asks for its receipt from the same budget.
        prepared = client.post("/en/submit/prepare", data={"csrf_token": token})
        assert prepared.status_code == 429
        assert "try again" in prepared.get_data(as_text=True)
        # Looking up a case has its own budget.
        receipt = receipt_of(answers[0].get_data(as_text=True))
        case = client.post(
            "/en/follow-up",
            data={"receipt": receipt, "csrf_token": csrf_token(client, "/en/follow-up")},
        )
        assert case.status_code == 200
        assert "receipt" in case.get_data(as_text=True)


def test_a_browser_sealed_report_spends_the_report_budget_once(
    initialised: dict[str, str], team_keys: TeamKeys
) -> None:
    with limited_site(initialised, PORTAL_REPORT_RATE_LIMIT="3 per minute") as app:
        client = app.test_client()
        token = csrf_token(client)
        for _ in range(3):
            ticket = prepare(client, token=token).ticket
            sealed = seal_like_the_browser(team_keys.public_key, {})
            upload = post_parts(client, "/en/submit/sealed", sealed.parts(token, ticket=ticket))
            assert upload.status_code == 200, upload.get_data(as_text=True)
        # Three reports made three receipts: the budget is spent, by either way in.
        assert client.post("/en/submit/prepare", data={"csrf_token": token}).status_code == 429
        assert report(client, token).status_code == 429
        # Uploads that make no receipt have a budget of the same size of their own.
        junk = client.post("/en/submit/sealed", data={"csrf_token": token, "file_count": "0"})
        assert junk.status_code == 429


def test_receipt_lookups_have_their_own_budget(initialised: dict[str, str]) -> None:
    with limited_site(initialised, PORTAL_FOLLOW_UP_RATE_LIMIT="3 per minute") as app:
        client = app.test_client()
        token = csrf_token(client, "/en/follow-up")
        lookups = [
            client.post("/en/follow-up", data={"receipt": "1" * 25, "csrf_token": token})
            for _ in range(5)
        ]
        assert [answer.status_code for answer in lookups] == [400, 400, 400, 429, 429]
        assert "try again" in lookups[-1].get_data(as_text=True)
        assert report(client, csrf_token(client)).status_code == 200


WRONG_RECEIPT = "11111 11111 11111 11111 11111"


def look_up(client: FlaskClient, receipt: str = WRONG_RECEIPT, lang: str = "en") -> TestResponse:
    """Post a receipt to the follow-up page, in a session of its own client."""
    token = csrf_token(client, f"/{lang}/follow-up")
    return client.post(f"/{lang}/follow-up", data={"receipt": receipt, "csrf_token": token})


def test_one_session_cannot_close_follow_ups_to_everyone(initialised: dict[str, str]) -> None:
    # With the default budgets: a flood of wrong receipts from one browser session.
    with limited_site(initialised) as app:
        holder = app.test_client()
        receipt = receipt_of(report(holder, csrf_token(holder)).get_data(as_text=True))
        flooder = app.test_client()
        statuses = Counter(look_up(flooder).status_code for _ in range(BURST))
        # The holder still opens the case, and another person's mistyped receipt is answered
        # as such: the flood was stopped at its own session, after its own ten tries.
        assert look_up(holder, receipt).status_code == 200
        assert look_up(app.test_client()).status_code == 400
        assert statuses == {400: 10, 429: BURST - 10}
        # The browser-sealed way in shares the session's budget, and says how long to wait.
        sealed = flooder.post(
            "/en/follow-up/sealed",
            data={"csrf_token": csrf_token(flooder, "/en/follow-up"), "file_count": "0"},
        )
        assert sealed.status_code == 429
        said = sealed.get_data(as_text=True)
        assert re.search(r"Please wait \d+ (second|minute)s?, then try again", said)
        assert 1 <= int(sealed.headers["Retry-After"]) <= 60


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_a_session_refused_by_its_own_budget_spends_nothing_of_the_sites(
    initialised: dict[str, str], storage: str
) -> None:
    if storage == "redis" and not REDIS_URL:
        pytest.skip("PORTAL_TEST_REDIS_URL is not set")
    prefix = installation_prefix(Path(initialised["PORTAL_DATA_DIR"]))
    try:
        with limited_site(
            initialised,
            PORTAL_RATELIMIT_STORAGE_URI=REDIS_URL if storage == "redis" else "memory://",
            PORTAL_FOLLOW_UP_RATE_LIMIT="6 per minute",
            PORTAL_FOLLOW_UP_SESSION_RATE_LIMIT="3 per minute",
        ) as app:
            first, second = app.test_client(), app.test_client()
            assert [look_up(first).status_code for _ in range(20)] == [400] * 3 + [429] * 17
            assert "You have tried many times" in look_up(first).get_data(as_text=True)
            # The site's budget holds three more lookups, whoever makes them, then no more.
            assert [look_up(second).status_code for _ in range(3)] == [400] * 3
            crowded = look_up(app.test_client())
            assert crowded.status_code == 429
            assert "Many people are using the portal" in crowded.get_data(as_text=True)
    finally:
        if storage == "redis":
            forget_keys(prefix)


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_a_refused_lookup_says_how_long_to_wait_and_keeps_the_receipt(
    initialised: dict[str, str], lang: str
) -> None:
    with limited_site(initialised, PORTAL_FOLLOW_UP_SESSION_RATE_LIMIT="2 per minute") as app:
        client = app.test_client()
        answers = [look_up(client, lang=lang) for _ in range(3)]
        assert [answer.status_code for answer in answers] == [400, 400, 429]
        seconds = int(answers[-1].headers["Retry-After"])
        assert 1 <= seconds <= 60
        page = answers[-1].get_data(as_text=True)
        with app.test_request_context(f"/{lang}/follow-up"):
            g.lang = lang
            wait = errors.wait_sentence(seconds)
        assert str(escape(wait)) in page
        assert re.search(r"\d", wait)
        assert f'value="{WRONG_RECEIPT}"' in page


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (1, "Please wait 1 second,"),
        (59, "Please wait 59 seconds,"),
        (60, "Please wait 1 minute,"),
        (61, "Please wait 2 minutes,"),
        (None, "Please wait a few minutes,"),
    ],
)
def test_the_wait_is_said_in_seconds_then_whole_minutes(
    app: Flask, seconds: int | None, said: str
) -> None:
    with app.test_request_context("/en/follow-up"):
        g.lang = "en"
        assert errors.wait_sentence(seconds).startswith(said)


def test_follow_ups_are_counted_in_this_process_when_redis_is_unreachable(
    initialised: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with limited_site(
        initialised,
        PORTAL_RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",
        PORTAL_FOLLOW_UP_SESSION_RATE_LIMIT="2 per minute",
    ) as app:
        client = app.test_client()
        assert [look_up(client).status_code for _ in range(3)] == [400, 400, 429]
    assert "counting in this process" in caplog.text


def test_sign_ins_are_limited_per_account(initialised: dict[str, str]) -> None:
    with limited_site(initialised, "staff", PORTAL_LOGIN_RATE_LIMIT="3 per minute") as app:
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token

        def sign_in(name: str) -> int:
            return client.post(
                "/login",
                data={
                    "name": name,
                    "passphrase": "wrong words",
                    "code": "000000",
                    "csrf_token": token.group(1),
                },
            ).status_code

        assert [sign_in("amina") for _ in range(4)] == [401, 401, 401, 429]
        assert sign_in(" AMINA ") == 429  # the same account, however it is typed
        assert sign_in("omar") == 401


def test_limits_are_off_when_an_application_says_so_and_count_per_application(
    initialised: dict[str, str],
) -> None:
    with (
        limited_site(initialised, PORTAL_REPORT_RATE_LIMIT="1 per minute") as first,
        limited_site(initialised, PORTAL_REPORT_RATE_LIMIT="1 per minute") as second,
    ):
        a, b = first.test_client(), second.test_client()
        token_a, token_b = csrf_token(a), csrf_token(b)
        assert report(a, token_a).status_code == 200
        assert report(a, token_a).status_code == 429
        assert report(b, token_b).status_code == 200
        first.config["RATELIMIT_ENABLED"] = False
        assert report(a, token_a).status_code == 200


def test_the_honeypot_and_the_storage_quota(initialised: dict[str, str]) -> None:
    with limited_site(initialised, PORTAL_STORAGE_QUOTA_BYTES="20000") as app:
        client = app.test_client()
        token = csrf_token(client)
        dropped = report(client, token, **{answers.HONEYPOT: "http://spam.example"})
        assert dropped.status_code == 200
        assert "receipt-number" not in dropped.get_data(as_text=True)
        assert report(client, token).status_code == 200
        full = report(client, token, description="x" * 30000)
        assert full.status_code == 503
        assert "temporarily unable" in full.get_data(as_text=True).lower()


def test_key_functions_never_use_the_address(staff_app: Flask) -> None:
    whole = limits.whole_site("report")
    by_account = limits.account()
    by_session = limits.session_key("follow-up")
    keys = []
    for address in ("127.0.0.1", "10.0.0.9"):
        with staff_app.test_request_context(
            "/login",
            method="POST",
            data={"name": " Amina "},
            environ_base={"REMOTE_ADDR": address},
        ):
            keys.append((whole(), by_account(), by_session()))
    assert keys[0] == keys[1]
    assert keys[0][0] == "report"
    assert "amina" not in keys[0][1]  # what was typed is not kept, only its digest
    with staff_app.test_request_context("/login", method="POST", data={"name": "amina"}):
        assert by_account() == keys[0][1]


def test_each_installation_and_site_counts_under_its_own_prefix() -> None:
    one, two = b"\x01" * 32, b"\x02" * 32
    assert limits.key_prefix("public", one) != limits.key_prefix("public", two)
    assert limits.key_prefix("public", one) != limits.key_prefix("staff", one)
    assert limits.key_prefix("public", one).startswith("portal-")


# ---------------------------------------------------------------------------------------------
# Redis, and several gunicorn workers


needs_redis = pytest.mark.skipif(not REDIS_URL, reason="PORTAL_TEST_REDIS_URL is not set")


def installation_prefix(data_dir: Path, site: str = "public") -> str:
    """The rate-limit key prefix of a deployment's site."""
    secret = bytes.fromhex((data_dir / "secret.key").read_text().strip())
    return limits.key_prefix(site, secret)


def forget_keys(prefix: str) -> None:
    """Delete this deployment's keys from the test Redis server, and no one else's."""
    import redis

    server = redis.Redis.from_url(REDIS_URL)
    try:
        for key in server.scan_iter(match=f"*{prefix}*"):
            server.delete(key)
    finally:
        server.close()


@needs_redis
def test_counts_live_in_redis_under_the_installations_prefix(
    initialised: dict[str, str],
) -> None:
    import redis

    prefix = installation_prefix(Path(initialised["PORTAL_DATA_DIR"]))
    try:
        with limited_site(
            initialised,
            PORTAL_RATELIMIT_STORAGE_URI=REDIS_URL,
            PORTAL_REPORT_RATE_LIMIT="2 per minute",
        ) as app:
            client = app.test_client()
            token = csrf_token(client)
            assert [report(client, token).status_code for _ in range(3)] == [200, 200, 429]
        server = redis.Redis.from_url(REDIS_URL)
        try:
            assert list(server.scan_iter(match=f"*{prefix}*"))
        finally:
            server.close()
    finally:
        forget_keys(prefix)


def burst_through(served: Served, count: int) -> Counter[int]:
    """`count` reports at once, from one client, through a real server; statuses counted."""
    token, cookie = csrf(served)
    body = urlencode({**MINIMAL_REPORT, "csrf_token": token}).encode()
    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    with ThreadPoolExecutor(16) as pool:
        statuses = pool.map(
            lambda _: served.request("POST", "/en/submit", headers=headers, body=body).status,
            range(count),
        )
        return Counter(statuses)


def submit_workers(served: Served) -> set[str]:
    """The process ids of the workers that have answered a report, whatever they said."""
    log = served.access_log.read_text() if served.access_log.exists() else ""
    return set(re.findall(r"portal\.access\[(\d+)\]: POST /<lang>/submit \d{3}", log))


@needs_redis
def test_two_workers_sharing_redis_hold_one_limit_and_a_follow_up_still_works(
    tmp_path: Path,
) -> None:
    # An hour's window, so that a slow machine cannot see the window end mid-test.
    env = deployment(
        tmp_path, PORTAL_RATELIMIT_STORAGE_URI=REDIS_URL, PORTAL_REPORT_RATE_LIMIT="20 per hour"
    )
    prefix = installation_prefix(Path(env["PORTAL_DATA_DIR"]))
    served = Served(
        tmp_path, env, ["--workers", "2", "--access-log", str(tmp_path / "access.log")]
    ).start()
    try:
        token, cookie = csrf(served)
        headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        first = served.request(
            "POST",
            "/en/submit",
            headers=headers,
            body=urlencode({**MINIMAL_REPORT, "csrf_token": token}).encode(),
        )
        assert first.status == 200
        statuses = burst_through(served, BURST)
        assert statuses == {200: 19, 429: BURST - 19}
        # The listening socket is open before both workers have booted, and the kernel
        # hands a connection to whichever worker accepts first: on a busy machine one
        # worker can take the whole burst. Knock until the other has answered too; each
        # later report is over the one shared limit, whichever worker takes it.
        deadline = time.monotonic() + 60
        while len(submit_workers(served)) < 2 and time.monotonic() < deadline:
            assert burst_through(served, 8) == {429: 8}
            time.sleep(0.2)
        lookup = served.request(
            "POST",
            "/en/follow-up",
            headers=headers,
            body=urlencode({"receipt": receipt_of(first.text), "csrf_token": token}).encode(),
        )
        assert lookup.status == 200
    finally:
        served.stop()
        forget_keys(prefix)
    # Both workers answered reports and only 20 were taken in all: had each worker
    # kept its own count, the one that answered n reports would have taken min(n, 20)
    # more.
    assert len(submit_workers(served)) == 2


@pytest.mark.parametrize("path", ["/en/submit", "/en/follow-up"])
def test_a_large_body_that_meets_the_rate_limit_gets_the_size_page(
    initialised: dict[str, str], path: str
) -> None:
    one_an_hour = {
        "PORTAL_REPORT_RATE_LIMIT": "1 per hour",
        "PORTAL_FOLLOW_UP_RATE_LIMIT": "1 per hour",
    }
    with limited_site(initialised, **one_an_hour) as app:
        client = app.test_client()
        client.post(path, data={"csrf_token": csrf_token(client)})
        # The limited page shows the form as typed: a body too large to read gets the size
        # page instead, not a failure of the page that was to keep it.
        body = b"description=" + b"a" * (3 * 1024 * 1024)
        response = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
        text = response.get_data(as_text=True)
        assert response.status_code == 413
        assert "at most 2 MB" in text
        assert len(text) < 20_000
