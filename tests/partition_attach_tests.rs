//! A new partition in the same release as changes to its parent's columns (issue 21, gap 1):
//! created in the parent's current shape and attached first in `expand`, so each later step on
//! the parent reaches it through PostgreSQL. For RANGE and LIST parents with a DEFAULT
//! partition, a HASH parent (a remainder left free by the modulus rules) and a RANGE parent
//! whose new partition is partitioned again by HASH: applied through contract with a writer
//! running, and rolled back from each phase before contract, rows compared with a twin
//! database given the same writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use seqmig::plan::{Phase, Plan};
use tokio_postgres::Client;

use crate::exec_examples_tests::{
    apply, assert_same, introspect, phases_with_steps, rollback, run_in_any_order,
};
use crate::harness::{TestDb, block_on};
use crate::partition2_tests::{plan, writer_of};

struct Case {
    name: &'static str,
    before: &'static str,
    after: &'static str,
    toml: &'static str,
    /// Rows every shape takes, outside the new bound: `{id}` is replaced.
    old_row: &'static str,
    /// A row of the new bound, written by the new release once `expand` attached it.
    new_rows: &'static str,
    /// Deletes the rows of the new bound (for a parent where no other partition takes them).
    homeless: Option<&'static str>,
    /// Columns both shapes have, for comparing rows.
    compare: &'static str,
    table: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "range with a default partition",
        before: "CREATE TABLE public.events (id bigint NOT NULL, kind text NOT NULL, note text, CONSTRAINT events_pkey PRIMARY KEY (id)) PARTITION BY RANGE (id);
CREATE TABLE public.events_now PARTITION OF public.events FOR VALUES FROM (MINVALUE) TO (100000);
CREATE TABLE public.events_default PARTITION OF public.events DEFAULT;
CREATE INDEX events_kind_idx ON public.events (kind);",
        after: "CREATE TABLE public.events (id bigint NOT NULL, kind text NOT NULL, source text, CONSTRAINT events_pkey PRIMARY KEY (id)) PARTITION BY RANGE (id);
CREATE TABLE public.events_now PARTITION OF public.events FOR VALUES FROM (MINVALUE) TO (100000);
CREATE TABLE public.events_default PARTITION OF public.events DEFAULT;
CREATE TABLE public.events_next PARTITION OF public.events FOR VALUES FROM (100000) TO (200000);
CREATE INDEX events_kind_idx ON public.events (kind);
CREATE INDEX events_source_idx ON public.events (source);",
        toml: "[plan]\nallow_one_way = [\"public.events.note\"]\n",
        old_row: "INSERT INTO public.events (id, kind) VALUES ({id}, 'w{id}');",
        new_rows: "INSERT INTO public.events (id, kind) SELECT g, 'n' || g FROM generate_series(150000, 150009) g;",
        homeless: None,
        compare: "id, kind",
        table: "public.events",
    },
    Case {
        name: "list with a default partition",
        before: "CREATE TABLE public.accounts (id bigint NOT NULL, region text NOT NULL, name text, CONSTRAINT accounts_pkey PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE public.accounts_eu PARTITION OF public.accounts FOR VALUES IN ('eu');
CREATE TABLE public.accounts_other PARTITION OF public.accounts DEFAULT;",
        after: "CREATE TABLE public.accounts (id bigint NOT NULL, region text NOT NULL, display_name text, CONSTRAINT accounts_pkey PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE public.accounts_eu PARTITION OF public.accounts FOR VALUES IN ('eu');
CREATE TABLE public.accounts_other PARTITION OF public.accounts DEFAULT;
CREATE TABLE public.accounts_apac PARTITION OF public.accounts FOR VALUES IN ('apac', 'au');",
        toml: "[[rename]]\ntable = \"public.accounts\"\nfrom = \"name\"\nto = \"display_name\"\n[plan]\nallow_one_way = [\"public.accounts.name\"]\n",
        old_row: "INSERT INTO public.accounts (id, region) VALUES ({id}, CASE WHEN {id} % 2 = 0 THEN 'eu' ELSE 'us' END);",
        new_rows: "INSERT INTO public.accounts (id, region) SELECT g, 'apac' FROM generate_series(900000, 900009) g;",
        homeless: None,
        compare: "id, region",
        table: "public.accounts",
    },
    Case {
        name: "hash with a free remainder",
        before: "CREATE TABLE public.sessions (id bigint NOT NULL, token text, CONSTRAINT sessions_pkey PRIMARY KEY (id)) PARTITION BY HASH (id);
CREATE TABLE public.sessions_0 PARTITION OF public.sessions FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE public.sessions_1 PARTITION OF public.sessions FOR VALUES WITH (MODULUS 4, REMAINDER 1);",
        after: "CREATE TABLE public.sessions (id bigint NOT NULL, token text, expires integer, CONSTRAINT sessions_pkey PRIMARY KEY (id)) PARTITION BY HASH (id);
CREATE TABLE public.sessions_0 PARTITION OF public.sessions FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE public.sessions_1 PARTITION OF public.sessions FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE public.sessions_3 PARTITION OF public.sessions FOR VALUES WITH (MODULUS 4, REMAINDER 3);",
        toml: "",
        old_row: "INSERT INTO public.sessions (id, token) SELECT {id}, 't' WHERE NOT satisfies_hash_partition('public.sessions'::regclass, 4, 3, {id}::bigint);",
        new_rows: "INSERT INTO public.sessions (id, token) SELECT g, 'n' FROM generate_series(900000, 900040) g WHERE satisfies_hash_partition('public.sessions'::regclass, 4, 3, g::bigint);",
        homeless: Some(
            "DELETE FROM public.sessions WHERE satisfies_hash_partition('public.sessions'::regclass, 4, 3, id);",
        ),
        compare: "id, token",
        table: "public.sessions",
    },
    Case {
        name: "two levels: range, the new partition partitioned by hash",
        before: "CREATE TABLE public.metrics (id bigint NOT NULL, value integer, CONSTRAINT metrics_pkey PRIMARY KEY (id)) PARTITION BY RANGE (id);
CREATE TABLE public.metrics_now PARTITION OF public.metrics FOR VALUES FROM (MINVALUE) TO (100000) PARTITION BY HASH (id);
CREATE TABLE public.metrics_now_0 PARTITION OF public.metrics_now FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE public.metrics_now_1 PARTITION OF public.metrics_now FOR VALUES WITH (modulus 2, remainder 1);",
        after: "CREATE TABLE public.metrics (id bigint NOT NULL, value bigint, CONSTRAINT metrics_pkey PRIMARY KEY (id)) PARTITION BY RANGE (id);
CREATE TABLE public.metrics_now PARTITION OF public.metrics FOR VALUES FROM (MINVALUE) TO (100000) PARTITION BY HASH (id);
CREATE TABLE public.metrics_now_0 PARTITION OF public.metrics_now FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE public.metrics_now_1 PARTITION OF public.metrics_now FOR VALUES WITH (modulus 2, remainder 1);
CREATE TABLE public.metrics_next PARTITION OF public.metrics FOR VALUES FROM (100000) TO (200000) PARTITION BY HASH (id);
CREATE TABLE public.metrics_next_0 PARTITION OF public.metrics_next FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE public.metrics_next_1 PARTITION OF public.metrics_next FOR VALUES WITH (modulus 2, remainder 1);",
        toml: "",
        old_row: "INSERT INTO public.metrics (id, value) VALUES ({id}, {id} % 1000);",
        new_rows: "INSERT INTO public.metrics (id, value) SELECT g, 5 FROM generate_series(150000, 150009) g;",
        homeless: Some("DELETE FROM public.metrics WHERE id >= 100000;"),
        compare: "id, value",
        table: "public.metrics",
    },
];

fn seed(case: &Case) -> String {
    (1..=200).map(|i| case.old_row.replace("{id}", &i.to_string())).collect::<Vec<_>>().join("\n")
}

/// Rows of the case's table over the columns both shapes have, as sorted text.
async fn rows(c: &Client, case: &Case) -> (i64, String) {
    let r = c
        .query_one(
            &format!(
                "SELECT count(*), coalesce(string_agg(x::text, ',' ORDER BY x::text), '') FROM (SELECT {} FROM {}) x",
                case.compare, case.table
            ),
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

/// Applies `phase` while a writer inserts rows of every shape; the same writes go to `twin`.
async fn apply_writing(db: &TestDb, twin: &Client, plan: &Plan, phase: Phase, case: &Case, base: i64) {
    let stop = Arc::new(AtomicBool::new(false));
    let row = case.old_row;
    let writer = writer_of(db, stop.clone(), move |n| row.replace("{id}", &(base + n).to_string()));
    let result = apply(db, plan, phase).await;
    stop.store(true, Ordering::SeqCst);
    let n = writer.join().unwrap();
    result.unwrap_or_else(|e| panic!("{}: apply {phase}: {e}", case.name));
    for i in 0..n {
        twin.batch_execute(&row.replace("{id}", &(base + i).to_string())).await.unwrap();
    }
}

fn desired(after: &str) -> seqmig::model::Schema {
    let reference = TestDb::new();
    block_on(async {
        let c = reference.client().await;
        assert!(run_in_any_order(&c, after).await);
        introspect(&c).await
    })
}

/// Every case: the plan has no finding that blocks it; applied through contract with a writer
/// running, it ends as `after.sql`, with every row a twin holding `after.sql` got; rolled back
/// from each phase before contract, it ends as `before.sql`, and the rows the new release
/// wrote into the new partition are moved back through the parent into its default partition
/// (the twin never had the new partition), or, where no partition takes them, the rollback
/// stops at the attach with them in place and goes on once they are gone.
#[test]
fn issue21_9_a_new_partition_lands_with_changes_of_its_parents_columns_for_each_strategy() {
    for case in CASES {
        let plan = plan(case.before, case.after, case.toml);
        assert!(!plan.is_blocked(), "{}: {:#?}", case.name, plan.findings);
        let want = desired(case.after);
        let phases = phases_with_steps(&plan);

        // Forward, through contract.
        let db = TestDb::new();
        db.execute(case.before);
        db.execute(&seed(case));
        let twin = TestDb::new();
        assert!(block_on(async { run_in_any_order(&twin.client().await, case.after).await }));
        twin.execute(&seed(case));
        block_on(async {
            let t = twin.client().await;
            for (k, phase) in phases.iter().enumerate() {
                apply_writing(&db, &t, &plan, *phase, case, 10_000 + 1_000 * k as i64).await;
                if *phase == Phase::Expand {
                    db.client().await.batch_execute(case.new_rows).await.unwrap();
                    t.batch_execute(case.new_rows).await.unwrap();
                }
            }
            let c = db.client().await;
            assert_same(&introspect(&c).await, &want, &format!("{}: the end state", case.name));
            assert_eq!(rows(&c, case).await, rows(&t, case).await, "{}: rows after contract", case.name);
        });

        // Back, from each phase before contract.
        for last in phases.iter().copied().filter(|p| *p < Phase::Contract) {
            let db = TestDb::new();
            db.execute(case.before);
            db.execute(&seed(case));
            let twin = TestDb::new();
            twin.execute(case.before);
            twin.execute(&seed(case));
            let before = live_of(&twin);
            block_on(async {
                let t = twin.client().await;
                for (k, phase) in phases.iter().copied().filter(|p| *p <= last).enumerate() {
                    apply_writing(&db, &t, &plan, phase, case, 10_000 + 1_000 * k as i64).await;
                }
                db.client().await.batch_execute(case.new_rows).await.unwrap();
                for phase in phases.iter().copied().filter(|p| *p <= last).rev() {
                    match (rollback(&db, phase).await, case.homeless) {
                        (Ok(()), None) => {}
                        (Err(e), Some(delete)) if phase == Phase::Expand => {
                            // No partition of the parent as it was takes them: the rollback
                            // stopped at the attach and kept them.
                            assert!(e.to_string().contains("no partition"), "{}: {e}", case.name);
                            let c = db.client().await;
                            let (n, _) = rows(&c, case).await;
                            let (m, _) = rows(&t, case).await;
                            assert!(n > m, "{}: the new release's rows are still there", case.name);
                            c.batch_execute(delete).await.unwrap();
                            rollback(&db, phase)
                                .await
                                .unwrap_or_else(|e| panic!("{}: rollback again: {e}", case.name));
                        }
                        (Ok(()), Some(_)) if phase != Phase::Expand => {}
                        (r, _) => panic!("{}: rollback {phase} from {last}: {r:?}", case.name),
                    }
                }
                if case.homeless.is_none() {
                    t.batch_execute(case.new_rows).await.unwrap();
                }
                let c = db.client().await;
                assert_same(&introspect(&c).await, &before, &format!("{}: back from {last}", case.name));
                assert_eq!(
                    rows(&c, case).await,
                    rows(&t, case).await,
                    "{}: rows back from {last}",
                    case.name
                );
            });
        }
    }
}

fn live_of(db: &TestDb) -> seqmig::model::Schema {
    block_on(async { introspect(&db.client().await).await })
}

/// What is still refused: a new partition with a CHECK of its own, next to a parent column
/// change (the check may read a column the parent gets only later).
#[test]
fn issue21_9_a_new_partition_with_a_check_of_its_own_next_to_parent_changes_is_still_a_finding() {
    let before = CASES[0].before;
    let after = CASES[0].after.replace(
        "FOR VALUES FROM (100000) TO (200000);",
        "(CONSTRAINT events_next_kind CHECK (kind <> '')) FOR VALUES FROM (100000) TO (200000);",
    );
    let plan = plan(before, &after, CASES[0].toml);
    let codes: Vec<(&str, &str)> =
        plan.findings.iter().map(|f| (f.code.as_str(), f.object.as_str())).collect();
    assert!(codes.contains(&("partition-attach-with-parent-changes", "public.events_next")), "{codes:?}");
    assert!(plan.is_blocked());
}

/// Runs `sql` through psql, statement by statement and outside a transaction, as a person runs
/// a phase's rollback file.
fn psql_file(db: &TestDb, sql: &str) {
    let psql = seqmig::cluster::find_bindir()
        .map(|d| d.join("psql"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| "psql".into());
    let path = std::env::temp_dir().join(format!("seqmig-rollback-{}.sql", std::process::id()));
    std::fs::write(&path, sql).unwrap();
    let out = std::process::Command::new(psql)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &db.url, "-f"])
        .arg(&path)
        .output()
        .expect("run psql");
    std::fs::remove_file(&path).ok();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The undo of a dropped index of a partitioned table (two levels): `seqmig rollback` refuses
/// contract, so the real path is contract's rollback file, run by a person. It builds the index
/// the way forward creation does, one `CREATE INDEX CONCURRENTLY` per leaf, `ON ONLY` per
/// partitioned table, attached each, never a plain `CREATE INDEX` on the parent; run again
/// over a half-built set (a loose leaf index, an INVALID one, an invalid parent index) it
/// clears it and ends with every index valid and attached, while a writer runs.
#[test]
fn issue21_10_the_undo_of_a_dropped_partitioned_index_builds_it_partition_by_partition() {
    let before = "CREATE TABLE public.metrics (id bigint NOT NULL, value integer, CONSTRAINT metrics_pkey PRIMARY KEY (id)) PARTITION BY RANGE (id);
CREATE TABLE public.metrics_a PARTITION OF public.metrics FOR VALUES FROM (MINVALUE) TO (1000) PARTITION BY HASH (id);
CREATE TABLE public.metrics_a0 PARTITION OF public.metrics_a FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE public.metrics_a1 PARTITION OF public.metrics_a FOR VALUES WITH (modulus 2, remainder 1);
CREATE TABLE public.metrics_b PARTITION OF public.metrics FOR VALUES FROM (1000) TO (MAXVALUE);
CREATE INDEX metrics_value_idx ON public.metrics (value);";
    let after = before.replace("CREATE INDEX metrics_value_idx ON public.metrics (value);", "");
    let planned = {
        let hints = seqmig::diff::Hints::default();
        seqmig::plan::plan(
            &seqmig::parse::load_str("before.sql", before).unwrap().schema,
            &seqmig::parse::load_str("after.sql", &after).unwrap().schema,
            &hints,
            &seqmig::render::Renderer::embedded(),
        )
        .unwrap()
    };
    let plan = &planned.plan;
    let drop = plan.steps.iter().find(|s| s.sql.contains("DROP INDEX")).unwrap();
    let undo = drop.rollback_sql.as_deref().unwrap();
    assert!(!undo.contains("CREATE INDEX metrics_value_idx ON public.metrics "), "{undo}");
    assert!(undo.contains("CREATE INDEX metrics_value_idx ON ONLY public.metrics"), "{undo}");
    assert!(!drop.transactional, "its undo builds concurrently: {drop:?}");
    let back = seqmig::runbook::phase_files(&planned, &seqmig::render::Renderer::embedded())
        .unwrap()
        .into_iter()
        .find(|(p, _, _)| *p == Phase::Contract)
        .map(|(_, _, back)| back)
        .unwrap();
    assert!(!back.contains("BEGIN;"), "{back}");

    let db = TestDb::new();
    db.execute(before);
    db.execute("INSERT INTO public.metrics SELECT g, g % 10 FROM generate_series(1, 3000) g;");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = writer_of(&db, stop.clone(), |n| {
        format!(
            "INSERT INTO public.metrics VALUES ({}, 1); UPDATE public.metrics SET value = value + 1 WHERE id = {};",
            10_000 + n,
            1 + n % 3000
        )
    });
    block_on(async {
        for phase in phases_with_steps(plan) {
            apply(&db, plan, phase).await.unwrap_or_else(|e| panic!("apply {phase}: {e}"));
        }
    });
    // A first run that stopped halfway: a leaf's index built and loose, the other leaf's left
    // INVALID by a failed concurrent build, the parent's index created ON ONLY and invalid.
    // One transaction each: in one, the leaf's SHARE lock held while waiting for the
    // parent's deadlocks with the writer, which locks the parent before the leaf.
    for sql in [
        "CREATE INDEX metrics_a0_value_idx ON public.metrics_a0 (value)",
        "CREATE INDEX metrics_value_idx ON ONLY public.metrics (value)",
        "INSERT INTO public.metrics_b VALUES (5000000, 1), (5000001, 1)",
    ] {
        db.execute(sql);
    }
    let invalid = "CREATE UNIQUE INDEX CONCURRENTLY metrics_b_value_idx ON public.metrics_b (value)";
    let c = block_on(async { db.client().await });
    assert!(block_on(c.batch_execute(invalid)).is_err(), "the duplicate values fail the build");
    drop_client(c);
    psql_file(&db, &back);
    stop.store(true, Ordering::SeqCst);
    assert!(writer.join().unwrap() > 0);
    let state: Vec<(String, bool, bool)> = block_on(async {
        db.client()
            .await
            .query(
                "SELECT c.relname::text, i.indisvalid, c.relname = 'metrics_value_idx' OR EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = c.oid)
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                 WHERE c.relname LIKE 'metrics%value_idx' ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    });
    let names: Vec<&str> = state.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "metrics_a0_value_idx",
            "metrics_a1_value_idx",
            "metrics_a_value_idx",
            "metrics_b_value_idx",
            "metrics_value_idx"
        ],
        "{state:?}"
    );
    assert!(state.iter().all(|(_, valid, attached)| *valid && *attached), "{state:?}");
    let want = live_of(&{
        let reference = TestDb::new();
        reference.execute(before);
        reference
    });
    let got = live_of(&db);
    assert_eq!(got.indexes, want.indexes);
}

fn drop_client(_c: Client) {}
