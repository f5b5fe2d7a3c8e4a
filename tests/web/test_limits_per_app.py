"""Each application counts with a Limiter of its own, made with it and left as it was made.

The blueprints are made once per process and registered on every application made in it (both
sites, and many test applications): what one application has spent must be nothing to another,
and no application's Limiter may be rearranged for the sake of another's.
"""

from __future__ import annotations

import re
from contextlib import ExitStack

from conftest import csrf_token
from flask import Flask
from flask.testing import FlaskClient
from flask_limiter import Limiter
from test_limits import limited_site, look_up, report

from portal.web import limits


def sign_in(client: FlaskClient, name: str = "amina") -> int:
    """A wrong sign-in for `name`: its status."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    data = {"name": name, "passphrase": "wrong words", "code": "000000", "csrf_token": token[1]}
    return client.post("/login", data=data).status_code


def test_two_applications_in_one_process_keep_separate_counts(
    initialised: dict[str, str],
) -> None:
    budgets = {
        "PORTAL_REPORT_RATE_LIMIT": "1 per minute",
        "PORTAL_FOLLOW_UP_SESSION_RATE_LIMIT": "2 per minute",
    }
    with (
        limited_site(initialised, **budgets) as first,
        limited_site(initialised, **budgets) as second,
    ):
        assert limits.of(first) is not limits.of(second)
        a, b = first.test_client(), second.test_client()
        # The first spends its follow-up budget (spent by `budget`) and its report limit (a
        # Flask-Limiter limit shared by the ways in)...
        assert [look_up(a).status_code for _ in range(3)] == [400, 400, 429]
        token = csrf_token(a)
        assert [report(a, token).status_code for _ in range(2)] == [200, 429]
        # ...and the second, from the same blueprints, has all of both.
        assert [look_up(b).status_code for _ in range(3)] == [400, 400, 429]
        token = csrf_token(b)
        assert [report(b, token).status_code for _ in range(2)] == [200, 429]


def test_each_staff_site_locks_sign_ins_on_its_own_counts(initialised: dict[str, str]) -> None:
    with (
        limited_site(initialised, "staff", PORTAL_LOGIN_RATE_LIMIT="2 per minute") as first,
        limited_site(initialised, "staff", PORTAL_LOGIN_RATE_LIMIT="2 per minute") as second,
    ):
        a, b = first.test_client(), second.test_client()
        assert [sign_in(a) for _ in range(3)] == [401, 401, 429]
        assert [sign_in(b) for _ in range(3)] == [401, 401, 429]


def test_no_limiter_is_changed_after_it_is_made(initialised: dict[str, str]) -> None:
    with ExitStack() as stack:
        apps: list[Flask] = []
        made: list[dict[str, object]] = []
        for name in ("public", "staff", "public", "staff"):
            app = stack.enter_context(limited_site(initialised, name))
            apps.append(app)
            made.append(dict(vars(limits.of(app))))
        for app in apps:
            client = app.test_client()
            if app.config["PORTAL_SITE"] == "public":
                look_up(client)
                report(client, csrf_token(client))
            else:
                sign_in(client)
        for app, before in zip(apps, made, strict=True):
            limiter = limits.of(app)
            assert type(limiter) is Limiter
            after = vars(limiter)
            assert after.keys() == before.keys()
            assert [name for name in before if after[name] is not before[name]] == []
        assert len({id(limits.of(app)) for app in apps}) == len(apps)
