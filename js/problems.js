/**
 * Check a form before it is sealed, and show what is missing as the server would.
 *
 * The browser's own messages come one bubble at a time, in the browser's language. Sealed in the
 * browser, a report never reaches the server's check, so this applies the same rules (required
 * answers, months and numbers, lengths) and shows the portal's own summary: a list of links at
 * the top, the problem next to each question, focus on the summary, and "There is a problem" in
 * the page title. Every word comes from elements the server pre-rendered in the page's language
 * (#msg-*, `data-summary-heading`, the questions' labels, `data-pattern-message`).
 */

/**
 * The pre-rendered text of the element with this id.
 * @param {string} id
 * @returns {string}
 */
function text(id) {
  const element = document.getElementById(id);
  return element ? element.textContent.trim() : '';
}

/**
 * @typedef {{container: HTMLElement, control: HTMLElement, id: string, message: string}} Problem
 */

/**
 * Whether a `data-required-when="name=value"` condition holds in the form.
 * @param {HTMLFormElement} form
 * @param {string | undefined} condition
 * @returns {boolean}
 */
function conditionHolds(form, condition) {
  if (!condition) return false;
  const [name, value] = condition.split('=');
  const chosen = form.querySelector(`input[name="${name}"]:checked`);
  return Boolean(chosen && /** @type {HTMLInputElement} */ (chosen).value === value);
}

/**
 * The problems of one question, as the server's check would find them.
 * @param {HTMLFormElement} form
 * @param {HTMLElement} container a fieldset of choices or a div around one control
 * @returns {string} the message, or '' when the answer is fine
 */
function problemOf(form, container) {
  if (container.tagName === 'FIELDSET') {
    const inputs = Array.from(container.querySelectorAll('input'));
    const required = inputs.some((input) => input.required)
      || conditionHolds(form, container.dataset.requiredWhen);
    if (required && !inputs.some((input) => input.checked)) return text('msg-answer');
    return '';
  }
  const control = /** @type {HTMLInputElement} */ (container.querySelector('input, textarea, select'));
  if (!control) return '';
  const value = control.value;
  const required = control.required || conditionHolds(form, control.dataset.requiredWhen);
  if (required && (control.required ? value.trim() === '' : value === '')) {
    return control.tagName === 'SELECT' ? text('msg-answer') : text('msg-fill');
  }
  if (value === '') return '';
  const pattern = control.getAttribute('pattern');
  if (pattern && !new RegExp(`^(?:${pattern})$`).test(value)) {
    return control.dataset.patternMessage || text('msg-fill');
  }
  if (control.dataset.order && outOfOrder(form, control, control.dataset.order)) {
    return control.dataset.orderMessage || text('msg-fill');
  }
  const limit = Number(control.getAttribute('maxlength') || 0);
  // Line breaks count as one character on the server, which sees LF where a textarea had CR LF.
  if (limit && value.replace(/\r\n?/g, '\n').length > limit) return text('msg-too-long');
  return '';
}

/**
 * Whether a month or a count passes the other answer its `data-order` names ("<=name" or
 * ">=name"), as answers.check says: only when that answer is given and well formed.
 * @param {HTMLFormElement} form
 * @param {HTMLInputElement} control already known to match its own pattern
 * @param {string} order
 * @returns {boolean}
 */
function outOfOrder(form, control, order) {
  const other = form.elements.namedItem(order.slice(2));
  if (!(other instanceof HTMLInputElement) || other.value === '') return false;
  const pattern = other.getAttribute('pattern') || '';
  if (!new RegExp(`^(?:${pattern})$`).test(other.value)) return false;
  const numeric = control.inputMode === 'numeric';
  const mine = numeric ? Number(control.value) : control.value;
  const theirs = numeric ? Number(other.value) : other.value;
  return order.startsWith('<=') ? mine > theirs : mine < theirs;
}

/**
 * The words of a question's label, without its "(required)" or "(optional)" marker.
 * @param {HTMLElement} container
 * @returns {string}
 */
function labelOf(container) {
  const label = container.querySelector('legend, label');
  const first = label ? label.firstChild : null;
  return first && first.nodeType === Node.TEXT_NODE ? (first.nodeValue || '').trim() : '';
}

/**
 * Every problem of the form, in the order of the questions.
 * @param {HTMLFormElement} form
 * @returns {Problem[]}
 */
export function findProblems(form) {
  /** @type {Problem[]} */
  const found = [];
  for (const container of form.querySelectorAll('[data-q]')) {
    const element = /** @type {HTMLElement} */ (container);
    const message = problemOf(form, element);
    if (!message) continue;
    const control = /** @type {HTMLElement} */ (
      element.querySelector('input:not([type=hidden]), textarea, select'));
    const id = element.id || (control && control.id) || '';
    found.push({ container: element, control, id, message });
  }
  return found;
}

/**
 * One line of the summary: the label, then the problem, without a colon after a question mark.
 * @param {string} label
 * @param {string} message
 * @returns {string}
 */
export function problemLine(label, message) {
  const trimmed = label.trim();
  if (/[?؟？:：.。]$/.test(trimmed)) return `${trimmed} ${message}`;
  const template = text('msg-line') || '{label}: {problem}';
  return template.replace('{label}', trimmed).replace('{problem}', message);
}

/**
 * Bring a question into view with its label, and put the keyboard on its first control.
 * @param {string} id
 */
function goTo(id) {
  const target = document.getElementById(id);
  if (!target) return;
  const container = /** @type {HTMLElement} */ (target.closest('[data-q]') || target);
  const control = /** @type {HTMLElement | null} */ (target.matches('input, textarea, select')
    ? target : target.querySelector('input, textarea, select'));
  const label = container.querySelector('legend, label') || container;
  label.scrollIntoView({ block: 'start' });
  if (control) control.focus({ preventScroll: true });
}

/**
 * Make the links of a problem summary land on the question with its label in view.
 * @param {ParentNode} root
 */
export function linkSummary(root) {
  for (const link of root.querySelectorAll('.error-summary a[href^="#"]')) {
    link.addEventListener('click', (event) => {
      event.preventDefault();
      goTo(decodeURIComponent(link.getAttribute('href').slice(1)));
    });
  }
}

/**
 * Remove what an earlier check showed.
 * @param {HTMLFormElement} form
 */
function clearShown(form) {
  for (const old of document.querySelectorAll('.error-summary[data-from-script]')) old.remove();
  for (const old of form.querySelectorAll('[data-q] .error')) {
    const container = old.closest('[data-q]');
    if (container) {
      container.classList.remove('has-error');
      for (const control of container.querySelectorAll('[aria-invalid]')) {
        control.removeAttribute('aria-invalid');
      }
      const described = container.tagName === 'FIELDSET'
        ? container : container.querySelector('input, textarea, select');
      if (described) {
        const ids = (described.getAttribute('aria-describedby') || '').split(' ')
          .filter((id) => id && id !== old.id);
        if (ids.length) described.setAttribute('aria-describedby', ids.join(' '));
        else described.removeAttribute('aria-describedby');
      }
    }
    old.remove();
  }
}

/**
 * Show the problems: the summary before the form, each message next to its question.
 * @param {HTMLFormElement} form
 * @param {Problem[]} problems
 */
function show(form, problems) {
  // The server's summary (from an earlier post) gives way to the one that is true now.
  for (const old of document.querySelectorAll('.error-summary')) old.remove();
  const summary = document.createElement('div');
  summary.className = 'error-summary';
  summary.setAttribute('role', 'alert');
  summary.setAttribute('tabindex', '-1');
  summary.dataset.fromScript = '';
  const heading = document.createElement('h2');
  const headings = document.querySelectorAll('[data-summary-heading]');
  const count = Math.min(problems.length, headings.length);
  heading.textContent = count ? headings[count - 1].textContent.trim() : '';
  const kept = document.createElement('p');
  kept.textContent = text('msg-summary-kept');
  const list = document.createElement('ul');
  for (const problem of problems) {
    const item = document.createElement('li');
    const link = document.createElement('a');
    link.href = `#${problem.id}`;
    link.textContent = problemLine(labelOf(problem.container), problem.message);
    item.append(link);
    list.append(item);

    const error = document.createElement('p');
    error.className = 'error';
    error.id = `${problem.id}-error`;
    error.dataset.fromScript = '';
    const prefix = document.createElement('span');
    prefix.className = 'visually-hidden';
    prefix.textContent = text('msg-error');
    error.append(prefix, ` ${problem.message}`);
    const container = problem.container;
    container.classList.add('has-error');
    const label = container.querySelector('legend, label');
    if (label) label.after(error);
    const described = container.tagName === 'FIELDSET' ? container : problem.control;
    if (described) {
      const ids = (described.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
      described.setAttribute('aria-describedby', [...ids, error.id].join(' '));
      if (described !== container) described.setAttribute('aria-invalid', 'true');
    }
  }
  summary.append(heading, kept, list);
  form.before(summary);
  linkSummary(summary);
  const title = text('msg-problem-title');
  if (title) document.title = title;
  summary.focus();
}

/**
 * Check the form; show the problems and return false when there are any.
 * @param {HTMLFormElement} form
 * @returns {boolean}
 */
export function checkForm(form) {
  clearShown(form);
  const problems = findProblems(form);
  if (problems.length) show(form, problems);
  return problems.length === 0;
}
