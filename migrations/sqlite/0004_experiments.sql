-- Experiments: A/B tests on a route's traffic, judged by an LLM (flo2_core::experiment).
-- Keep in step with ../postgres/0005_experiments.sql.
CREATE TABLE experiments (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    -- The route it runs on (by name: apps call the route by name).
    route      TEXT NOT NULL,
    -- The checked definition as JSON (flo2_core::experiment::ExperimentSpec).
    spec       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('draft', 'running', 'paused', 'stopped')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    stopped_at TEXT,
    UNIQUE (org_id, name)
);
-- At most one running experiment per route: the database holds the rule, so two replicas
-- starting experiments on one route at once cannot both succeed.
CREATE UNIQUE INDEX experiments_one_running_per_route ON experiments (org_id, route)
    WHERE state = 'running';
