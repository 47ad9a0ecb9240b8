-- users.email_key: the key of the email (web-common's `email::key`: NFKC case folding of the
-- trimmed address), the one spelling every lookup, limit and uniqueness check uses. Postgres
-- cannot case-fold, so the column is filled in Rust: the services write it with every email,
-- and `web_common::db::migrate` fills it for the rows that existed before this migration
-- (stopping, naming them, when two accounts share a key). The next migration then makes it
-- NOT NULL and unique.
ALTER TABLE users ADD COLUMN email_key text;
