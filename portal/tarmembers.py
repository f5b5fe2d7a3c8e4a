"""The tar members a bundle may hold: plain files (and folders), each exactly as large as the
bytes it has in the tar.

Tar holds much besides plain files: links, devices, sparse files whose few stored bytes stand
for gigabytes of holes, and pax records that set a member's size. `tarfile` acts on those as it
meets them, before a caller could look; `PlainMember` is the header class a bundle is read
with, so that each header is judged before its data is read.
"""

from __future__ import annotations

import tarfile
from typing import IO, cast


class Refused(tarfile.TarError):
    """A member that is not a plain file, or a header that would make one larger than it is."""


# A bundle is plain files (and, from tools that add them, folders): what such a member's header
# says is exactly what lies in the tar, byte for byte.
FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE)
PLAIN_TYPES = (*FILE_TYPES, tarfile.DIRTYPE)
PAX_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE)
MAX_PAX_BYTES = 64 * 1024
REFUSED_PAX_KEYS = ("size", "GNU.sparse")
NOT_PLAIN = {
    tarfile.LNKTYPE: "a hard link",
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.CHRTYPE: "a device",
    tarfile.BLKTYPE: "a device",
    tarfile.FIFOTYPE: "a pipe",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
    tarfile.GNUTYPE_LONGNAME: "a GNU long name",
    tarfile.GNUTYPE_LONGLINK: "a GNU long link",
}


class PlainMember(tarfile.TarInfo):
    """A tar header that stops the reading at anything that is not a plain file of a bundle.

    `tarfile` reads a member's extensions (sparse maps, long names, pax records) as it meets
    them and would hold a hostile one in memory: each header is judged here, through the hook
    that `tarfile` offers its subclasses, before any of its data is read.
    """

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        if self.size < 0:
            # A negative size (possible in tar's base-256 numbers) sends `tarfile` back to
            # the same header, for ever.
            raise Refused(f"The bundle holds {self.name!r} with a negative size.")
        if self.type in PAX_TYPES:
            check_pax(cast(IO[bytes], archive.fileobj), self.size)
        elif self.type not in PLAIN_TYPES:
            kind = NOT_PLAIN.get(self.type, f"of tar type {self.type!r}")
            raise Refused(f"The bundle holds {self.name!r}, which is not a plain file: {kind}.")
        member: tarfile.TarInfo = super()._proc_member(archive)  # type: ignore[misc]
        return member


def check_pax(source: IO[bytes], size: int) -> None:
    """Refuse a pax header that is large, malformed, or changes a member's size or layout."""
    if size > MAX_PAX_BYTES:
        raise Refused("The bundle holds a pax header larger than any tar tool writes.")
    start = source.tell()
    data = source.read(size).rstrip(b"\0")
    source.seek(start)
    position = 0
    while position < len(data):
        space = data.find(b" ", position, position + 12)
        end = position + int(data[position:space]) if data[position:space].isdigit() else -1
        record = data[space + 1 : end]
        if space < 0 or end <= space or end > len(data) or not record.endswith(b"\n"):
            raise Refused("The bundle holds a malformed pax header.")
        key = record.split(b"=", 1)[0].decode("utf-8", "replace")
        if key.startswith(REFUSED_PAX_KEYS):
            raise Refused(
                f"The bundle holds a pax header with {key!r}, which would make a member "
                "larger than the bytes it holds: refused."
            )
        position = end
