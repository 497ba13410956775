//! The soak gate in front of `contract` (DESIGN.md §6): the one irreversible step runs only
//! when evidence recorded in the database says it is safe. This module owns the evidence
//! tables of the ledger ([`LEDGER_SQL`]), the gate configuration (`[gate]`, `[[tier]]`,
//! `[governance]` in `seqmig.toml`), the evaluation of every criterion against the database
//! ([`evaluate`]), the recording of evidence (observations, approvals, client and statement
//! censuses) and of every bypass ([`record_break_glass`]).
//!
//! It hands the executor [`decide`] before `contract` (a [`GateDecision`] holding the
//! [`GateReport`]: open, closed and why, or bypassed and audited), and [`recheck_before_drop`]
//! right before the drop. Missing evidence is never a pass.

mod config;
mod evaluate;
mod evidence;
mod objects;

pub use config::{
    BlastRadius, CRITERIA, Criteria, GateConfig, Governance, ObservationRule, OldPathRule, Tier,
    format_duration, parse_duration, runbook_section,
};
pub use evaluate::{
    CriterionReport, GateDecision, GateReport, Passage, Verdict, blast_radius, decide, evaluate,
    recheck_before_drop,
};
pub use evidence::{
    AuditEvent, SampleSummary, approve, audit_events, break_glass_events, contract_decision,
    record_break_glass, record_contract_resumed, record_gate_open, record_observation, stored_plan,
    take_sample,
};
pub use objects::{OldObject, dropped_objects, plan_tables};

/// The marker on seqmig's own statements (defined in [`crate::db`], where every connection
/// is opened): `old_path_silent` leaves marked statements out.
pub use crate::db::OWN_STATEMENT_MARKER as MARKER;

/// The gate's part of the ledger: idempotent DDL. The executor's versioned ledger runs it as
/// its version 2 (`exec::ledger::ensure`), which every command that records evidence calls. Version 4 ([`EVIDENCE_GUARD_SQL`]) makes every evidence table append-only, TRUNCATE
/// included, so a break-glass stays visible forever after.
pub const LEDGER_SQL: &str = r#"
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
"#;

/// The ledger's evidence guard (issue 18.5), run as a later ledger version: every evidence
/// table refuses UPDATE (but for seqmig's own finishing of a phase run and refreshing of an
/// approval), DELETE and TRUNCATE, and takes its times from the server clock at insert.
/// Idempotent. What it promises against which role: book/src/trust-model.md.
pub const EVIDENCE_GUARD_SQL: &str = include_str!("evidence_guard.sql");

/// The evidence tables [`EVIDENCE_GUARD_SQL`] guards; `evidence_intact` checks their triggers.
pub const EVIDENCE_TABLES: [&str; 7] = [
    "phase_runs",
    "soak_observations",
    "approvals",
    "audit_log",
    "soak_samples",
    "client_samples",
    "statement_samples",
];

/// Why the gate could not be evaluated or evidence not recorded. A closed gate is not an
/// error: it is a [`GateReport`] that is not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoakError {
    #[error("invalid gate configuration: {0}")]
    Config(String),
    #[error("failed to {action}: {source}")]
    Db {
        action: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("no plan {0} in seqmig.plans; give the plan file with --plan FILE or apply it first")]
    UnknownPlan(String),
    #[error("{0} plans are active in seqmig.plans; name one with --plan-id")]
    AmbiguousPlan(usize),
    #[error(
        "no active plan in this database (a completed or rolled-back plan is only found by name); give --plan FILE or --plan-id ID ('seqmig status' lists them)"
    )]
    NoPlan,
    #[error("stored plan {id} cannot be read: {source}")]
    StoredPlan {
        id: String,
        #[source]
        source: crate::plan::PlanFileError,
    },
    #[error(
        "sessions of the old release are still connected ({sessions}); the drop of plan {plan_id} \
         would break them: stop them, then run 'seqmig apply --phase contract' again"
    )]
    OldClientsConnected { plan_id: String, sessions: String },
    #[error("a break-glass needs a reason: --break-glass --reason \"why the gate is bypassed\"")]
    EmptyReason,
    #[error("role must not be empty: seqmig approve --role ROLE")]
    EmptyRole,
}

impl SoakError {
    pub(crate) fn db(action: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> SoakError {
        let action = action.into();
        move |source| SoakError::Db { action, source }
    }
}
