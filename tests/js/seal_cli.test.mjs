/** tests/js/seal_cli.mjs writes what the browser would upload, and says clearly what is wrong. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { x25519 } from '@noble/curves/ed25519.js';

import { decryptBlob, openSealedBox, toBase64 } from '../../js/envelope.js';
import { fromBase64, pattern } from './helpers.mjs';

const CLI = fileURLToPath(new URL('./seal_cli.mjs', import.meta.url));
const run = promisify(execFile);

let dir;
const secretKey = crypto.getRandomValues(new Uint8Array(32));
const publicKey = x25519.getPublicKey(secretKey);

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'seal-cli-'));
  await writeFile(path.join(dir, 'team.pub'), `# test key\n${toBase64(publicKey)}\n`);
  await writeFile(path.join(dir, 'fields.json'),
    JSON.stringify({ description: 'Menacé\nà Genève', violations: ['threats', 'travel_ban'] }));
  await writeFile(path.join(dir, 'empty.txt'), new Uint8Array(0));
  await writeFile(path.join(dir, 'photo one.jpg'), pattern(65537));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Run the tool; resolves to its exit code and output whatever the code. */
async function seal(args) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    return { code: error.code, stdout: error.stdout, stderr: error.stderr };
  }
}

test('seals the manifest and every file, silently', async () => {
  const out = path.join(dir, 'out');
  const result = await seal(['--key', path.join(dir, 'team.pub'), '--out', out,
    '--kind', 'follow-up', '--locale', 'fr', '--fields', path.join(dir, 'fields.json'),
    path.join(dir, 'empty.txt'), path.join(dir, 'photo one.jpg')]);
  assert.deepEqual(result, { code: 0, stdout: '', stderr: '' });
  assert.deepEqual((await readdir(path.join(out, 'files'))).sort(), ['0.blob', '1.blob']);

  const opened = openSealedBox(new Uint8Array(await readFile(path.join(out, 'manifest.sealed'))),
    secretKey);
  const manifest = JSON.parse(new TextDecoder().decode(opened));
  assert.deepEqual(Object.keys(manifest),
    ['format', 'version', 'kind', 'sealed_by', 'locale', 'fields', 'files']);
  assert.equal(manifest.sealed_by, 'browser');
  assert.equal(manifest.kind, 'follow-up');
  assert.equal(manifest.locale, 'fr');
  assert.deepEqual(manifest.fields,
    { description: 'Menacé\nà Genève', violations: ['threats', 'travel_ban'] });
  assert.deepEqual(manifest.files.map(({ name, type, size }) => ({ name, type, size })), [
    { name: 'empty.txt', type: 'application/octet-stream', size: 0 },
    { name: 'photo one.jpg', type: 'application/octet-stream', size: 65537 },
  ]);
  assert.notEqual(manifest.files[0].key, manifest.files[1].key);

  for (const [index, expected] of [[0, pattern(0)], [1, pattern(65537)]]) {
    const blob = new Blob([await readFile(path.join(out, 'files', `${index}.blob`))]);
    const plain = await decryptBlob(blob, fromBase64(manifest.files[index].key),
      manifest.files[index].size);
    assert.deepEqual(plain, expected);
  }
});

test('no files and no fields make a manifest alone', async () => {
  const out = path.join(dir, 'bare');
  const result = await seal(['--key', path.join(dir, 'team.pub'), '--out', out]);
  assert.equal(result.code, 0);
  const opened = openSealedBox(new Uint8Array(await readFile(path.join(out, 'manifest.sealed'))),
    secretKey);
  const manifest = JSON.parse(new TextDecoder().decode(opened));
  assert.deepEqual([manifest.kind, manifest.locale, manifest.fields, manifest.files],
    ['report', 'en', {}, []]);
});

for (const [label, args, code, message] of [
  ['a missing --out', ['--key', 'team.pub'], 2, /--key and --out are required/],
  ['an unknown kind', ['--key', 'team.pub', '--out', 'o', '--kind', 'reply'], 2, /--kind/],
  ['an unknown option', ['--key', 'team.pub', '--out', 'o', '--colour'], 2, /usage:/],
  ['a key file without a key', ['--key', 'fields.json', '--out', 'o'], 1, /not the base64/],
  ['a missing file', ['--key', 'team.pub', '--out', 'o', 'nowhere.bin'], 1, /nowhere\.bin/],
]) {
  test(`refuses ${label} with a clear message`, async () => {
    const resolved = args.map((arg) => (arg.includes('.') ? path.join(dir, arg) : arg));
    const result = await seal(resolved);
    assert.equal(result.code, code);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, message);
    assert.doesNotMatch(result.stderr, /at .*\.m?js:\d+/);
  });
}

test('refuses a fields file that is not an object of strings', async () => {
  const bad = path.join(dir, 'bad-fields.json');
  await writeFile(bad, JSON.stringify({ count: 3 }));
  const result = await seal(['--key', path.join(dir, 'team.pub'), '--out', path.join(dir, 'x'),
    '--fields', bad]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /object of strings/);
});
