-- One account per email key (after `web_common::db::migrate` filled it for every row): the
-- only uniqueness rule for emails. `lower(email)` disagreed with the key on some characters
-- (`ß` and `ss`, fullwidth forms), so its index goes.
ALTER TABLE users ALTER COLUMN email_key SET NOT NULL;
CREATE UNIQUE INDEX users_email_key_key ON users (email_key);
DROP INDEX users_email_lower_key;
