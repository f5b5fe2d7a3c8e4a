"""Logs that cannot hold who sent what: the formatter alone, then a real `portal serve` run."""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from servers import Served, csrf, deployment, multipart

from portal.serve import logs

MARK = secrets.token_hex(6)


def record(
    name: str, msg: object, *args: object, exc: BaseException | None = None
) -> logging.LogRecord:
    """A log record as a logger would make it."""
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args or None, exc_info)


def formatted(rec: logging.LogRecord) -> str:
    """The record as the portal's formatter writes it."""
    return logs.SafeFormatter().format(rec)


def test_a_line_holds_the_day_but_never_the_time() -> None:
    line = formatted(record("portal", "started"))
    assert re.match(r"\d{4}-\d{2}-\d{2} WARNING portal\[\d+\]: started$", line)
    assert not re.search(r"\d{2}:\d{2}", line)


def test_the_portals_own_messages_are_written_as_they_are() -> None:
    assert formatted(record("portal.serve.workers", "dropped after %.0f s", 3.2)).endswith(
        "dropped after 3 s"
    )


@pytest.mark.parametrize(
    "message",
    [
        f"Invalid request from ip=203.0.113.9: Invalid header name 'X-{MARK}'",
        f"Error handling request /en/follow-up?receipt={MARK}",
        f"Mozilla/5.0 {MARK}",
    ],
)
def test_a_message_formatted_before_it_reached_the_logger_is_withheld(message: str) -> None:
    for name in ("gunicorn.error", "portal_public", "werkzeug", "sqlalchemy.engine"):
        line = formatted(record(name, message))
        assert MARK not in line
        assert "203.0.113.9" not in line
        assert logs.WITHHELD in line


def test_text_arguments_are_withheld_and_numbers_kept() -> None:
    line = formatted(
        record("portal_public", "Exception on %s [%s] after %d tries", f"/en/{MARK}", "POST", 3)
    )
    assert line.endswith("Exception on [withheld] [[withheld]] after 3 tries")


def test_gunicorns_messages_about_itself_are_kept() -> None:
    line = formatted(record("gunicorn.error", "Listening at: %s (%s)", "unix:/run/public.sock", 42))
    assert line.endswith("Listening at: unix:/run/public.sock (42)")
    assert formatted(record("gunicorn.error", "Arbiter booted")).endswith("Arbiter booted")


def test_an_exception_is_its_type_and_where_it_passed_never_its_message() -> None:
    try:
        int(f"receipt {MARK}")
    except ValueError as error:
        line = formatted(record("portal", "unexpected", exc=error))
    assert MARK not in line
    assert "builtins.ValueError at test_logs.py:" in line
    assert "\n" not in line


def test_a_line_cannot_be_split_into_two() -> None:
    line = formatted(record("portal", "one\nFAKE second line\r"))
    assert "\n" not in line
    assert "\r" not in line


def test_the_access_line_names_the_route_pattern_not_the_path() -> None:
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda rec: seen.append(formatted(rec))  # type: ignore[method-assign]
    access = logging.getLogger(logs.ACCESS_LOGGER)
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    logger = logs.GunicornLogger.__new__(logs.GunicornLogger)
    logger._access_log_enabled = True
    logger.access_log = access
    environ = {
        "REQUEST_METHOD": "POST",
        logs.ROUTE_KEY: "/<lang>/follow-up",
        "PATH_INFO": f"/en/follow-up/{MARK}",
        "QUERY_STRING": f"r={MARK}",
        "HTTP_USER_AGENT": MARK,
        "REMOTE_ADDR": "203.0.113.9",
    }
    try:
        logger.access(
            SimpleNamespace(status="200 OK", sent=1234), None, environ, timedelta(seconds=1.26)
        )
        logger.access(
            SimpleNamespace(status="404 NOT FOUND", sent=10),
            None,
            {"REQUEST_METHOD": MARK},
            timedelta(0),
        )
    finally:
        access.removeHandler(handler)
    assert seen[0].endswith("POST /<lang>/follow-up 200 1234B 1.3s")
    assert seen[1].endswith("OTHER - 404 10B 0.0s")
    assert MARK not in "".join(seen)


def test_every_handler_formats_safely_and_gunicorns_access_logger_is_unplugged() -> None:
    config = logs.logconfig_dict("/tmp/portal.log", "-", "debug")
    assert {h["formatter"] for h in config["handlers"].values()} == {"safe"}
    assert config["loggers"]["gunicorn.access"]["handlers"] == []
    assert config["loggers"]["gunicorn.access"]["propagate"] is False
    assert logs.logconfig_dict(None, None, "info")["loggers"][logs.ACCESS_LOGGER]["handlers"] == []


# ---------------------------------------------------------------------------------------------
# A real run


@dataclass(frozen=True)
class Run:
    """The logs of a run, and what was sent that must not be in them."""

    text: str
    secrets: list[str]


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """`portal serve` with the access log on and debug logging, after marked requests."""
    folder = tmp_path_factory.mktemp("logs")
    env = deployment(folder)
    served = Served(
        folder, env, ["--log-level", "debug", "--access-log", str(folder / "access.log")]
    ).start()
    try:
        sent = _marked_requests(served)
    finally:
        served.stop()
    return Run(served.logs(), [MARK, *sent, "198.51.100.", "203.0.113.", "mozilla"])


def _marked_requests(served: Served) -> list[str]:
    marked = {
        "User-Agent": f"Mozilla/5.0 (ua-{MARK})",
        "X-Forwarded-For": f"198.51.100.{int(MARK[:2], 16) % 250}, xff-{MARK}",
        "X-Real-IP": "198.51.100.201",
        "Referer": f"http://referer-{MARK}.example/",
        "Forwarded": f"for=198.51.100.202;by=fwd-{MARK}",
    }
    token, cookie = csrf(served)
    report = {
        "description": f"body-{MARK}",
        "consent_of": "self",
        "consent_raise": "no",
        "consent_report": "anonymous",
        "consent_share_un": "yes",
        "consent_contact": "portal",
        "csrf_token": token,
    }
    headers = {**marked, "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    answer = served.request(
        "POST", f"/en/submit?q=query-{MARK}", headers=headers, body=urlencode(report).encode()
    )
    assert answer.status == 200, answer.text[:300]
    receipt = re.search(r'class="receipt-number"[^>]*><code>([\d ]+)</code>', answer.text)
    assert receipt
    digits = receipt.group(1)
    follow = {"receipt": digits, "csrf_token": token}
    assert (
        served.request(
            "POST", "/en/follow-up", headers=headers, body=urlencode(follow).encode()
        ).status
        == 200
    )
    # A report sealed in the browser: its ticket and the receipt inside it are logged nowhere.
    prepared = served.request(
        "POST",
        "/en/submit/prepare",
        headers=headers,
        body=urlencode({"csrf_token": token}).encode(),
    )
    assert prepared.status == 200, prepared.text[:300]
    ticket = json.loads(prepared.text)["ticket"]
    head, tail, content_type = multipart(
        {"csrf_token": token, "website": "", "ticket": ticket, "file_count": "0"},
        {"manifest": ("manifest.sealed", 0)},
    )
    sealed = served.request(
        "POST",
        "/en/submit/sealed",
        headers={**headers, "Content-Type": content_type},
        body=head + bytes(4096 + 48) + tail,
    )
    assert sealed.status == 200, sealed.text[:300]
    browser = re.search(r'class="receipt-number"[^>]*><code>([\d ]+)</code>', sealed.text)
    assert browser
    # A wrong receipt, a path and a query string that match no page, and requests the server
    # refuses before the application sees them, each carrying the mark.
    wrong = {"receipt": "1234 5678 9012 3456 7890 1234 5", "csrf_token": token}
    served.request(
        "POST", f"/en/follow-up?receipt={MARK}", headers=headers, body=urlencode(wrong).encode()
    )
    served.request("GET", f"/en/path-{MARK}?q=query-{MARK}", headers=marked)
    served.request("GET", "/en/", headers={**marked, "Host": f"host-{MARK}.example"})
    served.raw(f"GET /en/?q={MARK} HTTP/1.1\r\nHost: localhost\r\nX-{MARK}\r\n\r\n".encode())
    served.raw(
        f"GET /en/ HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {'u' * 9000}{MARK}\r\n\r\n".encode()
    )
    served.raw(f"G\u00e9T /{MARK} HTTP/1.1\r\n\r\n".encode())
    served.request("GET", f"/static/../{MARK}", headers=marked)
    served.request("GET", "/login", site="staff", headers=marked)
    served.request(
        "POST",
        "/login",
        site="staff",
        headers={**marked, "Content-Type": "application/x-www-form-urlencoded"},
        body=urlencode({"name": f"name-{MARK}", "passphrase": MARK, "code": "123456"}).encode(),
    )
    # The receipts are found nowhere, whichever way they are written, nor the ticket.
    shown = browser.group(1)
    return [digits, digits.replace(" ", ""), shown, shown.replace(" ", ""), ticket]


def test_the_log_of_a_real_run_holds_none_of_what_clients_sent(logged_run: Run) -> None:
    text = logged_run.text.lower()
    assert "booting worker" in text  # the log is the real one
    for secret in logged_run.secrets:
        assert secret.lower() not in text, f"{secret!r} was logged"


def test_the_access_log_of_a_real_run_says_what_happened(logged_run: Run) -> None:
    text = logged_run.text
    assert re.search(r"portal\.access\[\d+\]: POST /<lang>/submit 200 \d+B \d+\.\ds", text)
    assert re.search(r"POST /<lang>/follow-up 200", text)
    assert re.search(r"GET - 404", text)
    # Malformed requests are noted without what made them so.
    assert "refused a malformed request with 431" in text


def test_nothing_in_the_log_is_a_time_of_day(logged_run: Run) -> None:
    assert not re.search(r"\b\d{2}:\d{2}:\d{2}\b", logged_run.text)
