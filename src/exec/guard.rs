//! The runner (DESIGN.md §5, issue 20). [`Runner::acquire`] connects, sets the session's
//! timeouts, creates or upgrades the ledger and hands out `apply` / `rollback`; the
//! connection never leaves the runner, so there is no way to apply a step without holding
//! the locks (STYLE.md habit 11):
//!
//! - one session advisory lock per plan: only one runner works on a plan at a time, and a
//!   second one is refused with the holder (pid, actor, command) named. Runners on different
//!   plans run side by side.
//! - one short bookkeeping lock for the whole ledger, held while a runner resolves its plan,
//!   checks it against the plans in flight (overlap, stacking) and stores it, then
//!   released: two first applies of overlapping plans cannot both pass the check. Others
//!   wait for it (bounded by the retry budget).
//!
//! Both are released when the runner lets go or its session ends, including when the
//! process is killed.

use std::collections::BTreeMap;
use std::time::Instant;

use tokio_postgres::Client;

use crate::db::ConnectOptions;

use super::leftover::{self, DetachState, IndexState};
use super::retry::{self, Blocker, Jitter};
use super::state::{PhaseState, PlanState};
use super::{
    Action, ContractGate, Drift, Event, ExecError, GatePassage, Holder, PhaseReport, PlanSource, Reporter,
    RunnerOptions, StepObserver, application_name, command_for, describe_pg, ledger,
};
use crate::ledger::{RunOutcome, StoredPlanState};
use crate::plan::{IndexBuild, PartitionDetach, Phase, Plan, Step};
use crate::soak;

/// Class of seqmig's advisory locks ("seqm").
const RUNNER_LOCK_CLASSID: u32 = 0x7365_716d;
/// Session advisory lock key of the ledger bookkeeping ("seqm", "ig\0\x02"), bigint form.
const BOOKKEEPING_OBJID: u32 = 0x6967_0002;
const BOOKKEEPING_LOCK: i64 = ((RUNNER_LOCK_CLASSID as i64) << 32) | BOOKKEEPING_OBJID as i64;
/// The database-wide runner lock of the seqmig releases before several plans in flight
/// ("seqm", "ig\0\x01"), bigint form: those took it exclusively for a whole run and refused
/// to start without it. A runner holds it in shared mode for its session, so that an older
/// runner cannot start beside it, and it cannot start beside an older runner.
const LEGACY_RUNNER_OBJID: u32 = 0x6967_0001;
const LEGACY_RUNNER_LOCK: i64 = ((RUNNER_LOCK_CLASSID as i64) << 32) | LEGACY_RUNNER_OBJID as i64;
/// The per-plan locks take the two-key form: this class ("sqpl") and the plan id's first 32
/// bits. Two plans sharing them would only serialise, never corrupt anything.
const PLAN_LOCK_CLASSID: u32 = 0x7371_706c;

/// The second key of a plan's lock.
fn plan_lock_key(plan_id: &str) -> u32 {
    let hex = plan_id.strip_prefix("sha256:").unwrap_or(plan_id);
    match hex.get(..8).and_then(|h| u32::from_str_radix(h, 16).ok()) {
        Some(k) => k,
        // Not a sha256 id (a hand-made plan): FNV-1a of the text.
        None => hex.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193)),
    }
}

/// Opens a session (URL, libpq variables and TLS are `crate::db`'s business).
async fn connect(opts: &ConnectOptions, application: &str) -> Result<Client, ExecError> {
    Ok(crate::db::connect(opts, application).await?)
}

/// A read-only session for `status` and `--dry-run`: it cannot change anything.
pub async fn connect_observer(opts: &ConnectOptions) -> Result<Client, ExecError> {
    let client = connect(opts, &application_name()).await?;
    client
        .batch_execute("SET default_transaction_read_only = on")
        .await
        .map_err(|source| ExecError::Db { context: "open a read-only session".into(), source })?;
    Ok(client)
}

/// The sessions holding seqmig advisory locks matching `filter` (on `pg_locks l`).
async fn lock_holders_where(client: &Client, filter: &str) -> Result<Vec<Holder>, ExecError> {
    let (runner_cols, runner_join) =
        ledger::runs::runner_columns(ledger::runner_registry_exists(client).await?);
    let sql = format!(
        "SELECT l.pid, coalesce(a.application_name, ''), {runner_cols}
         FROM pg_locks l
         LEFT JOIN pg_stat_activity a ON a.pid = l.pid
         {runner_join}
         WHERE l.locktype = 'advisory' AND l.granted
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND {filter}
         ORDER BY l.pid"
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(|source| ExecError::Db { context: "find the runner lock holder".into(), source })?;
    Ok(rows
        .iter()
        .map(|r| Holder {
            pid: r.get(0),
            application_name: r.get(1),
            actor: r.get(2),
            command: r.get(3),
            since: r.get(4),
        })
        .collect())
}

/// A runner working on any plan in this database, if any (the first by pid).
pub async fn lock_holder(client: &Client) -> Result<Option<Holder>, ExecError> {
    Ok(lock_holders_where(client, &format!("l.classid = {PLAN_LOCK_CLASSID}::oid AND l.objsubid = 2"))
        .await?
        .into_iter()
        .next())
}

/// The runner working on plan `plan_id`, if any.
pub async fn plan_lock_holder(client: &Client, plan_id: &str) -> Result<Option<Holder>, ExecError> {
    let key = plan_lock_key(plan_id);
    Ok(lock_holders_where(
        client,
        &format!("l.classid = {PLAN_LOCK_CLASSID}::oid AND l.objid = {key}::oid AND l.objsubid = 2"),
    )
    .await?
    .into_iter()
    .next())
}

/// Where `pg_locks` shows the ledger bookkeeping lock held.
fn bookkeeping_held() -> String {
    format!(
        "l.classid = {RUNNER_LOCK_CLASSID}::oid AND l.objid = {BOOKKEEPING_OBJID}::oid AND l.objsubid = 1"
    )
}

/// Where `pg_locks` shows the older releases' runner lock held exclusively.
fn legacy_held() -> String {
    format!(
        "l.classid = {RUNNER_LOCK_CLASSID}::oid AND l.objid = {LEGACY_RUNNER_OBJID}::oid AND l.objsubid = 1 \
         AND l.mode = 'ExclusiveLock'"
    )
}

/// An advisory lock a runner waits for, at most its retry budget.
struct WaitedLock {
    /// `SELECT pg_try_advisory_lock…($1)`, in the mode wanted.
    try_sql: &'static str,
    key: i64,
    /// What the lock is, in errors.
    what: &'static str,
    /// Where `pg_locks` shows the lock held by the session in the way.
    held_where: String,
    poll: std::time::Duration,
}

/// Tries `lock` until it is taken or `budget` is spent; then [`ExecError::Busy`] names the
/// session that holds it.
async fn wait_for_lock(
    client: &Client,
    lock: WaitedLock,
    budget: std::time::Duration,
) -> Result<(), ExecError> {
    let start = Instant::now();
    loop {
        let locked: bool = client
            .query_one(lock.try_sql, &[&lock.key])
            .await
            .map_err(|source| ExecError::Db { context: format!("take the {}", lock.what), source })?
            .get(0);
        if locked {
            return Ok(());
        }
        if start.elapsed() >= budget {
            let holder = lock_holders_where(client, &lock.held_where)
                .await?
                .into_iter()
                .next()
                .unwrap_or_else(unknown_holder);
            return Err(ExecError::Busy { what: lock.what.into(), holder });
        }
        tokio::time::sleep(lock.poll).await;
    }
}

fn unknown_holder() -> Holder {
    Holder {
        pid: 0,
        application_name: "unknown (released while looking)".into(),
        actor: None,
        command: None,
        since: None,
    }
}

/// Finds a stored plan by full id or unambiguous prefix ([`ledger::resolve_plan_id`]).
pub async fn resolve_id(client: &Client, prefix: &str) -> Result<String, ExecError> {
    Ok(ledger::resolve_plan_id(client, prefix).await?)
}

/// One step's work for the retry loop ([`Runner::run_step_attempts`]): what it runs and
/// where its attempts are recorded.
#[derive(Clone, Copy)]
struct StepWork<'a> {
    step: &'a Step,
    action: Action,
    /// The step's SQL, run as one transaction when `transactional`.
    sql: &'a str,
    transactional: bool,
    /// The statements run one by one otherwise (`CONCURRENTLY` steps).
    statements: &'a [String],
    /// The `CONCURRENTLY` index build among `statements`, if any.
    index_build: Option<&'a IndexBuild>,
    /// The `DETACH PARTITION … CONCURRENTLY` among `statements`, if any.
    detach: Option<&'a PartitionDetach>,
    /// The step's row in the ledger.
    row_id: i64,
    /// Steps done before this one, named in a failure.
    done: &'a [String],
}

/// How a plan was found: the plan, its ledger state (`None` when not stored yet).
struct Resolved {
    plan: Plan,
    stored_state: Option<StoredPlanState>,
    /// The plan file's path as given, when there was one.
    path: Option<String>,
}

impl Resolved {
    /// How a next command names the plan: not at all when it is the active one, by file
    /// while it is not stored, by id otherwise.
    fn plan_flag(&self) -> Option<String> {
        match (self.stored_state, &self.path) {
            (Some(StoredPlanState::Active), _) => None,
            (None, Some(path)) => Some(format!("--plan {path}")),
            _ => Some(format!("--plan-id {}", self.plan.short_id())),
        }
    }
}

/// `latest_complete`: with no active plan, `PlanSource::Active` means the most recently
/// completed one (rollback of a finished plan's last phase).
async fn resolve(client: &Client, source: &PlanSource, latest_complete: bool) -> Result<Resolved, ExecError> {
    let has_ledger = ledger::version(client).await? > 0;
    match source {
        PlanSource::File { plan, path } => {
            let path = Some(path.clone());
            if !has_ledger {
                if let Some(a) = plan.assumes.first() {
                    return Err(ExecError::AssumedPlanGone {
                        given: super::short_id(&plan.id).to_string(),
                        assumed: super::short_id(&a.id).to_string(),
                        state: "not stored in this database".into(),
                    });
                }
                return Ok(Resolved { plan: (**plan).clone(), stored_state: None, path });
            }
            let stored = ledger::stored_plan(client, &plan.id).await?;
            check_in_flight(client, plan, stored.is_none()).await?;
            Ok(match stored {
                Some(s) => Resolved { plan: s.plan, stored_state: Some(s.state), path },
                None => Resolved { plan: (**plan).clone(), stored_state: None, path },
            })
        }
        PlanSource::Id(prefix) => {
            let id = resolve_id(client, prefix).await?;
            let stored =
                ledger::stored_plan(client, &id).await?.ok_or_else(|| ExecError::UnknownPlan(id.clone()))?;
            Ok(Resolved { plan: stored.plan, stored_state: Some(stored.state), path: None })
        }
        PlanSource::Active => {
            if !has_ledger {
                return Err(ExecError::NoActivePlan);
            }
            let mut active = ledger::active_plan_ids(client).await?;
            if active.is_empty() && latest_complete {
                active =
                    ledger::latest_plan_id(client, StoredPlanState::Complete).await?.into_iter().collect();
            }
            match active.as_slice() {
                [] => Err(ExecError::NoActivePlan),
                [id] => {
                    let stored = ledger::stored_plan(client, id)
                        .await?
                        .ok_or_else(|| ExecError::UnknownPlan(id.clone()))?;
                    Ok(Resolved { plan: stored.plan, stored_state: Some(stored.state), path: None })
                }
                _ => Err(ExecError::SeveralActivePlans {
                    candidates: super::inflight::candidates(client).await?,
                }),
            }
        }
    }
}

/// Where `plan` may run beside the plans in flight (issue 20): not where it names an object
/// one of them names, nor beside one when either names no object at all (a plan built by
/// hand: what it touches is unknown). On its first apply (`first`), the plans it was made
/// on top of must be in flight or complete here: its starting schema is the one they leave.
async fn check_in_flight(client: &Client, plan: &Plan, first: bool) -> Result<(), ExecError> {
    use crate::plan::inflight::{overlap, plan_objects};
    let flights = super::inflight::in_flight(client).await?;
    let given = super::short_id(&plan.id).to_string();
    for other in flights.iter().filter(|f| f.plan.id != plan.id) {
        // Stacked explicitly: the overlap is the point, and the order is kept by
        // `Runner::check_stacked`.
        if plan.after.as_deref() == Some(other.plan.id.as_str())
            || other.plan.after.as_deref() == Some(plan.id.as_str())
        {
            continue;
        }
        if let Some(object) = overlap(plan, &other.plan).into_iter().next() {
            return Err(ExecError::OverlapsInFlight {
                given,
                other: super::short_id(&other.plan.id).to_string(),
                through: other.through(),
                object,
            });
        }
        if plan_objects(plan).is_empty() || plan_objects(&other.plan).is_empty() {
            return Err(ExecError::OtherPlanActive {
                given,
                active: super::short_id(&other.plan.id).to_string(),
            });
        }
    }
    if first {
        for a in &plan.assumes {
            let state = ledger::stored_plan(client, &a.id).await?.map(|s| s.state);
            if !matches!(state, Some(StoredPlanState::Active | StoredPlanState::Complete)) {
                return Err(ExecError::AssumedPlanGone {
                    given,
                    assumed: super::short_id(&a.id).to_string(),
                    state: state.map_or_else(|| "not stored in this database".into(), |s| s.to_string()),
                });
            }
        }
    }
    Ok(())
}

/// The phase of the plan stacked on that `phase` of a stacked plan waits for (the rules of
/// book/src/several-plans.md): the same phase, except contract, which waits for switch.
/// Through `switch` this means the plan below has the objects the stacked one builds on,
/// and its new release is out before the stacked one's. A stacked contract that removes
/// what the plan below still needs waits for its contract besides ([`check_stacked`]).
pub fn stacked_needs(phase: Phase) -> Phase {
    match phase {
        Phase::Contract => Phase::Switch,
        p => p,
    }
}

/// Takes the older releases' database-wide runner lock in shared mode for the session
/// ([`LEGACY_RUNNER_LOCK`]), waiting at most `budget` while an older seqmig holds it;
/// then [`ExecError::Busy`] names that runner.
async fn lock_legacy_shared(client: &Client, budget: std::time::Duration) -> Result<(), ExecError> {
    let lock = WaitedLock {
        try_sql: "SELECT pg_try_advisory_lock_shared($1)",
        key: LEGACY_RUNNER_LOCK,
        what: "database-wide runner lock (the one seqmig releases before several plans in flight take)",
        held_where: legacy_held(),
        poll: std::time::Duration::from_millis(50),
    };
    wait_for_lock(client, lock, budget).await
}

/// How [`check_stacked`] finds out whether a runner works on the plan below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LockProbe {
    /// Take its lock and give it back at once (a runner, which takes locks anyway).
    Take,
    /// Look in `pg_locks` (a dry run, which takes no lock).
    Look,
}

/// A stacked plan's `phase` runs only once the plan it is stacked after has completed
/// [`stacked_needs`] (or completed altogether), and not while a runner works on that plan:
/// it could be rolling it back. Its contract may run before the plan below's, once that
/// one is past switch, when [`crate::plan::inflight::stacked_contract_conflict`] finds
/// nothing between the two.
async fn check_stacked(
    client: &Client,
    plan: &Plan,
    phase: Phase,
    probe: LockProbe,
) -> Result<(), ExecError> {
    let Some(after) = &plan.after else { return Ok(()) };
    let given = plan.short_id().to_string();
    let short = super::short_id(after).to_string();
    let state = ledger::stored_plan(client, after).await?.map(|s| s.state);
    match state {
        Some(StoredPlanState::Complete) => return Ok(()),
        Some(StoredPlanState::Active) => {}
        _ => {
            return Err(ExecError::StackedOnGone {
                given,
                after: short,
                state: state.map_or("not stored in this database", |s| s.as_str()).to_string(),
            });
        }
    }
    let busy = match probe {
        LockProbe::Take => plan_busy(client, after).await?,
        LockProbe::Look => plan_lock_holder(client, after).await?,
    };
    if let Some(holder) = busy {
        return Err(ExecError::Busy {
            what: format!("plan {short} (which plan {given} is stacked after)"),
            holder,
        });
    }
    let flights = super::inflight::in_flight(client).await?;
    let Some(below) = flights.iter().find(|f| f.plan.id == *after) else { return Ok(()) };
    let needs = stacked_needs(phase);
    if !reached(below, needs) {
        return Err(ExecError::StackedTooEarly {
            given,
            after: short,
            phase,
            needs,
            through: below.through(),
        });
    }
    if phase == Phase::Contract
        && !reached(below, Phase::Contract)
        && let Some(conflict) = crate::plan::inflight::stacked_contract_conflict(plan, &below.plan)
    {
        return Err(ExecError::StackedContractWaits {
            given,
            after: short,
            conflict: conflict.to_string(),
            through: below.through(),
        });
    }
    Ok(())
}

/// Whether a runner other than this session works on `plan_id` (its lock taken and given
/// back at once).
async fn plan_busy(client: &Client, plan_id: &str) -> Result<Option<Holder>, ExecError> {
    let key = plan_lock_key(plan_id) as i32;
    let class = PLAN_LOCK_CLASSID as i32;
    let free: bool = client
        .query_one("SELECT pg_try_advisory_lock($1::int4, $2::int4)", &[&class, &key])
        .await
        .map_err(|source| ExecError::Db { context: "look at a plan lock".into(), source })?
        .get(0);
    if free {
        let _ = client.execute("SELECT pg_advisory_unlock($1::int4, $2::int4)", &[&class, &key]).await;
        return Ok(None);
    }
    Ok(Some(plan_lock_holder(client, plan_id).await?.unwrap_or_else(unknown_holder)))
}

/// Whether every step of `plan` in phases up to `phase` is applied.
fn reached(f: &crate::plan::inflight::InFlight, phase: Phase) -> bool {
    f.plan.steps.iter().filter(|s| s.phase <= phase).all(|s| f.applied.contains(&s.id))
}

/// Refuses a plan with blocking findings, and `phase` while an earlier phase is not complete.
fn check_order(r: &Resolved, state: &PlanState, phase: Phase) -> Result<(), ExecError> {
    if r.plan.is_blocked() {
        let codes = r.plan.findings.iter().filter(|f| f.is_error()).map(|f| f.code).collect();
        return Err(ExecError::PlanBlocked { plan: r.plan.short_id().to_string(), codes });
    }
    for earlier in Phase::ALL.into_iter().filter(|p| *p < phase) {
        let s = state.phase(&r.plan, earlier);
        if !s.is_complete() {
            return Err(ExecError::OutOfOrder {
                plan: r.plan.short_id().to_string(),
                phase,
                blocking: earlier,
                state: s.as_str().to_string(),
                next: command_for(Action::Apply, earlier, r.plan_flag().as_deref()),
            });
        }
    }
    Ok(())
}

/// What `--dry-run` found: the steps that would run, in order.
#[derive(Debug, Clone)]
pub struct DryRun {
    pub plan: Plan,
    pub phase: Phase,
    pub would_run: Vec<Step>,
    pub already_done: Vec<String>,
    pub stored: bool,
}

/// Everything `apply --dry-run` checks (plan, overlap, order, stacking), on a read-only session; no lock taken,
/// no ledger created.
pub async fn dry_run(
    opts: &ConnectOptions,
    source: &PlanSource,
    phase: Phase,
    verify_key: Option<&crate::plan::signature::PlanKey>,
) -> Result<DryRun, ExecError> {
    let client = connect_observer(opts).await?;
    let r = resolve(&client, source, false).await?;
    // A dry run refuses what the real run would: an unsigned or altered stored plan too.
    check_signature(verify_key, source, &r.plan)?;
    let state = if r.stored_state.is_some() {
        PlanState::load(&client, &r.plan.id).await?
    } else {
        PlanState::empty()
    };
    check_order(&r, &state, phase)?;
    // The stacking rules too, with the real run's words; the dry run takes no lock to look.
    check_stacked(&client, &r.plan, phase, LockProbe::Look).await?;
    let (mut would_run, mut already_done) = (Vec::new(), Vec::new());
    for step in r.plan.steps_of(phase) {
        if state.step(step).is_applied() {
            already_done.push(step.id.clone());
        } else {
            would_run.push(step.clone());
        }
    }
    Ok(DryRun { phase, would_run, already_done, stored: r.stored_state.is_some(), plan: r.plan })
}

/// With a key, only plans signed with it pass (issue 18.6): the plan as resolved, stored or
/// given. A stored plan has the id of the given file, so the same content: either signature
/// vouches for it (a plan first applied unsigned can be signed later).
fn check_signature(
    key: Option<&crate::plan::signature::PlanKey>,
    source: &PlanSource,
    resolved: &Plan,
) -> Result<(), ExecError> {
    let Some(key) = key else { return Ok(()) };
    if let PlanSource::File { plan, .. } = source
        && plan.id == resolved.id
        && key.verify(plan).is_ok()
    {
        return Ok(());
    }
    Ok(key.verify(resolved)?)
}

/// The holder of a database's runner lock, with the only connection that applies steps.
#[derive(Debug)]
pub struct Runner {
    client: Client,
    /// What the runner was started to do, shown to others with the plan it works on.
    command: String,
    /// The plan whose lock this runner holds, with the lock's second key.
    plan_lock: Option<(String, u32)>,
    /// Opened on the first lock timeout, to watch `pg_blocking_pids` while retrying.
    observer: Option<Client>,
    pid: i32,
    opts: RunnerOptions,
    backfill: crate::backfill::BackfillOptions,
    /// Workers per backfill: a partitioned table's partitions, or slices of another table's
    /// key (`--jobs`, `[backfill] jobs`).
    backfill_jobs: usize,
    /// Watches every step (`seqmig rehearse`); none in production runs.
    step_observer: ObserverSlot,
    /// Fault injection: abort the process after this many completed steps (see
    /// [`Runner::dangerous_abort_after_steps`]); `None` in every real run.
    abort_after_steps: Option<usize>,
    /// Steps this runner has completed (applied or undone), for `abort_after_steps`.
    steps_completed: usize,
    /// Apply and roll back only plans signed with this key ([`Runner::verify_signatures`]).
    verify_key: Option<crate::plan::signature::PlanKey>,
}

/// Holds the optional [`StepObserver`]; a trait object has no `Debug` of its own.
#[derive(Default)]
struct ObserverSlot(Option<Box<dyn StepObserver>>);

impl std::fmt::Debug for ObserverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(StepObserver)" } else { "None" })
    }
}

impl Runner {
    /// Connects, sets the session timeouts and brings the ledger up to date. No lock is
    /// taken yet: `apply` and `rollback` take their plan's lock (or fail with
    /// [`ExecError::Busy`] naming the holder) once they know the plan. `command` is what the
    /// holder is shown as doing to a second runner.
    pub async fn acquire(opts: RunnerOptions, command: &str) -> Result<Runner, ExecError> {
        let client = connect(&opts.connection, &application_name()).await?;
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|source| ExecError::Db { context: "start the runner session".into(), source })?
            .get(0);
        // Statements outside a step (ledger writes) never queue behind a lock for long.
        let ms = opts.retry.lock_timeout.as_millis();
        client
            .batch_execute(&format!("SET lock_timeout = '{ms}ms'; SET statement_timeout = 0"))
            .await
            .map_err(|source| ExecError::Db { context: "set the session timeouts".into(), source })?;
        // PostgreSQL 14+: a backend whose client vanished (killed runner) notices within a
        // second and ends, releasing the runner lock, instead of finishing a long statement.
        let _ = client.batch_execute("SET client_connection_check_interval = '1s'").await;
        lock_legacy_shared(&client, opts.retry.budget).await?;
        ledger::ensure(&client).await?;
        ledger::register_runner(&client, &opts.actor, command).await?;
        // Backfill batches wait for locks no longer than DDL does.
        let mut backfill = crate::backfill::BackfillOptions::default();
        backfill.lock_timeout = backfill.lock_timeout.min(opts.retry.lock_timeout);
        Ok(Runner {
            client,
            command: command.to_string(),
            plan_lock: None,
            observer: None,
            pid,
            opts,
            backfill,
            backfill_jobs: 1,
            step_observer: ObserverSlot::default(),
            abort_after_steps: None,
            steps_completed: 0,
            verify_key: None,
        })
    }

    /// Fault injection for the reliability tests (issue 10): the process aborts — no
    /// unwinding, no ledger update, no unlock, exactly like `kill -9` — right after the `n`-th
    /// step this runner completes has committed its ledger row. Resuming from there must end
    /// in the same state as an uninterrupted run. `seqmig apply` and `rollback` set it from
    /// `SEQMIG_FAULT_AFTER_STEPS`; nothing else should.
    pub fn dangerous_abort_after_steps(&mut self, n: usize) {
        self.abort_after_steps = Some(n);
    }

    /// Fault injection for the reliability tests: the process aborts right after the `n`-th
    /// backfill batch this runner's backfills commit (see [`crate::backfill::BatchFault`]).
    /// `seqmig apply` sets it from `SEQMIG_FAULT_AFTER_BATCHES`; nothing else should.
    pub fn dangerous_abort_after_batches(&mut self, n: usize) {
        self.backfill.fault = crate::backfill::BatchFault::dangerous_abort_after(n);
    }

    /// The backfill settings of `seqmig.toml`'s `[backfill]` (and their flags) for the
    /// backfills this runner applies.
    pub fn configure_backfill(&mut self, config: &crate::backfill::BackfillConfig) {
        config.apply(&mut self.backfill);
        if let Some(j) = config.jobs {
            self.backfill_jobs = j.max(1) as usize;
        }
    }

    /// From now on, apply and roll back only plans whose signature verifies with `key`
    /// (issue 18.6): the plan as resolved, stored or given, is checked before any step.
    pub fn verify_signatures(&mut self, key: crate::plan::signature::PlanKey) {
        self.verify_key = Some(key);
    }

    fn check_signature(&self, source: &PlanSource, resolved: &Plan) -> Result<(), ExecError> {
        check_signature(self.verify_key.as_ref(), source, resolved)
    }

    /// The result of recording a failure in the ledger. When the session itself is gone
    /// (server restart, terminated backend) the write cannot succeed, and the failure already
    /// in hand says more than "connection closed" would: it is kept, and the step's row stays
    /// 'running', which `status` reports as interrupted once the backend is gone.
    fn after_failure(&self, recorded: Result<(), crate::ledger::LedgerError>) -> Result<(), ExecError> {
        match recorded {
            Err(_) if self.client.is_closed() => Ok(()),
            other => Ok(other?),
        }
    }

    /// Counts a completed step and aborts the process when the fault budget says so.
    fn step_completed(&mut self) {
        self.steps_completed += 1;
        if self.abort_after_steps == Some(self.steps_completed) {
            std::process::abort();
        }
    }

    /// Installs (or with `None` removes) an observer called around every step this runner
    /// applies or rolls back.
    pub fn set_step_observer(&mut self, observer: Option<Box<dyn StepObserver>>) {
        self.step_observer = ObserverSlot(observer);
    }

    /// The backend pid of the runner session.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// [`check_stacked`], probing the plan below's lock by taking it.
    async fn check_stacked(&self, plan: &Plan, phase: Phase) -> Result<(), ExecError> {
        check_stacked(&self.client, plan, phase, LockProbe::Take).await
    }

    /// Rollback order is the reverse of deploy order: a plan cannot be rolled back while a
    /// plan stacked after it is in flight or complete; the refusal names it and the order.
    /// The exception is a complete stacked plan that contracted first because nothing lay
    /// between the two ([`crate::plan::inflight::stacked_contract_conflict`]): the rollback
    /// touches nothing it uses, so the plan below keeps its way back.
    async fn check_no_stacked_dependents(&self, plan: &Plan, phase: Phase) -> Result<(), ExecError> {
        let mut dependents = Vec::new();
        for state in [StoredPlanState::Active, StoredPlanState::Complete] {
            for id in ledger::plan_ids(&self.client, Some(state)).await? {
                let Some(stored) = ledger::stored_plan(&self.client, &id).await? else { continue };
                if stored.plan.after.as_deref() != Some(plan.id.as_str()) {
                    continue;
                }
                if state == StoredPlanState::Complete
                    && crate::plan::inflight::stacked_contract_conflict(&stored.plan, plan).is_none()
                {
                    continue;
                }
                dependents.push((stored.plan.short_id().to_string(), state));
            }
        }
        if dependents.is_empty() {
            return Ok(());
        }
        let names: Vec<String> =
            dependents.iter().map(|(id, state)| format!("plan {id} ({state})")).collect();
        let first = &dependents[0].0;
        Err(ExecError::RollbackRefused {
            plan: plan.short_id().to_string(),
            phase,
            reason: format!(
                "{} is stacked after it; roll back in the reverse of deploy order: first plan {first} \
                 ('seqmig status --plan-id {first}' names its next rollback), then plan {}",
                names.join(", "),
                plan.short_id()
            ),
        })
    }

    /// Ends the session, releasing every lock.
    pub async fn release(mut self) {
        self.unlock_plan().await;
    }

    /// Takes the ledger bookkeeping lock, waiting for another runner's bookkeeping at most
    /// the retry budget; then [`ExecError::Busy`] names the holder.
    async fn lock_bookkeeping(&self) -> Result<(), ExecError> {
        let lock = WaitedLock {
            try_sql: "SELECT pg_try_advisory_lock($1)",
            key: BOOKKEEPING_LOCK,
            what: "ledger bookkeeping lock",
            held_where: bookkeeping_held(),
            poll: std::time::Duration::from_millis(20),
        };
        wait_for_lock(&self.client, lock, self.opts.retry.budget).await
    }

    async fn unlock_bookkeeping(&self) {
        let _ = self.client.execute("SELECT pg_advisory_unlock($1)", &[&BOOKKEEPING_LOCK]).await;
    }

    /// Takes `plan`'s lock, or refuses naming the runner that holds it. Records this runner
    /// as working on the plan.
    async fn lock_plan(&mut self, plan: &Plan) -> Result<(), ExecError> {
        if self.plan_lock.as_ref().is_some_and(|(id, _)| *id == plan.id) {
            return Ok(());
        }
        self.unlock_plan().await;
        let key = plan_lock_key(&plan.id);
        let locked: bool = self
            .client
            .query_one(
                "SELECT pg_try_advisory_lock($1::int4, $2::int4)",
                &[&(PLAN_LOCK_CLASSID as i32), &(key as i32)],
            )
            .await
            .map_err(|source| ExecError::Db { context: "take the plan lock".into(), source })?
            .get(0);
        if !locked {
            let holder = plan_lock_holder(&self.client, &plan.id).await?.unwrap_or_else(unknown_holder);
            return Err(ExecError::Busy { what: format!("plan {}", plan.short_id()), holder });
        }
        self.plan_lock = Some((plan.id.clone(), key));
        let command = format!("{} --plan-id {}", self.command, plan.short_id());
        ledger::register_runner(&self.client, &self.opts.actor, &command).await?;
        Ok(())
    }

    async fn unlock_plan(&mut self) {
        if let Some((_, key)) = self.plan_lock.take() {
            let _ = self
                .client
                .execute(
                    "SELECT pg_advisory_unlock($1::int4, $2::int4)",
                    &[&(PLAN_LOCK_CLASSID as i32), &(key as i32)],
                )
                .await;
        }
    }

    /// Applies `phase` of the plan: refuses out-of-order or tampered work, skips steps already
    /// done, records every step. Storing the plan happens here, on its first apply.
    pub async fn apply(
        &mut self,
        source: &PlanSource,
        phase: Phase,
        gate: &ContractGate,
        reporter: &mut dyn Reporter,
    ) -> Result<PhaseReport, ExecError> {
        self.lock_bookkeeping().await?;
        let begun = self.begin_apply(source, phase, gate).await;
        self.unlock_bookkeeping().await;
        let result = match begun {
            Ok((r, state)) => self.apply_steps(&r, &state, phase, reporter).await,
            Err(e) => Err(e),
        };
        self.unlock_plan().await;
        result
    }

    /// What `apply` does under the bookkeeping lock: finds the plan, takes its lock, checks
    /// it (signature, order, stacking, drift, gate) and stores it.
    async fn begin_apply(
        &mut self,
        source: &PlanSource,
        phase: Phase,
        gate: &ContractGate,
    ) -> Result<(Resolved, PlanState), ExecError> {
        let mut r = resolve(&self.client, source, false).await?;
        self.check_signature(source, &r.plan)?;
        self.lock_plan(&r.plan).await?;
        let state = if r.stored_state.is_some() {
            PlanState::load(&self.client, &r.plan.id).await?
        } else {
            PlanState::empty()
        };
        check_order(&r, &state, phase)?;
        self.check_stacked(&r.plan, phase).await?;
        self.check_drift(&r.plan, &state, phase).await?;
        if phase == Phase::Contract && !state.phase(&r.plan, phase).is_complete() {
            // Contract cannot be rolled back, so once one of its steps ran, the drops may have
            // removed what the gate reads (`backfill_verified` on a dropped column): the run
            // resumes on the decision recorded when contract started (issue 18.2), and says so.
            let started = r.plan.steps_of(phase).iter().any(|s| {
                let st = state.step(s);
                st.is_applied() || st.is_attempted()
            });
            let decision = if started {
                soak::contract_decision(&self.client, &r.plan.id).await.map_err(ExecError::Gate)?
            } else {
                None
            };
            match decision {
                Some((id, event)) => {
                    soak::recheck_before_drop(&self.client, &r.plan, &gate.config)
                        .await
                        .map_err(ExecError::Gate)?;
                    soak::record_contract_resumed(&self.client, &r.plan, &self.opts.actor, id, &event)
                        .await
                        .map_err(ExecError::Gate)?;
                }
                None => self.check_gate(&r, gate).await?,
            }
        }
        match r.stored_state {
            None => ledger::insert_plan(&self.client, &r.plan, &self.opts.actor).await?,
            Some(StoredPlanState::Active) => {}
            Some(_) => ledger::set_plan_state(&self.client, &r.plan.id, StoredPlanState::Active).await?,
        }
        r.stored_state = Some(StoredPlanState::Active);
        Ok((r, state))
    }

    /// The steps of `phase`, once [`Runner::begin_apply`] let it run.
    async fn apply_steps(
        &mut self,
        r: &Resolved,
        state: &PlanState,
        phase: Phase,
        reporter: &mut dyn Reporter,
    ) -> Result<PhaseReport, ExecError> {
        let plan = &r.plan;
        let steps = plan.steps_of(phase);
        if phase == Phase::Switch {
            // The census right before switch is the gate's baseline for `old_path_silent`:
            // calls of the old path are counted from here. Without it the gate still works,
            // counting conservatively, so a failed census does not stop the release.
            let _ = soak::take_sample(&self.client).await;
        }
        let run_id =
            ledger::start_phase_run(&self.client, &plan.id, phase, "apply", &self.opts.actor).await?;
        reporter.report(&Event::PhaseStarted {
            plan: &plan.id,
            phase,
            action: Action::Apply,
            steps: steps.len(),
        });
        let (mut ran, mut skipped) = (Vec::new(), Vec::new());
        for step in steps {
            if state.step(step).is_applied() {
                reporter.report(&Event::StepSkipped { step, reason: "already done" });
                skipped.push(step.id.clone());
                continue;
            }
            let outcome = match &step.backfill {
                Some(_) => self.run_backfill(plan, run_id, step, &ran, reporter).await,
                None => {
                    self.run_step(
                        plan,
                        run_id,
                        step,
                        Action::Apply,
                        &step.sql,
                        step.transactional,
                        &ran,
                        reporter,
                    )
                    .await
                }
            };
            if let Err(e) = outcome {
                let recorded =
                    ledger::finish_phase_run(&self.client, run_id, RunOutcome::Failed, Some(&e.to_string()))
                        .await;
                self.after_failure(recorded)?;
                return Err(e);
            }
            ran.push(step.id.clone());
            self.step_completed();
        }
        ledger::finish_phase_run(&self.client, run_id, RunOutcome::Ok, None).await?;
        let after = PlanState::load(&self.client, &plan.id).await?;
        let plan_complete = after.first_incomplete(plan).is_none();
        if plan_complete {
            ledger::set_plan_state(&self.client, &plan.id, StoredPlanState::Complete).await?;
        }
        let (next, _) = after.next(plan, StoredPlanState::Active);
        reporter.report(&Event::PhaseDone {
            phase,
            action: Action::Apply,
            ran: ran.len(),
            skipped: skipped.len(),
        });
        Ok(PhaseReport {
            plan_id: plan.id.clone(),
            phase,
            action: Action::Apply,
            ran,
            skipped,
            plan_complete,
            next,
        })
    }

    /// Undoes `phase`: the rollback SQL of its applied steps, last first. Only the last
    /// applied phase can be undone, and never `contract` (its drops are one-way).
    pub async fn rollback(
        &mut self,
        source: &PlanSource,
        phase: Phase,
        reporter: &mut dyn Reporter,
    ) -> Result<PhaseReport, ExecError> {
        self.lock_bookkeeping().await?;
        let begun = async {
            let r = resolve(&self.client, source, true).await?;
            self.check_signature(source, &r.plan)?;
            if r.stored_state.is_none() {
                return Err(ExecError::UnknownPlan(r.plan.id.clone()));
            }
            self.lock_plan(&r.plan).await?;
            self.check_no_stacked_dependents(&r.plan, phase).await?;
            Ok(r)
        }
        .await;
        self.unlock_bookkeeping().await;
        let result = match begun {
            Ok(r) => self.rollback_steps(&r, phase, reporter).await,
            Err(e) => Err(e),
        };
        self.unlock_plan().await;
        result
    }

    /// The rollback of `phase`, under the plan's lock.
    async fn rollback_steps(
        &mut self,
        r: &Resolved,
        phase: Phase,
        reporter: &mut dyn Reporter,
    ) -> Result<PhaseReport, ExecError> {
        let plan = &r.plan;
        let refuse =
            |reason: String| ExecError::RollbackRefused { plan: plan.short_id().to_string(), phase, reason };
        if phase == Phase::Contract {
            return Err(refuse(
                "contract is the one-way door: its drops cannot be undone, and seqmig keeps no copy of what they removed"
                    .into(),
            ));
        }
        let steps = plan.steps_of(phase);
        let one_way: Vec<&str> = steps.iter().filter(|s| s.one_way).map(|s| s.id.as_str()).collect();
        if !one_way.is_empty() {
            return Err(refuse(format!("steps {} are one-way", one_way.join(", "))));
        }
        let state = PlanState::load(&self.client, &plan.id).await?;
        for later in Phase::ALL.into_iter().filter(|p| *p > phase) {
            let touched = plan.steps_of(later).iter().any(|s| {
                let st = state.step(s);
                st.is_applied() || (st.is_attempted() && !s.transactional)
            });
            if touched {
                let next = if later == Phase::Contract {
                    "nothing: contract has run, so earlier phases stay".to_string()
                } else {
                    format!("run '{}' first", command_for(Action::Rollback, later, r.plan_flag().as_deref()))
                };
                return Err(refuse(format!(
                    "phase {later} after it is applied ({}); {next}",
                    state.phase(plan, later).as_str()
                )));
            }
        }
        // A rollback resets what it invalidates (issue 18.1): the backfills of this phase and
        // of every later one are forgotten before anything is undone, so that a re-apply walks
        // and verifies again rather than trusting a `done` from before the rollback (rows
        // written while the triggers are gone are stale in the new shape).
        let invalidated: Vec<String> = plan
            .steps
            .iter()
            .filter(|s| s.phase >= phase && s.backfill.is_some())
            .map(|s| s.id.clone())
            .collect();
        crate::backfill::reset(&self.client, &plan.id, &invalidated).await.map_err(|source| {
            ExecError::Db { context: "reset the backfills the rollback invalidates".into(), source }
        })?;
        let run_id =
            ledger::start_phase_run(&self.client, &plan.id, phase, "rollback", &self.opts.actor).await?;
        reporter.report(&Event::PhaseStarted {
            plan: &plan.id,
            phase,
            action: Action::Rollback,
            steps: steps.len(),
        });
        let (mut ran, mut skipped) = (Vec::new(), Vec::new());
        for step in steps.iter().rev() {
            let st = state.step(step);
            // An attempt of a CONCURRENTLY step that never completed: its leftovers go first.
            let cleaned = if !st.is_applied() && st.is_attempted() && !step.transactional {
                Some(self.clean_up_attempt(step, reporter).await)
            } else {
                None
            };
            let outcome = match cleaned {
                Some(Err(e)) => Err(e),
                Some(Ok(false)) => self.record_noop(plan, run_id, step, "cleaned up a failed attempt").await,
                // A detach the attempt completed, or that was finalized just now, is undone.
                Some(Ok(true)) => self.undo(plan, run_id, step, &ran, reporter).await,
                None if st.is_applied() => self.undo(plan, run_id, step, &ran, reporter).await,
                None => {
                    reporter.report(&Event::StepSkipped { step, reason: "not applied" });
                    skipped.push(step.id.clone());
                    continue;
                }
            };
            if let Err(e) = outcome {
                let recorded =
                    ledger::finish_phase_run(&self.client, run_id, RunOutcome::Failed, Some(&e.to_string()))
                        .await;
                self.after_failure(recorded)?;
                return Err(match e {
                    ExecError::StepFailed { step, phase, sqlstate, message, done, .. } => {
                        ExecError::StepFailed {
                            step,
                            phase,
                            sqlstate,
                            message,
                            done,
                            next: command_for(Action::Rollback, phase, r.plan_flag().as_deref()),
                        }
                    }
                    other => other,
                });
            }
            ran.push(step.id.clone());
            self.step_completed();
        }
        ledger::finish_phase_run(&self.client, run_id, RunOutcome::Ok, None).await?;
        let after = PlanState::load(&self.client, &plan.id).await?;
        let new_state =
            if after.anything_applied(plan) { StoredPlanState::Active } else { StoredPlanState::RolledBack };
        let next = Phase::ALL
            .into_iter()
            .rev()
            .find(|p| *p < phase && after.phase(plan, *p) == PhaseState::Applied)
            .map(|p| command_for(Action::Rollback, p, None));
        ledger::set_plan_state(&self.client, &plan.id, new_state).await?;
        reporter.report(&Event::PhaseDone {
            phase,
            action: Action::Rollback,
            ran: ran.len(),
            skipped: skipped.len(),
        });
        Ok(PhaseReport {
            plan_id: plan.id.clone(),
            phase,
            action: Action::Rollback,
            ran,
            skipped,
            plan_complete: false,
            next,
        })
    }

    /// The soak gate (`crate::soak::decide`): open → contract runs after the last-moment
    /// re-check of old clients; closed → refused, or bypassed and audited with break-glass.
    async fn check_gate(&self, r: &Resolved, gate: &ContractGate) -> Result<(), ExecError> {
        let passage = match &gate.passage {
            GatePassage::Evidence => soak::Passage::Evidence,
            GatePassage::BreakGlass { reason } => {
                soak::Passage::BreakGlass { actor: &self.opts.actor, reason }
            }
        };
        let decision =
            soak::decide(&self.client, &r.plan, &gate.config, passage).await.map_err(ExecError::Gate)?;
        match decision {
            soak::GateDecision::Open(report) => {
                soak::recheck_before_drop(&self.client, &r.plan, &gate.config)
                    .await
                    .map_err(ExecError::Gate)?;
                // The decision a resumed contract goes on (issue 18.2); not a bypass.
                soak::record_gate_open(&self.client, &r.plan, &self.opts.actor, &report)
                    .await
                    .map(|_| ())
                    .map_err(ExecError::Gate)
            }
            soak::GateDecision::Closed(report) => Err(ExecError::GateClosed {
                plan: r.plan.short_id().to_string(),
                failing: report.blocking_summary(),
            }),
            // Bypassed and recorded in audit_log by `decide`.
            _ => Ok(()),
        }
    }

    /// Before anything of `phase` runs: every step still to apply finds the objects it
    /// touches as the plan's current schema has them (`Step::expects`), or the phase is
    /// refused, naming each drifted object. Steps already applied are not checked: their
    /// phase has changed those objects on purpose.
    async fn check_drift(&self, plan: &Plan, state: &PlanState, phase: Phase) -> Result<(), ExecError> {
        let pending: Vec<&Step> = plan
            .steps_of(phase)
            .into_iter()
            .filter(|s| !s.expects.is_empty() && !state.step(s).is_applied())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let live = crate::introspect::introspect(&self.client).await.map_err(|e| ExecError::Introspect {
            context: format!("read the catalog to check phase {phase} against the plan"),
            source: e,
        })?;
        let drifts: Vec<Drift> = pending
            .iter()
            .flat_map(|s| {
                s.expects
                    .iter()
                    .filter_map(|e| crate::plan::expect::check(e, &live))
                    .map(|(object, problem)| Drift { step: s.id.clone(), object, problem })
            })
            .collect();
        if drifts.is_empty() {
            Ok(())
        } else {
            Err(ExecError::Drift { plan: plan.id.clone(), phase, drifts })
        }
    }

    async fn record_noop(&self, plan: &Plan, run_id: i64, step: &Step, why: &str) -> Result<(), ExecError> {
        let id = ledger::start_step_run(
            &self.client,
            run_id,
            &plan.id,
            &step.id,
            step.phase,
            "rollback",
            &self.opts.actor,
        )
        .await?;
        self.client
            .execute(ledger::STEP_OK_SQL, &[&id, &0i32, &0i64, &Some(why)])
            .await
            .map_err(|source| ExecError::Db { context: "record the step".into(), source })?;
        Ok(())
    }

    async fn run_backfill(
        &mut self,
        plan: &Plan,
        run_id: i64,
        step: &Step,
        done: &[String],
        reporter: &mut dyn Reporter,
    ) -> Result<(), ExecError> {
        let Some(spec) = &step.backfill else { return Ok(()) };
        let id = ledger::start_step_run(
            &self.client,
            run_id,
            &plan.id,
            &step.id,
            step.phase,
            "apply",
            &self.opts.actor,
        )
        .await?;
        reporter.report(&Event::StepStarted { step, action: Action::Apply });
        if let Some(o) = self.step_observer.0.as_mut() {
            o.before_step(step, Action::Apply, self.pid).await;
        }
        let t0 = Instant::now();
        let req = crate::backfill::BackfillRequest { plan_id: &plan.id, step_id: &step.id, spec };
        let mut sink = Forward { reporter, step };
        // The same rule as `seqmig backfill run`: a partitioned table partition by partition,
        // another in slices of its key when there are several workers.
        let result = crate::backfill::run_table(
            &mut self.client,
            &self.opts.connection,
            &req,
            &self.backfill,
            self.backfill_jobs,
            &mut sink,
        )
        .await
        .map(|run| run.total);
        let reporter = sink.reporter;
        let ms = t0.elapsed().as_millis() as i64;
        if let Some(o) = self.step_observer.0.as_mut() {
            o.after_step(step, Action::Apply, result.is_ok()).await;
        }
        // Done means the engine's verification found no row still matching the step's pending
        // predicate (`target IS DISTINCT FROM (expr)` for a transform, `target IS NULL` for a fill).
        let failure = match result {
            Ok(o) if o.verify_mismatches == 0 => {
                let msg = format!(
                    "{} rows written in {} batches ({} in total, {} walk), verified: none pending",
                    o.rows_updated, o.batches_run, o.rows_done, o.key_kind
                );
                self.client
                    .execute(ledger::STEP_OK_SQL, &[&id, &1i32, &ms, &Some(msg.as_str())])
                    .await
                    .map_err(|source| ExecError::Db { context: "record the backfill".into(), source })?;
                reporter.report(&Event::StepDone {
                    step,
                    action: Action::Apply,
                    elapsed: t0.elapsed(),
                    attempts: 1,
                });
                return Ok(());
            }
            // Triggers keep new writes consistent, so rows still pending after the copy mean the
            // expression or the triggers are wrong: switching now would lose data.
            Ok(o) => (
                None,
                format!(
                    "{} rows of {} still match the pending predicate ({}) after the copy",
                    o.verify_mismatches,
                    spec.table.quoted(),
                    spec.pending_predicate
                ),
                None,
            ),
            Err(e) => {
                let code = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<tokio_postgres::Error>())
                    .and_then(|pg| pg.code())
                    .map(|c| c.code().to_string());
                (code, e.to_string(), Some(e))
            }
        };
        let (code, message, cause) = failure;
        self.after_failure(ledger::step_failed(&self.client, id, 1, ms, code.as_deref(), &message).await)?;
        let _ = done;
        Err(ExecError::Backfill {
            step: step.id.clone(),
            message,
            cause: cause.map(Box::new),
            next: command_for(Action::Apply, step.phase, None),
        })
    }

    /// Runs one step's SQL with lock-timeout retries and records it. A transactional step and
    /// its 'ok' row commit together; a non-transactional one runs statement by statement.
    #[allow(clippy::too_many_arguments)]
    async fn run_step(
        &mut self,
        plan: &Plan,
        run_id: i64,
        step: &Step,
        action: Action,
        sql: &str,
        transactional: bool,
        done: &[String],
        reporter: &mut dyn Reporter,
    ) -> Result<(), ExecError> {
        let row_id = ledger::start_step_run(
            &self.client,
            run_id,
            &plan.id,
            &step.id,
            step.phase,
            action.as_str(),
            &self.opts.actor,
        )
        .await?;
        reporter.report(&Event::StepStarted { step, action });
        // The statements and the index build were recorded by the planner (plan format v2;
        // derived once on load for a v1 plan): nothing here reads the SQL.
        let (statements, index_build, detach) = match action {
            Action::Rollback => {
                (&step.effects.rollback_statements, step.effects.rollback_builds_index.as_ref(), None)
            }
            _ => {
                (&step.effects.statements, step.effects.builds_index.as_ref(), step.effects.detaches.as_ref())
            }
        };
        let statements = statements.as_slice();
        if let Some(o) = self.step_observer.0.as_mut() {
            o.before_step(step, action, self.pid).await;
        }
        let work =
            StepWork { step, action, sql, transactional, statements, index_build, detach, row_id, done };
        let result = self.run_step_attempts(work, reporter).await;
        if let Some(o) = self.step_observer.0.as_mut() {
            o.after_step(step, action, result.is_ok()).await;
        }
        result
    }

    /// The attempts of [`Runner::run_step`], retried on lock timeouts within the budget.
    async fn run_step_attempts(
        &mut self,
        work: StepWork<'_>,
        reporter: &mut dyn Reporter,
    ) -> Result<(), ExecError> {
        let StepWork { step, action, sql, transactional, statements, index_build, detach, row_id, done } =
            work;
        let policy = self.opts.retry;
        let t0 = Instant::now();
        let mut jitter = Jitter::new();
        let mut seen: BTreeMap<i32, Blocker> = BTreeMap::new();
        let mut next_stmt = 0usize;
        let mut attempt: u32 = 0;
        loop {
            let timeout = policy.attempt_timeout(attempt);
            if attempt > 0 && self.observer.is_none() {
                self.observer = connect(&self.opts.connection, &application_name()).await.ok();
            }
            let observer = if attempt > 0 { self.observer.as_ref() } else { None };
            let ms = timeout.as_millis();
            let result: Result<(), tokio_postgres::Error> = if transactional {
                let r = async {
                    self.client.batch_execute(&format!("BEGIN; SET LOCAL lock_timeout = '{ms}ms'")).await?;
                    retry::execute_watched(&self.client, observer, self.pid, sql, &mut seen).await?;
                    // Every lock the step took is still held here, until COMMIT.
                    if let Some(o) = self.step_observer.0.as_mut() {
                        o.in_transaction(&self.client, step, action).await;
                    }
                    let elapsed = t0.elapsed().as_millis() as i64;
                    let n = attempt as i32 + 1;
                    self.client
                        .execute(ledger::STEP_OK_SQL, &[&row_id, &n, &elapsed, &None::<String>])
                        .await?;
                    self.client.batch_execute("COMMIT").await
                }
                .await;
                if r.is_err() {
                    let _ = self.client.batch_execute("ROLLBACK").await;
                }
                r
            } else {
                let r = async {
                    self.client.batch_execute(&format!("SET lock_timeout = '{ms}ms'")).await?;
                    while next_stmt < statements.len() {
                        let stmt = &statements[next_stmt];
                        // A statement an earlier attempt or run began may have left work
                        // half done: finish it rather than run it again.
                        let builds = index_build.filter(|b| b.statement == next_stmt);
                        let detaching = detach.filter(|d| d.statement == next_stmt);
                        let mut run = true;
                        if let Some(build) = builds {
                            match leftover::index_state(&self.client, build).await? {
                                IndexState::Valid => run = false,
                                IndexState::Invalid(index) => {
                                    let drop = leftover::drop_index_sql(&index);
                                    retry::execute_watched(
                                        &self.client,
                                        observer,
                                        self.pid,
                                        &drop,
                                        &mut seen,
                                    )
                                    .await?;
                                    reporter.report(&Event::DroppedInvalidIndex { step, index });
                                }
                                IndexState::Absent => {}
                            }
                        }
                        if let Some(d) = detaching {
                            match leftover::detach_state(&self.client, d).await? {
                                DetachState::Attached => {}
                                DetachState::Pending => {
                                    let finalize = leftover::finalize_sql(d);
                                    retry::execute_watched(
                                        &self.client,
                                        observer,
                                        self.pid,
                                        &finalize,
                                        &mut seen,
                                    )
                                    .await?;
                                    reporter.report(&Event::FinalizedDetach {
                                        step,
                                        partition: d.partition.quoted(),
                                    });
                                    run = false;
                                }
                                DetachState::Detached => run = false,
                            }
                        }
                        if run {
                            retry::execute_watched(&self.client, observer, self.pid, stmt, &mut seen).await?;
                        }
                        next_stmt += 1;
                    }
                    Ok(())
                }
                .await;
                let max = policy.lock_timeout.as_millis();
                let _ = self.client.batch_execute(&format!("SET lock_timeout = '{max}ms'")).await;
                if r.is_ok() {
                    let elapsed = t0.elapsed().as_millis() as i64;
                    let n = attempt as i32 + 1;
                    self.client
                        .execute(ledger::STEP_OK_SQL, &[&row_id, &n, &elapsed, &None::<String>])
                        .await
                        .map_err(|source| ExecError::Db { context: "record the step".into(), source })?;
                }
                r
            };
            let e = match result {
                Ok(()) => {
                    reporter.report(&Event::StepDone {
                        step,
                        action,
                        elapsed: t0.elapsed(),
                        attempts: attempt + 1,
                    });
                    return Ok(());
                }
                Err(e) => e,
            };
            let elapsed_ms = t0.elapsed().as_millis() as i64;
            let message = describe_pg(&e);
            let sqlstate = e.code().map(|c| c.code().to_string());
            let attempts = attempt + 1;
            if retry::is_retryable(&e) {
                let sleep = policy.sleep_after(attempt, &mut jitter);
                let next_timeout = policy.attempt_timeout(attempt + 1);
                if t0.elapsed() + sleep + next_timeout <= policy.budget {
                    ledger::step_attempted(&self.client, row_id, attempts as i32, &message).await?;
                    reporter.report(&Event::Retrying {
                        step,
                        attempt: attempts,
                        lock_timeout: timeout,
                        sleep,
                        error: message,
                    });
                    tokio::time::sleep(sleep).await;
                    attempt += 1;
                    continue;
                }
                let mut blockers: Vec<Blocker> = seen.into_values().collect();
                if blockers.is_empty() {
                    for relation in step.lock_relations() {
                        let mode = step.effects.lock.as_ref().map_or(step.lock, |l| l.mode_on(relation));
                        blockers.extend(
                            retry::lock_holders(&self.client, &relation.quoted(), mode, self.pid).await,
                        );
                    }
                }
                let text = format!(
                    "gave up after {attempts} attempts: {message}; blockers: {}",
                    blockers.iter().map(|b| b.to_string()).collect::<Vec<_>>().join("; ")
                );
                let recorded = ledger::step_failed(
                    &self.client,
                    row_id,
                    attempts as i32,
                    elapsed_ms,
                    sqlstate.as_deref(),
                    &text,
                )
                .await;
                self.after_failure(recorded)?;
                return Err(ExecError::LockBudgetExhausted {
                    step: step.id.clone(),
                    phase: step.phase,
                    lock_target: step.lock_target.clone(),
                    attempts,
                    elapsed: t0.elapsed(),
                    blockers,
                    done: done.to_vec(),
                    next: command_for(action, step.phase, None),
                });
            }
            let recorded = ledger::step_failed(
                &self.client,
                row_id,
                attempts as i32,
                elapsed_ms,
                sqlstate.as_deref(),
                &message,
            )
            .await;
            self.after_failure(recorded)?;
            return Err(ExecError::StepFailed {
                step: step.id.clone(),
                phase: step.phase,
                sqlstate,
                message,
                done: done.to_vec(),
                next: command_for(action, step.phase, None),
            });
        }
    }

    /// Runs an applied step's rollback statements.
    async fn undo(
        &mut self,
        plan: &Plan,
        run_id: i64,
        step: &Step,
        ran: &[String],
        reporter: &mut dyn Reporter,
    ) -> Result<(), ExecError> {
        match &step.rollback_sql {
            Some(sql) => {
                self.run_step(plan, run_id, step, Action::Rollback, sql, step.transactional, ran, reporter)
                    .await
            }
            None => self.record_noop(plan, run_id, step, "nothing to undo").await,
        }
    }

    /// What an attempt of a `CONCURRENTLY` step that never completed left behind, cleaned
    /// up before its rollback: an INVALID index is dropped; a pending detach is finalized.
    /// Whether the step's change took effect after all (the partition is detached), so that
    /// its rollback statements must undo it.
    async fn clean_up_attempt(&self, step: &Step, reporter: &mut dyn Reporter) -> Result<bool, ExecError> {
        let db = |context: String| move |source| ExecError::Db { context, source };
        if let Some(build) = &step.effects.builds_index
            && let IndexState::Invalid(index) = leftover::index_state(&self.client, build)
                .await
                .map_err(db("look for an invalid index".into()))?
        {
            self.client
                .batch_execute(&leftover::drop_index_sql(&index))
                .await
                .map_err(db(format!("drop invalid index {index}")))?;
            reporter.report(&Event::DroppedInvalidIndex { step, index });
        }
        let Some(d) = &step.effects.detaches else { return Ok(false) };
        let partition = d.partition.quoted();
        match leftover::detach_state(&self.client, d)
            .await
            .map_err(db(format!("look for a pending detach of {partition}")))?
        {
            DetachState::Attached => Ok(false),
            DetachState::Pending => {
                self.client
                    .batch_execute(&leftover::finalize_sql(d))
                    .await
                    .map_err(db(format!("finish the pending detach of {partition}")))?;
                reporter.report(&Event::FinalizedDetach { step, partition });
                Ok(true)
            }
            DetachState::Detached => Ok(true),
        }
    }
}

/// Hands the backfill engine's progress to the caller's reporter.
struct Forward<'a> {
    reporter: &'a mut dyn Reporter,
    step: &'a Step,
}

impl crate::backfill::ProgressSink for Forward<'_> {
    fn update(&mut self, progress: &crate::backfill::Progress) {
        self.reporter.report(&Event::BackfillProgress { step: self.step, progress, finished: false });
    }

    fn finish(&mut self, progress: &crate::backfill::Progress) {
        self.reporter.report(&Event::BackfillProgress { step: self.step, progress, finished: true });
    }
}
