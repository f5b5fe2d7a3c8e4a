"""Bundle v1: the tar layout, its index, and a reader that trusts no name in it."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import BinaryIO, cast

import hostile_tar
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, event, given, settings

from portal.formats import bundle, crypto, envelope

SEALED_MANIFEST = bytes(crypto.SEAL_OVERHEAD + envelope.PADDING)
BLOB = bytes(crypto.SEALED_CHUNK_SIZE)


def member(name: str, data: bytes) -> bundle.Member:
    return bundle.Member(name, len(data), lambda: cast(BinaryIO, io.BytesIO(data)))


def entry(entry_id: str = "sub1", files: int = 1, **changes: object) -> bundle.Entry:
    values: dict[str, object] = {
        "id": entry_id, "case": "case1", "kind": "report", "received_day": "2026-11-22",
        "files": files,
    }  # fmt: skip
    values.update(changes)
    return bundle.Entry(**values)  # type: ignore[arg-type]


def members(e: bundle.Entry) -> list[bundle.Member]:
    result = [member(bundle.manifest_name(e.id), SEALED_MANIFEST)]
    result += [member(bundle.blob_name(e.id, i), BLOB) for i in range(e.files)]
    return result


def written(entries: list[bundle.Entry], extra: list[bundle.Member] | None = None) -> bytes:
    out = io.BytesIO()
    all_members = [m for e in entries for m in members(e)] + (extra or [])
    bundle.write(out, entries, all_members)
    return out.getvalue()


def raw_tar(files: dict[str, bytes], index: object | None = None) -> bytes:
    """A tar made with tarfile directly, to build what the writer never would."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        if index is not None:
            files = {bundle.INDEX_NAME: json.dumps(index).encode(), **files}
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def index(*entries: bundle.Entry) -> dict[str, object]:
    return json.loads(bundle.index_bytes(entries))  # type: ignore[no-any-return]


def test_round_trip() -> None:
    entries = [entry("sub1", 2), entry("sub2", 0, kind="follow-up"), entry("r1", 0, kind="reply",
               recipient="team")]  # fmt: skip
    data = written(entries)
    assert len(data) % bundle.BLOCK == 0
    with bundle.read_bytes(data) as reader:
        assert reader.entries == entries
        reader.check_structure()
        assert reader.read_manifest(entries[0]) == SEALED_MANIFEST
        with reader.open(bundle.blob_name("sub1", 1)) as handle:
            assert handle.read() == BLOB
        assert reader.size(bundle.blob_name("sub1", 0)) == len(BLOB)


def test_tar_headers_carry_no_time_and_private_mode() -> None:
    with tarfile.open(fileobj=io.BytesIO(written([entry()]))) as tar:
        for info in tar.getmembers():
            assert info.mtime == 0
            assert info.mode == 0o600
            assert info.isreg()


def test_index_is_the_first_member_and_readable_json() -> None:
    with tarfile.open(fileobj=io.BytesIO(written([entry()]))) as tar:
        first = tar.getmembers()[0]
        assert first.name == bundle.INDEX_NAME
        handle = tar.extractfile(first)
        assert handle is not None
        document = json.load(handle)
    assert document == {
        "format": "portal-bundle",
        "version": 1,
        "submissions": [
            {"id": "sub1", "case": "case1", "kind": "report", "received_day": "2026-11-22",
             "files": 1}
        ],
    }  # fmt: skip


def test_optional_entry_fields_round_trip() -> None:
    key = crypto.b64encode(bytes(32))
    e = entry(recipient="submitter", reply_public_key=key)
    assert bundle.parse_index(bundle.index_bytes([e])) == [e]


def test_stream_refuses_a_short_member() -> None:
    short = bundle.Member("sub1/manifest.sealed", 5000, lambda: cast(BinaryIO, io.BytesIO(b"x")))
    with pytest.raises(bundle.BundleError, match="shorter"):
        bundle.write(io.BytesIO(), [entry(files=0)], [short])


def test_members_of_a_folder(tmp_path: Path) -> None:
    (tmp_path / "manifest.sealed").write_bytes(SEALED_MANIFEST)
    (tmp_path / "0.blob").write_bytes(BLOB)
    e = entry()
    out = io.BytesIO()
    bundle.write(out, [e], bundle.members_of(e, tmp_path))
    with bundle.read_bytes(out.getvalue()) as reader:
        reader.check_structure()
        assert reader.entries == [e]
        for name, data in GOOD_FILES.items():
            with reader.open(name) as handle:
                assert handle.read() == data


def test_reader_opens_a_path(tmp_path: Path) -> None:
    path = tmp_path / "b.tar"
    path.write_bytes(written([entry()]))
    with bundle.Reader(path) as reader:
        assert [e.id for e in reader.entries] == ["sub1"]


GOOD_FILES = {"sub1/manifest.sealed": SEALED_MANIFEST, "sub1/files/0.blob": BLOB}

MALFORMED: list[tuple[str, bytes, str]] = [
    ("not a tar", b"this is not a tar file at all" * 40, "not a readable bundle"),
    ("empty", b"", "not a readable bundle"),
    ("no index", raw_tar(GOOD_FILES), "no portal-bundle.json"),
    ("path escape", raw_tar({**GOOD_FILES, "../etc/passwd": b"x"}, index(entry())), "unexpected"),
    ("absolute", raw_tar({**GOOD_FILES, "/etc/passwd": b"x"}, index(entry())), "unexpected"),
    ("unlisted", raw_tar({**GOOD_FILES, "sub2/manifest.sealed": b"x"}, index(entry())), "not list"),
    ("other format", raw_tar(GOOD_FILES, {"format": "zip", "version": 1}), "not a portal"),
    ("index not json", raw_tar({bundle.INDEX_NAME: b"{", **GOOD_FILES}), "UTF-8 JSON"),
    ("no list", raw_tar(GOOD_FILES, {"format": "portal-bundle", "version": 1}), "no submissions"),
    ("twice", raw_tar(GOOD_FILES, index(entry(), entry())), "twice"),
    ("bad id", raw_tar(GOOD_FILES, index(entry("../x"))), "malformed"),
    ("bad case", raw_tar(GOOD_FILES, index(entry(case=".."))), "case id"),
    ("bad kind", raw_tar(GOOD_FILES, index(entry(kind="note"))), "unknown kind"),
    ("bad day", raw_tar(GOOD_FILES, index(entry(received_day="22/11/2026"))), "day"),
    ("bad count", raw_tar(GOOD_FILES, index(entry(files=-1))), "file count"),
    ("bad recipient", raw_tar(GOOD_FILES, index(entry(recipient="x"))), "recipient"),
    ("bad reply key", raw_tar(GOOD_FILES, index(entry(reply_public_key="QUJD"))), "reply key"),
]


@pytest.mark.parametrize(("label", "data", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_reader_refuses(label: str, data: bytes, message: str) -> None:
    with pytest.raises(bundle.BundleError, match=message):
        bundle.read_bytes(data)


def test_directory_members_are_tolerated() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in ("sub1", "sub1/files"):
            directory = tarfile.TarInfo(name)
            directory.type = tarfile.DIRTYPE
            tar.addfile(directory)
        files = {bundle.INDEX_NAME: bundle.index_bytes([entry()]), **GOOD_FILES}
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with bundle.read_bytes(buffer.getvalue()) as reader:
        reader.check_structure()
        assert [e.id for e in reader.entries] == ["sub1"]
        for name, data in GOOD_FILES.items():
            assert reader.size(name) == len(data)
            with reader.open(name) as handle:
                assert handle.read() == data


def test_reader_refuses_a_symbolic_link() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        link = tarfile.TarInfo("sub1/files/0.blob")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(bundle.BundleError, match="not a plain file"):
        bundle.read_bytes(buffer.getvalue())


def test_reader_refuses_a_member_twice() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in [(bundle.INDEX_NAME, bundle.index_bytes([entry(files=0)]))] + [
            ("sub1/manifest.sealed", SEALED_MANIFEST)
        ] * 2:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(bundle.BundleError, match="twice"):
        bundle.read_bytes(buffer.getvalue())


def test_truncated_bundle_is_refused() -> None:
    data = written([entry()])
    with pytest.raises(bundle.BundleError):
        bundle.read_bytes(data[: len(data) // 2])


def test_missing_members_and_bad_lengths() -> None:
    e = entry()
    data = raw_tar({"sub1/manifest.sealed": b"short"}, index(e))
    with bundle.read_bytes(data) as reader:
        with pytest.raises(bundle.BundleError, match="lacks"):
            reader.size(bundle.blob_name("sub1", 0))
        with pytest.raises(envelope.EnvelopeError, match="sealed manifest"):
            reader.read_manifest(e)
        with pytest.raises(envelope.EnvelopeError):
            reader.check_structure()
    data = raw_tar({"sub1/manifest.sealed": SEALED_MANIFEST, "sub1/files/0.blob": b"x"}, index(e))
    with bundle.read_bytes(data) as reader, pytest.raises(envelope.EnvelopeError, match="chunks"):
        reader.check_structure()


def test_members_of_a_bundle_file_read_the_same_as_through_tarfile(tmp_path: Path) -> None:
    blob = bytes(range(256)) * 600
    e = entry()
    path = tmp_path / "b.tar"
    with path.open("wb") as out:
        bundle.write(out, [e], [member("sub1/manifest.sealed", SEALED_MANIFEST),
                                member("sub1/files/0.blob", blob)])  # fmt: skip
    with bundle.Reader(path) as reader, reader.open(bundle.blob_name("sub1", 0)) as handle:
        assert handle.read(10) == blob[:10]
        assert handle.read(0) == b""
        buffer = bytearray(1000)
        assert handle.readinto(buffer) == 1000  # type: ignore[attr-defined]
        assert bytes(buffer) == blob[10:1010]
        assert handle.read() == blob[1010:]
        assert handle.read(5) == b""
    with bundle.Reader(path) as reader, reader.open(bundle.manifest_name("sub1")) as handle:
        assert handle.read() == SEALED_MANIFEST


def test_a_member_cut_short_on_disk_raises_tarfiles_error(tmp_path: Path) -> None:
    path = tmp_path / "b.tar"
    path.write_bytes(written([entry()]))
    with bundle.Reader(path) as reader:
        # The file loses its end after the headers were read: as when a copy is still running.
        os.truncate(path, reader.size(bundle.INDEX_NAME) + 3 * bundle.BLOCK + 100)
        with reader.open(bundle.blob_name("sub1", 0)) as handle, pytest.raises(tarfile.ReadError):
            handle.read()


# ---------------------------------------------------------------------------------------------
# Hostile tars: what a header says must be what the file holds

# A stored size about a gigabyte and a quarter, as a 512-byte member could claim it.
HUGE = 19_000 * crypto.SEALED_CHUNK_SIZE
HEAD = hostile_tar.regular(bundle.INDEX_NAME, bundle.index_bytes([entry()])) + hostile_tar.regular(
    "sub1/manifest.sealed", SEALED_MANIFEST
)
BLOB_NAME = "sub1/files/0.blob"


def _negative_size() -> bytes:
    block = bytearray(hostile_tar.header(BLOB_NAME, 0))
    block[124:136] = b"\xff" + ((-512) & ((1 << 88) - 1)).to_bytes(11, "big")  # base-256
    return hostile_tar.checksummed(block)


HOSTILE: list[tuple[str, bytes, str]] = [
    ("gnu sparse", hostile_tar.gnu_sparse(BLOB_NAME, BLOB[:512], HUGE), "a sparse file"),
    ("pax sparse", hostile_tar.pax_sparse(BLOB_NAME, BLOB[:512], HUGE), "'GNU.sparse"),
    ("pax size", hostile_tar.pax({"size": str(HUGE)}) + hostile_tar.regular(BLOB_NAME, BLOB),
     "'size'"),
    ("global pax size", hostile_tar.pax({"size": "1"}, tarfile.XGLTYPE)
     + hostile_tar.regular(BLOB_NAME, BLOB), "'size'"),
    ("large pax", hostile_tar.pax({"comment": "x" * 70_000}) + hostile_tar.regular(BLOB_NAME, BLOB),
     "pax header larger"),
    ("malformed pax", hostile_tar.header("././@PaxHeader", 9, tarfile.XHDTYPE)
     + b"99 a=b\n\n".ljust(512, b"\0"), "malformed pax"),
    ("gnu long name", hostile_tar.gnu_long_name(BLOB_NAME, BLOB), "GNU long name"),
    ("hard link", hostile_tar.header(BLOB_NAME, 0, tarfile.LNKTYPE, "sub1/manifest.sealed"),
     "a hard link"),
    ("device", hostile_tar.header(BLOB_NAME, 0, tarfile.CHRTYPE), "a device"),
    ("pipe", hostile_tar.header(BLOB_NAME, 0, tarfile.FIFOTYPE), "a pipe"),
    ("contiguous", hostile_tar.header(BLOB_NAME, len(BLOB), tarfile.CONTTYPE) + BLOB,
     "a contiguous file"),
    ("unknown type", hostile_tar.header(BLOB_NAME, len(BLOB), b"Z") + BLOB, "tar type"),
    ("negative size", _negative_size(), "negative size"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "member", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_reader_refuses_every_member_but_plain_files(
    label: str, member: bytes, message: str, tmp_path: Path
) -> None:
    data = hostile_tar.tar_of(HEAD, member)
    path = tmp_path / "b.tar"
    path.write_bytes(data)
    for source in (lambda: bundle.read_bytes(data), lambda: bundle.Reader(path)):
        with pytest.raises(bundle.BundleError, match=message):
            source()


def test_pax_records_that_change_no_size_are_read_as_tar_tools_write_them() -> None:
    # tarfile's default format writes a pax header for a fractional time or a long name.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.pax_headers = {"comment": "a global record"}
        files = {bundle.INDEX_NAME: bundle.index_bytes([entry()]), **GOOD_FILES}
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.uname = len(data), 1.5, "relaying organisation"
            tar.addfile(info, io.BytesIO(data))
    with bundle.read_bytes(buffer.getvalue()) as reader:
        reader.check_structure()
        assert [e.id for e in reader.entries] == ["sub1"]
        for name, data in GOOD_FILES.items():
            assert reader.size(name) == len(data)
            with reader.open(name) as handle:
                assert handle.read() == data
        assert reader.size(BLOB_NAME) == len(BLOB)


@pytest.mark.parametrize(
    "document",
    [b"[" * 200_000 + b"]" * 200_000, b'{"format": ' + b"[" * 200_000, b"{" * 100_000],
    ids=["balanced", "unclosed", "objects"],
)
def test_an_index_nested_too_deep_gets_the_bundles_own_error(document: bytes) -> None:
    data = raw_tar({bundle.INDEX_NAME: document, **GOOD_FILES})
    with pytest.raises(bundle.BundleError, match="nests deeper than 32 levels"):
        bundle.read_bytes(data)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    e = entry()
    document = index(e)
    document["note"] = "[" * 100_000 + '\\"{' * 1000
    with bundle.read_bytes(raw_tar(GOOD_FILES, document)) as reader:
        assert reader.entries == [e]


# ---------------------------------------------------------------------------------------------
# Any bytes at all: the format's own error, or members exactly within the bytes given

# Small members, so that a good share of the blocks are headers worth mutating.
SMALL = {"sub1/manifest.sealed": b"m" * 600, "sub1/files/0.blob": b"b" * 700,
         "sub1/files/1.blob": b"", "sub2/manifest.sealed": b"n" * 10}  # fmt: skip
SMALL_INDEX = bundle.index_bytes([entry("sub1", 2), entry("sub2", 0, kind="follow-up")])
FORMS: dict[str, Callable[[str, bytes], bytes]] = {
    "plain": hostile_tar.regular,
    "gnu sparse": lambda name, data: hostile_tar.gnu_sparse(name, data[:512], HUGE),
    "pax sparse": lambda name, data: hostile_tar.pax_sparse(name, data[:512], HUGE),
    "pax size": lambda name, data: (
        hostile_tar.pax({"size": str(HUGE)}) + hostile_tar.regular(name, data)
    ),
    "pax harmless": lambda name, data: (
        hostile_tar.pax({"mtime": "1.5", "comment": "x"}) + hostile_tar.regular(name, data)
    ),
    "folder first": lambda name, data: (
        hostile_tar.header(name.split("/")[0], 0, tarfile.DIRTYPE) + hostile_tar.regular(name, data)
    ),
    "long name": hostile_tar.gnu_long_name,
    "hard link": lambda name, data: hostile_tar.header(name, 0, tarfile.LNKTYPE, "x"),
}
FIELDS = {"name": (0, 100), "mode": (100, 8), "size": (124, 12), "type": (156, 1),
          "linkname": (157, 100), "magic": (257, 8), "extension": (345, 167)}  # fmt: skip
TYPES = [bytes([t]) for t in b"01234567xgLKSVMXZ\0"]
field_values = st.one_of(
    st.binary(min_size=1, max_size=100),
    st.integers(0, 8**11 - 1).map(lambda n: b"%011o\0" % n),
    st.integers(-(2**87), 2**87).map(lambda n: b"\xff" + (n % 2**88).to_bytes(11, "big")),
    st.sampled_from(TYPES),
)
# Mostly plain members, so that one odd member among good ones is the common case.
forms = st.sampled_from(["plain"] * 8 + list(FORMS))
tars = st.lists(forms, min_size=5, max_size=5).flatmap(
    lambda forms: st.permutations(
        [FORMS[forms[0]](bundle.INDEX_NAME, SMALL_INDEX)]
        + [
            FORMS[form](name, data)
            for form, (name, data) in zip(forms[1:], SMALL.items(), strict=True)
        ]
    ).map(lambda members: hostile_tar.tar_of(*members))
)
mutation = st.one_of(
    st.tuples(st.just("header"), st.integers(0, 40), st.sampled_from(list(FIELDS)), field_values),
    st.tuples(st.just("cut"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
)
BYTES = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _mutated(data: bytes, steps: list[tuple[object, ...]]) -> bytes:
    mutable = bytearray(data)
    for step in steps:
        blocks = len(mutable) // bundle.BLOCK
        if step[0] == "header" and blocks:
            offset = cast(int, step[1]) % blocks * bundle.BLOCK
            start, width = FIELDS[str(step[2])]
            field = cast(bytes, step[3])[:width].ljust(width, b"\0")
            mutable[offset + start : offset + start + width] = field
            # A header whose checksum is wrong ends the tar; one that adds up is read.
            block = bytearray(mutable[offset : offset + bundle.BLOCK])
            mutable[offset : offset + bundle.BLOCK] = hostile_tar.checksummed(block)
        elif step[0] == "cut":
            del mutable[int(cast(float, step[1]) * len(mutable)) :]
        elif step[0] == "flip" and mutable:
            at = min(int(cast(float, step[1]) * len(mutable)), len(mutable) - 1)
            mutable[at] ^= cast(int, step[2])
    return bytes(mutable)


def _read_everything(reader: bundle.Reader, length: int) -> None:
    """Read every listed member; what is accepted must lie within the bytes given."""
    names = [bundle.INDEX_NAME]
    for e in reader.entries:
        names.append(bundle.manifest_name(e.id))
        names.extend(bundle.blob_name(e.id, i) for i in range(e.files))
    sizes = {}
    for name in names:
        try:
            sizes[name] = reader.size(name)
        except bundle.BundleError:
            continue  # listed but missing: the format's own error, when asked
        with reader.open(name) as handle:
            assert len(handle.read()) == sizes[name]
    assert sum(sizes.values()) <= length
    for e in reader.entries:
        try:
            reader.read_manifest(e)
            reader.check_structure()
        except envelope.EnvelopeError:
            pass


def _only_the_formats_errors(data: bytes, on_disk: bool) -> None:
    try:
        if on_disk:
            with TemporaryDirectory() as folder:
                path = Path(folder) / "b.tar"
                path.write_bytes(data)
                with bundle.Reader(path) as reader:
                    _read_everything(reader, len(data))
        else:
            with bundle.read_bytes(data) as reader:
                _read_everything(reader, len(data))
        event("read")
    except envelope.EnvelopeError:
        # The format's own error (BundleError is one): anything else fails the test.
        event("refused")


@BYTES
@given(tar=tars, steps=st.lists(mutation, max_size=3), on_disk=st.booleans())
def test_a_mutated_bundle_is_refused_or_read_within_its_bytes(
    tar: bytes, steps: list[tuple[object, ...]], on_disk: bool
) -> None:
    _only_the_formats_errors(_mutated(tar, steps), on_disk)


@BYTES
@given(
    data=st.one_of(
        st.binary(max_size=4 * bundle.BLOCK),
        st.binary(max_size=3 * bundle.BLOCK).map(lambda tail: written([entry()])[:512] + tail),
    ),
    on_disk=st.booleans(),
)
def test_any_bytes_are_refused_or_read_within_their_bytes(data: bytes, on_disk: bool) -> None:
    _only_the_formats_errors(data, on_disk)
