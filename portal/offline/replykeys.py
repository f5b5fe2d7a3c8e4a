"""Each case's reply key, pinned on the offline machine the first time it is seen.

A case's reply key is derived from its receipt, so it never changes. It reaches the offline
machine in one of two ways: inside the sealed manifest, where whoever sealed the report put it
(the server cannot change it there without replacing the report itself), or in the bundle index,
which the server writes and nothing authenticates. A server that changed the index could have
the team's replies sealed to its own key. So the first key seen for a case is pinned in the case
folder, in `reply-key.json`, written durably; a later submission naming another key is refused,
and `portal reply` seals only to the pinned key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portal.formats import bundle, crypto, days, durable, envelope

PIN_NAME = "reply-key.json"
PIN_FORMAT = "portal-reply-key-pin"
MANIFEST, INDEX = "manifest", "bundle index"
# Where a reply key can come from, as report.json and the pin file name it, and in words.
SOURCES = (MANIFEST, INDEX)
WHERE = {MANIFEST: "in the sealed report", INDEX: "in the bundle index"}


class PinError(Exception):
    """A pin cannot be read or does not match; the message is one line for the team."""


class Mismatch(PinError):
    """A submission or a case folder names another reply key than the one pinned for its case."""


@dataclass(frozen=True)
class ReplyKey:
    """The reply key one submission names, and where it was found."""

    key: bytes
    source: str


@dataclass(frozen=True)
class Pin:
    """The reply key pinned for a case, where it was first found, on which day and in which
    bundle."""

    case: str
    key: bytes
    source: str
    first_seen: str
    bundle: str

    def to_json(self) -> dict[str, Any]:
        """The pin file's object."""
        return {
            "format": PIN_FORMAT,
            "case": self.case,
            "reply_public_key": crypto.b64encode(self.key),
            "source": self.source,
            "first_seen": self.first_seen,
            "bundle": self.bundle,
        }


def choose(manifest: envelope.Manifest, entry: bundle.Entry) -> tuple[ReplyKey | None, list[str]]:
    """The reply key of a submission, the sealed manifest's before the index's; and a warning
    when the two disagree."""
    index_key = None
    if entry.reply_public_key is not None:
        index_key = crypto.b64decode(entry.reply_public_key, crypto.KEY_BYTES)
    if manifest.reply_public_key is None:
        return (ReplyKey(index_key, INDEX) if index_key is not None else None), []
    warnings = []
    if index_key is not None and index_key != manifest.reply_public_key:
        warnings.append(
            f"the bundle index names reply key {short(index_key)} but the sealed report names "
            f"{short(manifest.reply_public_key)}; the sealed one is used. The server altered "
            "the index: treat this bundle with care"
        )
    return ReplyKey(manifest.reply_public_key, MANIFEST), warnings


@dataclass(frozen=True)
class Checked:
    """A submission's reply key, agreeing with its case's pin (new if this is its first key)."""

    found: ReplyKey
    pin: Pin
    new: bool
    warnings: list[str]

    def record_fields(self) -> dict[str, str]:
        """What report.json says of the key: the key, where it came from, when it was pinned."""
        return {
            "reply_public_key": crypto.b64encode(self.found.key),
            "reply_public_key_from": self.found.source,
            "reply_public_key_first_seen": self.pin.first_seen,
        }


def for_submission(
    case_folder: Path, manifest: envelope.Manifest, entry: bundle.Entry, bundle_name: str
) -> Checked | None:
    """The reply key a submission names, checked against its case's pin; None if it names none,
    Mismatch if it names another key than the pinned one."""
    found, warnings = choose(manifest, entry)
    if found is None:
        return None
    pin, new = check(case_folder, entry.case, found, bundle_name, f"this {entry.kind}")
    return Checked(found, pin, new, warnings)


def short(key: bytes) -> str:
    """The first three groups of a key's fingerprint, enough to tell two keys apart by eye."""
    return " ".join(crypto.fingerprint(key).split()[:3])


def describe(source: str, first_seen: str) -> str:
    """Where a reply key came from, in words for report.txt."""
    if source == MANIFEST:
        return f"inside the sealed report (pinned for this case on {first_seen})"
    return f"from the server's bundle index (not authenticated; first seen on {first_seen})"


def read_pin(case_folder: Path) -> Pin | None:
    """The pin of a case folder, or None if it has none; PinError if it is unreadable."""
    path = case_folder / PIN_NAME
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PinError(
            f"the reply key pin {path} cannot be read ({exc}); nothing is trusted without it"
        ) from exc
    try:
        if not isinstance(document, dict) or document.get("format") != PIN_FORMAT:
            raise ValueError("not a pin")
        values = [document.get(name) for name in ("case", "source", "first_seen", "bundle")]
        if not all(isinstance(value, str) for value in values):
            raise ValueError("a value is missing")
        key = crypto.b64decode(str(document.get("reply_public_key")), crypto.KEY_BYTES)
    except (ValueError, crypto.CryptoError) as exc:
        raise PinError(
            f"the reply key pin {path} is malformed; nothing is trusted without it"
        ) from exc
    case, source, first_seen, bundle_name = (str(value) for value in values)
    return Pin(case, key, source, first_seen, bundle_name)


def pin_from_record(case_folder: Path) -> Pin | None:
    """A pin for a case folder opened before pins were kept: the key its report.json holds."""
    try:
        record = json.loads((case_folder / "report.json").read_text(encoding="utf-8"))
        key = crypto.b64decode(str(record["reply_public_key"]), crypto.KEY_BYTES)
        case = str(record["case"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, crypto.CryptoError):
        return None
    source = record.get("reply_public_key_from")
    return Pin(
        case,
        key,
        source if source in SOURCES else INDEX,
        days.today_iso(),
        str(record.get("bundle", "an earlier run")),
    )


def check(
    case_folder: Path, case: str, found: ReplyKey, bundle_name: str, what: str = "it"
) -> tuple[Pin, bool]:
    """The pin `found` must agree with, and whether it is new and must be written; Mismatch if
    the case's pin names another key (`what` names what named `found`, for the message)."""
    pin = read_pin(case_folder) or pin_from_record(case_folder)
    if pin is None:
        return Pin(case, found.key, found.source, days.today_iso(), bundle_name), True
    if pin.case != case:
        raise Mismatch(f"the reply key pin in {case_folder} is for case {pin.case}, not {case}")
    if pin.key != found.key:
        raise Mismatch(
            f"{what} names reply key {short(found.key)} ({WHERE[found.source]}), but this "
            f"machine pinned {short(pin.key)} for case {case} on {pin.first_seen} (found "
            f"{WHERE.get(pin.source, pin.source)}). A case's reply key never changes, so the "
            "bundle or the server was altered and a reply could reach someone else"
        )
    return pin, not (case_folder / PIN_NAME).exists()


def write_pin(case_folder: Path, pin: Pin) -> Path:
    """Write a case's pin durably (temporary name, fsync, rename, fsync the folder)."""
    path = case_folder / PIN_NAME
    durable.write_bytes(path, (json.dumps(pin.to_json(), indent=1) + "\n").encode("utf-8"))
    return path
