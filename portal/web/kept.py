"""Attachments kept across a form that comes back with a problem.

A person on a slow connection who attached evidence must not have to send it again because a
question was left unanswered. Attachments were already sealed as they arrived; when the form
comes back, they stay sealed in a folder of `sealed/.kept/` and the page carries a signed token
naming them (with their keys: the person who sent the file may hold its key). Sending the form
again brings them back.

Keeping costs disk that no submission accounts for, so it is given only where it can be
bounded: to a form whose CSRF check passed (so to a browser session that loaded the form), and
within a budget per session and one for the whole site (`PORTAL_KEPT_SESSION_BYTES`,
`PORTAL_KEPT_TOTAL_BYTES`). A kept folder is named for its session (a keyed digest of the
session's CSRF secret), which is how the budget is counted and why a token brings files back
only in the session it was given to. Outside those bounds the attachments are let go and the
page asks for them again. Kept folders older than a token's life are removed by the hourly
sweep (`retention.sweep_stale`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, session
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.datastructures import MultiDict

from portal.formats import crypto
from portal.server import storage
from portal.server.config import Config
from portal.web import uploads

MAX_AGE_SECONDS = storage.KEPT_MAX_AGE_SECONDS
FIELD = "kept_files"
KEEP = "keep_file"
# Staged attachments are part-N when they arrive and kept-N once carried over a problem.
PART_NAME = re.compile(r"(part|kept)-[0-9]{1,4}")
LOCK = ".lock"


@dataclass(frozen=True)
class KeptFile:
    """An attachment sealed and waiting for its form."""

    index: int
    staging: str
    part: str
    filename: str
    content_type: str
    size: int
    key: bytes


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="portal-kept-files")


def session_tag() -> str | None:
    """A keyed digest naming this browser session's kept folders; None without a session."""
    secret = session.get(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
    if not secret:
        return None
    return hashlib.blake2b(
        str(secret).encode("utf-8"),
        key=current_app.config["SECRET_KEY"],
        digest_size=8,
        person=b"portal-kept",
    ).hexdigest()


def describe(staging_id: str, parts: list[uploads.Part]) -> list[KeptFile]:
    """The attachments of this request, kept under `staging_id` for the next try."""
    return [
        KeptFile(i, staging_id, p.name, p.filename, p.content_type, p.size, p.key or b"")
        for i, p in enumerate(parts)
        if p.key is not None
    ]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One keeper at a time (across workers), so that concurrent forms cannot pass a budget."""
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def keep(
    config: Config,
    store: storage.BlobStore,
    staged: uploads.Uploads,
    files: list[uploads.Part],
    *,
    trusted: bool,
) -> tuple[list[KeptFile], bool]:
    """Keep this request's attachments for the next try, if allowed and within the budgets.

    `trusted` says the form's CSRF check passed. Returns what is kept, and whether
    attachments had to be let go (the page then asks for them again).
    """
    if not files:
        return [], False
    tag = session_tag() if trusted else None
    if tag is None:
        return [], True
    staging = staged.staging
    # Only the attachments wait: nothing else of the request is kept.
    staging.keep_only({p.name for p in files})
    size = staging.size()
    store.ensure()
    with _locked(store.kept):
        ours = everyone = 0
        for entry in os.scandir(store.kept):
            if entry.is_dir(follow_symlinks=False):
                used = storage.folder_bytes(Path(entry.path))
                everyone += used
                if entry.name.startswith(tag):
                    ours += used
        if ours + size > config.kept_session_bytes or everyone + size > config.kept_total_bytes:
            return [], True
        staging_id = staging.name
        target = store.kept / (tag + staging_id)
        staging.move_to(target)
    # A kept folder's age counts from now, not from the start of a long upload.
    os.utime(target)
    staged.keep = True
    return describe(staging_id, files), False


def token(files: list[KeptFile]) -> str:
    """A signed token for the page; empty when nothing is kept."""
    if not files:
        return ""
    return _serializer().dumps(
        [
            [f.staging, f.part, f.filename, f.content_type, f.size, crypto.b64encode(f.key)]
            for f in files
        ]
    )


def restore(
    form: MultiDict[str, str], staged: uploads.Uploads, store: storage.BlobStore
) -> list[uploads.Part]:
    """Move kept attachments the person still wants into this request's staging folder."""
    raw = form.get(FIELD)
    tag = session_tag()
    if not raw or tag is None:
        return []
    try:
        items = _serializer().loads(raw, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return []
    wanted = set(form.getlist(KEEP))
    restored = []
    earlier: set[str] = set()
    for index, item in enumerate(items):
        staging_name, part_name, filename, content_type, size, key = item
        # A file kept once and kept again after a second problem is named kept-N by now.
        if not str(staging_name).isalnum() or not PART_NAME.fullmatch(str(part_name)):
            continue
        earlier.add(tag + str(staging_name))
        if str(index) not in wanted:
            continue
        # Only this session's folders: a token shown to another session brings back nothing.
        source = store.kept / (tag + str(staging_name)) / str(part_name)
        name = f"kept-{index}"
        try:
            staged.staging.adopt(source, name)
        except OSError:
            continue
        restored.append(
            uploads.Part(
                "attachments",
                str(filename),
                str(content_type),
                None,
                name,
                int(size),
                crypto.b64decode(str(key), crypto.KEY_BYTES),
            )
        )
    # What the person left out goes now, rather than at the next sweep of stale uploads.
    for name in earlier:
        shutil.rmtree(store.kept / name, ignore_errors=True)
    return restored


__all__ = ["KeptFile", "describe", "keep", "restore", "session_tag", "token"]
