//! The backfill of a partitioned table, partition by partition (issue 21): the leaf
//! partitions are found at run time (`pg_partition_tree`, so a partition a manager added
//! since planning is included), and `jobs` workers, each on its own connection, take them
//! biggest first. Every partition is an ordinary backfill of its own (step id
//! `STEP@partition`): its cursor commits with each batch, so a crash resumes each partition
//! exactly where its last batch committed. The plan's step keeps one ledger row for the
//! whole table (key `(partitions)`) with the partitions' totals, which `seqmig status`
//! shows and the gate reads. The throttle applies to the whole run: every worker samples the
//! same server-wide signals, the operator's pause and rate on the plan's step hold them all,
//! and a rate limit is shared out between the workers.
//!
//! A table that is not partitioned runs with `jobs > 1` the same way, split into `jobs`
//! slices of its key ([`run_sliced`]): the bounds are found once (the key at each `1/N` of
//! the table) and kept in the step's ledger row (`cursor_key`, a JSON array of the bounds),
//! every slice is a backfill of its own (step id `STEP@sliceIofN`), and the last slice is
//! open-ended, so rows inserted past the last bound after the start are walked too.

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::{
    BackfillError, BackfillOptions, BackfillOutcome, BackfillRequest, Progress, ProgressSink, RunGroup,
    Slice, Walk,
};
use crate::db::ConnectOptions;
use crate::ledger::backfills as ledger;
use crate::model::QualifiedName;
use crate::plan::BackfillSpec;

/// The ledger's key columns for a step walked partition by partition.
pub const PARTITIONS_KEY: &str = "(partitions)";

/// The ledger's key columns for a step walked in slices of its key by several workers.
pub const SLICES_KEY: &str = "(slices)";

/// The leaf partitions of `table`, biggest first; empty when `table` is not partitioned.
pub const LEAVES_SQL: &str = "\
SELECT n.nspname, c.relname
  FROM pg_partition_tree($1::text::regclass) t
  JOIN pg_class c ON c.oid = t.relid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE t.isleaf AND t.level > 0
 ORDER BY pg_relation_size(c.oid) DESC, n.nspname, c.relname";

/// The ledger step id of one partition's backfill.
pub fn partition_step_id(step_id: &str, partition: &QualifiedName) -> String {
    format!("{step_id}@{}", partition.quoted())
}

/// The ledger step id of slice `i` (from 1) of `n`.
pub fn slice_step_id(step_id: &str, i: usize, n: usize) -> String {
    format!("{step_id}@slice{i}of{n}")
}

/// What a partitioned (or sliced) backfill did: the whole table, and each part.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionedOutcome {
    /// Sums over the parts (`key_kind` `key`, key columns `(partitions)` or `(slices)`).
    pub total: BackfillOutcome,
    /// Each part and its own backfill's outcome: `partition public.t_p1`, or `slice 1 of 2`.
    pub partitions: Vec<(String, BackfillOutcome)>,
}

/// One backfill of the pool: a partition, or a slice of a table's key.
#[derive(Debug, Clone)]
struct Unit {
    label: String,
    step_id: String,
    spec: BackfillSpec,
    slice: Option<Slice>,
}

/// The leaf partitions of `table` (quoted), biggest first; empty for a table that is not
/// partitioned.
pub async fn leaf_partitions(
    client: &Client,
    table: &str,
) -> Result<Vec<QualifiedName>, tokio_postgres::Error> {
    let rows = client.query(LEAVES_SQL, &[&table]).await?;
    Ok(rows.iter().map(|r| QualifiedName::of(r.get::<_, &str>(0), r.get::<_, &str>(1))).collect())
}

/// Runs (or resumes) a step's backfill the one way `seqmig backfill run` and `seqmig apply`
/// both do: a partitioned table partition by partition with `jobs` workers
/// ([`run_partitioned`]); any other table in `jobs` slices of its key ([`run_sliced`]) when
/// `jobs > 1`, else in one walk on `client` (no parts listed). A step the ledger already
/// has continues the way it started: a sliced step in its slices (with `jobs` workers, at
/// least one), a one-walk step in one walk whatever `jobs` says.
pub async fn run_table(
    client: &mut Client,
    conn: &ConnectOptions,
    req: &BackfillRequest<'_>,
    opts: &BackfillOptions,
    jobs: usize,
    progress: &mut dyn ProgressSink,
) -> Result<PartitionedOutcome, BackfillError> {
    let table = req.spec.table.quoted();
    let leaves =
        leaf_partitions(client, &table).await.map_err(|e| super::db(req, "list the leaf partitions", e))?;
    if leaves.is_empty() {
        let recorded: Option<Vec<String>> = client
            .query_opt(
                "SELECT key_columns FROM seqmig.backfills WHERE plan_id = $1 AND step_id = $2",
                &[&req.plan_id, &req.step_id],
            )
            .await
            .ok()
            .flatten()
            .map(|r| r.get(0));
        let sliced = match &recorded {
            Some(keys) => keys == &[SLICES_KEY],
            None => jobs > 1,
        };
        if sliced {
            return run_sliced(client, conn, req, opts, jobs, progress).await;
        }
        let total = super::run(client, req, opts, progress).await?;
        return Ok(PartitionedOutcome { total, partitions: Vec::new() });
    }
    run_partitioned(client, conn, req, opts, jobs, progress).await
}

/// Runs (or resumes) the backfill of a table that is not partitioned in `jobs` slices of its
/// unique key, one worker (its own connection made with `conn`) per slice. The slices'
/// bounds are decided on the first run and kept in the step's ledger row; a resumed run
/// uses them again (with `jobs` workers, however many slices there are), so every slice
/// continues where its last batch committed. A composite key is split the same way (row
/// comparison); a table without a unique NOT NULL key is refused.
pub async fn run_sliced(
    client: &Client,
    conn: &ConnectOptions,
    req: &BackfillRequest<'_>,
    opts: &BackfillOptions,
    jobs: usize,
    progress: &mut dyn ProgressSink,
) -> Result<PartitionedOutcome, BackfillError> {
    let started = Instant::now();
    let spec = req.spec;
    let table = spec.table.quoted();
    let target = spec.target_column.as_str().to_string();
    let walk = super::find_walk(client, req, &table, opts.key.as_deref()).await?;
    if walk == Walk::Tid {
        return Err(BackfillError::SlicedWithoutKey { table });
    }
    let estimate: i64 = client
        .query_one(
            "SELECT CASE WHEN reltuples > 0 THEN reltuples::bigint END FROM pg_class WHERE oid = $1::text::regclass",
            &[&table],
        )
        .await
        .map_err(|e| super::db(req, "estimate the table's size", e))?
        .get::<_, Option<i64>>(0)
        .unwrap_or(0);
    let existing = client
        .query_opt(
            "SELECT cursor_key::text FROM seqmig.backfills WHERE plan_id = $1 AND step_id = $2",
            &[&req.plan_id, &req.step_id],
        )
        .await
        .map_err(|e| super::db(req, "read the backfill's slices", e))?
        .and_then(|r| r.get::<_, Option<String>>(0));
    let bounds_json = match existing {
        Some(j) => j,
        None => {
            let bounds = slice_bounds(client, req, &walk, &table, jobs.max(1)).await?;
            serde_json::to_string(&bounds).unwrap_or_else(|_| "[]".into())
        }
    };
    let row = client
        .query_one(
            ledger::SLICED_START_SQL,
            &[&req.plan_id, &req.step_id, &table, &target, &estimate, &bounds_json],
        )
        .await
        .map_err(|e| super::db(req, "start the backfill in the ledger (is the ledger installed?)", e))?;
    let (recorded_table, recorded_target, keys): (String, String, Vec<String>) =
        (row.get(0), row.get(1), row.get(2));
    if recorded_table != table || recorded_target != target || keys != [SLICES_KEY] {
        return Err(BackfillError::LedgerMismatch {
            plan_id: req.plan_id.into(),
            step_id: req.step_id.into(),
            recorded: format!("{recorded_table}.{recorded_target} by ({})", keys.join(", ")),
            requested: format!("{table}.{target} in slices"),
        });
    }
    // What the ledger holds wins: a concurrent first run may have stored its bounds first.
    let stored: Option<String> = row.get(3);
    let bounds: Vec<Vec<String>> =
        stored.as_deref().and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
    let n = bounds.len() + 1;
    let units: Vec<Unit> = (0..n)
        .map(|i| Unit {
            label: format!("slice {} of {n}", i + 1),
            step_id: slice_step_id(req.step_id, i + 1, n),
            spec: spec.clone(),
            slice: Some(Slice {
                lower: i.checked_sub(1).map(|j| bounds[j].clone()),
                upper: bounds.get(i).cloned(),
                of: n as u32,
            }),
        })
        .collect();
    let mut run =
        run_units(client, conn, req, opts, jobs, units.clone(), estimate, started, progress).await?;
    // Each slice counted its own keys when it ended, the others still walking: a row whose
    // key a writer moved into a slice that had already passed it (the dual-write trigger
    // does not fire on a key-only update) is pending in no count yet. One count over the
    // whole table, after every slice, decides, as after a single walk; the slices run again
    // while it finds any (each counts its keys again and walks again only where some are
    // pending), at most twice.
    let mut rounds = 0;
    loop {
        let pending =
            super::verify(client, spec).await.map_err(|e| super::db(req, "count mismatching rows", e))?;
        if pending == 0 || rounds == 2 {
            client
                .execute(ledger::DONE_SQL, &[&req.plan_id, &req.step_id, &pending])
                .await
                .map_err(|e| super::db(req, "record the verification", e))?;
            run.total.verify_mismatches = pending;
            run.total.elapsed = started.elapsed();
            return Ok(run);
        }
        rounds += 1;
        let again =
            run_units(client, conn, req, opts, jobs, units.clone(), estimate, started, progress).await?;
        run.total.rows_updated += again.total.rows_updated;
        run.total.batches_run += again.total.batches_run;
        run.total.rows_done = again.total.rows_done;
        run.total.batches = again.total.batches;
        for (label, o) in again.partitions {
            if let Some((_, first)) = run.partitions.iter_mut().find(|(l, _)| *l == label) {
                let (rows, batches) =
                    (first.rows_updated + o.rows_updated, first.batches_run + o.batches_run);
                *first = o;
                first.rows_updated = rows;
                first.batches_run = batches;
            }
        }
    }
}

/// The keys that split `table` into `n` slices of about equal row counts: the key at each
/// `i/n` of the key order (an index-only scan up to each), without repeats.
async fn slice_bounds(
    client: &Client,
    req: &BackfillRequest<'_>,
    walk: &Walk,
    table: &str,
    n: usize,
) -> Result<Vec<Vec<String>>, BackfillError> {
    let count_sql = format!("SELECT count(*) FROM {table}");
    let rows: i64 = client
        .query_one(&count_sql, &[])
        .await
        .map_err(|e| super::db(req, "count the table's rows", e))?
        .get(0);
    let s = super::statements(walk, table, req.spec.target_column.as_str(), &req.spec.expr, "true");
    let mut bounds: Vec<Vec<String>> = Vec::new();
    for i in 1..n {
        let offset = (rows * i as i64 / n as i64 - 1).max(0);
        let row = client
            .query_opt(&s.step_first, &[&offset])
            .await
            .map_err(|e| super::db(req, "find the slices' bounds", e))?;
        let Some(row) = row else { break };
        let key: Vec<String> = row.get(0);
        if bounds.last() != Some(&key) {
            bounds.push(key);
        }
    }
    Ok(bounds)
}

/// Runs (or resumes) the backfill of a partitioned table with `jobs` workers, each on its own
/// connection made with `conn`. `client` records the step's own ledger row. Progress goes to
/// `progress` per partition (`table` is the partition) and in total (`table` is the parent).
pub async fn run_partitioned(
    client: &Client,
    conn: &ConnectOptions,
    req: &BackfillRequest<'_>,
    opts: &BackfillOptions,
    jobs: usize,
    progress: &mut dyn ProgressSink,
) -> Result<PartitionedOutcome, BackfillError> {
    let started = Instant::now();
    let spec = req.spec;
    let table = spec.table.quoted();
    let target = spec.target_column.as_str().to_string();
    let leaves =
        leaf_partitions(client, &table).await.map_err(|e| super::db(req, "list the leaf partitions", e))?;
    let estimate: i64 = client
        .query_one(
            "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint FROM pg_partition_tree($1::text::regclass) t \
             JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf",
            &[&table],
        )
        .await
        .map_err(|e| super::db(req, "estimate the partitions' sizes", e))?
        .get(0);
    let row = client
        .query_one(ledger::PARTITIONED_START_SQL, &[&req.plan_id, &req.step_id, &table, &target, &estimate])
        .await
        .map_err(|e| super::db(req, "start the backfill in the ledger (is the ledger installed?)", e))?;
    let (recorded_table, recorded_target, keys): (String, String, Vec<String>) =
        (row.get(0), row.get(1), row.get(2));
    if recorded_table != table || recorded_target != target || keys != [PARTITIONS_KEY] {
        return Err(BackfillError::LedgerMismatch {
            plan_id: req.plan_id.into(),
            step_id: req.step_id.into(),
            recorded: format!("{recorded_table}.{recorded_target} by ({})", keys.join(", ")),
            requested: format!("{table}.{target} by partition"),
        });
    }

    let units = leaves
        .iter()
        .map(|partition| {
            let mut own = spec.clone();
            own.table = partition.clone();
            Unit {
                label: format!("partition {}", partition.quoted()),
                step_id: partition_step_id(req.step_id, partition),
                spec: own,
                slice: None,
            }
        })
        .collect();
    run_units(client, conn, req, opts, jobs, units, estimate, started, progress).await
}

/// Runs `units` (partitions or slices, the step's own ledger row already started) with
/// `jobs` workers, each on its own connection made with `conn`, and records the step's sums.
#[allow(clippy::too_many_arguments)]
async fn run_units(
    client: &Client,
    conn: &ConnectOptions,
    req: &BackfillRequest<'_>,
    opts: &BackfillOptions,
    jobs: usize,
    units: Vec<Unit>,
    estimate: i64,
    started: Instant,
    progress: &mut dyn ProgressSink,
) -> Result<PartitionedOutcome, BackfillError> {
    let table = req.spec.table.quoted();
    let jobs = jobs.clamp(1, units.len().max(1));
    let queue = std::sync::Arc::new(std::sync::Mutex::new(units.into_iter().collect::<VecDeque<_>>()));
    let (tx, rx) = mpsc::channel::<Progress>();
    let mut worker_opts = opts.clone();
    worker_opts.group = Some(RunGroup {
        step_id: req.step_id.to_string(),
        workers: jobs as u32,
        work: super::GroupWork::default(),
    });
    let mut handles = Vec::new();
    for _ in 0..jobs {
        let queue = queue.clone();
        let tx = tx.clone();
        let conn = conn.clone();
        let opts = worker_opts.clone();
        let plan_id = req.plan_id.to_string();
        handles.push(tokio::spawn(async move {
            let mut client = crate::db::connect(&conn, &crate::db::default_application_name())
                .await
                .map_err(|e| (String::new(), e.to_string()))?;
            let mut done = Vec::new();
            loop {
                let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                let Some(unit) = next else { break };
                let req = BackfillRequest { plan_id: &plan_id, step_id: &unit.step_id, spec: &unit.spec };
                let mut sink = Channel(tx.clone(), unit.slice.is_some().then(|| unit.label.clone()));
                let mut opts = opts.clone();
                opts.slice = unit.slice.clone();
                match super::run(&mut client, &req, &opts, &mut sink).await {
                    Ok(o) => done.push((unit.label.clone(), o)),
                    Err(e) => return Err((unit.label.clone(), e.to_string())),
                }
            }
            Ok::<_, (String, String)>(done)
        }));
    }
    drop(tx);

    // Forward progress, per part and in total, until every worker has ended.
    let mut latest: BTreeMap<String, Progress> = BTreeMap::new();
    let mut last_totals = Instant::now();
    let mut failure: Option<(String, String)> = None;
    let mut outcomes = Vec::new();
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    loop {
        let mut changed = false;
        while let Ok(p) = rx.try_recv() {
            progress.update(&p);
            latest.insert(p.table.clone(), p);
            changed = true;
        }
        if changed {
            progress.update(&total(req, &table, estimate, &latest, started, "running"));
        }
        if last_totals.elapsed() >= Duration::from_secs(1) {
            let _ = client.execute(ledger::PARTITIONED_TOTALS_SQL, &[&req.plan_id, &req.step_id]).await;
            last_totals = Instant::now();
        }
        for slot in pending.iter_mut() {
            if slot.as_ref().is_some_and(|h| h.is_finished())
                && let Some(h) = slot.take()
            {
                match h.await {
                    Ok(Ok(done)) => outcomes.extend(done),
                    Ok(Err(f)) => failure = failure.or(Some(f)),
                    Err(e) => failure = failure.or(Some((String::new(), e.to_string()))),
                }
            }
        }
        if failure.is_some() {
            // One part failed: the others stop now (their open batch rolls back with
            // its ledger row), and a new run resumes every partition where it stands.
            for h in pending.iter_mut().filter_map(Option::take) {
                h.abort();
                let _ = h.await;
            }
        }
        if pending.iter().all(Option::is_none) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .execute(ledger::PARTITIONED_TOTALS_SQL, &[&req.plan_id, &req.step_id])
        .await
        .map_err(|e| super::db(req, "sum the partitions", e))?;
    if let Some((partition, message)) = failure {
        let _ = client.execute(ledger::FAILED_SQL, &[&req.plan_id, &req.step_id, &message]).await;
        return Err(BackfillError::BatchFailed {
            table: if partition.is_empty() { table } else { format!("{table} ({partition})") },
            range: "of a part".into(),
            attempts: 1,
            message,
        });
    }
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    let sum = |f: fn(&BackfillOutcome) -> i64| outcomes.iter().map(|(_, o)| f(o)).sum::<i64>();
    let mismatches = sum(|o| o.verify_mismatches);
    client
        .execute(ledger::DONE_SQL, &[&req.plan_id, &req.step_id, &mismatches])
        .await
        .map_err(|e| super::db(req, "record the verification", e))?;
    let totals = client
        .query_one(ledger::TOTALS_READ_SQL, &[&req.plan_id, &req.step_id])
        .await
        .map_err(|e| super::db(req, "read the totals", e))?;
    let total_outcome = BackfillOutcome {
        rows_updated: outcomes.iter().map(|(_, o)| o.rows_updated).sum(),
        batches_run: outcomes.iter().map(|(_, o)| o.batches_run).sum(),
        rows_done: totals.get(0),
        batches: i64::from(totals.get::<_, i32>(1)),
        verify_mismatches: mismatches,
        resumed: outcomes.iter().any(|(_, o)| o.resumed),
        key_kind: "key".into(),
        key_columns: vec![
            if outcomes.iter().any(|(l, _)| l.starts_with("slice")) { SLICES_KEY } else { PARTITIONS_KEY }
                .into(),
        ],
        elapsed: started.elapsed(),
        verify_elapsed: outcomes.iter().map(|(_, o)| o.verify_elapsed).max().unwrap_or_default(),
    };
    let mut finished = total(req, &table, estimate, &latest, started, "done");
    finished.verify_mismatches = Some(mismatches);
    progress.finish(&finished);
    Ok(PartitionedOutcome { total: total_outcome, partitions: outcomes })
}

/// The whole table's progress from each partition's latest reading.
fn total(
    req: &BackfillRequest<'_>,
    table: &str,
    estimate: i64,
    latest: &BTreeMap<String, Progress>,
    started: Instant,
    state: &str,
) -> Progress {
    let sum = |f: fn(&Progress) -> i64| latest.values().map(f).sum::<i64>();
    let secs = started.elapsed().as_secs_f64();
    let rate: f64 = latest
        .values()
        .filter(|p| matches!(p.state.as_str(), "running" | "throttled"))
        .map(|p| p.rows_per_sec)
        .sum();
    let scanned = sum(|p| p.rows_scanned);
    let throttle: Vec<&str> = latest.values().filter_map(|p| p.throttle.as_deref()).collect();
    Progress {
        plan_id: req.plan_id.into(),
        step_id: req.step_id.into(),
        table: table.into(),
        column: req.spec.target_column.as_str().into(),
        state: state.into(),
        rows_done: sum(|p| p.rows_done),
        rows_scanned: scanned,
        rows_total_estimate: Some(estimate.max(scanned)),
        batches: sum(|p| p.batches),
        batch_size: latest.values().map(|p| p.batch_size).sum(),
        rows_per_sec: if secs > 0.0 { rate } else { 0.0 },
        eta_secs: (rate > 0.0 && state == "running").then(|| (estimate - scanned).max(0) as f64 / rate),
        throttle: (!throttle.is_empty()).then(|| throttle.join(",")),
        verify_mismatches: latest.values().filter_map(|p| p.verify_mismatches).reduce(|a, b| a + b),
    }
}

/// A worker's progress, sent to the run's thread; a slice's is named `table (slice i of n)`
/// (every slice walks the same table).
struct Channel(mpsc::Sender<Progress>, Option<String>);

impl Channel {
    fn named(&self, p: &Progress) -> Progress {
        let mut p = p.clone();
        if let Some(label) = &self.1 {
            p.table = format!("{} ({label})", p.table);
        }
        p
    }
}

impl ProgressSink for Channel {
    fn update(&mut self, p: &Progress) {
        let _ = self.0.send(self.named(p));
    }
    fn finish(&mut self, p: &Progress) {
        let _ = self.0.send(self.named(p));
    }
}
