//! The drift check (issue 18.3): before a phase changes anything, `apply` compares every
//! object its steps touch with the schema the plan was made from, and refuses, naming each
//! drifted object, when the database is not that schema.

use seqmig::diff::Hints;
use seqmig::exec::ExecError;
use seqmig::plan::{Phase, Plan};
use seqmig::render::Renderer;

use crate::exec_examples_tests::{apply, introspect, load, normalize};
use crate::harness::cli::{seqmig, text, write_plan};
use crate::harness::{TestDb, block_on};

const BEFORE: &str = "CREATE TABLE public.orders (
    id bigint PRIMARY KEY,
    price integer NOT NULL,
    note text,
    customer text
);";

/// price becomes bigint (shadow column, dual write, backfill, swap) and note gets an index.
const AFTER: &str = "CREATE TABLE public.orders (
    id bigint PRIMARY KEY,
    price bigint NOT NULL,
    note text,
    customer text
);
CREATE INDEX orders_note_idx ON public.orders USING btree (note);";

const ROWS: &str =
    "INSERT INTO public.orders SELECT g, g, 'n' || g, 'c' || g FROM generate_series(1, 500) g;";

fn plan() -> Plan {
    let before = load("before.sql", BEFORE);
    let after = load("after.sql", AFTER);
    seqmig::plan::plan(&before, &after, &Hints::default(), &Renderer::embedded()).unwrap().plan
}

/// Nothing of the plan reached the database: no ledger row for it, the table as it was.
async fn nothing_changed(db: &TestDb, columns: &[&str]) {
    let c = db.client().await;
    let stored: i64 = c
        .query_one(
            "SELECT CASE WHEN to_regclass('seqmig.plans') IS NULL THEN 0 ELSE (SELECT count(*) FROM seqmig.plans) END",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "a refused plan is not stored");
    let found: Vec<String> = c
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = 'public.orders'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(found, columns);
}

#[test]
fn issue18_3_index_on_other_column_is_refused_before_any_step() {
    let db = TestDb::new();
    db.execute(BEFORE);
    db.execute(ROWS);
    // Someone built the plan's index by hand, on the wrong column.
    db.execute("CREATE INDEX orders_note_idx ON public.orders (customer)");
    let plan = plan();
    let (_dir, path) = write_plan(&plan);
    let out = seqmig(&["apply", "--plan", &path, "--phase", "expand"], &db);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "a drift is a refusal, like the other refusals: {said}");
    assert!(said.contains("not the schema the plan was made from"), "{said}");
    assert!(said.contains("index public.orders_note_idx is 'CREATE INDEX ON public.orders USING btree (customer)', the plan expects 'CREATE INDEX ON public.orders USING btree (note)'"), "{said}");
    assert!(said.contains("nothing was changed"), "{said}");
    block_on(nothing_changed(&db, &["id", "price", "note", "customer"]));
}

#[test]
fn issue18_3_renamed_column_is_refused_before_expand() {
    let db = TestDb::new();
    db.execute(BEFORE);
    db.execute(ROWS);
    db.execute("ALTER TABLE public.orders RENAME COLUMN price TO amount");
    let plan = plan();
    block_on(async {
        let e = apply(&db, &plan, Phase::Expand).await.expect_err("drift");
        let ExecError::Drift { phase, drifts, .. } = &e else { panic!("expected a drift, got {e}") };
        assert_eq!(*phase, Phase::Expand);
        assert!(e.is_refusal());
        let named: Vec<String> = drifts.iter().map(|d| format!("{} {}", d.object, d.problem)).collect();
        assert!(named.contains(&"column public.orders.price does not exist".to_string()), "{named:?}");
        nothing_changed(&db, &["id", "amount", "note", "customer"]).await;
        let c = db.client().await;
        let index: Option<String> =
            c.query_one("SELECT to_regclass('public.orders_note_idx')::text", &[]).await.unwrap().get(0);
        assert_eq!(index, None, "no index was built");
    });
}

#[test]
fn issue18_3_unchanged_database_passes_every_phase() {
    let db = TestDb::new();
    db.execute(BEFORE);
    db.execute(ROWS);
    let plan = plan();
    assert!(
        plan.steps.iter().any(|s| !s.expects.is_empty()),
        "the plan records what it expects: {}",
        plan.to_json_pretty()
    );
    block_on(async {
        for phase in Phase::ALL {
            apply(&db, &plan, phase).await.unwrap_or_else(|e| panic!("{phase}: {e}"));
        }
        let c = db.client().await;
        assert_eq!(introspect(&c).await, normalize(load("after.sql", AFTER)));
    });
}
