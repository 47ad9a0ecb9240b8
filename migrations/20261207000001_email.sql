-- Email that works: verified addresses, single-use links (verification, password reset,
-- sign-in links), a mail outbox both services write and the gateway sends, and workspace
-- invitations (membership starts only with the invitee's consent).

-- When the address was proven to belong to the user (a link mailed to it was used, or a
-- provider that is trusted with emails said it is verified). NULL: unverified, and credentials
-- sign-in answers 403 until it is. Every account that existed before verification did
-- registered without it: they are taken as verified (at their creation), as the README says.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
UPDATE users SET email_verified_at = created_at;

-- email_tokens: the single-use links the gateway mails. Keyed by the SHA-256 of the random
-- token (at least 128 bits; the link carries the token, the table never does), used up by
-- deleting the row, dead after `expires_at`.
CREATE TABLE email_tokens (
    token_hash    bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    purpose       text        NOT NULL CHECK (purpose IN ('verify_email', 'password_reset', 'signin_link')),
    -- Whose link it is; NULL only for a sign-in link to an address with no account yet (the
    -- account is created when the link is used).
    user_id       uuid        REFERENCES users (id) ON DELETE CASCADE,
    -- The key of the address it was mailed to (web-common's `email::key`), and the address as
    -- typed (where the account is created for a new sign-in link).
    email_key     text        NOT NULL,
    email         text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    -- Where a sign-in link leads once used: stored with the token, never read from the link.
    callback_url  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    CHECK (user_id IS NOT NULL OR purpose = 'signin_link')
);

-- "Void every other outstanding token of the user" (a password reset), and the cascade.
CREATE INDEX email_tokens_user_id_idx ON email_tokens (user_id);
CREATE INDEX email_tokens_email_key_idx ON email_tokens (email_key);
-- The periodic clean-up deletes rows by expiry.
CREATE INDEX email_tokens_expires_at_idx ON email_tokens (expires_at);

-- mail_outbox: every message either service wants sent, one row each, written in the
-- transaction that decided to send it (`web_common::outbox::enqueue`). Any gateway instance
-- sends due rows (claimed with FOR UPDATE SKIP LOCKED and a lease, so no two send one row at
-- the same time), retrying with back-off until the SMTP server takes it. The Message-ID is
-- derived from `id`, so a retry after a lost answer carries the same one.
CREATE TABLE mail_outbox (
    id               uuid        PRIMARY KEY,
    -- Which template renders it (the gateway's `mail::templates`).
    kind             text        NOT NULL CHECK (kind ~ '^[a-z_]{1,64}$'),
    recipient        text        NOT NULL CHECK (length(recipient) BETWEEN 3 AND 254),
    -- The template's values (names, paths of links under PUBLIC_ORIGIN). A link may carry a
    -- single-use token: the sender empties `data` once the message is sent.
    data             jsonb       NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- An instance sending it holds it until then; past it (the instance died mid-send) another
    -- may take it.
    locked_until     timestamptz,
    sent_at          timestamptz,
    last_error       text
);

-- What is due: unsent rows by their next attempt.
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;
-- The clean-up of sent rows.
CREATE INDEX mail_outbox_sent_at_idx ON mail_outbox (sent_at) WHERE sent_at IS NOT NULL;

-- workspace_invitations: an invitation to join a workspace with a role, addressed to an email.
-- Only its addressee (a user whose VERIFIED email has `email_key`) may accept or decline it.
CREATE TYPE invitation_status AS ENUM ('pending', 'accepted', 'declined', 'revoked');

CREATE TABLE workspace_invitations (
    id            uuid              PRIMARY KEY,
    workspace_id  uuid              NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- The address as typed by the inviter (where the mail goes) and its key (who may accept).
    email         text              NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    email_key     text              NOT NULL,
    role          workspace_role    NOT NULL,
    invited_by    uuid              REFERENCES users (id) ON DELETE SET NULL,
    status        invitation_status NOT NULL DEFAULT 'pending',
    created_at    timestamptz       NOT NULL DEFAULT now(),
    expires_at    timestamptz       NOT NULL,
    responded_at  timestamptz
);

-- One open invitation per workspace and address (an expired one is revoked before another is
-- made); the workspace's list; the invitee's pending invitations.
CREATE UNIQUE INDEX workspace_invitations_pending_key
    ON workspace_invitations (workspace_id, email_key) WHERE status = 'pending';
CREATE INDEX workspace_invitations_workspace_idx ON workspace_invitations (workspace_id, created_at);
CREATE INDEX workspace_invitations_email_key_idx
    ON workspace_invitations (email_key) WHERE status = 'pending';
CREATE INDEX workspace_invitations_invited_by_idx ON workspace_invitations (invited_by);
