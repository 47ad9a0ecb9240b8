-- workspaces: the tenant boundary. Everything a user can see in the backend is reached
-- through a workspace they are a member of.
CREATE TABLE workspaces (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- Who created it; kept as history only (authority comes from workspace_members), so a
    -- deleted user leaves the workspace in place.
    created_by  uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE workspace_role AS ENUM ('owner', 'admin', 'member', 'viewer');

-- workspace_members: who belongs to which workspace, and with which role. The backend's
-- authorization reads only this table. A member row goes away with its workspace or its user.
-- The rule "a workspace keeps at least one owner" is enforced by the backend under a row lock
-- on the workspace (backend-api's `roles::keeps_an_owner`, inside the transaction that first
-- locks the workspace row).
CREATE TABLE workspace_members (
    workspace_id  uuid           NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id       uuid           NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          workspace_role NOT NULL,
    created_at    timestamptz    NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, user_id)
);

-- "My workspaces" walks memberships by user; the primary key already serves by workspace.
CREATE INDEX workspace_members_user_id_idx ON workspace_members (user_id, workspace_id);
