# ruff: noqa: E501 - known-answer vectors are long hex strings, one per line.
"""Write the known-answer vector files of this folder from fixed keys.

Run `python tests/vectors/generate.py` to regenerate them; the files are committed, and the
Python and JavaScript tests both check their code against them. Only PyNaCl calls written
from the format's description are used here, never the project's own helpers, so the
vectors test the code rather than agree with it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import nacl.bindings as sodium
import nacl.pwhash

HERE = Path(__file__).resolve().parent
CHUNK = 65536


# Fixed keys: the secret keys are hashes of labels, so anyone can rebuild them.
def fixed(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def pattern(size: int) -> bytes:
    return bytes((i * 7 + 3) % 256 for i in range(size))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def seal_fixed(message: bytes, recipient_pk: bytes, ephemeral_sk: bytes) -> bytes:
    ephemeral_pk = sodium.crypto_scalarmult_base(ephemeral_sk)
    nonce = hashlib.blake2b(ephemeral_pk + recipient_pk, digest_size=24).digest()
    return ephemeral_pk + sodium.crypto_box(message, nonce, recipient_pk, ephemeral_sk)


def blob(data: bytes, key: bytes) -> tuple[bytes, list[str]]:
    count = max(1, -(-len(data) // CHUNK))
    padded = data.ljust(count * CHUNK, b"\0")
    out, tags = b"", []
    for i in range(count):
        nonce = i.to_bytes(11, "big") + (b"\x01" if i == count - 1 else b"\x00")
        sealed = sodium.crypto_aead_aes256gcm_encrypt(
            padded[i * CHUNK : (i + 1) * CHUNK], None, nonce, key
        )
        out += sealed
        tags.append(sealed[-16:].hex())
    return out, tags


def manifest_json(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def pad(text: bytes) -> bytes:
    return text + b" " * (-len(text) % 4096)


def write(name: str, document: dict) -> None:
    (HERE / name).write_text(
        json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def main() -> None:
    # PyNaCl's published sealed-box vector (tests/data/sealed_box_ref.txt in pyca/pynacl).
    write(
        "sealed_box.json",
        {
            "source": "PyNaCl tests/data/sealed_box_ref.txt",
            "vectors": [
                {
                    "recipient_secret_key": "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
                    "recipient_public_key": "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
                    "plaintext": "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705",
                    "ciphertext": "199c808806a62c1be56951023ad3396b0ce0ef2c5b9ca688ac96d2d06ca43f65d314400cc9bbefb23dd26f824c9cb553f81e8c894ea9a553f4d777c77b66d5a6925da3f5961c5f7147172db5597ac14210066ee3ee13e6230a9a9610e9cddbf24094f54fbbf6694c08a436cec39ff5a373656d9584f4df9dd8c817e2e597540628d0ee21a6524a3fcf3eabdc0968390bd260a47366ead7f71cc2e774d411d96f3497c7e10291937bc16dc46a111686b85a8c86",
                }
            ],
        },
    )

    keys = [sodium.crypto_scalarmult_base(fixed(f"fingerprint {i}")) for i in range(3)]
    keys.append(bytes(32))
    write(
        "fingerprint.json",
        {
            "vectors": [
                {
                    "public_key_b64": b64(pk),
                    "fingerprint": " ".join(
                        hashlib.blake2b(pk, digest_size=20).hexdigest().upper()[i : i + 4]
                        for i in range(0, 40, 4)
                    ),
                }
                for pk in keys
            ]
        },
    )

    team_sk = fixed("team secret key")
    team_pk = sodium.crypto_scalarmult_base(team_sk)
    write(
        "public_key_file.json",
        {
            "vectors": [
                {
                    "text": f"# Reprisals portal team public key\n# Fingerprint: x\n\n{b64(team_pk)}\n",
                    "public_key_b64": b64(team_pk),
                },
                {"text": f"{b64(team_pk)}\r\n", "public_key_b64": b64(team_pk)},
                {
                    "text": f"  # indented comment\n\n   {b64(team_pk)}   \n# trailing\nnot a key\n",
                    "public_key_b64": b64(team_pk),
                },
            ]
        },
    )

    ephemeral_sk = fixed("ephemeral secret key")
    manifests = [
        {
            "format": "portal-envelope",
            "version": 1,
            "kind": "report",
            "sealed_by": "browser",
            "locale": "en",
            "fields": {"description": "A short report."},
            "files": [],
        },
        {
            "format": "portal-envelope",
            "version": 1,
            "kind": "follow-up",
            "sealed_by": "server",
            "locale": "ar",
            "fields": {"description": "تم حظر سفري", "violations": ["travel_ban", "surveillance"]},
            "files": [
                {
                    "name": "صورة.jpg",
                    "type": "image/jpeg",
                    "size": 12,
                    "key": b64(fixed("file key a")),
                }
            ],
            "reply_public_key": b64(sodium.crypto_scalarmult_base(fixed("reply key"))),
        },
    ]
    # One manifest exactly 4096 bytes long before padding stays at 4096 bytes.
    exact = {
        "format": "portal-envelope",
        "version": 1,
        "kind": "report",
        "sealed_by": "relay-tool",
        "locale": "zh",
        "fields": {"description": ""},
        "files": [],
    }
    exact["fields"]["description"] = "x" * (4096 - len(manifest_json(exact)))
    manifests.append(exact)
    longer = dict(exact, fields={"description": "y" * 5000})
    manifests.append(longer)
    vectors = []
    for document in manifests:
        text = manifest_json(document)
        padded = pad(text)
        vectors.append(
            {
                "manifest": document,
                "json_text": text.decode(),
                "padded_length": len(padded),
                "recipient_secret_key": team_sk.hex(),
                "recipient_public_key": team_pk.hex(),
                "ephemeral_secret_key": ephemeral_sk.hex(),
                "sealed": seal_fixed(padded, team_pk, ephemeral_sk).hex(),
            }
        )
    write("manifest.json", {"vectors": vectors})

    file_key = fixed("file key")
    blob_vectors = []
    for size in (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 100):
        data, tags = blob(pattern(size), file_key)
        vector = {
            "size": size,
            "key": file_key.hex(),
            "blob_length": len(data),
            "blob_sha256": hashlib.sha256(data).hexdigest(),
            "chunk_tags": tags,
        }
        if size <= CHUNK:
            vector["blob"] = data.hex()
        blob_vectors.append(vector)
    write(
        "blob.json",
        {"chunk_size": CHUNK, "pattern": "byte i = (i * 7 + 3) % 256", "vectors": blob_vectors},
    )

    sizes = (5, CHUNK + 7)
    file_keys = [fixed(f"envelope file {i}") for i in range(len(sizes))]
    document = {
        "format": "portal-envelope",
        "version": 1,
        "kind": "report",
        "sealed_by": "relay-tool",
        "locale": "fr",
        "fields": {
            "description": "Menaces après la session du Conseil des droits de l'homme.",
            "violations": ["threats", "surveillance"],
        },
        "files": [
            {
                "name": f"pièce {i}.bin",
                "type": "application/octet-stream",
                "size": size,
                "key": b64(key),
            }
            for i, (size, key) in enumerate(zip(sizes, file_keys, strict=True))
        ],
    }
    write(
        "envelope.json",
        {
            "recipient_secret_key": team_sk.hex(),
            "recipient_public_key": team_pk.hex(),
            "ephemeral_secret_key": ephemeral_sk.hex(),
            "manifest": document,
            "sealed_manifest": seal_fixed(
                pad(manifest_json(document)), team_pk, ephemeral_sk
            ).hex(),
            "files": [
                {
                    "size": size,
                    "blob_sha256": hashlib.sha256(blob(pattern(size), key)[0]).hexdigest(),
                }
                for size, key in zip(sizes, file_keys, strict=True)
            ],
        },
    )

    # Receipts: Argon2id over the 25 digits, salted with a personalised hash of the
    # installation's secret; the lookup is BLAKE2b of the first half, the reply key pair is
    # libsodium's seed key pair of the second.
    secret = fixed("installation secret")
    salt = hashlib.blake2b(secret, digest_size=16, person=b"portal-rcpt-salt").digest()
    receipt_vectors = []
    for digits, opslimit, memlimit in (
        ("0123456789012345678901234", 1, 8192),
        ("9876543210987654321098765", 2, 65536),
    ):
        stretched = nacl.pwhash.argon2id.kdf(
            64, digits.encode(), salt, opslimit=opslimit, memlimit=memlimit
        )
        public, _secret = sodium.crypto_box_seed_keypair(stretched[32:])
        receipt_vectors.append(
            {
                "receipt": " ".join(digits[i : i + 5] for i in range(0, 25, 5)),
                "opslimit": opslimit,
                "memlimit": memlimit,
                "lookup": hashlib.blake2b(
                    stretched[:32], digest_size=32, person=b"portal-lookup"
                ).hexdigest(),
                "reply_public_key": public.hex(),
            }
        )
    write(
        "receipt.json",
        {"installation_secret": secret.hex(), "salt_b64": b64(salt), "vectors": receipt_vectors},
    )


if __name__ == "__main__":
    main()
