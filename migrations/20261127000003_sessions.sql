-- sessions: frontend-gateway's server-side sessions (its actix-session `SessionStore`).
-- The browser's cookie carries only an opaque random key (encrypted with SESSION_KEY); the row
-- IS the session. Deleting it (sign-out, or deleting the user) ends the session at once, even
-- for a copied cookie, and any gateway instance can serve any session.
CREATE TABLE sessions (
    -- SHA-256 of the session key, never the key itself: a leaked dump or backup of this table
    -- cannot be replayed as cookies.
    key_hash         bytea       PRIMARY KEY CHECK (octet_length(key_hash) = 32),
    -- actix-session's state: an object of string keys to JSON-encoded values.
    state            jsonb       NOT NULL CHECK (jsonb_typeof(state) = 'object'),
    -- Whose session it is (copied out of `state` at write time, NULL for none). A deleted user
    -- loses every session with the row.
    user_id          uuid        REFERENCES users (id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Absolute lifetime: set when the session is created (sign-in renews the session, so it
    -- counts from sign-in) and never extended, however busy the session is.
    expires_at       timestamptz NOT NULL,
    -- Idle expiry: slides forward on every request, never past `expires_at`. A row past either
    -- is dead; since idle_expires_at <= expires_at, checking this one column is enough.
    idle_expires_at  timestamptz NOT NULL,
    CHECK (idle_expires_at <= expires_at)
);

-- "Sign this user out everywhere", and the ON DELETE CASCADE from users.
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
-- The periodic clean-up deletes rows by idle expiry.
CREATE INDEX sessions_idle_expires_at_idx ON sessions (idle_expires_at);
