//! Every example in `migrations-examples/`, planned by the planner and run by the executor on
//! real PostgreSQL with seeded rows (issue 6, "lifecycle per example").
//!
//! Forward: while each phase is applied a writer keeps inserting and updating rows, through
//! the old shape before switch and the new shape after it; switch is also rolled back once
//! after the new release wrote, and applied again. Every value a writer writes is a function
//! of a generator number and of the rows already there, so a twin database given the same
//! writes in the same order, each phase applied with nothing running, must end with exactly
//! the same rows; the end state must be the desired schema (introspected = `after.sql`), and
//! per-example queries check what the mapping means (renamed column = written value, cast,
//! transform, fill).
//!
//! Back: from every phase before contract to the start, with the old release writing during
//! the phases applied, the database must equal one where the migration never ran and the
//! same writes were made: `before.sql`'s schema and every row with the value written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use seqmig::diff::Hints;
use seqmig::exec::{ContractGate, ExecError, PlanSource, Quiet, RetryPolicy, Runner, RunnerOptions};
use seqmig::model::Schema;
use seqmig::plan::{Phase, Plan};
use seqmig::render::Renderer;
use tokio_postgres::Client;

use crate::harness::{TestDb, block_on};

pub(crate) const SEED_ROWS: i64 = 2000;

pub(crate) fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples").join(name)
}

pub(crate) fn read(name: &str, file: &str) -> String {
    std::fs::read_to_string(dir(name).join(file)).unwrap()
}

pub(crate) fn load(file: &str, sql: &str) -> Schema {
    seqmig::parse::load_str(file, sql).unwrap_or_else(|e| panic!("{file}: {e}")).schema
}

pub(crate) fn plan_of(name: &str) -> Plan {
    plan_at(&dir(name))
}

/// The plan of an example-style folder (`before.sql`, `after.sql`, optional `seqmig.toml`).
pub(crate) fn plan_at(folder: &Path) -> Plan {
    let read = |f: &str| std::fs::read_to_string(folder.join(f)).unwrap();
    let toml = folder.join("seqmig.toml");
    let hints = if toml.is_file() { Hints::from_file(&toml).unwrap() } else { Hints::default() };
    let before = load("before.sql", &read("before.sql"));
    let after = load("after.sql", &read("after.sql"));
    // The plan as the planner writes it, gate criteria included: contract finds the gate
    // closed (no soak time has passed) and breaks the glass, which the ledger records.
    seqmig::plan::plan(&before, &after, &hints, &Renderer::embedded()).unwrap().plan
}

pub(crate) fn opts(url: &str) -> RunnerOptions {
    RunnerOptions {
        connection: seqmig::db::ConnectOptions::from_url(url).unwrap(),
        actor: "examples".into(),
        retry: RetryPolicy {
            lock_timeout: std::time::Duration::from_millis(500),
            budget: std::time::Duration::from_secs(30),
        },
    }
}

pub(crate) async fn apply(db: &TestDb, plan: &Plan, phase: Phase) -> Result<(), ExecError> {
    apply_url(&db.url, plan, phase).await
}

pub(crate) async fn apply_url(url: &str, plan: &Plan, phase: Phase) -> Result<(), ExecError> {
    let mut r = Runner::acquire(opts(url), "apply").await?;
    let source = PlanSource::File { plan: Box::new(plan.clone()), path: "plan.json".into() };
    let out = r
        .apply(&source, phase, &ContractGate::break_glass("examples: gate not under test"), &mut Quiet)
        .await;
    r.release().await;
    out.map(|_| ())
}

pub(crate) async fn rollback(db: &TestDb, phase: Phase) -> Result<(), ExecError> {
    let mut r = Runner::acquire(opts(&db.url), "rollback").await?;
    let out = r.rollback(&PlanSource::Active, phase, &mut Quiet).await;
    r.release().await;
    out.map(|_| ())
}

async fn connect(db: &TestDb) -> Client {
    db.client().await
}

/// The introspected schema, with columns in name order: `ADD COLUMN` appends, so a column the
/// desired DDL lists in the middle ends up last, which is the same table for every query
/// that names its columns.
pub(crate) async fn introspect(c: &Client) -> Schema {
    normalize(seqmig::introspect::introspect(c).await.unwrap())
}

/// Runs declarative DDL whose statements may reference objects created later in the file:
/// statements that fail are retried after the others until a pass makes no progress.
pub(crate) async fn run_in_any_order(c: &Client, sql: &str) -> bool {
    let mut left: Vec<String> = seqmig::parse::split_statements(sql)
        .unwrap()
        .into_iter()
        .filter(|s| !s.meta)
        .map(|s| s.text)
        .collect();
    while !left.is_empty() {
        let before = left.len();
        let mut failed = Vec::new();
        for stmt in left {
            if c.batch_execute(&stmt).await.is_err() {
                failed.push(stmt);
            }
        }
        if failed.len() == before {
            return false;
        }
        left = failed;
    }
    true
}

/// Asserts equality, naming the JSON paths that differ (a whole-schema Debug is unreadable).
pub(crate) fn assert_same(got: &Schema, want: &Schema, what: &str) {
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                    let null = serde_json::Value::Null;
                    walk(&format!("{path}.{k}"), x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), out);
                }
            }
            (serde_json::Value::Array(x), serde_json::Value::Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    walk(&format!("{path}[{i}]"), p, q, out);
                }
            }
            _ if a != b => out.push(format!("{path}: got {a}, want {b}")),
            _ => {}
        }
    }
    let mut diffs = Vec::new();
    walk("schema", &serde_json::to_value(got).unwrap(), &serde_json::to_value(want).unwrap(), &mut diffs);
    assert!(diffs.is_empty(), "{what}:\n{}", diffs.join("\n"));
}

/// Columns in name order; no owners (the DDL files have none).
pub(crate) fn normalize(mut s: Schema) -> Schema {
    for t in s.tables.values_mut() {
        t.columns.sort_by(|a, b| a.name.cmp(&b.name));
    }
    s.owners.clear();
    s
}

/// What a rollback cannot give back by design, made equal on both sides so that everything
/// else is still compared.
pub(crate) fn forgive_on_rollback(name: &str, before: &Schema, after: &mut Schema) {
    // PostgreSQL cannot drop an enum value; the plan says so and leaves it (unused).
    for (id, e) in after.enums.iter_mut() {
        if let Some(b) = before.enums.get(id) {
            assert!(b.values.iter().all(|v| e.values.contains(v)), "{name}: enum {id:?} lost values");
            e.values = b.values.clone();
        }
    }
}

/// User tables in FK order (referenced first), as quoted names with their oid.
pub(crate) async fn tables(c: &Client) -> Vec<(u32, String)> {
    let rows = c
        .query(
            "SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'seqmig') AND n.nspname NOT LIKE 'pg_toast%'
             ORDER BY 2",
            &[],
        )
        .await
        .unwrap();
    let all: Vec<(u32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let deps = c
        .query(
            "SELECT conrelid, confrelid FROM pg_constraint WHERE contype = 'f' AND conrelid <> confrelid",
            &[],
        )
        .await
        .unwrap();
    let deps: Vec<(u32, u32)> = deps.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut ordered: Vec<(u32, String)> = Vec::new();
    let mut left = all;
    while !left.is_empty() {
        let done: Vec<u32> = ordered.iter().map(|(o, _)| *o).collect();
        let pending: Vec<u32> = left.iter().map(|(o, _)| *o).collect();
        let (ready, rest): (Vec<_>, Vec<_>) = left.into_iter().partition(|(oid, _)| {
            deps.iter()
                .filter(|(from, _)| from == oid)
                .all(|(_, to)| done.contains(to) || !pending.contains(to))
        });
        if ready.is_empty() {
            // A cycle: take the rest as they are.
            ordered.extend(rest);
            break;
        }
        ordered.extend(ready);
        left = rest;
    }
    ordered
}

/// Fills every user table with `n` rows.
pub(crate) async fn seed(c: &Client, n: i64) {
    seed_with(c, n, &Writes::default()).await;
}

async fn seed_with(c: &Client, n: i64, how: &Writes<'_>) {
    for (_, table, sql) in statements(c, how).await.inserts {
        if let Err(e) = c.execute(&sql, &[&1i64, &n]).await {
            panic!("seeding {table} failed: {e:?}\n{sql}");
        }
    }
}

/// How a release writes: which shape, and how its values are chosen.
#[derive(Debug, Default, Clone, Copy)]
struct Writes<'a> {
    /// `(table, column)` of the desired schema's single-column foreign keys: numbers they will
    /// check stay within the seeded parent ids.
    fk_columns: &'a [(String, String)],
    /// The new shape: only the tables and columns of this schema. `None`: everything live.
    only: Option<&'a Schema>,
    /// Nullable columns get NULL in every fourth row (fills and NOT NULL checks see NULLs).
    nulls: bool,
    /// Columns with a non-sequence default are written too, so that a row's values depend on
    /// its generator number only, never on when it was written (`now()`).
    explicit_defaults: bool,
    /// Where the writers' rows go in a partitioned table: `(table, column, SQL over g)` for the
    /// rows past the seeded ones (seeded rows keep the plain value and spread over the bounds).
    keys: &'a [(String, String, String)],
    /// `(table, SQL condition)`: the only rows of the table an UPDATE may pick.
    updatable: &'a [(String, String)],
}

/// How the writers of a generated case place their rows, and what the plan takes away by
/// design (issue 21): see [`lifecycle_with_writers`].
#[derive(Debug, Default, Clone)]
pub(crate) struct Placement {
    /// `(table, column, SQL over g)`: a partition key's value for the writers' rows, chosen to
    /// fall inside partitions that exist for the whole run (not one attached or detached).
    pub keys: Vec<(String, String, String)>,
    /// `(parent, partition)`: a partition the plan detaches; its rows leave the parent.
    pub detached: Vec<(String, String)>,
    /// `(table, SQL condition)`: the rows writers may update (not those of a partition the
    /// plan detaches, which leave the parent mid-phase in one database and not in its twin).
    pub updatable: Vec<(String, String)>,
}

/// Per user table (parents first), an INSERT of rows `g` in `$1..=$2` and an UPDATE giving
/// `$2 - $1 + 1` existing rows new values from the same numbers; every value is a function of
/// `g` and of rows already there, so the same writes in the same order give the same data.
#[derive(Debug, Clone, Default)]
struct Statements {
    /// `(table oid, table, sql)`: the oid names the table across a rename.
    inserts: Vec<(u32, String, String)>,
    updates: Vec<(String, String)>,
}

async fn statements(c: &Client, how: &Writes<'_>) -> Statements {
    let mut out = Statements::default();
    for (oid, table) in tables(c).await {
        let model = match how.only {
            Some(s) => match s.tables.values().find(|t| t.name.quoted() == table) {
                Some(t) => Some(t),
                None => continue,
            },
            None => None,
        };
        let cols = c
            .query(
                "SELECT quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), a.attnotnull,
                        a.atthasdef, a.attidentity::text, a.attgenerated::text, t.typtype::text,
                        (SELECT quote_ident(pn.nspname) || '.' || quote_ident(pc.relname) || ':' || quote_ident(pa.attname)
                         FROM pg_constraint f
                         JOIN pg_class pc ON pc.oid = f.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                         JOIN pg_attribute pa ON pa.attrelid = f.confrelid AND pa.attnum = f.confkey[1]
                         WHERE f.conrelid = a.attrelid AND f.contype = 'f' AND f.conkey = ARRAY[a.attnum] LIMIT 1),
                        coalesce((SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
                                  WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum), ''),
                        (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                         FROM pg_enum e WHERE e.enumtypid = a.atttypid),
                        EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = a.attrelid AND k.contype = 'p'
                                AND k.conkey = ARRAY[a.attnum])
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&oid],
            )
            .await
            .unwrap();
        let has_pk = cols.iter().any(|r| r.get::<_, bool>(10));
        let mut names = Vec::new();
        let mut values = Vec::new();
        // The row an UPDATE finds its rows by, and what it sets.
        let mut key: Option<String> = None;
        let mut sets = Vec::new();
        for (i, r) in cols.iter().enumerate() {
            let (name, ty, not_null, has_def, identity, generated, typtype, fk, default): (
                String,
                String,
                bool,
                bool,
                String,
                String,
                String,
                Option<String>,
                String,
            ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7), r.get(8));
            let labels: Option<String> = r.get(9);
            let is_key = r.get::<_, bool>(10) || (!has_pk && i == 0 && not_null);
            if is_key {
                key = Some(name.clone());
            }
            // The new shape writes the desired columns, NOT NULL as desired (the live column
            // may still be a nullable shadow).
            let not_null = match model {
                Some(t) => match t.columns.iter().find(|c| c.name.quoted_sql() == name) {
                    Some(c) => c.not_null,
                    None => continue,
                },
                None => not_null,
            };
            // Numbers that a foreign key of the new shape will check stay within the seeded
            // parent ids; all others keep counting (they may become unique).
            let referencing = how.fk_columns.iter().any(|(t, col)| *t == table && *col == name);
            let num = if referencing { format!("((g - 1) % {SEED_ROWS} + 1)") } else { "g".to_string() };
            let sequence = default.contains("nextval(");
            if !generated.is_empty()
                || !identity.is_empty()
                || (has_def && (sequence || !how.explicit_defaults))
            {
                continue;
            }
            let base = ty.split('(').next().unwrap_or(&ty).trim().to_string();
            let (v, update) = if let Some(fk) = &fk {
                let (parent, col) = fk.split_once(':').unwrap();
                (
                    format!(
                        "(SELECT p.{col} FROM {parent} p ORDER BY p.{col} OFFSET ((g - 1) % greatest((SELECT count(*) FROM {parent}), 1)) LIMIT 1)"
                    ),
                    None,
                )
            } else {
                match base.as_str() {
                    "smallint" | "integer" | "bigint" | "numeric" | "real" | "double precision" => {
                        let v = format!("({num})::{ty}");
                        (v.clone(), (!referencing).then_some(v))
                    }
                    "text" | "character varying" | "character" | "citext" => {
                        (format!("('v' || g)::{ty}"), Some(format!("('u' || g)::{ty}")))
                    }
                    "boolean" => ("(g % 2 = 0)".into(), None),
                    "date" => ("(date '2020-01-01' + g::integer)".into(), None),
                    "timestamp with time zone" | "timestamp without time zone" => {
                        (format!("(timestamp '2020-01-01' + g * interval '1 minute')::{ty}"), None)
                    }
                    "uuid" => ("md5(g::text)::uuid".into(), None),
                    "json" | "jsonb" => (format!("json_build_object('g', g)::{ty}"), None),
                    "bytea" => ("decode(md5(g::text), 'hex')".into(), None),
                    // The labels as they are now: values added later (16) must not change
                    // what an old release writes.
                    _ if typtype == "e" => (
                        format!(
                            "(ARRAY[{}]::{ty}[])[1 + g % {}]",
                            labels.as_deref().unwrap_or_default(),
                            labels.as_deref().unwrap_or_default().split(", ").count()
                        ),
                        None,
                    ),
                    _ if has_def => continue,
                    _ if !not_null => ("NULL".into(), None),
                    _ => (format!("g::text::{ty}"), None),
                }
            };
            let (v, update) = match how.keys.iter().find(|(t, col, _)| *t == table && *col == name) {
                Some((_, _, key)) => (format!("(CASE WHEN g <= {SEED_ROWS} THEN {v} ELSE {key} END)"), None),
                None => (v, update),
            };
            let v = if how.nulls && !not_null {
                format!("CASE WHEN g % 4 = 0 THEN NULL ELSE {v} END")
            } else {
                v
            };
            if let Some(u) = update.filter(|_| !is_key) {
                sets.push(format!("{name} = {u}"));
            }
            names.push(name);
            values.push(v);
        }
        // A key over several columns is made of parents picked by number, which can repeat:
        // such a row is skipped, the same way in every database.
        let composite: bool = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = $1 AND contype = 'p' AND cardinality(conkey) > 1)",
                &[&oid],
            )
            .await
            .unwrap()
            .get(0);
        let on_conflict = if composite { " ON CONFLICT DO NOTHING" } else { "" };
        let sql = if names.is_empty() {
            format!("INSERT INTO {table} SELECT FROM generate_series($1::bigint, $2::bigint) g{on_conflict}")
        } else {
            format!(
                "INSERT INTO {table} ({}) SELECT {} FROM generate_series($1::bigint, $2::bigint) g{on_conflict}",
                names.join(", "),
                values.join(", ")
            )
        };
        out.inserts.push((oid, table.clone(), sql));
        let only = how
            .updatable
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(String::new(), |(_, cond)| format!(" WHERE {cond}"));
        if let (Some(k), false) = (key, sets.is_empty()) {
            // Rows picked by key order from a point that moves with g; each gets its own number.
            out.updates.push((
                table.clone(),
                format!(
                    "UPDATE {table} t SET {} FROM (
                         SELECT r.k AS seqmig_key, $1::bigint + row_number() OVER (ORDER BY r.k) - 1 AS g
                         FROM (SELECT {k} AS k FROM {table}{only}
                               ORDER BY {k}
                               OFFSET ($1::bigint * 7919) % greatest((SELECT count(*) FROM {table}{only}) - ($2::bigint - $1::bigint), 1)
                               LIMIT $2::bigint - $1::bigint + 1) r) s
                     WHERE t.{k} = s.seqmig_key",
                    sets.join(", ")
                ),
            ));
        }
    }
    out
}

/// `(table, column)` of every single-column foreign key in `schema`, as quoted SQL names.
fn fk_columns(schema: &Schema) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, t) in &schema.tables {
        for c in t.constraints.values() {
            if let seqmig::model::ConstraintKind::ForeignKey { columns, .. } = &c.kind {
                if let [col] = columns.as_slice() {
                    out.push((name.quoted(), col.quoted_sql()));
                }
            }
        }
    }
    out
}

/// One round of a release's writes: every table's INSERT of rows `g..=g + 4`, then its UPDATE
/// of five existing rows; returns the rows inserted per table.
async fn write_round(c: &Client, st: &Statements, g: i64, who: &str) -> BTreeMap<u32, i64> {
    let mut inserted = BTreeMap::new();
    for (oid, table, sql) in &st.inserts {
        let n = c
            .execute(sql, &[&g, &(g + 4)])
            .await
            .unwrap_or_else(|e| panic!("{who} cannot insert into {table}: {e:?}\n{sql}"));
        inserted.insert(*oid, n as i64);
    }
    for (table, sql) in &st.updates {
        c.execute(sql, &[&g, &(g + 4)])
            .await
            .unwrap_or_else(|e| panic!("{who} cannot update {table}: {e:?}\n{sql}"));
    }
    inserted
}

/// The writes a writer made: the generator number of each round, in order, so that a twin
/// database can be given exactly the same writes; and the rows inserted per table.
#[derive(Debug, Default)]
struct Log {
    rounds: Vec<i64>,
    /// By table oid.
    inserted: BTreeMap<u32, i64>,
}

impl Log {
    fn add(&mut self, g: i64, inserted: BTreeMap<u32, i64>) {
        self.rounds.push(g);
        for (t, n) in inserted {
            *self.inserted.entry(t).or_default() += n;
        }
    }
}

/// A release at work: rounds of [`write_round`] from `first` until stopped (at least three).
fn start_writer(
    db: &TestDb,
    st: Statements,
    first: i64,
    who: &'static str,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<Log>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let url = db.url.clone();
    let handle = tokio::spawn(async move {
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let mut log = Log::default();
        let mut g = first;
        while !flag.load(Ordering::SeqCst) || log.rounds.len() < 3 {
            let n = write_round(&c, &st, g, who).await;
            log.add(g, n);
            g += 5;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        log
    });
    (stop, handle)
}

/// What the executor is asked to do while a writer writes.
#[derive(Debug, Clone, Copy)]
enum Run {
    Apply(Phase),
    Rollback(Phase),
}

/// Runs `run` while a writer writes `st`; returns what it wrote.
async fn while_writing(
    db: &TestDb,
    plan: &Plan,
    run: Run,
    st: &Statements,
    first: i64,
    who: &'static str,
    name: &str,
) -> Log {
    let (stop, handle) = start_writer(db, st.clone(), first, who);
    let result = match run {
        Run::Apply(phase) => apply(db, plan, phase).await,
        Run::Rollback(phase) => rollback(db, phase).await,
    };
    stop.store(true, Ordering::SeqCst);
    let log = handle.await.unwrap_or_else(|e| panic!("{name}: the writer during {run:?} failed: {e}"));
    result.unwrap_or_else(|e| panic!("{name}: {run:?}: {e}"));
    log
}

/// The same writes again, one after the other, on the twin database.
async fn replay(c: &Client, st: &Statements, log: &Log, who: &str) {
    for g in &log.rounds {
        write_round(c, st, *g, who).await;
    }
}

/// Rows of every user table as sorted text, for comparing data across a round trip.
pub(crate) async fn data(c: &Client) -> BTreeMap<String, (i64, String)> {
    let mut out = BTreeMap::new();
    for (_, table) in tables(c).await {
        // A volatile default (gen_random_uuid(), clock_timestamp()) gives each database its own
        // values by design: those columns are left out of the comparison (issue 17.4).
        let defaults = c
            .query(
                "SELECT a.attname::text, pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d \
                 JOIN pg_attribute a ON (a.attrelid, a.attnum) = (d.adrelid, d.adnum) WHERE d.adrelid = $1::text::regclass",
                &[&table],
            )
            .await
            .unwrap();
        let volatile: Vec<String> = defaults
            .iter()
            .filter(|r| {
                let e: String = r.get(1);
                seqmig::diff::is_volatile(&e) && !e.contains("nextval(")
            })
            .map(|r| format!("'{}'", r.get::<_, String>(0).replace('\'', "''")))
            .collect();
        let x = if volatile.is_empty() {
            "x::text".to_string()
        } else {
            format!("(to_jsonb(x) - ARRAY[{}]::text[])::text", volatile.join(", "))
        };
        let row = c
            .query_one(
                &format!(
                    "SELECT count(*), md5(coalesce(string_agg({x}, E'\\n' ORDER BY {x}), '')) FROM {table} x"
                ),
                &[],
            )
            .await
            .unwrap();
        out.insert(table, (row.get(0), row.get(1)));
    }
    out
}

/// Rows per user table, by oid (the same table across a rename).
async fn counts_by_oid(c: &Client) -> BTreeMap<u32, i64> {
    let mut out = BTreeMap::new();
    for (oid, table) in tables(c).await {
        let n: i64 = c.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
        out.insert(oid, n);
    }
    out
}

pub(crate) fn phases_with_steps(plan: &Plan) -> Vec<Phase> {
    Phase::ALL.into_iter().filter(|p| !plan.steps_of(*p).is_empty()).collect()
}

/// Where the mapping from old to new shape is not the identity, what must hold of every row:
/// queries counting the rows that break it (each must return 0). `before_contract` runs after
/// switch, when both shapes are still there; `at_end` after contract.
struct Semantics {
    before_contract: &'static [&'static str],
    at_end: &'static [&'static str],
    /// After rolling back, the old shape holds what either release wrote (through `down`).
    after_rollback: &'static [&'static str],
}

fn semantics(name: &str) -> Semantics {
    // Writers number their rows from 1_000_000 up; seeded rows are below 2_001.
    const TENANT: &str = "SELECT count(*) FROM public.users WHERE tenant_id IS NULL OR (tenant_id <> 1 AND tenant_id < 1000000)";
    const TENANT_FILLED: &str = "SELECT CASE WHEN count(*) FILTER (WHERE tenant_id = 1) = 0 THEN 1 ELSE 0 END::int8 FROM public.users";
    // Every name is one a writer wrote, under whichever name it wrote it.
    const NAME: &str = "SELECT count(*) FROM public.users WHERE name IS NULL OR name !~ '^[uv][0-9]+$'";
    match name {
        // Rows N-1 wrote (seeded, or during the transition) get the fill value; only N writes others.
        "05-add-not-null-column" => Semantics {
            before_contract: &[TENANT, TENANT_FILLED],
            at_end: &[TENANT, TENANT_FILLED],
            after_rollback: &[],
        },
        // The renamed column holds what was written under either name.
        "07-rename-column" => Semantics {
            before_contract: &["SELECT count(*) FROM public.users WHERE full_name IS DISTINCT FROM name"],
            at_end: &["SELECT count(*) FROM public.users WHERE full_name !~ '^[uv][0-9]+$'"],
            after_rollback: &[NAME],
        },
        "08-change-type" => Semantics {
            before_contract: &[
                "SELECT count(*) FROM public.accounts WHERE id IS DISTINCT FROM id__seqmig_old::bigint",
            ],
            at_end: &[
                "SELECT count(*) FROM public.sessions s WHERE NOT EXISTS (SELECT 1 FROM public.accounts a WHERE a.id = s.account_id)",
                "SELECT count(*) FROM public.accounts WHERE name !~ '^[uv][0-9]+$'",
            ],
            after_rollback: &[
                "SELECT count(*) FROM public.sessions s WHERE NOT EXISTS (SELECT 1 FROM public.accounts a WHERE a.id = s.account_id)",
                "SELECT count(*) FROM public.accounts WHERE name !~ '^[uv][0-9]+$'",
            ],
        },
        "09-transform-column" => Semantics {
            before_contract: &[
                "SELECT count(*) FROM public.orders WHERE price_cents IS DISTINCT FROM (price * 100)::bigint",
            ],
            // orders.id is the generator number. A row holds what its insert wrote (N-1:
            // price = id, so price_cents = id * 100; N from 5_000_000: price_cents = id) unless an
            // update gave it a later number: N-1's are ≥ 1_000_000 * 100, N's ≥ 5_000_000.
            at_end: &[
                "SELECT count(*) FROM public.orders WHERE price_cents <> id * 100 AND price_cents <> id AND price_cents < 5000000",
            ],
            // After rolling back switch, N's inserts (id ≥ 9_000_000) went through `down`.
            after_rollback: &[
                "SELECT count(*) FROM public.orders WHERE price <> id AND price * 100 <> id AND price * 100 < 9000000",
            ],
        },
        // NULLs written by N-1 (every fourth row) are filled; every other value is a writer's.
        "10-set-not-null" => Semantics {
            before_contract: &[
                "SELECT count(*) FROM public.users WHERE email IS NULL OR email !~ '^([uv][0-9]+|unknown@example\\.invalid)$'",
                "SELECT CASE WHEN count(*) FILTER (WHERE email = 'unknown@example.invalid') = 0 THEN 1 ELSE 0 END::int8 FROM public.users",
            ],
            at_end: &[
                "SELECT count(*) FROM public.users WHERE email IS NULL OR email !~ '^([uv][0-9]+|unknown@example\\.invalid)$'",
            ],
            after_rollback: &[],
        },
        // Every row, existing or written during the migration, has its own public_id.
        "23-volatile-default" => Semantics {
            before_contract: &["SELECT count(*) - count(DISTINCT public_id) FROM public.users"],
            at_end: &["SELECT count(*) - count(DISTINCT public_id) FROM public.users"],
            after_rollback: &[],
        },
        "17-view-and-function" => Semantics {
            before_contract: &["SELECT count(*) FROM public.users WHERE display_name IS DISTINCT FROM name"],
            at_end: &["SELECT count(*) FROM public.users WHERE display_name !~ '^[uv][0-9]+$'"],
            after_rollback: &[NAME],
        },
        "18-several-dependent-changes" => Semantics {
            before_contract: &[
                TENANT,
                TENANT_FILLED,
                "SELECT count(*) FROM public.users WHERE name IS DISTINCT FROM left(name__seqmig_old, 200)",
            ],
            at_end: &[
                TENANT,
                TENANT_FILLED,
                "SELECT count(*) FROM public.users WHERE name !~ '^[uv][0-9]+$'",
            ],
            after_rollback: &[NAME],
        },
        _ => Semantics { before_contract: &[], at_end: &[], after_rollback: &[] },
    }
}

async fn assert_semantics(c: &Client, name: &str, queries: &[&str], when: &str) {
    for q in queries {
        let n: i64 = c.query_one(*q, &[]).await.unwrap_or_else(|e| panic!("{name}: {q}: {e:?}")).get(0);
        assert_eq!(n, 0, "{name} ({when}): {n} rows break: {q}");
    }
}

fn run_example(name: &str) {
    run_example_at(&dir(name), name);
}

/// What one example's lifecycle exercised, for the reliability report.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Lifecycle {
    pub phases_applied: usize,
    pub rollbacks: usize,
    pub rolled_back_phases: usize,
    /// Rows whose presence was compared with what had to be there.
    pub rows_checked: usize,
    /// Of those, rows missing; asserted 0.
    pub rows_lost: usize,
}

impl Lifecycle {
    /// Counts `expected` rows per table against `got` (tables absent from `got` skipped when
    /// `skip_absent`: dropped or renamed by the plan, which the schema comparison judges).
    fn count(&mut self, expected: &BTreeMap<u32, i64>, got: &BTreeMap<u32, i64>, skip_absent: bool) {
        for (table, n) in expected {
            let m = match got.get(table) {
                Some(m) => *m,
                None if skip_absent => continue,
                None => 0,
            };
            self.rows_checked += *n as usize;
            self.rows_lost += (n - m).max(0) as usize;
        }
    }
}

/// The lifecycle of an example-style folder: forward with writers of both releases, then
/// back from every phase before contract; `name` picks the per-example semantics.
pub(crate) fn run_example_at(folder: &Path, name: &str) -> Lifecycle {
    let mut stats = Lifecycle::default();
    let plan = plan_at(folder);
    let read = |f: &str| std::fs::read_to_string(folder.join(f)).unwrap();
    let before_sql = read("before.sql");
    // The desired state: a database built from after.sql directly, or — when the file is
    // declarative rather than runnable in order — the loader's model of it.
    let after_sql = read("after.sql");
    let reference = TestDb::new();
    let after_model = block_on(async {
        let c = connect(&reference).await;
        if run_in_any_order(&c, &after_sql).await {
            introspect(&c).await
        } else {
            normalize(load("after.sql", &after_sql))
        }
    });
    if plan.is_blocked() {
        // A blocked plan is never applied, and applying it changes nothing.
        let db = TestDb::new();
        db.execute(&before_sql);
        block_on(async {
            let c = connect(&db).await;
            let before = introspect(&c).await;
            let err = apply(&db, &plan, Phase::Expand).await.unwrap_err();
            assert!(matches!(err, ExecError::PlanBlocked { .. }), "{name}: {err}");
            assert_eq!(introspect(&c).await, before);
        });
        return stats;
    }
    let desired = load("after.sql", &after_sql);
    let fks = fk_columns(&desired);
    let none = Placement::default();
    lifecycle(name, &plan, &before_sql, &after_model, &desired, &none, &mut stats);
    rollbacks(name, &plan, &before_sql, &fks, &none, None, &mut stats);
    stats
}

/// The lifecycle of a generated case (reliability_tests, issue 21): forward with writers of
/// both releases and a twin, rolling switch back and forth, then back to the start from
/// `rollback_from` with the old release writing. `placement` keeps the writers' rows inside
/// partitions that exist for the whole run.
pub(crate) fn lifecycle_with_writers(
    name: &str,
    plan: &Plan,
    before_sql: &str,
    after_model: &Schema,
    desired: &Schema,
    placement: &Placement,
    rollback_from: Option<Phase>,
) -> Lifecycle {
    let mut stats = Lifecycle::default();
    let fks = fk_columns(desired);
    lifecycle(name, plan, before_sql, after_model, desired, placement, &mut stats);
    if rollback_from.is_some() {
        rollbacks(name, plan, before_sql, &fks, placement, rollback_from, &mut stats);
    }
    stats
}

/// Forward, with writers: N-1 writes the old shape while expand … switch are applied, N the
/// new shape right after switch and while contract runs. A twin database gets the same
/// writes in the same order with every phase applied alone; at the end both hold exactly the
/// same rows, the schema is the desired one, and the per-example semantics hold.
fn lifecycle(
    name: &str,
    plan: &Plan,
    before_sql: &str,
    after_model: &Schema,
    desired: &Schema,
    placement: &Placement,
    stats: &mut Lifecycle,
) {
    let fks = &fk_columns(desired);
    let db = TestDb::new();
    let twin = TestDb::new();
    db.execute(before_sql);
    twin.execute(before_sql);
    let old_how = Writes {
        fk_columns: fks,
        only: None,
        nulls: true,
        explicit_defaults: true,
        keys: &placement.keys,
        updatable: &placement.updatable,
    };
    let new_how = Writes { only: Some(desired), ..old_how };
    let sem = semantics(name);
    block_on(async {
        let (c, t) = (connect(&db).await, connect(&twin).await);
        seed_with(&c, SEED_ROWS, &old_how).await;
        seed_with(&t, SEED_ROWS, &old_how).await;
        let mut expected = counts_by_oid(&c).await;
        leaving(&c, placement, &mut expected).await;
        let mut tally = |log: &Log| {
            for (table, n) in &log.inserted {
                *expected.entry(*table).or_default() += n;
            }
        };
        let old = statements(&c, &old_how).await;
        let mut new = None;
        let mut before_switch = None;
        for (i, phase) in Phase::ALL.into_iter().enumerate() {
            let first = 1_000_000 * (i as i64 + 1);
            let (st, who) = match &new {
                None => (&old, "the old release"),
                Some(new) => (new, "the new release"),
            };
            let log = while_writing(&db, plan, Run::Apply(phase), st, first, who, name).await;
            apply(&twin, plan, phase).await.unwrap_or_else(|e| panic!("{name}: twin: apply {phase}: {e}"));
            replay(&t, st, &log, who).await;
            tally(&log);
            stats.phases_applied += 1;
            if phase == Phase::Backfill {
                before_switch = Some(introspect(&c).await);
            }
            if phase != Phase::Switch {
                continue;
            }
            // N is deployed: it writes the new shape (the old columns are still there, kept
            // current by the triggers, but N does not know them).
            let st = statements(&c, &new_how).await;
            let n_writes = |from: i64| (0..3).map(move |k| from + 5 * k);
            for g in n_writes(9_000_000) {
                tally(&Log { rounds: vec![g], inserted: write_round(&c, &st, g, "the new release").await });
                write_round(&t, &st, g, "the new release").await;
            }
            assert_semantics(&c, name, sem.before_contract, "after switch").await;
            assert_eq!(
                data(&c).await,
                data(&t).await,
                "{name}: after switch, concurrent writes = the same writes alone"
            );
            if plan.steps_of(Phase::Switch).is_empty() {
                new = Some(st);
                continue;
            }
            // Back to N-1 after N wrote (while N-1 writes again), and forward again: N's rows
            // must reach the old shape through `down`, and survive the second switch.
            let log =
                while_writing(&db, plan, Run::Rollback(phase), &old, 6_500_000, "the old release", name)
                    .await;
            rollback(&twin, phase).await.unwrap_or_else(|e| panic!("{name}: twin: rollback {phase}: {e}"));
            replay(&t, &old, &log, "the old release").await;
            tally(&log);
            let mut back = introspect(&c).await;
            forgive_on_rollback(name, before_switch.as_ref().unwrap(), &mut back);
            assert_same(
                &back,
                before_switch.as_ref().unwrap(),
                &format!("{name}: schema after rolling back switch"),
            );
            assert_semantics(&c, name, sem.after_rollback, "after rolling back switch").await;
            assert_eq!(
                data(&c).await,
                data(&t).await,
                "{name}: after rolling back switch, concurrent = alone"
            );
            let log =
                while_writing(&db, plan, Run::Apply(phase), &old, 7_000_000, "the old release", name).await;
            apply(&twin, plan, phase)
                .await
                .unwrap_or_else(|e| panic!("{name}: twin: apply {phase} again: {e}"));
            replay(&t, &old, &log, "the old release").await;
            tally(&log);
            for g in n_writes(9_100_000) {
                tally(&Log { rounds: vec![g], inserted: write_round(&c, &st, g, "the new release").await });
                write_round(&t, &st, g, "the new release").await;
            }
            assert_semantics(&c, name, sem.before_contract, "after switch again").await;
            new = Some(st);
        }
        assert_same(
            &introspect(&c).await,
            after_model,
            &format!("{name}: the end state is the desired schema"),
        );
        // Every row written is there (tables dropped by contract aside).
        let after_counts = counts_by_oid(&c).await;
        stats.count(&expected, &after_counts, true);
        for (table, n) in &expected {
            if let Some(m) = after_counts.get(table) {
                assert_eq!(m, n, "{name}: rows of the table with oid {table}");
            }
        }
        assert_eq!(
            data(&c).await,
            data(&t).await,
            "{name}: concurrent writes = the same writes with each phase alone"
        );
        assert_semantics(&c, name, sem.at_end, "at the end").await;
    });
}

/// Back: from every phase before contract to the start, while N-1 writes during every phase
/// applied. The rolled-back database must equal one where the migration never ran and N-1
/// made the same writes: before.sql's schema, and every row, with the values N-1 wrote. (No
/// NULLs here: a fill is a data change a rollback does not undo, by design.) Rolling back
/// switch after N wrote the new shape is part of [`lifecycle`].
fn rollbacks(
    name: &str,
    plan: &Plan,
    before_sql: &str,
    fks: &[(String, String)],
    placement: &Placement,
    only_from: Option<Phase>,
    stats: &mut Lifecycle,
) {
    let how = Writes {
        fk_columns: fks,
        only: None,
        nulls: false,
        explicit_defaults: true,
        keys: &placement.keys,
        updatable: &placement.updatable,
    };
    // One database without the migration for every case: each case's writes are replayed in
    // a transaction that is rolled back, and the sequences are put back (they are not
    // transactional). Creating a database costs more than the rest of a case.
    let plain = TestDb::new();
    plain.execute(before_sql);
    block_on(async { seed_with(&connect(&plain).await, SEED_ROWS, &how).await });
    for last in phases_with_steps(plan)
        .into_iter()
        .filter(|p| *p < Phase::Contract && only_from.is_none_or(|f| f == *p))
    {
        let db = TestDb::new();
        db.execute(before_sql);
        block_on(async {
            let c = connect(&db).await;
            seed_with(&c, SEED_ROWS, &how).await;
            let schema = introspect(&c).await;
            let mut expected = counts_by_oid(&c).await;
            let old = statements(&c, &how).await;
            let mut logs = Vec::new();
            for (i, phase) in Phase::ALL.into_iter().filter(|p| *p <= last).enumerate() {
                let first = 1_000_000 * (i as i64 + 1);
                let log =
                    while_writing(&db, plan, Run::Apply(phase), &old, first, "the old release", name).await;
                for (table, n) in &log.inserted {
                    *expected.entry(*table).or_default() += n;
                }
                logs.push(log);
            }
            for phase in phases_with_steps(plan).into_iter().filter(|p| *p <= last).rev() {
                rollback(&db, phase)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: rollback {phase} (from {last}): {e}"));
                stats.rolled_back_phases += 1;
            }
            let mut back = introspect(&c).await;
            forgive_on_rollback(name, &schema, &mut back);
            assert_same(&back, &schema, &format!("{name}: schema after rolling back from {last}"));
            let got = counts_by_oid(&c).await;
            stats.count(&expected, &got, false);
            for (table, n) in &expected {
                assert_eq!(
                    got.get(table),
                    Some(n),
                    "{name}: rows of the table with oid {table} after rolling back from {last}"
                );
            }
            assert_eq!(
                data(&c).await,
                without_migration(&connect(&plain).await, &old, &logs).await,
                "{name}: data after rolling back from {last} = the same writes without the migration"
            );
            assert_semantics(&c, name, semantics(name).after_rollback, &format!("rolled back from {last}"))
                .await;
        });
        stats.rollbacks += 1;
    }
}

/// Takes from `expected` (rows per table oid) the rows of the partitions the plan detaches:
/// they leave their parent by design (writers never write there).
async fn leaving(c: &Client, placement: &Placement, expected: &mut BTreeMap<u32, i64>) {
    for (parent, partition) in &placement.detached {
        let row = c
            .query_one(&format!("SELECT {}::regclass::oid, count(*) FROM {partition}", literal(parent)), &[])
            .await
            .unwrap_or_else(|e| panic!("rows of {partition}: {e:?}"));
        let (oid, n): (u32, i64) = (row.get(0), row.get(1));
        *expected.entry(oid).or_default() -= n;
    }
}

/// A SQL string literal.
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The data of the database without the migration after `logs`' writes, which are undone
/// again afterwards (the rows by a rolled-back transaction, the sequences by hand).
async fn without_migration(p: &Client, st: &Statements, logs: &[Log]) -> BTreeMap<String, (i64, String)> {
    let seqs = p
        .query("SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences", &[])
        .await
        .unwrap();
    p.batch_execute("BEGIN").await.unwrap();
    for log in logs {
        replay(p, st, log, "the old release").await;
    }
    let out = data(p).await;
    p.batch_execute("ROLLBACK").await.unwrap();
    for r in &seqs {
        let (seq, last): (String, Option<i64>) = (r.get(0), r.get(1));
        match last {
            Some(v) => {
                p.execute("SELECT setval($1::text::regclass, $2, true)", &[&seq, &v]).await.map(|_| ())
            }
            None => p.batch_execute(&format!("ALTER SEQUENCE {seq} RESTART")).await,
        }
        .unwrap();
    }
    out
}

macro_rules! examples {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                run_example($name);
            }
        )*

        #[test]
        fn every_example_has_a_lifecycle_test() {
            let mut on_disk: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| dir(n).join("before.sql").is_file())
                .collect();
            on_disk.sort();
            let mut tested = vec![$($name.to_string()),*];
            tested.sort();
            assert_eq!(on_disk, tested, "add the new example to the list in exec_examples_tests.rs");
        }
    };
}

examples! {
    example_01_create_table => "01-create-table",
    example_02_drop_table => "02-drop-table",
    example_03_rename_table => "03-rename-table",
    example_04_add_column => "04-add-column",
    example_05_add_not_null_column => "05-add-not-null-column",
    example_06_drop_column => "06-drop-column",
    example_07_rename_column => "07-rename-column",
    example_08_change_type => "08-change-type",
    example_09_transform_column => "09-transform-column",
    example_10_set_not_null => "10-set-not-null",
    example_11_drop_not_null_change_default => "11-drop-not-null-change-default",
    example_12_add_check_and_foreign_key => "12-add-check-and-foreign-key",
    example_13_add_unique_and_primary_key => "13-add-unique-and-primary-key",
    example_14_add_and_change_index => "14-add-and-change-index",
    example_15_drop_index_and_constraint => "15-drop-index-and-constraint",
    example_16_add_enum_value => "16-add-enum-value",
    example_17_view_and_function => "17-view-and-function",
    example_18_several_dependent_changes => "18-several-dependent-changes",
    example_19_ambiguous_rename => "19-ambiguous-rename",
    example_20_pg_dump_clean => "20-pg-dump-clean",
    example_21_opaque_alter => "21-opaque-alter",
    example_22_extension_drop => "22-extension-drop",
    example_23_volatile_default => "23-volatile-default",
    example_24_widen_serial_key => "24-widen-serial-key",
    example_25_identity_or_generated => "25-identity-or-generated",
    example_26_widen_identity_key => "26-widen-identity-key",
    example_28_partitioned_column_changes => "28-partitioned-column-changes",
    example_29_partitioned_index => "29-partitioned-index",
    example_30_attach_partitions => "30-attach-partitions",
    example_31_partitioned_type_change => "31-partitioned-type-change",
    example_32_detach_partitions => "32-detach-partitions",
    example_33_attach_partition_with_parent_changes => "33-attach-partition-with-parent-changes",
}
