"""The cryptographic primitives of the portal and the team's key files.

Everything here comes from libsodium through PyNaCl: X25519 key pairs, sealed boxes
(`crypto_box_seal`), BLAKE2b for fingerprints, Argon2id with secretbox for the private key
file, and AES-256-GCM for file blobs. This module imports nothing of the web stack, so the
offline machine needs only PyNaCl to run it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import BinaryIO

import nacl.bindings as sodium
import nacl.exceptions
import nacl.public
import nacl.pwhash
import nacl.secret
import nacl.utils

KEY_BYTES = 32
SEAL_OVERHEAD = sodium.crypto_box_SEALBYTES
CHUNK_SIZE = 65536
TAG_BYTES = sodium.crypto_aead_aes256gcm_ABYTES
SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_BYTES
FINGERPRINT_BYTES = 20

PRIVATE_KEY_FORMAT = "portal-team-private-key"
# libsodium's SENSITIVE limits: about a gigabyte and several seconds per attempt, which is
# what a key that opens every submission deserves. Tests lower these with monkeypatch.
PASSPHRASE_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE
PASSPHRASE_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE


class CryptoError(Exception):
    """Something could not be opened, verified or parsed; the message is for people."""


class KeyFileError(CryptoError):
    """A key file is missing, malformed or of the wrong kind."""


class WrongPassphrase(CryptoError):
    """The passphrase does not open the private key file."""


class WrongKey(CryptoError):
    """Sealed data was not sealed to this key, or was altered."""


class TamperedBlob(CryptoError):
    """A file blob failed authentication, or is truncated or extended."""


def generate_keypair() -> tuple[bytes, bytes]:
    """Make a new X25519 key pair from the operating system's random source: (secret, public)."""
    secret = nacl.public.PrivateKey.generate()
    return bytes(secret), bytes(secret.public_key)


def public_from_secret(secret_key: bytes) -> bytes:
    """Return the X25519 public key of a secret key."""
    return bytes(nacl.public.PrivateKey(secret_key).public_key)


def fingerprint(public_key: bytes) -> str:
    """Return the fingerprint of a public key: BLAKE2b-160, uppercase hex in ten groups of four."""
    if len(public_key) != KEY_BYTES:
        raise KeyFileError("A public key is 32 bytes long.")
    digest = hashlib.blake2b(public_key, digest_size=FINGERPRINT_BYTES).hexdigest().upper()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def b64encode(data: bytes) -> str:
    """Standard, padded base64 as text."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, length: int | None = None) -> bytes:
    """Strict standard base64; optionally require an exact decoded length."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise CryptoError("This is not valid base64.") from exc
    if length is not None and len(data) != length:
        raise CryptoError(f"Expected {length} bytes, found {len(data)}.")
    return data


# ---------------------------------------------------------------------------------------------
# Public key file


def format_public_key_file(public_key: bytes, created: date) -> str:
    """Render the public key file: comments with the fingerprint and date, then the key."""
    return (
        "# Reprisals portal team public key (X25519). Safe to publish.\n"
        f"# Fingerprint: {fingerprint(public_key)}\n"
        f"# Created: {created.isoformat()}\n"
        "# Compare the fingerprint with one received through an independent channel.\n"
        f"{b64encode(public_key)}\n"
    )


def parse_public_key_file(text: str) -> bytes:
    """Parse public key file text: `#` lines are comments; the first other line is the key."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            return b64decode(stripped, KEY_BYTES)
        except CryptoError as exc:
            raise KeyFileError(
                "The public key file's key line is not the base64 of a 32-byte key."
            ) from exc
    raise KeyFileError("The public key file holds no key line.")


def load_public_key(path: Path) -> bytes:
    """Read a public key file; a private key file is refused so it is never mistaken for one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise KeyFileError(f"No public key file at {path}.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"The public key file {path} cannot be read: {exc}.") from exc
    if PRIVATE_KEY_FORMAT in text:
        raise KeyFileError(f"{path} is a private key file; give the public key file instead.")
    return parse_public_key_file(text)


# ---------------------------------------------------------------------------------------------
# Private key file: Argon2id over the passphrase, then secretbox; salt and limits beside it.


def _passphrase_key(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=opslimit, memlimit=memlimit
    )


def private_key_file_text(secret_key: bytes, passphrase: bytes) -> str:
    """Render a passphrase-protected private key file as JSON text."""
    if not passphrase:
        raise CryptoError("The passphrase must not be empty.")
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    opslimit, memlimit = PASSPHRASE_OPSLIMIT, PASSPHRASE_MEMLIMIT
    box = nacl.secret.SecretBox(_passphrase_key(passphrase, salt, opslimit, memlimit))
    sealed = box.encrypt(secret_key)
    public_key = public_from_secret(secret_key)
    document = {
        "format": PRIVATE_KEY_FORMAT,
        "version": 1,
        "comment": "Keep on the offline machine only. Never copy to the server.",
        "fingerprint": fingerprint(public_key),
        "public_key": b64encode(public_key),
        "kdf": {
            "algorithm": "argon2id13",
            "opslimit": opslimit,
            "memlimit": memlimit,
            "salt": b64encode(salt),
        },
        "secretbox": b64encode(bytes(sealed)),
    }
    return json.dumps(document, indent=2) + "\n"


def write_new_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Create a file that must not exist yet, with the given mode, and make it durable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb", closefd=False) as out:
            out.write(data)
            out.flush()
            os.fsync(fd)
    except BaseException:
        # A half-written key file would block the next attempt and look like a real one.
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.chmod(path, mode)


def _read_private_document(path: Path) -> dict[str, object]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KeyFileError(f"No private key file at {path}.") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise KeyFileError(f"{path} is not a private key file.") from exc
    if not isinstance(document, dict) or document.get("format") != PRIVATE_KEY_FORMAT:
        raise KeyFileError(f"{path} is not a private key file.")
    if document.get("version") != 1:
        raise KeyFileError(f"{path} is a private key file of an unknown version.")
    return document


def private_key_file_public(path: Path) -> bytes:
    """Return the public key recorded in a private key file, without the passphrase."""
    document = _read_private_document(path)
    try:
        return b64decode(str(document["public_key"]), KEY_BYTES)
    except (KeyError, CryptoError) as exc:
        raise KeyFileError(f"{path} is a damaged private key file.") from exc


def read_private_key_file(path: Path, passphrase: bytes) -> bytes:
    """Open a private key file with its passphrase and return the 32-byte secret key."""
    document = _read_private_document(path)
    try:
        kdf = document["kdf"]
        if not isinstance(kdf, dict):
            raise TypeError("kdf is not an object")
        salt = b64decode(str(kdf["salt"]), nacl.pwhash.argon2id.SALTBYTES)
        opslimit, memlimit = int(kdf["opslimit"]), int(kdf["memlimit"])
        sealed = b64decode(str(document["secretbox"]))
        public_key = b64decode(str(document["public_key"]), KEY_BYTES)
        # libsodium refuses limits outside its range; a damaged file must say so, not crash.
        key = _passphrase_key(passphrase, salt, opslimit, memlimit)
    except nacl.exceptions.RuntimeError as exc:
        raise CryptoError(
            f"Opening the private key needs about {memlimit // 2**20} MiB of free memory; "
            "close other programs and try again."
        ) from exc
    except (KeyError, CryptoError, TypeError, ValueError, nacl.exceptions.CryptoError) as exc:
        raise KeyFileError(f"{path} is a damaged private key file.") from exc
    box = nacl.secret.SecretBox(key)
    try:
        secret_key = box.decrypt(sealed)
    except nacl.exceptions.CryptoError as exc:
        raise WrongPassphrase("The passphrase does not open this private key file.") from exc
    if len(secret_key) != KEY_BYTES or public_from_secret(secret_key) != public_key:
        raise KeyFileError(f"{path} is a damaged private key file.")
    return secret_key


# ---------------------------------------------------------------------------------------------
# Sealed boxes


def seal(plaintext: bytes, public_key: bytes) -> bytes:
    """Seal bytes to a public key with crypto_box_seal (anonymous sender)."""
    return sodium.crypto_box_seal(plaintext, public_key)


def open_sealed(sealed: bytes, secret_key: bytes) -> bytes:
    """Open a sealed box; WrongKey when it was sealed to another key or was altered."""
    if len(sealed) < SEAL_OVERHEAD:
        raise WrongKey("The sealed data is too short to be a sealed box.")
    try:
        return sodium.crypto_box_seal_open(sealed, public_from_secret(secret_key), secret_key)
    except nacl.exceptions.CryptoError as exc:
        raise WrongKey(
            "The sealed data does not open with this key: another key, or altered."
        ) from exc


# ---------------------------------------------------------------------------------------------
# File blobs: 64 KiB chunks, AES-256-GCM, nonce = 11-byte big-endian index || last flag.


def new_file_key() -> bytes:
    """A fresh 32-byte AES-256-GCM key for one file, from the OS random source."""
    return secrets.token_bytes(KEY_BYTES)


def chunk_nonce(index: int, last: bool) -> bytes:
    """The 12-byte nonce of chunk `index`."""
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def chunk_count(size: int) -> int:
    """How many chunks a file of `size` bytes takes (at least one)."""
    if size < 0:
        raise ValueError("size must not be negative")
    return max(1, -(-size // CHUNK_SIZE))


def blob_length(size: int) -> int:
    """The length of the blob of a file of `size` bytes."""
    return chunk_count(size) * SEALED_CHUNK_SIZE


def encrypt_chunk(chunk: bytes, key: bytes, index: int, last: bool) -> bytes:
    """Encrypt one whole 64 KiB chunk."""
    return sodium.crypto_aead_aes256gcm_encrypt(chunk, None, chunk_nonce(index, last), key)


class BlobWriter:
    """Encrypts a file into a blob as its bytes arrive; holds at most two chunks in memory.

    A chunk is written only once a later byte proves it is not the last one; `close()`
    pads and writes the last chunk and returns the file's true size.
    """

    def __init__(self, out: BinaryIO, key: bytes) -> None:
        """Write the blob to `out`, encrypting under `key`."""
        if len(key) != KEY_BYTES:
            raise ValueError("a file key is 32 bytes")
        self._out = out
        self._key = key
        self._buffer = bytearray()
        self._index = 0
        self.size = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Take more of the file."""
        if self.closed:
            raise ValueError("write to a closed blob")
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) > CHUNK_SIZE:
            self._emit(bytes(self._buffer[:CHUNK_SIZE]), last=False)
            del self._buffer[:CHUNK_SIZE]
        return len(data)

    def _emit(self, chunk: bytes, last: bool) -> None:
        self._out.write(encrypt_chunk(chunk, self._key, self._index, last))
        self._index += 1

    def close(self) -> int:
        """Write the last chunk, zero-padded; return the file's size."""
        if not self.closed:
            self._emit(bytes(self._buffer).ljust(CHUNK_SIZE, b"\0"), last=True)
            self._buffer = bytearray()
            self.closed = True
        return self.size


def encrypt_stream(source: BinaryIO, out: BinaryIO, key: bytes) -> int:
    """Encrypt everything readable from `source` into a blob on `out`; return the size."""
    writer = BlobWriter(out, key)
    while data := source.read(CHUNK_SIZE * 16):
        writer.write(data)
    return writer.close()


def decrypt_chunks(source: BinaryIO, key: bytes, size: int) -> Iterator[bytes]:
    """Yield the plaintext of a blob, chunk by chunk, cut to `size`; TamperedBlob on any fault.

    Every chunk is authenticated before it is yielded, and the blob must hold exactly the
    number of chunks `size` calls for, the last one flagged as last, so truncation,
    extension and reordering are all detected.
    """
    count = chunk_count(size)
    remaining = size
    for index in range(count):
        sealed = _read_exactly(source, SEALED_CHUNK_SIZE)
        if len(sealed) != SEALED_CHUNK_SIZE:
            raise TamperedBlob(
                f"the file is truncated: chunk {index + 1} of {count} is missing or short"
            )
        last = index == count - 1
        try:
            chunk = sodium.crypto_aead_aes256gcm_decrypt(
                sealed, None, chunk_nonce(index, last), key
            )
        except nacl.exceptions.CryptoError as exc:
            raise TamperedBlob(f"chunk {index + 1} of {count} fails authentication") from exc
        take = min(remaining, CHUNK_SIZE)
        remaining -= take
        yield chunk[:take]
    if source.read(1):
        raise TamperedBlob("the file has data beyond its last chunk")


def _read_exactly(source: BinaryIO, n: int) -> bytes:
    parts = []
    while n > 0:
        data = source.read(n)
        if not data:
            break
        parts.append(data)
        n -= len(data)
    return b"".join(parts)
