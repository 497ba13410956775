//! Several plans in flight, second part (issue 20): one lock per plan and a short ledger
//! bookkeeping lock (two applies of independent plans run at the same time, kill -9 of
//! either resumes exactly), `--plan-id` on every single-plan command with the ambiguity
//! named, plans stacked with `seqmig plan --after`, and planning from a live database whose
//! defaults are enum literals.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use seqmig::exec::ExecError;
use seqmig::plan::{GateSpec, LockMode, Phase, Plan, PlannedChange, Step};
use tokio_postgres::Client;

use crate::exec_examples_tests::apply_url;
use crate::harness::cli::{TempDir, seqmig, text, write_plan};
use crate::harness::{TestDb, block_on};

const TABLES: &str = "
CREATE TABLE public.ta (id int PRIMARY KEY);
CREATE TABLE public.tb (id int PRIMARY KEY);
CREATE TABLE public.steps_done (plan text NOT NULL, step text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
";

/// A hand-made plan on `public.<table>`: `n` expand steps, each sleeping `ms`, adding a
/// column and recording itself in `steps_done`, all in the step's transaction; with
/// `switch`, one more step in switch, so that the plan stays in flight after expand.
pub(crate) fn slow_plan(table: &str, n: usize, ms: u64, switch: bool) -> Plan {
    let change = PlannedChange {
        relation: None,
        id: "c1".into(),
        kind: "add_column".into(),
        object: format!("public.{table}.c1"),
        one_way: false,
        summary: format!("columns on {table}"),
    };
    let mut steps: Vec<Step> = (1..=n)
        .map(|i| {
            let sql = format!(
                "SELECT pg_sleep({}); ALTER TABLE public.{table} ADD COLUMN c{i} int; \
                 INSERT INTO public.steps_done (plan, step) VALUES ('{table}', 's{i}')",
                ms as f64 / 1000.0
            );
            Step {
                rollback_sql: Some(format!("ALTER TABLE public.{table} DROP COLUMN c{i}")),
                one_way: false,
                ..Step::new(
                    &format!("s{i}"),
                    "c1",
                    Phase::Expand,
                    &sql,
                    LockMode::AccessExclusive,
                    &format!("public.{table}"),
                )
            }
        })
        .collect();
    if switch {
        steps.push(Step {
            rollback_sql: Some(format!("COMMENT ON TABLE public.{table} IS NULL")),
            one_way: false,
            ..Step::new(
                "w1",
                "c1",
                Phase::Switch,
                &format!("COMMENT ON TABLE public.{table} IS 'switched'"),
                LockMode::ShareUpdateExclusive,
                &format!("public.{table}"),
            )
        });
    }
    Plan::assemble(vec![change], steps, vec![], GateSpec::default())
}

fn spawn_apply(db: &TestDb, path: &str, actor: &str, fault_after: Option<usize>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_seqmig"));
    cmd.args(["apply", "--plan", path, "--phase", "expand", "--actor", actor])
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(k) = fault_after {
        cmd.env("SEQMIG_FAULT_AFTER_STEPS", k.to_string());
    }
    cmd.spawn().unwrap()
}

/// Waits until a step of `plan` is running (its ledger row says so).
pub(crate) async fn wait_running(c: &Client, plan: &Plan) {
    let start = Instant::now();
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM seqmig.step_runs WHERE plan_id = $1 AND outcome = 'running'",
                &[&plan.id],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        if n > 0 {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "plan {} never started", plan.short_id());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The steps recorded by `slow_plan`'s steps, per table, in order.
async fn done(c: &Client, table: &str) -> Vec<String> {
    c.query("SELECT step FROM public.steps_done WHERE plan = $1 ORDER BY at", &[&table])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

pub(crate) async fn columns(c: &Client, table: &str) -> Vec<String> {
    c.query(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 \
         ORDER BY ordinal_position",
        &[&table],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

pub(crate) async fn plan_state(c: &Client, plan: &Plan) -> String {
    c.query_one("SELECT state FROM seqmig.plans WHERE id = $1", &[&plan.id]).await.unwrap().get(0)
}

/// The ledger's `ok` apply rows of `plan`, per step: each step exactly once.
async fn ok_steps(c: &Client, plan: &Plan) -> Vec<(String, i64)> {
    c.query(
        "SELECT step_id, count(*) FROM seqmig.step_runs WHERE plan_id = $1 AND action = 'apply' AND outcome = 'ok' \
         GROUP BY step_id ORDER BY step_id",
        &[&plan.id],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn wait_output(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

#[test]
fn issue20_1_two_concurrent_applies_on_independent_plans_both_complete() {
    let db = TestDb::new();
    db.execute(TABLES);
    let a = slow_plan("ta", 3, 1200, false);
    let b = slow_plan("tb", 3, 200, false);
    let (_da, pa) = write_plan(&a);
    let (_db, pb) = write_plan(&b);
    block_on(async {
        let c = db.client().await;
        let started = Instant::now();
        let mut first = spawn_apply(&db, &pa, "alice", None);
        wait_running(&c, &a).await;

        // The same plan is refused while alice holds it, naming her, the pid and the plan.
        let again = seqmig(&["apply", "--plan", &pa, "--phase", "expand", "--actor", "bob"], &db);
        assert_eq!(again.status.code(), Some(1), "{}", text(&again));
        let msg = text(&again);
        assert!(msg.contains(&format!("holds this database's plan {}", a.short_id())), "{msg}");
        assert!(msg.contains("actor 'alice'") && msg.contains("pid "), "{msg}");
        assert!(
            msg.contains(&format!("--plan-id {}", a.short_id())),
            "the holder's command names the plan: {msg}"
        );

        // The independent plan runs and completes while A is still running.
        let second = seqmig(&["apply", "--plan", &pb, "--phase", "expand", "--actor", "carol"], &db);
        assert_eq!(second.status.code(), Some(0), "{}", text(&second));
        assert!(first.try_wait().unwrap().is_none(), "A finished before B: nothing ran side by side");
        let b_done = started.elapsed();
        let first = wait_output(first);
        assert_eq!(first.status.code(), Some(0), "{}", text(&first));
        eprintln!(
            "B complete {} ms after A started; A took {} ms",
            b_done.as_millis(),
            started.elapsed().as_millis()
        );

        // Side by side: all of B's steps committed after A's first step started and before A's
        // last step committed.
        let (a_start, ta_last): (f64, f64) = {
            let r = c
                .query_one(
                    "SELECT extract(epoch FROM (SELECT min(started_at) FROM seqmig.step_runs WHERE plan_id = $1))::float8, \
                            extract(epoch FROM (SELECT max(at) FROM public.steps_done WHERE plan = 'ta'))::float8",
                    &[&a.id],
                )
                .await
                .unwrap();
            (r.get(0), r.get(1))
        };
        let (tb_first, tb_last): (f64, f64) = {
            let r = c
                .query_one(
                    "SELECT extract(epoch FROM min(at))::float8, extract(epoch FROM max(at))::float8 \
                     FROM public.steps_done WHERE plan = 'tb'",
                    &[],
                )
                .await
                .unwrap();
            (r.get(0), r.get(1))
        };
        assert!(tb_first > a_start && tb_last < ta_last, "B's steps ran while A's did");
        for (p, t) in [(&a, "ta"), (&b, "tb")] {
            assert_eq!(done(&c, t).await, vec!["s1", "s2", "s3"]);
            assert_eq!(columns(&c, t).await, vec!["id", "c1", "c2", "c3"]);
            assert_eq!(plan_state(&c, p).await, "complete");
            let want: Vec<(String, i64)> = ["s1", "s2", "s3"].iter().map(|s| (s.to_string(), 1)).collect();
            assert_eq!(ok_steps(&c, p).await, want);
        }
    });
}

/// A pseudo-random number below `n` (the clock's nanoseconds): each run kills somewhere else,
/// and the failure message says where.
fn random_below(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    (nanos as u64).wrapping_mul(6_364_136_223_846_793_005).rotate_right(17) % n
}

/// Resumes `plan` until it completes: right after a kill -9 the dead runner's backend may
/// still hold the plan's lock for up to a second (`client_connection_check_interval`).
fn resume(db: &TestDb, plan: &Plan, path: &str) -> String {
    let start = Instant::now();
    loop {
        let out = seqmig(&["apply", "--plan", path, "--phase", "expand", "--actor", "resumer"], db);
        if out.status.code() == Some(0) {
            return text(&out);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30) && text(&out).contains("another seqmig runner holds"),
            "resume of {}: {}",
            plan.short_id(),
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn issue20_1_kill_9_of_either_concurrent_apply_at_a_random_point_resumes_exactly() {
    // Each victim in turn: once killed by the fault injection after a random number of
    // completed steps, once by a real SIGKILL at a random moment.
    for (round, victim_is_a) in [(0, true), (1, false), (2, true), (3, false)] {
        let db = TestDb::new();
        db.execute(TABLES);
        let a = slow_plan("ta", 4, 300, false);
        let b = slow_plan("tb", 4, 300, false);
        let (_da, pa) = write_plan(&a);
        let (_db, pb) = write_plan(&b);
        let (victim, victim_path, other, other_path) =
            if victim_is_a { (&a, &pa, &b, &pb) } else { (&b, &pb, &a, &pa) };
        let injected = round < 2;
        let k = random_below(4) as usize + 1;
        let kill_after = Duration::from_millis(150 + random_below(1000));
        let where_ =
            if injected { format!("after step {k}") } else { format!("{} ms in", kill_after.as_millis()) };
        eprintln!("round {round}: killing plan {} {where_}", victim.short_id());
        block_on(async {
            let c = db.client().await;
            let mut killed = spawn_apply(&db, victim_path, "victim", injected.then_some(k));
            let survivor = spawn_apply(&db, other_path, "survivor", None);
            if !injected {
                tokio::time::sleep(kill_after).await;
                let _ = killed.kill();
            }
            let killed = wait_output(killed);
            let survivor = wait_output(survivor);
            assert_eq!(survivor.status.code(), Some(0), "round {round} ({where_}): {}", text(&survivor));
            assert_ne!(killed.status.code(), Some(0), "round {round}: the victim was not killed ({where_})");
            assert_eq!(plan_state(&c, other).await, "complete");
            let out = resume(&db, victim, victim_path);
            assert!(out.contains("applied"), "{out}");
            for (p, t) in [(&a, "ta"), (&b, "tb")] {
                assert_eq!(done(&c, t).await, vec!["s1", "s2", "s3", "s4"], "round {round} ({where_}), {t}");
                assert_eq!(columns(&c, t).await, vec!["id", "c1", "c2", "c3", "c4"], "round {round}, {t}");
                let want: Vec<(String, i64)> =
                    ["s1", "s2", "s3", "s4"].iter().map(|s| (s.to_string(), 1)).collect();
                assert_eq!(ok_steps(&c, p).await, want, "round {round} ({where_}): each step exactly once");
                assert_eq!(plan_state(&c, p).await, "complete");
            }
        });
    }
}

#[test]
fn issue20_2_plan_id_everywhere_and_ambiguity_lists_the_candidates() {
    let db = TestDb::new();
    db.execute(TABLES);
    let a = slow_plan("ta", 1, 0, true);
    let b = slow_plan("tb", 1, 0, true);
    block_on(async {
        // One plan in flight: the commands find it alone, as before.
        apply_url(&db.url, &a, Phase::Expand).await.unwrap();
        let status = text(&seqmig(&["status"], &db));
        assert!(!status.contains("in flight: through"), "one plan: the status is as before\n{status}");
        apply_url(&db.url, &b, Phase::Expand).await.unwrap();

        let (sa, sb) = (a.short_id(), b.short_id());
        let listed = [format!("{sa} (through expand)"), format!("{sb} (through expand)")];
        for args in [
            vec!["apply", "--phase", "switch"],
            vec!["rollback", "--phase", "expand"],
            vec!["gate"],
            vec!["approve", "--role", "dba"],
        ] {
            let out = seqmig(&args, &db);
            assert_ne!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
            let msg = text(&out);
            assert!(msg.contains("ambiguous"), "{args:?}: {msg}");
            for l in &listed {
                assert!(msg.contains(l.as_str()), "{args:?} lists {l}: {msg}");
            }
        }

        // status shows both, with their progress and gates; --plan-id one of them.
        let status = text(&seqmig(&["status"], &db));
        for s in [sa, sb] {
            assert!(status.contains(&format!("plan {s} (active)")), "{status}");
        }
        assert_eq!(status.matches("in flight: through expand").count(), 2, "{status}");
        assert_eq!(status.matches("  gate: ").count(), 2, "{status}");
        let one = text(&seqmig(&["status", "--plan-id", sa], &db));
        assert!(one.contains(&format!("plan {sa} (active)")) && !one.contains(sb), "{one}");

        // Every single-plan command takes --plan-id.
        let gate = seqmig(&["gate", "--plan-id", sb], &db);
        assert!(text(&gate).contains(sb), "{}", text(&gate));
        let approve = seqmig(&["approve", "--plan-id", sb, "--role", "dba"], &db);
        assert_eq!(approve.status.code(), Some(0), "{}", text(&approve));
        let soak = seqmig(&["soak", "record", "--plan-id", sb, "--criterion", "slo_probe", "--pass"], &db);
        assert_eq!(soak.status.code(), Some(0), "{}", text(&soak));
        let out = seqmig(&["apply", "--plan-id", sa, "--phase", "switch"], &db);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let out = seqmig(&["rollback", "--plan-id", sa, "--phase", "switch"], &db);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        // (B has no backfill: the flag is taken, and nothing matches.)
        let out = seqmig(&["backfill", "pause", "--plan-id", sb], &db);
        assert!(text(&out).contains("no backfill matched"), "{}", text(&out));
    });
}

const USERS0: &str = "
CREATE TABLE public.users (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    email text
);
";

/// What A leaves: `name` renamed to `full_name`.
const USERS1: &str = "
CREATE TABLE public.users (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    full_name text NOT NULL,
    email text
);
";

/// What D, stacked on A, leaves: `email` renamed to `contact` too (the same table as A).
const USERS2: &str = "
CREATE TABLE public.users (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    full_name text NOT NULL,
    contact text
);
";

/// `seqmig plan --from <db> --to <sql> --format json` and more flags: plan, exit code, output.
fn plan_live(db: &TestDb, to_sql: &str, extra: &[&str]) -> (Option<Plan>, i32, String) {
    let dir = TempDir::new();
    let to = dir.path.join("next.sql");
    std::fs::write(&to, to_sql).unwrap();
    let to = to.to_string_lossy().into_owned();
    let mut args = vec!["plan", "--from", db.url.as_str(), "--to", to.as_str(), "--format", "json"];
    args.extend_from_slice(extra);
    let out = seqmig(&args, db);
    let plan = Plan::from_json(&String::from_utf8_lossy(&out.stdout)).ok();
    (plan, out.status.code().unwrap_or(-1), text(&out))
}

fn phases_with_steps(p: &Plan) -> Vec<Phase> {
    Phase::ALL.into_iter().filter(|ph| !p.steps_of(*ph).is_empty()).collect()
}

#[test]
fn issue20_3_stacked_plan_waits_for_the_plan_below_and_rollback_goes_in_reverse_order() {
    let db = TestDb::new();
    db.execute(USERS0);
    db.execute(
        "INSERT INTO public.users (name, email) SELECT 'n' || x, 'e' || x FROM generate_series(1, 50) x",
    );
    let a = {
        let mut hints = seqmig::diff::Hints::default();
        hints.add_rename_flag("public.users.name=full_name").unwrap();
        let (b, t) = (
            crate::exec_examples_tests::load("a.sql", USERS0),
            crate::exec_examples_tests::load("b.sql", USERS1),
        );
        seqmig::plan::plan(&b, &t, &hints, &seqmig::render::Renderer::embedded()).unwrap().plan
    };
    let (sa, url) = (a.short_id().to_string(), db.url.clone());
    block_on(async {
        let c = db.client().await;
        apply_url(&url, &a, Phase::Expand).await.unwrap();

        // Unstacked, D overlaps A on public.users and is blocked; --after A stacks it.
        let rename = ["--rename", "public.users.email=contact"];
        let (_, code, out) = plan_live(&db, USERS2, &rename);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("inflight-overlap"), "{out}");
        let stacked: Vec<&str> = rename.iter().copied().chain(["--after", &sa[..6]]).collect();
        let (d, code, out) = plan_live(&db, USERS2, &stacked);
        assert_eq!(code, 0, "{out}");
        let d = d.unwrap();
        assert!(!d.is_blocked(), "{out}");
        assert_eq!(d.after.as_deref(), Some(a.id.as_str()));
        assert_eq!(d.assumes.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), vec![a.id.as_str()]);
        assert!(d.changes.iter().all(|ch| ch.object.starts_with("public.users.email")), "{:?}", d.changes);
        let sd = d.short_id().to_string();
        let (_dir, pd) = write_plan(&d);
        let text_summary = text(&seqmig(
            &[
                "plan",
                "--from",
                &url,
                "--to",
                &{
                    let p = _dir.path.join("next.sql");
                    std::fs::write(&p, USERS2).unwrap();
                    p.to_string_lossy().into_owned()
                },
                "--rename",
                "public.users.email=contact",
                "--after",
                &sa,
            ],
            &db,
        ));
        assert!(
            text_summary.contains(&format!(
                "stacked after plan {sa}: each phase waits until plan {sa} has completed it (contract: its switch, or its contract when this one removes what it still needs)"
            )),
            "{text_summary}"
        );

        let (a_phases, d_phases) = (phases_with_steps(&a), phases_with_steps(&d));
        let mut refusals = Vec::new();
        for phase in Phase::ALL {
            if phase == Phase::Contract && d_phases.contains(&phase) {
                // D's contract drops only D's own old column, nothing A's rollback or contract
                // needs: it runs while A soaks (the rule is tested in inflight3_tests).
                apply_url(&url, &d, phase).await.unwrap_or_else(|e| panic!("D {phase}: {e}"));
                apply_url(&url, &a, phase).await.unwrap_or_else(|e| panic!("A {phase}: {e}"));
                continue;
            }
            let a_due = a_phases.contains(&phase) && phase != Phase::Expand;
            if a_due && d_phases.contains(&phase) {
                // D's phase before A's: refused, naming A, the phase A must complete, and how.
                match apply_url(&url, &d, phase).await {
                    Err(e @ ExecError::StackedTooEarly { .. }) => {
                        assert!(e.is_refusal());
                        let msg = e.to_string();
                        assert!(msg.contains(&format!("stacked after plan {sa}")), "{msg}");
                        assert!(
                            msg.contains(&format!("run 'seqmig apply --phase {phase} --plan-id {sa}' first")),
                            "{msg}"
                        );
                        refusals.push(phase);
                    }
                    other => panic!("D's {phase} ran before A's: {other:?}"),
                }
            }
            if a_due {
                apply_url(&url, &a, phase).await.unwrap_or_else(|e| panic!("A {phase}: {e}"));
            }
            if d_phases.contains(&phase) {
                apply_url(&url, &d, phase).await.unwrap_or_else(|e| panic!("D {phase}: {e}"));
            }
            if phase == Phase::Expand {
                // The CLI says the same for the next phase, and refuses to roll A back under D.
                let out = seqmig(&["apply", "--plan", &pd, "--phase", "dual_write"], &db);
                let msg = text(&out);
                assert_eq!(out.status.code(), Some(1), "{msg}");
                assert!(msg.contains(&format!("plan {sd} is stacked after plan {sa}")), "{msg}");
                let out = seqmig(&["rollback", "--plan-id", &sa, "--phase", "expand"], &db);
                let msg = text(&out);
                assert_eq!(out.status.code(), Some(1), "{msg}");
                assert!(msg.contains(&format!("plan {sd} (active) is stacked after it")), "{msg}");
                assert!(
                    msg.contains(&format!("first plan {sd}")) && msg.contains(&format!("then plan {sa}")),
                    "{msg}"
                );
                // status shows the dependency both ways.
                let status = text(&seqmig(&["status"], &db));
                assert!(status.contains(&format!("stacked after plan {sa}")), "{status}");
                assert!(status.contains(&format!("plan {sd} is stacked after it")), "{status}");
            }
        }
        assert!(refusals.contains(&Phase::Switch), "D's switch waited for A's: {refusals:?}");
        assert_eq!(plan_state(&c, &a).await, "complete");
        assert_eq!(plan_state(&c, &d).await, "complete");
        assert_eq!(columns(&c, "users").await, vec!["id", "full_name", "contact"]);
        let rows: i64 = c
            .query_one(
                "SELECT count(*) FROM public.users WHERE full_name = 'n' || id AND contact = 'e' || id",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 50, "every row kept its values through both renames");
    });
}

/// An enum-typed default reads back from the catalog as `'pending'::order_status`; a file may
/// spell it `'pending'`, `'pending'::order_status` or `'pending'::public.order_status`. None of
/// these is a change.
#[test]
fn issue20_5_enum_default_from_a_live_database_is_no_change() {
    let db = TestDb::new();
    db.execute(
        "CREATE SCHEMA shop;
         CREATE TYPE public.order_status AS ENUM ('pending', 'paid');
         CREATE TYPE shop.state AS ENUM ('new', 'old');
         CREATE TABLE public.orders (
             id int PRIMARY KEY,
             status public.order_status NOT NULL DEFAULT 'pending',
             state shop.state DEFAULT 'new'::shop.state
         );",
    );
    for (status, state) in [
        ("'pending'", "'new'"),
        ("'pending'::order_status", "'new'::shop.state"),
        ("'pending'::public.order_status", "('new'::shop.state)"),
    ] {
        let file = format!(
            "CREATE SCHEMA shop;
             CREATE TYPE public.order_status AS ENUM ('pending', 'paid');
             CREATE TYPE shop.state AS ENUM ('new', 'old');
             CREATE TABLE public.orders (
                 id int PRIMARY KEY,
                 status public.order_status NOT NULL DEFAULT {status},
                 state shop.state DEFAULT {state}
             );"
        );
        let (plan, code, out) = plan_live(&db, &file, &[]);
        assert_eq!(code, 0, "{out}");
        let plan = plan.unwrap();
        assert!(plan.changes.is_empty(), "DEFAULT {status} / {state}: {:?}", plan.changes);
    }
    // A real change of the default is still one.
    let file = "CREATE SCHEMA shop;
         CREATE TYPE public.order_status AS ENUM ('pending', 'paid');
         CREATE TYPE shop.state AS ENUM ('new', 'old');
         CREATE TABLE public.orders (
             id int PRIMARY KEY,
             status public.order_status NOT NULL DEFAULT 'paid',
             state shop.state DEFAULT 'new'
         );";
    let (plan, _, out) = plan_live(&db, file, &[]);
    let plan = plan.unwrap_or_else(|| panic!("{out}"));
    assert_eq!(plan.changes.len(), 1, "{:?}", plan.changes);
    assert_eq!(plan.changes[0].object, "public.orders.status");
}

/// The book's stacking example: on top of the page's plan A (users.name → full_name, soaking
/// after switch), D renames users.email to contact, on A's table.
const NEXT_STACKED: &str = "
CREATE TABLE public.users (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    full_name text NOT NULL,
    contact text
);
CREATE TABLE public.orders (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    note text NOT NULL,
    qty integer
);
";

/// The ```text blocks of book/src/several-plans.md from the stacking section on.
fn stacking_blocks() -> Vec<String> {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/several-plans.md"),
    )
    .unwrap();
    // The sections on a waiting contract and an older seqmig are checked by inflight3_tests.
    let page = crate::inflight3_tests::without_checked_sections(&page);
    let section =
        page.split(crate::inflight_tests::STACKING_SECTION).nth(1).expect("the page has a stacking section");
    crate::inflight_tests::text_blocks(section)
}

#[test]
fn issue20_3_book_page_quotes_the_stacking_example() {
    use crate::inflight_tests::{MID, OLD, Pair, plan_a};
    let dbs = Pair::databases();
    let dir = TempDir::new();
    let next = dir.path.join("next.sql");
    std::fs::write(&next, NEXT_STACKED).unwrap();
    let next = next.to_string_lossy().into_owned();
    let outputs = block_on(async {
        let a = plan_a();
        let mut p = Pair::new(dbs).await;
        p.apply_through(&a, Phase::Switch, OLD, MID).await;
        let (url, sa) = (p.db.url.clone(), a.short_id().to_string());
        let flags = ["--rename", "public.users.email=contact", "--after", &sa[..6]];
        let mut args = vec!["plan", "--from", url.as_str(), "--to", next.as_str()];
        args.extend_from_slice(&flags);
        let planned = seqmig(&args, &p.db);
        assert_eq!(planned.status.code(), Some(0), "{}", text(&planned));
        let (d, _, out) = plan_live(&p.db, NEXT_STACKED, &flags);
        let d = d.unwrap_or_else(|| panic!("{out}"));
        let sd = d.short_id().to_string();
        for phase in phases_with_steps(&d).into_iter().filter(|ph| *ph < Phase::Contract) {
            apply_url(&url, &d, phase).await.unwrap_or_else(|e| panic!("D {phase}: {e}"));
        }
        let ambiguous = seqmig(&["apply", "--phase", "contract"], &p.db);
        assert_eq!(ambiguous.status.code(), Some(1), "{}", text(&ambiguous));
        let rollback_a = seqmig(&["rollback", "--plan-id", &sa, "--phase", "switch"], &p.db);
        assert_eq!(rollback_a.status.code(), Some(1), "{}", text(&rollback_a));
        assert!(text(&rollback_a).contains(&format!("first plan {sd}")), "{}", text(&rollback_a));
        let status = seqmig(&["status"], &p.db);
        // D's contract removes nothing A needs: it runs while A soaks; then A contracts.
        assert!(seqmig::plan::inflight::stacked_contract_conflict(&d, &a).is_none());
        apply_url(&url, &d, Phase::Contract).await.unwrap();
        apply_url(&url, &a, Phase::Contract).await.unwrap();
        assert_eq!(columns(&p.c, "users").await, vec!["id", "full_name", "contact"]);
        [planned, ambiguous, rollback_a, status].iter().map(text).collect::<Vec<_>>()
    });
    let blocks = stacking_blocks();
    assert!(blocks.len() >= 4, "the stacking section quotes {} outputs", blocks.len());
    for b in &blocks {
        assert!(
            outputs.iter().any(|o| o.contains(b.as_str())),
            "the book quotes output seqmig does not print:\n{b}\n--- seqmig printed:\n{}",
            outputs.join("\n---\n")
        );
    }
}

/// The must-show scenario with A really soaking: its gate stays closed (and its contract
/// refused) the whole time B goes through all five phases, contract included, with old- and
/// new-release writers running; then A contracts. Every row equals the twin's, which got
/// every phase alone and the same writes in the same order.
#[test]
fn issue20_4_b_contracts_while_a_soaks_behind_its_closed_gate_then_a_contracts() {
    use crate::inflight_tests::{MID, NEW, Pair, a_soaks_and_b_is_planned, assert_end, plan_a};
    let dbs = Pair::databases();
    block_on(async {
        let a = plan_a();
        let mut p = Pair::new(dbs).await;
        let b = a_soaks_and_b_is_planned(&mut p, &a).await;
        let sa = a.short_id().to_string();
        let closed = |p: &Pair| {
            let gate = seqmig(&["gate", "--plan-id", &sa], &p.db);
            assert_eq!(gate.status.code(), Some(1), "A's gate is open: {}", text(&gate));
            assert!(text(&gate).contains("min_soak"), "{}", text(&gate));
        };
        closed(&p);
        p.apply_from(&b, Phase::Expand, MID, NEW).await;
        // B is complete, A still soaks: its gate is closed and its contract refused.
        closed(&p);
        let refused = seqmig(&["apply", "--plan-id", &sa, "--phase", "contract"], &p.db);
        assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
        assert!(text(&refused).contains("soak gate in front of contract is closed"), "{}", text(&refused));
        let state: String =
            p.c.query_one("SELECT state FROM seqmig.plans WHERE id = $1", &[&b.id]).await.unwrap().get(0);
        assert_eq!(state, "complete");
        // Then A contracts (past its gate here; the gate itself is tested in gate_tests).
        p.apply(&a, Phase::Contract, NEW).await;
        p.write(NEW).await;
        assert!(seqmig::exec::inflight::in_flight(&p.c).await.unwrap().is_empty());
        assert_end(&p).await;
    });
}
