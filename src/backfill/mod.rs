//! The backfill engine (DESIGN.md §5): copies existing rows into the new shape of a live
//! table in small committed batches. It owns the walk (keyset ranges on a unique NOT NULL
//! key, TID page ranges without one), the batch size (adapted to a target duration), the
//! throttle (replica lag, long transactions, lock waiters, WAL rate, WAL retained by
//! replication slots, the operator's pause
//! and rate), retries, progress and the final verification count.
//!
//! The executor's backfill phase calls [`run`]; everything it learns goes to the ledger
//! tables of [`crate::ledger::backfills`] (which owns their DDL and SQL), and each batch's data change commits together with its ledger
//! row, so a resumed run (after SIGKILL, a server restart or a failure) continues exactly at
//! the last committed batch. The gate reads `verify_mismatches` from `seqmig.backfills`.

mod config;
mod key;
mod partitioned;
mod progress;
mod sizing;
mod throttle;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::ledger::backfills as ledger;

pub use config::{BackfillConfig, parse_workload_latency};
pub use key::{KeyColumn, Walk, statements, statements_up_to};
pub use partitioned::{
    PARTITIONS_KEY, PartitionedOutcome, SLICES_KEY, leaf_partitions, partition_step_id, run_partitioned,
    run_sliced, run_table, slice_step_id,
};
pub use progress::{Bar, JsonLines, NoProgress, Progress, ProgressSink, describe};
pub use sizing::{BatchSizer, SizerConfig};
pub use throttle::{LockWaiters, Reason, Sample, Throttle, ThrottleOptions, Verdict};

use crate::plan::BackfillSpec;

/// Which backfill to run: the plan step it belongs to and what it writes.
#[derive(Debug, Clone, Copy)]
pub struct BackfillRequest<'a> {
    pub plan_id: &'a str,
    pub step_id: &'a str,
    pub spec: &'a BackfillSpec,
}

/// How to run it. `Default` is the production setting.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillOptions {
    pub sizing: SizerConfig,
    /// Per batch: a batch waiting longer than this for a lock gives up and retries smaller,
    /// so it never becomes the head of a lock queue.
    pub lock_timeout: Duration,
    /// Per batch; `None`: twenty times the target duration, at least 5 s.
    pub statement_timeout: Option<Duration>,
    /// Attempts of one range after the first, before the range is split.
    pub retries: u32,
    /// Consecutive failed attempts after which the backfill stops.
    pub failure_budget: u32,
    pub throttle: ThrottleOptions,
    /// Walk this unique NOT NULL key instead of the one found in the catalog.
    pub key: Option<Vec<String>>,
    /// How long to wait for another session's run of the same backfill to end (a killed
    /// runner's backend lingers until its statement ends) before refusing to start.
    pub wait_for_previous_runner: Duration,
    /// Set for one partition's backfill inside a partitioned run: the run's step, whose
    /// operator controls (pause, rate) apply too, and how many workers share its rate.
    pub group: Option<RunGroup>,
    /// Set for one slice of a table walked by several workers (`--jobs N` on a table that is
    /// not partitioned): the keys this backfill walks.
    pub slice: Option<Slice>,
    /// Fault injection of the reliability tests; none in every real run.
    pub fault: BatchFault,
}

/// Fault injection for the reliability tests: the process aborts (no unwinding, no ledger
/// update, like `kill -9`) right after the `n`-th batch committed by any worker of this
/// process. Shared by the workers of a partitioned or sliced run, so `n` counts the run's
/// batches in the order they commit. `seqmig apply` sets it from
/// `SEQMIG_FAULT_AFTER_BATCHES`; nothing else should.
#[derive(Debug, Clone, Default)]
pub struct BatchFault(Option<std::sync::Arc<(usize, std::sync::atomic::AtomicUsize)>>);

impl BatchFault {
    pub fn dangerous_abort_after(n: usize) -> BatchFault {
        BatchFault(Some(std::sync::Arc::new((n, std::sync::atomic::AtomicUsize::new(0)))))
    }

    fn batch_committed(&self) {
        if let Some(f) = &self.0
            && f.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == f.0
        {
            std::process::abort();
        }
    }
}

impl PartialEq for BatchFault {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

/// One slice of a keyset walk: keys above `lower` (from the first key when `None`) up to
/// `upper` inclusive (to the end when `None`, so rows inserted past the last bound after
/// the start are walked too). Key values are the key columns' text forms.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    pub lower: Option<Vec<String>>,
    pub upper: Option<Vec<String>>,
    /// How many slices the table has (the slice's share of the size estimate).
    pub of: u32,
}

/// The partitioned (or sliced) run a backfill belongs to (see [`run_partitioned`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RunGroup {
    pub step_id: String,
    pub workers: u32,
    /// The transactions of every worker of the run: each worker's workload-latency reading
    /// leaves them all out, so that the workers do not take each other's batches for the
    /// application's workload and hold back for it.
    pub work: GroupWork,
}

/// Transactions and their server time, shared by the workers of one run.
#[derive(Debug, Clone, Default)]
pub struct GroupWork(std::sync::Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>);

impl GroupWork {
    fn add(&self, busy: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.0.0.fetch_add(1, Relaxed);
        self.0.1.fetch_add(busy.as_micros() as u64, Relaxed);
    }

    /// Transactions and microseconds so far.
    fn read(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.0.0.load(Relaxed), self.0.1.load(Relaxed))
    }
}

impl PartialEq for GroupWork {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions {
            sizing: SizerConfig::default(),
            lock_timeout: Duration::from_millis(200),
            statement_timeout: None,
            retries: 3,
            failure_budget: 10,
            throttle: ThrottleOptions::default(),
            key: None,
            wait_for_previous_runner: Duration::from_secs(10),
            group: None,
            slice: None,
            fault: BatchFault::default(),
        }
    }
}

impl BackfillOptions {
    fn statement_timeout(&self) -> Duration {
        self.statement_timeout.unwrap_or_else(|| (self.sizing.target * 20).max(Duration::from_secs(5)))
    }
}

/// What a finished backfill did.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillOutcome {
    /// Rows written by this call.
    pub rows_updated: u64,
    /// Batches committed by this call.
    pub batches_run: u64,
    /// Totals from the ledger, over every run of this backfill.
    pub rows_done: i64,
    pub batches: i64,
    /// Rows still pending (the target differs from the expression, or a fill left NULL),
    /// counted over the whole table after the last batch, with the predicate the gate
    /// re-counts with. (Counting inside the walk, with `UPDATE … RETURNING` in every batch,
    /// cost more server time than this one count: see `cargo bench --bench backfill`.)
    pub verify_mismatches: i64,
    /// True when the ledger already had this backfill (a resumed or repeated run).
    pub resumed: bool,
    /// `key` (keyset on `key_columns`) or `tid` (page ranges).
    pub key_kind: String,
    pub key_columns: Vec<String>,
    pub elapsed: Duration,
    /// Of `elapsed`: the final verification pass.
    pub verify_elapsed: Duration,
}

/// Why a backfill stopped. Everything committed before the failure stays committed; running
/// the same backfill again continues after the last committed batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackfillError {
    #[error("failed to {action} for backfill {step_id} of plan {plan_id}: {message}")]
    Database {
        action: String,
        plan_id: String,
        step_id: String,
        message: String,
        source: tokio_postgres::Error,
    },
    #[error(
        "backfill {step_id} of plan {plan_id} is already running in another session; \
         wait for it or stop it ('seqmig backfill status' shows its progress)"
    )]
    AlreadyRunning { plan_id: String, step_id: String },
    #[error(
        "the ledger's backfill {step_id} of plan {plan_id} writes {recorded}, not {requested}; \
         a plan step id must not be reused for a different backfill"
    )]
    LedgerMismatch { plan_id: String, step_id: String, recorded: String, requested: String },
    #[error(
        "{table} is partitioned and has no unique NOT NULL key to walk; add one, pass a key \
         (--key), or backfill each partition as its own step"
    )]
    PartitionedWithoutKey { table: String },
    #[error(
        "{table} has no unique NOT NULL key to split into slices; --jobs > 1 on a table that is \
         not partitioned needs one (add one or pass --key), or run it with --jobs 1"
    )]
    SlicedWithoutKey { table: String },
    #[error(
        "key column '{column}' of {table} does not exist or is nullable; a backfill key must be unique and NOT NULL"
    )]
    BadKey { table: String, column: String },
    #[error(
        "batch {range} of {table} failed after {attempts} attempt(s): {message}; \
         fix the cause and run the backfill again to resume from the last committed batch"
    )]
    BatchFailed { table: String, range: String, attempts: u32, message: String },
}

/// Runs (or resumes) one backfill to the end and verifies it.
pub async fn run(
    client: &mut Client,
    req: &BackfillRequest<'_>,
    opts: &BackfillOptions,
    progress: &mut dyn ProgressSink,
) -> Result<BackfillOutcome, BackfillError> {
    // A runner killed mid-batch leaves a backend that holds the lock until it notices its
    // client is gone (at the end of its statement, or sooner with the check below), so a
    // prompt resume waits for it a little before calling the backfill taken.
    let _ = client.batch_execute("SET client_connection_check_interval = '1s'").await;
    let lock = "SELECT pg_try_advisory_lock(hashtext('seqmig.backfill'), hashtext($1 || '/' || $2))";
    let give_up = Instant::now() + opts.wait_for_previous_runner;
    loop {
        let row = client
            .query_one(lock, &[&req.plan_id, &req.step_id])
            .await
            .map_err(|e| db(req, "take the backfill's advisory lock", e))?;
        if row.get::<_, bool>(0) {
            break;
        }
        if Instant::now() >= give_up {
            return Err(BackfillError::AlreadyRunning {
                plan_id: req.plan_id.into(),
                step_id: req.step_id.into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every statement of the run, not only the batches, gives way to a lock queue: the
    // catalog reads, the prepares and the size checks take locks on the table too.
    let previous_lock_timeout = client
        .query_one("SELECT current_setting('lock_timeout')", &[])
        .await
        .map_err(|e| db(req, "read lock_timeout", e))?
        .get::<_, String>(0);
    let set = "SELECT set_config('lock_timeout', $1, false)";
    let ours = format!("{}ms", opts.lock_timeout.as_millis());
    client.query_one(set, &[&ours]).await.map_err(|e| db(req, "set lock_timeout", e))?;
    let client: &Client = client;
    let mut failures = 0;
    let result = loop {
        match Engine::start(client, req, opts).await {
            Ok(mut engine) => break engine.run(progress).await,
            Err(e) if lock_timed_out(&e) && failures < opts.failure_budget => {
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
            }
            Err(e) => break Err(e),
        }
    };
    let _ = client.query_one(set, &[&previous_lock_timeout]).await;
    if let Err(BackfillError::BatchFailed { .. }) = &result {
        let message = result.as_ref().err().map(ToString::to_string);
        let _ = client.execute(ledger::FAILED_SQL, &[&req.plan_id, &req.step_id, &message]).await;
    }
    // A dead connection has released the lock already; nothing to report then.
    let unlock = "SELECT pg_advisory_unlock(hashtext('seqmig.backfill'), hashtext($1 || '/' || $2))";
    let _ = client.query_one(unlock, &[&req.plan_id, &req.step_id]).await;
    result
}

/// Forgets the ledger records (and their batches) of `step_ids` of `plan_id`: a rollback
/// calls it for the backfills it invalidates, so that a re-apply walks and verifies again
/// instead of trusting a `done` written before the rollback. Operator settings
/// (`backfill_control`) are kept. Returns how many records were removed.
pub async fn reset(
    client: &Client,
    plan_id: &str,
    step_ids: &[String],
) -> Result<u64, tokio_postgres::Error> {
    if step_ids.is_empty() {
        return Ok(0);
    }
    client.execute(ledger::FORGET_SQL, &[&plan_id, &step_ids]).await
}

/// True for a lock timeout, which the run waits out (a lock queue on the table goes first).
fn lock_timed_out(e: &BackfillError) -> bool {
    matches!(e, BackfillError::Database { source, .. } if source.code() == Some(&SqlState::LOCK_NOT_AVAILABLE))
}

/// Counts the rows still pending (for a transform: where the target differs from the
/// expression); the end of [`run`] records this count, and the gate may re-count with it.
pub async fn verify(client: &Client, spec: &BackfillSpec) -> Result<i64, tokio_postgres::Error> {
    let table = spec.table.quoted();
    let target = spec.target_column.as_str();
    let s = statements(&Walk::Tid, &table, target, &spec.expr, &spec.pending_predicate);
    let row = client.query_one(&s.verify, &[]).await?;
    Ok(row.get(0))
}

/// One backfill as the ledger records it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillStatus {
    pub progress: Progress,
    pub paused: bool,
    pub max_rows_per_sec: Option<f64>,
    pub last_error: Option<String>,
}

/// Every backfill in the ledger, with rates from its last batches.
pub async fn status(client: &Client) -> Result<Vec<BackfillStatus>, tokio_postgres::Error> {
    let rows = client.query(ledger::STATUS_SQL, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let scanned: i64 = r.get(6);
            let total: Option<i64> = r.get(7);
            let rate: Option<f64> = r.get(15);
            let state: String = r.get(4);
            let rate = if state == "running" { rate.unwrap_or(0.0) } else { 0.0 };
            BackfillStatus {
                progress: Progress {
                    plan_id: r.get(0),
                    step_id: r.get(1),
                    table: r.get(2),
                    column: String::new(),
                    state,
                    rows_done: r.get(5),
                    rows_scanned: scanned,
                    rows_total_estimate: total,
                    batches: i64::from(r.get::<_, i32>(8)),
                    batch_size: r.get::<_, i32>(9).max(0) as u32,
                    rows_per_sec: rate,
                    eta_secs: eta(total, scanned, rate),
                    throttle: r.get(10),
                    verify_mismatches: r.get(11),
                },
                last_error: r.get(12),
                paused: r.get(13),
                max_rows_per_sec: r.get(14),
            }
        })
        .collect())
}

fn eta(total: Option<i64>, scanned: i64, rate: f64) -> Option<f64> {
    let total = total?;
    (rate > 0.0).then(|| (total - scanned).max(0) as f64 / rate)
}

fn db(req: &BackfillRequest<'_>, action: &str, source: tokio_postgres::Error) -> BackfillError {
    BackfillError::Database {
        action: action.into(),
        plan_id: req.plan_id.into(),
        step_id: req.step_id.into(),
        message: describe_error(&source),
        source,
    }
}

/// `message (SQLSTATE xxxxx)` for a server error, the error itself otherwise.
fn describe_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// Where the walk stands.
#[derive(Debug, Clone, PartialEq)]
enum Cursor {
    /// Keyset: the last key done (inclusive upper bound of the last batch); `None` before
    /// the first batch.
    Key(Option<Vec<String>>),
    /// TID: the first page not done, and the page count the walk goes up to.
    Page { next: i64, end: i64, tail_checked: bool },
}

struct Prepared {
    step: Option<tokio_postgres::Statement>,
    step_first: Option<tokio_postgres::Statement>,
    update: tokio_postgres::Statement,
    update_first: Option<tokio_postgres::Statement>,
    update_last: Option<tokio_postgres::Statement>,
    update_all: Option<tokio_postgres::Statement>,
    record: tokio_postgres::Statement,
    sample: tokio_postgres::Statement,
}

struct Engine<'c, 'r> {
    client: &'c Client,
    req: &'r BackfillRequest<'r>,
    opts: BackfillOptions,
    table: String,
    walk: Walk,
    verify_sql: String,
    prepared: Prepared,
    cursor: Cursor,
    sizer: BatchSizer,
    throttle: Throttle,
    rows_per_page: f64,
    total_estimate: Option<i64>,
    state: String,
    resumed: bool,
    // Ledger totals after the last commit.
    rows_done: i64,
    rows_scanned: i64,
    batches: i64,
    // This run.
    started: Instant,
    run_rows: u64,
    run_scanned: u64,
    run_batches: u64,
    max_rows_per_sec: Option<f64>,
    pending_reasons: BTreeSet<Reason>,
    pending_throttle: Duration,
    shown_throttle: Option<String>,
    verify_mismatches: Option<i64>,
    /// The workload-latency signal is on and the server can flush a batch's statistics.
    force_stats_flush: bool,
    /// The run's shared work (transactions, microseconds) already handed to the throttle.
    group_seen: (u64, u64),
}

/// The data change of one batch, not yet committed.
struct Work {
    from: Option<String>,
    to: Option<String>,
    upper: Option<Vec<String>>,
    /// The last batch of a keyset walk (or of its slice).
    last: bool,
    scanned: u64,
    updated: u64,
    state: &'static str,
}

/// One committed batch.
struct Done {
    upper: Option<Vec<String>>,
    last: bool,
    scanned: u64,
    updated: u64,
    /// The batch's transaction time on the server, up to its ledger row.
    server_busy: Duration,
}

/// A failed attempt: transient errors are retried, the rest stop the backfill.
struct Failure {
    range: String,
    error: tokio_postgres::Error,
}

impl<'c, 'r> Engine<'c, 'r> {
    async fn start(
        client: &'c Client,
        req: &'r BackfillRequest<'r>,
        opts: &BackfillOptions,
    ) -> Result<Engine<'c, 'r>, BackfillError> {
        let spec = req.spec;
        let table = spec.table.quoted();
        let walk = find_walk(client, req, &table, opts.key.as_deref()).await?;
        if opts.slice.is_some() && walk == Walk::Tid {
            return Err(BackfillError::SlicedWithoutKey { table });
        }
        if walk == Walk::Tid {
            // A partitioned parent has no pages of its own; a TID walk would see nothing.
            let kind: String = client
                .query_one("SELECT relkind::text FROM pg_class WHERE oid = $1::text::regclass", &[&table])
                .await
                .map_err(|e| db(req, "read the table's kind", e))?
                .get(0);
            if kind == "p" {
                return Err(BackfillError::PartitionedWithoutKey { table });
            }
        }
        let est = client
            .query_one(key::ESTIMATE_SQL, &[&table])
            .await
            .map_err(|e| db(req, "estimate the table's size", e))?;
        let reltuples: Option<i64> = est.get(0);
        let total = match reltuples {
            Some(n) if n > 0 => n,
            _ => {
                let sql = format!("SELECT count(*) FROM {table}");
                client.query_one(&sql, &[]).await.map_err(|e| db(req, "count the table's rows", e))?.get(0)
            }
        };
        let total = total / i64::from(opts.slice.as_ref().map_or(1, |s| s.of.max(1)));
        let pages: i64 = client
            .query_one(key::PAGES_SQL, &[&table])
            .await
            .map_err(|e| db(req, "read the table's size", e))?
            .get(0);
        let rows_per_page = if pages > 0 { (total as f64 / pages as f64).max(1.0) } else { 1.0 };

        let target = spec.target_column.as_str();
        let key_columns = walk.column_names();
        let initial = i32::try_from(opts.sizing.initial_rows).unwrap_or(i32::MAX);
        let row = client
            .query_one(
                ledger::START_SQL,
                &[&req.plan_id, &req.step_id, &table, &target, &walk.kind(), &key_columns, &initial, &total],
            )
            .await
            .map_err(|e| db(req, "start the backfill in the ledger (is the ledger installed?)", e))?;
        let recorded_table: String = row.get(0);
        let recorded_target: String = row.get(1);
        let recorded_kind: String = row.get(2);
        let recorded_keys: Vec<String> = row.get(3);
        if recorded_table != table || recorded_target != target {
            return Err(BackfillError::LedgerMismatch {
                plan_id: req.plan_id.into(),
                step_id: req.step_id.into(),
                recorded: format!("{recorded_table}.{recorded_target}"),
                requested: format!("{table}.{target}"),
            });
        }
        // A resumed run walks the way the ledger's cursor was written.
        if recorded_kind != walk.kind() || recorded_keys != key_columns {
            return Err(BackfillError::LedgerMismatch {
                plan_id: req.plan_id.into(),
                step_id: req.step_id.into(),
                recorded: format!("{recorded_table} by {recorded_kind} ({})", recorded_keys.join(", ")),
                requested: format!("{table} by {} ({})", walk.kind(), key_columns.join(", ")),
            });
        }
        let cursor_json: Option<String> = row.get(4);
        let cursor_values: Option<Vec<String>> =
            cursor_json.as_deref().and_then(|j| serde_json::from_str(j).ok());
        let batch_size: i32 = row.get(5);
        let mut state: String = row.get(9);
        if state == "failed" {
            state = "running".into();
        }
        let cursor = match &walk {
            // A slice's walk starts past its lower bound (the ledger's cursor is NULL before
            // its first batch).
            Walk::Keyset(_) => Cursor::Key(cursor_values.or_else(|| opts.slice.as_ref()?.lower.clone())),
            Walk::Tid => Cursor::Page {
                next: cursor_values
                    .as_ref()
                    .and_then(|v| v.first())
                    .and_then(|t| key::tid_page(t))
                    .unwrap_or(0),
                end: pages,
                tail_checked: false,
            },
        };
        let upper = opts.slice.as_ref().and_then(|s| s.upper.clone());
        let mut s =
            statements_up_to(&walk, &table, target, &spec.expr, &spec.pending_predicate, upper.is_some());
        if let (Some(slice), Walk::Keyset(cols)) = (&opts.slice, &walk) {
            // A slice counts its own keys only: the others may still be walking.
            s.verify =
                key::slice_verify(cols, &table, &s.pending, slice.lower.is_some(), slice.upper.is_some());
        }
        let prepared = prepare(client, req, &walk, &s).await?;
        let force_stats_flush = opts.throttle.workload_latency.is_some()
            && client
                .query_one(ledger::CAN_FORCE_STATS_FLUSH_SQL, &[])
                .await
                .map_err(|e| db(req, "check for pg_stat_force_next_flush", e))?
                .get::<_, bool>(0);
        if force_stats_flush {
            // This session's statements so far reach pg_stat_database now, before the first
            // sample, rather than inside the first workload reading.
            client
                .execute("SELECT pg_stat_force_next_flush()", &[])
                .await
                .map_err(|e| db(req, "flush the session's statistics", e))?;
        }
        Ok(Engine {
            client,
            req,
            opts: opts.clone(),
            table,
            walk,
            verify_sql: s.verify,
            prepared,
            cursor,
            sizer: BatchSizer::resume(opts.sizing, batch_size.max(0) as u32),
            throttle: Throttle::new(opts.throttle.clone()),
            rows_per_page,
            total_estimate: Some(total),
            state,
            resumed: row.get(11),
            rows_done: row.get(6),
            rows_scanned: row.get(7),
            batches: i64::from(row.get::<_, i32>(8)),
            started: Instant::now(),
            run_rows: 0,
            run_scanned: 0,
            run_batches: 0,
            max_rows_per_sec: None,
            pending_reasons: BTreeSet::new(),
            pending_throttle: Duration::ZERO,
            shown_throttle: None,
            verify_mismatches: row.get(10),
            force_stats_flush,
            group_seen: opts.group.as_ref().map_or((0, 0), |g| g.work.read()),
        })
    }

    async fn run(&mut self, progress: &mut dyn ProgressSink) -> Result<BackfillOutcome, BackfillError> {
        if self.state == "done" {
            // A stored `done` is never trusted blindly (issue 18.1): it may have been written
            // with another expression, or rows may have changed while no trigger kept them
            // current. Count again with this request's expression; walk again when rows differ.
            progress.update(&self.progress(None));
            let mismatches = self.verify().await?;
            self.verify_mismatches = Some(mismatches);
            if mismatches > 0 {
                self.restart().await?;
            }
        }
        if self.state == "running" {
            self.walk_table(progress).await?;
        }
        let mut verify_elapsed = Duration::ZERO;
        if self.state == "verifying" {
            progress.update(&self.progress(None));
            let began = Instant::now();
            let mismatches = self.verify().await?;
            verify_elapsed = began.elapsed();
            self.verify_mismatches = Some(mismatches);
            self.state = "done".into();
        }
        let p = self.progress(None);
        progress.finish(&p);
        Ok(BackfillOutcome {
            rows_updated: self.run_rows,
            batches_run: self.run_batches,
            rows_done: self.rows_done,
            batches: self.batches,
            verify_mismatches: self.verify_mismatches.unwrap_or(0),
            resumed: self.resumed,
            key_kind: self.walk.kind().into(),
            key_columns: self.walk.column_names(),
            elapsed: self.started.elapsed(),
            verify_elapsed,
        })
    }

    /// Starts the walk again from the first key (or page), keeping the totals.
    async fn restart(&mut self) -> Result<(), BackfillError> {
        self.client
            .execute(ledger::RESTART_SQL, &[&self.req.plan_id, &self.req.step_id])
            .await
            .map_err(|e| db(self.req, "restart the walk", e))?;
        self.cursor = match self.cursor {
            Cursor::Key(_) => Cursor::Key(self.opts.slice.as_ref().and_then(|s| s.lower.clone())),
            Cursor::Page { .. } => Cursor::Page { next: 0, end: self.pages().await?, tail_checked: false },
        };
        self.state = "running".into();
        // The walk verifies its batches again from zero.
        self.verify_mismatches = None;
        Ok(())
    }

    async fn walk_table(&mut self, progress: &mut dyn ProgressSink) -> Result<(), BackfillError> {
        let mut consecutive_failures = 0u32;
        loop {
            if let Cursor::Page { next, end, tail_checked } = self.cursor
                && next >= end
            {
                // Rows that moved past the end while we walked (updates append new versions)
                // get one sweep of the pages added since the walk started.
                let pages = self.pages().await?;
                if tail_checked || pages <= end {
                    break;
                }
                self.cursor = Cursor::Page { next, end: pages, tail_checked: true };
            }
            self.wait_for_throttle(progress).await?;
            if let Some(rate) = self.max_rows_per_sec {
                self.sizer.limit_to_rate(rate);
            }
            let mut attempt = 0u32;
            let done = loop {
                attempt += 1;
                let n = self.sizer.current();
                let began = Instant::now();
                let result = self.batch(n, attempt).await;
                // The server's own measure when the batch committed; a failed one's is near
                // enough from here.
                let busy = match &result {
                    Ok(done) => done.server_busy,
                    Err(_) => began.elapsed(),
                };
                self.note_own_work(busy);
                match result {
                    Ok(done) => break (done, began.elapsed()),
                    Err(f) => {
                        consecutive_failures += 1;
                        let code = f.error.code().cloned();
                        let transient = matches!(
                            code,
                            Some(SqlState::LOCK_NOT_AVAILABLE)
                                | Some(SqlState::QUERY_CANCELED)
                                | Some(SqlState::T_R_SERIALIZATION_FAILURE)
                                | Some(SqlState::T_R_DEADLOCK_DETECTED)
                        );
                        if f.error.is_closed() || (code.is_none() && !transient) {
                            return Err(db(self.req, &format!("run batch {}", f.range), f.error));
                        }
                        if !transient || consecutive_failures >= self.opts.failure_budget {
                            return Err(BackfillError::BatchFailed {
                                table: self.table.clone(),
                                range: f.range,
                                attempts: attempt,
                                message: describe_error(&f.error),
                            });
                        }
                        if matches!(code, Some(SqlState::LOCK_NOT_AVAILABLE) | Some(SqlState::QUERY_CANCELED))
                        {
                            self.sizer.halve();
                        }
                        if attempt > self.opts.retries {
                            // Split: the next attempt covers the first half of what is left.
                            self.sizer.halve();
                            attempt = 0;
                        }
                        tokio::time::sleep(backoff(consecutive_failures)).await;
                    }
                }
            };
            consecutive_failures = 0;
            let (done, elapsed) = done;
            self.run_rows += done.updated;
            self.run_scanned += done.scanned;
            self.run_batches += 1;
            let finished = match &mut self.cursor {
                Cursor::Key(c) => {
                    if let Some(u) = done.upper {
                        *c = Some(u);
                    }
                    done.last
                }
                Cursor::Page { .. } => false,
            };
            progress.update(&self.progress(None));
            if finished {
                break;
            }
            let pace = self.throttle.current().pace;
            if pace > 0.0 {
                // The workload's transactions run slower than their baseline: give it the
                // database for `pace` times as long as this batch took.
                let wait = elapsed.mul_f64(pace);
                tokio::time::sleep(wait).await;
                self.pending_reasons.insert(Reason::WorkloadLatency);
                self.pending_throttle += wait;
            }
            if let Some(rate) = self.max_rows_per_sec {
                let min = Duration::from_secs_f64(done.scanned as f64 / rate);
                if min > elapsed {
                    let wait = min - elapsed;
                    tokio::time::sleep(wait).await;
                    self.pending_reasons.insert(Reason::RateLimit);
                    self.pending_throttle += wait;
                }
            }
        }
        if let Cursor::Page { .. } = self.cursor {
            self.client
                .execute(ledger::VERIFYING_SQL, &[&self.req.plan_id, &self.req.step_id])
                .await
                .map_err(|e| db(self.req, "record the end of the walk", e))?;
        }
        self.state = "verifying".into();
        Ok(())
    }

    /// One transaction of this backfill: its own throttle leaves it out of the workload, and
    /// in a run of several workers every worker's throttle does.
    fn note_own_work(&mut self, busy: Duration) {
        match &self.opts.group {
            Some(g) => {
                g.work.add(busy);
                self.throttle.note_self_work(busy);
            }
            None => self.throttle.note_own_work(busy),
        }
    }

    /// Hands the run's transactions since the last call (this worker's and the others') to
    /// the throttle, before it reads the workload.
    fn absorb_group_work(&mut self) {
        let Some(g) = &self.opts.group else { return };
        let (xacts, micros) = g.work.read();
        let (seen_x, seen_us) = self.group_seen;
        self.throttle.note_work(
            xacts.saturating_sub(seen_x) as f64,
            Duration::from_micros(micros.saturating_sub(seen_us)),
        );
        self.group_seen = (xacts, micros);
    }

    /// Samples the throttle when due and waits while it says hold.
    async fn wait_for_throttle(&mut self, progress: &mut dyn ProgressSink) -> Result<(), BackfillError> {
        // A partition's backfill also obeys its run's step; a rate set there is shared out.
        let control = self.opts.group.as_ref().map_or(self.req.step_id, |g| g.step_id.as_str()).to_string();
        let share = self.opts.group.as_ref().map_or(1.0, |g| f64::from(g.workers.max(1)));
        // The time held is the wall time from the first hold to the release, samples and
        // ledger writes included: the batch row reports how long the batch was kept back.
        let mut held_since: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let verdict = if self.throttle.due(now) {
                let r = self
                    .client
                    .query_one(
                        &self.prepared.sample,
                        &[&self.table, &self.req.plan_id, &self.req.step_id, &control],
                    )
                    .await
                    .map_err(|e| db(self.req, "sample the throttle signals", e))?;
                let sample = Sample {
                    replica_lag_secs: r.get(0),
                    oldest_transaction_secs: r.get(1),
                    lock_waiters: r.get(2),
                    wal_lsn: r.get(3),
                    paused: r.get(4),
                    max_rows_per_sec: r.get(5),
                    replicas: r.get(6),
                    retained_wal_bytes: r.get(7),
                    workload_xacts: r.get(8),
                    workload_busy_ms: r.get(9),
                };
                // The sample is a transaction of ours too.
                self.note_own_work(Duration::ZERO);
                self.absorb_group_work();
                self.throttle.observe(sample, now)
            } else {
                self.throttle.current()
            };
            if verdict.newly_throttled {
                self.sizer.halve();
            }
            if verdict.replicas_lost > 0 {
                // The replica-lost policy (DESIGN.md §5): go on, and record it on the next
                // batch row and in the ledger's throttle column for `seqmig backfill status`.
                self.pending_reasons.insert(Reason::ReplicaLost);
            }
            self.max_rows_per_sec = verdict.max_rows_per_sec.map(|r| r / share);
            if verdict.hold.is_empty() {
                if let Some(since) = held_since {
                    self.pending_throttle += since.elapsed();
                }
                return Ok(());
            }
            held_since.get_or_insert(now);
            self.pending_reasons.extend(verdict.hold.iter().copied());
            let reasons = verdict.hold.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",");
            if self.shown_throttle.as_deref() != Some(reasons.as_str()) {
                // So that `seqmig backfill status` in another session sees why it waits.
                self.client
                    .execute(ledger::THROTTLE_SQL, &[&self.req.plan_id, &self.req.step_id, &reasons])
                    .await
                    .map_err(|e| db(self.req, "record the throttle state", e))?;
                self.shown_throttle = Some(reasons.clone());
            }
            progress.update(&self.progress(Some(reasons)));
            tokio::time::sleep(self.throttle.options().sample_every).await;
        }
    }

    /// Runs one batch of about `n` rows in its own transaction, with its ledger row, in two
    /// round trips (three for a keyset batch: its bound, then its UPDATE). The batch commits without waiting for its WAL flush
    /// (`synchronous_commit = off`): a crash can lose the last batches, but each loses its
    /// ledger row with its rows, so the resumed walk redoes exactly them; the final
    /// verification's commit waits, and flushes every batch before it: BEGIN goes out together with the batch's statement, and the ledger row
    /// together with COMMIT. (BEGIN cannot fail while the connection lives, so the data
    /// change never runs outside the transaction; a failed ledger write turns the COMMIT
    /// into a rollback of both.)
    async fn batch(&mut self, n: u32, attempt: u32) -> Result<Done, Failure> {
        let began = Instant::now();
        let begin = format!(
            "BEGIN; SET LOCAL seqmig.backfill = 'on'; SET LOCAL synchronous_commit = off; SET LOCAL lock_timeout = '{}ms'; \
             SET LOCAL statement_timeout = '{}ms'; SELECT pg_current_wal_insert_lsn()::text{}",
            self.opts.lock_timeout.as_millis(),
            self.opts.statement_timeout().as_millis(),
            // The batch's own time reaches pg_stat_database when it ends, not up to a second
            // later inside what the workload-latency signal takes for the workload alone.
            // (After the LSN: the first row is what this batch reads back.)
            if self.force_stats_flush { "; SELECT pg_stat_force_next_flush()" } else { "" }
        );
        let (begun, work) = tokio::join!(biased; self.client.simple_query(&begin), self.work(n));
        let outcome = match (begun, work) {
            (Ok(msgs), Ok(work)) => {
                let wal_start = msgs
                    .iter()
                    .find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                        _ => None,
                    })
                    .unwrap_or_else(|| "0/0".into());
                Ok((wal_start, work))
            }
            (Err(error), _) => Err(Failure { range: self.range_hint(n), error }),
            (_, Err(f)) => Err(f),
        };
        let (wal_start, work) = match outcome {
            Ok(x) => x,
            Err(f) => {
                let _ = self.client.batch_execute("ROLLBACK").await;
                return Err(f);
            }
        };
        let elapsed = began.elapsed();
        let mut next = self.sizer.clone();
        next.observe(work.scanned, elapsed);
        let reason = (!self.pending_reasons.is_empty())
            .then(|| self.pending_reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","));
        let range = range_text_json(work.from.as_deref(), work.to.as_deref());
        let params: [&(dyn ToSql + Sync); 15] = [
            &self.req.plan_id,
            &self.req.step_id,
            &work.from,
            &work.to,
            &(work.scanned as i64),
            &(work.updated as i64),
            &(n as i32),
            &(elapsed.as_secs_f64() * 1000.0),
            &wal_start,
            &reason,
            &(self.pending_throttle.as_secs_f64() * 1000.0),
            &(attempt as i32),
            &(next.current() as i32),
            &work.state,
            // Rows still pending are counted once, after the walk.
            &0i64,
        ];
        let (recorded, committed) = tokio::join!(
            biased;
            self.client.query_one(&self.prepared.record, &params),
            self.client.batch_execute("COMMIT")
        );
        let row = match (recorded, committed) {
            (Ok(row), Ok(())) => row,
            // On an aborted transaction COMMIT answers ROLLBACK: nothing of the batch stays.
            (Err(error), _) | (_, Err(error)) => return Err(Failure { range, error }),
        };
        // Committed: the engine's copies follow the ledger.
        self.opts.fault.batch_committed();
        self.sizer = next;
        self.rows_done = row.get(0);
        self.rows_scanned = row.get(1);
        self.batches = i64::from(row.get::<_, i32>(2));
        self.verify_mismatches = row.get(3);
        self.pending_reasons.clear();
        self.pending_throttle = Duration::ZERO;
        self.shown_throttle = reason;
        if let Cursor::Page { next, .. } = &mut self.cursor
            && let Some(u) = &work.upper
            && let Some(page) = u.first().and_then(|t| key::tid_page(t))
        {
            *next = page;
        }
        let server_ms: f64 = row.get(4);
        Ok(Done {
            last: work.last,
            upper: work.upper,
            scanned: work.scanned,
            updated: work.updated,
            server_busy: Duration::from_secs_f64(server_ms.max(0.0) / 1000.0),
        })
    }

    /// The data change of one batch (inside the transaction `batch` opened).
    async fn work(&self, n: u32) -> Result<Work, Failure> {
        let p = &self.prepared;
        match &self.cursor {
            Cursor::Key(lower) => {
                // The batch's upper bound first (an index-only scan of `n` keys), then a plain
                // UPDATE up to it: its row count comes back in the command tag. (An UPDATE …
                // RETURNING inside a CTE that also counted still-pending rows cost 7–15% more
                // server CPU per row; the count after the walk replaces it.)
                let offset = i64::from(n.max(1) - 1);
                let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
                if let Some(l) = lower {
                    params.extend(l.iter().map(|v| v as &(dyn ToSql + Sync)));
                }
                let stmt = if lower.is_some() { opt(&p.step) } else { opt(&p.step_first) };
                let upper_bound = self.opts.slice.as_ref().and_then(|s| s.upper.as_ref());
                let mut with_offset = params.clone();
                with_offset.push(&offset);
                if let Some(u) = upper_bound {
                    with_offset.extend(u.iter().map(|v| v as &(dyn ToSql + Sync)));
                }
                let row = self
                    .client
                    .query_opt(stmt, &with_offset)
                    .await
                    .map_err(|error| Failure { range: self.range_hint(n), error })?;
                let upper: Option<Vec<String>> = row.map(|r| r.get(0));
                // A slice's last batch runs up to the slice's bound, which the cursor then holds.
                let last_of_slice = upper.is_none() && upper_bound.is_some();
                let upper_written = upper.clone().or_else(|| upper_bound.cloned());
                let range = range_text(lower.as_ref(), upper_written.as_ref());
                let updated = match upper.as_ref().or(upper_bound) {
                    Some(u) => {
                        let mut bounds = params.clone();
                        bounds.extend(u.iter().map(|v| v as &(dyn ToSql + Sync)));
                        let update = if lower.is_some() { &p.update } else { opt(&p.update_first) };
                        self.client.execute(update, &bounds).await
                    }
                    // Fewer than `n` rows are left: the last batch runs to the end.
                    None => {
                        let last = if lower.is_some() { opt(&p.update_last) } else { opt(&p.update_all) };
                        self.client.execute(last, &params).await
                    }
                }
                .map_err(|error| Failure { range, error })?;
                Ok(Work {
                    from: lower.as_ref().map(|l| json(l)),
                    to: upper_written.as_ref().map(|u| json(u)),
                    scanned: if upper.is_some() { u64::from(n) } else { updated },
                    state: if upper.is_some() { "running" } else { "verifying" },
                    // `None` ends the walk; a slice's last batch still moves the cursor to
                    // its bound (`Done::last` says it was the last).
                    last: upper.is_none(),
                    upper: if last_of_slice { upper_written } else { upper },
                    updated,
                })
            }
            Cursor::Page { next, end, .. } => {
                let pages = ((f64::from(n) / self.rows_per_page).ceil() as i64).max(1);
                let to_page = (*next + pages).min(*end).max(*next + 1);
                let (lo, hi) = (key::tid(*next), key::tid(to_page));
                let updated = self
                    .client
                    .execute(&p.update, &[&lo, &hi])
                    .await
                    .map_err(|error| Failure { range: format!("ctid [{lo}, {hi})"), error })?;
                Ok(Work {
                    from: Some(json(&[lo])),
                    to: Some(json(std::slice::from_ref(&hi))),
                    upper: Some(vec![hi]),
                    last: false,
                    scanned: ((to_page - *next) as f64 * self.rows_per_page).round() as u64,
                    updated,
                    state: "running",
                })
            }
        }
    }

    fn range_hint(&self, n: u32) -> String {
        match &self.cursor {
            Cursor::Key(None) => format!("of the first {n} keys"),
            Cursor::Key(Some(l)) => format!("of {n} keys after {}", json(l)),
            Cursor::Page { next, .. } => format!("from page {next}"),
        }
    }

    /// The table's size in pages now; `pg_relation_size` locks the table, so a lock queue
    /// is waited out like a batch's.
    async fn pages(&self) -> Result<i64, BackfillError> {
        let mut failures = 0;
        loop {
            match self.client.query_one(key::PAGES_SQL, &[&self.table]).await {
                Ok(r) => return Ok(r.get(0)),
                Err(e) => {
                    let e = db(self.req, "read the table's size", e);
                    if !lock_timed_out(&e) || failures >= self.opts.failure_budget {
                        return Err(e);
                    }
                    failures += 1;
                    tokio::time::sleep(backoff(failures)).await;
                }
            }
        }
    }

    async fn verify(&mut self) -> Result<i64, BackfillError> {
        let mut failures = 0;
        loop {
            match self.verify_once().await {
                Err(e) if lock_timed_out(&e) && failures < self.opts.failure_budget => {
                    failures += 1;
                    tokio::time::sleep(backoff(failures)).await;
                }
                other => return other,
            }
        }
    }

    async fn verify_once(&mut self) -> Result<i64, BackfillError> {
        let sql = "BEGIN; SET LOCAL statement_timeout = 0; SET LOCAL seqmig.backfill = 'on'";
        self.client.batch_execute(sql).await.map_err(|e| db(self.req, "start the verification", e))?;
        // One count over the whole table, in parallel where the server allows: the same
        // predicate the gate re-counts with.
        let mut bounds: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(slice) = &self.opts.slice {
            for b in [&slice.lower, &slice.upper].into_iter().flatten() {
                bounds.extend(b.iter().map(|v| v as &(dyn ToSql + Sync)));
            }
        }
        let mismatches: i64 = match self.client.query_one(&self.verify_sql, &bounds).await {
            Ok(r) => r.get(0),
            Err(e) => {
                let _ = self.client.batch_execute("ROLLBACK").await;
                return Err(db(self.req, "count mismatching rows", e));
            }
        };
        let recorded =
            self.client.execute(ledger::DONE_SQL, &[&self.req.plan_id, &self.req.step_id, &mismatches]).await;
        if let Err(e) = recorded {
            let _ = self.client.batch_execute("ROLLBACK").await;
            return Err(db(self.req, "record the verification", e));
        }
        self.client.batch_execute("COMMIT").await.map_err(|e| db(self.req, "record the verification", e))?;
        Ok(mismatches)
    }

    fn progress(&self, throttle: Option<String>) -> Progress {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { self.run_scanned as f64 / secs } else { 0.0 };
        let state = match (&throttle, self.state.as_str()) {
            (Some(_), "running") => "throttled".to_string(),
            (_, s) => s.to_string(),
        };
        Progress {
            plan_id: self.req.plan_id.into(),
            step_id: self.req.step_id.into(),
            table: self.table.clone(),
            column: self.req.spec.target_column.as_str().into(),
            state,
            rows_done: self.rows_done,
            rows_scanned: self.rows_scanned,
            rows_total_estimate: self.total_estimate,
            batches: self.batches,
            batch_size: self.sizer.current(),
            rows_per_sec: rate,
            eta_secs: if self.state == "running" {
                eta(self.total_estimate, self.rows_scanned, rate)
            } else {
                None
            },
            throttle,
            verify_mismatches: self.verify_mismatches,
        }
    }
}

async fn find_walk(
    client: &Client,
    req: &BackfillRequest<'_>,
    table: &str,
    forced: Option<&[String]>,
) -> Result<Walk, BackfillError> {
    if let Some(names) = forced {
        let rows = client
            .query(key::COLUMN_TYPES_SQL, &[&table, &names])
            .await
            .map_err(|e| db(req, "read the key columns' types", e))?;
        let mut cols = Vec::new();
        for name in names {
            match rows.iter().find(|r| r.get::<_, String>(0) == *name) {
                Some(r) if r.get::<_, bool>(2) => {
                    cols.push(KeyColumn { name: name.clone(), sql_type: r.get(1) })
                }
                _ => return Err(BackfillError::BadKey { table: table.into(), column: name.clone() }),
            }
        }
        return Ok(Walk::Keyset(cols));
    }
    let row =
        client.query_opt(key::FIND_KEY_SQL, &[&table]).await.map_err(|e| db(req, "find a unique key", e))?;
    Ok(match row {
        Some(r) => {
            let names: Vec<String> = r.get(0);
            let types: Vec<String> = r.get(1);
            Walk::Keyset(
                names.into_iter().zip(types).map(|(name, sql_type)| KeyColumn { name, sql_type }).collect(),
            )
        }
        None => Walk::Tid,
    })
}

async fn prepare(
    client: &Client,
    req: &BackfillRequest<'_>,
    walk: &Walk,
    s: &key::Statements,
) -> Result<Prepared, BackfillError> {
    let p = |sql: String| async move {
        if sql.is_empty() {
            Ok(None)
        } else {
            client.prepare(&sql).await.map(Some).map_err(|e| db(req, &format!("prepare '{sql}'"), e))
        }
    };
    let keyset = matches!(walk, Walk::Keyset(_));
    let update =
        client.prepare(&s.update).await.map_err(|e| db(req, &format!("prepare '{}'", s.update), e))?;
    Ok(Prepared {
        step: if keyset { p(s.step.clone()).await? } else { None },
        step_first: if keyset { p(s.step_first.clone()).await? } else { None },
        update,
        update_first: p(s.update_first.clone()).await?,
        update_last: p(s.update_last.clone()).await?,
        update_all: p(s.update_all.clone()).await?,
        record: client
            .prepare(ledger::RECORD_BATCH_SQL)
            .await
            .map_err(|e| db(req, "prepare the ledger update", e))?,
        sample: client
            .prepare(ledger::THROTTLE_SAMPLE_SQL)
            .await
            .map_err(|e| db(req, "prepare the throttle sample", e))?,
    })
}

/// Statements present in the walk's mode; the batch code only asks for those.
fn opt(s: &Option<tokio_postgres::Statement>) -> &tokio_postgres::Statement {
    s.as_ref().expect("statement prepared for this walk")
}

fn json(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".into())
}

fn range_text(lower: Option<&Vec<String>>, upper: Option<&Vec<String>>) -> String {
    range_text_json(lower.map(|l| json(l)).as_deref(), upper.map(|u| json(u)).as_deref())
}

fn range_text_json(lower: Option<&str>, upper: Option<&str>) -> String {
    format!("({}, {}]", lower.unwrap_or("start"), upper.unwrap_or("end"))
}

/// 100 ms, 200 ms, 400 ms … (capped at 5 s), each scaled by a random 0.5–1.5 so that
/// several runners do not retry in step.
fn backoff(failures: u32) -> Duration {
    let base = 100.0 * 2f64.powi(failures.saturating_sub(1).min(6) as i32);
    Duration::from_secs_f64(base.min(5_000.0) * (0.5 + jitter()) / 1000.0)
}

/// A number in [0, 1) from the clock; retries need spread, not cryptography.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut x = u64::from(nanos) ^ (u64::from(std::process::id()) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x % 1_000_000) as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        for f in 1..20 {
            let d = backoff(f).as_secs_f64();
            let base = (0.1 * 2f64.powi((f - 1).min(6) as i32)).min(5.0);
            assert!(d >= base * 0.5 && d <= base * 1.5, "{f}: {d}");
        }
    }

    #[test]
    fn ranges_name_their_bounds() {
        let l = vec!["4".to_string()];
        assert_eq!(range_text(Some(&l), None), "([\"4\"], end]");
        assert_eq!(range_text(None, Some(&l)), "(start, [\"4\"]]");
    }
}
