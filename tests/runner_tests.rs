//! Phase files run by other tools (issue 23): the `--format sql` files with psql and the
//! sqitch project with the real `sqitch`, on databases seqmig never touched, with writers,
//! phase by phase, for a rename and a type change. The contract file's guard refuses while
//! the gate is closed and lets contract run once the recorded verdict is open; `seqmig
//! status` follows whichever tool ran the SQL. Missing runner binaries fail the tests.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use seqmig::plan::Plan;
use seqmig::soak::GateReport;

use crate::harness::cli::{TempDir, seqmig, text};
use crate::harness::{TestDb, block_on};

/// Called by the gate tests after every evaluation: records the binary's verdict the way
/// `seqmig gate --record` does, and checks that the database guard of a runner's contract
/// file agrees with it (issue 23.2).
pub async fn assert_guard_agrees(client: &tokio_postgres::Client, plan: &Plan, report: &GateReport) {
    client.batch_execute(&seqmig::runner::install_sql()).await.unwrap();
    seqmig::runner::gate::record_verdict(client, plan, "gate-test", report).await.unwrap();
    let says = seqmig::runner::gate::guard_says(client, &plan.id).await.unwrap();
    match (&says, report.open) {
        (Ok(()), true) => {}
        (Err(msg), false) => {
            for c in report.failing() {
                assert!(msg.contains(&c.name), "the guard does not name {}: {msg}", c.name);
            }
            assert!(msg.contains("seqmig gate --plan-id"), "{msg}");
        }
        _ => panic!("the guard says {says:?} but the gate is open={}", report.open),
    }
}

/// One schema change of the must-show list.
pub(crate) struct Case {
    name: &'static str,
    before: &'static str,
    after: &'static str,
    hints: &'static str,
    /// Rows already there before expand.
    seed: &'static str,
    /// A writer's statement in the old shape ($1 = a fresh id).
    write: &'static str,
    /// Before switch, counts rows whose new shape disagrees with the old one (must be 0).
    check: &'static str,
    /// After contract: true when the old shape is gone.
    contracted: &'static str,
}

pub(crate) const RENAME: Case = Case {
    name: "rename",
    before: "CREATE TABLE public.users (id bigint PRIMARY KEY, name text NOT NULL);\n",
    after: "CREATE TABLE public.users (id bigint PRIMARY KEY, full_name text NOT NULL);\n",
    hints: "[[rename]]\ntable = \"public.users\"\nfrom = \"name\"\nto = \"full_name\"\n",
    seed: "INSERT INTO public.users SELECT g, 'user ' || g FROM generate_series(1, 2000) g",
    write: "INSERT INTO public.users (id, name) VALUES ($1, 'user ' || $1::text); \
            UPDATE public.users SET name = name || '!' WHERE id = $1 - 7",
    check: "SELECT count(*) FROM public.users WHERE full_name IS DISTINCT FROM name",
    contracted: "SELECT NOT EXISTS (SELECT 1 FROM information_schema.columns \
                 WHERE table_name = 'users' AND column_name = 'name')",
};

pub(crate) const TYPE_CHANGE: Case = Case {
    name: "type_change",
    before: "CREATE TABLE public.orders (id bigint PRIMARY KEY, qty integer NOT NULL);\n",
    after: "CREATE TABLE public.orders (id bigint PRIMARY KEY, qty bigint NOT NULL);\n",
    hints: "",
    seed: "INSERT INTO public.orders SELECT g, g % 1000 FROM generate_series(1, 2000) g",
    write: "INSERT INTO public.orders (id, qty) VALUES ($1, ($1 % 1000)::int); \
            UPDATE public.orders SET qty = qty + 1 WHERE id = $1 - 7",
    check: "SELECT count(*) FROM public.orders WHERE qty::bigint IS DISTINCT FROM qty__seqmig_new",
    contracted: "SELECT data_type = 'bigint' AND NOT EXISTS (SELECT 1 FROM information_schema.columns \
                 WHERE table_name = 'orders' AND column_name = 'qty__seqmig_old') \
                 FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'qty'",
};

/// A migration runner under test: writes its files and runs them up to a phase.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Runner {
    Psql,
    Sqitch,
    Alembic,
    Django,
    NodePgMigrate,
    Sqlx,
    Rails,
}

/// The version `--format sqlx|rails` files start from in these tests.
pub(crate) const FIRST_VERSION: i64 = 20_261_206_000_000;

impl Runner {
    fn format(self) -> &'static str {
        match self {
            Runner::Psql => "sql",
            Runner::Sqitch => "sqitch",
            Runner::Alembic => "alembic",
            Runner::Django => "django",
            Runner::NodePgMigrate => "node-pg-migrate",
            Runner::Sqlx => "sqlx",
            Runner::Rails => "rails",
        }
    }

    /// Runs every file of `phase` (and, for runners that track state, everything before).
    /// Returns (success, output).
    fn run_phase(self, dir: &Path, phase: seqmig::plan::Phase, db: &TestDb, plan: &Plan) -> (bool, String) {
        let out = match self {
            Runner::Psql => {
                let file = dir.join(format!("{}-{}.sql", phase.number(), phase.as_str()));
                Command::new("psql")
                    .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
                    .arg(&file)
                    .arg(&db.url)
                    .output()
                    .expect("psql must be installed (apt-get install postgresql-client)")
            }
            Runner::Sqitch => {
                let planned = seqmig::plan::Planned { plan: plan.clone(), notes: Default::default() };
                let target = seqmig::runner::sqitch::phase_targets(&planned)
                    .into_iter()
                    .find(|(p, _)| *p == phase)
                    .map(|(_, name)| name)
                    .unwrap();
                Command::new("sqitch")
                    .current_dir(dir)
                    .env("SQITCH_FULLNAME", "seqmig test")
                    .env("SQITCH_EMAIL", "test@seqmig.invalid")
                    .env("SQITCH_USER_CONFIG", "/dev/null")
                    .args(["deploy", "--to", &target, &format!("db:{}", db.url)])
                    .output()
                    .expect("sqitch must be installed (apt-get install sqitch libdbd-pg-perl; see .ci/run)")
            }
            Runner::Alembic => {
                let planned = seqmig::plan::Planned { plan: plan.clone(), notes: Default::default() };
                let target = seqmig::runner::alembic::phase_targets(&planned)
                    .into_iter()
                    .find(|(p, _)| *p == phase)
                    .map(|(_, name)| name)
                    .unwrap();
                Command::new("alembic")
                    .current_dir(dir)
                    .env("DATABASE_URL", &db.url)
                    .args(["upgrade", &target])
                    .output()
                    .expect("alembic must be installed (pip install alembic psycopg2-binary; see .ci/run)")
            }
            Runner::Django => {
                let planned = seqmig::plan::Planned { plan: plan.clone(), notes: Default::default() };
                let target = seqmig::runner::django::phase_targets(&planned)
                    .into_iter()
                    .find(|(p, _)| *p == phase)
                    .map(|(_, name)| name)
                    .unwrap();
                Command::new("python3")
                    .current_dir(dir)
                    .env("DATABASE_URL", &db.url)
                    .env("DJANGO_SETTINGS_MODULE", "seqmig_settings")
                    .env("PYTHONPATH", dir)
                    .args(["-m", "django", "migrate", &seqmig::runner::django::app_label(&planned), &target])
                    .output()
                    .expect("python3 must be installed with Django (pip install django psycopg2-binary; see .ci/run)")
            }
            Runner::NodePgMigrate => {
                let planned = seqmig::plan::Planned { plan: plan.clone(), notes: Default::default() };
                let target = seqmig::runner::node_pg_migrate::phase_targets(&planned)
                    .into_iter()
                    .find(|(p, _)| *p == phase)
                    .map(|(_, name)| name)
                    .unwrap();
                Command::new("node-pg-migrate")
                    .current_dir(dir)
                    .env("DATABASE_URL", &db.url)
                    .args(["up", &target])
                    .output()
                    .expect(
                        "node-pg-migrate must be installed (npm install -g node-pg-migrate pg; see .ci/run)",
                    )
            }
            Runner::Sqlx => {
                let planned = seqmig::plan::Planned { plan: plan.clone(), notes: Default::default() };
                let renderer = seqmig::render::Renderer::with_overrides(None).unwrap();
                let migrations =
                    seqmig::runner::sqlx::migrations(&planned, &renderer, FIRST_VERSION).unwrap();
                let target = seqmig::runner::sqlx::phase_targets(&migrations)
                    .into_iter()
                    .find(|(p, _)| *p == phase)
                    .map(|(_, v)| v)
                    .unwrap();
                Command::new("sqlx")
                    .args(["migrate", "run", "--source"])
                    .arg(dir)
                    .args(["--target-version", &target.to_string(), "--database-url", &db.url])
                    .output()
                    .expect("sqlx must be installed (cargo install sqlx-cli --no-default-features --features postgres,rustls; see .ci/run)")
            }
            Runner::Rails => {
                let planned = seqmig::plan::Planned { plan: plan.clone(), notes: Default::default() };
                let target = seqmig::runner::rails::phase_targets(&planned, FIRST_VERSION)
                    .into_iter()
                    .find(|(p, _)| *p == phase)
                    .map(|(_, v)| v)
                    .unwrap();
                Command::new("rake")
                    .current_dir(dir)
                    .env("DATABASE_URL", &db.url)
                    .args(["db:migrate", &format!("VERSION={target}")])
                    .output()
                    .expect("rake and ActiveRecord must be installed (apt-get install rake ruby-activerecord ruby-pg; see .ci/run)")
            }
        };
        (out.status.success(), text(&out))
    }
}

async fn query_i64(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// Writers in the old shape on their own connection until stopped; returns how many
/// statements succeeded. Any failed write fails the test.
fn start_writer(url: &str, sql: &'static str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    let url = url.to_string();
    let next = Arc::new(AtomicUsize::new(100_000));
    std::thread::spawn(move || {
        block_on(async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let id = next.fetch_add(1, Ordering::SeqCst) as i64;
                let sql = sql.replace("$1", &id.to_string());
                client.batch_execute(&sql).await.unwrap_or_else(|e| panic!("writer failed: {e:?}"));
                n += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            n
        })
    })
}

/// The must-show scenario for one runner and one change.
pub(crate) fn run_case(runner: Runner, case: &Case) {
    let db = TestDb::new();
    let dir = TempDir::new();
    std::fs::write(dir.path.join("before.sql"), case.before).unwrap();
    std::fs::write(dir.path.join("after.sql"), case.after).unwrap();
    // The gate stays closed until one passing observation is recorded: evidence the test
    // controls (the built-in 24 h soak would outlast it).
    let gate_cfg = dir.path.join("seqmig.toml");
    std::fs::write(
        &gate_cfg,
        format!(
            "{}\n[gate]\nbuiltin_defaults = false\nmin_soak = \"1s\"\nwindow = \"1h\"\nbackfill_verified = true\n\
             old_path_silent = \"required\"\nobservations = 1\n",
            case.hints
        ),
    )
    .unwrap();
    let files = dir.path.join("migrations");
    let p = |f: &str| dir.path.join(f).to_string_lossy().into_owned();
    let out = seqmig(
        &[
            "plan",
            "--from",
            &p("before.sql"),
            "--to",
            &p("after.sql"),
            "--config",
            &p("seqmig.toml"),
            "--format",
            runner.format(),
            "--out",
            files.to_str().unwrap(),
            "--first-version",
            &FIRST_VERSION.to_string(),
        ],
        &db,
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = seqmig(
        &[
            "plan",
            "--from",
            &p("before.sql"),
            "--to",
            &p("after.sql"),
            "--config",
            &p("seqmig.toml"),
            "--format",
            "json",
        ],
        &db,
    );
    let plan = Plan::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();

    db.execute(case.before);
    db.execute("CREATE EXTENSION pg_stat_statements");
    db.execute(case.seed);

    block_on(async {
        let client = db.client().await;
        let stop = Arc::new(AtomicBool::new(false));
        let writer = start_writer(&db.url, case.write, stop.clone());
        for phase in [
            seqmig::plan::Phase::Expand,
            seqmig::plan::Phase::DualWrite,
            seqmig::plan::Phase::Backfill,
            seqmig::plan::Phase::Switch,
        ] {
            if phase == seqmig::plan::Phase::Switch {
                // Release N-1 stops writing the old shape; the census before switch is the
                // baseline old_path_silent counts from (`seqmig apply` takes it itself).
                stop.store(true, Ordering::SeqCst);
                assert_eq!(
                    query_i64(&client, case.check).await,
                    0,
                    "{}: shapes disagree before switch",
                    case.name
                );
                let out = seqmig(&["soak", "sample"], &db);
                assert!(out.status.success(), "{}", text(&out));
            }
            let (ok, out) = runner.run_phase(&files, phase, &db, &plan);
            assert!(ok, "{runner:?} {}: phase {phase} failed:\n{out}", case.name);
            let status = seqmig(&["status", "--plan-id", &plan.id, "--format", "json"], &db);
            let json: serde_json::Value =
                serde_json::from_slice(&status.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&status)));
            let phases = json.to_string();
            assert!(phases.contains(phase.as_str()), "{phases}");
            assert_phase_state(&json, phase.as_str(), "applied");
        }
        let writes = writer.join().unwrap();
        assert!(writes > 0, "the writer wrote nothing");

        // Closed gate: the contract file is refused and changes nothing.
        let gate = |args: &[&str]| {
            let mut a = vec!["gate", "--plan-id", &plan.id, "--config", gate_cfg.to_str().unwrap()];
            a.extend_from_slice(args);
            seqmig(&a, &db)
        };
        let out = gate(&["--record"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let (ok, out) = runner.run_phase(&files, seqmig::plan::Phase::Contract, &db, &plan);
        assert!(!ok, "contract ran with the gate closed:\n{out}");
        assert!(out.contains("the soak gate in front of contract is closed"), "{out}");
        assert!(out.contains("missing") && out.contains("observations ("), "{out}");
        assert!(out.contains(&format!("seqmig gate --plan-id {}", plan.short_id())), "{out}");
        let done: bool = client.query_one(case.contracted, &[]).await.unwrap().get(0);
        assert!(!done, "a refused contract changed the schema");

        // Evidence, a recorded open verdict, then contract runs.
        let out = seqmig(&["soak", "record", "--plan-id", &plan.id, "--criterion", "smoke", "--pass"], &db);
        assert!(out.status.success(), "{}", text(&out));
        let out = seqmig(&["soak", "sample"], &db);
        assert!(out.status.success(), "{}", text(&out));
        std::thread::sleep(std::time::Duration::from_millis(1100)); // min_soak = 1s
        let out = gate(&["--record"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let (ok, out) = runner.run_phase(&files, seqmig::plan::Phase::Contract, &db, &plan);
        assert!(ok, "{runner:?} {}: contract failed after the gate opened:\n{out}", case.name);
        let done: bool = client.query_one(case.contracted, &[]).await.unwrap().get(0);
        assert!(done, "contract did not remove the old shape");

        let status = seqmig(&["status", "--plan-id", &plan.id, "--format", "json"], &db);
        let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_phase_state(&json, "contract", "applied");
        let text_status = text(&seqmig(&["status", "--plan-id", &plan.id], &db));
        assert!(text_status.contains("(complete)"), "{text_status}");
        // The database is now the desired schema (besides the runner's own registry).
        client
            .batch_execute(
                "DROP SCHEMA IF EXISTS sqitch CASCADE; \
                 DROP TABLE IF EXISTS public.alembic_version, public.django_migrations, public.pgmigrations, \
                 public._sqlx_migrations, public.schema_migrations, public.ar_internal_metadata",
            )
            .await
            .unwrap();
        let out = seqmig(&["plan", "--from", &db.url, "--to", &p("after.sql")], &db);
        assert!(text(&out).contains("the schemas are equal"), "{}", text(&out));
    });
}

fn assert_phase_state(json: &serde_json::Value, phase: &str, want: &str) {
    let plans = json["plans"].as_array().cloned().unwrap_or_else(|| vec![json.clone()]);
    let found = plans
        .iter()
        .flat_map(|p| p["phases"].as_array().cloned().unwrap_or_default())
        .find(|ph| ph["phase"] == phase || ph["name"] == phase);
    let found = found.unwrap_or_else(|| panic!("no phase {phase} in {json}"));
    assert_eq!(found["state"], want, "{found}");
}

#[test]
fn issue23_1_sql_files_run_by_psql_on_an_untouched_database_rename() {
    run_case(Runner::Psql, &RENAME);
}

#[test]
fn issue23_1_sql_files_run_by_psql_on_an_untouched_database_type_change() {
    run_case(Runner::Psql, &TYPE_CHANGE);
}

#[test]
fn issue23_3_sqitch_runs_the_phases_rename() {
    run_case(Runner::Sqitch, &RENAME);
}

#[test]
fn issue23_3_sqitch_runs_the_phases_type_change() {
    run_case(Runner::Sqitch, &TYPE_CHANGE);
}

/// The install SQL is idempotent and leaves the ledger `seqmig apply` would make.
#[test]
fn issue23_1_install_sql_is_idempotent_and_matches_the_ledger() {
    let db = TestDb::new();
    block_on(async {
        let client = db.client().await;
        client.batch_execute(&seqmig::runner::install_sql()).await.unwrap();
        client.batch_execute(&seqmig::runner::install_sql()).await.unwrap();
        let v = seqmig::ledger::version(&client).await.unwrap();
        assert_eq!(v, seqmig::ledger::current_version());
        // ensure() finds nothing to do.
        assert_eq!(seqmig::ledger::ensure(&client).await.unwrap(), v);
    });
}

#[test]
fn issue23_3_alembic_runs_the_phases_rename() {
    run_case(Runner::Alembic, &RENAME);
}

#[test]
fn issue23_3_alembic_runs_the_phases_type_change() {
    run_case(Runner::Alembic, &TYPE_CHANGE);
}

#[test]
fn issue23_3_django_runs_the_phases_rename() {
    run_case(Runner::Django, &RENAME);
}

#[test]
fn issue23_3_django_runs_the_phases_type_change() {
    run_case(Runner::Django, &TYPE_CHANGE);
}

#[test]
fn issue23_3_node_pg_migrate_runs_the_phases_rename() {
    run_case(Runner::NodePgMigrate, &RENAME);
}

#[test]
fn issue23_3_node_pg_migrate_runs_the_phases_type_change() {
    run_case(Runner::NodePgMigrate, &TYPE_CHANGE);
}

/// The runner pages quote what `seqmig plan --format <runner>` writes for example 07
/// (plan ids normalised to the ones the pages show, so a new plan format does not make the
/// pages lie about anything but the id).
#[test]
fn issue23_4_runner_pages_quote_what_seqmig_writes() {
    let ex = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples/07-rename-column");
    let book = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/runners");
    let db = TestDb::new();
    let arg = |f: &str| ex.join(f).to_string_lossy().into_owned();
    let out = seqmig(
        &[
            "plan",
            "--from",
            &arg("before.sql"),
            "--to",
            &arg("after.sql"),
            "--config",
            &arg("seqmig.toml"),
            "--format",
            "json",
        ],
        &db,
    );
    let plan = Plan::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let short = plan.short_id().to_string();
    let normalise = |s: &str| s.replace(&short, "53eb5881ba3f").replace(&short[..8], "53eb5881");
    for (format, page) in [
        ("sqitch", "sqitch.md"),
        ("alembic", "alembic.md"),
        ("django", "django.md"),
        ("node-pg-migrate", "node-pg-migrate.md"),
    ] {
        let dir = TempDir::new();
        let out = seqmig(
            &[
                "plan",
                "--from",
                &arg("before.sql"),
                "--to",
                &arg("after.sql"),
                "--config",
                &arg("seqmig.toml"),
                "--format",
                format,
                "--out",
                dir.path.to_str().unwrap(),
            ],
            &db,
        );
        assert!(out.status.success(), "{}", text(&out));
        let text_of_page = std::fs::read_to_string(book.join(page)).unwrap();
        let quoted = if format == "sqitch" {
            std::fs::read_to_string(dir.path.join("sqitch.plan")).unwrap()
        } else {
            let mut files = Vec::new();
            let mut stack = vec![dir.path.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap().flatten() {
                    if e.path().is_dir() {
                        stack.push(e.path());
                    } else {
                        files.push(e.path().strip_prefix(&dir.path).unwrap().to_string_lossy().into_owned());
                    }
                }
            }
            files.sort();
            files.join("\n") + "\n"
        };
        let quoted = normalise(&quoted);
        assert!(text_of_page.contains(&format!("```text\n{quoted}```")), "{page} does not quote:\n{quoted}");
    }
}

/// Example 14 builds and drops indexes CONCURRENTLY, which cannot run in a transaction: in
/// every runner those steps get a migration of their own with the runner's opt-out, next to
/// a transactional one in contract. Contract is refused without a verdict and runs after an
/// audited break-glass recorded from the CLI.
#[test]
fn issue23_3_concurrently_steps_run_outside_transactions_in_every_runner_and_break_glass_is_audited() {
    for runner in [Runner::Psql, Runner::Sqitch, Runner::Alembic, Runner::Django, Runner::NodePgMigrate] {
        concurrently_case(runner);
    }
}

/// Example 14 through one runner: see
/// `issue23_3_concurrently_steps_run_outside_transactions_in_every_runner_and_break_glass_is_audited`.
pub(crate) fn concurrently_case(runner: Runner) {
    let ex =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples/14-add-and-change-index");
    let arg = |f: &str| ex.join(f).to_string_lossy().into_owned();
    {
        let db = TestDb::new();
        db.execute(&std::fs::read_to_string(ex.join("before.sql")).unwrap());
        let dir = TempDir::new();
        let files = dir.path.join("m");
        let base = ["plan", "--from", &arg("before.sql"), "--to", &arg("after.sql")];
        let first = FIRST_VERSION.to_string();
        let out = seqmig(
            &[
                &base[..],
                &["--format", runner.format(), "--out", files.to_str().unwrap(), "--first-version", &first],
            ]
            .concat(),
            &db,
        );
        assert!(out.status.success(), "{}", text(&out));
        let out = seqmig(&[&base[..], &["--format", "json"]].concat(), &db);
        let plan = Plan::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();

        let (ok, out) = runner.run_phase(&files, seqmig::plan::Phase::Expand, &db, &plan);
        assert!(ok, "{runner:?}: expand failed:\n{out}");
        let (ok, out) = runner.run_phase(&files, seqmig::plan::Phase::Contract, &db, &plan);
        assert!(
            !ok && out.contains("no gate verdict is recorded"),
            "{runner:?}: contract not refused:\n{out}"
        );

        let out = seqmig(
            &[
                "gate",
                "--plan-id",
                &plan.id,
                "--record",
                "--break-glass",
                "--reason",
                "INC-1: test",
                "--actor",
                "alice",
            ],
            &db,
        );
        assert!(out.status.success(), "{}", text(&out));
        let (ok, out) = runner.run_phase(&files, seqmig::plan::Phase::Contract, &db, &plan);
        assert!(ok, "{runner:?}: contract failed after break-glass:\n{out}");

        let status = text(&seqmig(&["status", "--plan-id", &plan.id], &db));
        assert!(
            status.contains("(complete)") && status.contains("BREAK-GLASS by alice"),
            "{runner:?}: {status}"
        );
        let audit = text(&seqmig(&["audit"], &db));
        assert!(audit.contains("break_glass") && audit.contains("INC-1: test"), "{audit}");
        db.execute(
            "DROP SCHEMA IF EXISTS sqitch CASCADE; \
             DROP TABLE IF EXISTS public.alembic_version, public.django_migrations, public.pgmigrations, \
                 public._sqlx_migrations, public.schema_migrations, public.ar_internal_metadata",
        );
        let out = seqmig(&["plan", "--from", &db.url, "--to", &arg("after.sql")], &db);
        assert!(text(&out).contains("the schemas are equal"), "{runner:?}: {}", text(&out));
    }
}
