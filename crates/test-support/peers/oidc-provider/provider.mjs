// The real OpenID Provider the gateway's "sign in with OpenID Connect" tests run against: the
// OpenID-certified npm package `oidc-provider`, configured for tests only (development login and
// consent pages, development signing keys, fixed cookie keys, in-memory storage).
//
// Configuration: JSON in OIDC_PEER_CONFIG,
//   {"port": 0, "clients": [{"client_id", "client_secret", "redirect_uris": [..],
//     "post_logout_redirect_uris": [..], "backchannel_logout_uri"?,
//     "backchannel_logout_session_required"?, "token_endpoint_auth_method"?}],
//    "accounts": [{"id", "email", "email_verified", "name"}]}
// It listens on 127.0.0.1 (port 0: any free port), the issuer is http://127.0.0.1:<port>, and
// when ready it prints exactly one line to stdout, `listening <issuer>`; everything else goes to
// stderr. It stops on SIGTERM or SIGINT and when its stdin closes (the Rust driver holds a pipe,
// so a test process that dies takes the provider with it).
//
// oidc-provider 9 is tested upstream on Node.js 22 and later; on Node.js 20 (this machine) it runs
// and passes our tests, and prints "Unsupported runtime" to stderr at start.
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

// oidc-provider prints its notices with console.info (stdout); stdout is for the ready line only.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.on('error', stop);
process.stdin.resume();

const config = JSON.parse(process.env.OIDC_PEER_CONFIG ?? '{}');
const accounts = new Map((config.accounts ?? []).map((account) => [account.id, account]));

// Bind first: with port 0 the issuer (which names the port) is known only once listening.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port ?? 0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const clients = (config.clients ?? []).map((client) => ({
  client_id: client.client_id,
  client_secret: client.client_secret,
  redirect_uris: client.redirect_uris,
  post_logout_redirect_uris: client.post_logout_redirect_uris ?? [],
  token_endpoint_auth_method: client.token_endpoint_auth_method ?? 'client_secret_basic',
  ...(client.backchannel_logout_uri && {
    backchannel_logout_uri: client.backchannel_logout_uri,
    // With it, ID tokens carry `sid` and logout tokens name the session that ended.
    backchannel_logout_session_required: client.backchannel_logout_session_required ?? true,
  }),
}));

const provider = new Provider(issuer, {
  clients,
  // Which claims each scope releases (oidc-provider masks what findAccount returns by scope).
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    sid: null,
    auth_time: null,
  },
  async findAccount(ctx, sub) {
    const account = accounts.get(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        const { email, email_verified, name } = account;
        return { sub, email, email_verified, name };
      },
    };
  },
  cookies: { keys: ['oidc-peer-test-cookie-key-1', 'oidc-peer-test-cookie-key-2'] },
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  // Every authorization request must carry a PKCE challenge (S256 is the only method v9 has);
  // the gateway always sends one, and this checks that it does.
  pkce: { required: () => true },
  // oidc-provider hands outgoing requests (here: back-channel logout tokens) a `dispatcher` that
  // refuses connections to loopback, private and other special-use addresses, a guard against
  // server-side request forgery. In these tests every relying party listens on 127.0.0.1, so
  // this test configuration drops that dispatcher and lets them be reached. Never do this for a
  // provider that serves the internet.
  fetch(url, options) {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
});

for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error']) {
  provider.on(event, (ctx, error) => console.error(`${event}: ${error?.message} ${error?.error_description ?? ''}`));
}
provider.on('backchannel.error', (ctx, error, client) => {
  console.error(`backchannel.error: ${client.clientId}: ${error.message} ${error.cause ?? ''}`);
});
provider.on('backchannel.success', (ctx, client, accountId, sid) => {
  console.error(`backchannel.success: ${client.clientId} sub=${accountId} sid=${sid}`);
});

server.on('request', provider.callback());
process.stdout.write(`listening ${issuer}\n`);
