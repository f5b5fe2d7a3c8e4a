"""Text from a bundle made safe for the team's tools: attachment names and spreadsheet cells.

Names from a bundle are never used as they are: a name is rewritten so that it is safe on every
system and cannot pass for another type of file, and a cell that a spreadsheet could read as a
formula is guarded.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 150
MAX_EXTENSION_CHARS = 16
WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789¹²³"}
)
# Characters Windows refuses in names; `/` and `\` are path separators everywhere that matters.
FORBIDDEN_CHARS = frozenset('<>:"/\\|?*')
# Zero-width joiners belong to Persian, Arabic and emoji spelling; other format characters
# (bidirectional overrides above all) can make "gpj.exe" read as "exe.jpg".
KEPT_FORMAT_CHARS = frozenset("\u200c\u200d")
EXTENSION = re.compile(rf"(\.[^.\s]{{1,{MAX_EXTENSION_CHARS}}})$")


# ---------------------------------------------------------------------------------------------
# Attachment names


def safe_name(name: str) -> str:
    """A file name safe on every system: no separators, controls, leading dots or reserved names."""
    # A path keeps its meaningful parts as one name: ../../etc/passwd becomes etc_passwd.
    parts = re.split(r"[/\\]+", unicodedata.normalize("NFC", name))
    chars = []
    for char in "_".join(part for part in parts if part.strip(" .")):
        category = unicodedata.category(char)
        if char in FORBIDDEN_CHARS or category in ("Cc", "Cs", "Zl", "Zp"):
            chars.append("_")
        elif category == "Cf" and char not in KEPT_FORMAT_CHARS:
            continue
        elif category == "Zs":
            chars.append(" ")
        else:
            chars.append(char)
    text = re.sub(r"\.{2,}", ".", "".join(chars)).strip(" .")
    # A leading dash reads as an option to whatever command the file is later given to.
    if text.startswith("-"):
        text = "_" + text[1:]
    stem, extension = _split_extension(text)
    if stem.split(".")[0].strip().upper() in WINDOWS_RESERVED:
        stem = "_" + stem
    return _limit(stem, extension)


def _split_extension(text: str) -> tuple[str, str]:
    match = EXTENSION.search(text)
    if match is None or match.start() == 0:
        return text, ""
    return text[: match.start()], match.group(1)


def _limit(stem: str, extension: str) -> str:
    room = MAX_NAME_BYTES - len(extension.encode("utf-8"))
    while len(stem.encode("utf-8")) > room:
        stem = stem[:-1]
    stem = stem.rstrip(" .")
    return (stem or "attachment") + extension


def numbered(name: str, taken: set[str]) -> str:
    """`name`, or `name (2).ext`, ... : the first not in `taken` (compared ignoring case)."""
    candidate, number = name, 1
    while candidate.casefold() in taken:
        number += 1
        stem, extension = _split_extension(name)
        candidate = f"{stem} ({number}){extension}"
    taken.add(candidate.casefold())
    return candidate


def suspicious_name(name: str) -> bool:
    """A name no browser would send: a path, or control characters."""
    return (
        name in (".", "..")
        or "/" in name
        or "\\" in name
        or any(unicodedata.category(char) == "Cc" for char in name)
    )


# ---------------------------------------------------------------------------------------------
# Spreadsheet cells (cases.csv and the annual report's tables, written from the register)


# What a spreadsheet may read as the start of a formula, and what it may split a cell at: the
# team's spreadsheet may be set to split at `;` or tab as well as `,` (and to trim spaces), so
# every piece is guarded.
FORMULA_START = "=+-@\t\r"
CELL_SEPARATORS = ";,\t\r\n"
_UNGUARDED = re.compile(rf"(^|[{CELL_SEPARATORS}])(?= *[{re.escape(FORMULA_START)}])")


def csv_cell(value: str) -> str:
    """Guard a cell against formula injection: a quote before every piece that starts a formula."""
    return _UNGUARDED.sub(lambda match: match.group(1) + "'", value)
