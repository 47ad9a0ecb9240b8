-- throttle: the gateway's sign-in and mail limits, shared by every instance, so N replicas allow
-- the attempts one allows. A row is one key in one scope ('signin:account', 'signin:ip',
-- 'mail:address', 'mail:ip'): its sliding window's attempts, oldest first, at most the limit.
-- Keys have a fixed size whatever the input (16 bytes of the SHA-256 of an email key; an IPv4
-- address, or the /64 of an IPv6 one), never an email. UNLOGGED: counters need no WAL on every
-- sign-in attempt, and a crash that empties them only restarts the windows.
CREATE UNLOGGED TABLE throttle (
    scope       text          NOT NULL CHECK (scope ~ '^[a-z]+:[a-z]+$'),
    key         bytea         NOT NULL CHECK (octet_length(key) BETWEEN 1 AND 16),
    events      timestamptz[] NOT NULL,
    updated_at  timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- The clean-up deletes keys whose newest attempt is older than every window.
CREATE INDEX throttle_updated_at_idx ON throttle (updated_at);

-- One attempt against each (scopes[i], keys[i]) with limits[i] per windows[i] seconds (a limit
-- of 0: that window is off), in one statement: when any window is full, nothing is recorded
-- and the answer is the seconds until every one has room; otherwise the attempt is recorded in
-- each and the answer is 0. The rows are locked in the order given (callers give the account
-- before the client), so concurrent attempts queue instead of overshooting a limit.
CREATE FUNCTION throttle_attempt(
    scopes text[], keys bytea[], limits integer[], windows double precision[]
) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    held timestamptz[];
    live timestamptz[];
    wait double precision := 0;
BEGIN
    FOR i IN 1 .. coalesce(array_length(scopes, 1), 0) LOOP
        CONTINUE WHEN limits[i] = 0;
        INSERT INTO throttle (scope, key, events) VALUES (scopes[i], keys[i], '{}')
            ON CONFLICT (scope, key) DO NOTHING;
        SELECT t.events INTO held FROM throttle t
            WHERE t.scope = scopes[i] AND t.key = keys[i] FOR UPDATE;
        live := ARRAY(SELECT e FROM unnest(held) AS e
                      WHERE e > now() - make_interval(secs => windows[i]) ORDER BY e);
        IF cardinality(live) >= limits[i] THEN
            wait := greatest(wait, extract(epoch FROM
                live[cardinality(live) - limits[i] + 1] + make_interval(secs => windows[i]) - now()));
        END IF;
    END LOOP;
    IF wait > 0 THEN
        RETURN wait;
    END IF;
    FOR i IN 1 .. coalesce(array_length(scopes, 1), 0) LOOP
        CONTINUE WHEN limits[i] = 0;
        UPDATE throttle t SET
            events = (SELECT (kept || now())[greatest(1, cardinality(kept) + 2 - limits[i]):]
                      FROM (SELECT ARRAY(SELECT e FROM unnest(t.events) AS e
                                         WHERE e > now() - make_interval(secs => windows[i])
                                         ORDER BY e) AS kept) AS pruned),
            updated_at = now()
        WHERE t.scope = scopes[i] AND t.key = keys[i];
    END LOOP;
    RETURN 0;
END;
$$;
