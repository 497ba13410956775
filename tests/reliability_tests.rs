//! Reliability (issue 10): generated schema pairs planned and run through the real executor on
//! PostgreSQL with data, and hostile bytes fed to every input parser.
//!
//! The generated cases are deterministic (a fixed ChaCha seed) and few in the normal suite;
//! the long run is `SEQMIG_PROPTEST_CASES=500 cargo test --test tests reliability -- --nocapture`
//! (`SEQMIG_PROPTEST_SEED=N` picks another sequence, `SEQMIG_FUZZ_EXECUTIONS=N` sizes the fuzz
//! loop). Each test prints one summary line; see `book/src/reliability.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};
use seqmig::diff::Hints;
use seqmig::plan::{Phase, Plan};
use seqmig::render::Renderer;
use tokio_postgres::Client;

use crate::exec_examples_tests::{
    apply, assert_same, data, introspect, load, phases_with_steps, rollback, run_in_any_order, seed,
};
use crate::harness::{TestDb, block_on};

/// Rows seeded into every generated table: enough for batches, small enough for many cases.
const ROWS: i64 = 300;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// A runner with a fixed seed (or `SEQMIG_PROPTEST_SEED`), no failure files, few shrinks:
/// every shrink step of the lifecycle test costs three databases.
fn runner(default_cases: u64) -> TestRunner {
    let config = ProptestConfig {
        cases: env_number("SEQMIG_PROPTEST_CASES", default_cases) as u32,
        failure_persistence: None,
        max_shrink_iters: 24,
        ..ProptestConfig::default()
    };
    let rng = match std::env::var("SEQMIG_PROPTEST_SEED").ok().and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(seed) => {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&seed.to_le_bytes());
            TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
        }
        None => TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    };
    TestRunner::new_with_rng(config, rng)
}

// ---------------------------------------------------------------------------------------------
// Generated schema pairs
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Integer,
    Bigint,
    Text,
    Boolean,
    Timestamptz,
    Numeric,
}

impl Ty {
    fn sql(self) -> &'static str {
        match self {
            Ty::Integer => "integer",
            Ty::Bigint => "bigint",
            Ty::Text => "text",
            Ty::Boolean => "boolean",
            Ty::Timestamptz => "timestamp with time zone",
            Ty::Numeric => "numeric",
        }
    }

    /// The `[[fill]]` value of a new NOT NULL column of this type.
    fn fill(self) -> &'static str {
        match self {
            Ty::Integer | Ty::Bigint => "7",
            Ty::Text => "'filled'",
            Ty::Boolean => "true",
            Ty::Timestamptz => "'2021-02-03 04:05:06+00'::timestamp with time zone",
            Ty::Numeric => "7.5",
        }
    }

    /// A CHECK every seeded value of this type satisfies, if the type has an obvious one.
    fn check(self, column: &str) -> Option<String> {
        match self {
            Ty::Integer | Ty::Bigint | Ty::Numeric => Some(format!("{column} >= 0")),
            Ty::Text => Some(format!("length({column}) < 1000")),
            Ty::Boolean | Ty::Timestamptz => None,
        }
    }
}

/// What the change does to one existing column. Each column gets at most one change, so
/// changes never conflict with each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    Rename,
    Drop,
    /// integer → bigint (other types keep theirs).
    Widen,
    AddIndex,
    AddCheck,
}

#[derive(Debug, Clone)]
struct Col {
    ty: Ty,
    not_null: bool,
    fate: Fate,
}

#[derive(Debug, Clone)]
struct TableSpec {
    cols: Vec<Col>,
    /// An index on this column exists before; the column keeps its fate `Keep`.
    indexed: Option<usize>,
    /// A nullable `parent_id` referencing the first table (not on the first table).
    fk: bool,
    /// New columns: (type, NOT NULL with a fill hint).
    added: Vec<(Ty, bool)>,
}

#[derive(Debug, Clone)]
struct Case {
    tables: Vec<TableSpec>,
    /// Picks the phase a rollback starts from, among those before contract with steps.
    rollback_pick: usize,
}

fn ty() -> impl Strategy<Value = Ty> {
    prop_oneof![
        Just(Ty::Integer),
        Just(Ty::Bigint),
        Just(Ty::Text),
        Just(Ty::Boolean),
        Just(Ty::Timestamptz),
        Just(Ty::Numeric),
    ]
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        3 => Just(Fate::Keep),
        1 => Just(Fate::Rename),
        1 => Just(Fate::Drop),
        1 => Just(Fate::Widen),
        1 => Just(Fate::AddIndex),
        1 => Just(Fate::AddCheck),
    ]
}

fn table_spec() -> impl Strategy<Value = TableSpec> {
    (
        prop::collection::vec((ty(), any::<bool>(), fate()), 1..=4),
        prop::option::weighted(0.3, 0..4usize),
        any::<bool>(),
        prop::collection::vec((ty(), any::<bool>()), 0..=2),
    )
        .prop_map(|(cols, indexed, fk, added)| {
            let indexed = indexed.filter(|i| *i < cols.len());
            let cols = cols
                .into_iter()
                .enumerate()
                .map(|(i, (ty, not_null, fate))| {
                    let fate = match fate {
                        _ if indexed == Some(i) => Fate::Keep,
                        Fate::Widen if ty != Ty::Integer => Fate::Keep,
                        Fate::AddCheck if ty.check("c").is_none() => Fate::AddIndex,
                        f => f,
                    };
                    Col { ty, not_null, fate }
                })
                .collect();
            TableSpec { cols, indexed, fk, added }
        })
}

fn case() -> impl Strategy<Value = Case> {
    (prop::collection::vec(table_spec(), 1..=3), 0..8usize).prop_map(|(mut tables, rollback_pick)| {
        tables[0].fk = false;
        let changes = tables
            .iter()
            .map(|t| t.added.len() + t.cols.iter().filter(|c| c.fate != Fate::Keep).count())
            .sum::<usize>();
        if changes == 0 {
            tables[0].added.push((Ty::Text, false));
        }
        Case { tables, rollback_pick }
    })
}

fn col_name(i: usize) -> String {
    format!("c{i}")
}

fn renamed(i: usize) -> String {
    format!("c{i}_renamed")
}

fn added_name(k: usize, not_null: bool) -> String {
    if not_null { format!("f{k}") } else { format!("a{k}") }
}

impl Case {
    fn before_sql(&self) -> String {
        let mut out = String::new();
        for (n, t) in self.tables.iter().enumerate() {
            let mut lines = vec!["    id bigint NOT NULL".to_string()];
            if t.fk {
                lines.push("    parent_id bigint".into());
            }
            for (i, c) in t.cols.iter().enumerate() {
                lines.push(format!(
                    "    {} {}{}",
                    col_name(i),
                    c.ty.sql(),
                    if c.not_null { " NOT NULL" } else { "" }
                ));
            }
            lines.push(format!("    CONSTRAINT t{n}_pkey PRIMARY KEY (id)"));
            if t.fk {
                lines.push(format!(
                    "    CONSTRAINT t{n}_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES public.t0 (id)"
                ));
            }
            let _ = writeln!(out, "CREATE TABLE public.t{n} (\n{}\n);", lines.join(",\n"));
            if let Some(i) = t.indexed {
                let _ = writeln!(
                    out,
                    "CREATE INDEX t{n}_c{i}_old_idx ON public.t{n} USING btree ({});",
                    col_name(i)
                );
            }
        }
        out
    }

    fn after_sql(&self) -> String {
        let mut out = String::new();
        for (n, t) in self.tables.iter().enumerate() {
            let mut lines = vec!["    id bigint NOT NULL".to_string()];
            let mut indexes = Vec::new();
            if t.fk {
                lines.push("    parent_id bigint".into());
            }
            let mut checks = Vec::new();
            for (i, c) in t.cols.iter().enumerate() {
                let null = if c.not_null { " NOT NULL" } else { "" };
                match c.fate {
                    Fate::Drop => continue,
                    Fate::Rename => lines.push(format!("    {} {}{null}", renamed(i), c.ty.sql())),
                    Fate::Widen => lines.push(format!("    {} bigint{null}", col_name(i))),
                    Fate::Keep | Fate::AddIndex | Fate::AddCheck => {
                        lines.push(format!("    {} {}{null}", col_name(i), c.ty.sql()))
                    }
                }
                if c.fate == Fate::AddIndex {
                    indexes.push(format!(
                        "CREATE INDEX t{n}_c{i}_idx ON public.t{n} USING btree ({});",
                        col_name(i)
                    ));
                }
                if c.fate == Fate::AddCheck {
                    let expr = c.ty.check(&col_name(i)).unwrap();
                    checks.push(format!("    CONSTRAINT t{n}_c{i}_check CHECK ({expr})"));
                }
            }
            for (k, (ty, not_null)) in t.added.iter().enumerate() {
                let null = if *not_null { " NOT NULL" } else { "" };
                lines.push(format!("    {} {}{null}", added_name(k, *not_null), ty.sql()));
            }
            lines.push(format!("    CONSTRAINT t{n}_pkey PRIMARY KEY (id)"));
            if t.fk {
                lines.push(format!(
                    "    CONSTRAINT t{n}_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES public.t0 (id)"
                ));
            }
            lines.extend(checks);
            let _ = writeln!(out, "CREATE TABLE public.t{n} (\n{}\n);", lines.join(",\n"));
            if let Some(i) = t.indexed {
                let _ = writeln!(
                    out,
                    "CREATE INDEX t{n}_c{i}_old_idx ON public.t{n} USING btree ({});",
                    col_name(i)
                );
            }
            for i in indexes {
                let _ = writeln!(out, "{i}");
            }
        }
        out
    }

    /// The `seqmig.toml` the change needs: renames, fills, acknowledged drops.
    fn hints_toml(&self) -> String {
        let mut out = String::new();
        let mut one_way = Vec::new();
        for (n, t) in self.tables.iter().enumerate() {
            for (i, c) in t.cols.iter().enumerate() {
                match c.fate {
                    Fate::Rename => {
                        let _ = writeln!(
                            out,
                            "[[rename]]\ntable = \"public.t{n}\"\nfrom = \"{}\"\nto = \"{}\"\n",
                            col_name(i),
                            renamed(i)
                        );
                    }
                    Fate::Drop => one_way.push(format!("\"public.t{n}.{}\"", col_name(i))),
                    _ => {}
                }
            }
            for (k, (ty, not_null)) in t.added.iter().enumerate() {
                if *not_null {
                    let _ = writeln!(
                        out,
                        "[[fill]]\ntable = \"public.t{n}\"\ncolumn = \"{}\"\nvalue = \"{}\"\n",
                        added_name(k, true),
                        ty.fill().replace('"', "\\\"")
                    );
                }
            }
        }
        if !one_way.is_empty() {
            let _ = writeln!(out, "[plan]\nallow_one_way = [{}]", one_way.join(", "));
        }
        out
    }

    /// Per table, the surviving columns as (name before, name after), id first.
    fn surviving(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.tables
            .iter()
            .enumerate()
            .map(|(n, t)| {
                let mut cols = vec![("id".to_string(), "id".to_string())];
                if t.fk {
                    cols.push(("parent_id".into(), "parent_id".into()));
                }
                for (i, c) in t.cols.iter().enumerate() {
                    match c.fate {
                        Fate::Drop => {}
                        Fate::Rename => cols.push((col_name(i), renamed(i))),
                        _ => cols.push((col_name(i), col_name(i))),
                    }
                }
                (format!("public.t{n}"), cols)
            })
            .collect()
    }

    fn plan(&self) -> Plan {
        let hints = Hints::from_toml(&self.hints_toml(), "generated seqmig.toml")
            .unwrap_or_else(|e| panic!("generated hints: {e}\n{}", self.hints_toml()));
        let before = load("before.sql", &self.before_sql());
        let after = load("after.sql", &self.after_sql());
        let mut plan = seqmig::plan::plan(&before, &after, &hints, &Renderer::embedded())
            .unwrap_or_else(|e| panic!("planning failed: {e}\n{}", self.describe()))
            .plan;
        assert!(
            !plan.is_blocked(),
            "a generated change within the supported kinds is blocked:\n{}",
            self.describe()
        );
        // The gate is not under test (as in exec_examples_tests).
        plan.gate.criteria.clear();
        plan.seal()
    }

    fn describe(&self) -> String {
        format!(
            "-- before.sql\n{}\n-- after.sql\n{}\n-- seqmig.toml\n{}",
            self.before_sql(),
            self.after_sql(),
            self.hints_toml()
        )
    }
}

/// Count and md5 of the named columns of every row, in id order.
async fn checksum(c: &Client, table: &str, columns: &[String]) -> (i64, String) {
    let row = c
        .query_one(
            &format!(
                "SELECT count(*), md5(coalesce(string_agg(row({cols})::text, E'\\n' ORDER BY id), '')) FROM {table}",
                cols = columns.join(", ")
            ),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("checksum of {table}: {e:?}"));
    (row.get(0), row.get(1))
}

#[derive(Debug, Default)]
struct Tally {
    cases: AtomicUsize,
    applied_phases: AtomicUsize,
    rollbacks: AtomicUsize,
    rolled_back_phases: AtomicUsize,
    rows_checked: AtomicUsize,
    rows_lost: AtomicUsize,
}

static LIFECYCLE: Tally = Tally {
    cases: AtomicUsize::new(0),
    applied_phases: AtomicUsize::new(0),
    rollbacks: AtomicUsize::new(0),
    rolled_back_phases: AtomicUsize::new(0),
    rows_checked: AtomicUsize::new(0),
    rows_lost: AtomicUsize::new(0),
};

fn run_case(case: &Case) {
    let plan = case.plan();
    let what = case.describe();

    // The desired schema: after.sql run on a real server, introspected.
    let reference = TestDb::new();
    let desired = block_on(async {
        let c = reference.client().await;
        assert!(run_in_any_order(&c, &case.after_sql()).await, "after.sql does not run:\n{what}");
        introspect(&c).await
    });

    // Forward: every phase in order ends in the desired schema with every row and value.
    let db = TestDb::new();
    db.execute(&case.before_sql());
    block_on(async {
        let c = db.client().await;
        seed(&c, ROWS).await;
        let survivors = case.surviving();
        let mut before = BTreeMap::new();
        for (table, cols) in &survivors {
            let old: Vec<String> = cols.iter().map(|(o, _)| o.clone()).collect();
            before.insert(table.clone(), checksum(&c, table, &old).await);
        }
        for phase in Phase::ALL {
            apply(&db, &plan, phase).await.unwrap_or_else(|e| panic!("apply {phase}: {e}\n{what}"));
            LIFECYCLE.applied_phases.fetch_add(1, Ordering::Relaxed);
        }
        assert_same(&introspect(&c).await, &desired, &format!("the end state is the desired schema\n{what}"));
        for (table, cols) in &survivors {
            let new: Vec<String> = cols.iter().map(|(_, n)| n.clone()).collect();
            let after = checksum(&c, table, &new).await;
            let (n_before, _) = before[table];
            LIFECYCLE.rows_checked.fetch_add(n_before as usize, Ordering::Relaxed);
            LIFECYCLE.rows_lost.fetch_add((n_before - after.0).max(0) as usize, Ordering::Relaxed);
            assert_eq!(after, before[table], "rows or values of {table} changed\n{what}");
        }
        for (n, t) in case.tables.iter().enumerate() {
            for (k, (ty, not_null)) in t.added.iter().enumerate() {
                let name = added_name(k, *not_null);
                let wrong = if *not_null {
                    format!("{name} IS DISTINCT FROM ({})", ty.fill())
                } else {
                    format!("{name} IS NOT NULL")
                };
                let bad: i64 = c
                    .query_one(&format!("SELECT count(*) FROM public.t{n} WHERE {wrong}"), &[])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(bad, 0, "public.t{n}.{name}: {bad} rows with the wrong value\n{what}");
            }
        }
    });

    // Back: from one phase before contract (picked by the case), the original schema and
    // every row come back exactly.
    let candidates: Vec<Phase> =
        phases_with_steps(&plan).into_iter().filter(|p| *p < Phase::Contract).collect();
    if let Some(&last) = candidates.get(case.rollback_pick % candidates.len().max(1)) {
        let db = TestDb::new();
        db.execute(&case.before_sql());
        block_on(async {
            let c = db.client().await;
            seed(&c, ROWS).await;
            let schema = introspect(&c).await;
            let rows = data(&c).await;
            for phase in Phase::ALL.into_iter().filter(|p| *p <= last) {
                apply(&db, &plan, phase).await.unwrap_or_else(|e| panic!("apply {phase}: {e}\n{what}"));
            }
            for phase in phases_with_steps(&plan).into_iter().filter(|p| *p <= last).rev() {
                rollback(&db, phase)
                    .await
                    .unwrap_or_else(|e| panic!("rollback {phase} (from {last}): {e}\n{what}"));
                LIFECYCLE.rolled_back_phases.fetch_add(1, Ordering::Relaxed);
            }
            assert_same(
                &introspect(&c).await,
                &schema,
                &format!("schema after rolling back from {last}\n{what}"),
            );
            let back = data(&c).await;
            for (table, (n, _)) in &rows {
                let m = back.get(table).map(|(m, _)| *m).unwrap_or(0);
                LIFECYCLE.rows_lost.fetch_add((n - m).max(0) as usize, Ordering::Relaxed);
            }
            assert_eq!(back, rows, "data after rolling back from {last}\n{what}");
        });
        LIFECYCLE.rollbacks.fetch_add(1, Ordering::Relaxed);
    }
    LIFECYCLE.cases.fetch_add(1, Ordering::Relaxed);
}

#[test]
#[allow(clippy::print_stderr)]
fn reliability_generated_schema_pairs_apply_and_roll_back_losing_nothing() {
    let mut runner = runner(8);
    let result = runner.run(&case(), |case| {
        run_case(&case);
        Ok(())
    });
    let t = &LIFECYCLE;
    eprintln!(
        "reliability summary: generated cases tried {}, phases applied {}, rollbacks exercised {} ({} phases rolled back), rows checked {}, rows lost {}",
        t.cases.load(Ordering::Relaxed),
        t.applied_phases.load(Ordering::Relaxed),
        t.rollbacks.load(Ordering::Relaxed),
        t.rolled_back_phases.load(Ordering::Relaxed),
        t.rows_checked.load(Ordering::Relaxed),
        t.rows_lost.load(Ordering::Relaxed),
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_eq!(t.rows_lost.load(Ordering::Relaxed), 0);
}

#[test]
fn reliability_generator_covers_every_change_kind() {
    // The normal suite runs few cases: make sure the generator can reach each kind at all.
    let mut runner = runner(200);
    let mut seen = std::collections::BTreeSet::new();
    let strategy = case();
    for _ in 0..200 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        for t in &case.tables {
            for c in &t.cols {
                seen.insert(format!("{:?}", c.fate));
            }
            for (_, not_null) in &t.added {
                seen.insert(if *not_null { "AddNotNull" } else { "AddNullable" }.to_string());
            }
            if t.fk {
                seen.insert("Fk".into());
            }
            if t.indexed.is_some() {
                seen.insert("ExistingIndex".into());
            }
        }
    }
    let want = [
        "AddCheck",
        "AddIndex",
        "AddNotNull",
        "AddNullable",
        "Drop",
        "ExistingIndex",
        "Fk",
        "Keep",
        "Rename",
        "Widen",
    ];
    for w in want {
        assert!(seen.contains(w), "the generator never produces {w}: {seen:?}");
    }
}
