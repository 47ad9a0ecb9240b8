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

/** The identity providers (everything but email and password). */
const identityProviders = (providers) => providers.filter((p) => p.type !== 'credentials');
const hasCredentials = (providers) => providers.some((p) => p.type === 'credentials');

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

function signinPage() {
  carryCallback($('register-link'));
  const authError = $('auth-error');
  authError.textContent = signinErrorMessage();

  const form = $('signin-form');
  handleForm(form, $('signin-error'), async (data) => {
    authError.textContent = '';
    await api('POST', '/api/auth/signin', {
      email: String(data.get('email') || '').trim(),
      password: String(data.get('password') || ''),
    });
    location.assign(callbackTarget());
    return never();
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
    list.replaceChildren(...others.map((p) => providerItem(p, 'Continue with', 'provider')));
    $('provider-section').hidden = others.length === 0;
    $('signin-divider').hidden = !(credentials && others.length);
    $('credentials-section').hidden = !credentials;
    $('no-signin-methods').hidden = credentials || others.length > 0;
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
    await api('POST', '/api/auth/register', {
      email: String(data.get('email') || '').trim(),
      password: String(data.get('password') || ''),
      name: String(data.get('name') || '').trim(),
    });
    location.assign(callbackTarget());
    return never();
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
const RELOAD_WHEN_RESTORED = new Set(['workspaces', 'workspace', 'account', 'signin', 'register']);
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

  (async () => {
    try {
      await requireSession();
      await loadPage();
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
    $('add-member-form').hidden = !canManage();
    const ownerOption = $('member-role').querySelector('option[value=owner]');
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

  // Add a member.
  const addForm = $('add-member-form');
  handleForm(addForm, $('add-member-error'), async (data) => {
    const m = await api('POST', `${wsPath(id)}/members`, {
      email: String(data.get('email') || '').trim(),
      role: String(data.get('role') || 'member'),
    });
    body.append(memberRow(m));
    $('member-email').value = '';
    $('member-email').focus();
    announce(`Added ${m.name || m.email} as ${m.role}.`);
  });

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
  workspaces: workspacesPage,
  workspace: workspacePage,
  account: accountPage,
};
const start = pages[document.body.dataset.page];
if (start) start();
