-- users: the people who can sign in. The gateway owns their credentials (it verifies the
-- argon2id hash at sign-in); the backend only reads them to check a token's subject still
-- exists and to show names and emails next to memberships.
CREATE TABLE users (
    id               uuid        PRIMARY KEY,
    email            text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name             text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- A PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1$...`; never the password itself.
    password_hash    text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at  timestamptz
);

-- One account per address, whatever its case: `Ada@Example.com` and `ada@example.com` are the
-- same person. Lookups use `lower(email)` so they hit this index.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
