-- flo2 foundation schema (SQLite). Keep in step with ../postgres/0001_foundation.sql:
-- same tables, columns and constraints; only the types differ.
-- Money is integer: prices in micro-USD per million tokens, costs in pico-USD
-- (tokens × micro-USD/Mtok = pico-USD exactly). Times are UTC.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    -- The organization's data key, wrapped by the master key `dek_key_id`.
    dek_key_id  TEXT NOT NULL,
    dek_wrapped BLOB NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    email               TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    password_changed_at TEXT NOT NULL
);

CREATE TABLE memberships (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id     TEXT REFERENCES organizations (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE invites (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    token_hash  BLOB NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    email       TEXT,
    created_by  TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    accepted_at TEXT,
    accepted_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    revoked_at  TEXT
);
CREATE INDEX invites_org ON invites (org_id);

CREATE TABLE teams (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (org_id, name),
    -- Target of the composite key below: a gateway key's team must be in the key's organization.
    UNIQUE (org_id, id)
);

CREATE TABLE provider_credentials (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    name       TEXT NOT NULL,
    base_url   TEXT,
    -- AES-256-GCM under the organization's data key, bound to (org_id, id).
    ciphertext BLOB NOT NULL,
    hint       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE gateway_keys (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    team_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    -- SHA-256 of the key; the key itself is never stored.
    key_hash     BLOB NOT NULL UNIQUE,
    hint         TEXT NOT NULL,
    created_by   TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT,
    FOREIGN KEY (org_id, team_id) REFERENCES teams (org_id, id)
);
CREATE INDEX gateway_keys_org ON gateway_keys (org_id);
CREATE UNIQUE INDEX gateway_keys_active_name ON gateway_keys (org_id, name) WHERE revoked_at IS NULL;

CREATE TABLE prices (
    id                           TEXT PRIMARY KEY,
    org_id                       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider                     TEXT NOT NULL,
    model                        TEXT NOT NULL,
    input_micros_per_mtok        INTEGER NOT NULL CHECK (input_micros_per_mtok >= 0),
    output_micros_per_mtok       INTEGER NOT NULL CHECK (output_micros_per_mtok >= 0),
    cached_input_micros_per_mtok INTEGER CHECK (cached_input_micros_per_mtok >= 0),
    cache_write_micros_per_mtok  INTEGER CHECK (cache_write_micros_per_mtok >= 0),
    reasoning_micros_per_mtok    INTEGER CHECK (reasoning_micros_per_mtok >= 0),
    context_window               INTEGER,
    supports_tools               INTEGER,
    supports_vision              INTEGER,
    supports_json                INTEGER,
    effective_from               TEXT NOT NULL,
    created_at                   TEXT NOT NULL,
    UNIQUE (org_id, provider, model, effective_from)
);

CREATE TABLE routes (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    -- The route policy as JSON, validated by flo2-core before it is stored.
    config     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (org_id, name)
);

-- One row per upstream call. No foreign keys: records outlive deleted keys and teams, and
-- batched inserts stay cheap. The id makes replays after an outage idempotent.
CREATE TABLE usage_records (
    id                    TEXT PRIMARY KEY,
    org_id                TEXT NOT NULL,
    team_id               TEXT,
    gateway_key_id        TEXT,
    request_id            TEXT NOT NULL,
    attempt               INTEGER NOT NULL,
    attempt_role          TEXT NOT NULL,
    inbound_api           TEXT NOT NULL,
    requested_model       TEXT NOT NULL,
    route                 TEXT,
    provider              TEXT NOT NULL,
    model                 TEXT NOT NULL,
    credential_id         TEXT,
    status                INTEGER NOT NULL,
    error_kind            TEXT,
    input_tokens          INTEGER NOT NULL,
    output_tokens         INTEGER NOT NULL,
    cached_input_tokens   INTEGER NOT NULL,
    cache_write_tokens    INTEGER NOT NULL,
    reasoning_tokens      INTEGER NOT NULL,
    cost_picousd          INTEGER NOT NULL,
    baseline_cost_picousd INTEGER NOT NULL,
    tokens_estimated      INTEGER NOT NULL,
    cache_hit             INTEGER NOT NULL,
    latency_ms            INTEGER NOT NULL,
    ttft_ms               INTEGER,
    started_at            TEXT NOT NULL,
    finished_at           TEXT NOT NULL
);
CREATE INDEX usage_records_org_time ON usage_records (org_id, started_at);

-- Change notices for the data plane's caches: every write that a cached object depends on
-- appends a row here in the same transaction; gateways poll it by sequence.
CREATE TABLE change_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id     TEXT,
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    created_at TEXT NOT NULL
);
