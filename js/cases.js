/**
 * The offline sealer's rules for a case, the same as `portal seal`'s (portal/offline/relay.py)
 * and the report form's (portal/formats/answers.py): which answers are kept, which are required,
 * and how a CSV of cases is read. The questionnaire's definition comes from the page, generated
 * from portal/formats/questionnaire.py when the sealer file is made, so these functions hold no
 * field of their own.
 *
 * Problems are returned as the English texts of the catalogues (answers.py's messages), which
 * the page shows in the chosen language.
 */

/**
 * @typedef {{name: string,
 *   kind: 'text' | 'textarea' | 'radio' | 'select' | 'checkboxes' | 'month' | 'count',
 *   choices: string[], required: boolean, required_when: [string, string] | null,
 *   limit: number, pattern?: string, order?: [string, string, string] | null}} FieldDef
 * @typedef {Object<string, string | string[]>} Fields
 * @typedef {{field: string, message: string}} Problem
 */

/** Columns of a CSV of cases that are not fields (as `portal seal --csv`). */
export const SPECIAL_COLUMNS = ['attachments', 'locale'];

/** A language code, as `portal seal` accepts it. */
const LOCALE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$/;

/** The problems schema.check names, in English as in the catalogues. */
export const MESSAGES = {
  answer: 'Please answer this question.',
  fill: 'Please fill in this field.',
  chooseOne: 'Please choose one of the options.',
  chooseAmong: 'Please choose among the options.',
  tooLong: 'This is too long; please shorten it.',
  month: 'Please write the year and month as numbers, for example 2025-11.',
  count: 'Please write a number with digits only, for example 12.',
};

/** Kinds answered by choosing one option: a missing answer is "answer", not "fill". */
const ONE_CHOICE = new Set(['radio', 'select']);

/**
 * Apply `portal seal`'s rules to raw answers: LF line ends, no empty or blank answers, choices
 * trimmed.
 * @param {Object<string, string | string[]>} raw
 * @param {Map<string, FieldDef>} defs
 * @returns {Fields}
 */
export function normaliseFields(raw, defs) {
  /** @type {Fields} */
  const values = {};
  for (const [name, value] of Object.entries(raw)) {
    const def = defs.get(name);
    if (!def) continue;
    const items = (Array.isArray(value) ? value : [value])
      .map((item) => String(item).replace(/\r\n?/g, '\n'));
    if (def.kind === 'checkboxes') {
      const chosen = items.map((item) => item.trim()).filter((item) => item !== '');
      if (chosen.length) values[name] = chosen;
    } else if (items.length && items[0].trim() !== '') {
      values[name] = def.kind === 'radio' ? items[0].trim() : items[0];
    }
  }
  return values;
}

/**
 * The problems of a case's answers, by the rules of answers.check (portal/formats/answers.py).
 * @param {Fields} values
 * @param {FieldDef[]} defs in the form's order
 * @returns {Problem[]}
 */
export function checkFields(values, defs) {
  /** @type {Problem[]} */
  const problems = [];
  for (const def of defs) {
    const value = values[def.name];
    const when = def.required_when;
    const needed = def.required || (when !== null && values[when[0]] === when[1]);
    if (value === undefined) {
      if (needed) {
        problems.push({
          field: def.name, message: ONE_CHOICE.has(def.kind) ? MESSAGES.answer : MESSAGES.fill,
        });
      }
      continue;
    }
    const message = problemOf(value, def, values);
    if (message) problems.push({ field: def.name, message });
  }
  return problems;
}

/**
 * What is wrong with one given answer, as answers.check says it; '' when nothing is.
 * @param {string | string[]} value
 * @param {FieldDef} def
 * @param {Fields} values every answer of the case, for a question whose order names another
 * @returns {string}
 */
function problemOf(value, def, values) {
  const allowed = new Set(def.choices);
  if (ONE_CHOICE.has(def.kind)) {
    return typeof value === 'string' && allowed.has(value) ? '' : MESSAGES.chooseOne;
  }
  if (def.kind === 'checkboxes') {
    const fine = Array.isArray(value) && value.every((item) => allowed.has(item))
      && new Set(value).size === value.length;
    return fine ? '' : MESSAGES.chooseAmong;
  }
  if (typeof value !== 'string') return def.kind === 'month' || def.kind === 'count'
    ? MESSAGES[def.kind] : MESSAGES.fill;
  if (def.kind === 'month' || def.kind === 'count') {
    // As Python's re.fullmatch with re.ASCII: without the u flag, \d is ASCII here too.
    const shaped = new RegExp(`^(?:${def.pattern || ''})$`);
    if (!shaped.test(value)) return MESSAGES[def.kind];
    // Another answer of the same kind this one may not pass, when it is given and well formed.
    const other = def.order ? values[def.order[1]] : undefined;
    if (!def.order || typeof other !== 'string' || !shaped.test(other)) return '';
    const numeric = def.kind === 'count';
    const mine = numeric ? Number(value) : value;
    const theirs = numeric ? Number(other) : other;
    const passes = def.order[0] === '<=' ? mine > theirs : mine < theirs;
    return passes ? def.order[2] : '';
  }
  // Characters as Python counts them: code points, not UTF-16 units.
  if ([...value].length > def.limit) return MESSAGES.tooLong;
  if (def.required && value.trim() === '') return MESSAGES.fill;
  return '';
}

/**
 * Read CSV text (RFC 4180: quoted cells, doubled quotes, CRLF or LF line ends, a BOM).
 * @param {string} text
 * @returns {string[][]}
 */
export function parseCsv(text) {
  const source = String(text).replace(/^\uFEFF/, '');
  /** @type {string[][]} */
  const rows = [];
  /** @type {string[]} */
  let row = [];
  let cell = '';
  let quoted = false;
  let index = 0;
  while (index < source.length) {
    const char = source[index];
    if (quoted) {
      if (char === '"' && source[index + 1] === '"') {
        cell += '"';
        index += 1;
      } else if (char === '"') {
        quoted = false;
      } else {
        cell += char;
      }
    } else if (char === '"' && cell === '') {
      quoted = true;
    } else if (char === ',') {
      row.push(cell);
      cell = '';
    } else if (char === '\n' || char === '\r') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      if (char === '\r' && source[index + 1] === '\n') index += 1;
    } else {
      cell += char;
    }
    index += 1;
  }
  if (quoted) throw new CsvError('A quoted cell is not closed.', rows.length + 1);
  if (cell !== '' || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

/** A CSV of cases that cannot be read as given; `row` is its 1-based row number. */
export class CsvError extends Error {
  /**
   * @param {string} message an English text of the catalogues, with `%(name)s` placeholders
   * @param {number} row
   * @param {string} [field]
   * @param {Object<string, string>} [values] for the placeholders
   */
  constructor(message, row, field, values = {}) {
    super(message);
    this.row = row;
    this.field = field;
    this.values = values;
  }
}

/**
 * @typedef {{row: number, fields: Fields, attachments: string[], locale: string}} CsvCase
 */

/**
 * The cases of a CSV: a row per case, a column per field, `;` between a checkbox field's
 * choices, and optional `attachments` (file names, `;` between them) and `locale` columns.
 * Every case is checked; the first problem throws a CsvError naming its row and field.
 * @param {string} text
 * @param {FieldDef[]} defs
 * @param {string} defaultLocale
 * @returns {CsvCase[]}
 */
export function casesFromCsv(text, defs, defaultLocale) {
  const byName = new Map(defs.map((def) => [def.name, def]));
  const rows = parseCsv(text);
  if (!rows.length) throw new CsvError('The CSV is empty; its first row names the fields.', 1);
  const header = rows[0].map((name) => name.trim());
  for (const name of header) {
    if (!byName.has(name) && !SPECIAL_COLUMNS.includes(name)) {
      throw new CsvError('The report has no question named “%(name)s”.', 1, undefined, { name });
    }
  }
  if (new Set(header).size !== header.length) {
    throw new CsvError('A column name appears twice in the first row.', 1);
  }
  /** @type {CsvCase[]} */
  const cases = [];
  rows.slice(1).forEach((row, offset) => {
    const number = offset + 2;
    if (!row.some((cell) => cell.trim() !== '')) return;
    if (row.length > header.length) {
      throw new CsvError('This row has more cells than the first row has names.', number);
    }
    /** @type {Object<string, string | string[]>} */
    const raw = {};
    header.forEach((name, column) => {
      const cell = row[column] ?? '';
      if (SPECIAL_COLUMNS.includes(name)) return;
      raw[name] = byName.get(name).kind === 'checkboxes' ? cell.split(';') : cell;
    });
    const fields = normaliseFields(raw, byName);
    const problems = checkFields(fields, defs);
    if (problems.length) throw new CsvError(problems[0].message, number, problems[0].field);
    const column = (/** @type {string} */ name) => {
      const at = header.indexOf(name);
      return at < 0 ? '' : (row[at] ?? '');
    };
    const attachments = column('attachments').split(';').map((name) => name.trim())
      .filter((name) => name !== '');
    const locale = column('locale').trim() || defaultLocale;
    if (!LOCALE.test(locale) || locale.length > 16) {
      throw new CsvError('“%(name)s” is not a language code such as en or fr.', number, undefined,
        { name: locale });
    }
    cases.push({ row: number, fields, attachments, locale });
  });
  if (!cases.length) throw new CsvError('The CSV holds no cases below its first row.', 2);
  return cases;
}
