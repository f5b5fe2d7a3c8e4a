#!/usr/bin/env node
/**
 * Seal files and fields exactly as the browser does, for the Python interoperability tests.
 *
 *   node tests/js/seal_cli.mjs --key keys/team.pub --out DIR --kind report --locale en \
 *     [--reply-key BASE64] --fields fields.json FILE...
 *
 * Writes DIR/manifest.sealed and DIR/files/0.blob, 1.blob, ... with the functions of
 * js/envelope.js that the page's bundle uses. Prints nothing on success; on a mistake it says
 * what went wrong on standard error and exits with status 2 (usage) or 1 (anything else).
 */
import { mkdir, open as openFile, readFile, stat } from 'node:fs/promises';
import { openAsBlob } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { parseArgs } from 'node:util';

import {
  buildManifest, encryptBlob, newFileKey, parsePublicKey, parsePublicKeyFile, sealManifest,
} from '../../js/envelope.js';

const USAGE = 'usage: node tests/js/seal_cli.mjs --key PUBFILE --out DIR '
  + '--kind report|follow-up --locale LANG [--reply-key BASE64] [--fields FIELDS.json] [FILE...]';

class UsageError extends Error {}

/**
 * The command line as options and file paths; throws UsageError when it is not usable.
 * @param {string[]} argv
 * @returns {{key: string, out: string, kind: string, locale: string, fields?: string,
 *   'reply-key'?: string, files: string[]}}
 */
function parseCommandLine(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        key: { type: 'string' },
        out: { type: 'string' },
        kind: { type: 'string', default: 'report' },
        locale: { type: 'string', default: 'en' },
        fields: { type: 'string' },
        'reply-key': { type: 'string' },
      },
    });
  } catch (error) {
    throw new UsageError(error.message);
  }
  const { values, positionals } = parsed;
  if (!values.key || !values.out) throw new UsageError('--key and --out are required.');
  if (values.kind !== 'report' && values.kind !== 'follow-up') {
    throw new UsageError('--kind is "report" or "follow-up".');
  }
  return { ...values, files: positionals };
}

/**
 * Read the fields file: a JSON object of strings or lists of strings.
 * @param {string | undefined} file
 * @returns {Promise<Object<string, string | string[]>>}
 */
async function readFields(file) {
  if (!file) return {};
  const fields = JSON.parse(await readFile(file, 'utf8'));
  const isText = (/** @type {unknown} */ value) => typeof value === 'string';
  const valid = fields && typeof fields === 'object' && !Array.isArray(fields)
    && Object.values(fields).every((value) => isText(value)
      || (Array.isArray(value) && value.every(isText)));
  if (!valid) throw new UsageError('The fields file must hold an object of strings or lists of strings.');
  return fields;
}

/**
 * A file to seal as a Blob read from disk as needed; the error names the file.
 * @param {string} file
 * @returns {Promise<Blob>}
 */
async function openInput(file) {
  const info = await stat(file);
  if (!info.isFile()) throw new Error(`${file} is not a regular file.`);
  return openAsBlob(file);
}

/**
 * Write bytes to a new file and flush them to disk.
 * @param {string} file
 * @param {Blob | Uint8Array} data
 */
async function writeDurably(file, data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(await data.arrayBuffer());
  const handle = await openFile(file, 'w', 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Seal the manifest and the files into the output folder.
 * @param {string[]} argv
 */
async function main(argv) {
  const options = parseCommandLine(argv);
  const teamKey = parsePublicKeyFile(await readFile(options.key, 'utf8'));
  const fields = await readFields(options.fields);
  const blobs = await Promise.all(options.files.map(openInput));
  const keys = options.files.map(() => newFileKey());
  const replyKey = options['reply-key'];

  const filesDir = path.join(options.out, 'files');
  await mkdir(filesDir, { recursive: true });
  for (let index = 0; index < blobs.length; index += 1) {
    await writeDurably(path.join(filesDir, `${index}.blob`), await encryptBlob(blobs[index], keys[index]));
  }
  const manifest = buildManifest({
    kind: options.kind,
    locale: options.locale,
    fields,
    files: options.files.map((file, index) => ({
      name: path.basename(file), type: '', size: blobs[index].size, key: keys[index],
    })),
    replyPublicKey: replyKey === undefined ? undefined : parsePublicKey(replyKey),
  });
  keys.forEach((key) => key.fill(0));
  await writeDurably(path.join(options.out, 'manifest.sealed'), sealManifest(manifest, teamKey));
}

main(process.argv.slice(2)).catch((error) => {
  if (error instanceof UsageError) {
    process.stderr.write(`${error.message}\n${USAGE}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`seal_cli: ${error.message}\n`);
    process.exitCode = 1;
  }
});
