/**
 * Envelope v1 in the browser: the team key, the sealed manifest and the encrypted file blobs.
 *
 * Pure functions with no access to the page, so that Node tests run them as they are and the
 * offline Python tools can open what they make. The formats are fixed in DESIGN.md.
 */
import { x25519 } from './x25519.js';
import { hsalsa, xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { blake2b } from '@noble/hashes/blake2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

/** Bytes of plaintext in one blob chunk. */
export const CHUNK_SIZE = 65536;
/** AES-GCM tag bytes at the end of each encrypted chunk. */
export const TAG_SIZE = 16;
/** The manifest's JSON text is padded to a multiple of this, so its length says little. */
export const MANIFEST_PAD = 4096;

const KEY_SIZE = 32;
const SEAL_OVERHEAD = KEY_SIZE + 16;
// "expand 32-byte k": the Salsa20 constant that crypto_box_beforenm feeds to HSalsa20.
const SIGMA = new Uint8Array([
  101, 120, 112, 97, 110, 100, 32, 51, 50, 45, 98, 121, 116, 101, 32, 107,
]);
// Form controls that are never report fields (the same list as the server-side path).
const NOT_FIELDS = new Set(['csrf_token', 'website', 'attachments', 'receipt']);
// Controls whose value a browser never submits as data.
const NOT_DATA_TYPES = new Set(['submit', 'reset', 'button', 'image', 'file', 'fieldset', 'output']);

/**
 * Encode bytes as standard, padded base64.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function toBase64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 1) binary += String.fromCharCode(bytes[i]);
  return btoa(binary);
}

/**
 * Decode the standard, padded base64 of a 32-byte key, refusing anything else.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function parsePublicKey(text) {
  const value = String(text).trim();
  // atob() forgives missing padding and stray spaces; a key has exactly 43 characters and '='.
  if (!/^[A-Za-z0-9+/]{43}=$/.test(value)) {
    throw new Error('The public key is not the base64 of 32 bytes.');
  }
  return Uint8Array.from(atob(value), (char) => char.charCodeAt(0));
}

/**
 * Read a public key file: `#` comment lines and blank lines, then the base64 key line.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function parsePublicKeyFile(text) {
  for (const line of String(text).replace(/^\uFEFF/, '').split(/\r\n|\r|\n/)) {
    const stripped = line.trim();
    if (stripped === '' || stripped.startsWith('#')) continue;
    return parsePublicKey(stripped);
  }
  throw new Error('The public key file holds no key line.');
}

/**
 * Refuse anything but 32 bytes where a key belongs.
 * @param {unknown} key
 */
function checkKey(key) {
  if (!(key instanceof Uint8Array) || key.length !== KEY_SIZE) {
    throw new Error('A key is 32 bytes.');
  }
}

/**
 * The key's fingerprint: BLAKE2b-160 of the raw key, uppercase hex in ten groups of four.
 * @param {Uint8Array} publicKey
 * @returns {string}
 */
export function fingerprint(publicKey) {
  checkKey(publicKey);
  const digest = blake2b(publicKey, { dkLen: 20 });
  return bytesToHex(digest).toUpperCase().match(/.{4}/g).join(' ');
}

/**
 * UTF-8 encode the manifest's JSON text and pad it with spaces to a multiple of 4096 bytes.
 * @param {string} jsonText
 * @returns {Uint8Array}
 */
export function padManifest(jsonText) {
  const text = new TextEncoder().encode(jsonText);
  if (text.length === 0) throw new Error('An empty manifest cannot be sealed.');
  const padded = new Uint8Array(Math.ceil(text.length / MANIFEST_PAD) * MANIFEST_PAD);
  padded.fill(0x20);
  padded.set(text);
  text.fill(0);
  return padded;
}

/**
 * The crypto_box shared key: HSalsa20 of the X25519 secret with a zero input, as libsodium.
 * @param {Uint8Array} secretKey
 * @param {Uint8Array} publicKey
 * @returns {Uint8Array}
 */
function boxBeforeNm(secretKey, publicKey) {
  const raw = x25519.getSharedSecret(secretKey, publicKey);
  // A copy keeps the Uint32Array view aligned whatever buffer offset the library returns.
  const shared = Uint8Array.from(raw);
  raw.fill(0);
  const out = new Uint32Array(8);
  hsalsa(new Uint32Array(SIGMA.slice().buffer), new Uint32Array(shared.buffer),
    new Uint32Array(4), out);
  shared.fill(0);
  return new Uint8Array(out.buffer);
}

/**
 * The sealed-box nonce: BLAKE2b-192 of the ephemeral public key then the recipient's.
 * @param {Uint8Array} ephemeralPublicKey
 * @param {Uint8Array} recipientPublicKey
 * @returns {Uint8Array}
 */
function sealNonce(ephemeralPublicKey, recipientPublicKey) {
  return blake2b.create({ dkLen: 24 }).update(ephemeralPublicKey).update(recipientPublicKey)
    .digest();
}

/**
 * libsodium's crypto_box_seal: ephemeral public key, then crypto_box of the plaintext.
 * @param {Uint8Array} plaintext
 * @param {Uint8Array} recipientPublicKey
 * @param {Uint8Array} [ephemeralSecretKey] fixed only in known-answer tests
 * @returns {Uint8Array}
 */
export function sealedBox(plaintext, recipientPublicKey, ephemeralSecretKey) {
  checkKey(recipientPublicKey);
  const esk = ephemeralSecretKey ? Uint8Array.from(ephemeralSecretKey)
    : crypto.getRandomValues(new Uint8Array(KEY_SIZE));
  try {
    const epk = x25519.getPublicKey(esk);
    const key = boxBeforeNm(esk, recipientPublicKey);
    try {
      const boxed = xsalsa20poly1305(key, sealNonce(epk, recipientPublicKey)).encrypt(plaintext);
      const sealed = new Uint8Array(KEY_SIZE + boxed.length);
      sealed.set(epk);
      sealed.set(boxed, KEY_SIZE);
      return sealed;
    } finally {
      key.fill(0);
    }
  } finally {
    esk.fill(0);
  }
}

/**
 * Open a crypto_box_seal box with the recipient's secret key; throws if it was altered.
 * @param {Uint8Array} ciphertext
 * @param {Uint8Array} recipientSecretKey
 * @returns {Uint8Array}
 */
export function openSealedBox(ciphertext, recipientSecretKey) {
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length < SEAL_OVERHEAD) {
    throw new Error('The sealed box is too short.');
  }
  const epk = ciphertext.slice(0, KEY_SIZE);
  const pk = x25519.getPublicKey(recipientSecretKey);
  let key;
  try {
    key = boxBeforeNm(recipientSecretKey, epk);
    return xsalsa20poly1305(key, sealNonce(epk, pk)).decrypt(ciphertext.subarray(KEY_SIZE));
  } catch {
    throw new Error('The sealed box does not open with this key: it was altered or is not ours.');
  } finally {
    if (key) key.fill(0);
  }
}

/**
 * @typedef {{name: string, type: string, size: number, key: Uint8Array}} FileEntry
 * @typedef {Object<string, string | string[]>} Fields
 */

/**
 * The envelope v1 manifest of a submission sealed in a browser, keys in the order of the design.
 * A report carries the case's reply public key, sealed with it so that no one on the way to
 * the team can swap it for their own. The offline sealer page says `relay-tool`, as
 * `portal seal` does, since it writes the same file.
 * @param {{kind: string, locale: string, fields: Fields, files: FileEntry[],
 *   replyPublicKey?: Uint8Array, sealedBy?: 'browser' | 'relay-tool'}} parts
 * @returns {object}
 */
export function buildManifest({
  kind, locale, fields, files, replyPublicKey, sealedBy = 'browser',
}) {
  if (kind !== 'report' && kind !== 'follow-up') throw new Error(`Unknown kind: ${kind}`);
  if (sealedBy !== 'browser' && sealedBy !== 'relay-tool') {
    throw new Error(`Unknown sealer: ${sealedBy}`);
  }
  const manifest = {
    format: 'portal-envelope',
    version: 1,
    kind,
    sealed_by: sealedBy,
    locale: String(locale),
    fields: { ...fields },
    files: files.map((file) => ({
      name: String(file.name),
      type: file.type || 'application/octet-stream',
      size: file.size,
      key: toBase64(file.key),
    })),
  };
  if (replyPublicKey !== undefined) {
    checkKey(replyPublicKey);
    return { ...manifest, reply_public_key: toBase64(replyPublicKey) };
  }
  return manifest;
}

/**
 * Serialise the manifest compactly, pad it, and seal it to the team key.
 * @param {object} manifest
 * @param {Uint8Array} teamPublicKey
 * @returns {Uint8Array}
 */
export function sealManifest(manifest, teamPublicKey) {
  const padded = padManifest(JSON.stringify(manifest));
  try {
    return sealedBox(padded, teamPublicKey);
  } finally {
    padded.fill(0);
  }
}

/**
 * The AES-GCM nonce of chunk `index`: 11-byte big-endian index, then 1 on the last chunk.
 * @param {number} index
 * @param {boolean} last
 * @returns {Uint8Array}
 */
export function chunkNonce(index, last) {
  if (!Number.isSafeInteger(index) || index < 0 || index > 0xffffffff) {
    throw new Error('Chunk index out of range.');
  }
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setUint32(7, index);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/**
 * A fresh random 32-byte file key from the platform's CSPRNG.
 * @returns {Uint8Array}
 */
export function newFileKey() {
  return crypto.getRandomValues(new Uint8Array(KEY_SIZE));
}

/**
 * Import a raw file key for AES-GCM encryption; the CryptoKey cannot be read back out.
 * @param {Uint8Array} rawKey
 * @returns {Promise<CryptoKey>}
 */
export function importFileKey(rawKey) {
  return crypto.subtle.importKey('raw', rawKey, { name: 'AES-GCM' }, false, ['encrypt']);
}

/**
 * Encrypt a Blob or File chunk by chunk, yielding each 65,552-byte encrypted chunk in order;
 * only one 64 KiB chunk of plaintext is in memory at a time.
 * @param {Blob} blobLike anything with `size` and `slice()` giving objects with `arrayBuffer()`
 * @param {Uint8Array | CryptoKey} key the raw 32-byte key or its imported CryptoKey
 * @param {AbortSignal} [signal] stops the work between chunks
 * @returns {AsyncGenerator<Uint8Array>}
 */
export async function* encryptChunks(blobLike, key, signal) {
  const cryptoKey = key instanceof Uint8Array ? await importFileKey(key) : key;
  const size = blobLike.size;
  const count = Math.max(1, Math.ceil(size / CHUNK_SIZE));
  for (let index = 0; index < count; index += 1) {
    if (signal && signal.aborted) throw new DOMException('Cancelled.', 'AbortError');
    const start = index * CHUNK_SIZE;
    const end = Math.min(size, start + CHUNK_SIZE);
    const read = new Uint8Array(await blobLike.slice(start, end).arrayBuffer());
    if (read.length !== end - start) throw new Error('The file changed while it was read.');
    const chunk = new Uint8Array(CHUNK_SIZE);
    chunk.set(read);
    read.fill(0);
    const encrypted = await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv: chunkNonce(index, index === count - 1) }, cryptoKey, chunk);
    chunk.fill(0);
    yield new Uint8Array(encrypted);
  }
}

/**
 * Encrypt a Blob or File to its envelope blob, one 64 KiB chunk in memory at a time.
 * @param {Blob} blobLike anything with `size` and `slice()` giving objects with `arrayBuffer()`
 * @param {Uint8Array | CryptoKey} key the raw 32-byte key or its imported CryptoKey
 * @param {(bytesDone: number) => void} [onProgress] plaintext bytes encrypted so far
 * @param {AbortSignal} [signal] stops the work between chunks
 * @returns {Promise<Blob>}
 */
export async function encryptBlob(blobLike, key, onProgress, signal) {
  /** @type {Blob[]} */
  const parts = [];
  let done = 0;
  for await (const encrypted of encryptChunks(blobLike, key, signal)) {
    // Each chunk goes into a Blob at once so the browser may keep big uploads out of memory.
    parts.push(new Blob([encrypted]));
    done = Math.min(blobLike.size, done + CHUNK_SIZE);
    if (onProgress) onProgress(done);
  }
  return new Blob(parts, { type: 'application/octet-stream' });
}

/**
 * @typedef {{name?: string, type?: string, value?: string, checked?: boolean,
 *   multiple?: boolean, disabled?: boolean, selectedOptions?: Iterable<{value: string}>,
 *   dataset?: Object<string, string | undefined>}} ControlLike
 */

/**
 * The fields rule of the page contract, applied to controls in document order.
 * @param {Iterable<ControlLike>} controls
 * @returns {Fields}
 */
export function fieldsFromControls(controls) {
  /** @type {Fields} */
  const fields = {};
  /** @type {Map<string, string[]>} */
  const lists = new Map();
  /** @type {Set<string>} */
  const seen = new Set();
  const addToList = (/** @type {string} */ name, /** @type {string} */ value) => {
    if (value === '') return;
    if (!lists.has(name)) {
      lists.set(name, []);
      if (!(name in fields)) fields[name] = lists.get(name);
    }
    lists.get(name).push(value);
  };
  const setString = (/** @type {string} */ name, /** @type {string} */ value) => {
    // The first value posted under a name decides, as the server reads it; empty means none.
    if (seen.has(name)) return;
    seen.add(name);
    if (value !== '' && !(name in fields)) fields[name] = value;
  };
  for (const control of controls) {
    const name = control.name;
    const dataset = control.dataset || {};
    if (!name || NOT_FIELDS.has(name) || dataset.notField !== undefined) continue;
    // A disabled control is never sent by the browser, so the server-side path never sees it.
    if (control.disabled) continue;
    const type = String(control.type || 'text').toLowerCase();
    const value = String(control.value ?? (type === 'checkbox' || type === 'radio' ? 'on' : ''));
    if (NOT_DATA_TYPES.has(type)) continue;
    if (type === 'checkbox') {
      if (!control.checked) continue;
      if (dataset.single !== undefined) setString(name, value);
      else addToList(name, value);
    } else if (type === 'radio') {
      if (control.checked) setString(name, value);
    } else if (type === 'select-multiple' || (type.startsWith('select') && control.multiple)) {
      for (const option of control.selectedOptions || []) addToList(name, String(option.value));
    } else {
      // CR LF and a lone CR both become LF, as the server-side path normalises them.
      setString(name, value.replace(/\r\n?/g, '\n'));
    }
  }
  return fields;
}

/**
 * The report fields of a form element, by the rule of the page contract.
 * @param {{elements: Iterable<ControlLike>}} form
 * @returns {Fields}
 */
export function collectFields(form) {
  return fieldsFromControls(form.elements);
}

/**
 * Decrypt an envelope blob back to the file's `size` bytes; throws if any chunk was altered.
 * @param {Blob} blobLike
 * @param {Uint8Array} rawKey
 * @param {number} size the file's true length, from the manifest
 * @returns {Promise<Uint8Array>}
 */
export async function decryptBlob(blobLike, rawKey, size) {
  const count = Math.max(1, Math.ceil(size / CHUNK_SIZE));
  if (blobLike.size !== count * (CHUNK_SIZE + TAG_SIZE)) {
    throw new Error('The blob does not have the length its manifest entry implies.');
  }
  const key = await crypto.subtle.importKey('raw', rawKey, { name: 'AES-GCM' }, false,
    ['decrypt']);
  const plaintext = new Uint8Array(count * CHUNK_SIZE);
  for (let index = 0; index < count; index += 1) {
    const start = index * (CHUNK_SIZE + TAG_SIZE);
    const sealed = await blobLike.slice(start, start + CHUNK_SIZE + TAG_SIZE).arrayBuffer();
    let chunk;
    try {
      chunk = await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: chunkNonce(index, index === count - 1) }, key, sealed);
    } catch {
      throw new Error('The blob does not open: it was altered or the key is wrong.');
    }
    plaintext.set(new Uint8Array(chunk), index * CHUNK_SIZE);
  }
  if (plaintext.subarray(size).some((byte) => byte !== 0)) {
    throw new Error('The blob\'s padding is not zero.');
  }
  return plaintext.slice(0, size);
}
