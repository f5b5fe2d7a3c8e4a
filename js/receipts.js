/**
 * Receipts made in the offline sealer, exactly as portal/formats/receipts.py derives them on the site.
 *
 * A receipt is 25 decimal digits from the browser's random source, shown in five groups of
 * five. Argon2id (version 0x13, one lane, the site's published cost) over the digits, salted
 * with the site's published receipt salt, gives 64 bytes: BLAKE2b-256 of the first half,
 * personalised "portal-lookup", is the lookup value the site keeps; the second half is the
 * seed of the case's X25519 reply key pair, as libsodium's crypto_box_seed_keypair makes it
 * (the secret key is the first 32 bytes of SHA-512 of the seed).
 */
import { argon2idAsync } from '@noble/hashes/argon2.js';
import { blake2b } from '@noble/hashes/blake2.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { x25519 } from './x25519.js';

export const DIGITS = 25;
export const GROUP = 5;
const SALT_BYTES = 16;
const ASCII = new TextEncoder();

/**
 * A BLAKE2b personalisation as Python's hashlib takes it: the bytes, zero-padded to 16.
 * @param {string} text
 * @returns {Uint8Array}
 */
function person(text) {
  const padded = new Uint8Array(16);
  padded.set(ASCII.encode(text));
  return padded;
}

/**
 * 25 digits grouped as five groups of five, as the site shows receipts.
 * @param {string} digits
 * @returns {string}
 */
export function formatReceipt(digits) {
  const groups = [];
  for (let i = 0; i < digits.length; i += GROUP) groups.push(digits.slice(i, i + GROUP));
  return groups.join(' ');
}

/**
 * A fresh receipt from the browser's random source: every digit uniform (bytes of 250 and
 * above are drawn again, so that no digit is likelier than another).
 * @returns {string} grouped for reading
 */
export function newReceipt() {
  let digits = '';
  while (digits.length < DIGITS) {
    for (const byte of crypto.getRandomValues(new Uint8Array(32))) {
      if (byte < 250 && digits.length < DIGITS) digits += String(byte % 10);
    }
  }
  return formatReceipt(digits);
}

/**
 * The site's receipt salt and cost as the sealer file carries them; null when it carries none.
 * @param {DOMStringMap} data the dataset of the element that holds them
 * @returns {{salt: Uint8Array, opslimit: number, memlimit: number} | null}
 */
export function publishedSite(data) {
  if (!data.receiptSalt) return null;
  const salt = Uint8Array.from(atob(data.receiptSalt), (char) => char.charCodeAt(0));
  const opslimit = Number(data.receiptOpslimit);
  const memlimit = Number(data.receiptMemlimit);
  if (salt.length !== SALT_BYTES || !Number.isSafeInteger(opslimit) || opslimit < 1
    || !Number.isSafeInteger(memlimit) || memlimit < 8192 || memlimit % 1024 !== 0) {
    throw new Error('The receipt salt or cost in this file is malformed.');
  }
  return { salt, opslimit, memlimit };
}

/**
 * What a receipt opens, derived as the site derives it.
 * @param {string} receipt grouped or not
 * @param {{salt: Uint8Array, opslimit: number, memlimit: number}} site
 * @param {(fraction: number) => void} [onProgress]
 * @returns {Promise<{lookup: Uint8Array, replyPublicKey: Uint8Array}>}
 */
export async function deriveReceipt(receipt, site, onProgress) {
  const digits = receipt.replace(/ /g, '');
  if (!/^\d{25}$/.test(digits)) throw new Error('A receipt has 25 digits.');
  const stretched = await argon2idAsync(ASCII.encode(digits), site.salt, {
    t: site.opslimit,
    m: site.memlimit / 1024,
    p: 1,
    dkLen: 64,
    maxmem: site.memlimit + 1024 * 1024,
    // Hand the page back to the browser often, so that the progress bar moves.
    asyncTick: 50,
    onProgress,
  });
  try {
    const lookup = blake2b(stretched.subarray(0, 32), {
      dkLen: 32, personalization: person('portal-lookup'),
    });
    const secret = sha512(stretched.subarray(32, 64)).subarray(0, 32);
    const replyPublicKey = x25519.getPublicKey(secret);
    secret.fill(0);
    return { lookup, replyPublicKey };
  } finally {
    stretched.fill(0);
  }
}
