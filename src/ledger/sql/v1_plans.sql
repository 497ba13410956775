-- seqmig ledger v1: plans, runs of phases and steps, the runner registry, authority flags.
-- Everything seqmig knows about this database lives here (DESIGN.md §5).

CREATE TABLE seqmig.plans (
    id          text PRIMARY KEY,
    -- The full artifact as given (json keeps the text), so rollback and status never need
    -- the file again and a later file with different content is recognised.
    plan_json   json NOT NULL,
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'complete', 'rolled_back')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Who holds (or held) the runner lock: lets a second runner name the first by actor.
CREATE TABLE seqmig.runners (
    pid           integer NOT NULL,
    backend_start timestamptz NOT NULL,
    actor         text NOT NULL,
    command       text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (pid, backend_start)
);

CREATE TABLE seqmig.phase_runs (
    id               bigserial PRIMARY KEY,
    plan_id          text NOT NULL REFERENCES seqmig.plans (id),
    phase            text NOT NULL CHECK (phase IN ('expand', 'dual_write', 'backfill', 'switch', 'contract')),
    action           text NOT NULL CHECK (action IN ('apply', 'rollback')),
    actor            text NOT NULL,
    backend_pid      integer NOT NULL DEFAULT pg_backend_pid(),
    application_name text NOT NULL DEFAULT current_setting('application_name'),
    started_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at      timestamptz,
    outcome          text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'ok', 'failed')),
    message          text
);

CREATE TABLE seqmig.step_runs (
    id           bigserial PRIMARY KEY,
    phase_run_id bigint NOT NULL REFERENCES seqmig.phase_runs (id),
    plan_id      text NOT NULL REFERENCES seqmig.plans (id),
    step_id      text NOT NULL,
    phase        text NOT NULL,
    action       text NOT NULL CHECK (action IN ('apply', 'rollback')),
    actor        text NOT NULL,
    -- A 'running' row whose backend is gone (or was replaced by a newer one with the same
    -- pid) is an interrupted step: see seqmig::exec::state.
    backend_pid  integer NOT NULL DEFAULT pg_backend_pid(),
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    duration_ms  bigint,
    outcome      text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'ok', 'failed')),
    sqlstate     text,
    message      text,
    attempts     integer NOT NULL DEFAULT 0
);
CREATE INDEX step_runs_plan_step ON seqmig.step_runs (plan_id, step_id, id);

-- The authority flag per change (DESIGN.md §3). Plan SQL and applications read it through
-- seqmig.flag(name); a missing flag means the old shape is authoritative.
CREATE TABLE seqmig.flags (
    name       text PRIMARY KEY,
    authority  text NOT NULL CHECK (authority IN ('old', 'new')),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Plain SQL and STABLE so the planner can inline it into trigger bodies.
CREATE FUNCTION seqmig.flag(name text) RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce((SELECT f.authority FROM seqmig.flags f WHERE f.name = $1), 'old') $$;
