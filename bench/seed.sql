-- Benchmark seed for the `bench` database (run by bench/run.py with psql after backend-api has
-- applied the migrations). Same data shape as the anchor's db/seed.sql
-- (../shared/anchors/seed-stack/db/seed.sql), adapted to this project's schema:
--   1000 users; user i (1..1000) has id md5('user-' || i)::uuid and email user<i>@example.com.
--   10,000 workspaces; workspace j has id md5('workspace-' || j)::uuid.
--   User i owns workspaces 5(i-1)+1 .. 5(i-1)+5 ('owner') and is 'admin'/'member' of 5 workspaces
--   taken from 5001..10000 (each shared workspace has exactly one member, as in the anchor), so
--   every user is a member of exactly 10 workspaces and GET /workspaces answers 10 items.
-- password_hash: the psql variable :dummy_hash (a well-formed argon2id PHC string that matches no
-- password); run.py then replaces it with a real hash obtained through the gateway.
\set ON_ERROR_STOP on
BEGIN;
TRUNCATE workspace_members, workspaces, users CASCADE;

-- An ASCII lower-case address is its own key (web-common's `email::key`); every address is
-- verified (a user signs in with a password only then).
INSERT INTO users (id, email, email_key, name, password_hash, created_at, email_verified_at)
SELECT md5('user-' || i)::uuid, 'user' || i || '@example.com', 'user' || i || '@example.com',
       'User ' || i, :'dummy_hash',
       timestamptz '2025-01-01' + i * interval '1 minute',
       timestamptz '2025-01-01' + i * interval '1 minute'
FROM generate_series(1, 1000) AS i;

-- Workspaces 1..5000 are created by their owner; 5001..10000 by some other user (history only:
-- authority comes from workspace_members).
INSERT INTO workspaces (id, name, created_by, created_at, updated_at)
SELECT md5('workspace-' || j)::uuid, 'Workspace ' || j,
       CASE WHEN j <= 5000 THEN md5('user-' || ((j - 1) / 5 + 1))::uuid
            ELSE md5('user-' || ((((j - 5001) / 5 + 1) % 1000) + 1))::uuid END,
       timestamptz '2025-01-01' + j * interval '1 second',
       timestamptz '2025-01-01' + j * interval '1 second'
FROM generate_series(1, 10000) AS j;

-- 5 owned workspaces per user (workspaces 1..5000)
INSERT INTO workspace_members (user_id, workspace_id, role)
SELECT md5('user-' || i)::uuid, md5('workspace-' || ((i - 1) * 5 + k))::uuid, 'owner'
FROM generate_series(1, 1000) AS i, generate_series(1, 5) AS k;

-- 5 shared workspaces per user, from 5001..10000 (each shared with exactly one user)
INSERT INTO workspace_members (user_id, workspace_id, role)
SELECT md5('user-' || i)::uuid, md5('workspace-' || (5000 + (i - 1) * 5 + k))::uuid,
       (CASE WHEN k % 2 = 0 THEN 'admin' ELSE 'member' END)::workspace_role
FROM generate_series(1, 1000) AS i, generate_series(1, 5) AS k;
COMMIT;

ANALYZE users;
ANALYZE workspaces;
ANALYZE workspace_members;
