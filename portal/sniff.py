"""What an attachment claims to be, and what its first bytes say it is.

Attachments may come from the people a State wants to silence, or from the State pretending to
be them. The team should know, before opening a file, whether a "photo.jpg" is in fact a
program or a web page. This module reads only the first bytes and never runs or parses a file.
"""

from __future__ import annotations

from pathlib import Path

HEAD_BYTES = 64

# What the first bytes say, in the order checked: (kind, offset, magic).
MAGIC: tuple[tuple[str, int, bytes], ...] = (
    ("pdf", 0, b"%PDF-"),
    ("png", 0, b"\x89PNG\r\n\x1a\n"),
    ("jpeg", 0, b"\xff\xd8\xff"),
    ("gif", 0, b"GIF87a"),
    ("gif", 0, b"GIF89a"),
    ("tiff", 0, b"II*\x00"),
    ("tiff", 0, b"MM\x00*"),
    ("zip", 0, b"PK\x03\x04"),
    ("zip", 0, b"PK\x05\x06"),
    ("ole", 0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
    ("rtf", 0, b"{\\rtf"),
    ("7z", 0, b"7z\xbc\xaf\x27\x1c"),
    ("rar", 0, b"Rar!\x1a\x07"),
    ("gzip", 0, b"\x1f\x8b"),
    ("ogg", 0, b"OggS"),
    ("flac", 0, b"fLaC"),
    ("mp3", 0, b"ID3"),
    ("matroska", 0, b"\x1a\x45\xdf\xa3"),
    ("mp4", 4, b"ftyp"),
    ("executable", 0, b"\x7fELF"),
    ("executable", 0, b"MZ"),
    ("executable", 0, b"\xcf\xfa\xed\xfe"),
    ("executable", 0, b"\xce\xfa\xed\xfe"),
    ("executable", 0, b"\xca\xfe\xba\xbe"),
    ("script", 0, b"#!"),
)
RIFF_KINDS = {b"WEBP": "webp", b"WAVE": "wav", b"AVI ": "avi"}
MARKUP = ((b"<!doctype html", "html"), (b"<html", "html"), (b"<svg", "svg"), (b"<?xml", "xml"))

DESCRIPTIONS = {
    "pdf": "a PDF document",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "gif": "a GIF image",
    "tiff": "a TIFF image",
    "webp": "a WebP image",
    "zip": "a ZIP archive (also Word, Excel, OpenDocument files)",
    "ole": "an old Microsoft Office document (Word, Excel 97-2003)",
    "rtf": "an RTF document",
    "7z": "a 7-Zip archive",
    "rar": "a RAR archive",
    "gzip": "a gzip archive",
    "ogg": "an Ogg audio or video file",
    "flac": "a FLAC audio file",
    "mp3": "an MP3 audio file",
    "wav": "a WAV audio file",
    "avi": "an AVI video",
    "matroska": "a Matroska or WebM video",
    "mp4": "an MP4, MOV, M4A or HEIC file",
    "html": "a web page (HTML), which can run scripts when opened",
    "svg": "an SVG image, which can hold scripts",
    "xml": "an XML document",
    "executable": "a PROGRAM (Windows, Linux or macOS executable)",
    "script": "a SCRIPT (a program in text form)",
    "text": "plain text",
    "empty": "an empty file",
    "unknown": "unrecognised bytes",
}

# What a name's extension or a declared type claims, in the same words as MAGIC.
EXTENSIONS = {
    "pdf": "pdf", "png": "png", "jpg": "jpeg", "jpeg": "jpeg", "jfif": "jpeg", "gif": "gif",
    "tif": "tiff", "tiff": "tiff", "webp": "webp", "zip": "zip", "docx": "zip", "xlsx": "zip",
    "pptx": "zip", "odt": "zip", "ods": "zip", "odp": "zip", "epub": "zip", "doc": "ole",
    "xls": "ole", "ppt": "ole", "rtf": "rtf", "7z": "7z", "rar": "rar", "gz": "gzip",
    "tgz": "gzip", "ogg": "ogg", "oga": "ogg", "ogv": "ogg", "opus": "ogg", "flac": "flac",
    "mp3": "mp3", "wav": "wav", "avi": "avi", "mkv": "matroska", "webm": "matroska",
    "mp4": "mp4", "m4a": "mp4", "m4v": "mp4", "mov": "mp4", "heic": "mp4", "3gp": "mp4",
    "html": "html", "htm": "html", "svg": "svg", "xml": "xml", "txt": "text", "csv": "text",
    "md": "text", "exe": "executable", "dll": "executable", "msi": "executable",
    "scr": "executable", "sh": "script", "py": "script", "bat": "script", "ps1": "script",
}  # fmt: skip
MIME_TYPES = {
    "application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif",
    "image/tiff": "tiff", "image/webp": "webp", "application/zip": "zip",
    "application/msword": "ole", "application/vnd.ms-excel": "ole", "application/rtf": "rtf",
    "text/rtf": "rtf", "application/x-7z-compressed": "7z", "application/gzip": "gzip",
    "audio/ogg": "ogg", "video/ogg": "ogg", "audio/flac": "flac", "audio/mpeg": "mp3",
    "audio/wav": "wav", "audio/x-wav": "wav", "video/x-msvideo": "avi", "video/webm": "matroska",
    "video/x-matroska": "matroska", "video/mp4": "mp4", "audio/mp4": "mp4",
    "video/quicktime": "mp4", "image/heic": "mp4", "text/html": "html", "image/svg+xml": "svg",
    "application/xml": "xml", "text/xml": "xml", "text/plain": "text", "text/csv": "text",
    "application/x-msdownload": "executable", "application/x-executable": "executable",
}  # fmt: skip
# Kinds that one container legitimately stands for: an SVG or XHTML file is XML, a text file
# whose first bytes look like markup is still text, an Office file is a ZIP.
COMPATIBLE = {
    frozenset({"svg", "xml"}),
    frozenset({"html", "xml"}),
    frozenset({"text", "xml"}),
    frozenset({"text", "html"}),
    frozenset({"text", "script"}),
    frozenset({"text", "svg"}),
}
DANGEROUS = frozenset({"executable", "script", "html", "svg"})


def sniff(head: bytes) -> str:
    """The kind the first bytes of a file show."""
    if not head:
        return "empty"
    for kind, offset, magic in MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return kind
    if head[:4] == b"RIFF" and head[8:12] in RIFF_KINDS:
        return RIFF_KINDS[head[8:12]]
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for prefix, kind in MARKUP:
        if stripped.startswith(prefix):
            return kind
    if head[:3] == b"\xff\xfb" or head[:2] in (b"\xff\xf3", b"\xff\xf2"):
        return "mp3"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # The head may end in the middle of a character: only that is forgiven.
            if exc.start < len(head) - 3:
                return "unknown"
        return "text"
    return "unknown"


def sniff_file(path: Path) -> str:
    """The kind a file's first bytes show, or "missing" when it cannot be read."""
    try:
        with path.open("rb") as handle:
            return sniff(handle.read(HEAD_BYTES))
    except OSError:
        return "missing"


def claimed(name: str, mime: str) -> str:
    """What the name's extension (first) or the declared type says the file is; "" if nothing."""
    extension = name.rsplit(".", 1)[1].lower() if "." in name else ""
    if extension in EXTENSIONS:
        return EXTENSIONS[extension]
    base = mime.split(";")[0].strip().lower()
    if base.startswith(("application/vnd.openxmlformats", "application/vnd.oasis.opendocument")):
        return "zip"
    return MIME_TYPES.get(base, "")


def mismatch(claim: str, found: str) -> bool:
    """Whether the first bytes contradict the claim, or show a program or page not announced."""
    if found in ("missing", "empty", "unknown"):
        return False
    if not claim:
        return found in DANGEROUS
    return claim != found and frozenset({claim, found}) not in COMPATIBLE


def describe(kind: str) -> str:
    """A kind in words for the team."""
    return DESCRIPTIONS.get(kind, kind or "nothing said")
