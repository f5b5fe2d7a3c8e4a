/**
 * Progressive enhancement of the report and follow-up forms: seal in the browser, then upload.
 *
 * Without this script, or where the browser cannot seal (no WebCrypto on a plain-http mirror, or
 * a key that does not parse), the form posts as usual and the server seals on arrival. The page
 * pre-renders every message this script shows, so it holds no human language of its own.
 */
import {
  buildManifest, collectFields, encryptBlob, fingerprint, importFileKey, newFileKey,
  parsePublicKey, sealManifest, toBase64,
} from './envelope.js';
import { guardLanguageLinks } from './language.js';
import { checkForm, linkSummary } from './problems.js';
import {
  Refused, SEALED_CHUNK, sendBlobs, withRetries,
} from './resumable.js';

/**
 * The element with this id, if the page has it.
 * @param {string} id
 * @returns {HTMLElement | null}
 */
function byId(id) {
  return document.getElementById(id);
}

/**
 * The pre-rendered message text of the element with this id.
 * @param {string} id
 * @returns {string}
 */
function message(id) {
  const element = byId(id);
  return element ? element.textContent.trim() : '';
}

/**
 * The value of a named control of the form, or '' when it has none.
 * @param {HTMLFormElement} form
 * @param {string} name
 * @returns {string}
 */
function controlValue(form, name) {
  const control = form.elements.namedItem(name);
  return control && 'value' in control ? control.value : '';
}

/**
 * Whether this browser can seal to the form's key; on any doubt the server seals instead.
 * @param {HTMLFormElement} form
 * @returns {Uint8Array | null} the team public key, or null
 */
function usableTeamKey(form) {
  // Browsers offer crypto.subtle in secure contexts only: onion services, HTTPS, loopback.
  const webCrypto = globalThis.crypto;
  if (!webCrypto || !webCrypto.subtle || !form.dataset.uploadsAction) return null;
  // A report gets its receipt before it is sealed; a page without the way to ask seals nothing.
  if (form.dataset.kind === 'report' && !form.dataset.prepareAction) return null;
  try {
    const key = parsePublicKey(form.dataset.teamKey || '');
    // The page shows this fingerprint; sealing to any other key would make it a lie.
    const shown = form.dataset.fingerprint;
    if (shown && fingerprint(key) !== shown.trim().toUpperCase()) return null;
    return key;
  } catch {
    return null;
  }
}

/**
 * Shows what is happening and how far along, in the form's status and progress elements.
 */
class StatusView {
  constructor() {
    this.status = byId('seal-status');
    this.progress = /** @type {HTMLProgressElement | null} */ (byId('seal-progress'));
    this.cancel = byId('seal-cancel');
  }

  /**
   * Show a text in the live region.
   * @param {string} text
   */
  say(text) {
    if (!this.status) return;
    this.status.textContent = text;
    this.status.hidden = false;
  }

  /**
   * Show done of total bytes; an unknown total shows an indeterminate bar.
   * @param {number} done
   * @param {number | null} total
   */
  bytes(done, total) {
    if (!this.progress) return;
    this.progress.hidden = false;
    if (total === null) {
      this.progress.removeAttribute('value');
      return;
    }
    this.progress.max = Math.max(total, 1);
    this.progress.value = total > 0 ? Math.min(done, total) : 1;
  }

  /**
   * Show or hide the cancel button and the progress bar for a piece of work.
   * @param {boolean} working
   */
  working(working) {
    if (this.cancel) this.cancel.hidden = !working;
    if (this.progress && !working) this.progress.hidden = true;
  }
}

/**
 * Replace the page's main element with that of the receipt page and move focus to its heading.
 * @param {Document} page
 * @param {HTMLFormElement} form the form that was sent
 * @returns {boolean} false when the response holds no main element
 */
function showReceiptPage(page, form) {
  const fresh = page.querySelector('main');
  const current = document.querySelector('main');
  if (!fresh || !current) return false;
  // The server never saw the answer to "is anyone in immediate danger": the page says it here.
  const urgent = form.querySelector('input[name="urgent"][value="yes"]');
  const note = fresh.querySelector('#urgent-note');
  if (note && urgent && /** @type {HTMLInputElement} */ (urgent).checked) note.hidden = false;
  current.replaceWith(document.adoptNode(fresh));
  if (page.title) document.title = page.title;
  const heading = fresh.querySelector('h1');
  if (heading) {
    if (!heading.hasAttribute('tabindex')) heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
  return true;
}

/**
 * The way resumable.js sends a request: XHR, so that progress counts the bytes really sent.
 * @param {AbortSignal} signal cancels the request in flight
 * @returns {import('./resumable.js').Send}
 */
function xhrSender(signal) {
  return (method, url, { headers = {}, body, onProgress }) => new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new Error('cancelled'));
      return;
    }
    const xhr = new XMLHttpRequest();
    const abort = () => xhr.abort();
    xhr.open(method, url);
    xhr.setRequestHeader('X-Requested-With', 'portal-sealed');
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    if (onProgress) xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => {
      signal.removeEventListener('abort', abort);
      resolve({
        status: xhr.status,
        header: (name) => xhr.getResponseHeader(name),
        text: xhr.responseText,
      });
    };
    xhr.onerror = () => {
      signal.removeEventListener('abort', abort);
      reject(new Error('network'));
    };
    xhr.ontimeout = xhr.onerror;
    xhr.onabort = () => reject(new Error('cancelled'));
    signal.addEventListener('abort', abort, { once: true });
    xhr.send(body === undefined ? null : body);
  });
}

/**
 * Wait `ms` milliseconds, or until the person cancels.
 * @param {AbortSignal} signal
 * @returns {(ms: number) => Promise<void>}
 */
function sleeper(signal) {
  return (ms) => new Promise((resolve, reject) => {
    const cancelled = () => {
      clearTimeout(timer);
      reject(new Error('cancelled'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', cancelled);
      resolve();
    }, ms);
    if (signal.aborted) cancelled();
    else signal.addEventListener('abort', cancelled, { once: true });
  });
}

/**
 * Upload a sealed envelope in resumable parts: create the upload, send every blob (going on
 * from where the server stands after each dropped connection), then finish it.
 * @param {HTMLFormElement} form
 * @param {Uint8Array} sealedManifest
 * @param {Blob[]} blobs
 * @param {StatusView} view
 * @param {AbortSignal} signal
 * @param {string} ticket a report's ticket from prepare(), '' for a follow-up
 * @returns {Promise<{status: number, page: Document}>} the server's last page; rejects with
 *   'network' (after many tries) or 'cancelled'
 */
async function upload(form, sealedManifest, blobs, view, signal, ticket) {
  const send = xhrSender(signal);
  const sleep = sleeper(signal);
  const waiting = (on) => view.say(message(on ? 'seal-msg-retrying' : 'seal-msg-uploading'));
  const pageOf = (answer) => ({
    status: answer.status,
    page: new DOMParser().parseFromString(answer.text, 'text/html'),
  });

  const body = new FormData();
  body.append('csrf_token', controlValue(form, 'csrf_token'));
  body.append('website', controlValue(form, 'website'));
  if (form.dataset.kind === 'follow-up') body.append('receipt', controlValue(form, 'receipt'));
  if (ticket) body.append('ticket', ticket);
  body.append('manifest', toBase64(sealedManifest));
  body.append('chunks', blobs.map((blob) => String(blob.size / SEALED_CHUNK)).join(','));
  const created = await withRetries(
    () => send('POST', form.dataset.uploadsAction || '', { body }), sleep, waiting);
  if (created.status !== 201) return pageOf(created);
  const { location, finish, part_chunks: partChunks } = JSON.parse(created.text);

  try {
    await sendBlobs({
      blobs, location, partBytes: partChunks * SEALED_CHUNK, send, sleep,
      onProgress: (done, total) => view.bytes(done, total), onWaiting: waiting,
    });
  } catch (error) {
    if (!(error instanceof Refused)) throw error;
    const page = document.implementation.createHTMLDocument('');
    const said = page.body.appendChild(page.createElement('p'));
    said.dataset.errorMessage = '';
    try {
      said.textContent = JSON.parse(error.answer.text).error;
    } catch {
      said.textContent = '';
    }
    return { status: error.answer.status, page };
  }
  const done = new FormData();
  if (ticket) done.append('ticket', ticket);
  return pageOf(await withRetries(() => send('POST', finish, { body: done }), sleep, waiting));
}

/**
 * Ask the server for a new report's reply public key and its receipt, the receipt sealed in a
 * ticket that only the server can open. The ticket lives in memory until the upload carries it
 * back; the receipt is shown only once the report is stored.
 * @param {HTMLFormElement} form
 * @param {AbortSignal} signal
 * @returns {Promise<{ticket: string, replyKey: Uint8Array} | {page: Document}>} the ticket, or
 *   the page that says why there is none; rejects with 'network' or 'cancelled'
 */
async function prepare(form, signal) {
  const body = new FormData();
  body.append('csrf_token', controlValue(form, 'csrf_token'));
  let response;
  let text;
  try {
    response = await fetch(form.dataset.prepareAction || '', {
      method: 'POST',
      body,
      signal,
      cache: 'no-store',
      headers: { 'X-Requested-With': 'portal-sealed' },
    });
    text = await response.text();
  } catch {
    throw new Error(signal.aborted ? 'cancelled' : 'network');
  }
  if (response.ok && /^application\/json\b/.test(response.headers.get('Content-Type') || '')) {
    const answer = JSON.parse(text);
    if (answer && typeof answer.ticket === 'string' && answer.ticket) {
      return { ticket: answer.ticket, replyKey: parsePublicKey(answer.reply_public_key) };
    }
  }
  return { page: new DOMParser().parseFromString(text, 'text/html') };
}

/**
 * Say why the server refused, from its page; keep the renewed form token it may hold.
 * @param {Document} page
 * @param {HTMLFormElement} form
 * @param {StatusView} view
 */
function showRefusal(page, form, view) {
  const error = page.querySelector('[data-error-message]');
  const text = error ? error.textContent.trim() : '';
  view.say(text || message('seal-msg-failed'));
  // An expired form token comes back renewed on the error page; keep it for the next try.
  const token = page.querySelector('input[name="csrf_token"]');
  const current = form.elements.namedItem('csrf_token');
  if (token && token.value && current && 'value' in current) current.value = token.value;
}

/**
 * Seal and send one submission of the form; resolves once the outcome is shown.
 * @param {HTMLFormElement} form
 * @param {Uint8Array} teamKey
 * @param {StatusView} view
 * @param {AbortSignal} signal cancels the sealing and the upload
 * @returns {Promise<boolean>} true when the receipt page replaced the form
 */
async function submitSealed(form, teamKey, view, signal) {
  const input = form.elements.namedItem('attachments');
  /** @type {File[]} */
  const files = input && input.files ? Array.from(input.files) : [];
  const total = files.reduce((sum, file) => sum + file.size, 0);

  view.say(message('seal-msg-sealing'));
  view.bytes(0, total);
  // Every try asks for a fresh ticket, so a ticket is never sent twice.
  let ticket = '';
  let replyPublicKey;
  if (form.dataset.kind !== 'follow-up') {
    const prepared = await prepare(form, signal);
    if ('page' in prepared) {
      showRefusal(prepared.page, form, view);
      return false;
    }
    ({ ticket, replyKey: replyPublicKey } = prepared);
  }
  const rawKeys = files.map(() => newFileKey());
  let sealedManifest;
  let cryptoKeys;
  try {
    cryptoKeys = await Promise.all(rawKeys.map(importFileKey));
    const manifest = buildManifest({
      kind: form.dataset.kind === 'follow-up' ? 'follow-up' : 'report',
      locale: form.dataset.locale || document.documentElement.lang || '',
      fields: collectFields(form),
      files: files.map((file, index) => ({
        name: file.name, type: file.type, size: file.size, key: rawKeys[index],
      })),
      replyPublicKey,
    });
    sealedManifest = sealManifest(manifest, teamKey);
  } finally {
    // From here on only the non-extractable CryptoKeys and the sealed manifest hold the keys.
    rawKeys.forEach((key) => key.fill(0));
  }

  /** @type {Blob[]} */
  const blobs = [];
  let before = 0;
  for (let index = 0; index < files.length; index += 1) {
    const done = before;
    blobs.push(await encryptBlob(files[index], cryptoKeys[index],
      (bytes) => view.bytes(done + bytes, total), signal));
    before += files[index].size;
  }
  if (signal.aborted) throw new Error('cancelled');

  view.say(message('seal-msg-uploading'));
  view.bytes(0, blobs.reduce((sum, blob) => sum + blob.size, 0));
  const { status, page } = await upload(form, sealedManifest, blobs, view, signal, ticket);
  if (status === 200 && showReceiptPage(page, form)) return true;
  showRefusal(page, form, view);
  return false;
}

/**
 * Take over the submit of one form, if this browser can seal to its key.
 * @param {HTMLFormElement} form
 */
function enhance(form) {
  const teamKey = usableTeamKey(form);
  if (!teamKey) {
    const fallback = byId('seal-fallback');
    if (fallback) fallback.hidden = false;
    return;
  }
  const protection = byId('seal-protection');
  if (protection) protection.hidden = false;

  const view = new StatusView();
  // A button without a type attribute is a submit button too; its .type says so.
  const submitButtons = () => Array.from(form.elements)
    .filter((element) => element.type === 'submit');
  /** @type {(() => void) | null} */
  let cancel = null;

  if (view.cancel) {
    view.cancel.addEventListener('click', () => {
      if (cancel) cancel();
    });
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (cancel) return;
    if (!checkForm(form)) return;

    const controller = new AbortController();
    cancel = () => controller.abort();
    submitButtons().forEach((button) => { button.disabled = true; });
    form.setAttribute('aria-busy', 'true');
    view.working(true);
    let replaced = false;
    try {
      replaced = await submitSealed(form, teamKey, view, controller.signal);
    } catch (error) {
      if (controller.signal.aborted || (error && error.message === 'cancelled')) {
        view.say(message('seal-msg-cancelled'));
      } else if (error && error.message === 'network') {
        view.say(message('seal-msg-network'));
      } else {
        view.say(message('seal-msg-failed'));
      }
    } finally {
      cancel = null;
      if (!replaced) {
        view.working(false);
        form.removeAttribute('aria-busy');
        submitButtons().forEach((button) => { button.disabled = false; });
      }
    }
  });
}

/**
 * On the key page: show the fingerprint of the key this script seals to, computed here from
 * the key itself, so a person can compare it with the one the server printed and with the one
 * published elsewhere.
 */
function showSealingFingerprint() {
  const source = byId('team-key');
  const target = byId('script-fingerprint');
  const line = byId('script-fingerprint-line');
  if (!source || !target || !line) return;
  try {
    target.textContent = fingerprint(parsePublicKey(source.dataset.teamKey || ''));
    line.hidden = false;
  } catch {
    // A key that does not parse is one the forms will not seal to either: show nothing.
  }
}

/**
 * Empty every form of the page: text, choices, lists and chosen files.
 */
function emptyForms() {
  for (const form of Array.from(document.forms)) {
    for (const control of Array.from(form.elements)) {
      const element = /** @type {HTMLInputElement} */ (control);
      const type = (element.type || '').toLowerCase();
      if (type === 'hidden' || type === 'submit' || type === 'button') continue;
      if (type === 'radio' || type === 'checkbox') element.checked = false;
      else if (element.tagName === 'SELECT') /** @type {any} */ (element).selectedIndex = 0;
      else element.value = '';
    }
  }
}

/**
 * "Leave quickly" empties the forms, then replaces this page in the tab's history, so that the
 * Back button brings back neither the page nor what was typed. Without the script it is an
 * ordinary link (and the form page says what Back does then).
 */
function leaveWithoutHistory() {
  for (const link of document.querySelectorAll('a.leave')) {
    link.addEventListener('click', (event) => {
      event.preventDefault();
      emptyForms();
      window.location.replace(link.href);
    });
  }
}

/** Find the portal's forms on the page and enhance each; guard the language links. */
function start() {
  guardLanguageLinks(document);
  leaveWithoutHistory();
  linkSummary(document);
  showSealingFingerprint();
  for (const id of ['report-form', 'followup-form']) {
    const form = byId(id);
    if (form instanceof HTMLFormElement) enhance(form);
  }
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', start);
} else {
  start();
}
