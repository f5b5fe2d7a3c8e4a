"""Logging that cannot record who sent what: no address, user agent, query string or body.

Every handler uses `SafeFormatter`. Messages from the portal's own loggers (`portal`,
`portal.*`) are written as they are, because the portal only ever logs facts about itself.
Everything else (gunicorn, Flask's application logger, libraries) is treated as untrusted:
a message is written only when its template is known to carry process facts alone, numbers
pass, and every other argument is replaced by a marker. Exceptions are reduced to their type
and the places they passed through, never their message, whose text may quote a request.
Lines carry the day (UTC), never the time of day.

The access log is off unless asked for, and then holds the method, the route's pattern (as
the application declares it, `/<lang>/submit`, not the path that was asked for), the status,
the size and the duration rounded to a tenth of a second.
"""

from __future__ import annotations

import logging
import logging.config
import re
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from gunicorn import glogging  # type: ignore[import-untyped]

from portal import ROUTE_KEY

WITHHELD = "[withheld]"
ACCESS_LOGGER = "portal.access"
TRUSTED_LOGGERS = ("portal",)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})

# Templates whose arguments are facts about the server process itself: versions, process
# ids, signal names, its own listening sockets, worker class names.
SAFE_TEMPLATES = frozenset(
    {
        "Starting gunicorn %s",
        "Listening at: %s (%s)",
        "Listening at: %s",
        "Using worker: %s",
        "Booting worker with pid: %s",
        "Worker exiting (pid: %s)",
        "Handling signal: %s",
        "Shutting down: %s",
        "Hang up: %s",
        "Reason: %s",
        "WORKER TIMEOUT (pid:%s)",
        "Worker (pid:%s) exited with code %s.",
        "Worker (pid:%s) was sent %s!",
        "Worker (pid:%s) was sent %s! Perhaps out of memory?",
        "Ignoring unknown signal: %s",
        "Unhandled signal: %s",
        "Connection in use: %s",
        "Invalid address: %s",
        "Can't connect to %s",
    }
)

# Messages without arguments that are written as they are. Anything else without arguments
# may have been formatted before it reached the logger (gunicorn formats some with the
# request line or the peer's address), so it is withheld.
SAFE_LITERALS = frozenset(
    {
        "Arbiter booted",
        "graceful stop of workers",
        "Quick shutdown requested",
        "Master has been promoted.",
        "Autorestarting worker after current request.",
        "Control socket disabled",
        "Retrying in 1 second.",
        "Error handling request",
        "Error handling request (no URI read)",
        "Socket error processing request.",
        "Exception in worker process",
        "Unhandled exception in main loop",
        "Exception in post_request hook",
        "Closing connection.",
        "Ignoring connection reset",
        "Ignoring socket not connected",
        "Ignoring connection epipe",
        "No keepalived connections can be handled. Check the number of worker connections and "
        "threads.",
        "Rate limit storage unreachable - falling back to in-memory storage",
        "Rate limit storage recovered",
        "Failed to rate limit. Swallowing error",
    }
)

_PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa%]")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _trusted(name: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in TRUSTED_LOGGERS)


def _masked(template: str, args: Any) -> str:
    """The template with every argument that is not a plain number withheld."""
    values = args if isinstance(args, tuple) else (args,)
    position = iter(values)

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        value = next(position, None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return WITHHELD

    if isinstance(args, dict):
        return _PLACEHOLDER.sub(lambda m: "%" if m.group(0) == "%%" else WITHHELD, template)
    return _PLACEHOLDER.sub(replace, template)


def safe_message(record: logging.LogRecord) -> str:
    """The text of a record that may be written: see the module's description."""
    if _trusted(record.name):
        return record.getMessage()
    template = record.msg
    if not isinstance(template, str):
        return WITHHELD
    if not record.args:
        if template in SAFE_LITERALS:
            return template
        return f"{WITHHELD} (a message from {record.name})"
    if template in SAFE_TEMPLATES:
        try:
            return record.getMessage()
        except (TypeError, ValueError):
            return _masked(template, record.args)
    return _masked(template, record.args)


def exception_summary(exc_info: ExcInfo | None) -> str:
    """An exception's type and where it passed (file:line function), never its message."""
    if not exc_info or exc_info[0] is None:
        return ""
    kind, _error, tb = exc_info
    frames = traceback.extract_tb(tb)
    where = " < ".join(
        f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}"
        for frame in reversed(frames[-8:])
    )
    return f"{kind.__module__}.{kind.__qualname__}" + (f" at {where}" if where else "")


class SafeFormatter(logging.Formatter):
    """Formats records so that nothing a client sent can appear: see the module's description."""

    def format(self, record: logging.LogRecord) -> str:
        """One line: the day, the level, the logger and process, the safe message."""
        day = datetime.fromtimestamp(record.created, UTC).date().isoformat()
        line = f"{day} {record.levelname} {record.name}[{record.process}]: {safe_message(record)}"
        summary = exception_summary(record.exc_info)  # type: ignore[arg-type]
        if summary:
            line += f" | {summary}"
        # Never the stack or the exception's text, which the base class would add.
        return line.replace("\r", " ").replace("\n", " ")


def _handler(target: str | None) -> dict[str, Any]:
    if target is None or target == "-":
        return {"class": "logging.StreamHandler", "formatter": "safe", "stream": "ext://sys.stderr"}
    return {
        "class": "logging.FileHandler",
        "formatter": "safe",
        "filename": target,
        "encoding": "utf-8",
    }


def logconfig_dict(log_file: str | None, access_log: str | None, level: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` of a served site: one safe formatter for every handler.

    `log_file` (default: standard error) receives everything but the access log;
    `access_log` is None (no access log), "-" (standard error) or a file.
    """
    handlers = {"errors": _handler(log_file)}
    access_handlers = []
    if access_log is not None:
        handlers["access"] = _handler(access_log)
        access_handlers = ["access"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"safe": {"()": "portal.serve.logs.SafeFormatter"}},
        "handlers": handlers,
        "root": {"level": level.upper(), "handlers": ["errors"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": ["errors"], "propagate": False},
            # gunicorn's own access lines would carry the address and the user agent; the
            # logger stays silent and unconnected.
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            ACCESS_LOGGER: {"level": "INFO", "handlers": access_handlers, "propagate": False},
            # Alembic notes each plugin it loads: noise in a server's log.
            "alembic": {"level": "WARNING"},
        },
    }


def route_of(environ: dict[str, Any]) -> str:
    """The pattern of the route that answered (as the application declares it), or "-"."""
    pattern = environ.get(ROUTE_KEY)
    return pattern if isinstance(pattern, str) else "-"


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, configured only from `logconfig_dict`, with a safe access line."""

    def setup(self, cfg: Any) -> None:
        """Apply the logging configuration; gunicorn's own handlers and formats are not used."""
        self.cfg = cfg
        self.loglevel = self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO)
        self._access_log_enabled = cfg.accesslog is not None
        logging.config.dictConfig(cfg.logconfig_dict)
        self.access_log = logging.getLogger(ACCESS_LOGGER)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """One line per request, when asked for: method, route pattern, status, size, time."""
        if not self._access_log_enabled:
            return
        method = environ.get("REQUEST_METHOD", "")
        status = str(getattr(resp, "status", "") or "").split(" ", 1)[0]
        self.access_log.info(
            "%s %s %s %dB %.1fs",
            method if method in KNOWN_METHODS else "OTHER",
            route_of(environ),
            status if status.isdigit() else "-",
            int(getattr(resp, "sent", 0) or 0),
            request_time.total_seconds(),
        )

    def now(self) -> str:
        """No timestamps: gunicorn asks for one only for its own access format."""
        return "-"
