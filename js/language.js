/**
 * Warn before a language link loses what the person typed or a receipt shown only once.
 *
 * The language links of a form page carry `data-warn-language`: they open the same page in
 * another language, empty. When the report or follow-up form holds anything typed or chosen,
 * or when the receipt (shown once, never stored) has replaced the form, a click asks first. The
 * questions are pre-rendered by the server in the page's language (#msg-language-warning,
 * #msg-language-receipt), so this file holds no human language of its own. Without JavaScript
 * the page itself says to choose the language before starting.
 */

/** The forms whose content a language switch would lose. */
const FORM_IDS = ['report-form', 'followup-form'];

/**
 * Whether a form holds anything the person typed, chose or attached.
 * @param {HTMLFormElement} form
 * @returns {boolean}
 */
export function hasTypedContent(form) {
  for (const control of Array.from(form.elements)) {
    const element = /** @type {HTMLInputElement} */ (control);
    // Hidden bookkeeping (token, kept files) and the robots' honeypot are not the person's.
    if (element.disabled || element.name === 'website' || 'notField' in element.dataset) continue;
    const type = (element.type || '').toLowerCase();
    if (type === 'radio' || type === 'checkbox') {
      if (element.checked) return true;
    } else if (type === 'file') {
      if (element.files && element.files.length > 0) return true;
    } else if (type === 'text' || type === 'textarea' || type === 'search' || type === 'email'
      || type === 'select-one') {
      if (element.value.trim() !== '') return true;
    }
  }
  return false;
}

/**
 * The question to ask before leaving this page for another language, or '' to leave at once.
 * @param {Document} doc
 * @returns {string}
 */
export function languageWarning(doc) {
  const text = (id) => {
    const element = doc.getElementById(id);
    return element ? element.textContent.trim() : '';
  };
  if (doc.querySelector('main .receipt-number')) return text('msg-language-receipt');
  const filled = FORM_IDS.some((id) => {
    const form = doc.getElementById(id);
    return form instanceof HTMLFormElement && hasTypedContent(form);
  });
  return filled ? text('msg-language-warning') : '';
}

/**
 * Ask before a marked language link is followed, on this page and on any that replaces its main.
 * @param {Document} doc
 */
export function guardLanguageLinks(doc) {
  doc.addEventListener('click', (event) => {
    const target = event.target;
    if (!(target instanceof Element)) return;
    const link = target.closest('a[data-warn-language]');
    if (!link) return;
    const question = languageWarning(doc);
    // A page without the pre-rendered question leaves at once rather than ask in no language.
    if (question && !window.confirm(question)) event.preventDefault();
  });
}
