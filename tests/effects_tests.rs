//! Plan format v2 (issue 19): every step carries its typed effects, and a v1 plan that an
//! older seqmig stored in the ledger and left halfway keeps working after the upgrade. The
//! v1 fixtures were written by the seqmig before v2 (`seqmig plan --format json` on
//! migrations-examples 07 and 14) and are stored in the ledger byte for byte as it stored them.

use std::time::Duration;

use seqmig::exec::{ContractGate, PlanSource, Quiet, RetryPolicy, Runner, RunnerOptions};
use seqmig::plan::{Object, Phase, Plan, PlanFileError, Step};

use crate::harness::cli::{seqmig, text};
use crate::harness::{TestDb, block_on};

const V1_RENAME: &str = include_str!("fixtures/plan-v1/07-rename-column.json");
const V1_INDEX: &str = include_str!("fixtures/plan-v1/14-add-and-change-index.json");

fn before(example: &str) -> String {
    std::fs::read_to_string(format!("migrations-examples/{example}/before.sql")).unwrap()
}

fn opts(db: &TestDb) -> RunnerOptions {
    RunnerOptions {
        connection: seqmig::db::ConnectOptions::from_url(&db.url).unwrap(),
        actor: "tester".into(),
        retry: RetryPolicy { lock_timeout: Duration::from_millis(500), budget: Duration::from_secs(60) },
    }
}

async fn apply(db: &TestDb, source: PlanSource, phase: Phase) -> Result<(), String> {
    let mut r = Runner::acquire(opts(db), "apply").await.map_err(|e| e.to_string())?;
    let gate = ContractGate::break_glass("test: the gate is not under test here");
    let out = r.apply(&source, phase, &gate, &mut Quiet).await;
    r.release().await;
    out.map(|_| ()).map_err(|e| e.to_string())
}

async fn rollback(db: &TestDb, phase: Phase) -> Result<(), String> {
    let mut r = Runner::acquire(opts(db), "rollback").await.map_err(|e| e.to_string())?;
    let out = r.rollback(&PlanSource::Active, phase, &mut Quiet).await;
    r.release().await;
    out.map(|_| ()).map_err(|e| e.to_string())
}

fn file(plan: &Plan) -> PlanSource {
    PlanSource::File { plan: Box::new(plan.clone()), path: "plan.json".into() }
}

/// Stores `text` as the plan's ledger row, exactly as the older seqmig wrote it.
async fn store_as_older_seqmig(c: &tokio_postgres::Client, id: &str, text: &str) {
    let n = c
        .execute("UPDATE seqmig.plans SET plan_json = $2::text::json WHERE id = $1", &[&id, &text])
        .await
        .unwrap();
    assert_eq!(n, 1);
}

async fn columns(c: &tokio_postgres::Client, table: &str) -> Vec<String> {
    c.query(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY 1",
        &[&table],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn issue19_1_v1_effects_are_derived_on_load_and_the_id_still_holds() {
    let plan = Plan::from_json(V1_RENAME).unwrap();
    assert!(plan.is_v1());
    assert_eq!(plan.compute_id(), plan.id, "the id of a v1 plan covers its v1 body");
    let contract: Vec<&Object> =
        plan.steps_of(Phase::Contract).into_iter().flat_map(|s| s.effects.removes.iter()).collect();
    assert!(contract.iter().any(|o| o.to_string() == "public.users.name"), "{contract:?}");
    assert!(plan.steps.iter().all(|s| s.backfill.is_some() || !s.effects.statements.is_empty()));
    // Written out again (as the ledger does), it reads back as the same v1 plan.
    assert_eq!(Plan::from_json(&plan.to_json_pretty()).unwrap(), plan);
    let index = Plan::from_json(V1_INDEX).unwrap();
    let build = index.steps.iter().find_map(|s| s.effects.builds_index.clone()).expect("a concurrent build");
    assert_eq!(build.table.to_string(), "public.users");
}

#[test]
fn issue19_2_v1_plan_left_after_switch_is_contracted_and_rolled_back_by_the_new_binary() {
    let db = TestDb::new();
    db.execute(&before("07-rename-column"));
    let plan = Plan::from_json(V1_RENAME).unwrap();
    block_on(async {
        let c = db.client().await;
        for phase in [Phase::Expand, Phase::DualWrite, Phase::Backfill, Phase::Switch] {
            apply(&db, file(&plan), phase).await.unwrap();
        }
        store_as_older_seqmig(&c, &plan.id, V1_RENAME).await;
        // The upgraded binary picks the stored v1 plan up where it was left.
        let status = seqmig(&["status"], &db);
        assert!(status.status.success(), "{}", text(&status));
        assert!(text(&status).contains(plan.short_id()), "{}", text(&status));
        rollback(&db, Phase::Switch).await.unwrap();
        apply(&db, PlanSource::Active, Phase::Switch).await.unwrap();
        apply(&db, PlanSource::Active, Phase::Contract).await.unwrap();
        let cols = columns(&c, "users").await;
        assert!(!cols.contains(&"name".to_string()) && cols.contains(&"full_name".to_string()), "{cols:?}");
        let state: String =
            c.query_one("SELECT state FROM seqmig.plans WHERE id = $1", &[&plan.id]).await.unwrap().get(0);
        assert_eq!(state, "complete");
    });
}

#[test]
fn issue19_2_v1_concurrent_index_plan_applies_and_rolls_back() {
    let db = TestDb::new();
    db.execute(&before("14-add-and-change-index"));
    let plan = Plan::from_json(V1_INDEX).unwrap();
    block_on(async {
        let c = db.client().await;
        let count = "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'";
        let n0: i64 = c.query_one(count, &[]).await.unwrap().get(0);
        apply(&db, file(&plan), Phase::Expand).await.unwrap();
        store_as_older_seqmig(&c, &plan.id, V1_INDEX).await;
        let n1: i64 = c.query_one(count, &[]).await.unwrap().get(0);
        assert!(n1 > n0, "the expand builds indexes concurrently ({n0} → {n1})");
        rollback(&db, Phase::Expand).await.unwrap();
        let n2: i64 = c.query_one(count, &[]).await.unwrap().get(0);
        assert_eq!(n2, n0);
    });
}

#[test]
fn issue19_2_a_newer_plan_format_is_refused_naming_both_versions_and_changes_nothing() {
    let newer = V1_RENAME.replacen("seqmig.plan/v1", "seqmig.plan/v4", 1);
    let err = Plan::from_json(&newer).unwrap_err();
    assert!(matches!(err, PlanFileError::Newer(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("seqmig.plan/v4") && msg.contains("seqmig.plan/v3"), "{msg}");

    let db = TestDb::new();
    db.execute(&before("07-rename-column"));
    let dir = std::env::temp_dir().join(format!("seqmig-newer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("plan.json");
    std::fs::write(&path, &newer).unwrap();
    let out = seqmig(&["apply", "--plan", path.to_str().unwrap(), "--phase", "expand"], &db);
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(shown.contains("seqmig.plan/v4") && shown.contains("seqmig.plan/v3"), "{shown}");
    block_on(async {
        let c = db.client().await;
        let ledger: bool = c.query_one("SELECT to_regnamespace('seqmig') IS NULL", &[]).await.unwrap().get(0);
        assert!(ledger, "no ledger was created");
        let cols = columns(&c, "users").await;
        assert!(cols.contains(&"name".to_string()) && !cols.contains(&"full_name".to_string()), "{cols:?}");

        // A newer plan found in the ledger is refused the same way, before any step runs.
        let plan = Plan::from_json(V1_RENAME).unwrap();
        apply(&db, file(&plan), Phase::Expand).await.unwrap();
        let before_cols = columns(&c, "users").await;
        store_as_older_seqmig(&c, &plan.id, &newer).await;
        let err = apply(&db, PlanSource::Active, Phase::DualWrite).await.unwrap_err();
        assert!(err.contains("seqmig.plan/v4") && err.contains("seqmig.plan/v3"), "{err}");
        assert_eq!(columns(&c, "users").await, before_cols);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// For every example, the old path the gate watches, taken from the planner's typed effects,
/// equals the one v1 read from the contract SQL (less a brownout's parked names, which no
/// release reads); and each concurrent index build v1 found is the one the planner recorded.
#[test]
fn issue19_1_typed_effects_agree_with_what_v1_read_from_the_sql() {
    use seqmig::diff::Hints;
    use seqmig::render::Renderer;
    let mut dirs: Vec<_> = std::fs::read_dir("migrations-examples")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("before.sql").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() > 20);
    for dir in dirs {
        let load = |f: &str| {
            seqmig::parse::load_str(f, &std::fs::read_to_string(dir.join(f)).unwrap()).unwrap().schema
        };
        let toml = dir.join("seqmig.toml");
        let hints = if toml.is_file() { Hints::from_file(&toml).unwrap() } else { Hints::default() };
        let typed =
            seqmig::plan::plan(&load("before.sql"), &load("after.sql"), &hints, &Renderer::embedded())
                .unwrap()
                .plan;
        let mut v1 = typed.clone();
        v1.format = seqmig::plan::PLAN_FORMAT_V1.into();
        for s in &mut v1.steps {
            s.effects = Default::default();
        }
        for c in &mut v1.changes {
            c.relation = None;
        }
        let v1 = Plan::from_json(&v1.seal().to_json_pretty()).unwrap();
        let names = |p: &Plan| -> Vec<String> {
            seqmig::soak::dropped_objects(p)
                .iter()
                .map(ToString::to_string)
                .filter(|o| !o.contains("__seqmig_brownout"))
                .collect()
        };
        assert_eq!(names(&typed), names(&v1), "{}", dir.display());
        // v1 read a relation out of every change's object, a function's too (`public."f()"`,
        // which resolves to nothing); v2 records none for objects that are not relations.
        let v1_tables: Vec<_> =
            seqmig::soak::plan_tables(&v1).into_iter().filter(|q| !q.name.as_str().contains('(')).collect();
        assert_eq!(seqmig::soak::plan_tables(&typed), v1_tables, "{}", dir.display());
        for (a, b) in typed.steps.iter().zip(&v1.steps) {
            assert_eq!(a.effects.statements, b.effects.statements, "{} {}", dir.display(), a.id);
            assert_eq!(a.effects.builds_index, b.effects.builds_index, "{} {}", dir.display(), a.id);
            // v1 read one mode for every relation; v3 may tell them apart (`per_relation`).
            let uniform = |p: &Step| p.effects.lock.as_ref().map(|l| (l.mode, l.relations.clone()));
            assert_eq!(uniform(a), uniform(b), "{} {}", dir.display(), a.id);
        }
    }
}
