-- The audit log: one row per control-plane change of an organization (who, what, on which
-- object, when, from where). Never a secret: keys appear by id and hint only.
-- Keep in step with ../postgres/0004_audit_log.sql.
CREATE TABLE audit_log (
    -- Insertion order: newest first is `seq` descending, and it is the pagination cursor.
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    org_id         TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    at             TEXT NOT NULL,
    -- The user who made the change; NULL for changes nobody signed in made (a throttled login).
    actor_id       TEXT,
    -- The actor's email when the change was made, so the entry stays readable if it changes.
    actor_email    TEXT,
    action         TEXT NOT NULL,
    target_type    TEXT NOT NULL,
    target_id      TEXT,
    client_address TEXT,
    -- A JSON object with what else the change needs to be understood.
    details        TEXT NOT NULL
);
CREATE INDEX audit_log_org_seq ON audit_log (org_id, seq);
