//! Reliability under faults (issue 10): the `seqmig` binary killed after every step of a
//! multi-change plan (apply and rollback), PostgreSQL crashed between and during steps, the
//! runner's connection cut in the middle of a backfill batch, a role without the privileges a
//! step needs, and a stored plan edited by hand. After each fault `status` must explain what
//! happened, running the command again must finish the work, and the end state — schema by
//! introspection and every row — must equal the uninterrupted run's.
//!
//! The fault hook is `SEQMIG_FAULT_AFTER_STEPS=k` (`Runner::dangerous_abort_after_steps`): the
//! binary aborts like `kill -9` right after its k-th step has committed. Each part here is a
//! plain function run by `reliability_report_nothing_lost` (reliability_tests.rs), which adds
//! their counts to one report.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seqmig::diff::Hints;
use seqmig::exec::{
    Action, ContractGate, ExecError, ObserverFuture, PlanSource, Quiet, Runner, StepObserver,
};
use seqmig::model::Schema;
use seqmig::plan::{Phase, Plan, Step};
use seqmig::render::Renderer;
use seqmig::scratch::local::TempCluster;
use tokio_postgres::Client;

use crate::exec_examples_tests::{
    apply, apply_url, assert_same, data, introspect, load, opts, phases_with_steps, plan_of, read, rollback,
    seed,
};
use crate::harness::cli::{command, seqmig, text, write_plan};
use crate::harness::{TestDb, block_on};
use crate::reliability_tests::{REPORT, env_number};

/// Several dependent changes of many kinds: two new tables with foreign keys, a NOT NULL
/// column with a fill and its backfill, a same-name type change with triggers, a swap at
/// switch, a view dropped and recreated around it, a concurrent index, a dropped column.
const EXAMPLE: &str = "18-several-dependent-changes";
const ROWS: i64 = 300;
const SIGABRT: i32 = 6;

/// Schema by introspection and every row of every user table.
#[derive(Debug, Clone)]
struct EndState {
    schema: Schema,
    rows: BTreeMap<String, (i64, String)>,
}

async fn end_state(c: &Client) -> EndState {
    EndState { schema: introspect(c).await, rows: data(c).await }
}

/// Asserts `got` equals `want`; rows missing from `got` are counted as lost first, so the
/// report's figure is measured, not assumed.
fn compare(got: &EndState, want: &EndState, what: &str) {
    for (table, (n, _)) in &want.rows {
        let m = got.rows.get(table).map(|(m, _)| *m).unwrap_or(0);
        REPORT.rows_checked.fetch_add(*n as usize, Ordering::Relaxed);
        REPORT.rows_lost.fetch_add((n - m).max(0) as usize, Ordering::Relaxed);
    }
    assert_same(&got.schema, &want.schema, what);
    assert_eq!(got.rows, want.rows, "{what}: rows differ");
}

/// The plan's steps in the order one run executes them, as (phase, position in the phase).
fn apply_order(plan: &Plan) -> Vec<(Phase, usize)> {
    Phase::ALL.into_iter().flat_map(|p| (1..=plan.steps_of(p).len()).map(move |j| (p, j))).collect()
}

/// Rolling back from switch to the start: phases last first, each phase's steps last first.
fn rollback_order(plan: &Plan) -> Vec<(Phase, usize)> {
    phases_with_steps(plan)
        .into_iter()
        .filter(|p| *p < Phase::Contract)
        .rev()
        .flat_map(|p| (1..=plan.steps_of(p).len()).map(move |j| (p, j)))
        .collect()
}

fn cli_args(action: Action, phase: Phase) -> Vec<String> {
    let mut args = vec![action.as_str().to_string(), "--phase".into(), phase.to_string()];
    if action == Action::Apply && phase == Phase::Contract {
        args.extend(["--break-glass".into(), "--reason".into(), "reliability: gate not under test".into()]);
    }
    args
}

/// `seqmig apply|rollback --phase P` with the fault hook: it must die by SIGABRT right
/// after its `k`-th step.
fn run_killed(url: &str, plan_path: &str, action: Action, phase: Phase, k: usize) {
    let mut args = cli_args(action, phase);
    if action == Action::Apply {
        args.extend(["--plan".into(), plan_path.into()]);
    }
    let out = command(url).args(&args).env("SEQMIG_FAULT_AFTER_STEPS", k.to_string()).output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(SIGABRT),
        "{} {phase} with the fault after step {k} was not aborted: {:?}\n{}",
        action.as_str(),
        out.status,
        text(&out)
    );
    REPORT.faults_injected.fetch_add(1, Ordering::Relaxed);
    REPORT.kills.fetch_add(1, Ordering::Relaxed);
}

/// Runs `seqmig status` until the killed runner's session is gone, and returns its text.
fn status_after_kill(db: &TestDb) -> String {
    let t0 = Instant::now();
    loop {
        let out = seqmig(&["status"], db);
        let t = text(&out);
        assert_ne!(out.status.code(), Some(2), "status failed after a kill:\n{t}");
        if !t.contains("is running step") && !t.contains("runner: ") {
            return t;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "the killed runner never went away:\n{t}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every step applied exactly once: a resumed phase never re-runs a step that had committed.
async fn assert_each_step_ok_once(c: &Client, plan: &Plan, what: &str) {
    let rows = c
        .query(
            "SELECT step_id, count(*) FROM seqmig.step_runs WHERE action = 'apply' AND outcome = 'ok'
             GROUP BY step_id HAVING count(*) <> 1",
            &[],
        )
        .await
        .unwrap();
    let twice: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert!(twice.is_empty(), "{what}: steps recorded done more than once: {twice:?}");
    let n: i64 = c
        .query_one(
            "SELECT count(DISTINCT step_id) FROM seqmig.step_runs WHERE action = 'apply' AND outcome = 'ok'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n as usize, plan.steps.len(), "{what}: every step done");
}

/// A seeded database of the example's old shape, the plan, and the uninterrupted run's end
/// state; faulted runs start from copies of `base`.
struct Fixture {
    plan: Plan,
    base: TestDb,
    original: EndState,
    want: EndState,
}

fn fixture() -> Fixture {
    let plan = plan_of(EXAMPLE);
    let base = TestDb::new();
    base.execute(&read(EXAMPLE, "before.sql"));
    let original = block_on(async {
        let c = base.client().await;
        seed(&c, ROWS).await;
        end_state(&c).await
    });
    let reference = base.copy();
    let want = block_on(async {
        for phase in Phase::ALL {
            apply(&reference, &plan, phase).await.unwrap_or_else(|e| panic!("uninterrupted {phase}: {e}"));
        }
        end_state(&reference.client().await).await
    });
    Fixture { plan, base, original, want }
}

/// Runs `f(k)` for every `k` in `ks` on two workers (most of the time is spent waiting on
/// the server and on child processes).
fn on_workers(ks: Vec<usize>, f: impl Fn(usize) + Sync) {
    let workers = env_number("SEQMIG_FAULT_WORKERS", 2).max(1) as usize;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let ks = &ks;
                let f = &f;
                s.spawn(move || ks.iter().skip(w).step_by(workers).for_each(|k| f(*k)))
            })
            .collect();
        for h in handles {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
    });
}

/// Kill after step k, for every k of the plan: status explains, apply resumes, and the end
/// state equals the uninterrupted run's.
pub(crate) fn kill_after_every_step() {
    let fx = fixture();
    let (_dir, path) = write_plan(&fx.plan);
    let order = apply_order(&fx.plan);
    on_workers((1..=order.len()).collect(), |k| {
        let (phase, j) = order[k - 1];
        let steps = fx.plan.steps_of(phase);
        let what = format!("{EXAMPLE}: killed after step {k} ({} = {phase} step {j})", steps[j - 1].id);
        let db = fx.base.copy();
        block_on(async {
            for p in Phase::ALL.into_iter().filter(|p| *p < phase) {
                apply(&db, &fx.plan, p).await.unwrap_or_else(|e| panic!("{what}: apply {p}: {e}"));
            }
        });
        run_killed(&db.url, &path, Action::Apply, phase, j);

        let status = status_after_kill(&db);
        if j < steps.len() {
            assert!(
                status.contains(&format!("phase {phase} is partially applied"))
                    && status.contains(&format!("next: seqmig apply --phase {phase}")),
                "{what}: status does not explain:\n{status}"
            );
        } else {
            assert!(
                !status.contains("interrupted") && !status.contains("failed"),
                "{what}: every step of {phase} committed, yet:\n{status}"
            );
        }

        let out = seqmig(&cli_args(Action::Apply, phase).iter().map(String::as_str).collect::<Vec<_>>(), &db);
        assert_eq!(out.status.code(), Some(0), "{what}: resume failed:\n{}", text(&out));
        assert!(text(&out).contains(&format!("{j} already done")), "{what}: resume:\n{}", text(&out));
        block_on(async {
            for p in Phase::ALL.into_iter().filter(|p| *p > phase) {
                apply(&db, &fx.plan, p).await.unwrap_or_else(|e| panic!("{what}: apply {p}: {e}"));
            }
            let c = db.client().await;
            assert_each_step_ok_once(&c, &fx.plan, &what).await;
            compare(&end_state(&c).await, &fx.want, &what);
        });
    });
}

/// Kill after the k-th undone step while rolling back from switch to the start; the
/// rollback resumes and gives back the original schema and every row. The normal suite takes
/// every `SEQMIG_ROLLBACK_FAULT_STRIDE`-th step (default 4); set it to 1 for all of them.
pub(crate) fn kill_during_rollback() {
    let fx = fixture();
    let (_dir, path) = write_plan(&fx.plan);
    let order = rollback_order(&fx.plan);
    let stride = env_number("SEQMIG_ROLLBACK_FAULT_STRIDE", 4).max(1) as usize;
    on_workers((1..=order.len()).step_by(stride).collect(), |k| {
        let (killed_phase, j) = order[k - 1];
        let what = format!(
            "{EXAMPLE}: rollback killed after undoing step {k} ({killed_phase} step {j} from the end)"
        );
        let db = fx.base.copy();
        block_on(async {
            for p in Phase::ALL.into_iter().filter(|p| *p < Phase::Contract) {
                apply(&db, &fx.plan, p).await.unwrap_or_else(|e| panic!("{what}: apply {p}: {e}"));
            }
        });
        for phase in phases_with_steps(&fx.plan).into_iter().filter(|p| *p < Phase::Contract).rev() {
            if phase == killed_phase {
                run_killed(&db.url, &path, Action::Rollback, phase, j);
                let status = status_after_kill(&db);
                if j < fx.plan.steps_of(phase).len() {
                    assert!(
                        status.contains(&format!("phase {phase} is partly rolled back"))
                            && status.contains(&format!("next: seqmig rollback --phase {phase}")),
                        "{what}: status does not explain:\n{status}"
                    );
                }
                let args = cli_args(Action::Rollback, phase);
                let out = seqmig(&args.iter().map(String::as_str).collect::<Vec<_>>(), &db);
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{what}: resuming the rollback failed:\n{}",
                    text(&out)
                );
            } else {
                block_on(rollback(&db, phase)).unwrap_or_else(|e| panic!("{what}: rollback {phase}: {e}"));
            }
            REPORT.rolled_back_phases.fetch_add(1, Ordering::Relaxed);
        }
        block_on(async { compare(&end_state(&db.client().await).await, &fx.original, &what) });
        REPORT.rollbacks.fetch_add(1, Ordering::Relaxed);
    });
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL crashed and restarted between steps and in the middle of one
// ---------------------------------------------------------------------------------------------

/// Crashes the server (immediate shutdown, crash recovery on start) right after step
/// `between` committed, and inside step `during`'s transaction before its COMMIT.
struct Crasher {
    cluster: Arc<Mutex<TempCluster>>,
    between: String,
    during: String,
    /// Shared by the crashers of successive runs: each crash happens once.
    fired: Arc<Mutex<Vec<String>>>,
}

impl Crasher {
    fn crash(&mut self, step: &Step, when: &str) {
        {
            let mut fired = self.fired.lock().unwrap();
            if fired.contains(&step.id) {
                return;
            }
            fired.push(step.id.clone());
        }
        // Blocks this runtime on purpose: the runner is frozen exactly here while the
        // server goes down and comes back.
        self.cluster.lock().unwrap().restart().unwrap_or_else(|e| panic!("restart {when} {}: {e}", step.id));
        REPORT.faults_injected.fetch_add(1, Ordering::Relaxed);
        REPORT.restarts.fetch_add(1, Ordering::Relaxed);
    }
}

impl StepObserver for Crasher {
    fn before_step<'a>(&'a mut self, _: &'a Step, _: Action, _: i32) -> ObserverFuture<'a> {
        Box::pin(async {})
    }

    fn in_transaction<'a>(&'a mut self, _: &'a Client, step: &'a Step, action: Action) -> ObserverFuture<'a> {
        Box::pin(async move {
            if action == Action::Apply && step.id == self.during {
                self.crash(step, "during");
            }
        })
    }

    fn after_step<'a>(&'a mut self, step: &'a Step, action: Action, ok: bool) -> ObserverFuture<'a> {
        Box::pin(async move {
            if action == Action::Apply && ok && step.id == self.between {
                self.crash(step, "after");
            }
        })
    }
}

/// PostgreSQL restarted right after one step committed and in the middle of another (the
/// switch's column swap): the runner fails cleanly, `status` names the interrupted step,
/// applying again finishes, and the end state equals the uninterrupted run's.
pub(crate) fn postgres_restarts_between_and_during_steps() {
    let plan = plan_of(EXAMPLE);
    let mid_expand = plan.steps_of(Phase::Expand)[4].id.clone();
    let swap = plan
        .steps_of(Phase::Switch)
        .iter()
        .find(|s| s.sql.contains("RENAME COLUMN"))
        .expect("the example swaps columns at switch")
        .id
        .clone();
    // Production's default: a commit is durable once acknowledged. (The harness clusters run
    // with synchronous_commit = off for speed, which lets a crash forget the last commits —
    // consistently, step and ledger row together, but then "after step k" is not a fact.)
    let cluster = TempCluster::start(&["synchronous_commit = on"]).expect("a dedicated cluster to crash");
    let admin = cluster.url("postgres");
    let (url, reference_url) = (cluster.url("faulted"), cluster.url("reference"));
    let cluster = Arc::new(Mutex::new(cluster));
    let before = read(EXAMPLE, "before.sql");
    block_on(async {
        let a = connect(&admin).await;
        for (name, u) in [("faulted", &url), ("reference", &reference_url)] {
            a.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
            let c = connect(u).await;
            c.batch_execute(&before).await.unwrap();
            // Same rows in both, including defaults such as now(): seed one, copy the rows.
            if name == "faulted" {
                seed(&c, ROWS).await;
            }
        }
        copy_rows(&url, &reference_url).await;
        for phase in Phase::ALL {
            apply_url(&reference_url, &plan, phase).await.unwrap();
        }
    });
    let want = block_on(async { end_state(&connect(&reference_url).await).await });
    let fired = Arc::new(Mutex::new(Vec::new()));
    let mut failures = Vec::new();
    block_on(async {
        for phase in Phase::ALL {
            let mut attempts = 0;
            loop {
                attempts += 1;
                assert!(attempts <= 3, "phase {phase} does not finish after restarts: {failures:?}");
                let mut runner = Runner::acquire(opts(&url), "apply").await.unwrap();
                runner.set_step_observer(Some(Box::new(Crasher {
                    cluster: cluster.clone(),
                    between: mid_expand.clone(),
                    during: swap.clone(),
                    fired: fired.clone(),
                })));
                let source = PlanSource::File { plan: Box::new(plan.clone()), path: "plan.json".into() };
                let gate = ContractGate::break_glass("reliability: gate not under test");
                let result = runner.apply(&source, phase, &gate, &mut Quiet).await;
                // Released before the next acquire: a dropped client closes its session
                // asynchronously, and the next runner would find the lock still held.
                runner.release().await;
                match result {
                    Ok(_) => break,
                    Err(e) => {
                        // The crash cut the runner's connection: an error, not a panic or a hang.
                        assert!(
                            matches!(e, ExecError::Db { .. } | ExecError::StepFailed { .. }),
                            "phase {phase}: unexpected error after a restart: {e}"
                        );
                        failures.push(format!("{phase}: {e}"));
                        let status = text(&command(&url).arg("status").output().unwrap());
                        let blamed = if phase == Phase::Expand {
                            format!("phase {phase} is partially applied")
                        } else {
                            format!("interrupted at step {swap}")
                        };
                        assert!(
                            status.contains(&blamed),
                            "after a restart in {phase} ({failures:?}), status says:\n{status}"
                        );
                    }
                }
            }
        }
        let c = connect(&url).await;
        // The swap interrupted by the crash left nothing half done; it ran once, completely.
        let swaps: i64 = c
            .query_one(
                "SELECT count(*) FROM seqmig.step_runs WHERE step_id = $1 AND action = 'apply' AND outcome = 'ok'",
                &[&swap],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(swaps, 1);
        compare(&end_state(&c).await, &want, "restarted between and during steps");
    });
    assert_eq!(failures.len(), 2, "two crashes, two failed runs: {failures:?}");
    drop(cluster);
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// Copies every user table's rows from one database to another of the same shape.
async fn copy_rows(from: &str, to: &str) {
    let (src, dst) = (connect(from).await, connect(to).await);
    for (_, table) in crate::exec_examples_tests::tables(&src).await {
        let rows = src.query(&format!("SELECT row_to_json(x)::text FROM {table} x"), &[]).await.unwrap();
        for r in rows {
            let json: String = r.get(0);
            dst.execute(
                &format!(
                    "INSERT INTO {table} SELECT * FROM json_populate_record(NULL::{table}, $1::text::json)"
                ),
                &[&json],
            )
            .await
            .unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The runner's connection cut in the middle of a backfill batch
// ---------------------------------------------------------------------------------------------

const CUT_ROWS: i64 = 20_000;

const CUT_FUNCTION: &str = "CREATE FUNCTION public.slow_widen(v integer) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE x bigint := 0;
BEGIN
    FOR i IN 1..1500 LOOP x := x + 1; END LOOP;
    RETURN v::bigint + x - 1500;
END $$;\n";

/// `pg_terminate_backend` of the runner's session while a backfill batch runs: apply fails
/// with an error that says how to resume (or retries), running it again finishes, the
/// backfill verifies with no row pending, and every value arrives.
pub(crate) fn connection_cut_during_backfill() {
    let before = format!(
        "{CUT_FUNCTION}CREATE TABLE public.entries (id bigint PRIMARY KEY, amount integer NOT NULL, note text);"
    );
    let after = format!(
        "{CUT_FUNCTION}CREATE TABLE public.entries (id bigint PRIMARY KEY, amount bigint NOT NULL, note text);"
    );
    let plan = plan_from(
        &before,
        &after,
        "[[transform]]\ntable = \"public.entries\"\ncolumn = \"amount\"\nup = \"public.slow_widen(amount)\"\ndown = \"amount::integer\"\n",
    );
    let backfill = plan.steps_of(Phase::Backfill).iter().find(|s| s.backfill.is_some()).unwrap().id.clone();
    let (_dir, path) = write_plan(&plan);
    let db = TestDb::new();
    db.execute(&before);
    db.execute(&format!(
        "INSERT INTO public.entries SELECT g, (g * 7919) % 100000, 'n' || g FROM generate_series(1, {CUT_ROWS}) g"
    ));
    let sums = "SELECT count(*), sum(amount)::bigint, md5(string_agg(id || ':' || amount || ':' || note, ',' ORDER BY id)) FROM public.entries";
    let original: (i64, i64, String) = block_on(async {
        db.client().await.query_one(sums, &[]).await.map(|r| (r.get(0), r.get(1), r.get(2))).unwrap()
    });
    block_on(async {
        apply(&db, &plan, Phase::Expand).await.unwrap();
        apply(&db, &plan, Phase::DualWrite).await.unwrap();
    });

    let child = command(&db.url)
        .args(["apply", "--plan", &path, "--phase", "backfill"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let cut = block_on(async {
        let c = db.client().await;
        let t0 = Instant::now();
        loop {
            let done: i64 = c
                .query_one(
                    "SELECT coalesce((SELECT rows_done FROM seqmig.backfills WHERE step_id = $1), 0)
                     WHERE to_regclass('seqmig.backfills') IS NOT NULL
                     UNION ALL SELECT 0 LIMIT 1",
                    &[&backfill],
                )
                .await
                .unwrap()
                .get(0);
            if done >= 1000 {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "the backfill never got going");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Cut every seqmig session of this database while it is inside a batch.
        let cut: i64 = c
            .query_one(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name LIKE 'seqmig/%' AND pid <> pg_backend_pid()) t",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let done: i64 = c
            .query_one("SELECT rows_done FROM seqmig.backfills WHERE step_id = $1", &[&backfill])
            .await
            .unwrap()
            .get(0);
        assert!(done < CUT_ROWS, "the backfill finished before the cut ({done} rows)");
        cut
    });
    assert!(cut >= 1, "no seqmig session to cut");
    REPORT.faults_injected.fetch_add(1, Ordering::Relaxed);
    REPORT.connection_cuts.fetch_add(1, Ordering::Relaxed);
    let out = child.wait_with_output().unwrap();
    let first = text(&out);
    match out.status.code() {
        // It retried over a new connection and finished.
        Some(0) => {}
        // It failed cleanly: one error line, the reason, no panic.
        Some(2) => {
            assert!(!first.contains("panicked"), "{first}");
            assert!(
                first.contains(&format!("error: backfill of step {backfill} failed"))
                    // The server's FATAL when it arrives first, the closed socket otherwise.
                    && (first.contains("57P01") || first.contains("connection closed"))
                    && first.contains("run 'seqmig apply --phase backfill' to resume"),
                "the error does not say what was cut and how to resume:\n{first}"
            );
        }
        other => panic!("apply after a connection cut exited {other:?}:\n{first}"),
    }
    if out.status.code() == Some(2) {
        let status = text(&seqmig(&["status"], &db));
        assert!(
            status.contains(&format!("interrupted at step {backfill}"))
                || status.contains(&format!("failed at step {backfill}")),
            "status does not explain the cut:\n{status}"
        );
        let again = seqmig(&["apply", "--phase", "backfill"], &db);
        assert_eq!(again.status.code(), Some(0), "resume after the cut:\n{}", text(&again));
    }
    block_on(async {
        let c = db.client().await;
        let msg: String = c
            .query_one(
                "SELECT message FROM seqmig.step_runs WHERE step_id = $1 AND outcome = 'ok' ORDER BY id DESC LIMIT 1",
                &[&backfill],
            )
            .await
            .unwrap()
            .get(0);
        assert!(msg.contains("verified: none pending"), "{msg}");
        apply(&db, &plan, Phase::Switch).await.unwrap();
        apply(&db, &plan, Phase::Contract).await.unwrap();
        let got: (i64, i64, String) =
            c.query_one(sums, &[]).await.map(|r| (r.get(0), r.get(1), r.get(2))).unwrap();
        REPORT.rows_checked.fetch_add(original.0 as usize, Ordering::Relaxed);
        REPORT.rows_lost.fetch_add((original.0 - got.0).max(0) as usize, Ordering::Relaxed);
        assert_eq!(got, original, "rows or amounts changed across the cut");
        let ty: String = c
            .query_one(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.entries'::regclass AND attname = 'amount'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(ty, "bigint");
    });
}

// ---------------------------------------------------------------------------------------------
// Privileges and ledger integrity
// ---------------------------------------------------------------------------------------------

/// The plan of a schema pair given as text, gate criteria dropped (not under test here).
pub(crate) fn plan_from(before: &str, after: &str, toml: &str) -> Plan {
    let hints = Hints::from_toml(toml, "seqmig.toml").unwrap();
    let mut plan = seqmig::plan::plan(
        &load("before.sql", before),
        &load("after.sql", after),
        &hints,
        &Renderer::embedded(),
    )
    .unwrap()
    .plan;
    plan.gate.criteria.clear();
    let plan = plan.seal();
    assert!(!plan.is_blocked(), "{:?}", plan.findings);
    plan
}

/// `seqmig apply` as `role` on `db`.
fn apply_as(db: &TestDb, role: &str, plan_path: Option<&str>, phase: Phase) -> std::process::Output {
    let mut c = command(&db.url_as(role));
    c.args(["apply", "--phase", &phase.to_string(), "--actor", role]);
    if let Some(p) = plan_path {
        c.args(["--plan", p]);
    }
    c.output().unwrap()
}

/// Applying as a role that lacks a privilege a step needs: a clear error naming the object
/// and the step, nothing of the failed transactional step left behind (its first statement
/// succeeded, its second was refused), and the ledger and `status` say what failed. Once the
/// privilege is granted, applying again finishes.
pub(crate) fn privileges_refused_cleanly() {
    // Not the owner of the table: the first statement is refused.
    let db = TestDb::new();
    let role = format!("deployer_{}", db.name);
    db.execute(&format!(
        "CREATE ROLE {role};
         GRANT CREATE ON DATABASE {name} TO {role};
         GRANT USAGE ON SCHEMA public TO {role};
         CREATE TABLE public.accounts (id bigint PRIMARY KEY, balance integer NOT NULL);
         INSERT INTO public.accounts SELECT g, g FROM generate_series(1, 100) g;",
        name = db.name
    ));
    db.allow_login(&role);
    let plan = plan_from(
        "CREATE TABLE public.accounts (id bigint PRIMARY KEY, balance integer NOT NULL);",
        "CREATE TABLE public.accounts (id bigint PRIMARY KEY, balance integer NOT NULL, note text);",
        "",
    );
    let (_dir, path) = write_plan(&plan);
    let out = apply_as(&db, &role, Some(&path), Phase::Expand);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("step s1 (expand) failed with SQLSTATE 42501: must be owner of table accounts")
            && msg.contains("run 'seqmig apply --phase expand' to retry"),
        "{msg}"
    );
    let status = text(&seqmig(&["status"], &db));
    assert!(status.contains("phase expand failed at step s1: must be owner of table accounts"), "{status}");
    block_on(async {
        let c = db.client().await;
        let row = c
            .query_one("SELECT outcome, sqlstate, actor FROM seqmig.step_runs WHERE step_id = 's1'", &[])
            .await
            .unwrap();
        let got: (String, Option<String>, String) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(got, ("failed".into(), Some("42501".into()), role.clone()));
        let phase: String = c
            .query_one("SELECT outcome FROM seqmig.phase_runs ORDER BY id DESC LIMIT 1", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(phase, "failed");
    });
    db.execute(&format!("ALTER TABLE public.accounts OWNER TO {role}"));
    let out = apply_as(&db, &role, None, Phase::Expand);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Owner of the table but no CREATE on the schema: a table rename's step renames the table
    // and then creates the compatibility view, which is refused — the rename must not stay.
    let db = TestDb::new();
    let role = format!("deployer_{}", db.name);
    let before = "CREATE TABLE public.people (id bigint PRIMARY KEY, name text);";
    db.execute(&format!(
        "CREATE ROLE {role};
         GRANT CREATE ON DATABASE {name} TO {role};
         GRANT USAGE ON SCHEMA public TO {role};
         {before}
         ALTER TABLE public.people OWNER TO {role};
         INSERT INTO public.people SELECT g, 'p' || g FROM generate_series(1, 100) g;",
        name = db.name
    ));
    db.allow_login(&role);
    let plan = plan_from(
        before,
        "CREATE TABLE public.persons (id bigint PRIMARY KEY, name text);",
        "[[rename]]\nfrom = \"public.people\"\nto = \"persons\"\n",
    );
    let step = plan.steps_of(Phase::Expand)[0];
    assert!(step.sql.contains("RENAME TO persons") && step.sql.contains("CREATE VIEW"), "{}", step.sql);
    let (_dir, path) = write_plan(&plan);
    let before_state = block_on(async { end_state(&db.client().await).await });
    let out = apply_as(&db, &role, Some(&path), Phase::Expand);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains(&format!(
            "step {} (expand) failed with SQLSTATE 42501: permission denied for schema public",
            step.id
        )),
        "{msg}"
    );
    block_on(async {
        let c = db.client().await;
        // The ledger is seqmig's own schema, not part of the user schema compared here.
        compare(&end_state(&c).await, &before_state, "a refused step left something behind");
        let n: i64 = c.query_one("SELECT count(*) FROM public.people", &[]).await.unwrap().get(0);
        assert_eq!(n, 100);
    });
    let status = text(&seqmig(&["status"], &db));
    assert!(
        status.contains(&format!(
            "phase expand failed at step {}: permission denied for schema public",
            step.id
        )),
        "{status}"
    );
    db.execute(&format!("GRANT CREATE ON SCHEMA public TO {role}"));
    let out = apply_as(&db, &role, None, Phase::Expand);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A stored plan edited by hand in the ledger no longer matches its id: every command that
/// would run it refuses, and nothing of the edit runs (here: a `DROP TABLE canary` slipped
/// into a step). Two runners never interleave: see exec_tests'
/// `two_concurrent_applies_one_proceeds_the_other_names_the_holder`.
pub(crate) fn edited_ledger_plan_is_refused() {
    let name = "07-rename-column";
    let plan = plan_of(name);
    let (_dir, path) = write_plan(&plan);
    let db = TestDb::new();
    db.execute(&read(name, "before.sql"));
    db.execute("CREATE TABLE public.canary (id int); INSERT INTO public.canary VALUES (1);");
    block_on(async { apply(&db, &plan, Phase::Expand).await.unwrap() });
    let edited = db.copy();
    let before = block_on(async {
        let c = edited.client().await;
        let n = c
            .execute(
                "UPDATE seqmig.plans SET plan_json =
                   replace(plan_json::text, 'CREATE OR REPLACE FUNCTION', 'DROP TABLE public.canary; CREATE OR REPLACE FUNCTION')::json",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
        end_state(&c).await
    });
    for args in [
        vec!["apply", "--phase", "dual_write"],
        vec!["apply", "--phase", "dual_write", "--plan", &path],
        vec!["rollback", "--phase", "expand"],
    ] {
        let out = seqmig(&args, &edited);
        let msg = text(&out);
        assert_ne!(out.status.code(), Some(0), "{args:?} ran an edited plan:\n{msg}");
        assert!(
            msg.contains(&format!("stored plan {} does not match its id", plan.id)) && msg.contains("edited"),
            "{args:?}:\n{msg}"
        );
    }
    block_on(async {
        let c = edited.client().await;
        compare(&end_state(&c).await, &before, "an edited plan changed something");
        let steps: i64 = c
            .query_one("SELECT count(*) FROM seqmig.step_runs WHERE phase <> 'expand'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(steps, 0, "no step of the edited plan ran");
    });
}

// ---------------------------------------------------------------------------------------------
// Hostile identifiers end to end
// ---------------------------------------------------------------------------------------------

/// `tests/fixtures/hostile-identifiers`: every change kind the planner supports, on names
/// with doubled quotes, spaces, semicolons, `$$`, `--` and non-ASCII letters (one of them
/// `x"; DROP TABLE canary; --`), planned, applied phase by phase with the old release
/// writing, and rolled back from every phase before contract; the end state is the desired
/// schema with every row, each rollback gives back the original, and table canary survives.
pub(crate) fn hostile_identifiers_end_to_end() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile-identifiers");
    let plan = crate::exec_examples_tests::plan_at(&folder);
    let kinds: std::collections::BTreeSet<&str> = plan.changes.iter().map(|c| c.kind.as_str()).collect();
    for kind in [
        "add_column",
        "add_constraint",
        "add_enum_value",
        "add_not_null_column",
        "add_unique",
        "change_default",
        "change_index",
        "change_type",
        "create_table",
        "drop_column",
        "drop_constraint",
        "drop_not_null",
        "drop_table",
        "rename_column",
        "rename_table",
        "replace_view",
        "set_not_null",
    ] {
        assert!(kinds.contains(kind), "the hostile fixture no longer plans a {kind} change: {kinds:?}");
    }
    let stats = crate::exec_examples_tests::run_example_at(&folder, "hostile-identifiers");
    REPORT.applied_phases.fetch_add(stats.phases_applied, Ordering::Relaxed);
    REPORT.rollbacks.fetch_add(stats.rollbacks, Ordering::Relaxed);
    REPORT.rolled_back_phases.fetch_add(stats.rolled_back_phases, Ordering::Relaxed);
    REPORT.rows_checked.fetch_add(stats.rows_checked, Ordering::Relaxed);
    REPORT.rows_lost.fetch_add(stats.rows_lost, Ordering::Relaxed);
    assert!(stats.rollbacks >= 3, "{stats:?}");
}
