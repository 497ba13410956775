//! Configuration, hints and plan signatures (issue 18.6–18.8, issue 23's small things): what
//! `seqmig.toml` and the flags accept is validated at `plan` and honoured to the end; a
//! signed plan is the only plan `apply --verify-key-file` runs; hint expressions are spliced
//! in parenthesised, so they stay one expression in the generated SQL.

use std::path::{Path, PathBuf};
use std::process::Output;

use seqmig::plan::Plan;

use crate::harness::TestDb;
use crate::harness::cli::{TempDir, command, text};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples").join(name)
}

/// `seqmig plan --from before.sql --to after.sql` of an example folder, with `extra` flags and
/// environment variables, run in `dir` (no stray seqmig.toml).
fn plan_cli(folder: &Path, dir: &TempDir, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_seqmig"));
    c.current_dir(&dir.path)
        .env_remove("SEQMIG_SIGNING_KEY_FILE")
        .args(["plan", "--from"])
        .arg(folder.join("before.sql"))
        .arg("--to")
        .arg(folder.join("after.sql"))
        .args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Runs seqmig on `db` with no key in the environment unless `env` sets one.
fn run(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = command(&db.url);
    c.env_remove("SEQMIG_VERIFY_KEY_FILE").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn query_bool(db: &TestDb, sql: &str) -> bool {
    crate::harness::block_on(async { db.client().await.query_one(sql, &[]).await.unwrap().get(0) })
}

/// A database holding `before.sql` of an example.
fn db_with(folder: &Path) -> TestDb {
    let db = TestDb::new();
    db.execute(&std::fs::read_to_string(folder.join("before.sql")).unwrap());
    db
}

/// `plan` with `edit` applied, and its id recomputed the way anyone can: the id is a checksum.
fn forge(plan: &Plan, edit: impl FnOnce(&mut Plan)) -> Plan {
    let mut p = plan.clone();
    edit(&mut p);
    p.id = String::new();
    p.seal()
}

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let path = dir.path.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// Issue 18.6: `CREATE TABLE pwned` added to a step, or a blocking finding deleted, with the
/// id recomputed, is accepted by a deployment that does not verify signatures (documented in
/// trust-model.md), and refused — nothing changed, not even the ledger — by one that does,
/// whether the key comes from `--verify-key-file` or `SEQMIG_VERIFY_KEY_FILE`. The plan CI
/// signed applies, phase after phase from the stored plan; a stored forged plan is refused
/// by the runner too.
#[test]
fn issue18_6_forged_plans_are_refused_with_a_verification_key() {
    let dir = TempDir::new();
    let key = write(&dir, "ci.key", "3f1b7c0e9a5d4e2f8c6b1a0d9e8f7a6b\n");
    let other_key = write(&dir, "other.key", "00000000000000000000000000000000\n");
    let folder = example("07-rename-column");
    let out = plan_cli(
        &folder,
        &dir,
        &["--config", folder.join("seqmig.toml").to_str().unwrap(), "--format", "json"],
        &[("SEQMIG_SIGNING_KEY_FILE", &key)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let signed = Plan::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert!(signed.signature.as_deref().unwrap().starts_with("hmac-sha256:"), "{:?}", signed.signature);
    let signed_path = write(&dir, "signed.json", &signed.to_json_pretty());

    let pwned = forge(&signed, |p| {
        let step = p.steps.iter_mut().find(|s| s.phase == seqmig::plan::Phase::Expand).unwrap();
        step.sql.push_str(";\nCREATE TABLE public.pwned (id int)");
    });
    let pwned_path = write(&dir, "pwned.json", &pwned.to_json_pretty());
    let mut unsigned = pwned.clone();
    unsigned.signature = None;
    let unsigned_path = write(&dir, "unsigned.json", &unsigned.to_json_pretty());
    let pwned_exists = "SELECT to_regclass('public.pwned') IS NOT NULL";
    let ledger_exists = "SELECT to_regclass('seqmig.plans') IS NOT NULL";

    // Without a verification key the checksum is all there is: the forgery runs.
    let open = db_with(&folder);
    let out = run(&open, &["apply", "--plan", &pwned_path, "--phase", "expand"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(query_bool(&open, pwned_exists), "without a key the edited plan is accepted");
    // The stored forged plan is refused by a runner that verifies, and by its dry run.
    let out = run(&open, &["apply", "--phase", "dual_write", "--dry-run", "--verify-key-file", &key], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("does not verify with key file"), "{}", text(&out));
    let out = run(&open, &["apply", "--phase", "dual_write", "--verify-key-file", &key], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("does not verify with key file"), "{}", text(&out));
    assert!(query_bool(&open, "SELECT count(*) = 0 FROM seqmig.phase_runs WHERE phase = 'dual_write'"));

    // With a key: refused before connecting, by flag or by environment.
    let closed = db_with(&folder);
    for (args, env, problem) in [
        (vec!["--verify-key-file", key.as_str()], vec![], "does not verify with key file"),
        (vec![], vec![("SEQMIG_VERIFY_KEY_FILE", key.as_str())], "does not verify with key file"),
        (vec!["--verify-key-file", other_key.as_str()], vec![], "does not verify with key file"),
    ] {
        let mut a = vec!["apply", "--plan", &pwned_path, "--phase", "expand"];
        a.extend(args);
        let out = run(&closed, &a, &env);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(problem), "{}", text(&out));
        assert!(text(&out).contains("nothing was changed"), "{}", text(&out));
    }
    let out = run(
        &closed,
        &["apply", "--plan", &unsigned_path, "--phase", "expand", "--verify-key-file", &key],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is not signed"), "{}", text(&out));
    assert!(!query_bool(&closed, pwned_exists));
    assert!(!query_bool(&closed, ledger_exists), "a refused plan changes nothing, not even the ledger");

    // A blocked plan whose blocking finding was deleted.
    let drop_table = example("02-drop-table");
    let out = plan_cli(&drop_table, &dir, &["--format", "json", "--sign-key-file", &key], &[]);
    assert_eq!(out.status.code(), Some(1), "blocked: {}", text(&out));
    let blocked = Plan::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert!(blocked.is_blocked() && blocked.signature.is_some());
    let unblocked = forge(&blocked, |p| p.findings.retain(|f| !f.is_error()));
    let unblocked_path = write(&dir, "unblocked.json", &unblocked.to_json_pretty());
    let db = db_with(&drop_table);
    let out =
        run(&db, &["apply", "--plan", &unblocked_path, "--phase", "expand", "--verify-key-file", &key], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("does not verify"), "{}", text(&out));
    assert!(!query_bool(&db, ledger_exists));
    let out = run(&db, &["apply", "--plan", &unblocked_path, "--phase", "expand"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "without a key the deleted finding goes unnoticed: {}",
        text(&out)
    );

    // The plan CI signed applies; later phases read it from the ledger and verify it there.
    let good = db_with(&folder);
    let out =
        run(&good, &["apply", "--plan", &signed_path, "--phase", "expand", "--verify-key-file", &key], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(&good, &["apply", "--phase", "dual_write"], &[("SEQMIG_VERIFY_KEY_FILE", &key)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(&good, &["rollback", "--phase", "dual_write", "--verify-key-file", &key], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(&good, &["rollback", "--phase", "expand", "--verify-key-file", &other_key], &[]);
    assert_eq!(out.status.code(), Some(1), "rollback verifies too: {}", text(&out));
    assert!(!query_bool(&good, pwned_exists));

    // A key too short to be one is an error, not a silent pass.
    let short = write(&dir, "short.key", "abc\n");
    let out = run(&good, &["apply", "--phase", "dual_write", "--verify-key-file", &short], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("a signing key needs at least 16"), "{}", text(&out));
}

/// Applies every phase before contract of `plan_path` on `db`, each must succeed.
fn apply_to_switch(db: &TestDb, plan_path: &str) {
    for phase in ["expand", "dual_write", "backfill", "switch"] {
        let out = run(db, &["apply", "--plan", plan_path, "--phase", phase], &[]);
        assert_eq!(out.status.code(), Some(0), "{phase}: {}", text(&out));
    }
}

/// Issue 18.7: every section of seqmig.toml is validated at `plan` by the parsers that read it
/// later — unknown keys anywhere, values in no accepted form — naming the file, the key and
/// what is accepted; what `plan` accepts (`min_soak = "2 minutes"`, `1.5h`, `1h30m`) is read
/// the same by the gate and by `--retry-budget`.
#[test]
fn issue18_7_seqmig_toml_is_validated_at_plan_with_one_duration_grammar() {
    let dir = TempDir::new();
    let folder = example("07-rename-column");
    let rename = std::fs::read_to_string(folder.join("seqmig.toml")).unwrap();
    let toml = dir.path.join("seqmig.toml");
    let plan = |extra: &str| {
        std::fs::write(&toml, format!("{rename}\n{extra}\n")).unwrap();
        plan_cli(&folder, &dir, &["--format", "json"], &[])
    };
    for (extra, expected) in [
        ("[gate]\nmin_sok = \"2m\"", "unknown gate criterion 'min_sok'"),
        ("[gate]\nmin_soak = \"2 fortnights\"", "unknown unit 'fortnights'; expected a number of seconds"),
        ("[gate]\nold_path_silent = \"maybe\"", "expected required, if_available or off"),
        (
            "[[tier]]\nname = \"t\"\ntables = [\"public.users\"]\nmin_sok = \"1h\"",
            "unknown gate criterion 'min_sok'",
        ),
        ("[governance]\nownr = \"x\"", "unknown field `ownr`"),
        ("[lint]\npg_verison = 15", "unknown field `pg_verison`"),
        ("[plan]\nallow_one_wya = []", "unknown field `allow_one_wya`"),
        ("[gates]\nmin_soak = \"1h\"", "unknown field `gates`"),
    ] {
        let out = plan(extra);
        assert_eq!(out.status.code(), Some(2), "{extra}: {}", text(&out));
        assert!(text(&out).contains("seqmig.toml"), "{extra}: {}", text(&out));
        assert!(text(&out).contains(expected), "{extra}: {}", text(&out));
    }
    // Accepted at plan means evaluable by the gate: the same parser reads the stored value.
    let cfg_tables = [seqmig::model::QualifiedName::of("public", "users")];
    for (written, secs) in [("2 minutes", 120), ("1.5h", 5400), ("1h30m", 5400), ("90", 90)] {
        let extra = format!("[gate]\nmin_soak = \"{written}\"");
        let out = plan(&extra);
        assert_eq!(out.status.code(), Some(0), "{written}: {}", text(&out));
        let p = Plan::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();
        let stored = p.gate.criteria.iter().find(|c| c.name == "min_soak").unwrap();
        assert_eq!(stored.value, written);
        let gate = seqmig::soak::GateConfig::from_toml(&format!("{rename}\n{extra}\n")).unwrap();
        let c = gate.criteria_for(&cfg_tables, &p.gate.criteria).unwrap();
        assert_eq!(c.min_soak, Some(std::time::Duration::from_secs(secs)), "{written}");
    }
    // [lint] belongs in the same file and no longer makes plan refuse it.
    assert_eq!(plan("[lint]\npg_version = 15").status.code(), Some(0));

    // --retry-budget reads the same grammar.
    let out = plan("");
    let plan_path = write(&dir, "plan.json", &String::from_utf8_lossy(&out.stdout));
    let db = db_with(&folder);
    for budget in ["1.5h", "1h30m", "2 minutes"] {
        let out = run(
            &db,
            &["apply", "--plan", &plan_path, "--phase", "expand", "--dry-run", "--retry-budget", budget],
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "{budget}: {}", text(&out));
    }
    let out = run(
        &db,
        &["apply", "--plan", &plan_path, "--phase", "expand", "--retry-budget", "2 fortnights"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("unknown unit 'fortnights'"), "{}", text(&out));
}

/// Issue 18.7: `old_path_silent = false`, `"off"` and `"if_available"` reach the plan and the
/// gate on real PostgreSQL. After switch the old column is read again; with the default the
/// gate stays closed on it, with `off` the criterion is not asked; without the extension
/// `if_available` lets the inconclusive check pass where the default blocks.
#[test]
fn issue18_7_old_path_silent_settings_are_honoured_by_the_gate() {
    let dir = TempDir::new();
    let folder = example("07-rename-column");
    let rename = std::fs::read_to_string(folder.join("seqmig.toml")).unwrap();
    for (setting, extension, plan_value, gate_exit, expected) in [
        ("", true, Some("since switch"), 1, "FAIL"),
        ("old_path_silent = false", true, None, 0, ""),
        ("old_path_silent = \"off\"", true, None, 0, ""),
        ("", false, Some("since switch"), 1, "inconclusive "),
        ("old_path_silent = \"if_available\"", false, Some("if_available"), 0, "inconclusive (allowed)"),
    ] {
        let config = format!("{rename}\n[gate]\nmin_soak = \"0s\"\n{setting}\n");
        let toml = write(&dir, "seqmig.toml", &config);
        let out = plan_cli(&folder, &dir, &["--format", "json", "--config", &toml], &[]);
        assert_eq!(out.status.code(), Some(0), "{setting}: {}", text(&out));
        let p = Plan::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();
        let asked = p.gate.criteria.iter().find(|c| c.name == "old_path_silent").map(|c| c.value.as_str());
        assert_eq!(asked, plan_value, "{setting}");
        let plan_path = write(&dir, "plan.json", &p.to_json_pretty());

        let db = db_with(&folder);
        if extension {
            db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
        }
        apply_to_switch(&db, &plan_path);
        // The old release still reads the column contract drops.
        db.execute("SELECT name FROM public.users");
        let out = run(&db, &["gate", "--config", &toml], &[]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(gate_exit), "{setting} (extension {extension}): {shown}");
        if expected.is_empty() {
            assert!(!shown.contains("old_path_silent"), "{setting}: {shown}");
        } else {
            let line = shown.lines().find(|l| l.trim_start().starts_with("old_path_silent")).unwrap_or("");
            assert!(line.contains(expected), "{setting}: {shown}");
        }
    }
}

/// Issue 18.8: `[[fill]] value = '1 -- default tenant'` is one expression with a comment; it is
/// spliced in parenthesised with the comment cut, and the plan applies on real PostgreSQL,
/// every existing row getting 1.
#[test]
fn issue18_8_fill_value_with_comment_is_spliced_parenthesised_and_applies() {
    let dir = TempDir::new();
    let folder = example("05-add-not-null-column");
    let toml = write(
        &dir,
        "seqmig.toml",
        "[[fill]]\ntable = \"public.users\"\ncolumn = \"tenant_id\"\nvalue = '1 -- default tenant'\n",
    );
    let out = plan_cli(&folder, &dir, &["--format", "json", "--config", &toml], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let p = Plan::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let sql: String = p.steps.iter().map(|s| s.sql.as_str()).collect::<Vec<_>>().join("\n");
    assert!(!sql.contains("default tenant"), "{sql}");
    assert!(sql.contains("(1)"), "{sql}");
    let plan_path = write(&dir, "plan.json", &p.to_json_pretty());
    let db = db_with(&folder);
    db.execute("INSERT INTO public.users (name) SELECT 'u' || g FROM generate_series(1, 500) g");
    apply_to_switch(&db, &plan_path);
    assert!(query_bool(&db, "SELECT count(*) = 500 AND bool_and(tenant_id = 1) FROM public.users"));
}

/// Issue 23: with no observation recorded and one required, the gate says what is missing
/// (`missing 1 of 1 passing`), not how many there are (`missing 0 of 1`).
#[test]
fn issue23_gate_says_how_many_observations_are_missing() {
    let dir = TempDir::new();
    let folder = example("07-rename-column");
    let rename = std::fs::read_to_string(folder.join("seqmig.toml")).unwrap();
    let toml =
        write(&dir, "seqmig.toml", &format!("{rename}\n[gate]\nmin_soak = \"0s\"\nobservations = 1\n"));
    let out = plan_cli(&folder, &dir, &["--format", "json", "--config", &toml], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan_path = write(&dir, "plan.json", &String::from_utf8_lossy(&out.stdout));
    let db = db_with(&folder);
    apply_to_switch(&db, &plan_path);
    let out = run(&db, &["gate", "--config", &toml], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("missing 1 of 1 passing"), "{}", text(&out));
}

/// Issue 23: `status` with no URL says that neither `--database-url` nor `DATABASE_URL` was
/// given, instead of only failing to reach localhost.
#[test]
fn issue23_status_without_a_url_says_none_was_given() {
    let dir = TempDir::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_seqmig"))
        .arg("status")
        .current_dir(&dir.path)
        .env_remove("DATABASE_URL")
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("neither --database-url nor DATABASE_URL was given"), "{}", text(&out));
}
