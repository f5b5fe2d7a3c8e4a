/**
 * Resumable upload of a sealed envelope: each blob in parts of whole sealed chunks, continued
 * from where the server stands after a dropped connection.
 *
 * The server's side is portal/server/resumable.py, its views portal/web/public/resumable.py.
 * The model is the core of the tus protocol: PATCH a part naming its `Upload-Offset`; the
 * answer carries the new offset; 409 carries where the blob really stands; after a failure,
 * GET the upload to learn every blob's offset. Nothing here touches the page: the caller
 * passes the way to send a request, to wait and to show progress, so that Node tests drive it
 * with a fake server.
 */

/** Bytes of one sealed chunk (65,536 bytes of plaintext and a 16-byte tag). */
export const SEALED_CHUNK = 65552;
/** Chunks in every part but a blob's last (the server says so too, and its word counts). */
export const PART_CHUNKS = 16;
/** The longest wait between tries, in milliseconds. */
export const MAX_WAIT = 30000;
/** Tries in a row without progress before giving up (with MAX_WAIT, about a quarter of an hour). */
export const MAX_FAILURES = 30;

const PART_TYPE = 'application/offset+octet-stream';

/**
 * The next part of a blob of `size` bytes that stands at `offset`, or null when it is whole.
 * @param {number} offset bytes the server holds: a multiple of the part size, or all of it
 * @param {number} size the blob's length in bytes
 * @param {number} partBytes bytes in a whole part
 * @returns {{start: number, end: number} | null}
 */
export function nextPart(offset, size, partBytes) {
  if (offset === size) return null;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > size || offset % partBytes) {
    throw new Error(`The server named an offset that is no part's start: ${offset}.`);
  }
  return { start: offset, end: Math.min(offset + partBytes, size) };
}

/**
 * How long to wait before try number `failures` (1 for the first retry): doubling from one
 * second up to MAX_WAIT, each wait drawn between half and all of it, so that many browsers cut
 * off together do not come back together.
 * @param {number} failures tries that failed in a row
 * @param {() => number} random a number in [0, 1)
 * @returns {number} milliseconds
 */
export function backoff(failures, random = Math.random) {
  const ceiling = Math.min(MAX_WAIT, 1000 * 2 ** Math.max(0, Math.min(failures - 1, 15)));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/**
 * An answer's header as a whole non-negative number, or null.
 * @param {{header: (name: string) => string | null}} answer
 * @param {string} name
 * @returns {number | null}
 */
function numberHeader(answer, name) {
  const text = answer.header(name);
  return text !== null && /^[0-9]{1,15}$/.test(text) ? Number(text) : null;
}

/**
 * @typedef {{status: number, header: (name: string) => string | null, text: string}} Answer
 * @typedef {(method: string, url: string, options: {headers?: Record<string, string>,
 *   body?: Blob | FormData, onProgress?: (loaded: number) => void}) => Promise<Answer>} Send
 *   rejects with Error('network') when no answer came, Error('cancelled') when aborted
 */

/** A refusal the server explained: the upload cannot go on. */
export class Refused extends Error {
  /**
   * @param {Answer} answer
   */
  constructor(answer) {
    super('refused');
    this.answer = answer;
  }
}

/**
 * Send every blob of an upload that was created at `location`, resuming after failures.
 * @param {object} options
 * @param {Blob[]} options.blobs the sealed blobs, in order
 * @param {string} options.location the upload's address
 * @param {number} options.partBytes bytes in a whole part
 * @param {Send} options.send
 * @param {(ms: number) => Promise<void>} options.sleep
 * @param {(done: number, total: number) => void} [options.onProgress] bytes the server holds,
 *   plus what of the current part has gone out
 * @param {(waiting: boolean) => void} [options.onWaiting] true while waiting to try again
 * @param {() => number} [options.random]
 * @returns {Promise<void>} rejects with Refused, or Error('network') after MAX_FAILURES
 */
export async function sendBlobs({
  blobs, location, partBytes, send, sleep, onProgress = () => {}, onWaiting = () => {},
  random = Math.random,
}) {
  const total = blobs.reduce((sum, blob) => sum + blob.size, 0);
  const offsets = blobs.map(() => 0);
  const held = () => offsets.reduce((sum, offset) => sum + offset, 0);
  let failures = 0;
  let index = 0;
  let waiting = false;
  /** Say so only when it changes: the page reads the status aloud. */
  const setWaiting = (on) => {
    if (on !== waiting) onWaiting(on);
    waiting = on;
  };

  /** After a failure: wait, then learn where each blob stands, trying until the server says. */
  const recover = async () => {
    for (;;) {
      failures += 1;
      if (failures > MAX_FAILURES) throw new Error('network');
      setWaiting(true);
      await sleep(backoff(failures, random));
      let answer;
      try {
        answer = await send('GET', location, {});
      } catch (error) {
        if (error && error.message === 'cancelled') throw error;
        continue;
      }
      if (answer.status === 429 || answer.status >= 500) continue;
      if (answer.status !== 200) throw new Refused(answer);
      JSON.parse(answer.text).offsets.forEach((offset, i) => {
        if (i < offsets.length) offsets[i] = offset;
      });
      setWaiting(false);
      onProgress(held(), total);
      return;
    }
  };

  while (index < blobs.length) {
    const part = nextPart(offsets[index], blobs[index].size, partBytes);
    if (part === null) {
      index += 1;
      continue;
    }
    const before = held();
    let answer;
    try {
      answer = await send('PATCH', `${location}?blob=${index}`, {
        headers: { 'Content-Type': PART_TYPE, 'Upload-Offset': String(part.start) },
        body: blobs[index].slice(part.start, part.end),
        onProgress: (loaded) => onProgress(before + loaded, total),
      });
    } catch (error) {
      if (error && error.message === 'cancelled') throw error;
      await recover();
      continue;
    }
    const standing = numberHeader(answer, 'Upload-Offset');
    if (answer.status === 204 && standing !== null) {
      offsets[index] = standing;
      failures = 0;
      setWaiting(false);
      onProgress(held(), total);
    } else if (answer.status === 409 && standing !== null) {
      // Sent twice (its answer was lost), or after a gap: go on from where the blob stands.
      offsets[index] = standing;
      onProgress(held(), total);
    } else if (answer.status === 409 || answer.status === 429 || answer.status >= 500) {
      await recover();
    } else {
      throw new Refused(answer);
    }
  }
}

/**
 * Send a request again while no answer comes (the connection dropped), waiting longer each time.
 * Any answer is returned as it is: a refusal or an overload page is for the person to read.
 * @param {() => Promise<Answer>} attempt
 * @param {(ms: number) => Promise<void>} sleep
 * @param {(waiting: boolean) => void} onWaiting
 * @param {() => number} [random]
 * @returns {Promise<Answer>} rejects with Error('network') after MAX_FAILURES
 */
export async function withRetries(attempt, sleep, onWaiting, random = Math.random) {
  for (let failures = 0; ; failures += 1) {
    if (failures > 0) {
      if (failures > MAX_FAILURES) throw new Error('network');
      onWaiting(true);
      await sleep(backoff(failures, random));
    }
    try {
      const answer = await attempt();
      onWaiting(false);
      return answer;
    } catch (error) {
      if (error && error.message === 'cancelled') throw error;
    }
  }
}
