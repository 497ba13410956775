//! `seqmig rehearse`: proves a plan by running it. A scratch database gets the current schema
//! and generated rows; every phase is applied through the real executor, rolled back,
//! checked against what was there before (schema by introspection, data by a checksum per
//! table), and applied again; contract runs with the gate bypassed and recorded as a
//! rehearsal; the final schema must equal the desired one. While each step runs, the locks
//! its backend takes are observed ([`observe`]) and compared with the plan's prediction.
//!
//! The library hands a [`Report`] to the CLI, which renders it; nothing here prints. The
//! scratch database is dropped at the end whatever happened, also when `interrupt` fires.

pub mod observe;
pub mod render;
pub mod replay;
pub mod seed;
pub mod standin;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tokio_postgres::Client;

use crate::db::ConnectOptions;
use crate::exec::{Action, ContractGate, ExecError, PlanSource, Quiet, RetryPolicy, Runner, RunnerOptions};
use crate::model::Schema;
use crate::plan::{LockMode, Phase, Plan};

pub use observe::{LockSource, StepObservation};
pub use seed::SeedReport;
pub use standin::{StandIns, StoodIn};

/// The reason recorded in `seqmig.audit_log` when contract bypasses the gate.
pub const BREAK_GLASS_REASON: &str = "rehearsal";

/// What to rehearse.
#[derive(Debug, Clone)]
pub struct Rehearsal {
    pub plan: Plan,
    /// The current schema as a model: tables to seed and columns whose data must survive.
    pub current: Schema,
    /// SQL that creates the current schema (the source file's text, or
    /// `model::ddl::schema_sql` of the model).
    pub current_sql: String,
    /// SQL that creates the desired schema: loaded into a second scratch database whose
    /// introspection is what the rehearsed database must equal at the end (so both sides
    /// come from the catalog, and extension versions or defaults spelled differently in a
    /// file do not count as differences).
    pub desired_sql: String,
    /// Generated rows per table.
    pub rows: usize,
}

/// Why a rehearsal could not be run at all (exit 2). What it found is in [`Report`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RehearseError {
    #[error(transparent)]
    Connect(#[from] crate::db::DbError),
    #[error("failed to {context}: {message}")]
    Db { context: String, message: String },
    #[error(
        "failed to create the {which} schema in a scratch database: {message} (statement at line {line}: {statement})"
    )]
    LoadSchema { which: &'static str, line: usize, statement: String, message: String },
    #[error("failed to introspect the scratch database: {0}")]
    Introspect(#[from] crate::introspect::IntrospectError),
    #[error(transparent)]
    Exec(ExecError),
    #[error("interrupted; the scratch database {database} was dropped")]
    Interrupted { database: String },
}

fn db_err(context: &str) -> impl FnOnce(tokio_postgres::Error) -> RehearseError + '_ {
    move |e| RehearseError::Db { context: context.to_string(), message: crate::exec::describe_pg(&e) }
}

/// One step as rehearsed.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub id: String,
    pub change: String,
    pub phase: Phase,
    pub predicted_lock: LockMode,
    pub lock_target: String,
    /// Strongest lock observed on a relation that existed before the phase, and where.
    pub observed_lock: Option<LockMode>,
    pub observed_on: Option<String>,
    pub lock_source: LockSource,
    /// Every relation lock seen, new relations included.
    pub locks: BTreeMap<String, LockMode>,
    pub predicted_rewrite: bool,
    pub rewrote: Vec<String>,
    pub ms: u64,
    pub rollback_ms: Option<u64>,
    pub rollback_lock: Option<LockMode>,
    /// Reality was stronger than the prediction.
    pub lock_exceeds: bool,
}

/// How undoing a phase went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result", content = "detail")]
pub enum RollbackResult {
    /// Schema and data equal what they were before the phase.
    Restored,
    /// Rolled back, but something differs (listed).
    NotRestored(Vec<String>),
    /// The rollback itself failed.
    Failed(String),
    /// The executor refuses it by design (contract, one-way steps).
    NotApplicable(String),
}

impl RollbackResult {
    pub fn is_ok(&self) -> bool {
        matches!(self, RollbackResult::Restored | RollbackResult::NotApplicable(_))
    }

    pub fn label(&self) -> &'static str {
        match self {
            RollbackResult::Restored => "yes",
            RollbackResult::NotRestored(_) => "NO",
            RollbackResult::Failed(_) => "FAILED",
            RollbackResult::NotApplicable(_) => "n/a",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub phase: Phase,
    pub steps: Vec<StepReport>,
    pub rollback: RollbackResult,
    /// Differences after the rollback that are not undone by design (see
    /// [`tolerate_by_design`]), so not counted against it.
    pub tolerated: Vec<String>,
    /// The apply failed: the message, and the rehearsal stopped here.
    pub apply_error: Option<String>,
}

/// A reason for exit 1.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    LockExceeds { step: String, phase: Phase, predicted: LockMode, observed: LockMode, relation: String },
    UnpredictedRewrite { step: String, phase: Phase, tables: Vec<String> },
    RollbackNotRestored { phase: Phase, differences: Vec<String> },
    RollbackFailed { phase: Phase, message: String },
    ApplyFailed { phase: Phase, message: String },
    FinalSchemaDiffers { differences: Vec<String> },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::LockExceeds { step, phase, predicted, observed, relation } => write!(
                f,
                "step {step} ({phase}) took {observed} on {relation}, stronger than the predicted {predicted}"
            ),
            Problem::UnpredictedRewrite { step, phase, tables } => write!(
                f,
                "step {step} ({phase}) rewrote {} although the plan says it does not",
                tables.join(", ")
            ),
            Problem::RollbackNotRestored { phase, differences } => {
                write!(f, "rolling back {phase} did not restore the database: {}", differences.join("; "))
            }
            Problem::RollbackFailed { phase, message } => write!(f, "rolling back {phase} failed: {message}"),
            Problem::ApplyFailed { phase, message } => write!(f, "applying {phase} failed: {message}"),
            Problem::FinalSchemaDiffers { differences } => write!(
                f,
                "after contract the schema differs from the desired one: {}",
                differences.join("; ")
            ),
        }
    }
}

/// Everything a rehearsal found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub plan_id: String,
    pub database: String,
    pub seed: SeedReport,
    pub phases: Vec<PhaseReport>,
    pub final_schema_matches: Option<bool>,
    pub problems: Vec<Problem>,
    /// What the server lacked and was stood in or left out ([`standin`]): not proven.
    pub stood_in: Vec<StoodIn>,
    pub elapsed_ms: u64,
}

impl Report {
    /// True when the plan is proven: every problem list empty.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Creates a scratch database on the server `admin` points at, rehearses there, and drops it
/// again (also when `interrupt` completes first, e.g. on Ctrl-C).
pub async fn rehearse(
    admin: &ConnectOptions,
    input: &Rehearsal,
    interrupt: impl Future<Output = ()>,
) -> Result<Report, RehearseError> {
    let admin_client = crate::db::connect(admin, &crate::db::default_application_name()).await?;
    let name = format!(
        "seqmig_rehearse_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0)
            % 1_000_000_000
    );
    admin_client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(db_err("create the scratch database"))?;
    let want_name = format!("{name}_want");
    let created = admin_client
        .batch_execute(&format!("CREATE DATABASE {want_name}"))
        .await
        .map_err(db_err("create the scratch database for the desired schema"));
    let scratch = admin.with_database(&name);
    let want = admin.with_database(&want_name);
    let result = match created {
        Err(e) => Err(e),
        Ok(()) => tokio::select! {
            r = run(&scratch, &want, &name, input) => r,
            () = interrupt => Err(RehearseError::Interrupted { database: name.clone() }),
        },
    };
    // FORCE ends the sessions of an interrupted run (PostgreSQL 13+).
    let _ = admin_client.batch_execute(&format!("DROP DATABASE IF EXISTS {want_name} WITH (FORCE)")).await;
    let dropped = admin_client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    let report = result?;
    dropped.map_err(db_err("drop the scratch database"))?;
    Ok(report)
}

async fn connect(opts: &ConnectOptions) -> Result<Client, RehearseError> {
    Ok(crate::db::connect(opts, "seqmig rehearse").await?)
}

/// Runs a schema's statements one by one, so an error names its statement. A declarative
/// file may name a table before creating it: a statement that fails is retried after the
/// others, as long as each round makes progress (each statement is atomic on its own).
async fn load_sql(
    client: &Client,
    sql: &str,
    which: &'static str,
    stand_ins: &mut StandIns,
) -> Result<(), RehearseError> {
    let statements = crate::parse::split_statements(sql).map_err(|e| RehearseError::LoadSchema {
        which,
        line: 0,
        statement: String::new(),
        message: e.to_string(),
    })?;
    let mut pending: Vec<_> = statements
        .into_iter()
        .filter(|s| !s.meta)
        .filter_map(|mut s| {
            s.text = stand_ins.rewrite_statement(&s.text)?;
            Some(s)
        })
        .collect();
    // A dump of a database whose `public` was dropped and created again says `CREATE SCHEMA
    // public` (PostgREST's does), which a new database refuses: it has one already. The
    // scratch database is empty, so its own goes and the text's takes its place.
    if pending.iter().any(|s| creates_public(&s.text)) {
        client
            .batch_execute("DROP SCHEMA IF EXISTS public")
            .await
            .map_err(db_err("drop the scratch database's own schema public"))?;
    }
    loop {
        let mut failed = Vec::new();
        let mut first_error = None;
        let before = pending.len();
        for s in pending {
            if let Err(e) = client.batch_execute(&s.text).await {
                if first_error.is_none() {
                    first_error = Some((
                        s.line,
                        s.text.chars().take(200).collect::<String>(),
                        crate::exec::describe_pg(&e),
                    ));
                }
                failed.push(s);
            }
        }
        match first_error {
            None => return Ok(()),
            Some((line, statement, message)) if failed.len() == before => {
                return Err(RehearseError::LoadSchema { which, line, statement, message });
            }
            Some(_) => pending = failed,
        }
    }
}

/// `CREATE SCHEMA public` (quoted or not, with or without `AUTHORIZATION`).
fn creates_public(statement: &str) -> bool {
    let words: Vec<String> =
        statement.split_whitespace().take(3).map(|w| w.trim_end_matches(';').to_ascii_lowercase()).collect();
    matches!(&words[..], [c, s, p] if c == "create" && s == "schema" && (p == "public" || p == "\"public\""))
}

/// The fills of a plan's existing columns (a column made NOT NULL), by table and column: the
/// backfill's `coalesce(column, fill)`, or `None` when the fill gives another value each time
/// it is evaluated (`now()`, `nextval(…)`). A rollback does not undo a fill, by design (the
/// old release reads the fill value where it wrote NULL; book: rehearse.md).
fn fills(plan: &Plan) -> BTreeMap<(String, String), Option<String>> {
    const PER_EVALUATION: &[&str] =
        &["now(", "current_timestamp", "current_date", "current_time", "localtime", "transaction_timestamp("];
    plan.steps
        .iter()
        .filter_map(|s| s.backfill.as_ref())
        .filter(|b| b.fills_nulls())
        .map(|b| {
            let lower = b.expr.to_ascii_lowercase();
            let fixed = !crate::model::expr::is_volatile(&b.expr)
                && !PER_EVALUATION.iter().any(|f| lower.contains(f));
            ((b.table.quoted(), b.target_column.as_str().to_string()), fixed.then(|| b.expr.clone()))
        })
        .collect()
}

/// The data that must survive a rollback: a checksum per table of the current schema, over
/// the current schema's columns that exist now (columns the plan adds may hold new data). A
/// filled column (of the table or of its partitioned root) is compared as filled
/// (`coalesce(column, fill)`), or not at all when its fill differs at each evaluation.
async fn checksums(
    client: &Client,
    current: &Schema,
    fills: &BTreeMap<(String, String), Option<String>>,
) -> Result<BTreeMap<String, String>, RehearseError> {
    let mut out = BTreeMap::new();
    for t in current.tables.values() {
        let names: Vec<String> = t.columns.iter().map(|c| c.name.as_str().to_string()).collect();
        let existing: Vec<String> = client
            .query(
                "SELECT a.attname::text FROM pg_attribute a
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attname = ANY($2) ORDER BY a.attnum",
                &[&t.name.quoted(), &names],
            )
            .await
            .map_err(db_err("list the columns to checksum"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if existing.is_empty() {
            continue;
        }
        // A partition's rows are filled by its root's backfill.
        let root = current.partition_root(&t.name).quoted();
        let cols: Vec<String> = existing
            .iter()
            .filter_map(|c| {
                match fills
                    .get(&(t.name.quoted(), c.clone()))
                    .or_else(|| fills.get(&(root.clone(), c.clone())))
                {
                    None => Some(crate::model::quote_ident(c)),
                    Some(filled) => filled.clone(),
                }
            })
            .collect();
        if cols.is_empty() {
            continue;
        }
        let sql = format!(
            "SELECT count(*)::int8, md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM (SELECT {} FROM {}) x",
            cols.join(", "),
            t.name.quoted()
        );
        let row = client.query_one(&sql, &[]).await.map_err(db_err("checksum a table"))?;
        let (n, md5): (i64, String) = (row.get(0), row.get(1));
        out.insert(t.name.quoted(), format!("{n} rows, md5 {md5}"));
    }
    Ok(out)
}

/// Objects that differ between two schemas: `tables public.t: columns[2].not_null is true, want false`.
pub fn schema_differences(have: &Schema, want: &Schema) -> Vec<String> {
    let (Ok(a), Ok(b)) = (serde_json::to_value(have), serde_json::to_value(want)) else {
        return vec!["the schemas cannot be compared".into()];
    };
    let mut out = Vec::new();
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else { return out };
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let null = serde_json::Value::Null;
    for k in keys {
        let (x, y) = (a.get(k).unwrap_or(&null), b.get(k).unwrap_or(&null));
        if x == y {
            continue;
        }
        let (ex, ey) = (entries(x), entries(y));
        let names: BTreeSet<&String> = ex.keys().chain(ey.keys()).collect();
        let before = out.len();
        for n in names {
            match (ex.get(n), ey.get(n)) {
                (Some(_), None) => out.push(format!("{k} {n} is extra")),
                (None, Some(_)) => out.push(format!("{k} {n} is missing")),
                (Some(p), Some(q)) if p != q => {
                    let mut paths = Vec::new();
                    leaf_differences(p, q, String::new(), &mut paths);
                    let shown: Vec<String> = paths.iter().take(3).cloned().collect();
                    let more = if paths.len() > 3 {
                        format!(" (and {} more)", paths.len() - 3)
                    } else {
                        String::new()
                    };
                    out.push(format!("{k} {n} differs: {}{more}", shown.join(", ")));
                }
                _ => {}
            }
        }
        if out.len() == before {
            out.push(format!("{k} differ"));
        }
    }
    out
}

/// A JSON map, or a list of `[key, value]` pairs, as a map.
fn entries(v: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                serde_json::Value::Array(pair) if pair.len() == 2 => (pair[0].to_string(), pair[1].clone()),
                other => (other.to_string(), other.clone()),
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn leaf_differences(a: &serde_json::Value, b: &serde_json::Value, path: String, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                leaf_differences(x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), p, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                leaf_differences(p, q, format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path} is {a}, want {b}")),
        _ => {}
    }
}

/// What a rollback leaves behind by design (DESIGN.md §3): a constraint validated in the
/// phase stays validated (the backfill phase has nothing to undo, and un-validating would
/// mean dropping it), and an enum value stays (PostgreSQL cannot remove one). These are
/// set back in `after` and named in the result, so the comparison counts only the rest.
pub fn tolerate_by_design(after: &mut Schema, before: &Schema) -> Vec<String> {
    let mut notes = Vec::new();
    for (name, t) in after.tables.iter_mut() {
        let Some(b) = before.tables.get(name) else { continue };
        for (cname, c) in t.constraints.iter_mut() {
            if c.validated && b.constraints.get(cname).is_some_and(|bc| !bc.validated && bc.kind == c.kind) {
                c.validated = false;
                notes.push(format!("constraint {cname} on {name} stays validated"));
            }
        }
    }
    for (name, e) in after.enums.iter_mut() {
        let Some(b) = before.enums.get(name) else { continue };
        if e.values != b.values && b.values.iter().all(|v| e.values.contains(v)) {
            let extra: Vec<&String> = e.values.iter().filter(|v| !b.values.contains(v)).collect();
            notes.push(format!(
                "enum {name} keeps {}",
                extra.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ")
            ));
            e.values = b.values.clone();
        }
    }
    notes
}

/// The schema with every table's columns in name order: expand/contract adds a replacement
/// column at the end (PostgreSQL cannot reorder columns), so position is not compared at the end.
fn columns_by_name(s: &Schema) -> Schema {
    let mut s = s.without_owners();
    for t in s.tables.values_mut() {
        t.columns.sort_by(|a, b| a.name.cmp(&b.name));
    }
    s
}

fn data_differences(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter(|n| before.get(*n) != after.get(*n))
        .map(|n| {
            format!(
                "data of {n} changed ({} → {})",
                before.get(n).map(String::as_str).unwrap_or("absent"),
                after.get(n).map(String::as_str).unwrap_or("absent")
            )
        })
        .collect()
}

/// The rehearsal proper, on an existing scratch database.
async fn run(
    scratch: &ConnectOptions,
    want: &ConnectOptions,
    name: &str,
    input: &Rehearsal,
) -> Result<Report, RehearseError> {
    let t0 = Instant::now();
    let mut stand_ins = {
        let c = connect(want).await?;
        let mut texts = vec![input.current_sql.as_str(), input.desired_sql.as_str()];
        for s in &input.plan.steps {
            texts.push(&s.sql);
            texts.extend(s.rollback_sql.as_deref());
        }
        StandIns::probe(&c, &texts).await.map_err(db_err("probe the server for libraries and extensions"))?
    };
    let plan = stand_ins.rewrite_plan(&input.plan);
    let desired = {
        let c = connect(want).await?;
        load_sql(&c, &input.desired_sql, "desired", &mut stand_ins).await?;
        drop(c);
        crate::introspect::introspect(&connect(want).await?).await?
    };
    let client = connect(scratch).await?;
    load_sql(&client, &input.current_sql, "current", &mut stand_ins).await?;
    // The dump may have emptied search_path for its session; later sessions are fresh.
    drop(client);
    let client = connect(scratch).await?;
    let seed = seed::seed(&client, &input.current, input.rows).await;
    client.batch_execute("ANALYZE").await.map_err(db_err("analyze the seeded tables"))?;

    let shared = Arc::new(Mutex::new(observe::Observations::default()));
    let opts = RunnerOptions {
        connection: scratch.clone(),
        actor: "seqmig rehearse".into(),
        retry: RetryPolicy::default(),
    };
    let mut runner = Runner::acquire(opts, "seqmig rehearse").await.map_err(RehearseError::Exec)?;
    let observer_client = connect(scratch).await?;
    runner.set_step_observer(Some(Box::new(observe::LockObserver::new(observer_client, shared.clone()))));

    let source = PlanSource::File { plan: Box::new(plan.clone()), path: "<rehearsal>".into() };
    let mut phases = Vec::new();
    let mut problems = Vec::new();
    let mut final_schema_matches = None;
    let mut stopped = false;
    let fills = fills(&plan);
    for phase in Phase::ALL {
        let steps = plan.steps_of(phase);
        if steps.is_empty() {
            continue;
        }
        let (all, tables) = observe::relations(&client).await.map_err(db_err("list relations"))?;
        {
            let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
            s.baseline = all;
            s.tables = tables.clone();
        }
        let schema_before = crate::introspect::introspect(&client).await?;
        let data_before = checksums(&client, &input.current, &fills).await?;
        let gate = if phase == Phase::Contract {
            ContractGate::break_glass(BREAK_GLASS_REASON)
        } else {
            ContractGate::evidence()
        };
        let mut apply_error = None;
        let mut tolerated = Vec::new();
        if let Err(e) = runner.apply(&source, phase, &gate, &mut Quiet).await {
            if !e.is_refusal() && !matches!(e, ExecError::StepFailed { .. } | ExecError::Backfill { .. }) {
                return Err(RehearseError::Exec(e));
            }
            apply_error = Some(e.to_string());
        }
        // Keep what the first apply measured; the second apply after the rollback is a rerun.
        let first: BTreeMap<(String, &'static str), StepObservation> =
            shared.lock().unwrap_or_else(|e| e.into_inner()).steps.clone();
        let rollback = if apply_error.is_some() {
            RollbackResult::NotApplicable("the apply failed".into())
        } else if phase == Phase::Contract {
            RollbackResult::NotApplicable("contract is the one-way door".into())
        } else if steps.iter().any(|s| s.one_way) {
            RollbackResult::NotApplicable("the phase has one-way steps".into())
        } else {
            let _applied = crate::introspect::introspect(&client).await?;
            match runner.rollback(&source, phase, &mut Quiet).await {
                Err(e) => RollbackResult::Failed(e.to_string()),
                Ok(_) => {
                    let mut schema_after = crate::introspect::introspect(&client).await?;
                    tolerated = tolerate_by_design(&mut schema_after, &schema_before);
                    let data_after = checksums(&client, &input.current, &fills).await?;
                    let mut diffs = schema_differences(&schema_after, &schema_before);
                    diffs.extend(data_differences(&data_before, &data_after));
                    if diffs.is_empty() {
                        RollbackResult::Restored
                    } else {
                        RollbackResult::NotRestored(diffs)
                    }
                }
            }
        };
        let after_rollback = shared.lock().unwrap_or_else(|e| e.into_inner()).steps.clone();
        if matches!(rollback, RollbackResult::Restored | RollbackResult::NotRestored(_))
            && let Err(e) = runner.apply(&source, phase, &gate, &mut Quiet).await
        {
            apply_error = Some(format!("applying again after the rollback: {e}"));
        }
        let mut step_reports = Vec::new();
        for step in &steps {
            let key = (step.id.clone(), Action::Apply.as_str());
            let obs = first.get(&key).cloned().unwrap_or_default();
            let back = after_rollback.get(&(step.id.clone(), Action::Rollback.as_str()));
            let strongest = obs.strongest(&tables, &step.lock_target);
            let lock_exceeds = strongest.is_some_and(|(m, _)| m > step.lock);
            if let Some((observed, rel)) = strongest
                && lock_exceeds
            {
                problems.push(Problem::LockExceeds {
                    step: step.id.clone(),
                    phase,
                    predicted: step.lock,
                    observed,
                    relation: rel.to_string(),
                });
            }
            let rewrote: Vec<String> =
                obs.rewrote.iter().filter(|t| obs.preexisting.contains(*t)).cloned().collect();
            if !rewrote.is_empty() && !step.rewrites_table {
                problems.push(Problem::UnpredictedRewrite {
                    step: step.id.clone(),
                    phase,
                    tables: rewrote.clone(),
                });
            }
            step_reports.push(StepReport {
                id: step.id.clone(),
                change: step.change.clone(),
                phase,
                predicted_lock: step.lock,
                lock_target: step.lock_target.clone(),
                observed_lock: strongest.map(|(m, _)| m),
                observed_on: strongest.map(|(_, r)| r.to_string()),
                lock_source: obs.source.unwrap_or(LockSource::None),
                locks: obs.locks.clone(),
                predicted_rewrite: step.rewrites_table,
                rewrote,
                ms: obs.ms,
                rollback_ms: back.map(|b| b.ms),
                rollback_lock: back.and_then(|b| b.strongest(&tables, &step.lock_target)).map(|(m, _)| m),
                lock_exceeds,
            });
        }
        match &rollback {
            RollbackResult::NotRestored(differences) => {
                problems.push(Problem::RollbackNotRestored { phase, differences: differences.clone() })
            }
            RollbackResult::Failed(message) => {
                problems.push(Problem::RollbackFailed { phase, message: message.clone() })
            }
            _ => {}
        }
        if let Some(message) = &apply_error {
            problems.push(Problem::ApplyFailed { phase, message: message.clone() });
        }
        phases.push(PhaseReport {
            phase,
            steps: step_reports,
            rollback,
            tolerated,
            apply_error: apply_error.clone(),
        });
        if apply_error.is_some() {
            stopped = true;
            break;
        }
    }
    runner.set_step_observer(None);
    runner.release().await;
    if !stopped {
        let have = crate::introspect::introspect(&client).await?;
        let differences = schema_differences(&columns_by_name(&have), &columns_by_name(&desired));
        final_schema_matches = Some(differences.is_empty());
        if !differences.is_empty() {
            problems.push(Problem::FinalSchemaDiffers { differences });
        }
    }
    Ok(Report {
        plan_id: input.plan.id.clone(),
        database: name.to_string(),
        seed,
        phases,
        final_schema_matches,
        problems,
        stood_in: stand_ins.used.into_iter().collect(),
        elapsed_ms: t0.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_object() {
        let mut a = Schema::default();
        let b = Schema::default();
        let t = crate::model::QualifiedName::of("public", "t");
        a.tables.insert(t.clone(), crate::model::Table::new(t));
        assert_eq!(schema_differences(&a, &b), vec!["tables public.t is extra".to_string()]);
        assert!(schema_differences(&b, &b).is_empty());
    }
}
