/** The envelope functions against the known-answer vectors in tests/vectors (made with PyNaCl). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  buildManifest, decryptBlob, encryptBlob, fingerprint, openSealedBox, padManifest,
  parsePublicKey, parsePublicKeyFile, sealedBox,
} from '../../js/envelope.js';
import {
  fromBase64, fromHex, loadVectors, pattern, sha256Hex, toHex,
} from './helpers.mjs';
import { deriveReceipt, newReceipt, publishedSite } from '../../js/receipts.js';

describe('sealed_box.json', () => {
  const { vectors } = loadVectors('sealed_box.json');
  test('has vectors', () => assert.ok(vectors.length > 0));
  vectors.forEach((vector, index) => {
    test(`PyNaCl vector ${index} opens to its plaintext`, () => {
      const opened = openSealedBox(fromHex(vector.ciphertext), fromHex(vector.recipient_secret_key));
      assert.equal(toHex(opened), vector.plaintext);
    });
    test(`PyNaCl vector ${index} refuses a flipped byte`, () => {
      const altered = fromHex(vector.ciphertext);
      altered[altered.length - 1] ^= 1;
      assert.throws(() => openSealedBox(altered, fromHex(vector.recipient_secret_key)),
        /does not open/);
    });
  });
});

describe('fingerprint.json', () => {
  const { vectors } = loadVectors('fingerprint.json');
  test('has vectors', () => assert.ok(vectors.length > 0));
  for (const vector of vectors) {
    test(`fingerprint of ${vector.public_key_b64}`, () => {
      assert.equal(fingerprint(parsePublicKey(vector.public_key_b64)), vector.fingerprint);
    });
  }
});

describe('public_key_file.json', () => {
  const { vectors } = loadVectors('public_key_file.json');
  test('has vectors', () => assert.ok(vectors.length > 0));
  vectors.forEach((vector, index) => {
    test(`key file ${index} parses to its key`, () => {
      assert.deepEqual(parsePublicKeyFile(vector.text), fromBase64(vector.public_key_b64));
    });
  });
});

describe('manifest.json', () => {
  const { vectors } = loadVectors('manifest.json');
  test('has vectors', () => assert.ok(vectors.length > 0));
  vectors.forEach((vector, index) => {
    const label = `manifest ${index} (${vector.manifest.kind}, ${vector.manifest.sealed_by})`;
    test(`${label}: compact JSON text is byte for byte the same`, () => {
      assert.equal(JSON.stringify(vector.manifest), vector.json_text);
    });
    test(`${label}: padded length`, () => {
      const padded = padManifest(vector.json_text);
      assert.equal(padded.length, vector.padded_length);
      assert.equal(new TextDecoder().decode(padded).trimEnd(), vector.json_text.trimEnd());
    });
    test(`${label}: sealing with the fixed ephemeral key gives the same bytes`, () => {
      const sealed = sealedBox(padManifest(vector.json_text), fromHex(vector.recipient_public_key),
        fromHex(vector.ephemeral_secret_key));
      assert.equal(toHex(sealed), vector.sealed);
    });
    test(`${label}: opens to the padded text`, () => {
      const opened = openSealedBox(fromHex(vector.sealed), fromHex(vector.recipient_secret_key));
      assert.deepEqual(opened, padManifest(vector.json_text));
    });
    if (vector.manifest.sealed_by === 'browser' && !('reply_public_key' in vector.manifest)) {
      test(`${label}: buildManifest makes the same object`, () => {
        const { kind, locale, fields, files } = vector.manifest;
        const built = buildManifest({
          kind, locale, fields,
          files: files.map((file) => ({ ...file, key: fromBase64(file.key) })),
        });
        assert.equal(JSON.stringify(built), vector.json_text);
      });
    }
  });
});

describe('blob.json', () => {
  const { chunk_size: chunkSize, vectors } = loadVectors('blob.json');
  test('chunk size is 64 KiB', () => assert.equal(chunkSize, 65536));
  for (const vector of vectors) {
    test(`blob of ${vector.size} bytes`, async () => {
      const key = fromHex(vector.key);
      const blob = await encryptBlob(new Blob([pattern(vector.size)]), key);
      assert.equal(blob.size, vector.blob_length);
      assert.equal(await sha256Hex(blob), vector.blob_sha256);
      const bytes = new Uint8Array(await blob.arrayBuffer());
      const tags = [];
      for (let end = chunkSize + 16; end <= bytes.length; end += chunkSize + 16) {
        tags.push(toHex(bytes.subarray(end - 16, end)));
      }
      assert.deepEqual(tags, vector.chunk_tags);
      if ('blob' in vector) assert.equal(toHex(bytes), vector.blob);
      const opened = await decryptBlob(new Blob([fromHex(vector.blob ?? toHex(bytes))]), key,
        vector.size);
      assert.deepEqual(opened, pattern(vector.size));
    });
  }
});

describe('envelope.json', () => {
  const envelope = loadVectors('envelope.json');
  test('the sealed manifest opens to the manifest, padded', () => {
    const opened = openSealedBox(fromHex(envelope.sealed_manifest),
      fromHex(envelope.recipient_secret_key));
    const text = new TextDecoder().decode(opened);
    assert.equal(opened.length % 4096, 0);
    assert.deepEqual(JSON.parse(text), envelope.manifest);
    assert.equal(text.trimEnd(), JSON.stringify(envelope.manifest));
  });
  if (envelope.ephemeral_secret_key) {
    test('sealing the manifest with the fixed ephemeral key gives the same bytes', () => {
      const sealed = sealedBox(padManifest(JSON.stringify(envelope.manifest)),
        fromHex(envelope.recipient_public_key), fromHex(envelope.ephemeral_secret_key));
      assert.equal(toHex(sealed), envelope.sealed_manifest);
    });
  }
  envelope.files.forEach((file, index) => {
    test(`file ${index}: the blob from its manifest key matches`, async () => {
      const entry = envelope.manifest.files[index];
      assert.equal(entry.size, file.size);
      const blob = await encryptBlob(new Blob([pattern(file.size)]), fromBase64(entry.key));
      assert.equal(await sha256Hex(blob), file.blob_sha256);
    });
  });
});

describe('receipt.json', () => {
  const { salt_b64: salt, vectors } = loadVectors('receipt.json');
  test('has vectors', () => assert.ok(vectors.length > 0));
  for (const vector of vectors) {
    test(`receipt ${vector.receipt} derives the site's lookup and reply key`, async () => {
      const site = publishedSite({
        receiptSalt: salt,
        receiptOpslimit: String(vector.opslimit),
        receiptMemlimit: String(vector.memlimit),
      });
      const fractions = [];
      const derived = await deriveReceipt(vector.receipt, site, (f) => fractions.push(f));
      assert.equal(toHex(derived.lookup), vector.lookup);
      assert.equal(toHex(derived.replyPublicKey), vector.reply_public_key);
    });
  }
  test('new receipts read as the site writes them, every digit in every place', () => {
    const made = Array.from({ length: 400 }, () => newReceipt());
    for (const receipt of made) assert.match(receipt, /^\d{5}( \d{5}){4}$/);
    assert.equal(new Set(made).size, made.length);
    for (let place = 0; place < 29; place += 1) {
      if (place % 6 === 5) continue;
      assert.equal(new Set(made.map((r) => r[place])).size, 10);
    }
  });
  test('a malformed salt or cost is refused', () => {
    assert.equal(publishedSite({}), null);
    assert.throws(() => publishedSite({ receiptSalt: 'AAAA', receiptOpslimit: '1', receiptMemlimit: '8192' }), /malformed/);
    assert.throws(() => publishedSite({ receiptSalt: salt, receiptOpslimit: 'x', receiptMemlimit: '8192' }), /malformed/);
  });
});
