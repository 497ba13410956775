//! Lifecycle truth (issue 18, items 1 and 2, and the model-based lifecycle test): no path
//! through apply, rollback, re-apply, a hand-run backfill and kill -9 loses data, `status`
//! says what the database holds, and every re-apply completes.
//!
//! Everything runs through the `seqmig` binary, as an operator would, on a plan of two
//! changes of `public.orders`: `price numeric(12,2)` becomes `price_cents bigint` (a transform
//! with `up` and `down`) and `name` becomes `title` (a rename). Each change has a backfill.
//! A twin table, `model_twin.orders`, receives the same writes with no migration; the data
//! must equal the twin's under the plan's mapping (`price_cents = (price * 100)::bigint`,
//! `title = name`).

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::time::{Duration, Instant};

use seqmig::plan::{Phase, Plan};
use tokio_postgres::Client;

use crate::harness::{TestDb, block_on};
use crate::reliability_tests::env_number;

const BEFORE: &str = "CREATE TABLE public.orders (
    id bigint PRIMARY KEY,
    price numeric(12,2) NOT NULL,
    name text NOT NULL
);";

const AFTER: &str = "CREATE TABLE public.orders (
    id bigint PRIMARY KEY,
    price_cents bigint NOT NULL,
    title text NOT NULL
);";

const HINTS: &str = r#"
[[transform]]
table = "public.orders"
column = "price_cents"
from = "price"
up = "(price * 100)::bigint"
down = "(price_cents / 100.0)::numeric(12,2)"

[[rename]]
table = "public.orders"
from = "name"
to = "title"
"#;

/// The gate in front of contract: only what the database can show at once (no soak time),
/// so that contract runs on evidence and a break-glass would be a finding.
const GATE: &str = "[gate]\nbuiltin_defaults = false\nmin_soak = \"0s\"\nbackfill_verified = true\n\
                    constraints_validated = true\n";

const SEED_ROWS: i64 = 200;
const SIGABRT: i32 = 6;

/// The shape of `public.orders` and how its backfills run: the plain table of this module,
/// or the sliced and partitioned ones of `lifecycle_model2_tests`. The columns are always
/// `id`, `price`, `name` before and `id`, `price_cents`, `title` after, so the twin, the
/// writers and the mapping are the same for every shape.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// DDL of `public.orders` (and its partitions) before and after.
    pub before: String,
    pub after: String,
    /// Run after the seed rows are inserted, before the twin copies them.
    pub after_seed: String,
    /// Appended to `seqmig.toml` (`[backfill] jobs = 2`).
    pub config: String,
    /// `--jobs N` on every `apply --phase backfill`.
    pub jobs: Option<u32>,
    /// Whether the generator emits [`Op::KillBackfill`].
    pub backfill_kills: bool,
    /// Seed rows (ids 1..=rows): enough for several batches per slice or partition when
    /// the kills should land between them.
    pub rows: i64,
}

impl Shape {
    /// The plain table with a one-connection backfill.
    pub fn plain() -> Shape {
        Shape {
            before: BEFORE.into(),
            after: AFTER.into(),
            after_seed: String::new(),
            config: String::new(),
            jobs: None,
            backfill_kills: false,
            rows: SEED_ROWS,
        }
    }

    /// The plan, with the planner's default gate criteria dropped: the gate comes from [`GATE`].
    pub fn plan(&self) -> Plan {
        crate::reliability_faults_tests::plan_from(&self.before, &self.after, HINTS)
    }
}

fn orders_plan() -> Plan {
    Shape::plain().plan()
}

/// A working directory holding `plan.json` and a `seqmig.toml` with the gate, and the
/// database the binary runs against.
struct Env {
    db: TestDb,
    dir: std::path::PathBuf,
    plan: Plan,
    jobs: Option<u32>,
}

impl Env {
    fn new(db: TestDb, plan: &Plan) -> Env {
        Env::with_shape(db, plan, &Shape::plain())
    }

    fn with_shape(db: TestDb, plan: &Plan, shape: &Shape) -> Env {
        let dir = std::env::temp_dir().join(format!("seqmig-lifecycle-{}", db.name));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("seqmig.toml"), format!("{GATE}{}", shape.config)).unwrap();
        std::fs::write(dir.join("plan.json"), plan.to_json_pretty()).unwrap();
        Env { db, dir, plan: plan.clone(), jobs: shape.jobs }
    }

    fn run(&self, args: &[&str], envs: &[(&str, String)]) -> Output {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_seqmig"));
        c.args(args).current_dir(&self.dir).env("DATABASE_URL", &self.db.url).env("SEQMIG_ACTOR", "model");
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn apply(&self, phase: Phase, envs: &[(&str, String)]) -> Output {
        self.apply_jobs(phase, self.jobs, envs)
    }

    /// `apply`, with `--jobs N` when `phase` is backfill and `jobs` is set.
    fn apply_jobs(&self, phase: Phase, jobs: Option<u32>, envs: &[(&str, String)]) -> Output {
        let mut args = vec!["apply", "--plan", "plan.json", "--phase", phase.as_str()]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        if let (Phase::Backfill, Some(j)) = (phase, jobs) {
            args.extend(["--jobs".to_string(), j.to_string()]);
        }
        self.run(&args.iter().map(String::as_str).collect::<Vec<_>>(), envs)
    }

    fn rollback(&self, phase: Phase, envs: &[(&str, String)]) -> Output {
        self.run(&["rollback", "--plan", "plan.json", "--phase", phase.as_str()], envs)
    }

    /// `seqmig backfill run` of the price backfill's step with `expr`.
    fn backfill_run(&self, expr: &str) -> Output {
        let step = backfill_step(&self.plan, "price_cents");
        self.run(
            &[
                "backfill",
                "run",
                "--plan-id",
                &self.plan.id,
                "--step-id",
                &step,
                "--table",
                "public.orders",
                "--column",
                "price_cents",
                "--expr",
                expr,
                "--unthrottled",
                "--json",
            ],
            &[],
        )
    }

    fn status_json(&self) -> Result<serde_json::Value, String> {
        let out = self.run(&["status", "--plan-id", &self.plan.id, "--format", "json"], &[]);
        if out.status.code() != Some(0) {
            return Err(format!("status failed: {}", text(&out)));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("status is not JSON: {e}: {}", text(&out)))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The id of the plan's backfill step that writes `column`.
fn backfill_step(plan: &Plan, column: &str) -> String {
    plan.steps
        .iter()
        .find(|s| s.backfill.as_ref().is_some_and(|b| b.target_column.as_str() == column))
        .map(|s| s.id.clone())
        .unwrap()
}

/// `public.orders` and its twin, seeded with the same rows.
fn seeded_db() -> TestDb {
    seeded_shape(&Shape::plain())
}

/// `public.orders` in `shape` and its twin, seeded with the same rows.
fn seeded_shape(shape: &Shape) -> TestDb {
    let db = TestDb::new();
    db.execute(&shape.before);
    db.execute(&format!(
        "CREATE SCHEMA model_twin;
         CREATE TABLE model_twin.orders (id bigint PRIMARY KEY, price numeric(12,2) NOT NULL, name text NOT NULL);
         INSERT INTO public.orders (id, price, name)
              SELECT g, (g * 1.25)::numeric(12,2), 'order ' || g FROM generate_series(1, {}) g;
         {}
         INSERT INTO model_twin.orders SELECT id, price, name FROM public.orders;
         ANALYZE public.orders;",
        shape.rows, shape.after_seed
    ));
    db
}

fn columns_sql() -> &'static str {
    "SELECT coalesce(array_agg(attname::text), '{}') FROM pg_attribute
     WHERE attrelid = 'public.orders'::regclass AND attnum > 0 AND NOT attisdropped"
}

async fn columns(c: &Client) -> Vec<String> {
    c.query_one(columns_sql(), &[]).await.unwrap().get(0)
}

/// Rows of `public.orders` that differ from the twin: missing or extra rows, the old columns
/// where they exist, and the new columns where `check_new` says they must be current.
async fn wrong_rows(c: &Client, check_title: bool, check_cents: bool) -> (i64, String) {
    let cols = columns(c).await;
    let has = |n: &str| cols.iter().any(|c| c == n);
    let mut conds = vec!["o.id IS NULL".to_string(), "t.id IS NULL".to_string()];
    if has("price") {
        conds.push("o.price IS DISTINCT FROM t.price".into());
    }
    if has("name") {
        conds.push("o.name IS DISTINCT FROM t.name".into());
    }
    if has("title") && (check_title || !has("name")) {
        conds.push("o.title IS DISTINCT FROM t.name".into());
    }
    if has("price_cents") && (check_cents || !has("price")) {
        conds.push("o.price_cents IS DISTINCT FROM (t.price * 100)::bigint".into());
    }
    let sql = format!(
        "SELECT count(*), coalesce(min(coalesce(o.id, t.id)), 0) FROM public.orders o
         FULL JOIN model_twin.orders t ON t.id = o.id WHERE {}",
        conds.join(" OR ")
    );
    let row = c.query_one(&sql, &[]).await.unwrap();
    let total: i64 = c.query_one("SELECT count(*) FROM model_twin.orders", &[]).await.unwrap().get(0);
    let (n, first): (i64, i64) = (row.get(0), row.get(1));
    (n, format!("{n}/{total} rows wrong (first id {first}; columns {})", cols.join(", ")))
}

/// Rows still pending by the plan's own definition of a backfill step, when its columns exist.
async fn true_pending(c: &Client, plan: &Plan, step_id: &str) -> Option<i64> {
    let spec = plan.steps.iter().find(|s| s.id == step_id)?.backfill.as_ref()?;
    let sql = format!("SELECT count(*) FROM {} WHERE {}", spec.table.quoted(), spec.pending_predicate);
    c.query_one(&sql, &[]).await.ok().map(|r| r.get(0))
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/// One operation of a lifecycle. Arguments are raw random numbers, fitted to the state when
/// the operation runs, so that a shrunk sequence still means something.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    /// `apply` the first phase that is not complete (resumes a partial one).
    Apply,
    /// Roll back `n` phases, last touched first.
    Rollback(u32),
    /// `seqmig backfill run` of the plan's price step with another expression.
    WrongBackfill,
    /// `apply` of the first incomplete phase, killed (SIGABRT, like kill -9) after `k` steps.
    KillApply(u32),
    /// `rollback` of the last touched phase, killed after `k` undone steps.
    KillRollback(u32),
    /// The old release writes (old columns), as long as contract has not started.
    OldWrites(u32),
    /// The new release writes (new columns), once switch is applied.
    NewWrites(u32),
    /// `apply` up to the first phase with a backfill left, then of that phase with `--jobs j`,
    /// killed (SIGABRT) right after the `k`-th batch commits: in the middle of a backfill
    /// step, between slices or partitions, or not at all when fewer batches remain.
    KillBackfill(u32, u32),
}

impl Op {
    fn describe(self) -> String {
        match self {
            Op::Apply => "apply".into(),
            Op::Rollback(n) => format!("rollback {n} phase(s)"),
            Op::WrongBackfill => "backfill run --expr '(price * 10)::bigint'".into(),
            Op::KillApply(k) => format!("apply killed after step {k}"),
            Op::KillRollback(k) => format!("rollback killed after step {k}"),
            Op::OldWrites(s) => format!("old-release writes #{s}"),
            Op::NewWrites(s) => format!("new-release writes #{s}"),
            Op::KillBackfill(k, j) => format!("apply --jobs {j} killed after backfill batch {k}"),
        }
    }
}

/// xorshift64*: seeded, reproducible, and enough for picking operations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn generate(seed: u64, len: usize, shape: &Shape) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    (0..len)
        .map(|_| {
            let arg = rng.below(1000) as u32 + 1;
            match rng.below(100) {
                0..=15 if shape.backfill_kills => Op::KillBackfill(arg % 8 + 1, arg % 3 + 1),
                0..=33 => Op::Apply,
                34..=43 => Op::Rollback(arg % 3 + 1),
                44..=50 => Op::WrongBackfill,
                51..=64 => Op::KillApply(arg),
                65..=70 => Op::KillRollback(arg),
                71..=87 => Op::OldWrites(arg),
                _ => Op::NewWrites(arg),
            }
        })
        .collect()
}

/// What the model believes of each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepModel {
    Pending,
    Done,
    RolledBack,
    /// Started by a run that was killed before the step completed.
    Interrupted,
}

/// The expected state: each step's, whether the plan is stored, the next free id.
struct Model {
    plan: Plan,
    steps: BTreeMap<String, StepModel>,
    stored: bool,
    next_id: i64,
    /// The seed rows, ids 1..=rows.
    rows: i64,
}

impl Model {
    fn new(plan: &Plan, rows: i64) -> Model {
        Model {
            plan: plan.clone(),
            steps: plan.steps.iter().map(|s| (s.id.clone(), StepModel::Pending)).collect(),
            stored: false,
            next_id: rows + 1,
            rows,
        }
    }

    fn step_ids(&self, phase: Phase) -> Vec<String> {
        self.plan.steps_of(phase).iter().map(|s| s.id.clone()).collect()
    }

    /// The phase state as `status` must name it.
    fn phase_state(&self, phase: Phase) -> &'static str {
        let ids = self.step_ids(phase);
        let states: Vec<StepModel> = ids.iter().map(|i| self.steps[i]).collect();
        if states.is_empty() {
            "empty"
        } else if states.iter().all(|s| *s == StepModel::Done) {
            "applied"
        } else if states.contains(&StepModel::Interrupted) {
            "interrupted"
        } else if states.contains(&StepModel::Done) {
            "partial"
        } else if states.contains(&StepModel::RolledBack) {
            "rolled_back"
        } else {
            "pending"
        }
    }

    fn first_incomplete(&self) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| !matches!(self.phase_state(*p), "applied" | "empty"))
    }

    /// The last phase with an applied step (what a rollback undoes), unless contract started.
    fn last_touched(&self) -> Option<Phase> {
        let p = Phase::ALL
            .into_iter()
            .rev()
            .find(|p| self.step_ids(*p).iter().any(|i| self.steps[i] == StepModel::Done))?;
        (p != Phase::Contract).then_some(p)
    }

    fn contract_started(&self) -> bool {
        self.step_ids(Phase::Contract).iter().any(|i| self.steps[i] == StepModel::Done)
    }

    fn done(&self, step: &str) -> bool {
        self.steps[step] == StepModel::Done
    }

    /// Marks one step done (a killed run reported it done before it died).
    fn step_done(&mut self, step: &str) {
        self.steps.insert(step.to_string(), StepModel::Done);
        self.stored = true;
    }

    /// Marks one step interrupted (a run was killed in the middle of it).
    fn step_interrupted(&mut self, step: &str) {
        self.steps.insert(step.to_string(), StepModel::Interrupted);
        self.stored = true;
    }

    /// Marks the first `k` steps of `phase` not yet done as done (all of them for `None`).
    fn applied(&mut self, phase: Phase, k: Option<usize>) {
        let todo: Vec<String> =
            self.step_ids(phase).into_iter().filter(|i| self.steps[i] != StepModel::Done).collect();
        for id in todo.iter().take(k.unwrap_or(usize::MAX)) {
            self.steps.insert(id.clone(), StepModel::Done);
        }
        self.stored = true;
    }

    /// Marks the last `k` applied steps of `phase` as rolled back (all of them for `None`).
    fn rolled_back(&mut self, phase: Phase, k: Option<usize>) {
        let done: Vec<String> =
            self.step_ids(phase).into_iter().rev().filter(|i| self.steps[i] == StepModel::Done).collect();
        for id in done.iter().take(k.unwrap_or(usize::MAX)) {
            self.steps.insert(id.clone(), StepModel::RolledBack);
        }
    }
}

/// Counts what one run did, for the report line.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    ops: usize,
    skipped: usize,
    kills: usize,
    contract_kills: usize,
    /// Kills right after a backfill batch committed.
    backfill_kills: usize,
}

/// Runs `ops` on a fresh copy of `base`, then drives the plan to its end; `Err` names the
/// first broken invariant and the operation (index) after which it broke.
fn run_sequence(
    base: &TestDb,
    shape: &Shape,
    plan: &Plan,
    ops: &[Op],
    counts: &mut Counts,
) -> Result<(), (usize, String)> {
    let env = Env::with_shape(base.copy(), plan, shape);
    let mut model = Model::new(plan, shape.rows);
    block_on(async {
        let c = env.db.client().await;
        for (i, op) in ops.iter().enumerate() {
            let ran = perform(&env, &c, &mut model, *op, counts).await.map_err(|e| (i, e))?;
            if !ran {
                counts.skipped += 1;
                continue;
            }
            counts.ops += 1;
            check(&env, &c, &model).await.map_err(|e| (i, e))?;
        }
        // Every re-apply completes: drive the plan to its end, on evidence.
        let end = ops.len();
        let mut guard = 0;
        while let Some(phase) = model.first_incomplete() {
            let out = env.apply(phase, &[]);
            if out.status.code() != Some(0) {
                return Err((end, format!("completing: apply {phase} failed: {}", text(&out))));
            }
            model.applied(phase, None);
            counts.ops += 1;
            check(&env, &c, &model)
                .await
                .map_err(|e| (end, format!("completing, after apply {phase}: {e}")))?;
            guard += 1;
            assert!(guard < 10);
        }
        Ok(())
    })
}

/// Runs one operation if it makes sense in the model's state; `Ok(false)` when it does not.
async fn perform(
    env: &Env,
    c: &Client,
    model: &mut Model,
    op: Op,
    counts: &mut Counts,
) -> Result<bool, String> {
    let fault = |k: usize| vec![("SEQMIG_FAULT_AFTER_STEPS", k.to_string())];
    match op {
        Op::Apply => {
            let Some(phase) = model.first_incomplete() else { return Ok(false) };
            let out = env.apply(phase, &[]);
            if out.status.code() != Some(0) {
                return Err(format!("apply {phase} failed: {}", text(&out)));
            }
            model.applied(phase, None);
        }
        Op::Rollback(n) => {
            if model.last_touched().is_none() {
                return Ok(false);
            }
            for _ in 0..n {
                let Some(phase) = model.last_touched() else { break };
                let out = env.rollback(phase, &[]);
                if out.status.code() != Some(0) {
                    return Err(format!("rollback {phase} failed: {}", text(&out)));
                }
                model.rolled_back(phase, None);
            }
        }
        Op::WrongBackfill => {
            if !model.stored {
                return Ok(false);
            }
            // Refused (exit 2) or not, the invariants below must hold afterwards.
            let out = env.backfill_run("(price * 10)::bigint");
            if out.status.signal().is_some() {
                return Err(format!("backfill run crashed: {}", text(&out)));
            }
        }
        Op::KillApply(k) => {
            let Some(phase) = model.first_incomplete() else { return Ok(false) };
            let todo = model.step_ids(phase).iter().filter(|i| !model.done(i)).count();
            let k = (k as usize - 1) % todo + 1;
            let out = env.apply(phase, &fault(k));
            if out.status.signal() != Some(SIGABRT) {
                return Err(format!(
                    "apply {phase} with a fault after step {k} was not killed: {}",
                    text(&out)
                ));
            }
            model.applied(phase, Some(k));
            counts.kills += 1;
            if phase == Phase::Contract {
                counts.contract_kills += 1;
            }
            wait_for_runner_gone(c).await;
        }
        Op::KillRollback(k) => {
            let Some(phase) = model.last_touched() else { return Ok(false) };
            let done = model.step_ids(phase).iter().filter(|i| model.done(i)).count();
            let k = (k as usize - 1) % done + 1;
            let out = env.rollback(phase, &fault(k));
            if out.status.signal() != Some(SIGABRT) {
                return Err(format!(
                    "rollback {phase} with a fault after step {k} was not killed: {}",
                    text(&out)
                ));
            }
            model.rolled_back(phase, Some(k));
            counts.kills += 1;
            wait_for_runner_gone(c).await;
        }
        Op::OldWrites(s) => {
            if model.contract_started() {
                return Ok(false);
            }
            let (m, r) = (u64::from(s % 3 + 2), u64::from(s % 2));
            let id = model.next_id;
            model.next_id += 1;
            let gone = i64::from(s) % model.rows + 1;
            let sql = format!(
                "UPDATE {{t}} SET price = price + 1, name = name || ' v2' WHERE id % {m} = {r};
                 INSERT INTO {{t}} (id, price, name) VALUES ({id}, {s}.25, 'old {id}');
                 DELETE FROM {{t}} WHERE id = {gone};"
            );
            write_both(c, &sql, &sql).await.map_err(|e| format!("old-release writes: {e}"))?;
        }
        Op::KillBackfill(k, j) => {
            let backfill_left = |m: &Model, p: Phase| {
                m.plan.steps_of(p).iter().any(|s| s.backfill.is_some() && !m.done(&s.id))
            };
            // The phases before the backfill are applied first, so that the kill lands in a
            // backfill whenever one is left.
            if !Phase::ALL.into_iter().any(|p| backfill_left(model, p)) {
                return Ok(false);
            }
            while let Some(phase) = model.first_incomplete()
                && !backfill_left(model, phase)
            {
                let out = env.apply(phase, &[]);
                if out.status.code() != Some(0) {
                    return Err(format!("apply {phase} failed: {}", text(&out)));
                }
                model.applied(phase, None);
            }
            let Some(phase) = model.first_incomplete() else { return Ok(false) };
            let out = env.apply_jobs(phase, Some(j), &[("SEQMIG_FAULT_AFTER_BATCHES", k.to_string())]);
            match (out.status.code(), out.status.signal()) {
                (Some(0), _) => model.applied(phase, None),
                (_, Some(SIGABRT)) => {
                    // The steps the run reported done before it died, and the one it died in.
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let said = |id: &str, what: &str| {
                        stderr.lines().any(|l| l.trim_start().starts_with(&format!("{id} {what}")))
                    };
                    for id in model.step_ids(phase) {
                        if said(&id, "ok in ") {
                            model.step_done(&id);
                        } else if said(&id, "apply (") {
                            model.step_interrupted(&id);
                        }
                    }
                    counts.kills += 1;
                    counts.backfill_kills += 1;
                    wait_for_runner_gone(c).await;
                }
                _ => return Err(format!("apply {phase} --jobs {j} failed: {}", text(&out))),
            }
        }
        Op::NewWrites(s) => {
            if model.phase_state(Phase::Switch) != "applied" {
                return Ok(false);
            }
            let (m, r) = (u64::from(s % 3 + 2), u64::from(s % 2));
            let id = model.next_id;
            model.next_id += 1;
            let gone = i64::from(s * 7) % model.rows + 1;
            let new = format!(
                "UPDATE {{t}} SET price_cents = price_cents + 100, title = title || ' n' WHERE id % {m} = {r};
                 INSERT INTO {{t}} (id, price_cents, title) VALUES ({id}, {s}50, 'new {id}');
                 DELETE FROM {{t}} WHERE id = {gone};"
            );
            let twin = format!(
                "UPDATE {{t}} SET price = price + 1, name = name || ' n' WHERE id % {m} = {r};
                 INSERT INTO {{t}} (id, price, name) VALUES ({id}, {s}.50, 'new {id}');
                 DELETE FROM {{t}} WHERE id = {gone};"
            );
            write_both(c, &new, &twin).await.map_err(|e| format!("new-release writes: {e}"))?;
        }
    }
    Ok(true)
}

/// Runs `live` on `public.orders` and `twin` on the twin (`{t}` names the table), in one
/// transaction.
async fn write_both(c: &Client, live: &str, twin: &str) -> Result<(), String> {
    let sql = format!(
        "BEGIN; {} {} COMMIT;",
        live.replace("{t}", "public.orders"),
        twin.replace("{t}", "model_twin.orders")
    );
    if let Err(e) = c.batch_execute(&sql).await {
        let _ = c.batch_execute("ROLLBACK").await;
        return Err(e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string()));
    }
    Ok(())
}

/// Waits until the killed runner's backend has gone: it holds the runner lock until then.
async fn wait_for_runner_gone(c: &Client) {
    let t0 = Instant::now();
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1936028013::oid AND objid = 1768357889::oid
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if n == 0 {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "the killed runner never went away");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The invariants after one operation.
async fn check(env: &Env, c: &Client, model: &Model) -> Result<(), String> {
    let plan = &env.plan;
    let title_step = backfill_step(plan, "title");
    let cents_step = backfill_step(plan, "price_cents");
    // 1. The data equals the twin's under the mapping; a column a finished backfill step
    //    wrote must be current (the triggers keep it so from then on).
    let (wrong, what) = wrong_rows(c, model.done(&title_step), model.done(&cents_step)).await;
    if wrong != 0 {
        return Err(format!("data differs from the twin: {what}"));
    }
    if !model.stored {
        return Ok(());
    }
    // 2. `status` says what the ledger and the database hold.
    let status = env.status_json()?;
    let p = &status["plans"][0];
    for phase in Phase::ALL {
        let got = p["phases"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["phase"] == phase.as_str()))
            .and_then(|x| x["state"].as_str())
            .unwrap_or("?")
            .to_string();
        let want = model.phase_state(phase);
        if got != want {
            return Err(format!("status says {phase} is {got}, the model says {want}"));
        }
    }
    for b in p["backfills"].as_array().cloned().unwrap_or_default() {
        let step = b["step_id"].as_str().unwrap_or_default();
        if b["state"] != "done" {
            continue;
        }
        let said = b["verify_mismatches"].as_i64();
        if let Some(n) = true_pending(c, plan, step).await
            && said != Some(n)
        {
            return Err(format!(
                "status says backfill {step} is done with {said:?} mismatches; {n} rows differ"
            ));
        }
    }
    Ok(())
}

/// Drops operations one at a time while the sequence still fails, keeping only the prefix up
/// to the failing operation; returns the minimal sequence and its failure.
fn shrink(
    base: &TestDb,
    shape: &Shape,
    plan: &Plan,
    mut ops: Vec<Op>,
    at: usize,
    mut why: String,
) -> (Vec<Op>, String) {
    ops.truncate(at + 1);
    let mut counts = Counts::default();
    let mut i = 0;
    while i < ops.len() {
        let mut candidate = ops.clone();
        candidate.remove(i);
        match run_sequence(base, shape, plan, &candidate, &mut counts) {
            Err((at, w)) => {
                candidate.truncate(at + 1);
                ops = candidate;
                why = w;
            }
            Ok(()) => i += 1,
        }
    }
    (ops, why)
}

/// Runs one fixed sequence on `shape` (a shrunk failure kept as a regression test).
pub(crate) fn replay(shape: &Shape, ops: &[Op]) {
    let plan = shape.plan();
    let base = seeded_shape(shape);
    if let Err((at, why)) = run_sequence(&base, shape, &plan, ops, &mut Counts::default()) {
        panic!("fails after operation {} of:\n{}{why}", at + 1, listing(ops));
    }
}

fn listing(ops: &[Op]) -> String {
    ops.iter().enumerate().map(|(i, op)| format!("  {}. {}\n", i + 1, op.describe())).collect()
}

/// Issue 18: random sequences of apply, rollback of one to three phases, re-apply, a hand-run
/// backfill with another expression, kill -9 in the middle of apply and rollback, and writers
/// of both releases; after every operation the data equals the twin's, `status` agrees with
/// the database, and at the end the plan is driven to completion. `SEQMIG_MODEL_CASES`
/// (default 6), `SEQMIG_MODEL_OPS` (operations per sequence, default 16) and
/// `SEQMIG_MODEL_SEED` choose the run; a failure is shrunk and printed. Two more tests run
/// fixed seeds in parallel with it, so `cargo test` runs a few hundred operations.
#[test]
fn lifecycle_model_random_sequences_keep_data_status_and_resume() {
    model_run(env_number("SEQMIG_MODEL_SEED", 18), env_number("SEQMIG_MODEL_CASES", 6));
}

#[test]
fn lifecycle_model_random_sequences_seed_19() {
    model_run(19, 4);
}

#[test]
fn lifecycle_model_random_sequences_seed_20() {
    model_run(20, 4);
}

fn model_run(seed0: u64, cases: u64) {
    model_run_shape("lifecycle model", &Shape::plain(), seed0, cases);
}

/// Runs `cases` random sequences on `shape`, shrinking and printing the first failure.
#[allow(clippy::print_stderr)] // the run's counts are its report (book: reliability.md)
pub(crate) fn model_run_shape(name: &str, shape: &Shape, seed0: u64, cases: u64) {
    let len = env_number("SEQMIG_MODEL_OPS", 16) as usize;
    let plan = shape.plan();
    let base = seeded_shape(shape);
    let t0 = Instant::now();
    let mut counts = Counts::default();
    for case in 0..cases {
        let seed = seed0.wrapping_mul(1_000_003).wrapping_add(case);
        let ops = generate(seed, len, shape);
        if let Err((at, why)) = run_sequence(&base, shape, &plan, &ops, &mut counts) {
            eprintln!("{name}: seed {seed} failed after operation {}: {why}; shrinking", at + 1);
            let (minimal, why) = shrink(&base, shape, &plan, ops, at, why);
            panic!(
                "{name} (seed {seed}, SEQMIG_MODEL_SEED={seed0}, case {case}) fails with {} operation(s), then completing the plan:\n{}{why}",
                minimal.len(),
                listing(&minimal)
            );
        }
    }
    eprintln!(
        "{name}: {cases} sequences, {} operations run ({} skipped as meaningless in their state), \
         {} kills ({} in contract, {} mid-backfill), {:.1} s, SEQMIG_MODEL_SEED={seed0}",
        counts.ops,
        counts.skipped,
        counts.kills,
        counts.contract_kills,
        counts.backfill_kills,
        t0.elapsed().as_secs_f64()
    );
}

fn ok(out: &Output, what: &str) {
    assert_eq!(out.status.code(), Some(0), "{what}: {}", text(out));
}

async fn old_release_update(c: &Client) {
    write_both(
        c,
        "UPDATE {t} SET price = price + 1, name = name || ' v2' WHERE id % 2 = 0;",
        "UPDATE {t} SET price = price + 1, name = name || ' v2' WHERE id % 2 = 0;",
    )
    .await
    .unwrap();
}

/// Issue 18.1, as reported: apply expand, dual_write and backfill; roll back backfill and
/// dual_write; the old release updates half the rows; apply dual_write and backfill again.
/// The re-applied backfill must copy those rows again (the rollback reset its record), and
/// `status` must report the real count.
#[test]
fn issue18_1_rollback_then_reapply_redoes_backfill() {
    let plan = orders_plan();
    let env = Env::new(seeded_db(), &plan);
    for phase in [Phase::Expand, Phase::DualWrite, Phase::Backfill] {
        ok(&env.apply(phase, &[]), &format!("apply {phase}"));
    }
    ok(&env.rollback(Phase::Backfill, &[]), "rollback backfill");
    ok(&env.rollback(Phase::DualWrite, &[]), "rollback dual_write");
    block_on(async {
        let c = env.db.client().await;
        let records: i64 = c.query_one("SELECT count(*) FROM seqmig.backfills", &[]).await.unwrap().get(0);
        assert_eq!(records, 0, "the rollback of backfill resets the backfills it undid");
        old_release_update(&c).await;
        let stale = true_pending(&c, &plan, &backfill_step(&plan, "price_cents")).await.unwrap();
        assert_eq!(stale, SEED_ROWS / 2, "the old release's writes are not in the new columns yet");
    });
    ok(&env.apply(Phase::DualWrite, &[]), "re-apply dual_write");
    let out = env.apply(Phase::Backfill, &[]);
    ok(&out, "re-apply backfill");
    block_on(async {
        let c = env.db.client().await;
        let (wrong, what) = wrong_rows(&c, true, true).await;
        assert_eq!(wrong, 0, "after the re-applied backfill: {what}");
        for column in ["title", "price_cents"] {
            let step = backfill_step(&plan, column);
            assert_eq!(true_pending(&c, &plan, &step).await, Some(0), "{column}");
            let written: i64 = c
                .query_one("SELECT rows_done FROM seqmig.backfills WHERE step_id = $1", &[&step])
                .await
                .unwrap()
                .get(0);
            assert_eq!(written, SEED_ROWS / 2, "{column}: the re-applied backfill copies the stale rows");
        }
        let status = env.status_json().unwrap();
        for b in status["plans"][0]["backfills"].as_array().unwrap() {
            assert_eq!(b["state"], "done", "{b}");
            assert_eq!(b["verify_mismatches"], 0, "{b}");
        }
        // switch, then the new release writes: nothing of the old release's edits is lost.
        ok(&env.apply(Phase::Switch, &[]), "switch");
        write_both(
            &c,
            "UPDATE {t} SET price_cents = price_cents + 100 WHERE id % 4 = 0;",
            "UPDATE {t} SET price = price + 1 WHERE id % 4 = 0;",
        )
        .await
        .unwrap();
        let (wrong, what) = wrong_rows(&c, true, true).await;
        assert_eq!(wrong, 0, "after switch and new-release writes: {what}");
    });
}

/// Issue 18.1, the second way in: `seqmig backfill run` with another expression than the
/// plan's is refused before it writes anything, naming both; and a ledger that says "done"
/// for work done with another expression (written behind seqmig's back) does not make
/// `apply --phase backfill` pass: the engine verifies with the plan's expression and copies
/// again.
#[test]
fn issue18_1_backfill_with_another_expression_never_passes_for_the_plans() {
    let plan = orders_plan();
    let env = Env::new(seeded_db(), &plan);
    for phase in [Phase::Expand, Phase::DualWrite] {
        ok(&env.apply(phase, &[]), &format!("apply {phase}"));
    }
    let out = env.backfill_run("(price * 10)::bigint");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("public.orders")
            && t.contains("price_cents")
            && t.contains("(price * 10)::bigint")
            && t.contains("(price * 100)::bigint"),
        "the refusal names the table, the column and both expressions: {t}"
    );
    let step = backfill_step(&plan, "price_cents");
    block_on(async {
        let mut c = env.db.client().await;
        let written: i64 = c
            .query_one("SELECT count(*) FROM public.orders WHERE price_cents IS NOT NULL", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(written, 0, "a refused backfill writes nothing");
        // The plan's own expression is accepted.
        let out = env.backfill_run("(price * 100)::bigint");
        ok(&out, "backfill run with the plan's expression");
        // Behind seqmig's back: the engine run with another expression under the plan's step.
        let mut spec = plan.steps.iter().find(|s| s.id == step).unwrap().backfill.clone().unwrap();
        spec.expr = "(price * 10)::bigint".into();
        spec.pending_predicate = "price_cents IS DISTINCT FROM ((price * 10)::bigint)".into();
        c.batch_execute("DELETE FROM seqmig.backfills").await.unwrap();
        let req = seqmig::backfill::BackfillRequest { plan_id: &plan.id, step_id: &step, spec: &spec };
        let o = seqmig::backfill::run(
            &mut c,
            &req,
            &seqmig::backfill::BackfillOptions::default(),
            &mut seqmig::backfill::NoProgress,
        )
        .await
        .unwrap();
        assert_eq!(o.verify_mismatches, 0);
        assert_eq!(true_pending(&c, &plan, &step).await, Some(SEED_ROWS));
    });
    ok(&env.apply(Phase::Backfill, &[]), "apply backfill");
    block_on(async {
        let c = env.db.client().await;
        let (wrong, what) = wrong_rows(&c, true, true).await;
        assert_eq!(wrong, 0, "the plan's backfill re-verified and copied again: {what}");
        let status = env.status_json().unwrap();
        for b in status["plans"][0]["backfills"].as_array().unwrap() {
            assert_eq!(b["verify_mismatches"], 0, "{b}");
        }
    });
}

/// Issue 18.2: contract killed after it dropped an old column resumes on the decision the
/// gate took when contract started (recorded as `gate_open`, and the resume as
/// `contract_resumed`), not on a re-evaluation that the dropped column makes fail; no
/// break-glass is needed or recorded.
#[test]
fn issue18_2_interrupted_contract_resumes_on_its_gate_decision() {
    let plan = orders_plan();
    let env = Env::new(seeded_db(), &plan);
    for phase in [Phase::Expand, Phase::DualWrite, Phase::Backfill, Phase::Switch] {
        ok(&env.apply(phase, &[]), &format!("apply {phase}"));
    }
    let out = env.apply(Phase::Contract, &[("SEQMIG_FAULT_AFTER_STEPS", "2".to_string())]);
    assert_eq!(out.status.signal(), Some(SIGABRT), "{}", text(&out));
    block_on(async {
        let c = env.db.client().await;
        wait_for_runner_gone(&c).await;
        assert!(!columns(&c).await.contains(&"name".to_string()), "the first contract step dropped name");
    });
    let gate = env.run(&["gate", "--plan-id", &plan.id], &[]);
    assert_eq!(
        gate.status.code(),
        Some(1),
        "a fresh evaluation fails on the dropped column: {}",
        text(&gate)
    );
    let out = env.apply(Phase::Contract, &[]);
    ok(&out, "resume contract");
    assert!(text(&out).contains("2 already done"), "{}", text(&out));
    block_on(async {
        let c = env.db.client().await;
        let cols = columns(&c).await;
        assert!(!cols.contains(&"price".to_string()) && !cols.contains(&"name".to_string()), "{cols:?}");
        let (wrong, what) = wrong_rows(&c, true, true).await;
        assert_eq!(wrong, 0, "{what}");
        let events: Vec<String> = c
            .query("SELECT event FROM seqmig.audit_log WHERE plan_id = $1 ORDER BY id", &[&plan.id])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(events, ["gate_open", "contract_resumed"], "no break-glass");
    });
    let status = env.run(&["status"], &[]);
    assert!(!text(&status).contains("BREAK-GLASS"), "{}", text(&status));
    assert!(text(&status).contains("complete"), "{}", text(&status));
}
