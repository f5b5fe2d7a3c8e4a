#!/usr/bin/env node
/**
 * The offline sealer's check of answers (js/cases.js), for the Python tests:
 *
 *   node tests/js/check_cli.mjs < {"defs": [...], "cases": [{...}, ...]}
 *
 * prints, for each case, its problems as [field, message] pairs, one JSON list per case.
 */
import process from 'node:process';

import { checkFields } from '../../js/cases.js';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { defs, cases } = JSON.parse(input);
process.stdout.write(JSON.stringify(
  cases.map((values) => checkFields(values, defs).map((p) => [p.field, p.message])),
));
