-- seqmig ledger v2: the evidence the soak gate reads (DESIGN.md §6) and the audit trail of
-- every bypass. The gate fills these; the executor writes break-glass entries.

CREATE TABLE seqmig.soak_observations (
    id          bigserial PRIMARY KEY,
    plan_id     text REFERENCES seqmig.plans (id),
    name        text NOT NULL,
    passed      boolean NOT NULL,
    value       text,
    detail      text,
    source      text,
    actor       text NOT NULL,
    observed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX soak_observations_plan ON seqmig.soak_observations (plan_id, name, observed_at);

CREATE TABLE seqmig.approvals (
    id          bigserial PRIMARY KEY,
    plan_id     text NOT NULL REFERENCES seqmig.plans (id),
    role        text NOT NULL,
    actor       text NOT NULL,
    comment     text,
    approved_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (plan_id, role, actor)
);

CREATE TABLE seqmig.audit_log (
    id      bigserial PRIMARY KEY,
    plan_id text,
    event   text NOT NULL,
    actor   text NOT NULL,
    reason  text,
    detail  jsonb NOT NULL DEFAULT '{}',
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_plan ON seqmig.audit_log (plan_id, at);
