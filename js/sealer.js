/**
 * The offline sealer page (`portal sealer`): one HTML file, opened from disk, that seals cases
 * to the team key as sealed case files, exactly as `portal seal` writes them.
 *
 * The page is made by portal/offline/sealer.py: the questionnaire from
 * portal/formats/questionnaire.py, the texts of the six languages from the catalogues (a JSON
 * block, #sealer-texts), the team key and its fingerprint. This script holds no human language
 * of its own beyond the English texts of the catalogues, which it looks up in that table. It
 * makes no request: the page's own policy forbids every connection, and nothing here tries one.
 *
 * When the file carries the site's receipt salt and cost (made from the site's key file), each
 * case gets its receipt here: Argon2id in this browser derives what the site will derive, the
 * case's reply key is sealed inside it, and the receipt is shown to the person, never saved in
 * the sealed file or sent anywhere.
 */
import { fieldsFromControls, fingerprint, parsePublicKey } from './envelope.js';
import { MAX_FILES, blobLength, newId, sealCase, tarHeader } from './casefile.js';
import { CsvError, casesFromCsv, checkFields, normaliseFields } from './cases.js';
import { deriveReceipt, newReceipt, publishedSite } from './receipts.js';

/** @typedef {import('./cases.js').FieldDef & {label: string}} PageField */

const RTL = new Set(['ar']);
const MAKING_RECEIPT = "Making the case's receipt on this computer (this can take a minute in a browser at a high security level)…";
const KEEP_SAFE = "Keep it safe: it opens the case's follow-up page and the team's replies. It was made on this computer and never sent anywhere, so nobody can give it again.";
const NO_RECEIPT_LINES = "This sealer was made from a key file without the site's receipt salt and cost, so the site will make each case's receipt when its file is uploaded.";
const RECEIPTS_NOTE = "receipts.txt holds the receipts of these cases. It is as sensitive as the cases: keep it as safe as they are and never upload it.";
const texts = readJson('sealer-texts');
/** @type {PageField[]} */
const defs = readJson('sealer-fields');
let lang = 'en';

/**
 * The JSON data block with this id.
 * @param {string} id
 * @returns {any}
 */
function readJson(id) {
  const element = document.getElementById(id);
  return JSON.parse(element ? element.textContent : 'null');
}

/**
 * An English text of the catalogues in the chosen language, placeholders filled in.
 * @param {string} text
 * @param {Object<string, string | number>} [values]
 * @returns {string}
 */
function t(text, values = {}) {
  const table = texts[lang] || {};
  const translated = table[text] || text;
  return translated.replace(/%\((\w+)\)s/g, (whole, name) => (
    name in values ? String(values[name]) : whole));
}

/**
 * @param {string} id
 * @returns {any}
 */
function byId(id) {
  return document.getElementById(id);
}

/**
 * Show every text of the page in a language, and the page's direction with it.
 * @param {string} code
 */
function applyLanguage(code) {
  lang = code in texts ? code : 'en';
  document.documentElement.lang = texts[lang]['@tag'] || lang;
  document.documentElement.dir = RTL.has(lang) ? 'rtl' : 'ltr';
  for (const element of document.querySelectorAll('[data-t]')) {
    element.textContent = t(element.dataset.t);
  }
  document.title = t('Seal a case on this computer');
}

/**
 * A readable size in bytes.
 * @param {number} size
 * @returns {string}
 */
function megabytes(size) {
  return `${(size / (1024 * 1024)).toFixed(1)} MiB`;
}

/** The status line, the progress bar and the panel that offers the sealed file. */
class Status {
  constructor() {
    this.line = byId('sealer-status');
    this.bar = byId('sealer-progress');
  }

  /**
   * @param {string} text already translated
   * @param {boolean} [problem]
   */
  say(text, problem = false) {
    this.line.textContent = text;
    this.line.hidden = false;
    this.line.classList.toggle('notice', problem);
  }

  /**
   * @param {number} done
   * @param {number} total
   */
  progress(done, total) {
    this.bar.hidden = false;
    this.bar.max = Math.max(total, 1);
    this.bar.value = total > 0 ? Math.min(done, total) : 1;
  }

  hideProgress() {
    this.bar.hidden = true;
  }
}

/**
 * Save a sealed case: streamed to a file the person picks where the browser lets a page write
 * one (Chromium's File System Access API), otherwise gathered into a Blob and offered as a link.
 * Nothing is offered or kept unless every part was written.
 * @param {import('./casefile.js').SealedCase} sealed
 * @param {string} name
 * @param {FileSystemFileHandle | null} handle picked before sealing (needs the click's gesture)
 * @returns {Promise<string | null>} an object URL to offer, or null when written to the handle
 */
async function store(sealed, name, handle) {
  if (handle) {
    const writable = await handle.createWritable();
    try {
      for await (const part of sealed.parts) await writable.write(part);
    } catch (error) {
      // The browser writes to a temporary file and replaces the target only on close().
      await writable.abort().catch(() => {});
      throw error;
    }
    await writable.close();
    return null;
  }
  /** @type {Blob[]} */
  const blobs = [];
  let length = 0;
  for await (const part of sealed.parts) {
    blobs.push(new Blob([part]));
    length += part.length;
  }
  const blob = new Blob(blobs, { type: 'application/octet-stream' });
  if (blob.size !== sealed.length || length !== sealed.length) {
    throw new Error('The sealed file is not complete.');
  }
  return URL.createObjectURL(blob);
}

/**
 * Ask where to save, where the browser can stream to a file; null means: offer a link later.
 * @param {string} name
 * @returns {Promise<FileSystemFileHandle | null | 'cancelled'>}
 */
async function pickTarget(name) {
  const picker = /** @type {any} */ (window).showSaveFilePicker;
  if (typeof picker !== 'function') return null;
  try {
    return await picker.call(window, {
      suggestedName: name,
      types: [{ description: t('Sealed case file'), accept: { 'application/octet-stream': ['.sealed'] } }],
    });
  } catch (error) {
    if (error && error.name === 'AbortError') return 'cancelled';
    // Not allowed here (some builds refuse it to pages opened from disk): offer a link instead.
    return null;
  }
}

/**
 * What went wrong, for the person, in the chosen language.
 * @param {any} error
 * @param {string} [fileName]
 * @returns {string}
 */
function explain(error, fileName) {
  if (error && error.name === 'AbortError') return t('Cancelled. Nothing was saved.');
  if (error && /too large/.test(String(error.message))) {
    return t('%(name)s is too large for a sealed case file (the limit is 8 GiB). Nothing was saved.',
      { name: fileName || '' });
  }
  if (error && (error.name === 'NotReadableError' || error.name === 'NotFoundError'
    || /changed while it was read/.test(String(error.message)))) {
    return t('A file could not be read (%(name)s): it may have been moved or changed. Nothing was saved. Choose it again and seal the case again.',
      { name: fileName || '' });
  }
  return t('Sealing failed, and nothing was saved. What you typed is still in the form.');
}

/**
 * Offer a finished sealed file: a link to save it (or a line saying where it was written).
 * @param {HTMLElement} list where the offers go
 * @param {string} name
 * @param {string | null} url
 * @param {string} label already translated
 */
function offer(list, name, url, label) {
  const item = document.createElement('li');
  if (url) {
    const link = document.createElement('a');
    link.href = url;
    link.download = name;
    link.className = 'button';
    link.textContent = t('Save %(name)s', { name });
    link.dataset.sealedFile = name;
    item.append(link, ` ${label}`);
  } else {
    item.textContent = `${t('Saved: %(name)s', { name })} ${label}`;
  }
  list.append(item);
}

/**
 * The attachments chosen in a file input, refusing more than one envelope may hold.
 * @param {HTMLInputElement} input
 * @returns {File[]}
 */
function chosenFiles(input) {
  return input && input.files ? Array.from(input.files) : [];
}

/**
 * Show the problems of the form next to nothing but a summary that links to each question.
 * @param {import('./cases.js').Problem[]} problems
 */
function showProblems(problems) {
  const box = byId('sealer-problems');
  const list = box.querySelector('ul');
  list.replaceChildren();
  for (const problem of problems) {
    const def = defs.find((candidate) => candidate.name === problem.field);
    const item = document.createElement('li');
    const link = document.createElement('a');
    link.href = `#${problem.field}`;
    link.textContent = `${t(def ? def.label : problem.field)}: ${t(problem.message)}`;
    item.append(link);
    list.append(item);
  }
  box.hidden = problems.length === 0;
  if (problems.length) box.focus();
}

/**
 * A fresh receipt and what it derives, with the progress bar moving meanwhile; no receipt when
 * the file carries no receipt salt and cost.
 * @param {{salt: Uint8Array, opslimit: number, memlimit: number} | null} site
 * @param {Status} status
 * @returns {Promise<{receipt: string, reply: {lookup: Uint8Array, replyPublicKey: Uint8Array}}
 *   | {receipt: null, reply: undefined}>}
 */
async function makeReceipt(site, status) {
  if (!site) return { receipt: null, reply: undefined };
  status.say(t(MAKING_RECEIPT));
  status.progress(0, 1000);
  const receipt = newReceipt();
  const reply = await deriveReceipt(receipt, site, (fraction) => status.progress(fraction * 1000, 1000));
  return { receipt, reply };
}

/**
 * Show a case's receipt where the person sees it, with what it is for.
 * @param {HTMLElement} list
 * @param {string} receipt
 */
function showReceipt(list, receipt) {
  const item = document.createElement('li');
  const title = document.createElement('strong');
  title.textContent = t('Receipt of this case:');
  const number = document.createElement('p');
  number.className = 'receipt-number';
  number.dir = 'ltr';
  number.translate = false;
  const code = document.createElement('code');
  code.textContent = receipt;
  code.dataset.receipt = receipt;
  number.append(code);
  const note = document.createElement('p');
  note.textContent = t(KEEP_SAFE);
  item.append(title, number, note);
  list.append(item);
}

/**
 * Seal the case in the form, then offer or write the sealed file.
 * @param {HTMLFormElement} form
 * @param {Uint8Array} teamKey
 * @param {{salt: Uint8Array, opslimit: number, memlimit: number} | null} site
 * @param {Status} status
 */
async function sealForm(form, teamKey, site, status) {
  const byName = new Map(defs.map((def) => [def.name, def]));
  const fields = normaliseFields(fieldsFromControls(form.elements), byName);
  const problems = checkFields(fields, defs);
  showProblems(problems);
  if (problems.length) return;
  const files = chosenFiles(form.elements.namedItem('attachments'));
  if (files.length > MAX_FILES) {
    status.say(t('At most %(count)s files can be attached to one case. Nothing was saved.',
      { count: MAX_FILES }), true);
    return;
  }
  const big = files.find((file) => blobLength(file.size) > 8 ** 11 - 1);
  if (big) {
    status.say(explain(new Error('too large'), big.name), true);
    return;
  }
  const total = files.reduce((sum, file) => sum + file.size, 0);
  const caseId = newId();
  // The picker needs the click's user activation, so it is asked before any sealing work.
  const handle = await pickTarget(`CASE-${caseId}.sealed`);
  if (handle === 'cancelled') {
    status.say(t('Cancelled. Nothing was saved.'));
    return;
  }
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  let done = 0;
  try {
    const { receipt, reply } = await makeReceipt(site, status);
    status.say(t('Sealing the case on this computer…'));
    status.progress(0, total);
    const sealed = await sealCase({
      teamKey,
      caseId,
      locale: lang,
      fields,
      files,
      reply,
      onProgress: (bytes) => {
        done += bytes;
        status.progress(done, total);
      },
    });
    const name = handle ? handle.name : `CASE-${sealed.case}.sealed`;
    const url = await store(sealed, name, handle ? /** @type {any} */ (handle) : null);
    offer(byId('sealer-saved'), name, url, t('(attachments: %(count)s, %(size)s)',
      { count: files.length, size: megabytes(total) }));
    if (receipt) showReceipt(byId('sealer-saved'), receipt);
    status.say(url ? t('Sealed. Save the file with the button below, then upload it on the portal.')
      : t('Sealed and saved. Upload the file on the portal.'));
    byId('sealer-done').hidden = false;
    byId('sealer-done').focus();
  } catch (error) {
    // The console is local to this browser; the detail helps whoever supports the relay.
    console.error(error);
    status.say(explain(error, files.length === 1 ? files[0].name : ''), true);
  } finally {
    status.hideProgress();
    button.disabled = false;
  }
}

/**
 * Seal every case of a CSV file, each to its own sealed case file.
 * @param {Uint8Array} teamKey
 * @param {{salt: Uint8Array, opslimit: number, memlimit: number} | null} site
 * @param {Status} status
 */
async function sealCsv(teamKey, site, status) {
  const csvFile = chosenFiles(byId('csv-file'))[0];
  if (!csvFile) {
    status.say(t('Choose the CSV file of cases first.'), true);
    return;
  }
  const attached = new Map(chosenFiles(byId('csv-attachments')).map((file) => [file.name, file]));
  let cases;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(await csvFile.arrayBuffer());
    cases = casesFromCsv(text, defs, lang);
  } catch (error) {
    if (error instanceof CsvError) {
      const def = defs.find((candidate) => candidate.name === error.field);
      const where = def ? `${t(def.label)}: ` : '';
      status.say(`${t('Row %(row)s of the CSV file:', { row: error.row })} ${where}${t(error.message, error.values)} ${t('Nothing was saved.')}`, true);
    } else {
      status.say(t('The CSV file cannot be read as UTF-8 text. Nothing was saved.'), true);
    }
    return;
  }
  /** @type {Map<number, File[]>} */
  const filesOf = new Map();
  for (const item of cases) {
    const files = [];
    for (const path of item.attachments) {
      const file = attached.get(path.split(/[\\/]/).pop());
      if (!file) {
        status.say(t('Row %(row)s of the CSV file names the attachment %(name)s, which is not among the files chosen. Nothing was saved.',
          { row: item.row, name: path }), true);
        return;
      }
      files.push(file);
    }
    filesOf.set(item.row, files);
  }
  const total = cases.reduce((sum, item) => sum
    + filesOf.get(item.row).reduce((size, file) => size + file.size, 0), 0);
  const button = byId('csv-seal');
  button.disabled = true;
  let done = 0;
  /** @type {[string, string, string][]} */
  const ready = [];
  /** @type {string[]} */
  const receiptLines = [];
  try {
    for (const item of cases) {
      const files = filesOf.get(item.row);
      const { receipt, reply } = await makeReceipt(site, status);
      status.say(t('Sealing the case on this computer…'));
      status.progress(done, total);
      const sealed = await sealCase({
        teamKey,
        locale: item.locale,
        fields: item.fields,
        files,
        reply,
        onProgress: (bytes) => {
          done += bytes;
          status.progress(done, total);
        },
      });
      const name = `CASE-${sealed.case}.sealed`;
      const url = await store(sealed, name, null);
      ready.push([name, url, t('(row %(row)s, attachments: %(count)s)',
        { row: item.row, count: files.length })]);
      if (receipt) receiptLines.push(`${name}  ${receipt}  (row ${item.row})`);
    }
  } catch (error) {
    console.error(error);
    ready.forEach(([, url]) => URL.revokeObjectURL(url));
    status.say(explain(error), true);
    return;
  } finally {
    status.hideProgress();
    button.disabled = false;
  }
  // Offered only once every case of the file is sealed: a half-sealed CSV offers nothing.
  const list = byId('csv-saved');
  for (const [name, url, label] of ready) offer(list, name, url, label);
  if (receiptLines.length) {
    // The receipts go in one file the person saves, as `portal seal` writes receipts.txt.
    const text = `${receiptLines.join('\n')}\n`;
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
    offer(list, 'receipts.txt', url, t(RECEIPTS_NOTE));
  }
  status.say(t('Cases sealed: %(count)s. Save each file with its button, then upload them on the portal.',
    { count: ready.length }));
}

/**
 * Whether this file may seal: WebCrypto is there and the key is the one whose fingerprint the
 * page shows. Returns the key, or shows why not and returns null.
 * @returns {Uint8Array | null}
 */
function usableKey() {
  const refused = byId('sealer-refused');
  const cryptoApi = globalThis.crypto;
  if (!cryptoApi || !cryptoApi.subtle || typeof cryptoApi.getRandomValues !== 'function') {
    refused.dataset.t = 'This browser cannot seal here (it offers no WebCrypto to this page). Nothing can be sealed: use a current Firefox, Tor Browser or Chromium, or the offline command portal seal.';
    refused.hidden = false;
    return null;
  }
  const shown = byId('sealer-fingerprint').textContent.trim();
  try {
    const key = parsePublicKey(byId('sealer-key').dataset.teamKey);
    // tarHeader is cheap and throws on a broken build; a sealer that cannot write is refused.
    tarHeader('check', 0);
    if (fingerprint(key) === shown) return key;
  } catch {
    // Falls through to the refusal below.
  }
  refused.dataset.t = 'The key in this file does not match the fingerprint it shows: the file was changed. Do not use it. Get the sealer again from the portal, or ask the team.';
  refused.hidden = false;
  return null;
}

/**
 * The site's receipt salt and cost this file carries: null when it carries none (said on the
 * page), undefined when they are damaged (the file is refused).
 * @returns {{salt: Uint8Array, opslimit: number, memlimit: number} | null | undefined}
 */
function receiptSite() {
  try {
    const site = publishedSite(byId('sealer-key').dataset);
    if (!site) {
      const note = byId('sealer-receipt-note');
      note.dataset.t = NO_RECEIPT_LINES;
      note.hidden = false;
    }
    return site;
  } catch {
    const refused = byId('sealer-refused');
    refused.dataset.t = 'The key in this file does not match the fingerprint it shows: the file was changed. Do not use it. Get the sealer again from the portal, or ask the team.';
    refused.hidden = false;
    return undefined;
  }
}

/** Start the page: language, key check, then the forms. */
function start() {
  const chooser = byId('sealer-language');
  chooser.addEventListener('change', () => applyLanguage(chooser.value));
  applyLanguage(chooser.value);
  const teamKey = usableKey();
  const site = teamKey ? receiptSite() : null;
  applyLanguage(lang);
  if (!teamKey || site === undefined) return;
  const form = byId('sealer-form');
  const status = new Status();
  byId('sealer-app').hidden = false;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    sealForm(form, teamKey, site, status);
  });
  byId('sealer-another').addEventListener('click', () => {
    form.reset();
    showProblems([]);
    byId('sealer-done').hidden = true;
    status.line.hidden = true;
    form.querySelector('input, textarea').focus();
  });
  byId('csv-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sealCsv(teamKey, site, status);
  });
}

start();
