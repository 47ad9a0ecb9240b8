-- sessions per user: a sign-in past SESSIONS_PER_USER_MAX ends the user's least recently used
-- sessions, found by idle expiry (which requests slide forward). One index serves that and
-- everything the user_id index served ("sign this user out everywhere", the ON DELETE CASCADE
-- from users), so it replaces it.
CREATE INDEX sessions_user_id_idle_expires_at_idx ON sessions (user_id, idle_expires_at);
DROP INDEX sessions_user_id_idx;
