/** Shared helpers of the JavaScript tests: hex, the vector files and the test pattern. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository's vector folder, shared with the Python tests. */
export const VECTORS = fileURLToPath(new URL('../vectors/', import.meta.url));

/**
 * Bytes from lowercase hex.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function fromHex(text) {
  return Uint8Array.from(Buffer.from(text, 'hex'));
}

/**
 * Lowercase hex of bytes.
 * @param {Uint8Array | ArrayBuffer} bytes
 * @returns {string}
 */
export function toHex(bytes) {
  return Buffer.from(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes).toString('hex');
}

/**
 * Bytes from standard base64.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function fromBase64(text) {
  return Uint8Array.from(Buffer.from(text, 'base64'));
}

/**
 * The deterministic plaintext of the vectors: byte i = (i * 7 + 3) % 256.
 * @param {number} size
 * @returns {Uint8Array}
 */
export function pattern(size) {
  return Uint8Array.from({ length: size }, (_, i) => (i * 7 + 3) % 256);
}

/**
 * One vector file of tests/vectors, parsed; a missing file fails the test that needs it.
 * @param {string} name
 * @returns {any}
 */
export function loadVectors(name) {
  return JSON.parse(readFileSync(`${VECTORS}${name}`, 'utf8'));
}

/**
 * SHA-256 of bytes or a Blob, as lowercase hex.
 * @param {Uint8Array | Blob} data
 * @returns {Promise<string>}
 */
export async function sha256Hex(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(await data.arrayBuffer());
  return toHex(await crypto.subtle.digest('SHA-256', bytes));
}
