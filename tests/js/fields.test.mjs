/** The fields rule of the page contract, on lists of fake form controls. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { collectFields, fieldsFromControls } from '../../js/envelope.js';

/**
 * A fake control with the DOM properties the rule reads.
 * @param {object} props
 */
function control(props) {
  return { type: 'text', value: '', checked: false, disabled: false, dataset: {}, ...props };
}

/** A fake <select>; `selected` lists the values of its selected options. */
function select(name, selected, multiple) {
  return control({
    name, multiple, type: multiple ? 'select-multiple' : 'select-one', value: selected[0] ?? '',
    selectedOptions: selected.map((value) => ({ value })),
  });
}

test('text, textarea and single select give strings; empty ones are left out', () => {
  const fields = fieldsFromControls([
    control({ name: 'description', type: 'textarea', value: 'They came at night.' }),
    control({ name: 'country', type: 'select-one', value: 'XX' }),
    control({ name: 'email', type: 'email', value: 'a@example.org' }),
    control({ name: 'date', type: 'date', value: '' }),
    select('role', [], false),
  ]);
  assert.deepEqual(fields, { description: 'They came at night.', country: 'XX', email: 'a@example.org' });
});

test('whitespace is kept as typed, CRLF and a lone CR become LF', () => {
  const fields = fieldsFromControls([
    control({ name: 'description', type: 'textarea', value: '  first\r\nsecond\r\n\nthird\r  ' }),
    control({ name: 'spaces', value: '   ' }),
  ]);
  assert.deepEqual(fields, { description: '  first\nsecond\n\nthird\n  ', spaces: '   ' });
});

test('checkboxes give the checked values in document order, omitted when none', () => {
  const fields = fieldsFromControls([
    control({ name: 'violations', type: 'checkbox', value: 'threats', checked: true }),
    control({ name: 'violations', type: 'checkbox', value: 'detention', checked: false }),
    control({ name: 'violations', type: 'checkbox', value: 'surveillance', checked: true }),
    control({ name: 'unticked', type: 'checkbox', value: 'x', checked: false }),
  ]);
  assert.deepEqual(fields, { violations: ['threats', 'surveillance'] });
});

test('one checked checkbox still gives a list', () => {
  const fields = fieldsFromControls([
    control({ name: 'violations', type: 'checkbox', value: 'threats', checked: true }),
  ]);
  assert.deepEqual(fields, { violations: ['threats'] });
});

test('a lone checkbox marked data-single gives its value as a string', () => {
  const single = { single: '' };
  assert.deepEqual(fieldsFromControls([
    control({ name: 'consent', type: 'checkbox', value: 'yes', checked: true, dataset: single }),
  ]), { consent: 'yes' });
  assert.deepEqual(fieldsFromControls([
    control({ name: 'consent', type: 'checkbox', value: 'yes', checked: false, dataset: single }),
  ]), {});
});

test('a checkbox without a value attribute gives "on", as a browser posts it', () => {
  const fields = fieldsFromControls([
    control({ name: 'agree', type: 'checkbox', value: undefined, checked: true,
      dataset: { single: '' } }),
  ]);
  assert.deepEqual(fields, { agree: 'on' });
});

test('radio buttons give the checked one', () => {
  const fields = fieldsFromControls([
    control({ name: 'relation', type: 'radio', value: 'victim', checked: false }),
    control({ name: 'relation', type: 'radio', value: 'witness', checked: true }),
    control({ name: 'relation', type: 'radio', value: 'relative', checked: false }),
    control({ name: 'none', type: 'radio', value: 'a', checked: false }),
  ]);
  assert.deepEqual(fields, { relation: 'witness' });
});

test('select multiple gives a list of the selected values, omitted when none', () => {
  const fields = fieldsFromControls([
    select('bodies', ['hrc', 'upr'], true),
    select('others', [], true),
  ]);
  assert.deepEqual(fields, { bodies: ['hrc', 'upr'] });
});

test('credentials, the honeypot, files, data-not-field and buttons are never fields', () => {
  const fields = fieldsFromControls([
    control({ name: 'csrf_token', type: 'hidden', value: 'token' }),
    control({ name: 'website', value: 'http://spam.example' }),
    control({ name: 'attachments', type: 'file', value: 'C:\\fakepath\\a.pdf' }),
    control({ name: 'receipt', value: '1234 5678' }),
    control({ name: 'lang_switch', type: 'select-one', value: 'fr', dataset: { notField: '' } }),
    control({ name: 'other_file', type: 'file', value: 'x' }),
    control({ name: 'action', type: 'submit', value: 'send' }),
    control({ name: 'reset', type: 'reset', value: 'r' }),
    control({ name: 'group', type: 'fieldset', value: '' }),
    control({ name: 'description', type: 'textarea', value: 'kept' }),
  ]);
  assert.deepEqual(fields, { description: 'kept' });
});

test('unnamed and disabled controls are left out, as a browser would', () => {
  const fields = fieldsFromControls([
    control({ name: '', value: 'nameless' }),
    control({ name: 'off', value: 'disabled', disabled: true }),
    control({ name: 'on', value: 'enabled' }),
  ]);
  assert.deepEqual(fields, { on: 'enabled' });
});

test('the first value posted under a repeated name decides, as on the server', () => {
  assert.deepEqual(fieldsFromControls([
    control({ name: 'a', value: 'first' }),
    control({ name: 'a', value: 'second' }),
  ]), { a: 'first' });
  assert.deepEqual(fieldsFromControls([
    control({ name: 'a', value: '' }),
    control({ name: 'a', value: 'second' }),
  ]), {});
  // An unchecked radio button is not posted, so it does not count as the first value.
  assert.deepEqual(fieldsFromControls([
    control({ name: 'r', type: 'radio', value: 'x', checked: false }),
    control({ name: 'r', type: 'radio', value: 'y', checked: true }),
  ]), { r: 'y' });
});

test('checkboxes with an empty value add nothing to the list', () => {
  assert.deepEqual(fieldsFromControls([
    control({ name: 'v', type: 'checkbox', value: '', checked: true }),
    control({ name: 'v', type: 'checkbox', value: 'a', checked: true }),
  ]), { v: ['a'] });
  assert.deepEqual(fieldsFromControls([
    control({ name: 'v', type: 'checkbox', value: '', checked: true }),
  ]), {});
});

test('fields keep document order', () => {
  const fields = fieldsFromControls([
    control({ name: 'zeta', value: '1' }),
    control({ name: 'alpha', type: 'checkbox', value: 'x', checked: true }),
    control({ name: 'mid', value: '2' }),
  ]);
  assert.deepEqual(Object.keys(fields), ['zeta', 'alpha', 'mid']);
});

test('collectFields reads a form\'s elements', () => {
  const form = { elements: [control({ name: 'description', value: 'x' })] };
  assert.deepEqual(collectFields(form), { description: 'x' });
});
