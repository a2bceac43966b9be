-- flo2 foundation schema (PostgreSQL). Keep in step with ../sqlite/0001_foundation.sql:
-- same tables, columns and constraints; only the types differ.
-- Money is integer: prices in micro-USD per million tokens, costs in pico-USD
-- (tokens × micro-USD/Mtok = pico-USD exactly). Times are UTC.

CREATE TABLE organizations (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    -- The organization's data key, wrapped by the master key `dek_key_id`.
    dek_key_id  TEXT NOT NULL,
    dek_wrapped BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    id                  UUID PRIMARY KEY,
    email               TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    password_changed_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE memberships (
    org_id     UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE sessions (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id     UUID REFERENCES organizations (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE invites (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    token_hash  BYTEA NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    email       TEXT,
    created_by  UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    accepted_at TIMESTAMPTZ,
    accepted_by UUID REFERENCES users (id) ON DELETE SET NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX invites_org ON invites (org_id);

CREATE TABLE teams (
    id         UUID PRIMARY KEY,
    org_id     UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, name),
    -- Target of the composite key below: a gateway key's team must be in the key's organization.
    UNIQUE (org_id, id)
);

CREATE TABLE provider_credentials (
    id         UUID PRIMARY KEY,
    org_id     UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    name       TEXT NOT NULL,
    base_url   TEXT,
    -- AES-256-GCM under the organization's data key, bound to (org_id, id).
    ciphertext BYTEA NOT NULL,
    hint       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE gateway_keys (
    id           UUID PRIMARY KEY,
    org_id       UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    team_id      UUID NOT NULL,
    name         TEXT NOT NULL,
    -- SHA-256 of the key; the key itself is never stored.
    key_hash     BYTEA NOT NULL UNIQUE,
    hint         TEXT NOT NULL,
    created_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    FOREIGN KEY (org_id, team_id) REFERENCES teams (org_id, id)
);
CREATE INDEX gateway_keys_org ON gateway_keys (org_id);
CREATE UNIQUE INDEX gateway_keys_active_name ON gateway_keys (org_id, name) WHERE revoked_at IS NULL;

CREATE TABLE prices (
    id                           UUID PRIMARY KEY,
    org_id                       UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider                     TEXT NOT NULL,
    model                        TEXT NOT NULL,
    input_micros_per_mtok        BIGINT NOT NULL CHECK (input_micros_per_mtok >= 0),
    output_micros_per_mtok       BIGINT NOT NULL CHECK (output_micros_per_mtok >= 0),
    cached_input_micros_per_mtok BIGINT CHECK (cached_input_micros_per_mtok >= 0),
    cache_write_micros_per_mtok  BIGINT CHECK (cache_write_micros_per_mtok >= 0),
    reasoning_micros_per_mtok    BIGINT CHECK (reasoning_micros_per_mtok >= 0),
    context_window               BIGINT,
    supports_tools               BOOLEAN,
    supports_vision              BOOLEAN,
    supports_json                BOOLEAN,
    effective_from               TIMESTAMPTZ NOT NULL,
    created_at                   TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, provider, model, effective_from)
);

CREATE TABLE routes (
    id         UUID PRIMARY KEY,
    org_id     UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    -- The route policy as JSON, validated by flo2-core before it is stored.
    config     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, name)
);

-- One row per upstream call. No foreign keys: records outlive deleted keys and teams, and
-- batched inserts stay cheap. The id makes replays after an outage idempotent.
CREATE TABLE usage_records (
    id                    UUID PRIMARY KEY,
    org_id                UUID NOT NULL,
    team_id               UUID,
    gateway_key_id        UUID,
    request_id            UUID NOT NULL,
    attempt               BIGINT NOT NULL,
    attempt_role          TEXT NOT NULL,
    inbound_api           TEXT NOT NULL,
    requested_model       TEXT NOT NULL,
    route                 TEXT,
    provider              TEXT NOT NULL,
    model                 TEXT NOT NULL,
    credential_id         UUID,
    status                BIGINT NOT NULL,
    error_kind            TEXT,
    input_tokens          BIGINT NOT NULL,
    output_tokens         BIGINT NOT NULL,
    cached_input_tokens   BIGINT NOT NULL,
    cache_write_tokens    BIGINT NOT NULL,
    reasoning_tokens      BIGINT NOT NULL,
    cost_picousd          BIGINT NOT NULL,
    baseline_cost_picousd BIGINT NOT NULL,
    tokens_estimated      BOOLEAN NOT NULL,
    cache_hit             BOOLEAN NOT NULL,
    latency_ms            BIGINT NOT NULL,
    ttft_ms               BIGINT,
    started_at            TIMESTAMPTZ NOT NULL,
    finished_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX usage_records_org_time ON usage_records (org_id, started_at);

-- Change notices for the data plane's caches: every write that a cached object depends on
-- appends a row here in the same transaction; gateways poll it by sequence.
CREATE TABLE change_log (
    seq        BIGSERIAL PRIMARY KEY,
    org_id     UUID,
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
