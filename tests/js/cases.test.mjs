/** The offline sealer's case rules and CSV reading (js/cases.js), as `portal seal` has them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CsvError, casesFromCsv, checkFields, normaliseFields, parseCsv } from '../../js/cases.js';
import { blockPadding, indexBytes, newId, tarHeader } from '../../js/casefile.js';

const DEFS = [
  { name: 'violations', kind: 'checkboxes', choices: ['threats', 'other'], required: false,
    required_when: null, limit: 500 },
  { name: 'consent_contact', kind: 'radio', choices: ['no', 'other_channel'], required: true,
    required_when: null, limit: 500 },
  { name: 'contact_channel', kind: 'textarea', choices: [], required: false,
    required_when: ['consent_contact', 'other_channel'], limit: 20 },
  { name: 'description', kind: 'textarea', choices: [], required: true, required_when: null,
    limit: 100 },
];
const BY_NAME = new Map(DEFS.map((def) => [def.name, def]));

test('blank answers are left out and line ends become LF, as portal seal does', () => {
  const fields = normaliseFields({
    description: 'a\r\nb\rc', contact_channel: '   ', violations: [' threats ', ''],
    consent_contact: ' no ',
  }, BY_NAME);
  assert.deepEqual(fields, { description: 'a\nb\nc', violations: ['threats'], consent_contact: 'no' });
});

test('required, conditionally required, choices and limits are checked', () => {
  assert.deepEqual(checkFields({}, DEFS).map((p) => p.field), ['consent_contact', 'description']);
  const problems = checkFields({
    consent_contact: 'other_channel', description: 'x'.repeat(101), violations: ['nope'],
  }, DEFS);
  assert.deepEqual(problems.map((p) => [p.field, p.message]), [
    ['violations', 'Please choose among the options.'],
    ['contact_channel', 'Please fill in this field.'],
    ['description', 'This is too long; please shorten it.'],
  ]);
});

test('lists, months and counts are checked as the report form checks them', () => {
  const defs = [
    { name: 'country', kind: 'select', choices: ['', 'FR', 'XB'], required: false,
      required_when: null, limit: 500 },
    { name: 'state', kind: 'select', choices: ['', 'FR'], required: true, required_when: null,
      limit: 500 },
    { name: 'from', kind: 'month', choices: [], required: false, required_when: null, limit: 500,
      pattern: '[0-9]{4}-(0[1-9]|1[0-2])' },
    { name: 'size', kind: 'count', choices: [], required: false, required_when: null, limit: 500,
      pattern: '[0-9]{1,6}' },
    { name: 'name', kind: 'text', choices: [], required: false, required_when: null, limit: 3 },
  ];
  assert.deepEqual(checkFields({}, defs).map((p) => [p.field, p.message]), [
    ['state', 'Please answer this question.'],
  ]);
  const problems = checkFields({
    country: 'France', state: 'FR', from: '2025-13', size: 'about 20', name: '\u{1F600}ab',
  }, defs);
  assert.deepEqual(problems.map((p) => [p.field, p.message]), [
    ['country', 'Please choose one of the options.'],
    ['from', 'Please write the year and month as numbers, for example 2025-11.'],
    ['size', 'Please write a number with digits only, for example 12.'],
  ]);
  assert.deepEqual(checkFields({ state: 'FR', from: '2025-11', size: '12', name: 'abcd' }, defs)
    .map((p) => p.field), ['name']);
  // Digits of other scripts are not the form's digits, as on the server.
  assert.deepEqual(checkFields({ state: 'FR', size: '\u0661\u0662' }, defs).map((p) => p.field),
    ['size']);
});

test('a count or a month may not pass the answer its order names', () => {
  const month = '[0-9]{4}-(0[1-9]|1[0-2])';
  const count = '[0-9]{1,7}';
  const defs = [
    { name: 'size', kind: 'count', choices: [], required: false, required_when: null, limit: 7,
      pattern: count, order: null },
    { name: 'women', kind: 'count', choices: [], required: false, required_when: null, limit: 7,
      pattern: count, order: ['<=', 'size', 'More than the group.'] },
    { name: 'from', kind: 'month', choices: [], required: false, required_when: null, limit: 7,
      pattern: month, order: null },
    { name: 'to', kind: 'month', choices: [], required: false, required_when: null, limit: 7,
      pattern: month, order: ['>=', 'from', 'Before it started.'] },
  ];
  const named = (values) => checkFields(values, defs).map((p) => [p.field, p.message]);
  assert.deepEqual(named({ size: '3', women: '5', from: '2025-06', to: '2025-01' }), [
    ['women', 'More than the group.'], ['to', 'Before it started.'],
  ]);
  // Numbers compare as numbers, months as months; equal is fine; a missing or malformed other
  // answer leaves nothing to compare.
  assert.deepEqual(named({ size: '12', women: '9', from: '2024-12', to: '2025-01' }), []);
  assert.deepEqual(named({ size: '5', women: '05', from: '2025-06', to: '2025-06' }), []);
  assert.deepEqual(named({ women: '5', to: '2020-01' }), []);
  assert.deepEqual(named({ size: 'three', women: '5' }),
    [['size', 'Please write a number with digits only, for example 12.']]);
});

test('CSV cells may be quoted, hold commas, quotes and line breaks', () => {
  assert.deepEqual(parseCsv('\uFEFFa,b\r\n"x, ""y""","line\nbreak"\n'),
    [['a', 'b'], ['x, "y"', 'line\nbreak']]);
  assert.throws(() => parseCsv('"open'), CsvError);
});

test('a CSV of cases gives checked cases with attachments and languages', () => {
  const csv = 'description,consent_contact,violations,attachments,locale\n'
    + 'First,no,threats;other,a.jpg; b.pdf,fr\n\nSecond,no,,,\n';
  const cases = casesFromCsv(csv, DEFS, 'ar');
  assert.deepEqual(cases, [
    { row: 2, fields: { description: 'First', consent_contact: 'no', violations: ['threats', 'other'] },
      attachments: ['a.jpg', 'b.pdf'], locale: 'fr' },
    { row: 4, fields: { description: 'Second', consent_contact: 'no' }, attachments: [],
      locale: 'ar' },
  ]);
});

test('a bad CSV names its row, and nothing is returned', () => {
  const cases = [
    ['nope\nx\n', 1, 'The report has no question named “%(name)s”.'],
    ['description\n', 2, 'The CSV holds no cases below its first row.'],
    ['description,consent_contact\nx,maybe\n', 2, 'Please choose one of the options.'],
    ['description,consent_contact,locale\nx,no,"not a code"\n', 2,
      '“%(name)s” is not a language code such as en or fr.'],
    ['description\nx,y\n', 2, 'This row has more cells than the first row has names.'],
  ];
  for (const [text, row, message] of cases) {
    assert.throws(() => casesFromCsv(text, DEFS, 'en'), (error) => {
      assert.ok(error instanceof CsvError);
      assert.equal(error.row, row);
      assert.equal(error.message, message);
      return true;
    });
  }
});

test('tar headers, padding, index and ids have the shapes of portal seal', () => {
  const header = tarHeader('portal-bundle.json', 1234);
  assert.equal(header.length, 512);
  assert.equal(new TextDecoder().decode(header.subarray(124, 136)), '00000002322\0');
  assert.equal(new TextDecoder().decode(header.subarray(257, 265)), 'ustar\u000000');
  assert.equal(blockPadding(512).length, 0);
  assert.equal(blockPadding(65552).length, 512 - (65552 % 512));
  assert.throws(() => tarHeader('x', 8 ** 11), /too large/);
  assert.equal(new TextDecoder().decode(indexBytes([{ id: 'a', files: 0 }])),
    '{\n "format": "portal-bundle",\n "version": 1,\n "submissions": [\n  {\n   "id": "a",\n'
    + '   "files": 0\n  }\n ]\n}\n');
  assert.match(newId(), /^[a-z2-7]{16}$/);
});
