"""The public site's worker: gunicorn's gevent worker with the portal's guards.

A person uploading a large file over Tor sends a few kilobytes a second for an hour. With a
thread per connection, a few dozen such uploads (or as many clients pretending to be them)
take every thread and the site stops answering everyone else. Here every connection is a
greenlet, and a client that is waiting costs its memory (tens of kilobytes) rather than a
thread: thousands can be in flight while pages, receipt lookups and small reports answer at
once. The guards of `portal.workers` hold as they do in the threaded worker: every read is
bounded by the read timeout and the minimum rate, a stalled body gets the application's 408
page, stalled headers a bare one, responses say nothing of the software.

gevent patches the standard library when the worker process starts (gunicorn's
`GeventWorker.init_process`), never when the portal package is imported: this module is
imported by the serving process alone. The application is built after the patch (the site is
not preloaded), so its locks and sockets are gevent's. What would block the one thread still
runs elsewhere: Argon2id in a small pool of real threads (`portal.offload`); psycopg 3 waits
cooperatively under gevent by itself; SQLite's calls are short.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from typing import Any

from gunicorn.http import get_parser  # type: ignore[import-untyped]
from gunicorn.http.errors import NoMoreData  # type: ignore[import-untyped]
from gunicorn.workers.ggevent import GeventWorker  # type: ignore[import-untyped]

from portal.workers import Guarded, GuardedUnreader, log

QUIET_ERRORS = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN)


class GreenWorker(Guarded, GeventWorker):  # type: ignore[misc]
    """gunicorn's gevent worker with guarded reads, no Server header and short error answers."""

    def handle(self, listener: socket.socket, client: socket.socket, addr: Any) -> None:
        """Serve the requests of one connection (HTTP/1.1, kept alive), every read guarded."""
        read_timeout, min_rate = self._limits()
        client.setblocking(True)
        # Bounds writes too: a client that stops reading a response is let go.
        client.settimeout(read_timeout)
        req = None
        try:
            parser = get_parser(self.cfg, client, addr)
            guarded = GuardedUnreader(client, read_timeout, min_rate, float(self.cfg.keepalive))
            guarded.buf = parser.unreader.buf
            parser.unreader = guarded
            listener_name = listener.getsockname()
            while True:
                req = next(parser)
                if not req:
                    break
                # The headers are in: from here on, a stall is the body's.
                guarded.in_body = True
                self.handle_request(listener_name, req, client, addr)
                guarded.begin(idle=True)
        except (NoMoreData, StopIteration):
            pass
        except TimeoutError:
            # A response the client stopped reading.
            log.info("dropped a client that stopped reading its answer")
        except OSError as exc:
            if exc.errno not in QUIET_ERRORS:
                log.info("lost a connection (%s)", type(exc).__name__)
        except Exception as exc:
            self.handle_error(req, client, addr, exc)
        finally:
            with contextlib.suppress(OSError):
                client.close()
