//! The trust model (issue 18): the gate's evidence cannot be erased or back-dated by the
//! ledger's owner without the gate noticing, missing statement statistics never pass, hint
//! expressions are one SQL expression, configuration is validated at plan, and signed plans
//! are verified at apply. book/src/trust-model.md states what holds against which role.

use seqmig::plan::{GateSpec, LockMode, Phase, Plan, PlannedChange, Step};
use seqmig::soak::{self, GateConfig, GateReport, Verdict};

use crate::harness::{TestDb, block_on};

/// rename users.name → full_name, reduced to the steps the gate looks at.
fn rename_plan() -> Plan {
    let step = |id: &str, phase: Phase, sql: &str| Step {
        one_way: phase == Phase::Contract,
        ..Step::new(id, "c1", phase, sql, LockMode::AccessExclusive, "public.users")
    };
    let steps = vec![
        step("s1", Phase::Expand, "ALTER TABLE public.users ADD COLUMN full_name text"),
        step("s4", Phase::Switch, "UPDATE seqmig.flags SET authority = 'new' WHERE name = 'c1'"),
        step("s5", Phase::Contract, "ALTER TABLE public.users DROP COLUMN name"),
    ];
    let change = PlannedChange {
        relation: None,
        id: "c1".into(),
        kind: "rename_column".into(),
        object: "public.users.name".into(),
        one_way: true,
        summary: "rename users.name to full_name".into(),
    };
    Plan::assemble(vec![change], steps, vec![], GateSpec::default())
}

fn explain(report: &GateReport) -> String {
    report
        .criteria
        .iter()
        .map(|c| format!("{} {} [{}] {}", c.name, c.verdict, c.required, c.evidence))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A database whose ledger belongs to `<database>_owner`, a role that is not a superuser: the
/// session creates it under `SET ROLE` and stays in that role. The plan went through expand
/// and switch for real (server-timed rows).
async fn owned_ledger(db: &TestDb) -> (tokio_postgres::Client, Plan) {
    let client = db.client().await;
    client
        .batch_execute(&format!(
            "CREATE ROLE {0}_owner;
             GRANT CREATE ON DATABASE {0} TO {0}_owner;
             GRANT CREATE ON SCHEMA public TO {0}_owner;
             SET ROLE {0}_owner;
             CREATE TABLE public.users (id integer PRIMARY KEY, name text, full_name text);",
            db.name
        ))
        .await
        .unwrap();
    seqmig::ledger::ensure(&client).await.unwrap();
    let plan = rename_plan();
    seqmig::ledger::insert_plan(&client, &plan, "tester").await.unwrap();
    for phase in [Phase::Expand, Phase::Switch] {
        let id = seqmig::ledger::start_phase_run(&client, &plan.id, phase, "apply", "tester").await.unwrap();
        seqmig::ledger::finish_phase_run(&client, id, seqmig::ledger::RunOutcome::Ok, None).await.unwrap();
    }
    (client, plan)
}

fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string())
}

/// `TRUNCATE` (and DELETE, UPDATE) of every evidence table is refused to the ledger's own
/// owner; a break-glass stays recorded.
#[test]
fn issue18_5_truncate_of_audit_log_is_refused() {
    let db = TestDb::new();
    block_on(async {
        let (client, plan) = owned_ledger(&db).await;
        let report = soak::evaluate(&client, &plan, &GateConfig::from_toml("").unwrap()).await.unwrap();
        soak::record_break_glass(&client, &plan, "oncall-dave", "disk full", &report).await.unwrap();
        soak::record_observation(&client, None, "error_rate", true, None, None, "ci").await.unwrap();
        soak::approve(&client, &plan, "owner", "alice").await.unwrap();
        soak::take_sample(&client).await.unwrap();

        let e = client.batch_execute("TRUNCATE seqmig.audit_log").await.unwrap_err();
        assert!(message(&e).contains("seqmig.audit_log is append-only"), "{}", message(&e));
        for table in seqmig::ledger::EVIDENCE_TABLES {
            for sql in [
                format!("TRUNCATE seqmig.{table} CASCADE"),
                format!("DELETE FROM seqmig.{table}"),
                match table {
                    // A repeated approval may refresh its time (by the server clock); nothing else.
                    "approvals" => "UPDATE seqmig.approvals SET role = 'dba'".to_string(),
                    "client_samples" | "statement_samples" => {
                        format!("UPDATE seqmig.{table} SET sample_id = sample_id")
                    }
                    _ => format!("UPDATE seqmig.{table} SET id = id"),
                },
            ] {
                let r = client.batch_execute(&sql).await;
                // client_samples and statement_samples may be empty: a row trigger then has
                // nothing to refuse, but the statement trigger on TRUNCATE always fires.
                let n: i64 = client
                    .query_one(&format!("SELECT count(*) FROM seqmig.{table}"), &[])
                    .await
                    .unwrap()
                    .get(0);
                if n > 0 || sql.starts_with("TRUNCATE") {
                    let e = r.expect_err(&sql);
                    assert!(message(&e).contains("append-only"), "{sql}: {}", message(&e));
                }
            }
        }
        let events = soak::break_glass_events(&client).await.unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].actor, "oncall-dave");
        let owner: String = client
            .query_one("SELECT tableowner::text FROM pg_tables WHERE schemaname = 'seqmig' AND tablename = 'audit_log'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(owner, format!("{}_owner", db.name), "the refusal holds against the table's owner");
    })
}

/// The owner cannot back-date evidence with DML (refused, or overwritten by the server
/// clock); going around the guard with DDL is caught by `evidence_intact`.
#[test]
fn issue18_5_backdated_evidence_is_refused_or_detected() {
    let db = TestDb::new();
    block_on(async {
        let (client, plan) = owned_ledger(&db).await;
        let cfg = GateConfig::from_toml("[gate]\nbuiltin_defaults = false\nmin_soak = \"72h\"\n").unwrap();

        // DML: refused.
        let e = client
            .batch_execute("UPDATE seqmig.phase_runs SET finished_at = finished_at - interval '4 days'")
            .await
            .unwrap_err();
        assert!(message(&e).contains("append-only"), "{}", message(&e));
        // An insert claiming an old time gets the server's time instead.
        client
            .execute(
                "INSERT INTO seqmig.phase_runs (plan_id, phase, action, actor, outcome, started_at, finished_at) \
                 VALUES ($1, 'switch', 'apply', 'mallory', 'ok', now() - interval '4 days', now() - interval '4 days')",
                &[&plan.id],
            )
            .await
            .unwrap();
        let age: f64 = client
            .query_one(
                "SELECT extract(epoch FROM clock_timestamp() - finished_at)::float8 FROM seqmig.phase_runs \
                 WHERE actor = 'mallory'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(age < 60.0, "the insert kept the client's time: {age}s old");
        for table in ["soak_observations", "audit_log", "soak_samples"] {
            let column = match table {
                "soak_observations" => "observed_at",
                "audit_log" => "at",
                _ => "taken_at",
            };
            let insert = match table {
                "soak_observations" => {
                    "INSERT INTO seqmig.soak_observations (name, passed, actor, observed_at) \
                     VALUES ('x', true, 'mallory', now() - interval '4 days')"
                }
                "audit_log" => {
                    "INSERT INTO seqmig.audit_log (event, actor, at) VALUES ('x', 'mallory', now() - interval '4 days')"
                }
                _ => {
                    "INSERT INTO seqmig.soak_samples (statements_available, taken_at) VALUES (false, now() - interval '4 days')"
                }
            };
            client.batch_execute(insert).await.unwrap();
            let old: i64 = client
                .query_one(
                    &format!(
                        "SELECT count(*) FROM seqmig.{table} WHERE {column} < now() - interval '1 hour'"
                    ),
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(old, 0, "seqmig.{table} kept a back-dated {column}");
        }
        let r = soak::evaluate(&client, &plan, &cfg).await.unwrap();
        assert_eq!(r.criterion("evidence_intact").unwrap().verdict, Verdict::Pass, "{}", explain(&r));
        assert_eq!(r.criterion("min_soak").unwrap().verdict, Verdict::Fail, "{}", explain(&r));

        // DDL: the owner disables the guard and back-dates the switch by four days.
        client
            .batch_execute(
                "ALTER TABLE seqmig.phase_runs DISABLE TRIGGER USER;
                 UPDATE seqmig.phase_runs SET started_at = started_at - interval '4 days',
                                              finished_at = finished_at - interval '4 days'
                 WHERE phase = 'switch';",
            )
            .await
            .unwrap();
        let r = soak::evaluate(&client, &plan, &cfg).await.unwrap();
        assert!(!r.open, "{}", explain(&r));
        assert_eq!(r.criterion("min_soak").unwrap().verdict, Verdict::Pass, "the attack worked on min_soak");
        let ev = &r.criterion("evidence_intact").unwrap().evidence;
        assert_eq!(r.criterion("evidence_intact").unwrap().verdict, Verdict::Fail, "{}", explain(&r));
        assert!(ev.contains("guard triggers disabled: seqmig.phase_runs."), "{ev}");
        assert!(ev.contains("seqmig.phase_runs older than rows written before them (back-dated)"), "{ev}");

        // Re-enabling the guard does not hide the back-dating: times run against the ids.
        client.batch_execute("ALTER TABLE seqmig.phase_runs ENABLE TRIGGER USER").await.unwrap();
        let r = soak::evaluate(&client, &plan, &cfg).await.unwrap();
        assert!(!r.open, "{}", explain(&r));
        let ev = &r.criterion("evidence_intact").unwrap().evidence;
        assert!(!ev.contains("disabled"), "{ev}");
        assert!(ev.contains("back-dated"), "{ev}");
    })
}

/// `pg_stat_statements_reset()` after switch erases the old release's calls: the gate fails
/// closed instead of reading the silence as a pass. The reset is cluster-wide, so this test
/// has a cluster of its own.
#[test]
fn issue18_5_stats_reset_after_switch_fails_closed() {
    let cluster =
        seqmig::scratch::local::TempCluster::start(&["shared_preload_libraries = 'pg_stat_statements'"])
            .expect("start a PostgreSQL cluster of this test's own");
    block_on(async {
        let (client, conn) =
            tokio_postgres::connect(&cluster.url("postgres"), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(
                "CREATE EXTENSION pg_stat_statements;
                 CREATE TABLE public.users (id integer PRIMARY KEY, name text, full_name text);
                 INSERT INTO public.users SELECT g, 'n' || g, 'n' || g FROM generate_series(1, 10) g;",
            )
            .await
            .unwrap();
        seqmig::ledger::ensure(&client).await.unwrap();
        let plan = rename_plan();
        seqmig::ledger::insert_plan(&client, &plan, "tester").await.unwrap();
        // The baseline census, then switch.
        soak::take_sample(&client).await.unwrap();
        let id = seqmig::ledger::start_phase_run(&client, &plan.id, Phase::Switch, "apply", "tester")
            .await
            .unwrap();
        seqmig::ledger::finish_phase_run(&client, id, seqmig::ledger::RunOutcome::Ok, None).await.unwrap();
        let cfg = GateConfig::from_toml("[gate]\nbuiltin_defaults = false\nold_path_silent = \"required\"\n")
            .unwrap();

        // The old release still reads the old column: 20 calls after switch.
        for _ in 0..20 {
            client.query("SELECT name FROM public.users WHERE id = 1", &[]).await.unwrap();
        }
        let r = soak::evaluate(&client, &plan, &cfg).await.unwrap();
        let c = r.criterion("old_path_silent").unwrap();
        assert_eq!(c.verdict, Verdict::Fail, "{}", explain(&r));
        assert!(c.evidence.starts_with("20 calls naming public.users.name"), "{}", c.evidence);

        // The evidence is erased: the gate must not turn green.
        client.batch_execute("SELECT pg_stat_statements_reset()").await.unwrap();
        let r = soak::evaluate(&client, &plan, &cfg).await.unwrap();
        let c = r.criterion("old_path_silent").unwrap();
        assert_eq!(c.verdict, Verdict::Fail, "{}", explain(&r));
        assert!(c.evidence.contains("pg_stat_statements was reset at"), "{}", c.evidence);
        assert!(c.evidence.contains("after switch at"), "{}", c.evidence);
        assert!(!r.open);

        // A census taken after the reset does not launder it either.
        soak::take_sample(&client).await.unwrap();
        let r = soak::evaluate(&client, &plan, &cfg).await.unwrap();
        let c = r.criterion("old_path_silent").unwrap();
        assert_eq!(c.verdict, Verdict::Fail, "{}", explain(&r));
        assert!(c.evidence.contains("pg_stat_statements was reset at"), "{}", c.evidence);
    });
    cluster.stop();
}

/// `[[fill]] value = '1; DROP …'` and other non-expressions are refused by `plan` (exit 2),
/// naming the file, the key and the problem; every example's hints still pass. A comment is
/// cut out and the expression parenthesised (config_tests::issue18_8_…).
#[test]
fn issue18_8_comment_in_fill_value_is_refused_at_plan() {
    let examples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples/05-add-not-null-column");
    let dir = crate::harness::cli::TempDir::new();
    let toml = dir.path.join("seqmig.toml");
    let plan = |config: &str| {
        std::fs::write(&toml, config).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_seqmig"))
            .args(["plan", "--from"])
            .arg(examples.join("before.sql"))
            .arg("--to")
            .arg(examples.join("after.sql"))
            .arg("--config")
            .arg(&toml)
            .output()
            .unwrap()
    };
    for (value, problem) in [
        ("1; DROP TABLE public.users", "contains ';'"),
        ("1 2", "has text after the expression"),
        ("", "the expression is empty"),
    ] {
        let out =
            plan(&format!("[[fill]]\ntable = \"public.users\"\ncolumn = \"tenant_id\"\nvalue = '{value}'\n"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {err}");
        assert!(err.contains("seqmig.toml"), "{err}");
        assert!(err.contains("[[fill]] public.users.tenant_id value"), "{err}");
        assert!(err.contains(problem), "{value}: {err}");
    }
    let out = plan("[[fill]]\ntable = \"public.users\"\ncolumn = \"tenant_id\"\nvalue = '1'\n");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}
