-- seqmig ledger: the gate's evidence (soak observations, approvals, the append-only audit
-- log, client and statement censuses). Idempotent.

CREATE SCHEMA IF NOT EXISTS seqmig;

-- External checks recorded with `seqmig soak record`: error rates, SLO probes, humans.
-- plan_id NULL = evidence about the service, counted for every plan.
CREATE TABLE IF NOT EXISTS seqmig.soak_observations (
    id          bigserial PRIMARY KEY,
    plan_id     text,
    name        text NOT NULL,
    passed      boolean NOT NULL,
    value       text,
    detail      text,
    source      text,
    actor       text NOT NULL,
    observed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS soak_observations_observed_at ON seqmig.soak_observations (observed_at);

-- `seqmig approve --role R`: one row per approval; the governance matrix decides which count.
CREATE TABLE IF NOT EXISTS seqmig.approvals (
    id          bigserial PRIMARY KEY,
    plan_id     text NOT NULL,
    role        text NOT NULL,
    actor       text NOT NULL,
    comment     text,
    approved_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (plan_id, role, actor)
);

-- Every decision that matters later: break-glass, approvals. For a break-glass, detail is
-- {"phase": "contract", "failing": [{"criterion", "evidence", "verdict"}, …]}.
CREATE TABLE IF NOT EXISTS seqmig.audit_log (
    id      bigserial PRIMARY KEY,
    plan_id text,
    event   text NOT NULL,
    actor   text NOT NULL,
    reason  text,
    detail  jsonb NOT NULL DEFAULT '{}',
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_log_plan ON seqmig.audit_log (plan_id, at);

CREATE OR REPLACE FUNCTION seqmig.audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'seqmig.audit_log is append-only';
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgname = 'audit_log_append_only'
                     AND tgrelid = 'seqmig.audit_log'::regclass) THEN
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON seqmig.audit_log
            FOR EACH ROW EXECUTE FUNCTION seqmig.audit_log_append_only();
    END IF;
END
$$;

-- One row per census (`seqmig soak sample`, from cron): when, whether statement statistics
-- could be read, since when they count, and which old paths they were recorded for.
CREATE TABLE IF NOT EXISTS seqmig.soak_samples (
    id                   bigserial PRIMARY KEY,
    taken_at             timestamptz NOT NULL DEFAULT now(),
    statements_available boolean NOT NULL,
    stats_reset          timestamptz,
    -- The old paths whose statements this census recorded; a census that did not track a
    -- plan's old path is no reading for that plan.
    tracked              text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS soak_samples_taken_at ON seqmig.soak_samples (taken_at);

-- Client sessions of this database per census, grouped by application_name.
CREATE TABLE IF NOT EXISTS seqmig.client_samples (
    sample_id        bigint NOT NULL REFERENCES seqmig.soak_samples (id) ON DELETE CASCADE,
    taken_at         timestamptz NOT NULL,
    application_name text NOT NULL,
    usename          text,
    client_addr      text,
    sessions         integer NOT NULL
);
CREATE INDEX IF NOT EXISTS client_samples_taken_at ON seqmig.client_samples (taken_at);

-- pg_stat_statements counters of this database's DML per census, so that calls can be
-- counted from the moment switch succeeded.
CREATE TABLE IF NOT EXISTS seqmig.statement_samples (
    sample_id bigint NOT NULL REFERENCES seqmig.soak_samples (id) ON DELETE CASCADE,
    taken_at  timestamptz NOT NULL,
    userid    oid NOT NULL,
    queryid   bigint NOT NULL,
    calls     bigint NOT NULL,
    query     text NOT NULL
);
CREATE INDEX IF NOT EXISTS statement_samples_sample_id ON seqmig.statement_samples (sample_id);
