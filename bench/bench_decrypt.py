"""Offline decryption: `portal decrypt` throughput against raw AES-256-GCM, and its peak memory.

Each attachment (1 GiB and 4 GiB) is written as plaintext, sealed with `portal seal` and opened
with `portal decrypt`, both as subprocesses of the real command so that the peak resident memory
measured (from `wait4`) is that command's own. Throughput is given as a ratio to AES-256-GCM
through PyNaCl over the same blob's chunks in the same run. The key file uses Argon2id at its
minimum cost, so opening the key does not weigh on the figures. Files are deleted as soon as
they have served.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nacl.bindings as sodium
import nacl.pwhash

from portal.formats import bundle, crypto, envelope

GIB = 1024**3
MIB = 1024**2
SIZES = (1 * GIB, 4 * GIB)
PASSPHRASE = "benchmark passphrase, not secret"
THROUGHPUT_TARGET = 0.6
MEMORY_TARGET = 100 * 1000**2


@dataclass(frozen=True)
class Run:
    """One subprocess: wall time and peak resident memory."""

    seconds: float
    cpu_seconds: float
    peak_bytes: int


# The command runs as the child of a small launcher, not of this process: Linux carries a
# parent's peak memory into a child that it starts (the child begins as a copy of it), and this
# process holds a good deal while it times AES-GCM.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime)
"""
COMMAND = "import sys; from portal.cli import main; sys.exit(main())"


def run_command(args: list[str]) -> Run:
    """Run `portal ...` in a child process; return its time and its own peak memory."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", LAUNCHER, sys.executable, "-c", COMMAND, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    max_rss_kib, status, cpu = result.stdout.split()
    if int(status) != 0:
        raise RuntimeError(f"portal {args[0]} failed: {result.stderr}")
    return Run(seconds, float(cpu), int(max_rss_kib) * 1024)  # ru_maxrss is in KiB on Linux


def write_plaintext(path: Path, size: int) -> str:
    """Write `size` bytes of incompressible data; return its SHA-256."""
    block = os.urandom(4 * MIB)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read a few megabytes at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while data := handle.read(8 * MIB):
            digest.update(data)
    return digest.hexdigest()


def raw_aes_gcm(sealed: Path, secret_key: bytes) -> tuple[float, float]:
    """Wall and CPU seconds PyNaCl's AES-256-GCM takes to decrypt the bundle's blob in memory."""
    with bundle.Reader(sealed) as reader:
        [entry] = reader.entries
        item = envelope.open_manifest(reader.read_manifest(entry), secret_key).files[0]
        count = crypto.chunk_count(item.size)
        spent = cpu = 0.0
        index = 0
        with reader.open(bundle.blob_name(entry.id, 0)) as blob:
            while index < count:
                data = blob.read(1024 * crypto.SEALED_CHUNK_SIZE)
                step = crypto.SEALED_CHUNK_SIZE
                # Chunks and nonces are made outside the timed loop: only the cipher is timed.
                work = [
                    (data[o : o + step], crypto.chunk_nonce(i, i == count - 1))
                    for i, o in zip(range(index, count), range(0, len(data), step), strict=False)
                ]
                started, started_cpu = time.perf_counter(), time.thread_time()
                for chunk, nonce in work:
                    sodium.crypto_aead_aes256gcm_decrypt(chunk, None, nonce, item.key)
                spent += time.perf_counter() - started
                cpu += time.thread_time() - started_cpu
                index += len(work)
    return spent, cpu


def authenticate_only(sealed: Path, secret_key: bytes) -> float:
    """Seconds `decrypt_chunks` takes to read and authenticate the blob, writing nothing."""
    started = time.perf_counter()
    with bundle.Reader(sealed) as reader:
        [entry] = reader.entries
        item = envelope.open_manifest(reader.read_manifest(entry), secret_key).files[0]
        with reader.open(bundle.blob_name(entry.id, 0)) as blob:
            for _ in crypto.decrypt_chunks(blob, item.key, item.size):  # type: ignore[arg-type]
                pass
    return time.perf_counter() - started


def make_keys(folder: Path) -> bytes:
    """A key pair whose private key file costs Argon2id's minimum to open; returns the secret."""
    crypto.PASSPHRASE_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_MIN
    crypto.PASSPHRASE_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_MIN
    secret, public = crypto.generate_keypair()
    (folder / "team.key").write_text(crypto.private_key_file_text(secret, PASSPHRASE.encode()))
    (folder / "team.pub").write_text(crypto.format_public_key_file(public, datetime.now(UTC)))
    (folder / "passphrase").write_text(PASSPHRASE)
    return secret


def measure(folder: Path, secret: bytes, size: int, with_ratio: bool) -> None:
    """Seal and open one attachment of `size` bytes; print the figures."""
    label = f"{size // GIB} GiB"
    plain = folder / "attachment.bin"
    expected = write_plaintext(plain, size)
    sealed = folder / "case.sealed"
    seal = run_command([
        "seal", "--to", str(folder / "team.pub"), "--out", str(sealed),
        "--field", "description=benchmark", "--field", "consent_of=self",
        "--field", "consent_share_un=yes", "--field", "consent_raise=no",
        "--field", "consent_report=no", "--field", "consent_contact=no", str(plain),
    ])  # fmt: skip
    plain.unlink()
    out = folder / "out"
    decrypt = run_command([
        "decrypt", "--key", str(folder / "team.key"), "--passphrase-file",
        str(folder / "passphrase"), "--out", str(out), str(sealed),
    ])  # fmt: skip
    [opened] = list(out.glob("*/attachments/attachment.bin"))
    correct = sha256_of(opened) == expected
    shutil.rmtree(out)
    mb_s = size / decrypt.seconds / 1e6
    seal_mb_s = size / seal.seconds / 1e6
    print(f"   {label}: seal    {seal_mb_s:7.0f} MB/s, peak {seal.peak_bytes / 1e6:5.1f} MB")
    print(
        f"   {label}: decrypt {mb_s:7.0f} MB/s, peak {decrypt.peak_bytes / 1e6:5.1f} MB "
        f"(target < {MEMORY_TARGET / 1e6:.0f} MB: "
        f"{'met' if decrypt.peak_bytes < MEMORY_TARGET else 'NOT MET'}); output "
        f"{'identical to the input' if correct else 'DIFFERS FROM THE INPUT'}"
    )
    if with_ratio:
        raw_wall, raw_cpu = raw_aes_gcm(sealed, secret)
        raw = size / raw_wall / 1e6
        ratio = mb_s / raw
        print(f"   {label}: raw AES-256-GCM through PyNaCl on the same chunks {raw:7.0f} MB/s")
        print(
            f"   {label}: CPU time per GiB: decrypt {decrypt.cpu_seconds * GIB / size:.2f} s "
            f"(both threads), raw AES-256-GCM {raw_cpu * GIB / size:.2f} s; ratio "
            f"{raw_cpu / decrypt.cpu_seconds:.2f} (less sensitive to other load on the machine)"
        )
        read_only = size / authenticate_only(sealed, secret) / 1e6
        print(f"   {label}: reading + authenticating alone, no output {read_only:7.0f} MB/s")
        print(
            f"   {label}: decrypt / raw AES-256-GCM = {ratio:.2f} "
            f"(target >= {THROUGHPUT_TARGET}: {'met' if ratio >= THROUGHPUT_TARGET else 'NOT MET'})"
        )
    sealed.unlink()


def run() -> None:
    """Measure `portal decrypt` on 1 GiB and 4 GiB attachments."""
    print("   Argon2id of the bench key file at its minimum cost (opening the key takes ~ms).")
    print(f"   Load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.")
    print(
        "   Decrypt throughput counts start-up, reading the bundle, writing and syncing the file."
    )
    folder = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    try:
        secret = make_keys(folder)
        for size in SIZES:
            measure(folder, secret, size, with_ratio=size == SIZES[0])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    run()
