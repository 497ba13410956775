//! A view replaced around a change to a column it reads is dropped and created again
//! (`CREATE OR REPLACE VIEW` cannot retype or remove an output column). Run as two steps, two
//! transactions, every query on the view failed in between ("relation does not exist"),
//! for as long as the steps between took, lock waits included. The plan now narrows the
//! window to the steps that must lie inside it and runs a window of catalog-only steps as
//! one step: readers never find the view missing, at switch, its rollback and contract.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use seqmig::plan::Phase;

use crate::exec_examples_tests::{apply, assert_same, normalize, rollback};
use crate::harness::{TestDb, block_on};
use crate::partition2_tests::{live, plan as plan_of, writer_of};

const BEFORE: &str = "
CREATE TABLE public.users (id integer PRIMARY KEY, name text NOT NULL, email text);
CREATE VIEW public.recent_users AS SELECT id, name, email FROM public.users WHERE id > 10;
CREATE VIEW public.user_star AS SELECT u.*, 1 AS one FROM public.users u;
CREATE TABLE public.notes (id integer PRIMARY KEY, body text, draft text);
CREATE VIEW public.all_notes AS SELECT * FROM public.notes;
";

/// `name` changes type (a swap at switch) and `email` goes, under recent_users and a `u.*`
/// view; `draft` goes from under a `SELECT *` view. A `*` binds every column the table has
/// when the view is created, seqmig's shadow and parked columns too, so the recreated views
/// spell it out as the desired columns (the contract's drops would otherwise fail on them).
const AFTER: &str = "
CREATE TABLE public.users (id integer PRIMARY KEY, name character varying(200) NOT NULL);
CREATE VIEW public.recent_users AS SELECT id, name FROM public.users WHERE id > 10;
CREATE VIEW public.user_star AS SELECT u.*, 1 AS one FROM public.users u;
CREATE TABLE public.notes (id integer PRIMARY KEY, body text);
CREATE VIEW public.all_notes AS SELECT * FROM public.notes;
";

const TOML: &str = "
[[transform]]
table = \"public.users\"
column = \"name\"
up = \"left(name, 200)::character varying(200)\"
down = \"name::text\"

[plan]
allow_one_way = [\"public.users.email\", \"public.notes.draft\"]
";

/// Queries `view` in a tight loop on its own connection until stopped; returns (queries,
/// errors, the first error).
fn reader(
    db: &TestDb,
    view: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(i64, i64, String)> {
    let url = db.url.clone();
    std::thread::spawn(move || {
        block_on(async move {
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            let (mut n, mut errors, mut first) = (0i64, 0i64, String::new());
            while !stop.load(Ordering::SeqCst) {
                if let Err(e) = c.query_one(&format!("SELECT count(*) FROM {view}"), &[]).await {
                    errors += 1;
                    if first.is_empty() {
                        first = format!("{e:?}");
                    }
                }
                n += 1;
            }
            (n, errors, first)
        })
    })
}

#[test]
fn a_replaced_view_never_goes_missing_at_switch_its_rollback_or_contract_and_star_views_bind_only_desired_columns()
 {
    let plan = plan_of(BEFORE, AFTER, TOML);
    assert!(!plan.is_blocked(), "{:#?}", plan.findings);
    // The swap of `name` shares the step of the views over it; all_notes, spelled out, need
    // not wait for the drop of `draft`.
    let replacing = |view: &str| {
        plan.steps
            .iter()
            .filter(|s| s.sql.contains(&format!("DROP VIEW public.{view}")))
            .map(|s| (s.phase, s.sql.contains(&format!("CREATE VIEW public.{view}"))))
            .collect::<Vec<_>>()
    };
    assert_eq!(replacing("recent_users"), [(Phase::Switch, true)], "one step at switch");
    assert_eq!(replacing("user_star"), [(Phase::Switch, true)], "one step at switch");
    assert_eq!(replacing("all_notes"), [(Phase::Switch, true)], "one step at switch");

    let db = TestDb::new();
    db.execute(BEFORE);
    db.execute("INSERT INTO public.users SELECT g, 'u' || g, 'e' || g FROM generate_series(1, 500) g");
    db.execute("INSERT INTO public.notes SELECT g, 'b', 'd' FROM generate_series(1, 100) g");
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicI64::new(0));
    let n = next.clone();
    let w = writer_of(&db, stop.clone(), move |_| {
        format!(
            "INSERT INTO public.users (id, name) VALUES ({}, 'w')",
            10_000 + n.fetch_add(1, Ordering::SeqCst)
        )
    });
    let views_before = live(&db).views;
    for phase in [Phase::Expand, Phase::DualWrite, Phase::Backfill] {
        block_on(apply(&db, &plan, phase)).unwrap();
    }
    let readers: Vec<_> = ["public.recent_users", "public.user_star", "public.all_notes"]
        .into_iter()
        .map(|v| reader(&db, v, stop.clone()))
        .collect();
    for _ in 0..3 {
        block_on(apply(&db, &plan, Phase::Switch)).unwrap();
        block_on(rollback(&db, Phase::Switch)).unwrap();
        // Rolled back, each view reads the columns it read before (not a shadow column).
        assert_eq!(live(&db).views, views_before, "switch rolled back: the views as they were");
    }
    block_on(apply(&db, &plan, Phase::Switch)).unwrap();
    block_on(apply(&db, &plan, Phase::Contract)).unwrap();
    stop.store(true, Ordering::SeqCst);
    assert!(w.join().unwrap() > 0);
    for (view, r) in ["recent_users", "user_star", "all_notes"].into_iter().zip(readers) {
        let (queries, errors, first) = r.join().unwrap();
        assert!(queries > 100, "{view}: the reader ran ({queries} queries)");
        assert_eq!(errors, 0, "{view}: {errors} of {queries} queries failed, first: {first}");
    }
    let strip = |mut s: seqmig::model::Schema| {
        s.tables.retain(|n, _| n.schema.as_str() != "seqmig");
        normalize(s)
    };
    let reference = TestDb::new();
    reference.execute(AFTER);
    assert_same(&strip(live(&db)), &strip(live(&reference)), "contracted: the desired schema");
}

/// The book's `replace_view` page quotes example 18's switch step as the planner words it.
#[test]
fn the_replace_view_page_quotes_what_the_planner_says() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations-examples/18-several-dependent-changes");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_seqmig"))
        .args(["plan", "--from", &format!("{dir}/before.sql"), "--to", &format!("{dir}/after.sql")])
        .args(["--config", &format!("{dir}/seqmig.toml")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let quoted =
        "replace public.recent_users in one transaction, so queries on it never find it missing: drop";
    let swap = "swap: name becomes the character varying(200) column";
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/book/src/changes/replace_view.md"))
            .unwrap();
    let flat = page.split_whitespace().collect::<Vec<_>>().join(" ");
    for q in [quoted, swap] {
        assert!(text.contains(q), "the plan says {q:?}:\n{text}");
        assert!(flat.contains(q), "the book quotes {q:?}");
    }
}
