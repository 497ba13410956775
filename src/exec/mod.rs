//! The executor: applies one phase of a stored [`Plan`] to a database, undoes the last one,
//! and says where things stand (DESIGN.md §5).
//!
//! - [`crate::ledger`] owns schema `seqmig`; the executor records its runs there.
//! - [`Runner`] (in `guard`) is the only way to a connection that applies anything: before
//!   any step runs it takes its plan's session advisory lock (a second runner on the same
//!   plan is refused with the holder named; runners on other plans run side by side) and,
//!   briefly, the ledger bookkeeping lock while it checks the plan against the plans in
//!   flight and stores it.
//! - `retry` bounds every DDL statement by a short `lock_timeout`, retries with growing
//!   timeouts and jittered sleeps within a total budget, and names the blocking sessions.
//! - [`state`] turns ledger rows into phase and step states (done, failed, interrupted) and
//!   the exact next command; `seqmig status` prints it.
//!
//! The CLI hands in validated options and a [`Reporter`]; nothing here prints.

mod guard;
pub mod inflight;
mod leftover;
mod retry;
pub mod state;

use std::fmt;
use std::time::Duration;

pub use crate::soak::GateConfig;
pub use guard::{DryRun, Runner, connect_observer, dry_run};
pub use retry::{Blocker, RetryPolicy};
pub use state::{PhaseState, PhaseStatus, PlanStatus, StatusReport, StepState, StepStatus, status};

use crate::ledger::{self, LedgerError};
use crate::plan::{Phase, Plan, PlanFileError, Step};

/// `application_name` of every seqmig session, so DBAs see who holds what.
pub fn application_name() -> String {
    crate::db::default_application_name()
}

/// Which plan a command is about.
#[derive(Debug, Clone)]
pub enum PlanSource {
    /// A plan file, already read and checked against its id; `path` is how the user named
    /// it, for the next command while the plan is not stored yet.
    File { plan: Box<Plan>, path: String },
    /// A stored plan by id or unambiguous id prefix (`3f2a9c`, `sha256:3f2a…`).
    Id(String),
    /// The only active plan in the database.
    Active,
}

/// Where a runner connects and who it is.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    pub connection: crate::db::ConnectOptions,
    /// Recorded in the ledger and shown to a second runner.
    pub actor: String,
    pub retry: RetryPolicy,
}

/// How `contract` gets past the soak gate (`crate::soak`): on evidence, evaluated with
/// `config`, or by a recorded break-glass.
#[derive(Debug, Clone, Default)]
pub struct ContractGate {
    pub config: crate::soak::GateConfig,
    pub passage: GatePassage,
}

/// Whether a closed gate refuses or is bypassed.
#[derive(Debug, Clone, Default)]
pub enum GatePassage {
    /// Only on evidence (fails closed: missing evidence is not a pass).
    #[default]
    Evidence,
    /// `--break-glass --reason …`: bypass a closed gate; the bypass is written to `audit_log`.
    BreakGlass { reason: String },
}

impl ContractGate {
    /// The gate with the built-in criteria, passed on evidence only.
    pub fn evidence() -> ContractGate {
        ContractGate::default()
    }

    /// The gate with the built-in criteria, bypassed (and audited) when closed.
    pub fn break_glass(reason: &str) -> ContractGate {
        ContractGate {
            passage: GatePassage::BreakGlass { reason: reason.to_string() },
            ..ContractGate::default()
        }
    }
}

/// Apply or rollback, as recorded in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Apply,
    Rollback,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Apply => "apply",
            Action::Rollback => "rollback",
        }
    }
}

/// What the executor tells its caller while it works.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    PhaseStarted {
        plan: &'a str,
        phase: Phase,
        action: Action,
        steps: usize,
    },
    StepSkipped {
        step: &'a Step,
        reason: &'static str,
    },
    StepStarted {
        step: &'a Step,
        action: Action,
    },
    /// A statement hit its `lock_timeout` (or a deadlock) and will be retried.
    Retrying {
        step: &'a Step,
        attempt: u32,
        lock_timeout: Duration,
        sleep: Duration,
        error: String,
    },
    /// An INVALID index left by an earlier failed `CONCURRENTLY` attempt was dropped.
    DroppedInvalidIndex {
        step: &'a Step,
        index: String,
    },
    /// A `DETACH PARTITION … CONCURRENTLY` an earlier attempt left pending was completed with
    /// `FINALIZE`.
    FinalizedDetach {
        step: &'a Step,
        partition: String,
    },
    /// After each committed batch of a backfill step, and once at its end (`finished`).
    BackfillProgress {
        step: &'a Step,
        progress: &'a crate::backfill::Progress,
        finished: bool,
    },
    StepDone {
        step: &'a Step,
        action: Action,
        elapsed: Duration,
        attempts: u32,
    },
    PhaseDone {
        phase: Phase,
        action: Action,
        ran: usize,
        skipped: usize,
    },
}

/// Receives [`Event`]s; the CLI prints them. `Send` because the backfill engine's progress
/// sink, which forwards to it, is.
pub trait Reporter: Send {
    fn report(&mut self, event: &Event<'_>);
}

/// A reporter that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;

impl Reporter for Quiet {
    fn report(&mut self, _: &Event<'_>) {}
}

/// The session holding the runner lock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holder {
    pub pid: i32,
    pub application_name: String,
    pub actor: Option<String>,
    pub command: Option<String>,
    pub since: Option<String>,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} (application '{}'", self.pid, self.application_name)?;
        if let Some(actor) = &self.actor {
            write!(f, ", actor '{actor}'")?;
        }
        if let Some(command) = &self.command {
            write!(f, ", running '{command}'")?;
        }
        if let Some(since) = &self.since {
            write!(f, ", since {since}")?;
        }
        f.write_str(")")
    }
}

/// What a finished apply or rollback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseReport {
    pub plan_id: String,
    pub phase: Phase,
    pub action: Action,
    pub ran: Vec<String>,
    pub skipped: Vec<String>,
    /// True when this run completed the plan's last phase.
    pub plan_complete: bool,
    /// What would come next: the next phase to apply, or after a rollback the phase that
    /// could be rolled back next.
    pub next: Option<String>,
}

/// Why the executor stopped. [`ExecError::is_refusal`] separates "no" (exit 1) from errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    #[error(transparent)]
    Connect(#[from] crate::db::DbError),
    #[error("failed to {context}: {}", describe_pg(source))]
    Db { context: String, source: tokio_postgres::Error },
    /// `what` is `plan 3f2a9c…` or the ledger bookkeeping lock.
    #[error(
        "another seqmig runner holds this database's {what}: {holder}; wait for it to finish (or stop it) and run the command again"
    )]
    Busy { what: String, holder: Holder },
    #[error(
        "plan {given} is stacked after plan {after}: its phase {phase} runs only once plan {after} has completed {needs} (plan {after} is through {through}); run 'seqmig apply --phase {needs} --plan-id {after}' first"
    )]
    StackedTooEarly { given: String, after: String, phase: Phase, needs: Phase, through: String },
    /// `conflict`: why the stacked contract may not run before the plan below's
    /// ([`crate::plan::inflight::ContractConflict`]).
    #[error(
        "plan {given} is stacked after plan {after} (through {through}) and {conflict}: its contract runs only once plan {after} has completed contract; run 'seqmig apply --phase contract --plan-id {after}' first"
    )]
    StackedContractWaits { given: String, after: String, conflict: String, through: String },
    #[error(
        "plan {given} is stacked after plan {after}, which is {state}; plan again from this database ('seqmig plan --from postgres://… --to …')"
    )]
    StackedOnGone { given: String, after: String, state: String },
    #[error(
        "the seqmig ledger in this database is version {found}, newer than this seqmig knows ({known}); upgrade seqmig"
    )]
    LedgerTooNew { found: i32, known: i32 },
    #[error("the ledger holds {what} '{value}', which this seqmig does not know; upgrade seqmig")]
    LedgerUnknownValue { what: String, value: String },
    #[error("refusing the plan file: {0}")]
    PlanFile(#[from] PlanFileError),
    #[error(
        "plan {plan} has blocking findings ({}); fix them and plan again — a blocked plan is never applied",
        codes.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
    )]
    PlanBlocked { plan: String, codes: Vec<crate::finding::FindingCode> },
    #[error("refusing the plan: {0}; nothing was changed")]
    Signature(#[from] crate::plan::signature::SignatureError),
    #[error("stored plan {plan} does not match its id: {source}")]
    StoredPlanCorrupt { plan: String, source: PlanFileError },
    #[error(
        "plan {active} is still in progress on this database; finish it or roll it back before starting plan {given} ('seqmig status --plan-id {active}')"
    )]
    OtherPlanActive { given: String, active: String },
    #[error(
        "plan {given} changes {object}, which plan {other} (in flight, through {through}) also changes; finish plan {other} or roll it back before applying plan {given} ('seqmig status --plan-id {other}')"
    )]
    OverlapsInFlight { given: String, other: String, through: String, object: String },
    #[error(
        "plan {given} was made on top of plan {assumed}, which is {state}; its starting schema is the one plan {assumed} leaves, so plan again from this database ('seqmig plan --from postgres://… --to …')"
    )]
    AssumedPlanGone { given: String, assumed: String, state: String },
    #[error(
        "no plan {0} is stored in this database; apply one with 'seqmig apply --plan FILE --phase expand'"
    )]
    UnknownPlan(String),
    #[error("plan id prefix '{prefix}' matches several stored plans: {}", matches.join(", "))]
    AmbiguousPlan { prefix: String, matches: Vec<String> },
    #[error("no active plan in this database; name one with --plan FILE or --plan-id ID")]
    NoActivePlan,
    /// `candidates`: each plan in flight as `3f2a9c4b1d07 (through switch)`.
    #[error(
        "several plans are in flight, so which one is ambiguous: {}; name one with --plan-id",
        candidates.join(", ")
    )]
    SeveralActivePlans { candidates: Vec<String> },
    #[error("phase {blocking} of plan {plan} is not complete ({state}); run '{next}' first")]
    OutOfOrder { plan: String, phase: Phase, blocking: Phase, state: String, next: String },
    #[error("cannot roll back phase {phase} of plan {plan}: {reason}")]
    RollbackRefused { plan: String, phase: Phase, reason: String },
    #[error(
        "the soak gate in front of contract is closed for plan {plan}: {}; see 'seqmig gate', or pass --break-glass --reason \"…\" to bypass it (recorded)",
        failing.join("; ")
    )]
    GateClosed { plan: String, failing: Vec<String> },
    #[error("{0}")]
    Gate(crate::soak::SoakError),
    #[error(
        "step {step} ({phase}) failed{}: {message}; {}; {}",
        sqlstate.as_deref().map(|s| format!(" with SQLSTATE {s}")).unwrap_or_default(),
        done_summary(done),
        retry_advice(sqlstate.as_deref(), next)
    )]
    StepFailed {
        step: String,
        phase: Phase,
        sqlstate: Option<String>,
        message: String,
        done: Vec<String>,
        next: String,
    },
    #[error(
        "gave up on step {step} ({phase}) after {attempts} attempts over {:.1} s: could not get its lock{}; {}; blocking sessions: {}; run '{next}' once they are gone",
        elapsed.as_secs_f64(),
        if lock_target.is_empty() { String::new() } else { format!(" on {lock_target}") },
        done_summary(done),
        blockers_summary(blockers)
    )]
    LockBudgetExhausted {
        step: String,
        phase: Phase,
        lock_target: String,
        attempts: u32,
        elapsed: Duration,
        blockers: Vec<Blocker>,
        done: Vec<String>,
        next: String,
    },
    /// `cause` is the engine's typed error (`None` when the copy ran but rows are still
    /// pending). It is not the error's `source`: `message` already says it, and the CLI
    /// prints the chain.
    #[error("backfill of step {step} failed: {message}; run '{next}' to resume")]
    Backfill {
        step: String,
        message: String,
        cause: Option<Box<crate::backfill::BackfillError>>,
        next: String,
    },
    #[error(
        "refusing to apply phase {phase} of plan {}: the database is not the schema the plan was made from: {}; nothing was changed; plan again from this database ('seqmig plan --from postgres://… --to …')",
        short_id(plan),
        drifts.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; ")
    )]
    Drift { plan: String, phase: Phase, drifts: Vec<Drift> },
    #[error("failed to {context}: {source}")]
    Introspect { context: String, source: crate::introspect::IntrospectError },
    #[error("failed to start the async runtime: {0}")]
    Runtime(String),
}

/// One object that is not as a step of the plan expects it before its phase (issue 18.3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Drift {
    /// The step whose expectation failed.
    pub step: String,
    /// `index public.orders_note_idx`, `column public.orders.price`.
    pub object: String,
    /// What differs: `does not exist`, `is '…', the plan expects '…'`.
    pub problem: String,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (step {})", self.object, self.problem, self.step)
    }
}

impl From<LedgerError> for ExecError {
    /// The executor's own wording for the ledger's failures (its `UnknownPlan` names the
    /// next command).
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Db { context, source } => ExecError::Db { context, source },
            LedgerError::TooNew { found, known } => ExecError::LedgerTooNew { found, known },
            LedgerError::StoredPlanCorrupt { plan, source } => ExecError::StoredPlanCorrupt { plan, source },
            LedgerError::UnknownPlan(id) => ExecError::UnknownPlan(id),
            LedgerError::AmbiguousPlan { prefix, matches } => ExecError::AmbiguousPlan { prefix, matches },
            LedgerError::UnknownValue { what, value } => ExecError::LedgerUnknownValue { what, value },
        }
    }
}

impl ExecError {
    /// True when the answer is "no" rather than a failure: another runner, a tampered or
    /// different plan, out-of-order work, a closed gate, a choice of plan the ledger leaves
    /// ambiguous. The CLI exits 1 for these.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ExecError::Busy { .. }
                | ExecError::PlanFile(_)
                | ExecError::PlanBlocked { .. }
                | ExecError::Signature(_)
                | ExecError::OtherPlanActive { .. }
                | ExecError::OverlapsInFlight { .. }
                | ExecError::AssumedPlanGone { .. }
                | ExecError::StackedTooEarly { .. }
                | ExecError::StackedContractWaits { .. }
                | ExecError::SeveralActivePlans { .. }
                | ExecError::AmbiguousPlan { .. }
                | ExecError::StackedOnGone { .. }
                | ExecError::OutOfOrder { .. }
                | ExecError::RollbackRefused { .. }
                | ExecError::GateClosed { .. }
                | ExecError::Drift { .. }
                | ExecError::Gate(crate::soak::SoakError::OldClientsConnected { .. })
        )
    }
}

/// What to do after a failed step. An integrity violation (SQLSTATE class 23) is the data's
/// doing: the same statement fails again until the rows it names are changed.
fn retry_advice(sqlstate: Option<&str>, next: &str) -> String {
    match sqlstate {
        Some(s) if violates_data(s) => format!(
            "rows in the database violate it, so retrying alone fails the same way: give those rows values that satisfy it, then run '{next}'"
        ),
        _ => format!("run '{next}' to retry"),
    }
}

/// An integrity violation (SQLSTATE class 23): rows hold what the statement refuses.
pub(crate) fn violates_data(sqlstate: &str) -> bool {
    sqlstate.starts_with("23")
}

fn done_summary(done: &[String]) -> String {
    if done.is_empty() {
        "no step of this run completed".to_string()
    } else {
        format!("already done in this run: {}", done.join(", "))
    }
}

fn blockers_summary(blockers: &[Blocker]) -> String {
    if blockers.is_empty() {
        return "none seen (the lock was released between attempts)".to_string();
    }
    blockers.iter().map(|b| b.to_string()).collect::<Vec<_>>().join("; ")
}

/// `message (SQLSTATE)` for database errors, the plain text otherwise.
pub fn describe_pg(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// The command a human should run next; `plan_flag` (`--plan-id 3f2a…`, `--plan FILE`) only
/// when the plan is not the active one.
pub fn command_for(action: Action, phase: Phase, plan_flag: Option<&str>) -> String {
    let mut s = format!("seqmig {} --phase {phase}", action.as_str());
    if let Some(flag) = plan_flag {
        s.push(' ');
        s.push_str(flag);
    }
    s
}

/// The 12-hex-digit form of a plan id.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// A future an observer hands back; boxed so the trait stays object-safe.
pub type ObserverFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// Watches each step while the runner applies or rolls it back: `seqmig rehearse` uses it to
/// measure the locks a step really takes. It cannot change what runs; it only looks.
pub trait StepObserver: Send {
    /// Before a step's first attempt; `pid` is the runner's backend, which will run it.
    fn before_step<'a>(&'a mut self, step: &'a Step, action: Action, pid: i32) -> ObserverFuture<'a>;
    /// Inside a transactional step's transaction, after its SQL ran and before COMMIT: every
    /// lock the step took is still held by `client`'s session. Not called for steps that run
    /// outside a transaction, nor for backfills.
    fn in_transaction<'a>(
        &'a mut self,
        client: &'a tokio_postgres::Client,
        step: &'a Step,
        action: Action,
    ) -> ObserverFuture<'a>;
    /// After the step finished; `ok` is false when it failed.
    fn after_step<'a>(&'a mut self, step: &'a Step, action: Action, ok: bool) -> ObserverFuture<'a>;
}
