/** Round trips, boundaries and tamper detection of the envelope functions. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { x25519 } from '@noble/curves/ed25519.js';

import {
  CHUNK_SIZE, TAG_SIZE, buildManifest, chunkNonce, decryptBlob, encryptBlob, fingerprint,
  newFileKey, openSealedBox, padManifest, parsePublicKey, parsePublicKeyFile, sealManifest,
  sealedBox, toBase64,
} from '../../js/envelope.js';
import { fromBase64, pattern } from './helpers.mjs';

/** A fresh recipient key pair. */
function keyPair() {
  const secretKey = crypto.getRandomValues(new Uint8Array(32));
  return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
}

describe('sealedBox', () => {
  test('opens with the recipient key to what was sealed', () => {
    const { secretKey, publicKey } = keyPair();
    for (const size of [0, 1, 31, 4096, 100000]) {
      const plaintext = pattern(size);
      const sealed = sealedBox(plaintext, publicKey);
      assert.equal(sealed.length, size + 48);
      assert.deepEqual(openSealedBox(sealed, secretKey), plaintext);
    }
  });

  test('uses a fresh ephemeral key every time', () => {
    const { publicKey } = keyPair();
    const first = sealedBox(pattern(10), publicKey);
    const second = sealedBox(pattern(10), publicKey);
    assert.notDeepEqual(first.subarray(0, 32), second.subarray(0, 32));
    assert.notDeepEqual(first.subarray(32), second.subarray(32));
  });

  test('leaves a caller-supplied ephemeral key as it was', () => {
    const { publicKey } = keyPair();
    const ephemeral = new Uint8Array(32).fill(7);
    const sealed = sealedBox(pattern(5), publicKey, ephemeral);
    assert.deepEqual(ephemeral, new Uint8Array(32).fill(7));
    assert.deepEqual(sealed.subarray(0, 32), x25519.getPublicKey(ephemeral));
  });

  test('refuses a public key of the wrong length', () => {
    assert.throws(() => sealedBox(pattern(5), new Uint8Array(31)), /32 bytes/);
    assert.throws(() => sealedBox(pattern(5), 'not bytes'), /32 bytes/);
  });

  test('refuses a low-order public key', () => {
    assert.throws(() => sealedBox(pattern(5), new Uint8Array(32)));
  });
});

describe('openSealedBox detects tampering', () => {
  const { secretKey, publicKey } = keyPair();
  const sealed = sealedBox(pattern(100), publicKey);
  for (const [region, index] of [['ephemeral key', 0], ['ephemeral key end', 31],
    ['tag', 32], ['tag end', 47], ['ciphertext', 48], ['last byte', 147]]) {
    test(`a flipped bit in the ${region}`, () => {
      const altered = sealed.slice();
      altered[index] ^= 0x80;
      assert.throws(() => openSealedBox(altered, secretKey), /does not open/);
    });
  }
  test('a truncated box', () => {
    assert.throws(() => openSealedBox(sealed.slice(0, sealed.length - 1), secretKey),
      /does not open/);
    assert.throws(() => openSealedBox(sealed.slice(0, 47), secretKey), /too short/);
  });
  test('a box with a byte appended', () => {
    const longer = new Uint8Array(sealed.length + 1);
    longer.set(sealed);
    assert.throws(() => openSealedBox(longer, secretKey), /does not open/);
  });
  test('the wrong secret key', () => {
    assert.throws(() => openSealedBox(sealed, keyPair().secretKey), /does not open/);
  });
});

describe('padManifest', () => {
  for (const [length, padded] of [[1, 4096], [4095, 4096], [4096, 4096], [4097, 8192],
    [8192, 8192], [8193, 12288]]) {
    test(`${length} bytes pad to ${padded}`, () => {
      const out = padManifest('a'.repeat(length));
      assert.equal(out.length, padded);
      assert.ok(out.subarray(length).every((byte) => byte === 0x20));
    });
  }
  test('counts UTF-8 bytes, not characters', () => {
    // 1366 three-byte characters are 4098 bytes: two blocks, though fewer than 4096 characters.
    assert.equal(padManifest('\u20ac'.repeat(1365)).length, 4096);
    assert.equal(padManifest('\u20ac'.repeat(1366)).length, 8192);
  });
  test('refuses an empty text', () => {
    assert.throws(() => padManifest(''), /empty/);
  });
});

describe('public keys', () => {
  const key = new Uint8Array(32).map((_, i) => i * 8 + 1);
  const encoded = toBase64(key);

  test('parse back to the same bytes', () => {
    assert.deepEqual(parsePublicKey(encoded), key);
    assert.deepEqual(parsePublicKey(` ${encoded}\n`), key);
  });
  for (const [label, text] of [
    ['empty', ''], ['unpadded', encoded.slice(0, 43)], ['too long', `A${encoded}`],
    ['url-safe alphabet', toBase64(new Uint8Array(32).fill(0xfb)).replace(/\+/g, '-')
      .replace(/\//g, '_')],
    ['inner space', `${encoded.slice(0, 10)} ${encoded.slice(10)}`],
    ['a 33-byte key', toBase64(new Uint8Array(33))], ['a secret key file', '{"format": "x"}'],
  ]) {
    test(`refuse ${label}`, () => {
      assert.throws(() => parsePublicKey(text), /not the base64 of 32 bytes/);
    });
  }
  test('a key file with comments, blank lines and CRLF', () => {
    assert.deepEqual(parsePublicKeyFile(`# team key\r\n\r\n# Fingerprint: x\r\n${encoded}\r\n`),
      key);
    assert.deepEqual(parsePublicKeyFile(`\uFEFF# bom\n${encoded}`), key);
  });
  test('a key file without a key line', () => {
    assert.throws(() => parsePublicKeyFile('# only comments\n\n'), /no key line/);
  });
  test('a key file whose first other line is not a key', () => {
    assert.throws(() => parsePublicKeyFile(`# c\nhello\n${encoded}\n`), /not the base64/);
  });
  test('fingerprint is ten groups of four uppercase hex digits', () => {
    assert.match(fingerprint(key), /^[0-9A-F]{4}( [0-9A-F]{4}){9}$/);
    assert.throws(() => fingerprint(new Uint8Array(20)), /32 bytes/);
  });
});

describe('manifest', () => {
  test('buildManifest writes the keys in the order of the format', () => {
    const key = newFileKey();
    const manifest = buildManifest({
      kind: 'follow-up', locale: 'ar', fields: { description: 'x', violations: ['a', 'b'] },
      files: [{ name: 'a.pdf', type: '', size: 3, key }],
    });
    assert.deepEqual(Object.keys(manifest),
      ['format', 'version', 'kind', 'sealed_by', 'locale', 'fields', 'files']);
    assert.deepEqual(Object.keys(manifest.files[0]), ['name', 'type', 'size', 'key']);
    assert.equal(manifest.sealed_by, 'browser');
    assert.equal(manifest.files[0].type, 'application/octet-stream');
    assert.deepEqual(fromBase64(manifest.files[0].key), key);
    assert.ok(!('reply_public_key' in manifest));
  });
  test('buildManifest seals a report\'s reply key last, as the format orders it', () => {
    const { secretKey, publicKey: teamKey } = keyPair();
    const { publicKey: replyKey } = keyPair();
    const manifest = buildManifest({
      kind: 'report', locale: 'en', fields: { description: 'x' }, files: [],
      replyPublicKey: replyKey,
    });
    assert.deepEqual(Object.keys(manifest),
      ['format', 'version', 'kind', 'sealed_by', 'locale', 'fields', 'files', 'reply_public_key']);
    const opened = JSON.parse(new TextDecoder().decode(
      openSealedBox(sealManifest(manifest, teamKey), secretKey)));
    assert.deepEqual(fromBase64(opened.reply_public_key), replyKey);
  });
  test('buildManifest refuses a reply key that is not 32 bytes', () => {
    for (const replyPublicKey of [new Uint8Array(31), new Uint8Array(33), 'AAAA', null]) {
      assert.throws(() => buildManifest({
        kind: 'report', locale: 'en', fields: {}, files: [], replyPublicKey,
      }), /A key is 32 bytes/);
    }
  });
  test('buildManifest refuses an unknown kind', () => {
    assert.throws(() => buildManifest({ kind: 'reply', locale: 'en', fields: {}, files: [] }),
      /Unknown kind/);
  });
  test('sealManifest round trip', () => {
    const { secretKey, publicKey } = keyPair();
    const manifest = buildManifest({
      kind: 'report', locale: 'zh', fields: { description: '\u6211\u88ab\u5a01\u80c1\u4e86\n' },
      files: [],
    });
    const opened = openSealedBox(sealManifest(manifest, publicKey), secretKey);
    assert.equal(opened.length, 4096);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(opened)), manifest);
  });
  test('file keys are random and 32 bytes', () => {
    const first = newFileKey();
    assert.equal(first.length, 32);
    assert.notDeepEqual(first, newFileKey());
  });
});

describe('chunkNonce', () => {
  test('index big-endian in 11 bytes, then the last-chunk flag', () => {
    assert.deepEqual(chunkNonce(0, false), new Uint8Array(12));
    assert.deepEqual(chunkNonce(0, true), Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1));
    assert.deepEqual(chunkNonce(0x01020304, false),
      Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 0));
  });
  test('refuses indexes it cannot write', () => {
    assert.throws(() => chunkNonce(-1, false), /out of range/);
    assert.throws(() => chunkNonce(2 ** 32, false), /out of range/);
    assert.throws(() => chunkNonce(1.5, false), /out of range/);
  });
});

describe('encryptBlob', () => {
  const sizes = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE,
    3 * CHUNK_SIZE + 100];
  for (const size of sizes) {
    test(`${size} bytes round trip with honest progress`, async () => {
      const key = newFileKey();
      const progress = [];
      const blob = await encryptBlob(new Blob([pattern(size)]), key, (done) => progress.push(done));
      const chunks = Math.max(1, Math.ceil(size / CHUNK_SIZE));
      assert.equal(blob.size, chunks * (CHUNK_SIZE + TAG_SIZE));
      assert.equal(progress.length, chunks);
      assert.equal(progress.at(-1), size);
      assert.deepEqual(progress, [...progress].sort((a, b) => a - b));
      assert.deepEqual(await decryptBlob(blob, key, size), pattern(size));
    });
  }

  test('takes an imported CryptoKey as well as raw bytes', async () => {
    const raw = newFileKey();
    const cryptoKey = await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt']);
    const fromRaw = await encryptBlob(new Blob([pattern(70000)]), raw);
    const fromKey = await encryptBlob(new Blob([pattern(70000)]), cryptoKey);
    assert.deepEqual(await fromKey.arrayBuffer(), await fromRaw.arrayBuffer());
  });

  test('reads one chunk at a time through slice()', async () => {
    const source = new Blob([pattern(3 * CHUNK_SIZE + 5)]);
    const slices = [];
    const spy = {
      size: source.size,
      slice(start, end) {
        slices.push([start, end]);
        return source.slice(start, end);
      },
    };
    await encryptBlob(spy, newFileKey());
    assert.deepEqual(slices, [[0, 65536], [65536, 131072], [131072, 196608], [196608, 196613]]);
  });

  test('stops between chunks once the signal aborts', async () => {
    const controller = new AbortController();
    const seen = [];
    await assert.rejects(
      encryptBlob(new Blob([pattern(4 * CHUNK_SIZE)]), newFileKey(), (done) => {
        seen.push(done);
        controller.abort();
      }, controller.signal),
      { name: 'AbortError' });
    assert.deepEqual(seen, [CHUNK_SIZE]);
  });

  test('notices a file that shrank while it was read', async () => {
    const short = { size: 10, slice: () => new Blob([pattern(4)]) };
    await assert.rejects(encryptBlob(short, newFileKey()), /changed while it was read/);
  });
});

describe('decryptBlob detects tampering', () => {
  const size = 2 * CHUNK_SIZE + 9;
  const key = newFileKey();
  const sealed = encryptBlob(new Blob([pattern(size)]), key)
    .then(async (blob) => new Uint8Array(await blob.arrayBuffer()));
  const whole = CHUNK_SIZE + TAG_SIZE;

  for (const [label, index] of [['first chunk', 0], ['first tag', whole - 1],
    ['middle chunk', whole + 100], ['last chunk', 2 * whole + 3], ['last tag', 3 * whole - 1]]) {
    test(`a flipped bit in the ${label}`, async () => {
      const altered = (await sealed).slice();
      altered[index] ^= 1;
      await assert.rejects(decryptBlob(new Blob([altered]), key, size), /does not open/);
    });
  }
  test('swapped chunks', async () => {
    const bytes = await sealed;
    const swapped = new Uint8Array(bytes.length);
    swapped.set(bytes.subarray(whole, 2 * whole), 0);
    swapped.set(bytes.subarray(0, whole), whole);
    swapped.set(bytes.subarray(2 * whole), 2 * whole);
    await assert.rejects(decryptBlob(new Blob([swapped]), key, size), /does not open/);
  });
  test('a blob cut after whole chunks, with a size to match', async () => {
    // The last-chunk flag in the nonce is what makes this fail.
    const cut = (await sealed).slice(0, 2 * whole);
    await assert.rejects(decryptBlob(new Blob([cut]), key, 2 * CHUNK_SIZE), /does not open/);
  });
  test('a blob whose length does not match the size', async () => {
    await assert.rejects(decryptBlob(new Blob([await sealed]), key, CHUNK_SIZE),
      /length/);
  });
  test('the wrong key', async () => {
    await assert.rejects(decryptBlob(new Blob([await sealed]), newFileKey(), size),
      /does not open/);
  });
  test('the right key opens it', async () => {
    assert.deepEqual(await decryptBlob(new Blob([await sealed]), key, size), pattern(size));
  });
});
