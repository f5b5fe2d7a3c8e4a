"""The upload gate: large request bodies take turns, so that everything else always answers.

Under the gevent worker a slow client costs memory, not a thread, so thousands can be in
flight. Reading a large body costs more than waiting for one, though: parser buffers, a cipher,
a staging file. At most `PORTAL_MAX_UPLOADS` bodies larger than `SMALL_BODY` are read at once
in each worker process; the next waits, its body unread, for up to
`PORTAL_UPLOAD_WAIT_SECONDS`. Small bodies (the follow-up lookup, a report without large
attachments, every page) never wait. An upload still without a turn after the wait is
answered 503 with its form and its text as sent (see `portal.web.errors`): nothing is stored and
the person is asked, in their language, to send it again in a few minutes.

The gate's time in the queue is not the client's: when an upload's turn comes, the server's
minimum-rate clock starts again (see `portal.web.middleware`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from flask import Flask, request
from werkzeug.exceptions import ServiceUnavailable

# Bodies up to this size are read at once: a report with its text and a photo or two, every
# follow-up lookup. Larger ones take a turn.
SMALL_BODY = 1024 * 1024
RETRY_AFTER_SECONDS = 120
EXTENSION = "portal.web.gate"


class Busy(ServiceUnavailable):
    """An upload found no turn within the wait."""


@dataclass
class UploadGate:
    """At most `slots` large bodies read at once; others wait up to `wait` seconds."""

    slots: int
    wait: float
    # Made when the application is built, which under the gevent worker is after the worker
    # has patched threading: the wait then yields to other requests instead of blocking them.
    _turns: threading.BoundedSemaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Make the semaphore."""
        self._turns = threading.BoundedSemaphore(self.slots)

    def enter_now(self) -> bool:
        """Take a turn if one is free."""
        return self._turns.acquire(blocking=False)

    def enter_within_wait(self) -> bool:
        """Wait for a turn; False when none came in time."""
        return self.wait > 0 and self._turns.acquire(timeout=self.wait)

    def leave(self) -> None:
        """Give the turn back."""
        self._turns.release()


def is_large() -> bool:
    """Whether the current request's body must take a turn (unknown lengths must)."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return False
    length = request.content_length
    if length is None:
        return "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    return length > SMALL_BODY


def init_app(app: Flask, slots: int, wait: float) -> None:
    """Make every large body of `app` take a turn before it is read."""
    gate = UploadGate(slots, wait)
    app.extensions[EXTENSION] = gate

    @app.before_request
    def _take_turn() -> None:
        if not is_large():
            return
        if gate.enter_now():
            request.environ[EXTENSION] = gate
            return
        if gate.enter_within_wait():
            request.environ[EXTENSION] = gate
            # The body waited unread: the time in the queue is not held against the client.
            restart = getattr(request.environ.get("wsgi.input"), "restart_clock", None)
            if callable(restart):
                restart()
            return
        raise Busy(retry_after=RETRY_AFTER_SECONDS)

    @app.teardown_request
    def _give_turn(_error: BaseException | None) -> None:
        if request.environ.pop(EXTENSION, None) is not None:
            gate.leave()
