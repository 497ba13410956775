//! The executor end to end on real PostgreSQL: lifecycle with writers, rollback from every
//! phase, crash and resume, two runners, lock contention, refusals (issue 6).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use seqmig::exec::{self, ContractGate, ExecError, PlanSource, Quiet, RetryPolicy, Runner, RunnerOptions};
use seqmig::model::{Ident, QualifiedName};
use seqmig::plan::{BackfillSpec, GateSpec, LockMode, Phase, Plan, PlannedChange, Step};

use crate::harness::cli::{seqmig, text, wait_for_running_step, write_plan};
use crate::harness::{TestDb, block_on, commit_after};

// ---------------------------------------------------------------------------------------
// plans built by hand (the planner's examples replace these once they land)

struct S {
    id: &'static str,
    phase: Phase,
    sql: String,
    rollback: Option<String>,
    transactional: bool,
    lock: LockMode,
    backfill: Option<BackfillSpec>,
}

fn s(id: &'static str, phase: Phase, sql: &str, rollback: Option<&str>) -> S {
    S {
        id,
        phase,
        sql: sql.to_string(),
        rollback: rollback.map(str::to_string),
        transactional: true,
        lock: LockMode::AccessExclusive,
        backfill: None,
    }
}

fn build(steps: Vec<S>) -> Plan {
    let change = PlannedChange {
        relation: None,
        id: "c1".into(),
        kind: "rename_column".into(),
        object: "public.users.name".into(),
        one_way: true,
        summary: "test change".into(),
    };
    let steps = steps
        .into_iter()
        .map(|s| Step {
            one_way: s.rollback.is_none() && s.phase == Phase::Contract,
            rollback_sql: s.rollback,
            transactional: s.transactional,
            backfill: s.backfill,
            ..Step::new(s.id, "c1", s.phase, &s.sql, s.lock, "public.users")
        })
        .collect();
    Plan::assemble(vec![change], steps, vec![], GateSpec::default())
}

const BEFORE: &str = "CREATE TABLE public.users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text
);
INSERT INTO public.users (name) SELECT 'seed-' || g FROM generate_series(1, 3000) g;";

const AFTER: &str = "CREATE TABLE public.users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    full_name text
);";

const DUAL_WRITE: &str = r#"CREATE FUNCTION public.users_sync_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('seqmig.backfill', true) = 'on' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.full_name IS NULL THEN
            NEW.full_name := NEW.name;
        ELSIF NEW.name IS NULL THEN
            NEW.name := NEW.full_name;
        ELSIF NEW.name IS DISTINCT FROM NEW.full_name THEN
            IF seqmig.flag('c1') = 'new' THEN NEW.name := NEW.full_name; ELSE NEW.full_name := NEW.name; END IF;
        END IF;
    ELSE
        IF NEW.name IS DISTINCT FROM OLD.name AND NEW.full_name IS NOT DISTINCT FROM OLD.full_name THEN
            NEW.full_name := NEW.name;
        ELSIF NEW.full_name IS DISTINCT FROM OLD.full_name AND NEW.name IS NOT DISTINCT FROM OLD.name THEN
            NEW.name := NEW.full_name;
        ELSIF NEW.name IS DISTINCT FROM NEW.full_name THEN
            IF seqmig.flag('c1') = 'new' THEN NEW.name := NEW.full_name; ELSE NEW.full_name := NEW.name; END IF;
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_sync_name BEFORE INSERT OR UPDATE ON public.users
    FOR EACH ROW EXECUTE FUNCTION public.users_sync_name();"#;

/// users.name → users.full_name, every phase.
fn rename_plan() -> Plan {
    build(vec![
        s(
            "s1",
            Phase::Expand,
            "ALTER TABLE public.users ADD COLUMN full_name text",
            Some("ALTER TABLE public.users DROP COLUMN full_name"),
        ),
        s(
            "s2",
            Phase::DualWrite,
            DUAL_WRITE,
            Some("DROP TRIGGER users_sync_name ON public.users; DROP FUNCTION public.users_sync_name()"),
        ),
        S {
            backfill: Some(BackfillSpec {
                table: QualifiedName::of("public", "users"),
                target_column: Ident::exact("full_name").unwrap(),
                expr: "name".into(),
                pending_predicate: "full_name IS DISTINCT FROM name".into(),
            }),
            lock: LockMode::RowExclusive,
            ..s("s3", Phase::Backfill, "-- copy name into full_name in batches", None)
        },
        s(
            "s4",
            Phase::Switch,
            "INSERT INTO seqmig.flags (name, authority) VALUES ('c1', 'new')
             ON CONFLICT (name) DO UPDATE SET authority = 'new', updated_at = now()",
            Some("UPDATE seqmig.flags SET authority = 'old', updated_at = now() WHERE name = 'c1'"),
        ),
        s(
            "s5",
            Phase::Contract,
            "DROP TRIGGER users_sync_name ON public.users; DROP FUNCTION public.users_sync_name();
             ALTER TABLE public.users DROP COLUMN name; DELETE FROM seqmig.flags WHERE name = 'c1'",
            None,
        ),
    ])
}

// ---------------------------------------------------------------------------------------
// helpers

/// One step: `CREATE INDEX CONCURRENTLY users_name_idx` in expand.
fn concurrent_index_plan() -> Plan {
    build(vec![S {
        transactional: false,
        lock: LockMode::ShareUpdateExclusive,
        ..s(
            "s1",
            Phase::Expand,
            "CREATE INDEX CONCURRENTLY users_name_idx ON public.users (name)",
            Some("DROP INDEX CONCURRENTLY IF EXISTS public.users_name_idx"),
        )
    }])
}

/// A session holding an open write transaction on `public.users`: a concurrent index build
/// creates its catalog entry, then waits for it. `COMMIT` on the client ends it.
async fn open_write_transaction(db: &TestDb) -> tokio_postgres::Client {
    let (holder, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    holder.batch_execute("BEGIN; UPDATE public.users SET name = name WHERE id = 1").await.unwrap();
    holder
}

fn opts(db: &TestDb, actor: &str) -> RunnerOptions {
    RunnerOptions {
        connection: seqmig::db::ConnectOptions::from_url(&db.url).unwrap(),
        actor: actor.into(),
        retry: RetryPolicy { lock_timeout: Duration::from_millis(500), budget: Duration::from_secs(60) },
    }
}

async fn apply(db: &TestDb, plan: &Plan, phase: Phase) -> Result<exec::PhaseReport, ExecError> {
    let mut r = Runner::acquire(opts(db, "tester"), "apply").await?;
    let gate = ContractGate::break_glass("test: gate not under test here");
    let out = r
        .apply(
            &PlanSource::File { plan: Box::new(plan.clone()), path: "plan.json".into() },
            phase,
            &gate,
            &mut Quiet,
        )
        .await;
    r.release().await;
    out
}

async fn rollback(db: &TestDb, phase: Phase) -> Result<exec::PhaseReport, ExecError> {
    let mut r = Runner::acquire(opts(db, "tester"), "rollback").await?;
    let out = r.rollback(&PlanSource::Active, phase, &mut Quiet).await;
    r.release().await;
    out
}

/// Columns, triggers, functions and indexes of schema public: equal fingerprints mean the
/// same shape for these tests.
async fn fingerprint(c: &tokio_postgres::Client) -> Vec<String> {
    let rows = c
        .query(
            "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
               FROM information_schema.columns WHERE table_schema = 'public'
             UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger
               WHERE NOT tgisinternal AND tgrelid::regclass::text NOT LIKE 'seqmig.%'
             UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
             UNION ALL SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// Writes through the old shape (`name`) or the new one (`full_name`) until stopped, and
/// remembers what every touched row must hold.
struct Writer {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<BTreeMap<i64, String>>,
}

fn start_writer(db: &TestDb, new_shape: bool, tag: &str) -> Writer {
    let tag = tag.to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let url = db.url.clone();
    let flag = stop.clone();
    let handle = tokio::spawn(async move {
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let col = if new_shape { "full_name" } else { "name" };
        let mut expected = BTreeMap::new();
        let mut n = 0i64;
        while !flag.load(Ordering::SeqCst) || n < 5 {
            n += 1;
            let v = format!("{tag}-ins-{n}");
            let id: i64 = c
                .query_one(&format!("INSERT INTO public.users ({col}) VALUES ($1) RETURNING id"), &[&v])
                .await
                .unwrap()
                .get(0);
            expected.insert(id, v);
            let target = (n * 37) % 3000 + 1;
            let u = format!("{tag}-upd-{n}");
            c.execute(&format!("UPDATE public.users SET {col} = $1 WHERE id = $2"), &[&u, &target])
                .await
                .unwrap();
            expected.insert(target, u);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        expected
    });
    Writer { stop, handle }
}

impl Writer {
    async fn finish(self) -> BTreeMap<i64, String> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.await.unwrap()
    }
}

async fn values(c: &tokio_postgres::Client, col: &str) -> BTreeMap<i64, Option<String>> {
    c.query(&format!("SELECT id, {col} FROM public.users"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Every row holds the seed value unless a writer changed it last.
fn check_rows(actual: &BTreeMap<i64, Option<String>>, written: &BTreeMap<i64, String>) {
    for (id, v) in actual {
        let want = written.get(id).cloned().unwrap_or_else(|| format!("seed-{id}"));
        assert_eq!(v.as_deref(), Some(want.as_str()), "row {id}");
    }
    for id in written.keys() {
        assert!(actual.contains_key(id), "row {id} written during the transition is missing");
    }
}

// ---------------------------------------------------------------------------------------
// tests

#[test]
fn lifecycle_rename_column_with_writers_through_both_shapes() {
    let db = TestDb::new();
    db.execute(BEFORE);
    let after = TestDb::new();
    after.execute(AFTER);
    let plan = rename_plan();
    block_on(async {
        let c = db.client().await;
        let mut written = BTreeMap::new();
        for phase in Phase::ALL {
            if phase != Phase::Contract {
                // N-1 keeps writing the old shape while every phase up to switch applies.
                let w = start_writer(&db, false, phase.as_str());
                let report = apply(&db, &plan, phase).await.unwrap_or_else(|e| panic!("{phase}: {e}"));
                assert_eq!(report.phase, phase);
                written.extend(w.finish().await);
            } else {
                // After switch N writes the new shape; it must be the only writer before contract.
                let w = start_writer(&db, true, "new");
                tokio::time::sleep(Duration::from_millis(300)).await;
                written.extend(w.finish().await);
                apply(&db, &plan, phase).await.unwrap();
            }
        }
        // End state: the new shape only, every row with its expected value.
        let fp = fingerprint(&c).await;
        assert!(fp.contains(&"column users.full_name text YES".to_string()), "{fp:?}");
        assert!(!fp.iter().any(|f| f.starts_with("column users.name")), "{fp:?}");
        assert!(!fp.iter().any(|f| f.starts_with("trigger") || f.starts_with("function")), "{fp:?}");
        check_rows(&values(&c, "full_name").await, &written);
        // And it equals a database built directly in the new shape.
        let want = {
            let (c2, conn) = tokio_postgres::connect(&after.url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            seqmig::introspect::introspect(&c2).await.unwrap()
        };
        let got = seqmig::introspect::introspect(&c).await.unwrap();
        assert_eq!(got, want);
        // … which is also the model of the desired schema as written.
        let model = seqmig::parse::load_str("after.sql", AFTER).unwrap().schema;
        // (Owners are not in the DDL; the database has them.)
        let mut got = got;
        got.owners.clear();
        assert_eq!(got, model);
        let state: String = c.query_one("SELECT state FROM seqmig.plans", &[]).await.unwrap().get(0);
        assert_eq!(state, "complete");
        // Status shows the backfill the engine ran, verified.
        let json: serde_json::Value =
            serde_json::from_slice(&seqmig(&["status", "--format", "json"], &db).stdout).unwrap();
        let bf = &json["plans"][0]["backfills"][0];
        assert_eq!((bf["step_id"].as_str(), bf["state"].as_str()), (Some("s3"), Some("done")), "{json}");
        assert_eq!(bf["verify_mismatches"], 0, "{json}");
        let status = text(&seqmig(&["status"], &db));
        assert!(status.contains("backfill s3 on public.users: done"), "{status}");
        // Applying again is a no-op: every step is skipped.
        let again = apply(&db, &plan, Phase::Expand).await.unwrap();
        assert!(again.ran.is_empty());
    });
}

#[test]
fn rollback_from_every_phase_before_contract_restores_schema_and_data() {
    for last in [Phase::Expand, Phase::DualWrite, Phase::Backfill, Phase::Switch] {
        let db = TestDb::new();
        db.execute(BEFORE);
        let plan = rename_plan();
        block_on(async {
            let c = db.client().await;
            let before = fingerprint(&c).await;
            let before_model = seqmig::introspect::introspect(&c).await.unwrap();
            let mut written = BTreeMap::new();
            for phase in Phase::ALL.into_iter().filter(|p| *p <= last) {
                let w = start_writer(&db, false, "old");
                apply(&db, &plan, phase).await.unwrap_or_else(|e| panic!("apply {phase}: {e}"));
                written.extend(w.finish().await);
            }
            if last == Phase::Switch {
                // N writes the new shape after switch; the triggers keep the old one current.
                let w = start_writer(&db, true, "new");
                tokio::time::sleep(Duration::from_millis(200)).await;
                written.extend(w.finish().await);
            }
            // Only the last applied phase can be undone.
            if last > Phase::Expand {
                let err = rollback(&db, Phase::Expand).await.unwrap_err();
                assert!(err.is_refusal(), "{err}");
                assert!(err.to_string().contains("seqmig rollback --phase"), "{err}");
            }
            for phase in Phase::ALL.into_iter().filter(|p| *p <= last).rev() {
                // Rolling back returns to N-1, which writes the old shape.
                let w = start_writer(&db, false, phase.as_str());
                rollback(&db, phase).await.unwrap_or_else(|e| panic!("rollback {phase} (from {last}): {e}"));
                let got = w.finish().await;
                written.extend(got);
            }
            assert_eq!(fingerprint(&c).await, before, "schema after rolling back from {last}");
            assert_eq!(seqmig::introspect::introspect(&c).await.unwrap(), before_model, "from {last}");
            check_rows(&values(&c, "name").await, &written);
            let state: String = c.query_one("SELECT state FROM seqmig.plans", &[]).await.unwrap().get(0);
            assert_eq!(state, "rolled_back");
            let flag: String = c.query_one("SELECT seqmig.flag('c1')", &[]).await.unwrap().get(0);
            assert_eq!(flag, "old");
        });
    }
}

#[test]
fn contract_cannot_be_rolled_back_and_needs_the_gate() {
    let db = TestDb::new();
    db.execute(BEFORE);
    let plan = rename_plan();
    block_on(async {
        for phase in [Phase::Expand, Phase::DualWrite, Phase::Backfill, Phase::Switch] {
            apply(&db, &plan, phase).await.unwrap();
        }
        // Without break-glass the gate is closed.
        let mut r = Runner::acquire(opts(&db, "tester"), "apply").await.unwrap();
        let err = r
            .apply(&PlanSource::Active, Phase::Contract, &ContractGate::evidence(), &mut Quiet)
            .await
            .unwrap_err();
        r.release().await;
        assert!(matches!(err, ExecError::GateClosed { .. }), "{err}");
        apply(&db, &plan, Phase::Contract).await.unwrap();
        let err = rollback(&db, Phase::Contract).await.unwrap_err();
        assert!(err.to_string().contains("one-way"), "{err}");
        let err = rollback(&db, Phase::Switch).await.unwrap_err();
        assert!(err.is_refusal(), "{err}");
        // The break-glass is on record and status shows it.
        let out = seqmig(&["status"], &db);
        assert!(text(&out).contains("BREAK-GLASS by tester"), "{}", text(&out));
    });
}

#[test]
fn tampered_plan_and_out_of_order_phase_are_refused_and_change_nothing() {
    let db = TestDb::new();
    db.execute(BEFORE);
    let plan = rename_plan();
    let (_dir, path) = write_plan(&plan);
    let tampered = std::fs::read_to_string(&path)
        .unwrap()
        .replace("ADD COLUMN full_name text", "ADD COLUMN full_name int");
    std::fs::write(&path, tampered).unwrap();
    let before = block_on(async { fingerprint(&db.client().await).await });

    let out = seqmig(&["apply", "--plan", &path, "--phase", "expand"], &db);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("edited after planning"), "{}", text(&out));
    let has_ledger: bool = block_on(async {
        db.client().await.query_one("SELECT to_regnamespace('seqmig') IS NOT NULL", &[]).await.unwrap().get(0)
    });
    assert!(!has_ledger, "a refused plan file must not even create the ledger");

    let (_dir2, path) = write_plan(&plan);
    let out = seqmig(&["apply", "--plan", &path, "--phase", "backfill"], &db);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("run 'seqmig apply --phase expand --plan {path}' first")),
        "{}",
        text(&out)
    );
    block_on(async {
        let c = db.client().await;
        assert_eq!(fingerprint(&c).await, before);
        let n: i64 = c.query_one("SELECT count(*) FROM seqmig.plans", &[]).await.unwrap().get(0);
        assert_eq!(n, 0, "an out-of-order apply stores nothing");
        let n: i64 = c.query_one("SELECT count(*) FROM seqmig.step_runs", &[]).await.unwrap().get(0);
        assert_eq!(n, 0);
    });

    // A plan with blocking findings is never applied.
    let mut blocked = plan.clone();
    blocked.findings.push(seqmig::finding::Finding::error(
        seqmig::finding::FindingCode::AmbiguousRename,
        "public.users",
        "drop + add",
    ));
    let (_dir4, blocked_path) = write_plan(&blocked.seal());
    let out = seqmig(&["apply", "--plan", &blocked_path, "--phase", "expand"], &db);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("blocking findings (ambiguous-rename)"), "{}", text(&out));

    // Dry run prints the SQL and changes nothing either.
    let out = seqmig(&["apply", "--plan", &path, "--phase", "expand", "--dry-run"], &db);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("ALTER TABLE public.users ADD COLUMN full_name text"), "{}", text(&out));
    block_on(async { assert_eq!(fingerprint(&db.client().await).await, before) });

    // A different plan on the same objects while this one is active is refused (issue 20:
    // both name public.users).
    let out = seqmig(&["apply", "--plan", &path, "--phase", "expand"], &db);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let other = build(vec![s(
        "x1",
        Phase::Expand,
        "CREATE TABLE public.other (id int)",
        Some("DROP TABLE public.other"),
    )]);
    let (_dir3, other_path) = write_plan(&other);
    let out = seqmig(&["apply", "--plan", &other_path, "--phase", "expand"], &db);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("(in flight, through expand) also changes"), "{}", text(&out));
}

/// A plan whose second expand step takes a few seconds, to be caught in the middle.
fn slow_plan(seconds: u32) -> Plan {
    build(vec![
        s(
            "s1",
            Phase::Expand,
            "ALTER TABLE public.users ADD COLUMN a int",
            Some("ALTER TABLE public.users DROP COLUMN a"),
        ),
        s(
            "s2",
            Phase::Expand,
            &format!("SELECT pg_sleep({seconds}); ALTER TABLE public.users ADD COLUMN b int"),
            Some("ALTER TABLE public.users DROP COLUMN b"),
        ),
        s(
            "s3",
            Phase::Expand,
            "ALTER TABLE public.users ADD COLUMN c int",
            Some("ALTER TABLE public.users DROP COLUMN c"),
        ),
    ])
}

#[test]
fn killed_mid_phase_status_explains_and_apply_finishes() {
    let db = TestDb::new();
    db.execute(BEFORE);
    let plan = slow_plan(5);
    let (_dir, path) = write_plan(&plan);
    let reference = TestDb::new();
    reference.execute(BEFORE);
    block_on(async {
        let c = db.client().await;
        let mut child = Command::new(env!("CARGO_BIN_EXE_seqmig"))
            .args(["apply", "--plan", &path, "--phase", "expand", "--actor", "crashy"])
            .env("DATABASE_URL", &db.url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_running_step(&c, "s2").await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        // The orphaned backend notices its client is gone (client_connection_check_interval)
        // and ends; status then calls the step interrupted.
        let t0 = Instant::now();
        let status = loop {
            let out = seqmig(&["status"], &db);
            let t = text(&out);
            if t.contains("INTERRUPTED") {
                break t;
            }
            assert!(t0.elapsed() < Duration::from_secs(15), "never reported interrupted:\n{t}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let released_after = t0.elapsed();
        assert!(status.contains("interrupted at step s2"), "{status}");
        assert!(status.contains("next: seqmig apply --phase expand"), "{status}");
        let json = seqmig(&["status", "--format", "json"], &db);
        let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(v["plans"][0]["phases"][0]["state"], "interrupted");
        assert_eq!(v["plans"][0]["phases"][0]["steps"][0]["state"], "done");
        assert_eq!(v["plans"][0]["phases"][0]["steps"][1]["state"], "interrupted");

        // The killed transaction left nothing of s2 behind.
        let cols = fingerprint(&c).await;
        assert!(cols.contains(&"column users.a integer YES".into()));
        assert!(!cols.iter().any(|f| f.starts_with("column users.b")), "{cols:?}");

        let out = seqmig(&["apply", "--phase", "expand"], &db);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("s1 skipped: already done"), "{}", text(&out));

        // Same end state as an uninterrupted run.
        apply(&reference, &plan, Phase::Expand).await.unwrap();
        assert_eq!(fingerprint(&c).await, fingerprint(&reference.client().await).await);
        let ok: i64 = c
            .query_one("SELECT count(*) FROM seqmig.step_runs WHERE outcome = 'ok' AND action = 'apply'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(ok, 3, "each step recorded done exactly once");
        eprintln!("runner lock released {} ms after SIGKILL", released_after.as_millis());
    });
}

#[test]
fn two_concurrent_applies_one_proceeds_the_other_names_the_holder() {
    let db = TestDb::new();
    db.execute(BEFORE);
    let plan = slow_plan(2);
    let (_dir, path) = write_plan(&plan);
    block_on(async {
        let c = db.client().await;
        let first = Command::new(env!("CARGO_BIN_EXE_seqmig"))
            .args(["apply", "--plan", &path, "--phase", "expand", "--actor", "alice"])
            .env("DATABASE_URL", &db.url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_running_step(&c, "s2").await;
        let second = Command::new(env!("CARGO_BIN_EXE_seqmig"))
            .args(["apply", "--plan", &path, "--phase", "expand", "--actor", "bob"])
            .env("DATABASE_URL", &db.url)
            .output()
            .unwrap();
        assert_eq!(second.status.code(), Some(1), "{}", text(&second));
        let msg = text(&second);
        assert!(msg.contains("another seqmig runner holds this database"), "{msg}");
        assert!(msg.contains("actor 'alice'") && msg.contains("pid ") && msg.contains("seqmig/"), "{msg}");
        let first = first.wait_with_output().unwrap();
        assert_eq!(first.status.code(), Some(0), "{}", text(&first));
        // The ledger is consistent: one apply phase run, three ok steps, nothing else.
        let rows =
            c.query("SELECT step_id, outcome, actor FROM seqmig.step_runs ORDER BY id", &[]).await.unwrap();
        let got: Vec<(String, String, String)> =
            rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
        assert_eq!(
            got,
            vec![
                ("s1".into(), "ok".into(), "alice".into()),
                ("s2".into(), "ok".into(), "alice".into()),
                ("s3".into(), "ok".into(), "alice".into())
            ]
        );
        let runs: i64 = c.query_one("SELECT count(*) FROM seqmig.phase_runs", &[]).await.unwrap().get(0);
        assert_eq!(runs, 1);
    });
}

#[test]
fn lock_contention_retries_reports_the_blocker_and_readers_wait_at_most_lock_timeout() {
    let db = TestDb::new();
    db.execute(BEFORE);
    let plan = build(vec![s(
        "s1",
        Phase::Expand,
        "ALTER TABLE public.users ADD COLUMN full_name text",
        Some("ALTER TABLE public.users DROP COLUMN full_name"),
    )]);
    let (_dir, path) = write_plan(&plan);
    let lock_timeout_ms = 200u64;
    block_on(async {
        // Session A: an open transaction that read the table (ACCESS SHARE held).
        let mut config: tokio_postgres::Config = db.url.parse().unwrap();
        let (holder, conn) =
            config.application_name("long-report").connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        holder.batch_execute("BEGIN; SELECT count(*) FROM public.users").await.unwrap();
        let holder_pid: i32 = holder.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);

        // Session C: reads in a loop, timing each.
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (url, stop) = (db.url.clone(), stop.clone());
            tokio::spawn(async move {
                let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                let (mut max, mut n) = (Duration::ZERO, 0u32);
                while !stop.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    c.query_one("SELECT count(*) FROM public.users WHERE id < 100", &[]).await.unwrap();
                    max = max.max(t.elapsed());
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (max, n)
            })
        };

        let lt = lock_timeout_ms.to_string();
        let url = db.url.clone();
        let p = path.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_seqmig"))
                .args([
                    "apply",
                    "--plan",
                    &p,
                    "--phase",
                    "expand",
                    "--lock-timeout",
                    &lt,
                    "--retry-budget",
                    "4s",
                ])
                .env("DATABASE_URL", &url)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        stop.store(true, Ordering::SeqCst);
        let (max_blocked, reads) = reader.await.unwrap();
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{msg}");
        assert!(msg.contains("gave up on step s1"), "{msg}");
        assert!(msg.contains(&format!("pid {holder_pid} (application 'long-report'")), "{msg}");
        assert!(msg.contains("transaction open"), "{msg}");
        assert!(msg.contains("attempt 2 hit lock_timeout"), "retries are visible:\n{msg}");
        eprintln!(
            "lock contention: reader max blocked {} ms over {reads} reads (lock_timeout {lock_timeout_ms} ms)",
            max_blocked.as_millis()
        );
        assert!(
            max_blocked <= Duration::from_millis(lock_timeout_ms + 100),
            "a reader waited {} ms behind the DDL",
            max_blocked.as_millis()
        );
        let c = db.client().await;
        let (outcome, attempts, sqlstate): (String, i32, Option<String>) = {
            let r =
                c.query_one("SELECT outcome, attempts, sqlstate FROM seqmig.step_runs", &[]).await.unwrap();
            (r.get(0), r.get(1), r.get(2))
        };
        assert_eq!((outcome.as_str(), sqlstate.as_deref()), ("failed", Some("55P03")));
        assert!(attempts >= 3, "{attempts}");
        let status = text(&seqmig(&["status"], &db));
        assert!(
            status.contains("FAILED") && status.contains("next: seqmig apply --phase expand"),
            "{status}"
        );

        // Once the blocker commits, the retry goes through.
        let release = commit_after(holder, 700);
        let url = db.url.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_seqmig"))
                .args(["apply", "--phase", "expand", "--lock-timeout", "200", "--retry-budget", "30s"])
                .env("DATABASE_URL", &url)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        release.await.unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("attempts)"), "{}", text(&out));
    });
}

#[test]
fn concurrent_index_build_cleans_up_an_invalid_index_before_retrying() {
    let db = TestDb::new();
    db.execute(BEFORE);
    let plan = concurrent_index_plan();
    block_on(async {
        // A writer's open transaction makes the build wait after its catalog entry exists,
        // so the first attempts time out and leave an INVALID index behind.
        let holder = open_write_transaction(&db).await;
        let release = commit_after(holder, 1500);
        let mut events = Collect::default();
        let mut r = Runner::acquire(
            RunnerOptions {
                connection: seqmig::db::ConnectOptions::from_url(&db.url).unwrap(),
                actor: "tester".into(),
                retry: RetryPolicy {
                    lock_timeout: Duration::from_millis(200),
                    budget: Duration::from_secs(30),
                },
            },
            "apply",
        )
        .await
        .unwrap();
        r.apply(
            &PlanSource::File { plan: Box::new(plan.clone()), path: "plan.json".into() },
            Phase::Expand,
            &ContractGate::evidence(),
            &mut events,
        )
        .await
        .unwrap();
        r.release().await;
        release.await.unwrap();
        assert!(events.0.iter().any(|e| e.starts_with("dropped invalid")), "{:?}", events.0);
        let c = db.client().await;
        let valid: bool = c
            .query_one(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.users_name_idx'::regclass",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(valid);
        rollback(&db, Phase::Expand).await.unwrap();
        assert!(!fingerprint(&c).await.iter().any(|f| f.contains("users_name_idx")));
    });
}

#[derive(Default)]
struct Collect(Vec<String>);

impl exec::Reporter for Collect {
    fn report(&mut self, e: &exec::Event<'_>) {
        match e {
            exec::Event::DroppedInvalidIndex { index, .. } => self.0.push(format!("dropped invalid {index}")),
            exec::Event::Retrying { attempt, .. } => self.0.push(format!("retry {attempt}")),
            _ => {}
        }
    }
}

#[test]
fn ledger_is_versioned_and_upgrades_once() {
    let db = TestDb::new();
    block_on(async {
        let c = db.client().await;
        assert_eq!(seqmig::ledger::ensure(&c).await.unwrap(), 0);
        assert_eq!(seqmig::ledger::ensure(&c).await.unwrap(), seqmig::ledger::current_version());
        let versions: Vec<i32> = c
            .query("SELECT version FROM seqmig.ledger_version ORDER BY version", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, (1..=seqmig::ledger::current_version()).collect::<Vec<_>>());
        let flag: String = c.query_one("SELECT seqmig.flag('missing')", &[]).await.unwrap().get(0);
        assert_eq!(flag, "old");
        c.batch_execute("INSERT INTO seqmig.flags (name, authority) VALUES ('c9', 'new')").await.unwrap();
        let flag: String = c.query_one("SELECT seqmig.flag('c9')", &[]).await.unwrap().get(0);
        assert_eq!(flag, "new");
        assert!(
            c.batch_execute("INSERT INTO seqmig.flags (name, authority) VALUES ('c8', 'maybe')")
                .await
                .is_err()
        );
    });
}

#[test]
fn a_failed_step_blocks_the_next_phase_and_its_phase_can_be_rolled_back() {
    let db = TestDb::new();
    db.execute(BEFORE);
    let plan = build(vec![
        s(
            "s1",
            Phase::Expand,
            "ALTER TABLE public.users ADD COLUMN a int",
            Some("ALTER TABLE public.users DROP COLUMN a"),
        ),
        s(
            "s2",
            Phase::Expand,
            "ALTER TABLE public.users ADD COLUMN a int",
            Some("ALTER TABLE public.users DROP COLUMN a"),
        ),
        s(
            "s3",
            Phase::Switch,
            "INSERT INTO seqmig.flags VALUES ('c1', 'new')",
            Some("DELETE FROM seqmig.flags WHERE name = 'c1'"),
        ),
    ]);
    let (_dir, path) = write_plan(&plan);
    let before = block_on(async { fingerprint(&db.client().await).await });

    let out = seqmig(&["apply", "--plan", &path, "--phase", "expand"], &db);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains("step s2 (expand) failed with SQLSTATE 42701"), "{msg}");
    assert!(msg.contains("already done in this run: s1"), "{msg}");

    let out = seqmig(&["apply", "--phase", "switch"], &db);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("is not complete (failed); run 'seqmig apply --phase expand' first"),
        "{}",
        text(&out)
    );

    let status = text(&seqmig(&["status"], &db));
    assert!(status.contains("FAILED") && status.contains("[42701]"), "{status}");
    let json: serde_json::Value =
        serde_json::from_slice(&seqmig(&["status", "--format", "json"], &db).stdout).unwrap();
    assert_eq!(json["plans"][0]["next"], "seqmig apply --phase expand");
    assert_eq!(json["plans"][0]["phases"][0]["steps"][1]["sqlstate"], "42701");

    // Undo the partial phase, naming the plan by a prefix of its id.
    let prefix = &plan.short_id()[..8];
    let out = seqmig(&["rollback", "--phase", "expand", "--plan-id", prefix], &db);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1 step undone"), "{}", text(&out));
    block_on(async { assert_eq!(fingerprint(&db.client().await).await, before) });
}

#[test]
fn killed_during_a_concurrent_index_build_resumes_by_dropping_the_invalid_index() {
    let db = TestDb::new();
    db.execute(BEFORE);
    let plan = concurrent_index_plan();
    let (_dir, path) = write_plan(&plan);
    block_on(async {
        let c = db.client().await;
        // An open write transaction: the build creates its catalog entry, then waits for it.
        let holder = open_write_transaction(&db).await;
        let mut child = Command::new(env!("CARGO_BIN_EXE_seqmig"))
            .args(["apply", "--plan", &path, "--phase", "expand", "--lock-timeout", "30000"])
            .env("DATABASE_URL", &db.url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_running_step(&c, "s1").await;
        // Wait until the build is waiting, with its INVALID index in the catalog.
        let t0 = Instant::now();
        loop {
            let n: i64 = c
                .query_one("SELECT count(*) FROM pg_class WHERE relname = 'users_name_idx'", &[])
                .await
                .unwrap()
                .get(0);
            if n == 1 {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "the build never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // The orphaned backend notices its client is gone while still waiting, and ends.
        let t0 = Instant::now();
        loop {
            let t = text(&seqmig(&["status"], &db));
            if t.contains("INTERRUPTED") {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(15), "never reported interrupted:\n{t}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        holder.batch_execute("COMMIT").await.unwrap();
        let valid: bool = c
            .query_one(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.users_name_idx'::regclass",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(!valid, "the killed build leaves an INVALID index");

        let out = seqmig(&["apply", "--phase", "expand"], &db);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("dropped invalid index public.users_name_idx"), "{}", text(&out));
        let valid: bool = c
            .query_one(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.users_name_idx'::regclass",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(valid);
    });
}

// A same-name type change: orders.amount integer → bigint through a shadow column whose
// name is swapped at switch, in one transaction with the trigger's new body.

const ORDERS_BEFORE: &str = "CREATE TABLE public.orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    amount integer
);
INSERT INTO public.orders (amount) SELECT g FROM generate_series(1, 3000) g;";

const ORDERS_AFTER: &str = "CREATE TABLE public.orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    amount bigint
);";

/// The sync trigger body between `old` (integer) and `new` (bigint) columns.
fn amount_sync(old: &str, new: &str) -> String {
    format!(
        r#"CREATE OR REPLACE FUNCTION public.orders_sync_amount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('seqmig.backfill', true) = 'on' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.{new} IS NULL THEN NEW.{new} := NEW.{old}::bigint;
        ELSIF NEW.{old} IS NULL THEN NEW.{old} := NEW.{new}::integer;
        END IF;
    ELSIF NEW.{old} IS DISTINCT FROM OLD.{old} AND NEW.{new} IS NOT DISTINCT FROM OLD.{new} THEN
        NEW.{new} := NEW.{old}::bigint;
    ELSIF NEW.{new} IS DISTINCT FROM OLD.{new} AND NEW.{old} IS NOT DISTINCT FROM OLD.{old} THEN
        NEW.{old} := NEW.{new}::integer;
    END IF;
    RETURN NEW;
END $$;"#
    )
}

fn type_change_plan() -> Plan {
    let mut steps = vec![
        s(
            "s1",
            Phase::Expand,
            "ALTER TABLE public.orders ADD COLUMN amount_new bigint",
            Some("ALTER TABLE public.orders DROP COLUMN amount_new"),
        ),
        s(
            "s2",
            Phase::DualWrite,
            &format!(
                "{}\nCREATE TRIGGER orders_sync_amount BEFORE INSERT OR UPDATE ON public.orders
                 FOR EACH ROW EXECUTE FUNCTION public.orders_sync_amount()",
                amount_sync("amount", "amount_new")
            ),
            Some(
                "DROP TRIGGER orders_sync_amount ON public.orders; DROP FUNCTION public.orders_sync_amount()",
            ),
        ),
        S {
            backfill: Some(BackfillSpec {
                table: QualifiedName::of("public", "orders"),
                target_column: Ident::exact("amount_new").unwrap(),
                expr: "amount::bigint".into(),
                pending_predicate: "amount_new IS DISTINCT FROM amount::bigint".into(),
            }),
            lock: LockMode::RowExclusive,
            ..s("s3", Phase::Backfill, "-- copy amount into amount_new in batches", None)
        },
    ];
    // Switch: amount (int) → amount_old, amount_new (bigint) → amount; the trigger follows.
    let forward = format!(
        "ALTER TABLE public.orders RENAME COLUMN amount TO amount_old;
         ALTER TABLE public.orders RENAME COLUMN amount_new TO amount;
         {}
         INSERT INTO seqmig.flags (name, authority) VALUES ('c1', 'new')
         ON CONFLICT (name) DO UPDATE SET authority = 'new', updated_at = now()",
        amount_sync("amount_old", "amount")
    );
    let back = format!(
        "ALTER TABLE public.orders RENAME COLUMN amount TO amount_new;
         ALTER TABLE public.orders RENAME COLUMN amount_old TO amount;
         {}
         UPDATE seqmig.flags SET authority = 'old', updated_at = now() WHERE name = 'c1'",
        amount_sync("amount", "amount_new")
    );
    steps.push(s("s4", Phase::Switch, &forward, Some(&back)));
    steps.push(s(
        "s5",
        Phase::Contract,
        "DROP TRIGGER orders_sync_amount ON public.orders; DROP FUNCTION public.orders_sync_amount();
         ALTER TABLE public.orders DROP COLUMN amount_old; DELETE FROM seqmig.flags WHERE name = 'c1'",
        None,
    ));
    build(steps)
}

/// Writes `amount` (the same name before and after switch) until stopped.
fn start_amount_writer(db: &TestDb, tag: i64) -> tokio::task::JoinHandle<BTreeMap<i64, i64>> {
    let url = db.url.clone();
    tokio::spawn(async move {
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let mut expected = BTreeMap::new();
        for n in 1..=40i64 {
            let v = tag * 100_000 + n;
            // Text in, cast by the server: the column is integer before switch, bigint after.
            let id: i64 = c
                .query_one(
                    "INSERT INTO public.orders (amount) VALUES ($1::text::bigint) RETURNING id",
                    &[&v.to_string()],
                )
                .await
                .unwrap()
                .get(0);
            expected.insert(id, v);
            let target = (n * 53) % 3000 + 1;
            c.execute(
                "UPDATE public.orders SET amount = $1::text::bigint WHERE id = $2",
                &[&(v + 1).to_string(), &target],
            )
            .await
            .unwrap();
            expected.insert(target, v + 1);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        expected
    })
}

async fn amounts(c: &tokio_postgres::Client) -> BTreeMap<i64, i64> {
    c.query("SELECT id, amount::bigint FROM public.orders", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn check_amounts(actual: &BTreeMap<i64, i64>, written: &BTreeMap<i64, i64>) {
    assert_eq!(actual.len(), 3000 + written.keys().filter(|id| **id > 3000).count());
    for (id, v) in actual {
        assert_eq!(*v, written.get(id).copied().unwrap_or(*id), "order {id}");
    }
}

#[test]
fn lifecycle_same_name_type_change_swaps_at_switch_and_rolls_back_from_each_phase() {
    // Full run with a writer during every phase.
    let db = TestDb::new();
    db.execute(ORDERS_BEFORE);
    let after = TestDb::new();
    after.execute(ORDERS_AFTER);
    let plan = type_change_plan();
    block_on(async {
        let c = db.client().await;
        let mut written = BTreeMap::new();
        for (i, phase) in Phase::ALL.into_iter().enumerate() {
            // The column keeps its name, so N-1 and N both write `amount`, contract included.
            let w = start_amount_writer(&db, i as i64 + 1);
            apply(&db, &plan, phase).await.unwrap_or_else(|e| panic!("{phase}: {e}"));
            written.extend(w.await.unwrap());
        }
        check_amounts(&amounts(&c).await, &written);
        let (c2, conn) = tokio_postgres::connect(&after.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let mut got = seqmig::introspect::introspect(&c).await.unwrap();
        assert_eq!(got, seqmig::introspect::introspect(&c2).await.unwrap());
        got.owners.clear();
        assert_eq!(got, seqmig::parse::load_str("after.sql", ORDERS_AFTER).unwrap().schema);
    });
    // Rollback from switch (the swap undone) back to the start, writers throughout.
    let db = TestDb::new();
    db.execute(ORDERS_BEFORE);
    block_on(async {
        let c = db.client().await;
        let before = seqmig::introspect::introspect(&c).await.unwrap();
        let mut written = BTreeMap::new();
        for (i, phase) in
            [Phase::Expand, Phase::DualWrite, Phase::Backfill, Phase::Switch].into_iter().enumerate()
        {
            let w = start_amount_writer(&db, i as i64 + 1);
            apply(&db, &plan, phase).await.unwrap();
            written.extend(w.await.unwrap());
        }
        for (i, phase) in
            [Phase::Switch, Phase::Backfill, Phase::DualWrite, Phase::Expand].into_iter().enumerate()
        {
            let w = start_amount_writer(&db, i as i64 + 10);
            rollback(&db, phase).await.unwrap_or_else(|e| panic!("rollback {phase}: {e}"));
            written.extend(w.await.unwrap());
        }
        assert_eq!(seqmig::introspect::introspect(&c).await.unwrap(), before);
        check_amounts(&amounts(&c).await, &written);
    });
}

/// An operator can start a backfill slow or paused: `pause` / `set-rate` with the plan and
/// its backfill step are accepted before the backfill ever ran, and the engine honours them
/// from its first batch; a step that is not a backfill is refused.
#[test]
fn a_backfill_can_be_paused_and_capped_before_it_starts() {
    let db = TestDb::new();
    db.execute(BEFORE);
    let plan = rename_plan();
    block_on(async {
        apply(&db, &plan, Phase::Expand).await.unwrap();
        apply(&db, &plan, Phase::DualWrite).await.unwrap();
    });
    let target = ["--plan-id", plan.id.as_str(), "--step-id", "s3"];
    let out = seqmig(&[&["backfill", "set-rate"][..], &target, &["5000"]].concat(), &db);
    assert!(out.status.success(), "{}", text(&out));
    let out = seqmig(&[&["backfill", "pause"][..], &target].concat(), &db);
    assert!(out.status.success(), "{}", text(&out));
    let out = seqmig(&["backfill", "pause", "--plan-id", plan.id.as_str(), "--step-id", "s2"], &db);
    assert_eq!(out.status.code(), Some(1), "s2 is not a backfill step: {}", text(&out));
    assert!(text(&out).contains("no backfill matched"), "{}", text(&out));

    let (_dir, file) = write_plan(&plan);
    let mut child = Command::new(env!("CARGO_BIN_EXE_seqmig"))
        .args(["apply", "--plan", &file, "--phase", "backfill"])
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2_000));
    block_on(async {
        let c = db.client().await;
        let batches: i64 = c
            .query_one("SELECT count(*) FROM seqmig.backfill_batches WHERE step_id = 's3'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(batches, 0, "a backfill paused before it started writes nothing");
    });
    let out = seqmig(&[&["backfill", "resume"][..], &target].concat(), &db);
    assert!(out.status.success(), "{}", text(&out));
    let status = child.wait().unwrap();
    assert!(status.success(), "apply --phase backfill after resume");
    let out = seqmig(&["backfill", "status"], &db);
    assert!(text(&out).contains("limited to 5000 rows/s"), "{}", text(&out));
    block_on(async {
        let c = db.client().await;
        let paused: String = c
            .query_one(
                "SELECT throttle_reason FROM seqmig.backfill_batches WHERE step_id = 's3' ORDER BY batch_no LIMIT 1",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(paused, "paused", "the first batch waited for the operator");
    });
}
