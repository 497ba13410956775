//! Watching a step while the executor runs it: the locks its backend holds, whether a table
//! got a new relfilenode (a rewrite), and how long it took.
//!
//! Three ways to see locks, most exact first:
//! - `transaction`: a transactional step's locks are read on the runner's own session just
//!   before COMMIT (the executor's [`StepObserver::in_transaction`] hook). Exact: PostgreSQL
//!   holds relation locks until the end of the transaction.
//! - `probe`: a step planned to run outside a transaction is first tried inside one on a
//!   second session and rolled back, and that session's locks are read. Exact when the SQL
//!   is allowed in a transaction (an edited plan whose `CREATE INDEX` lost `CONCURRENTLY`
//!   is); `CREATE INDEX CONCURRENTLY` refuses (SQLSTATE 25001) and falls through to:
//! - `sampled`: a second session polls `pg_locks` for the runner's pid every millisecond
//!   while the step runs. Locks held for less than a poll can be missed; what is seen is real.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::Client;

use crate::exec::{Action, ObserverFuture, StepObserver};
use crate::plan::{LockMode, Step};

/// How an observation was made (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockSource {
    /// Nothing could be observed (a backfill that finished between polls).
    None,
    Sampled,
    Probe,
    Transaction,
}

impl LockSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LockSource::None => "none",
            LockSource::Sampled => "sampled",
            LockSource::Probe => "probe",
            LockSource::Transaction => "transaction",
        }
    }
}

/// What one apply or rollback of one step did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StepObservation {
    /// Strongest mode seen per relation (`public.t` → mode), every relation kind.
    pub locks: BTreeMap<String, LockMode>,
    /// Relations that existed when the phase started (only their locks matter to running
    /// applications; a relation created in this release is invisible to them).
    #[serde(skip)]
    pub preexisting: BTreeSet<String>,
    pub source: Option<LockSource>,
    /// Tables whose relfilenode changed.
    pub rewrote: Vec<String>,
    pub ms: u64,
    pub ok: bool,
}

impl StepObservation {
    /// The strongest lock on a relation that existed before the phase and is a table, view
    /// or materialized view (an index's lock comes with one on its table), with that relation;
    /// among equally strong ones, the relation the plan predicted the lock on.
    pub fn strongest(&self, tables: &BTreeSet<String>, predicted_on: &str) -> Option<(LockMode, &str)> {
        self.locks
            .iter()
            .filter(|(rel, _)| self.preexisting.contains(*rel) && tables.contains(*rel))
            .map(|(rel, mode)| (*mode, rel.as_str()))
            .max_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| (a.1 == predicted_on).cmp(&(b.1 == predicted_on)))
                    .then_with(|| b.1.cmp(a.1))
            })
    }

    fn merge_lock(&mut self, rel: String, mode: LockMode) {
        let e = self.locks.entry(rel).or_insert(mode);
        if mode > *e {
            *e = mode;
        }
    }

    fn merge_source(&mut self, s: LockSource) {
        if self.source.is_none_or(|cur| s > cur) {
            self.source = Some(s);
        }
    }
}

/// Shared between the observer inside the runner and the rehearsal driving it.
#[derive(Debug, Default)]
pub struct Observations {
    /// (step id, action) → observation of the latest run.
    pub steps: BTreeMap<(String, &'static str), StepObservation>,
    /// Relations at the start of the phase being run.
    pub baseline: BTreeSet<String>,
    /// Tables, views and matviews (by name) at the start of the phase.
    pub tables: BTreeSet<String>,
}

/// `pg_locks` rows of one backend on relations in this database, named, outside seqmig's own
/// schema and the system catalogs.
const LOCKS_SQL: &str = "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), l.mode
     FROM pg_locks l
     JOIN pg_class c ON c.oid = l.relation
     JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE l.locktype = 'relation' AND l.pid = $1
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'seqmig')
       AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

/// Tables and materialized views with storage, and their relfilenode.
const FILENODES_SQL: &str =
    "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relfilenode::int8
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'm')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'seqmig')
       AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

/// Every user relation, and whether it is table-like (table, partitioned table, view,
/// materialized view, foreign table).
pub const RELATIONS_SQL: &str =
    "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind IN ('r', 'p', 'v', 'm', 'f')
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'seqmig')
       AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

pub fn parse_mode(name: &str) -> Option<LockMode> {
    [
        LockMode::AccessShare,
        LockMode::RowShare,
        LockMode::RowExclusive,
        LockMode::ShareUpdateExclusive,
        LockMode::Share,
        LockMode::ShareRowExclusive,
        LockMode::Exclusive,
        LockMode::AccessExclusive,
    ]
    .into_iter()
    .find(|m| m.pg_locks_name() == name)
}

async fn locks_of(client: &Client, pid: i32) -> Result<Vec<(String, LockMode)>, tokio_postgres::Error> {
    let rows = client.query(LOCKS_SQL, &[&pid]).await?;
    Ok(rows.iter().filter_map(|r| Some((r.get::<_, String>(0), parse_mode(r.get(1))?))).collect())
}

async fn filenodes(client: &Client) -> BTreeMap<String, i64> {
    match client.query(FILENODES_SQL, &[]).await {
        Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// A step in flight.
struct Running {
    key: (String, &'static str),
    t0: Instant,
    filenodes: BTreeMap<String, i64>,
    stop: Arc<AtomicBool>,
    sampler: Option<tokio::task::JoinHandle<Vec<(String, LockMode)>>>,
    probe: Option<Vec<(String, LockMode)>>,
    in_tx: Option<Vec<(String, LockMode)>>,
}

/// The [`StepObserver`] installed in the rehearsal's runner.
pub struct LockObserver {
    /// A second session on the scratch database: probes, polls, relfilenodes.
    client: Arc<Client>,
    shared: Arc<Mutex<Observations>>,
    running: Option<Running>,
}

impl std::fmt::Debug for LockObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockObserver").finish_non_exhaustive()
    }
}

impl LockObserver {
    pub fn new(client: Client, shared: Arc<Mutex<Observations>>) -> LockObserver {
        LockObserver { client: Arc::new(client), shared, running: None }
    }

    /// Runs a non-transactional step's SQL inside a transaction that is rolled back, and
    /// returns the locks it held; `None` when PostgreSQL refuses it in a transaction (or
    /// it fails for another reason: then only sampling is left).
    async fn probe(client: &Client, statements: &[String]) -> Option<Vec<(String, LockMode)>> {
        client.batch_execute("BEGIN; SET LOCAL lock_timeout = '2s'").await.ok()?;
        let result = async {
            for s in statements {
                client.batch_execute(s).await?;
            }
            let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
            locks_of(client, pid).await
        }
        .await;
        let _ = client.batch_execute("ROLLBACK").await;
        result.ok()
    }
}

fn sampler(
    client: Arc<Client>,
    pid: i32,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(String, LockMode)>> {
    tokio::spawn(async move {
        let mut seen: BTreeMap<String, LockMode> = BTreeMap::new();
        loop {
            let last = stop.load(Ordering::SeqCst);
            if let Ok(locks) = locks_of(&client, pid).await {
                for (rel, mode) in locks {
                    let e = seen.entry(rel).or_insert(mode);
                    if mode > *e {
                        *e = mode;
                    }
                }
            }
            if last {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        seen.into_iter().collect()
    })
}

impl StepObserver for LockObserver {
    fn before_step<'a>(&'a mut self, step: &'a Step, action: Action, pid: i32) -> ObserverFuture<'a> {
        Box::pin(async move {
            let filenodes = filenodes(&self.client).await;
            let statements = match action {
                Action::Apply => &step.effects.statements,
                Action::Rollback => &step.effects.rollback_statements,
            };
            let non_transactional = !step.transactional && step.backfill.is_none();
            let probe = match statements.is_empty() {
                false if non_transactional => LockObserver::probe(&self.client, statements).await,
                _ => None,
            };
            let stop = Arc::new(AtomicBool::new(false));
            let sampler = (!step.transactional || step.backfill.is_some())
                .then(|| sampler(self.client.clone(), pid, stop.clone()));
            self.running = Some(Running {
                key: (step.id.clone(), action.as_str()),
                t0: Instant::now(),
                filenodes,
                stop,
                sampler,
                probe,
                in_tx: None,
            });
        })
    }

    fn in_transaction<'a>(
        &'a mut self,
        client: &'a Client,
        _step: &'a Step,
        _action: Action,
    ) -> ObserverFuture<'a> {
        Box::pin(async move {
            let Some(running) = self.running.as_mut() else { return };
            if let Ok(pid) = client.query_one("SELECT pg_backend_pid()", &[]).await {
                running.in_tx = locks_of(client, pid.get(0)).await.ok();
            }
        })
    }

    fn after_step<'a>(&'a mut self, _step: &'a Step, _action: Action, ok: bool) -> ObserverFuture<'a> {
        Box::pin(async move {
            let Some(running) = self.running.take() else { return };
            let ms = running.t0.elapsed().as_millis() as u64;
            running.stop.store(true, Ordering::SeqCst);
            let sampled = match running.sampler {
                Some(h) => h.await.unwrap_or_default(),
                None => Vec::new(),
            };
            let after = filenodes(&self.client).await;
            let mut obs = StepObservation { ms, ok, ..StepObservation::default() };
            if let Some(locks) = running.in_tx {
                obs.merge_source(LockSource::Transaction);
                for (rel, mode) in locks {
                    obs.merge_lock(rel, mode);
                }
            }
            if let Some(locks) = running.probe {
                obs.merge_source(LockSource::Probe);
                for (rel, mode) in locks {
                    obs.merge_lock(rel, mode);
                }
            }
            if !sampled.is_empty() {
                obs.merge_source(LockSource::Sampled);
                for (rel, mode) in sampled {
                    obs.merge_lock(rel, mode);
                }
            }
            obs.rewrote = running
                .filenodes
                .iter()
                .filter(|(rel, node)| after.get(*rel).is_some_and(|n| n != *node))
                .map(|(rel, _)| rel.clone())
                .collect();
            let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            obs.preexisting = shared.baseline.clone();
            shared.steps.insert(running.key, obs);
        })
    }
}

/// Relations and table-like relations now, for a phase's baseline.
pub async fn relations(
    client: &Client,
) -> Result<(BTreeSet<String>, BTreeSet<String>), tokio_postgres::Error> {
    let rows = client.query(RELATIONS_SQL, &[]).await?;
    let all = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    let tables = rows.iter().filter(|r| r.get::<_, bool>(1)).map(|r| r.get::<_, String>(0)).collect();
    Ok((all, tables))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_locks_names_map_back_to_modes() {
        assert_eq!(parse_mode("ShareUpdateExclusiveLock"), Some(LockMode::ShareUpdateExclusive));
        assert_eq!(parse_mode("AccessExclusiveLock"), Some(LockMode::AccessExclusive));
        assert_eq!(parse_mode("SIReadLock"), None);
    }

    #[test]
    fn strongest_counts_only_tables_that_existed_before_the_phase() {
        let mut o = StepObservation::default();
        o.merge_lock("public.t".into(), LockMode::ShareUpdateExclusive);
        o.merge_lock("public.t_a_idx".into(), LockMode::AccessExclusive);
        o.merge_lock("public.new".into(), LockMode::AccessExclusive);
        o.preexisting = ["public.t", "public.t_a_idx"].into_iter().map(String::from).collect();
        let tables = ["public.t", "public.new"].into_iter().map(String::from).collect();
        assert_eq!(o.strongest(&tables, "public.t"), Some((LockMode::ShareUpdateExclusive, "public.t")));
    }

    /// A foreign key locks both tables alike: the report names the table the plan predicted.
    #[test]
    fn among_equal_locks_the_predicted_table_is_named() {
        let mut o = StepObservation::default();
        o.merge_lock("public.a_referenced".into(), LockMode::ShareRowExclusive);
        o.merge_lock("public.b_referencing".into(), LockMode::ShareRowExclusive);
        o.preexisting =
            ["public.a_referenced", "public.b_referencing"].into_iter().map(String::from).collect();
        let tables = o.preexisting.clone();
        assert_eq!(
            o.strongest(&tables, "public.b_referencing"),
            Some((LockMode::ShareRowExclusive, "public.b_referencing"))
        );
    }
}
