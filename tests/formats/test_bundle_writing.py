"""Writing bundles: the length known before the stream, and a bundle file kept only once whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.formats import bundle, crypto

# Sizes around the tar block: empty, one byte, one short of a block, whole blocks, one over.
SIZES = (0, 1, bundle.BLOCK - 1, bundle.BLOCK, bundle.BLOCK + 1, 3 * bundle.BLOCK)


def entry(entry_id: str, files: int, recipient: str | None = None) -> bundle.Entry:
    return bundle.Entry(entry_id, "case1", "report", "2026-11-22", files, recipient)


@pytest.mark.parametrize("manifest_size", SIZES)
@pytest.mark.parametrize("blob_sizes", [(), (0,), SIZES, (bundle.COPY_BLOCK + 1, 7)])
def test_length_is_what_the_stream_yields(manifest_size: int, blob_sizes: tuple[int, ...]) -> None:
    entries = [entry("sub1", len(blob_sizes)), entry("sub2", 0, recipient="team")]
    members = [bundle.bytes_member(bundle.manifest_name("sub1"), b"m" * manifest_size)]
    members += [
        bundle.bytes_member(bundle.blob_name("sub1", i), b"b" * size)
        for i, size in enumerate(blob_sizes)
    ]
    members.append(bundle.bytes_member(bundle.manifest_name("sub2"), b"n" * 10))
    streamed = sum(len(block) for block in bundle.stream(entries, members))
    assert bundle.length(entries, members) == streamed
    assert streamed % bundle.BLOCK == 0


@pytest.mark.parametrize("count", [0, 1, 5])
def test_length_of_an_index_alone(count: int) -> None:
    entries = [entry(f"sub{i}", 0) for i in range(count)]
    assert bundle.length(entries, []) == sum(len(b) for b in bundle.stream(entries, []))


def test_members_of_reads_the_stored_folder_layout(tmp_path: Path) -> None:
    (tmp_path / bundle.STORED_MANIFEST).write_bytes(b"m" * 700)
    for i, size in enumerate((0, bundle.BLOCK)):
        (tmp_path / bundle.stored_blob(i)).write_bytes(b"b" * size)
    members = bundle.members_of(entry("sub1", 2), tmp_path)
    assert [(m.name, m.size) for m in members] == [
        ("sub1/manifest.sealed", 700),
        ("sub1/files/0.blob", 0),
        ("sub1/files/1.blob", bundle.BLOCK),
    ]
    assert (bundle.STORED_MANIFEST, bundle.stored_blob(12)) == ("manifest.sealed", "12.blob")


def test_new_ids_are_80_bits_of_base32_and_valid_entry_ids() -> None:
    ids = {bundle.new_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 16 and bundle.ID_PATTERN.match(i) for i in ids)
    assert bundle.ENTRY_ID_BYTES * 8 == 80


@pytest.mark.parametrize(("random_bytes", "length"), [(5, 8), (10, 16), (15, 24), (40, 64)])
def test_ids_of_every_allowed_length_are_valid_entry_ids(random_bytes: int, length: int) -> None:
    made = bundle.new_id(random_bytes)
    assert len(made) == length
    assert bundle.ID_PATTERN.match(made)


@pytest.mark.parametrize("random_bytes", [0, 4, 7, 45])
def test_an_id_length_that_is_not_whole_base32_blocks_is_refused(random_bytes: int) -> None:
    with pytest.raises(ValueError, match="base32 blocks"):
        bundle.new_id(random_bytes)


def test_write_file_checks_what_it_wrote(tmp_path: Path) -> None:
    e = bundle.Entry("s1", "c1", "report", "2026-11-22", 0)
    short = bundle.bytes_member(bundle.manifest_name("s1"), b"too short to be a sealed manifest")
    with pytest.raises(bundle.WriteError, match="does not read back"):
        bundle.write_file(tmp_path / "b.sealed", [e], [short])
    assert list(tmp_path.iterdir()) == []


def test_write_file_keeps_a_whole_bundle_and_overwrites_nothing(tmp_path: Path) -> None:
    e = bundle.Entry("s1", "c1", "report", "2026-11-22", 0)
    sealed = bytes(crypto.SEAL_OVERHEAD + 4096)
    members = [bundle.bytes_member(bundle.manifest_name("s1"), sealed)]
    out = tmp_path / "b.sealed"
    bundle.write_file(out, [e], members)
    assert out.stat().st_size == bundle.length([e], members)
    with bundle.Reader(out) as reader:
        assert reader.entries == [e]
        assert reader.read_manifest(e) == sealed
    with pytest.raises(bundle.WriteError, match="already exists; nothing was overwritten"):
        bundle.write_file(out, [e], members)
    with pytest.raises(bundle.WriteError, match="does not exist"):
        bundle.write_file(tmp_path / "missing" / "b.sealed", [e], members)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.sealed"]


def test_a_bundle_is_told_apart_by_its_first_block() -> None:
    first = b"".join(bundle.stream([entry("sub1", 0)], []))[: bundle.BLOCK]
    assert bundle.starts_bundle(first)
    other = bytearray(first)
    other[: len(bundle.INDEX_NAME)] = b"x" * len(bundle.INDEX_NAME)  # another name: checksum off
    assert not bundle.starts_bundle(bytes(other))
    assert not bundle.starts_bundle(b"%PDF-1.7\n" + bytes(bundle.BLOCK - 9))
    assert not bundle.starts_bundle(bytes(bundle.BLOCK))
