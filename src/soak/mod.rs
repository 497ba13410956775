//! The soak gate in front of `contract` (DESIGN.md §6): the one irreversible step runs only
//! when evidence recorded in the database says it is safe. This module owns what the
//! evidence means (the tables, their DDL and queries are [`crate::ledger`]'s), the gate
//! configuration (`[gate]`, `[[tier]]`, `[governance]` in `seqmig.toml`), the evaluation
//! of every criterion against the database ([`evaluate`]), the recording of evidence
//! (observations, approvals, client and statement censuses) and of every bypass
//! ([`record_break_glass`]).
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
pub use crate::ledger::EVIDENCE_TABLES;

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
    /// Each plan in flight as `3f2a9c4b1d07 (through switch)`.
    #[error("several plans are in flight, so which one is ambiguous: {}; name one with --plan-id", .0.join(", "))]
    AmbiguousPlan(Vec<String>),
    #[error("plan id prefix '{prefix}' matches several stored plans: {}", matches.join(", "))]
    AmbiguousPlanId { prefix: String, matches: Vec<String> },
    #[error(transparent)]
    Ledger(crate::ledger::LedgerError),
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

impl From<crate::ledger::LedgerError> for SoakError {
    fn from(e: crate::ledger::LedgerError) -> Self {
        use crate::ledger::LedgerError;
        match e {
            LedgerError::Db { context, source } => SoakError::Db { action: context, source },
            LedgerError::UnknownPlan(id) => SoakError::UnknownPlan(id),
            LedgerError::AmbiguousPlan { prefix, matches } => SoakError::AmbiguousPlanId { prefix, matches },
            LedgerError::StoredPlanCorrupt { plan, source } => SoakError::StoredPlan { id: plan, source },
            other => SoakError::Ledger(other),
        }
    }
}

impl SoakError {
    pub(crate) fn db(action: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> SoakError {
        let action = action.into();
        move |source| SoakError::Db { action, source }
    }
}
