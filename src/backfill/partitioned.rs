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

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::{
    BackfillError, BackfillOptions, BackfillOutcome, BackfillRequest, Progress, ProgressSink, RunGroup,
};
use crate::db::ConnectOptions;
use crate::ledger::backfills as ledger;
use crate::model::QualifiedName;

/// The ledger's key columns for a step walked partition by partition.
pub const PARTITIONS_KEY: &str = "(partitions)";

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

/// What a partitioned backfill did: the whole table, and each partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionedOutcome {
    /// Sums over the partitions (`key_kind` `key`, key columns `(partitions)`).
    pub total: BackfillOutcome,
    /// Each leaf partition (quoted name) and its own backfill's outcome.
    pub partitions: Vec<(String, BackfillOutcome)>,
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
/// ([`run_partitioned`]), any other table in one walk on `client` (no partitions listed).
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
        let total = super::run(client, req, opts, progress).await?;
        return Ok(PartitionedOutcome { total, partitions: Vec::new() });
    }
    run_partitioned(client, conn, req, opts, jobs, progress).await
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

    let jobs = jobs.clamp(1, leaves.len().max(1));
    let queue = std::sync::Arc::new(std::sync::Mutex::new(leaves.iter().cloned().collect::<VecDeque<_>>()));
    let (tx, rx) = mpsc::channel::<Progress>();
    let mut worker_opts = opts.clone();
    worker_opts.group = Some(RunGroup { step_id: req.step_id.to_string(), workers: jobs as u32 });
    let mut handles = Vec::new();
    for _ in 0..jobs {
        let queue = queue.clone();
        let tx = tx.clone();
        let conn = conn.clone();
        let opts = worker_opts.clone();
        let (plan_id, step_id, spec) = (req.plan_id.to_string(), req.step_id.to_string(), spec.clone());
        handles.push(tokio::spawn(async move {
            let mut client = crate::db::connect(&conn, &crate::db::default_application_name())
                .await
                .map_err(|e| (String::new(), e.to_string()))?;
            let mut done = Vec::new();
            loop {
                let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                let Some(partition) = next else { break };
                let mut own = spec.clone();
                own.table = partition.clone();
                let own_step = partition_step_id(&step_id, &partition);
                let req = BackfillRequest { plan_id: &plan_id, step_id: &own_step, spec: &own };
                let mut sink = Channel(tx.clone());
                match super::run(&mut client, &req, &opts, &mut sink).await {
                    Ok(o) => done.push((partition.quoted(), o)),
                    Err(e) => return Err((partition.quoted(), e.to_string())),
                }
            }
            Ok::<_, (String, String)>(done)
        }));
    }
    drop(tx);

    // Forward progress, per partition and in total, until every worker has ended.
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
            // One partition failed: the others stop now (their open batch rolls back with
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
            table: if partition.is_empty() { table } else { partition },
            range: "of a partition".into(),
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
        key_columns: vec![PARTITIONS_KEY.into()],
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

/// A worker's progress, sent to the run's thread.
struct Channel(mpsc::Sender<Progress>);

impl ProgressSink for Channel {
    fn update(&mut self, p: &Progress) {
        let _ = self.0.send(p.clone());
    }
    fn finish(&mut self, p: &Progress) {
        let _ = self.0.send(p.clone());
    }
}
