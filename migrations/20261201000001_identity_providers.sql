-- Sign-in with identity providers (OpenID Connect, GitHub) beside email and password.

-- A user who signed up through a provider has no password until they set one. Such a user
-- cannot sign in with credentials (the gateway answers exactly as for a wrong password).
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;

-- accounts: the identities at providers that sign a user in. `(provider, subject)` is who the
-- provider says it is (OIDC `sub`, GitHub's numeric user id); a subject belongs to one user.
CREATE TABLE accounts (
    provider         text        NOT NULL CHECK (provider ~ '^[a-z0-9-]{1,64}$'),
    subject          text        NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
    user_id          uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The email as the provider gave it at the last sign-in (shown on the account page).
    email            text        CHECK (length(email) <= 254),
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);

-- "Which providers does this user have", and the ON DELETE CASCADE from users.
CREATE INDEX accounts_user_id_idx ON accounts (user_id, provider);

-- sign_in_flows: a provider sign-in between the redirect to the provider and its callback.
-- Keyed by the SHA-256 of the `state` parameter (a leaked row cannot be turned into a URL);
-- bound to the browser that started it (SHA-256 of a random value in an HttpOnly cookie);
-- single use (the callback deletes the row it reads); dead after `expires_at` (10 minutes).
CREATE TABLE sign_in_flows (
    state_hash     bytea       PRIMARY KEY CHECK (octet_length(state_hash) = 32),
    browser_hash   bytea       NOT NULL CHECK (octet_length(browser_hash) = 32),
    provider       text        NOT NULL,
    -- PKCE (RFC 7636) verifier and OIDC nonce, sent to the provider only as the S256 challenge
    -- and inside the authorization request.
    code_verifier  text        NOT NULL,
    nonce          text        NOT NULL,
    callback_url   text        NOT NULL,
    -- An explicit link (`link=true`): the signed-in user, and a random marker their session
    -- holds, so the link is made only if that very session is still alive at the callback.
    link_user_id   uuid        REFERENCES users (id) ON DELETE CASCADE,
    link_marker    text,
    expires_at     timestamptz NOT NULL,
    CHECK ((link_user_id IS NULL) = (link_marker IS NULL))
);

CREATE INDEX sign_in_flows_expires_at_idx ON sign_in_flows (expires_at);

-- Where a session began, copied out of its state by the session store like `user_id`: a
-- back-channel logout from a provider ends the sessions with its subject (`sub`) or its
-- provider-side session id (`sid`). NULL for credentials sign-ins.
ALTER TABLE sessions
    ADD COLUMN provider          text,
    ADD COLUMN provider_subject  text,
    ADD COLUMN provider_sid      text;

CREATE INDEX sessions_provider_subject_idx ON sessions (provider, provider_subject)
    WHERE provider IS NOT NULL;
CREATE INDEX sessions_provider_sid_idx ON sessions (provider, provider_sid)
    WHERE provider_sid IS NOT NULL;

-- logout_tokens_used: the `jti` of every back-channel logout token accepted, until it expires,
-- so a token replayed (at this or any other gateway instance) is refused.
CREATE TABLE logout_tokens_used (
    provider    text        NOT NULL,
    jti         text        NOT NULL CHECK (length(jti) BETWEEN 1 AND 255),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (provider, jti)
);

CREATE INDEX logout_tokens_used_expires_at_idx ON logout_tokens_used (expires_at);
