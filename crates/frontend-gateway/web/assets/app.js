// The web app: one ES module for every page, dispatched on <body data-page="...">.
//
// It talks only to the same origin: /api/auth/* (the gateway) and /api/* (proxied to the
// backend). Every user-provided string reaches the DOM through textContent or attributes,
// never through innerHTML. No inline script or style anywhere, so the strict CSP holds.
//
// For tests: <body data-ready="true"> is set once a page has finished its first load.

const ROLES = ['owner', 'admin', 'member', 'viewer'];
const RANK = { owner: 3, admin: 2, member: 1, viewer: 0 };
const ROLE_LABEL = { owner: 'Owner', admin: 'Admin', member: 'Member', viewer: 'Viewer' };
const HOME = '/workspaces';

// ---------------------------------------------------------------------------------------
// API

/** A failed API call, carrying the RFC 9457 problem body when there was one. */
class ApiError extends Error {
  constructor(status, problem) {
    const detail =
      (problem && (problem.detail || problem.title)) ||
      (status === 0
        ? 'Could not reach the server. Check your connection and try again.'
        : `The request failed (${status}).`);
    super(detail);
    this.status = status;
    this.detail = detail;
    /** Whether the server said what went wrong (a problem body, not a bare `{url}`). */
    this.explained = Boolean(problem && (problem.detail || problem.title));
    this.fields = Array.isArray(problem && problem.errors) ? problem.errors : [];
    /** The body as answered (a problem's extra members, a `{url}`), or null. */
    this.body = problem && typeof problem === 'object' ? problem : null;
  }
}

/** `/signin?callbackUrl=<this page>`: where a signed-out visitor goes. */
function signinUrl() {
  return `/signin?callbackUrl=${encodeURIComponent(location.pathname + location.search)}`;
}

/** A promise that never settles: used once the page is navigating away. */
const never = () => new Promise(() => {});

/**
 * fetch() with JSON in and out (or a form in, when `body` is URLSearchParams: what next-auth's
 * form endpoints read). Resolves with the parsed body (null when empty); rejects with an
 * ApiError. A 401 outside /api/auth/* means the session is gone: go and sign in again.
 */
async function api(method, path, body) {
  const form = body instanceof URLSearchParams;
  const init = {
    method,
    credentials: 'same-origin',
    headers: {
      'Content-Type': form ? 'application/x-www-form-urlencoded' : 'application/json',
      Accept: 'application/json',
    },
  };
  if (body !== undefined) init.body = form ? body.toString() : JSON.stringify(body);
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, null);
  }
  const text = await res.text().catch(() => '');
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.status === 401 && !path.startsWith('/api/auth/')) {
    location.assign(signinUrl());
    return never();
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

const wsPath = (id) => `/api/workspaces/${encodeURIComponent(id)}`;
const invitationPath = (id) => `/api/invitations/${encodeURIComponent(id)}`;

/** The items of a list answer (`{items: [...]}`; a bare array is taken too). */
const itemsOf = (page) => (Array.isArray(page) ? page : Array.isArray(page && page.items) ? page.items : []);
/** The cursor of the next page of a list answer, or null. */
const nextCursor = (page) => (page && (page.next_cursor || page.nextCursor)) || null;

// ---------------------------------------------------------------------------------------
// DOM helpers

const $ = (id) => document.getElementById(id);

/** Builds an element: el('button', {type: 'button', dataset: {action: 'x'}}, 'text', child). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'className') node.className = value;
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child); // strings become text nodes: never parsed as HTML
  }
  return node;
}

/** A visually hidden span: extra words for screen readers (e.g. which row a button acts on). */
const srOnly = (text) => el('span', { className: 'visually-hidden', text });

function announce(message) {
  const node = $('announce');
  if (!node) return;
  node.textContent = message;
}

function fieldError(input) {
  return input && input.id ? $(`${input.id}-error`) : null;
}

function clearErrors(form, errorEl) {
  if (errorEl) errorEl.textContent = '';
  if (!form) return;
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  for (const node of form.querySelectorAll('.field-error')) node.textContent = '';
}

/** Shows an error next to the form that caused it: `detail`, plus per-field messages. */
function showError(form, errorEl, err) {
  if (!(err instanceof ApiError)) {
    console.error(err);
    err = new ApiError(-1, { detail: 'Something went wrong in this page. Reload and try again.' });
  }
  if (errorEl) errorEl.textContent = err.detail;
  let first = null;
  for (const { field, message } of err.fields) {
    const input = form && field ? form.elements.namedItem(field) : null;
    const target = fieldError(input);
    if (!target) continue;
    const label = input.labels && input.labels[0] ? input.labels[0].textContent.trim() : field;
    target.textContent = `${label} ${message}`;
    input.setAttribute('aria-invalid', 'true');
    first = first || input;
  }
  if (first) first.focus();
}

/**
 * Wires a form: prevents the native submit, clears old errors, disables the submit button
 * while the request runs and shows any error next to the form.
 */
function handleForm(form, errorEl, onSubmit) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (form.getAttribute('aria-busy') === 'true') return;
    clearErrors(form, errorEl);
    const buttons = form.querySelectorAll('button');
    form.setAttribute('aria-busy', 'true');
    for (const b of buttons) b.disabled = true;
    try {
      await onSubmit(new FormData(form));
    } catch (err) {
      showError(form, errorEl, err);
    } finally {
      form.removeAttribute('aria-busy');
      for (const b of buttons) b.disabled = false;
    }
  });
}

/** Runs `action` with `button` disabled; shows a failure in `errorEl`. */
async function withButton(button, errorEl, action) {
  if (errorEl) errorEl.textContent = '';
  button.disabled = true;
  try {
    await action();
  } catch (err) {
    showError(null, errorEl, err);
  } finally {
    button.disabled = false;
  }
}

function ready() {
  document.body.dataset.ready = 'true';
}

// ---------------------------------------------------------------------------------------
// Sign-in and registration

/** The `callbackUrl` query parameter when it is a same-origin path, else the workspace list. */
function callbackTarget() {
  const raw = new URLSearchParams(location.search).get('callbackUrl');
  // A single leading slash only: `//host` and `/\host` are other origins to a browser.
  if (!raw || raw[0] !== '/' || raw[1] === '/' || raw[1] === '\\') return HOME;
  // eslint-disable-next-line no-control-regex
  if (/[\\\u0000-\u001f\u007f]/.test(raw)) return HOME;
  let url;
  try {
    url = new URL(raw, location.origin);
  } catch {
    return HOME;
  }
  if (url.origin !== location.origin) return HOME;
  if (url.pathname === '/signin' || url.pathname === '/register') return HOME;
  return url.pathname + url.search + url.hash;
}

/** Keeps `callbackUrl` on the link between sign-in and register. */
function carryCallback(link) {
  const raw = new URLSearchParams(location.search).get('callbackUrl');
  if (link && raw) link.search = `?callbackUrl=${encodeURIComponent(raw)}`;
}

// ---------------------------------------------------------------------------------------
// Sign-in methods (GET /api/auth/providers)

/** What failed next-auth flows say in `/signin?error=<code>`; anything else is `Default`. */
const SIGNIN_ERRORS = new Map([
  ['OAuthSignin', 'Could not start signing in with that provider. Try again, or choose another way to sign in.'],
  ['OAuthCallback', 'The provider did not sign you in. Try again, or choose another way to sign in.'],
  ['OAuthCreateAccount', 'Could not create an account from that provider. Try again, or choose another way to sign in.'],
  [
    'OAuthAccountNotLinked',
    'This email is already used by another account. Sign in the way you did before, then link this provider from your account page.',
  ],
  ['Callback', 'Something went wrong while signing you in. Try again.'],
  ['AccessDenied', 'You are not allowed to sign in with this account.'],
  ['CredentialsSignin', 'Sign in failed. Check that your email and password are correct.'],
  ['SessionRequired', 'Sign in to see that page.'],
  ['EmailNotVerified', 'Confirm your email first: we sent you a link. Open it, then sign in.'],
  ['Verification', 'That link has expired or was already used. Ask for a new one.'],
  ['EmailSignin', 'Could not send the email. Try again in a moment.'],
  ['Default', 'Could not sign you in. Try again.'],
]);

/** The readable message for `?error=` on this page, or '' when there is none. */
function signinErrorMessage() {
  const code = new URLSearchParams(location.search).get('error');
  if (code === null) return '';
  return SIGNIN_ERRORS.get(code) || SIGNIN_ERRORS.get('Default');
}

const RECENT_SIGNIN =
  'For your security this needs a recent sign-in (under 10 minutes). Sign out, sign in again, then try once more.';

/** `GET /api/auth/providers` as a list: `[{id, name, type}]`, credentials included. */
async function loadProviders() {
  const listing = await api('GET', '/api/auth/providers');
  return Object.values(listing || {}).filter((p) => p && typeof p.id === 'string');
}

/** The identity providers (everything but email and password, and sign-in links by email). */
const identityProviders = (providers) => providers.filter((p) => p.type !== 'credentials' && p.type !== 'email');
const hasCredentials = (providers) => providers.some((p) => p.type === 'credentials');
/** The sign-in links provider (`type: "email"`), or undefined. */
const emailProvider = (providers) => providers.find((p) => p.type === 'email');

/**
 * After a mail was sent (`202 {url}`): the "check your email" page. The answered URL is
 * `<origin>/api/auth/verify-request?...`, which redirects to `/verify-request?...`: the page
 * is opened directly. Anything unexpected falls back to the page for `type`.
 */
function goToCheckEmail(answer, type, provider = 'credentials') {
  let target = `/verify-request?${new URLSearchParams({ provider, type })}`;
  try {
    const url = new URL(answer && answer.url, location.origin);
    if (url.origin === location.origin && /^\/(api\/auth\/)?verify-request$/.test(url.pathname)) {
      target = `/verify-request${url.search}`;
    }
  } catch {
    // keep the fallback
  }
  location.assign(target);
  return never();
}

/** Whether a refused sign-in is the "confirm your email first" one (a 403). */
function isEmailNotVerified(err) {
  if (!(err instanceof ApiError) || err.status !== 403 || !err.body) return false;
  const { body } = err;
  const said = [body.url, body.error, body.code, body.type].filter((v) => typeof v === 'string');
  return said.some((v) => v.includes('EmailNotVerified')) || /verif|confirm/i.test(err.detail);
}

/** A list item with the button for provider `p`: "<verb> <name>", data-testid `<prefix>-<id>`. */
function providerItem(p, verb, prefix) {
  return el(
    'li',
    {},
    el(
      'button',
      { type: 'button', className: 'provider-button', dataset: { provider: p.id, testid: `${prefix}-${p.id}` } },
      `${verb} ${p.name || p.id}`,
    ),
  );
}

/**
 * Starts a sign-in with identity provider `id` (or, with `link`, links it to the signed-in
 * user): a form POST answered with `{url}`, then the browser goes there. A plain form post
 * would be a 302 to another origin, which the page's CSP (`form-action 'self'`) blocks.
 */
async function startProviderSignIn(id, callbackUrl, link = false) {
  const { csrfToken } = await api('GET', '/api/auth/csrf');
  const form = new URLSearchParams({ csrfToken, callbackUrl, json: 'true' });
  if (link) form.set('link', 'true');
  let answer;
  try {
    answer = await api('POST', `/api/auth/signin/${encodeURIComponent(id)}`, form);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 403) throw err;
    if (!err.explained) throw new ApiError(403, { detail: 'This page has expired. Reload it and try again.' });
    throw link ? new ApiError(403, { detail: RECENT_SIGNIN }) : err;
  }
  if (!answer || typeof answer.url !== 'string') throw new ApiError(-1, null);
  location.assign(answer.url);
  return never();
}

// ---------------------------------------------------------------------------------------
// Sign-in and registration pages

/** What `/signin?reset=1`, `?verified=1` and `?deleted=1` say, or ''. */
function signinNotice() {
  const query = new URLSearchParams(location.search);
  if (query.get('reset') === '1') return 'Your password was changed. Sign in with the new one.';
  if (query.get('verified') === '1') return 'Email confirmed. You can sign in now.';
  if (query.get('deleted') === '1') return 'Your account was deleted.';
  return '';
}

function signinPage() {
  carryCallback($('register-link'));
  const authError = $('auth-error');
  authError.textContent = signinErrorMessage();
  $('signin-notice').textContent = signinNotice();

  // "Confirm your email first": the form that mails the link again.
  const resendSection = $('resend-section');
  const showResend = (email) => {
    if (email) $('resend-email').value = email;
    resendSection.hidden = false;
  };
  if (new URLSearchParams(location.search).get('error') === 'EmailNotVerified') showResend('');
  handleForm($('resend-form'), $('resend-error'), async (data) => {
    const answer = await api('POST', '/api/auth/resend-verification', {
      email: String(data.get('email') || '').trim(),
    });
    return goToCheckEmail(answer, 'email');
  });

  const form = $('signin-form');
  handleForm(form, $('signin-error'), async (data) => {
    authError.textContent = '';
    const email = String(data.get('email') || '').trim();
    try {
      await api('POST', '/api/auth/signin', { email, password: String(data.get('password') || '') });
    } catch (err) {
      if (!isEmailNotVerified(err)) throw err;
      authError.textContent = SIGNIN_ERRORS.get('EmailNotVerified');
      showResend(email);
      $('resend-submit').focus();
      return;
    }
    location.assign(callbackTarget());
    return never();
  });

  // A sign-in link by email: a next-auth form post answered with `{url}` (check your email).
  handleForm($('email-signin-form'), $('email-signin-error'), async (data) => {
    authError.textContent = '';
    const { csrfToken } = await api('GET', '/api/auth/csrf');
    const body = new URLSearchParams({
      email: String(data.get('email') || '').trim(),
      csrfToken,
      callbackUrl: callbackTarget(),
      json: 'true',
    });
    let answer;
    try {
      answer = await api('POST', `/api/auth/signin/${encodeURIComponent($('email-section').dataset.provider || 'email')}`, body);
    } catch (err) {
      if (err instanceof ApiError && err.status === 403 && !err.explained) {
        throw new ApiError(403, { detail: 'This page has expired. Reload it and try again.' });
      }
      throw err;
    }
    return goToCheckEmail(answer, 'email', 'email');
  });

  const list = $('provider-list');
  const providerError = $('provider-error');
  list.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-provider]');
    if (!button) return;
    authError.textContent = '';
    withButton(button, providerError, () => startProviderSignIn(button.dataset.provider, callbackTarget()));
  });

  function render(providers) {
    const others = identityProviders(providers);
    const credentials = hasCredentials(providers);
    const email = emailProvider(providers);
    list.replaceChildren(...others.map((p) => providerItem(p, 'Continue with', 'provider')));
    $('provider-section').hidden = others.length === 0;
    $('email-section').hidden = !email;
    if (email) $('email-section').dataset.provider = email.id;
    $('email-divider').hidden = !(email && others.length);
    $('signin-divider').hidden = !(credentials && (others.length || email));
    $('credentials-section').hidden = !credentials;
    $('no-signin-methods').hidden = credentials || others.length > 0 || Boolean(email);
  }

  /** After a failed flow, a signed-in visitor (a link that failed) is told how to go back. */
  async function showSignedIn() {
    const session = await api('GET', '/api/auth/session').catch(() => null);
    if (!session || !session.user) return;
    $('signed-in-email').textContent = session.user.email || '';
    $('signed-in-hint').hidden = false;
  }

  (async () => {
    if (authError.textContent) await showSignedIn();
    try {
      render(await loadProviders());
    } catch (err) {
      // Email and password still work as they always did; say what is missing.
      console.error(err);
      render([{ id: 'credentials', type: 'credentials' }]);
      providerError.textContent = 'Could not load the other ways to sign in. Reload the page to try again.';
    }
    $('signin-status').textContent = '';
    ready();
  })();
}

function registerPage() {
  carryCallback($('signin-link'));
  carryCallback($('provider-signin-link'));
  const form = $('register-form');
  handleForm(form, $('register-error'), async (data) => {
    // 202 whether or not the address has an account: the mail tells the rest.
    const answer = await api('POST', '/api/auth/register', {
      email: String(data.get('email') || '').trim(),
      password: String(data.get('password') || ''),
      name: String(data.get('name') || '').trim(),
    });
    return goToCheckEmail(answer, 'email');
  });

  (async () => {
    let credentials = true; // when the list cannot be had, the form answers for itself
    try {
      credentials = hasCredentials(await loadProviders());
    } catch (err) {
      console.error(err);
    }
    form.hidden = !credentials;
    $('signin-switch').hidden = !credentials;
    $('register-by-provider').hidden = credentials;
    $('register-status').textContent = '';
    ready();
  })();
}

/** `/forgot-password`: an email, then the "check your email" page. */
function forgotPasswordPage() {
  handleForm($('forgot-form'), $('forgot-error'), async (data) => {
    const answer = await api('POST', '/api/auth/forgot-password', {
      email: String(data.get('email') || '').trim(),
    });
    return goToCheckEmail(answer, 'reset');
  });
  ready();
}

/** `/verify-request?provider=...&type=email|reset`: "check your email", said for the flow. */
function verifyRequestPage() {
  const query = new URLSearchParams(location.search);
  const message = $('verify-request-message');
  if (query.get('type') === 'reset') {
    message.textContent =
      'If an account exists for that address, we sent it a link to choose a new password. Open it to go on.';
  } else if (query.get('provider') === 'email') {
    message.textContent = 'We sent you a link to sign in. Open it on this device to go on.';
  } else {
    message.textContent = 'We sent you a link to confirm your address. Open it, then sign in.';
  }
  ready();
}

// ---------------------------------------------------------------------------------------
// Pages for signed-in users

/** The signed-in user, shown in the header; signed-out visitors are sent to sign in. */
async function requireSession() {
  const session = await api('GET', '/api/auth/session');
  if (!session || !session.user) {
    location.replace(signinUrl());
    return never();
  }
  const { user } = session;
  $('user-name').textContent = user.name || '';
  $('user-email').textContent = user.email || '';
  $('user-info').hidden = false;
  return user;
}

function wireSignOut() {
  const button = $('sign-out');
  if (!button) return;
  button.addEventListener('click', () =>
    withButton(button, $('sign-out-error'), async () => {
      const { csrfToken } = await api('GET', '/api/auth/csrf');
      // `{url}`: the sign-in page, or the identity provider's logout when the session began
      // there (a redirect to it would be a cross-origin fetch, which the CSP refuses).
      const answer = await api('POST', '/api/auth/signout', { csrfToken, callbackUrl: '/signin', json: 'true' });
      location.assign((answer && typeof answer.url === 'string' && answer.url) || '/signin');
      return never();
    }),
  );
}

// A page restored from the back/forward cache must not show stale data (after signing out),
// nor buttons left disabled when it went to an identity provider.
const RELOAD_WHEN_RESTORED = new Set([
  'workspaces',
  'workspace',
  'account',
  'invitations',
  'signin',
  'register',
  'forgot-password',
]);
window.addEventListener('pageshow', (event) => {
  if (event.persisted && RELOAD_WHEN_RESTORED.has(document.body.dataset.page)) location.reload();
});

// ---------------------------------------------------------------------------------------
// The workspace list

function workspacesPage() {
  wireSignOut();
  const list = $('workspace-list');
  const status = $('workspaces-status');
  const listError = $('workspaces-error');
  const loadMore = $('load-more');
  let cursor = null;

  const updateEmpty = () => {
    status.textContent = list.children.length ? '' : 'No workspaces yet. Create one above.';
  };

  const form = $('create-workspace-form');
  handleForm(form, $('create-workspace-error'), async (data) => {
    const ws = await api('POST', '/api/workspaces', { name: String(data.get('name') || '') });
    list.append(workspaceItem(ws));
    updateEmpty();
    form.reset();
    $('workspace-name').focus();
    announce(`Created workspace “${ws.name}”.`);
  });

  async function loadPage() {
    listError.textContent = '';
    const query = new URLSearchParams({ limit: '100' });
    if (cursor) query.set('cursor', cursor);
    const page = await api('GET', `/api/workspaces?${query}`);
    for (const ws of page.items || []) {
      if (!list.querySelector(`li[data-workspace-id="${CSS.escape(String(ws.id))}"]`)) {
        list.append(workspaceItem(ws));
      }
    }
    cursor = page.next_cursor || null;
    loadMore.hidden = !cursor;
    updateEmpty();
  }

  loadMore.addEventListener('click', () => withButton(loadMore, listError, loadPage));
  list.addEventListener('click', onListClick);
  list.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    const li = event.target.closest('li[data-workspace-id]');
    if (li) closeRowForms(li, true);
  });

  /** "You have N pending invitations": a way to /invitations when there are some. */
  async function loadInvitationsNotice() {
    try {
      const count = itemsOf(await api('GET', '/api/invitations')).length;
      const link = $('invitations-notice-link');
      link.textContent =
        count === 1 ? 'You have a pending invitation to a workspace.' : `You have ${count} pending invitations to workspaces.`;
      $('invitations-notice').hidden = count === 0;
    } catch (err) {
      console.error(err); // the list does not depend on it
    }
  }

  (async () => {
    try {
      await requireSession();
      await Promise.all([loadPage(), loadInvitationsNotice()]);
    } catch (err) {
      status.textContent = '';
      showError(null, listError, err);
    }
    ready();
  })();
}

/** One row of the list: link, role, rename and delete (by role), and their inline forms. */
function workspaceItem(ws) {
  const id = String(ws.id);
  const rank = RANK[ws.role] ?? -1;
  const nameSpan = el('span', { className: 'workspace-name', text: ws.name });
  const view = el(
    'div',
    { className: 'row-view' },
    el('a', { className: 'workspace-link', href: `/workspaces/${encodeURIComponent(id)}`, dataset: { testid: 'workspace-link' } }, nameSpan),
    el('span', { className: `role role-${ws.role}`, text: ROLE_LABEL[ws.role] || ws.role }),
    el(
      'span',
      { className: 'actions' },
      rank >= RANK.admin &&
        el('button', { type: 'button', dataset: { action: 'rename' } }, 'Rename', srOnly(` ${ws.name}`)),
      rank >= RANK.owner &&
        el('button', { type: 'button', className: 'danger', dataset: { action: 'delete' } }, 'Delete', srOnly(` ${ws.name}`)),
    ),
  );
  const error = el('p', { className: 'form-error', role: 'alert', dataset: { testid: 'row-error' } });
  return el('li', { className: 'workspace-item', dataset: { workspaceId: id, name: ws.name } }, view, error);
}

function closeRowForms(li, restoreFocus) {
  const hadForm = li.querySelector('.rename-form, .confirm');
  for (const node of li.querySelectorAll('.rename-form, .confirm')) node.remove();
  li.querySelector('.row-view').hidden = false;
  if (restoreFocus && hadForm) {
    const back =
      li.querySelector('[data-action=rename]') || li.querySelector('[data-action=delete]') || li.querySelector('a');
    if (back) back.focus();
  }
}

function setRowName(li, name) {
  li.dataset.name = name;
  li.querySelector('.workspace-name').textContent = name;
  for (const sr of li.querySelectorAll('.actions .visually-hidden')) sr.textContent = ` ${name}`;
}

function onListClick(event) {
  const button = event.target.closest('button[data-action]');
  if (!button) return;
  const li = button.closest('li[data-workspace-id]');
  if (!li) return;
  const id = li.dataset.workspaceId;
  const error = li.querySelector('.form-error');
  switch (button.dataset.action) {
    case 'rename':
      return openRename(li);
    case 'delete':
      return openDeleteConfirm(li);
    case 'cancel':
    case 'cancel-delete':
      error.textContent = '';
      return closeRowForms(li, true);
    case 'confirm-delete':
      return withButton(button, error, async () => {
        await api('DELETE', wsPath(id));
        const name = li.dataset.name;
        const list = li.parentElement;
        li.remove();
        $('workspaces-status').textContent = list.children.length ? '' : 'No workspaces yet. Create one above.';
        $('workspace-name').focus();
        announce(`Deleted workspace “${name}”.`);
      });
    default:
      return undefined;
  }
}

function openRename(li) {
  closeRowForms(li, false);
  const id = li.dataset.workspaceId;
  const inputId = `rename-${id}`;
  const error = li.querySelector('.form-error');
  error.textContent = '';
  const input = el('input', {
    id: inputId,
    name: 'name',
    type: 'text',
    required: true,
    maxlength: 100,
    autocomplete: 'off',
    'aria-describedby': `${inputId}-error`,
  });
  input.value = li.dataset.name;
  const form = el(
    'form',
    { className: 'rename-form inline-form', method: 'post', dataset: { testid: 'rename-form' } },
    el(
      'div',
      { className: 'field grow' },
      el('label', { for: inputId }, 'New name', srOnly(` for ${li.dataset.name}`)),
      input,
      el('p', { id: `${inputId}-error`, className: 'field-error' }),
    ),
    el('button', { type: 'submit', className: 'primary', dataset: { action: 'save' } }, 'Save'),
    el('button', { type: 'button', dataset: { action: 'cancel' } }, 'Cancel'),
  );
  handleForm(form, error, async (data) => {
    const ws = await api('PATCH', wsPath(id), { name: String(data.get('name') || '') });
    setRowName(li, (ws && ws.name) || String(data.get('name')).trim());
    closeRowForms(li, true);
    announce(`Renamed to “${li.dataset.name}”.`);
  });
  li.querySelector('.row-view').hidden = true;
  li.insertBefore(form, error);
  input.focus();
  input.select();
}

function openDeleteConfirm(li) {
  closeRowForms(li, false);
  const error = li.querySelector('.form-error');
  error.textContent = '';
  const cancel = el('button', { type: 'button', dataset: { action: 'cancel-delete' } }, 'Cancel');
  const box = el(
    'div',
    { className: 'confirm', role: 'group', 'aria-label': `Delete ${li.dataset.name}` },
    el('p', {}, `Delete “${li.dataset.name}” and all its memberships? This cannot be undone.`),
    el('button', { type: 'button', className: 'danger', dataset: { action: 'confirm-delete' } }, 'Yes, delete'),
    cancel,
  );
  li.querySelector('.row-view').hidden = true;
  li.insertBefore(box, error);
  cancel.focus();
}

// ---------------------------------------------------------------------------------------
// One workspace and its members

function workspacePage() {
  wireSignOut();
  const match = /^\/workspaces\/([^/]+)\/?$/.exec(location.pathname);
  let id = null;
  try {
    id = match ? decodeURIComponent(match[1]) : null;
  } catch {
    id = null;
  }
  const status = $('workspace-status');
  const pageError = $('workspace-error');
  const membersError = $('members-error');
  const body = $('members-body');
  const state = { me: null, ws: null };

  const myRank = () => RANK[state.ws && state.ws.role] ?? -1;
  const isOwner = () => myRank() >= RANK.owner;
  const canManage = () => myRank() >= RANK.admin;
  /** Whether the caller may change or remove this member (the server decides in the end). */
  const canEdit = (m) => canManage() && (isOwner() || m.role !== 'owner');

  function renderWorkspace() {
    const { ws } = state;
    $('workspace-title').textContent = ws.name;
    document.title = `${ws.name} · Workspaces`;
    $('my-role').textContent = ROLE_LABEL[ws.role] || ws.role;
    $('settings-section').hidden = !canManage();
    $('delete-section').hidden = !isOwner();
    $('rename-workspace-name').value = ws.name;
    $('invite-form').hidden = !canManage();
    $('pending-section').hidden = !canManage();
    const ownerOption = $('invite-role').querySelector('option[value=owner]');
    if (ownerOption) ownerOption.disabled = ownerOption.hidden = !isOwner();
  }

  function roleCell(m) {
    if (!canEdit(m)) return el('td', { dataset: { label: 'Role' } }, el('span', { className: `role role-${m.role}`, text: ROLE_LABEL[m.role] || m.role }));
    const selectId = `role-${m.user_id}`;
    const select = el('select', { id: selectId, dataset: { action: 'role', current: m.role } });
    for (const role of ROLES) {
      if (role === 'owner' && !isOwner()) continue;
      const option = el('option', { value: role }, ROLE_LABEL[role]);
      option.selected = role === m.role;
      select.append(option);
    }
    return el(
      'td',
      { dataset: { label: 'Role' } },
      el('label', { for: selectId, className: 'visually-hidden' }, `Role of ${m.name || m.email}`),
      select,
    );
  }

  function memberRow(m) {
    const self = state.me && String(m.user_id) === String(state.me.id);
    const who = m.name || m.email;
    return el(
      'tr',
      { dataset: { userId: String(m.user_id), email: m.email || '', name: who || '' } },
      el('td', { dataset: { label: 'Name' } }, m.name || '', self ? el('span', { className: 'you', text: ' (you)' }) : null),
      el('td', { dataset: { label: 'Email' }, className: 'email' }, m.email || ''),
      roleCell(m),
      el(
        'td',
        { className: 'row-actions' },
        canEdit(m) && !self
          ? el('button', { type: 'button', className: 'danger', dataset: { action: 'remove' } }, 'Remove', srOnly(` ${who}`))
          : null,
      ),
    );
  }

  // Pending invitations (admins and owners).
  const pendingList = $('pending-list');
  const pendingError = $('pending-error');
  const pendingMore = $('pending-more');
  let pendingCursor = null;

  function pendingRow(inv) {
    const expires = timeEl(inv.expiresAt || inv.expires_at);
    const role = String(inv.role || '');
    return el(
      'li',
      { className: 'invitation-item', dataset: { invitationId: String(inv.id), email: inv.email || '' } },
      el(
        'div',
        { className: 'invitation-info' },
        el('span', { className: 'invitation-email', text: inv.email || '' }),
        el(
          'span',
          { className: 'invitation-meta muted' },
          el('span', { className: `role role-${role}`, text: ROLE_LABEL[role] || role }),
          expires ? el('span', {}, ' · expires ', expires) : null,
        ),
      ),
      el(
        'button',
        { type: 'button', className: 'danger', dataset: { action: 'revoke', testid: 'revoke-invitation' } },
        'Revoke',
        srOnly(` the invitation of ${inv.email || ''}`),
      ),
    );
  }

  const isPending = (inv) => inv && inv.id !== undefined && (!inv.status || inv.status === 'pending');
  const updatePendingEmpty = () => {
    $('pending-empty').hidden = pendingList.children.length > 0;
  };

  /** Shows `inv` in the list, in place of the row it replaces (an invitation sent again). */
  function putPending(inv) {
    const row = pendingRow(inv);
    const old = pendingList.querySelector(`li[data-invitation-id="${CSS.escape(String(inv.id))}"]`);
    if (old) old.replaceWith(row);
    else pendingList.append(row);
    updatePendingEmpty();
  }

  async function loadPending(more = false) {
    pendingError.textContent = '';
    const query = pendingCursor && more ? `?${new URLSearchParams({ cursor: pendingCursor })}` : '';
    const page = await api('GET', `${wsPath(id)}/invitations${query}`);
    if (!more) pendingList.replaceChildren();
    for (const inv of itemsOf(page).filter(isPending)) putPending(inv);
    pendingCursor = nextCursor(page);
    pendingMore.hidden = !pendingCursor;
    updatePendingEmpty();
  }

  async function load() {
    pageError.textContent = '';
    const [ws, members] = await Promise.all([
      api('GET', wsPath(id)),
      api('GET', `${wsPath(id)}/members`),
    ]);
    state.ws = ws;
    renderWorkspace();
    body.replaceChildren(...(members.items || []).map(memberRow));
    status.textContent = '';
    $('workspace-content').hidden = false;
    if (canManage()) await loadPending().catch((err) => showError(null, pendingError, err));
  }

  // Rename.
  handleForm($('rename-workspace-form'), $('rename-workspace-error'), async (data) => {
    const ws = await api('PATCH', wsPath(id), { name: String(data.get('name') || '') });
    state.ws = { ...state.ws, ...(ws || {}), role: state.ws.role };
    renderWorkspace();
    announce(`Renamed to “${state.ws.name}”.`);
  });

  // Delete, after an inline confirmation.
  const confirmBox = $('delete-confirm');
  $('delete-workspace').addEventListener('click', () => {
    confirmBox.hidden = false;
    $('cancel-delete-workspace').focus();
  });
  $('cancel-delete-workspace').addEventListener('click', () => {
    confirmBox.hidden = true;
    $('delete-workspace').focus();
  });
  confirmBox.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') $('cancel-delete-workspace').click();
  });
  $('confirm-delete-workspace').addEventListener('click', (event) =>
    withButton(event.currentTarget, $('delete-workspace-error'), async () => {
      await api('DELETE', wsPath(id));
      location.assign(HOME);
      return never();
    }),
  );

  // Invite someone: a pending invitation (201, or 200 with the one already pending).
  handleForm($('invite-form'), $('invite-error'), async (data) => {
    const email = String(data.get('email') || '').trim();
    const inv = await api('POST', `${wsPath(id)}/invitations`, {
      email,
      role: String(data.get('role') || 'member'),
    });
    if (isPending(inv)) putPending(inv);
    $('invite-email').value = '';
    $('invite-email').focus();
    const role = String((inv && inv.role) || data.get('role'));
    announce(`Invited ${(inv && inv.email) || email} as ${ROLE_LABEL[role] || role}. They get an email to accept.`);
  });

  // Revoke a pending invitation.
  pendingList.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action=revoke]');
    if (!button) return;
    const row = button.closest('li[data-invitation-id]');
    withButton(button, pendingError, async () => {
      await api('DELETE', `${wsPath(id)}/invitations/${encodeURIComponent(row.dataset.invitationId)}`);
      row.remove();
      updatePendingEmpty();
      $('pending-heading').setAttribute('tabindex', '-1');
      $('pending-heading').focus();
      announce(`Revoked the invitation of ${row.dataset.email}.`);
    });
  });
  pendingMore.addEventListener('click', () => withButton(pendingMore, pendingError, () => loadPending(true)));

  // Change a role.
  body.addEventListener('change', async (event) => {
    const select = event.target.closest('select[data-action=role]');
    if (!select) return;
    const row = select.closest('tr[data-user-id]');
    const userId = row.dataset.userId;
    membersError.textContent = '';
    select.disabled = true;
    try {
      const m = await api('PATCH', `${wsPath(id)}/members/${encodeURIComponent(userId)}`, { role: select.value });
      select.dataset.current = (m && m.role) || select.value;
      announce(`Changed the role of ${(m && (m.name || m.email)) || 'the member'} to ${select.dataset.current}.`);
      if (state.me && userId === String(state.me.id)) {
        await load(); // my own role changed: what I may do changed too
        return;
      }
    } catch (err) {
      select.value = select.dataset.current;
      showError(null, membersError, err);
    } finally {
      select.disabled = false;
    }
  });

  // Remove a member.
  body.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action=remove]');
    if (!button) return;
    const row = button.closest('tr[data-user-id]');
    withButton(button, membersError, async () => {
      await api('DELETE', `${wsPath(id)}/members/${encodeURIComponent(row.dataset.userId)}`);
      row.remove();
      $('members-heading').setAttribute('tabindex', '-1');
      $('members-heading').focus();
      announce(`Removed ${row.dataset.name}.`);
    });
  });

  // Leave (remove myself).
  $('leave-workspace').addEventListener('click', (event) =>
    withButton(event.currentTarget, $('leave-error'), async () => {
      await api('DELETE', `${wsPath(id)}/members/${encodeURIComponent(state.me.id)}`);
      location.assign(HOME);
      return never();
    }),
  );

  (async () => {
    try {
      state.me = await requireSession();
      if (!id) throw new ApiError(404, { detail: 'There is no such workspace.' });
      await load();
    } catch (err) {
      status.textContent = '';
      showError(null, pageError, err);
    }
    ready();
  })();
}

// ---------------------------------------------------------------------------------------
// My invitations: accept or decline

/** The name of an invitation's workspace, whichever way the answer spells it. */
function invitationWorkspaceName(inv) {
  const ws = inv.workspace && typeof inv.workspace === 'object' ? inv.workspace : {};
  return String(inv.workspaceName || inv.workspace_name || ws.name || 'a workspace');
}

function invitationWorkspaceId(inv) {
  const ws = inv.workspace && typeof inv.workspace === 'object' ? inv.workspace : {};
  const wsId = inv.workspaceId || inv.workspace_id || ws.id;
  return wsId === undefined || wsId === null ? null : String(wsId);
}

function invitationsPage() {
  wireSignOut();
  const list = $('invitation-list');
  const status = $('invitations-status');
  const pageError = $('invitations-error');
  const more = $('invitations-more');
  let cursor = null;

  const updateEmpty = () => {
    status.textContent = list.children.length ? '' : 'You have no pending invitations.';
  };

  function invitationItem(inv) {
    const name = invitationWorkspaceName(inv);
    const role = String(inv.role || '');
    const inviter = inv.inviter_name || inv.invitedByName || inv.invited_by_name || (inv.invitedBy && inv.invitedBy.name);
    const expires = timeEl(inv.expiresAt || inv.expires_at);
    return el(
      'li',
      {
        className: 'invitation-item',
        dataset: { invitationId: String(inv.id), workspaceId: invitationWorkspaceId(inv) || '', name },
      },
      el(
        'div',
        { className: 'invitation-info' },
        el('span', { className: 'invitation-workspace', text: name }),
        el(
          'span',
          { className: 'invitation-meta muted' },
          el('span', { className: `role role-${role}`, text: ROLE_LABEL[role] || role }),
          inviter ? el('span', {}, ` · invited by ${inviter}`) : null,
          expires ? el('span', {}, ' · expires ', expires) : null,
        ),
      ),
      el(
        'span',
        { className: 'actions' },
        el(
          'button',
          { type: 'button', className: 'primary', dataset: { action: 'accept', testid: 'accept-invitation' } },
          'Accept',
          srOnly(` the invitation to ${name}`),
        ),
        el(
          'button',
          { type: 'button', dataset: { action: 'decline', testid: 'decline-invitation' } },
          'Decline',
          srOnly(` the invitation to ${name}`),
        ),
      ),
      el('p', { className: 'form-error', role: 'alert', dataset: { testid: 'invitation-error' } }),
    );
  }

  async function loadPage() {
    pageError.textContent = '';
    const query = cursor ? `?${new URLSearchParams({ cursor })}` : '';
    const page = await api('GET', `/api/invitations${query}`);
    for (const inv of itemsOf(page)) {
      if (!inv || inv.id === undefined || (inv.status && inv.status !== 'pending')) continue;
      if (!list.querySelector(`li[data-invitation-id="${CSS.escape(String(inv.id))}"]`)) list.append(invitationItem(inv));
    }
    cursor = nextCursor(page);
    more.hidden = !cursor;
    updateEmpty();
  }

  /** The row is done with (declined, or no longer valid): out of the list, focus kept. */
  function dropRow(li) {
    li.remove();
    updateEmpty();
    $('invitations-heading').setAttribute('tabindex', '-1');
    $('invitations-heading').focus();
  }

  list.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    const li = button.closest('li[data-invitation-id]');
    const error = li.querySelector('.form-error');
    const workspace = li.dataset.workspaceId ? `/workspaces/${encodeURIComponent(li.dataset.workspaceId)}` : HOME;
    if (button.dataset.action === 'accept') {
      withButton(button, error, async () => {
        let membership;
        try {
          membership = await api('POST', `${invitationPath(li.dataset.invitationId)}/accept`);
        } catch (err) {
          // 409: already a member, so the workspace is open to us anyway.
          if (err instanceof ApiError && err.status === 409) {
            location.assign(workspace);
            return never();
          }
          // 410 (expired, revoked) and 404: nothing left to answer; say why, offer nothing.
          if (err instanceof ApiError && (err.status === 410 || err.status === 404)) {
            for (const b of li.querySelectorAll('button')) b.remove();
          }
          throw err;
        }
        const wsId = (membership && (membership.workspaceId || membership.workspace_id)) || li.dataset.workspaceId;
        location.assign(wsId ? `/workspaces/${encodeURIComponent(wsId)}` : HOME);
        return never();
      });
    } else if (button.dataset.action === 'decline') {
      withButton(button, error, async () => {
        await api('POST', `${invitationPath(li.dataset.invitationId)}/decline`);
        dropRow(li);
        announce(`Declined the invitation to ${li.dataset.name}.`);
      });
    }
  });
  more.addEventListener('click', () => withButton(more, pageError, loadPage));

  (async () => {
    try {
      await requireSession();
      await loadPage();
    } catch (err) {
      status.textContent = '';
      showError(null, pageError, err);
    }
    ready();
  })();
}

// ---------------------------------------------------------------------------------------
// The account: linked identity providers and the password

const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** A <time> for an RFC 3339 string, or null when there is none. */
function timeEl(value) {
  const date = value ? new Date(value) : null;
  if (!date || Number.isNaN(date.getTime())) return null;
  return el('time', { datetime: date.toISOString() }, DATE_TIME.format(date));
}

const accountPath = (provider) => `/api/auth/accounts/${encodeURIComponent(provider)}`;

function accountPage() {
  wireSignOut();
  const status = $('account-status');
  const pageError = $('account-error');
  const list = $('account-list');
  const accountsError = $('accounts-error');
  const linkList = $('link-list');
  const linkError = $('link-error');
  const state = { providers: [], accounts: [], hasPassword: false };

  const providerName = (id) => {
    const p = state.providers.find((q) => q.id === id);
    return (p && p.name) || id;
  };

  function accountItem(account) {
    const id = String(account.provider);
    const name = providerName(id);
    const linked = timeEl(account.createdAt);
    const used = timeEl(account.lastSignInAt);
    return el(
      'li',
      { className: 'account-item', dataset: { provider: id, name, testid: `account-${id}` } },
      el(
        'div',
        { className: 'account-info' },
        el('span', { className: 'account-name', text: name }),
        account.email ? el('span', { className: 'account-email muted', text: account.email }) : null,
        el(
          'span',
          { className: 'account-dates muted' },
          linked ? el('span', {}, 'Linked ', linked) : null,
          used ? el('span', {}, 'Last sign-in ', used) : el('span', {}, 'Not used to sign in yet'),
        ),
      ),
      el(
        'button',
        { type: 'button', className: 'danger', dataset: { action: 'unlink', testid: `unlink-${id}` } },
        'Unlink',
        srOnly(` ${name}`),
      ),
    );
  }

  function renderAccounts() {
    list.replaceChildren(...state.accounts.map(accountItem));
    $('accounts-empty').hidden = state.accounts.length > 0;
    const linked = new Set(state.accounts.map((a) => String(a.provider)));
    const linkable = identityProviders(state.providers).filter((p) => !linked.has(p.id));
    linkList.replaceChildren(...linkable.map((p) => providerItem(p, 'Link', 'link')));
    $('link-section').hidden = linkable.length === 0;
    // Nothing to show without identity providers (email and password only, as before them).
    $('accounts-section').hidden = state.accounts.length === 0 && identityProviders(state.providers).length === 0;
  }

  function renderPassword() {
    $('password-section').hidden = !hasCredentials(state.providers);
    const has = state.hasPassword;
    $('password-heading').textContent = has ? 'Change password' : 'Set a password';
    $('password-intro').textContent = has
      ? 'Changing it signs you out everywhere else.'
      : 'Add a password to sign in with your email as well as with a provider.';
    $('current-password-field').hidden = !has;
    $('current-password').disabled = !has; // not sent, not required
    $('password-submit').textContent = has ? 'Change password' : 'Set password';
  }

  async function load() {
    const [providers, accounts] = await Promise.all([loadProviders(), api('GET', '/api/auth/accounts')]);
    state.providers = providers;
    state.accounts = Array.isArray(accounts && accounts.items) ? accounts.items : [];
    state.hasPassword = Boolean(accounts && accounts.hasPassword);
    renderAccounts();
    renderPassword();
  }

  // Unlink a provider (the server refuses with a 409 when it is the last way to sign in).
  list.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action=unlink]');
    if (!button) return;
    const li = button.closest('li[data-provider]');
    withButton(button, accountsError, async () => {
      await api('DELETE', accountPath(li.dataset.provider));
      await load();
      $('accounts-heading').setAttribute('tabindex', '-1');
      $('accounts-heading').focus();
      announce(`Unlinked ${li.dataset.name}.`);
    });
  });

  // Link one more provider: off to it, and back here.
  linkList.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-provider]');
    if (!button) return;
    withButton(button, linkError, () => startProviderSignIn(button.dataset.provider, '/account', true));
  });

  // Change or set the password.
  const form = $('password-form');
  handleForm(form, $('password-form-error'), async (data) => {
    const had = state.hasPassword;
    try {
      await api('POST', '/api/auth/password', {
        currentPassword: had ? String(data.get('currentPassword') || '') : '',
        newPassword: String(data.get('newPassword') || ''),
      });
    } catch (err) {
      // Without a current password, a 403 means the sign-in is too old to allow it.
      if (!had && err instanceof ApiError && err.status === 403) throw new ApiError(403, { detail: RECENT_SIGNIN });
      throw err;
    }
    form.reset();
    state.hasPassword = true;
    renderPassword();
    $(had ? 'current-password' : 'new-password').focus();
    announce(had ? 'Password changed. Other sessions were signed out.' : 'Password set.');
  });

  // Delete the account, after an inline confirmation. A 409 names the workspaces where the
  // user is the only owner (linked when the answer lists them); a 403 asks for a fresh sign-in.
  const deleteConfirm = $('delete-account-confirm');
  const blocking = $('delete-account-workspaces');
  $('delete-account').addEventListener('click', () => {
    deleteConfirm.hidden = false;
    $('cancel-delete-account').focus();
  });
  $('cancel-delete-account').addEventListener('click', () => {
    deleteConfirm.hidden = true;
    $('delete-account').focus();
  });
  deleteConfirm.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') $('cancel-delete-account').click();
  });
  $('confirm-delete-account').addEventListener('click', (event) => {
    blocking.replaceChildren();
    blocking.hidden = true;
    withButton(event.currentTarget, $('delete-account-error'), async () => {
      let answer;
      try {
        answer = await api('DELETE', '/api/auth/account');
      } catch (err) {
        const listed = err instanceof ApiError && err.status === 409 && err.body && Array.isArray(err.body.workspaces);
        if (listed) {
          blocking.replaceChildren(
            ...err.body.workspaces
              .filter((ws) => ws && ws.id !== undefined)
              .map((ws) =>
                el(
                  'li',
                  {},
                  el('a', { href: `/workspaces/${encodeURIComponent(String(ws.id))}` }, String(ws.name || ws.id)),
                ),
              ),
          );
          blocking.hidden = blocking.children.length === 0;
        }
        if (err instanceof ApiError && err.status === 403 && !err.explained) throw new ApiError(403, { detail: RECENT_SIGNIN });
        throw err;
      }
      location.assign((answer && typeof answer.url === 'string' && answer.url) || '/signin');
      return never();
    });
  });

  (async () => {
    try {
      const user = await requireSession();
      $('password-username').defaultValue = user.email || ''; // survives form.reset()
      await load();
      $('account-content').hidden = false;
    } catch (err) {
      showError(null, pageError, err);
    }
    status.textContent = '';
    ready();
  })();
}

// ---------------------------------------------------------------------------------------

const pages = {
  signin: signinPage,
  register: registerPage,
  'forgot-password': forgotPasswordPage,
  'verify-request': verifyRequestPage,
  invitations: invitationsPage,
  workspaces: workspacesPage,
  workspace: workspacePage,
  account: accountPage,
};
const start = pages[document.body.dataset.page];
if (start) start();
