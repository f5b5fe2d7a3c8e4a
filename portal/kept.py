"""Attachments kept across a form that comes back with a problem.

A person on a slow connection who attached evidence must not have to send it again because a
question was left unanswered. Attachments were already sealed as they arrived; when the form
comes back, they stay sealed in their staging folder and the page carries a signed token naming
them (with their keys: the person who sent the file may hold its key). Sending the form again
brings them back. Unclaimed staging folders are removed by `portal purge` after a day.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.datastructures import MultiDict

from portal import crypto, uploads

MAX_AGE_SECONDS = 6 * 3600
FIELD = "kept_files"
KEEP = "keep_file"
# Staged attachments are part-N when they arrive and kept-N once carried over a problem.
PART_NAME = re.compile(r"(part|kept)-[0-9]{1,4}")


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


def describe(staged: uploads.Uploads, parts: list[uploads.Part]) -> list[KeptFile]:
    """The attachments of this request, to keep for the next try."""
    return [
        KeptFile(
            i, staged.staging.path.name, p.name, p.filename, p.content_type, p.size, p.key or b""
        )
        for i, p in enumerate(parts)
        if p.key is not None
    ]


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


def restore(form: MultiDict[str, str], staged: uploads.Uploads) -> list[uploads.Part]:
    """Move kept attachments the person still wants into this request's staging folder."""
    raw = form.get(FIELD)
    if not raw:
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
        earlier.add(str(staging_name))
        if str(index) not in wanted:
            continue
        source = staged.staging.path.parent / str(staging_name) / str(part_name)
        name = f"kept-{index}"
        try:
            os.rename(source, staged.staging.path / name)
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
    for name in earlier - {staged.staging.path.name}:
        shutil.rmtree(staged.staging.path.parent / name, ignore_errors=True)
    return restored


__all__ = ["KeptFile", "describe", "restore", "token"]
