"""Tar members that no portal writer makes and that `tarfile` cannot write: GNU sparse members,
pax extended headers, GNU long names, links and devices, built block by block.

Each function returns whole 512-byte blocks (header and data), ready to be joined into a tar
with `tar_of`.
"""

from __future__ import annotations

import io
import tarfile

BLOCK = tarfile.BLOCKSIZE


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def checksummed(header: bytearray) -> bytes:
    """A header block with its checksum made right again after a change."""
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header)
    return bytes(header)


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


def header(name: str, size: int, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> bytes:
    """A GNU-format header of any type, as the portal's reader would meet it."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.type = kind
    info.linkname = linkname
    return info.tobuf(format=tarfile.GNU_FORMAT)


def regular(name: str, data: bytes) -> bytes:
    """A plain member, as the portal writes them."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    return info.tobuf(format=tarfile.USTAR_FORMAT) + _padded(data)


def gnu_sparse(name: str, data: bytes, real_size: int) -> bytes:
    """An old-style GNU sparse member ('S'): `data` is the start, the rest up to `real_size` a
    hole that a reader fills with zeros."""
    block = bytearray(header(name, len(data), tarfile.GNUTYPE_SPARSE))
    block[386:398] = _octal(0, 12)  # the one stored region: at offset 0 ...
    block[398:410] = _octal(len(data), 12)  # ... of len(data) bytes
    block[482] = 0  # no extension blocks with more regions
    block[483:495] = _octal(real_size, 12)
    return checksummed(block) + _padded(data)


def pax_record(key: str, value: str) -> bytes:
    """One `length key=value` record of a pax extended header."""
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def pax(records: dict[str, str], kind: bytes = tarfile.XHDTYPE) -> bytes:
    """A pax extended header ('x', or 'g' for a global one) with its records."""
    data = b"".join(pax_record(key, value) for key, value in records.items())
    return header("././@PaxHeader", len(data), kind) + _padded(data)


def pax_sparse(name: str, data: bytes, real_size: int) -> bytes:
    """A pax sparse member of format 0.1: a small stored region, `real_size` once expanded."""
    records = {
        "GNU.sparse.size": str(real_size),
        "GNU.sparse.numblocks": "1",
        "GNU.sparse.map": f"0,{len(data)}",
        "GNU.sparse.name": name,
    }
    return pax(records) + regular(name, data)


def gnu_long_name(name: str, data: bytes) -> bytes:
    """A member whose name is carried by a GNU long-name header ('L')."""
    encoded = name.encode() + b"\0"
    return (
        header("././@LongLink", len(encoded), tarfile.GNUTYPE_LONGNAME)
        + _padded(encoded)
        + regular(name[:99], data)
    )


def tar_of(*members: bytes) -> bytes:
    """Members joined into a tar, with its end-of-archive blocks."""
    return b"".join(members) + b"\0" * (2 * BLOCK)


def members_of(data: bytes) -> dict[str, bytes]:
    """The plain members of a tar the portal wrote, by name, in order."""
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            assert handle is not None
            found[info.name] = handle.read()
    return found
