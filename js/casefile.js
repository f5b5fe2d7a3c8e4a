/**
 * A relay's sealed case file in the browser: bundle v1 holding one report, as `portal seal`
 * writes it (DESIGN.md, "Bundle v1"). The tar is produced as a sequence of parts, so that a
 * caller can stream it to a file on disk or gather it into a Blob, and never needs the whole
 * of it in memory.
 *
 * Tar headers are those Python's tarfile writes in USTAR format for a plain file with mode
 * 0600, owner 0 and time 0: a bundle carries no timestamps, the day is in its index.
 */
import {
  CHUNK_SIZE, TAG_SIZE, buildManifest, encryptChunks, importFileKey, newFileKey, sealManifest,
  toBase64,
} from './envelope.js';

/** Bytes in one tar block. */
export const BLOCK = 512;
/** The bundle index's member name. */
export const INDEX_NAME = 'portal-bundle.json';
/** The largest file the USTAR size field (11 octal digits) can hold. */
export const MAX_MEMBER_BYTES = 8 ** 11 - 1;
/** At most this many files in one envelope, as the server and `portal seal` allow. */
export const MAX_FILES = 100;

const ASCII = new TextEncoder();
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/**
 * Write `text` as ASCII into `block` at `offset`, left-aligned.
 * @param {Uint8Array} block
 * @param {number} offset
 * @param {string} text
 */
function put(block, offset, text) {
  block.set(ASCII.encode(text), offset);
}

/**
 * `value` in octal, zero-padded to `digits - 1` digits and ended by NUL, as tarfile's itn().
 * @param {number} value
 * @param {number} digits
 * @returns {string}
 */
function octal(value, digits) {
  return `${value.toString(8).padStart(digits - 1, '0')}\0`;
}

/**
 * The 512-byte USTAR header of a plain file.
 * @param {string} name an ASCII name shorter than 100 bytes
 * @param {number} size
 * @returns {Uint8Array}
 */
export function tarHeader(name, size) {
  if (!/^[\x21-\x7e]{1,99}$/.test(name)) throw new Error('A bundle member name is plain ASCII.');
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_MEMBER_BYTES) {
    throw new Error('This file is too large for a sealed case file (the limit is 8 GiB).');
  }
  const block = new Uint8Array(BLOCK);
  put(block, 0, name);
  put(block, 100, octal(0o600, 8));
  put(block, 108, octal(0, 8));
  put(block, 116, octal(0, 8));
  put(block, 124, octal(size, 12));
  put(block, 136, octal(0, 12));
  put(block, 148, '        ');
  put(block, 156, '0');
  put(block, 257, 'ustar\u000000');
  const sum = block.reduce((total, byte) => total + byte, 0);
  put(block, 148, `${sum.toString(8).padStart(6, '0')}\0`);
  return block;
}

/**
 * Zero bytes that bring a member of `size` bytes to a whole number of blocks.
 * @param {number} size
 * @returns {Uint8Array}
 */
export function blockPadding(size) {
  return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
}

/**
 * The index of a bundle, as Python's `json.dumps(document, indent=1)` and a newline.
 * @param {Object<string, string | number>[]} list entries: id, case, kind, received_day, files,
 *   and the optional reply_public_key and receipt_lookup
 * @returns {Uint8Array}
 */
export function indexBytes(list) {
  const document = { format: 'portal-bundle', version: 1, submissions: list };
  return ASCII.encode(`${JSON.stringify(document, null, 1)}\n`);
}

/**
 * A fresh id: 80 random bits as 16 lowercase base32 characters, like `portal seal`'s.
 * @returns {string}
 */
export function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/**
 * Today's date in UTC, the only time a bundle records.
 * @returns {string}
 */
export function today() {
  return new Date().toISOString().slice(0, 10);
}

/**
 * The length of a file's encrypted blob: whole 65,552-byte chunks, at least one.
 * @param {number} size
 * @returns {number}
 */
export function blobLength(size) {
  return Math.max(1, Math.ceil(size / CHUNK_SIZE)) * (CHUNK_SIZE + TAG_SIZE);
}

/**
 * @typedef {{size: number, name: string, type?: string, slice: (a: number, b: number) => Blob}}
 *   FileLike
 * @typedef {{id: string, case: string, parts: AsyncGenerator<Uint8Array>, length: number}}
 *   SealedCase
 */

/**
 * Seal one report to the team key as a sealed case file.
 *
 * The manifest is sealed at once; the files are read and encrypted only as `parts` is
 * iterated, one 64 KiB chunk at a time. `length` is the exact size of the whole file.
 * With `reply` (what the case's receipt derives, made in this browser), the reply key is
 * sealed inside the manifest, and the index entry carries the key and the receipt's lookup
 * value for the site, as `portal seal` writes them.
 * @param {{teamKey: Uint8Array, locale: string, fields: Object<string, string | string[]>,
 *   files: FileLike[], caseId?: string, onProgress?: (bytes: number) => void,
 *   signal?: AbortSignal, reply?: {lookup: Uint8Array, replyPublicKey: Uint8Array}}} input
 * @returns {Promise<SealedCase>}
 */
export async function sealCase({
  teamKey, locale, fields, files, caseId = newId(), onProgress, signal, reply,
}) {
  if (files.length > MAX_FILES) throw new Error(`At most ${MAX_FILES} files can be attached.`);
  for (const file of files) tarHeader('x', blobLength(file.size));
  const rawKeys = files.map(() => newFileKey());
  let sealed;
  let keys;
  try {
    keys = await Promise.all(rawKeys.map(importFileKey));
    const manifest = buildManifest({
      kind: 'report',
      sealedBy: 'relay-tool',
      locale,
      fields,
      files: files.map((file, index) => ({
        name: file.name, type: file.type || '', size: file.size, key: rawKeys[index],
      })),
      replyPublicKey: reply ? reply.replyPublicKey : undefined,
    });
    sealed = sealManifest(manifest, teamKey);
  } finally {
    // From here on only the non-extractable CryptoKeys and the sealed manifest hold the keys.
    rawKeys.forEach((key) => key.fill(0));
  }
  const id = newId();
  /** @type {Object<string, string | number>} */
  const entry = { id, case: caseId, kind: 'report', received_day: today(), files: files.length };
  if (reply) {
    entry.reply_public_key = toBase64(reply.replyPublicKey);
    entry.receipt_lookup = toBase64(reply.lookup);
  }
  const index = indexBytes([entry]);
  let length = BLOCK + index.length + blockPadding(index.length).length;
  length += BLOCK + sealed.length + blockPadding(sealed.length).length;
  for (const file of files) {
    const size = blobLength(file.size);
    length += BLOCK + size + blockPadding(size).length;
  }
  length += 2 * BLOCK;
  const manifest = sealed;
  const cryptoKeys = keys;

  async function* parts() {
    yield tarHeader(INDEX_NAME, index.length);
    yield index;
    yield blockPadding(index.length);
    yield tarHeader(`${id}/manifest.sealed`, manifest.length);
    yield manifest;
    yield blockPadding(manifest.length);
    for (let n = 0; n < files.length; n += 1) {
      const size = blobLength(files[n].size);
      yield tarHeader(`${id}/files/${n}.blob`, size);
      let chunks = 0;
      for await (const chunk of encryptChunks(files[n], cryptoKeys[n], signal)) {
        chunks += 1;
        yield chunk;
        // Progress counts the file's own bytes, not the padding of its last chunk.
        const before = Math.min(files[n].size, (chunks - 1) * CHUNK_SIZE);
        if (onProgress) onProgress(Math.min(files[n].size, chunks * CHUNK_SIZE) - before);
      }
      if (chunks * (CHUNK_SIZE + TAG_SIZE) !== size) {
        throw new Error('The file changed while it was read.');
      }
      // A blob is a whole number of 65,552-byte chunks; 65,552 is a multiple of 16, not 512.
      yield blockPadding(size);
    }
    yield new Uint8Array(2 * BLOCK);
  }
  return { id, case: caseId, parts: parts(), length };
}
