/**
 * The resumable upload client (js/resumable.js): which part comes next, how long to wait, and
 * that cut connections, lost answers and duplicates end with every blob whole on a fake server
 * that follows the rules of portal/server/resumable.py, without sending much more than once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  MAX_FAILURES, MAX_WAIT, PART_CHUNKS, Refused, SEALED_CHUNK, backoff, nextPart, sendBlobs,
  withRetries,
} from '../../js/resumable.js';

const PART = PART_CHUNKS * SEALED_CHUNK;

describe('nextPart', () => {
  test('whole parts, then the rest, then nothing', () => {
    const size = 20 * SEALED_CHUNK;
    assert.deepEqual(nextPart(0, size, PART), { start: 0, end: PART });
    assert.deepEqual(nextPart(PART, size, PART), { start: PART, end: size });
    assert.equal(nextPart(size, size, PART), null);
  });

  test('a blob of one chunk is one short part', () => {
    assert.deepEqual(nextPart(0, SEALED_CHUNK, PART), { start: 0, end: SEALED_CHUNK });
  });

  for (const offset of [-PART, 1, SEALED_CHUNK, 0.5, Number.NaN, 3 * PART]) {
    test(`an offset that is no part's start (${offset}) is refused`, () => {
      assert.throws(() => nextPart(offset, 40 * SEALED_CHUNK, PART), /no part's start/);
    });
  }
});

describe('backoff', () => {
  test('doubles from a second up to the longest wait, between half and all of it', () => {
    const low = [1, 2, 3, 4, 5, 6, 7, 40].map((n) => backoff(n, () => 0));
    const high = [1, 2, 3, 4, 5, 6, 7, 40].map((n) => backoff(n, () => 0.999999));
    assert.deepEqual(low, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
    assert.deepEqual(high, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    assert.ok(high.every((ms) => ms <= MAX_WAIT));
  });
});

/** A blob of `chunks` sealed chunks whose bytes say where they are. */
function blobOf(chunks, seed) {
  const bytes = new Uint8Array(chunks * SEALED_CHUNK);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = (i * 7 + seed) % 251;
  return new Blob([bytes]);
}

/**
 * A server that keeps parts as portal/resumable.py does, and a network that cuts requests.
 * `cuts` maps a request number to 'before' (the part never arrived) or 'after' (it was kept,
 * but its answer was lost).
 */
function fakeServer(blobs, cuts = {}) {
  /** @type {Uint8Array[]} */
  const held = blobs.map(() => new Uint8Array(0));
  const append = (index, bytes) => {
    const grown = new Uint8Array(held[index].length + bytes.length);
    grown.set(held[index]);
    grown.set(bytes, held[index].length);
    held[index] = grown;
  };
  const state = { requests: 0, bytesSent: 0, waits: [] };
  const answer = (status, headers = {}, text = '') => ({
    status, header: (name) => (name in headers ? String(headers[name]) : null), text,
  });
  const send = async (method, url, { headers = {}, body, onProgress } = {}) => {
    state.requests += 1;
    const cut = cuts[state.requests];
    if (method === 'GET') {
      if (cut) throw new Error('network');
      return answer(200, {}, JSON.stringify({ offsets: held.map((parts) => parts.length) }));
    }
    const index = Number(new URL(url, 'http://x').searchParams.get('blob'));
    const bytes = new Uint8Array(await body.arrayBuffer());
    state.bytesSent += bytes.length;
    if (onProgress) onProgress(bytes.length);
    if (cut === 'before') throw new Error('network');
    const offset = Number(headers['Upload-Offset']);
    if (offset !== held[index].length) return answer(409, { 'Upload-Offset': held[index].length });
    append(index, bytes);
    if (cut === 'after') throw new Error('network');
    return answer(204, { 'Upload-Offset': held[index].length });
  };
  const sleep = async (ms) => { state.waits.push(ms); };
  return { held, state, send, sleep, append };
}

async function sameBytes(held, blob) {
  assert.ok(Buffer.from(held).equals(Buffer.from(await blob.arrayBuffer())), 'bytes differ');
}

describe('sendBlobs', () => {
  test('without failures every byte is sent once, in whole parts', async () => {
    const blobs = [blobOf(40, 1), blobOf(1, 2)];
    const server = fakeServer(blobs);
    const progress = [];
    await sendBlobs({
      blobs, location: '/u/h', partBytes: PART, send: server.send, sleep: server.sleep,
      onProgress: (done, total) => progress.push([done, total]),
    });
    await sameBytes(server.held[0], blobs[0]);
    await sameBytes(server.held[1], blobs[1]);
    assert.equal(server.state.bytesSent, 41 * SEALED_CHUNK);
    assert.deepEqual(progress.at(-1), [41 * SEALED_CHUNK, 41 * SEALED_CHUNK]);
    assert.deepEqual(server.state.waits, []);
  });

  test('cut connections and lost answers: resumed from where the server stands', async () => {
    const blobs = [blobOf(100, 3), blobOf(5, 4)];
    const total = 105 * SEALED_CHUNK;
    // Three cuts: a part that never arrived, one kept whose answer was lost, and the offset
    // question after it failing too.
    const server = fakeServer(blobs, { 2: 'before', 5: 'after', 6: 'get' });
    const progress = [];
    const waiting = [];
    await sendBlobs({
      blobs, location: '/u/h', partBytes: PART, send: server.send, sleep: server.sleep,
      onProgress: (done) => progress.push(done), onWaiting: (on) => waiting.push(on),
      random: () => 0,
    });
    await sameBytes(server.held[0], blobs[0]);
    await sameBytes(server.held[1], blobs[1]);
    // Only the part that never arrived went twice.
    assert.ok(server.state.bytesSent <= total + PART, `${server.state.bytesSent} sent`);
    assert.ok(progress.every((done) => done <= total));
    assert.equal(progress.at(-1), total);
    // After the first cut the bar went back to what the server holds: one part.
    const cutAt = progress.indexOf(2 * PART);
    assert.ok(cutAt > 0 && progress.slice(cutAt + 1).includes(PART), 'the bar stayed honest');
    assert.deepEqual(server.state.waits, [500, 500, 1000]);
    // Said once per failure and once when going on: the status is read aloud.
    assert.deepEqual(waiting, [true, false, true, false]);
  });

  test('a duplicate answered 409 goes on from the offset the server names', async () => {
    const blobs = [blobOf(32, 5)];
    const server = fakeServer(blobs);
    server.append(0, new Uint8Array(await blobs[0].slice(0, PART).arrayBuffer()));
    await sendBlobs({
      blobs, location: '/u/h', partBytes: PART, send: server.send, sleep: server.sleep,
    });
    await sameBytes(server.held[0], blobs[0]);
    assert.equal(server.state.bytesSent, 2 * PART);
  });

  test('a refusal stops the upload with the server answer', async () => {
    const send = async () => ({ status: 400, header: () => null, text: '{"error": "no"}' });
    await assert.rejects(
      sendBlobs({ blobs: [blobOf(1, 0)], location: '/u', partBytes: PART, send,
        sleep: async () => {} }),
      (error) => error instanceof Refused && error.answer.status === 400,
    );
  });

  test('a server too busy (429, 503) is waited for', async () => {
    const blobs = [blobOf(1, 6)];
    const server = fakeServer(blobs);
    let busy = 2;
    const send = async (method, url, options) => {
      if (method === 'PATCH' && busy > 0) {
        busy -= 1;
        return { status: busy ? 503 : 429, header: () => null, text: '' };
      }
      return server.send(method, url, options);
    };
    await sendBlobs({ blobs, location: '/u', partBytes: PART, send, sleep: server.sleep });
    await sameBytes(server.held[0], blobs[0]);
    assert.equal(server.state.waits.length, 2);
  });

  test('gives up after many failures in a row', async () => {
    const send = async () => { throw new Error('network'); };
    const waits = [];
    await assert.rejects(
      sendBlobs({ blobs: [blobOf(1, 0)], location: '/u', partBytes: PART, send,
        sleep: async (ms) => { waits.push(ms); } }),
      /network/,
    );
    assert.equal(waits.length, MAX_FAILURES);
  });

  test('cancelling stops at once, without retrying', async () => {
    const send = async () => { throw new Error('cancelled'); };
    const waits = [];
    await assert.rejects(
      sendBlobs({ blobs: [blobOf(1, 0)], location: '/u', partBytes: PART, send,
        sleep: async (ms) => { waits.push(ms); } }),
      /cancelled/,
    );
    assert.deepEqual(waits, []);
  });
});

describe('withRetries', () => {
  test('sends again while no answer comes, then returns the answer', async () => {
    let tries = 0;
    const waits = [];
    const answer = await withRetries(async () => {
      tries += 1;
      if (tries < 3) throw new Error('network');
      return { status: 200, header: () => null, text: 'done' };
    }, async (ms) => { waits.push(ms); }, () => {}, () => 0);
    assert.equal(answer.text, 'done');
    assert.deepEqual(waits, [500, 1000]);
  });

  test('a refusal is returned as it is, not retried', async () => {
    let tries = 0;
    const answer = await withRetries(async () => {
      tries += 1;
      return { status: 400, header: () => null, text: '' };
    }, async () => {}, () => {});
    assert.equal(answer.status, 400);
    assert.equal(tries, 1);
  });
});
