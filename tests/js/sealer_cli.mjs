#!/usr/bin/env node
/**
 * Write a sealed case file exactly as the offline sealer page does, for the Python tests.
 *
 *   node tests/js/sealer_cli.mjs --key team.pub --out CASE.sealed --locale ar \
 *     --fields fields.json FILE...
 *
 * Uses js/casefile.js, the module the page's script is built from, and writes its parts in
 * order as the page's streamed save does.
 */
import { openAsBlob } from 'node:fs';
import { open as openFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { parseArgs } from 'node:util';

import { sealCase } from '../../js/casefile.js';
import { parsePublicKeyFile } from '../../js/envelope.js';

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    key: { type: 'string' }, out: { type: 'string' }, locale: { type: 'string', default: 'en' },
    fields: { type: 'string' },
  },
});
const teamKey = parsePublicKeyFile(await readFile(values.key, 'utf8'));
const fields = values.fields ? JSON.parse(await readFile(values.fields, 'utf8')) : {};
const files = [];
for (const file of positionals) {
  const blob = await openAsBlob(file);
  files.push({ name: path.basename(file), type: '', size: blob.size, slice: (a, b) => blob.slice(a, b) });
}
const sealed = await sealCase({ teamKey, locale: values.locale, fields, files });
const handle = await openFile(values.out, 'wx');
let written = 0;
try {
  for await (const part of sealed.parts) {
    await handle.write(part);
    written += part.length;
  }
} finally {
  await handle.close();
}
if (written !== sealed.length) throw new Error(`wrote ${written}, announced ${sealed.length}`);
