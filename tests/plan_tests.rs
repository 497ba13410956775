//! `seqmig plan` end to end: every example in `migrations-examples/` in every format as
//! insta snapshots (byte-identical and with the same plan id on every run), every rendered
//! statement re-parsed, odd names in a non-`public` schema, exit codes, and the real-world
//! corpus diffs.

use std::path::{Path, PathBuf};
use std::process::Command;

use seqmig::diff::Hints;
use seqmig::model::Schema;
use seqmig::plan::{Planned, plan};
use seqmig::render::Renderer;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples")
}

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("before.sql").is_file())
        .collect();
    v.sort();
    v
}

fn load(name: &str, sql: &str) -> Schema {
    seqmig::parse::load_str(name, sql).unwrap_or_else(|e| panic!("{name}: {e}")).schema
}

fn hints_of(dir: &Path) -> Hints {
    let toml = dir.join("seqmig.toml");
    if toml.is_file() { Hints::from_file(&toml).unwrap() } else { Hints::default() }
}

fn plan_example(dir: &Path) -> (Planned, Hints) {
    let before = load("before.sql", &std::fs::read_to_string(dir.join("before.sql")).unwrap());
    let after = load("after.sql", &std::fs::read_to_string(dir.join("after.sql")).unwrap());
    let hints = hints_of(dir);
    let planned = plan(&before, &after, &hints, &Renderer::embedded()).unwrap();
    (planned, hints)
}

fn sql_snapshot(planned: &Planned) -> String {
    let mut out = String::new();
    for (p, sql, back) in seqmig::runbook::phase_files(planned, &Renderer::embedded()).unwrap() {
        out.push_str(&format!("==> {} <==\n{sql}\n", seqmig::runbook::phase_file_name(p, false)));
        out.push_str(&format!("==> {} <==\n{back}\n", seqmig::runbook::phase_file_name(p, true)));
    }
    out
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

#[test]
fn examples_snapshot_in_every_format() {
    let examples = examples();
    assert!(examples.len() >= 12, "at least 12 examples");
    for dir in examples {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let (planned, hints) = plan_example(&dir);
        let r = Renderer::embedded();
        settings().bind(|| {
            insta::assert_snapshot!(format!("{name}.json"), planned.plan.to_json_pretty());
            insta::assert_snapshot!(format!("{name}.sql"), sql_snapshot(&planned));
            insta::assert_snapshot!(
                format!("{name}.md"),
                seqmig::runbook::runbook(&planned, &hints.governance, &r).unwrap()
            );
        });
    }
}

#[test]
fn same_input_gives_the_same_plan_byte_for_byte() {
    for dir in examples() {
        let (a, hints) = plan_example(&dir);
        let (b, _) = plan_example(&dir);
        assert_eq!(a.plan.id, b.plan.id, "{}", dir.display());
        assert_eq!(a.plan.to_json_pretty(), b.plan.to_json_pretty());
        let r = Renderer::embedded();
        assert_eq!(sql_snapshot(&a), sql_snapshot(&b));
        assert_eq!(
            seqmig::runbook::runbook(&a, &hints.governance, &r).unwrap(),
            seqmig::runbook::runbook(&b, &hints.governance, &r).unwrap()
        );
        // The artifact reads back and its id verifies.
        assert_eq!(seqmig::plan::Plan::from_json(&a.plan.to_json_pretty()).unwrap(), a.plan);
    }
}

fn assert_all_statements_parse(planned: &Planned, what: &str) {
    for s in &planned.plan.steps {
        // A DO block is PL/pgSQL, which sqlparser does not read; it is the user's own text.
        if s.sql.trim_start().to_ascii_lowercase().starts_with("do ") {
            continue;
        }
        seqmig::parse::parses(&s.sql).unwrap_or_else(|e| panic!("{what} {}: {e}\n{}", s.id, s.sql));
        if let Some(rb) = &s.rollback_sql {
            seqmig::parse::parses(rb).unwrap_or_else(|e| panic!("{what} {} rollback: {e}\n{rb}", s.id));
        }
        if let Some(v) = planned.notes.get(&s.id).and_then(|n| n.verify.as_deref()) {
            seqmig::parse::parses(v).unwrap_or_else(|e| panic!("{what} {} verify: {e}\n{v}", s.id));
        }
        if let Some(b) = &s.backfill {
            let update = format!(
                "UPDATE {} SET {} = {} WHERE {}",
                b.table.quoted(),
                b.target_column.quoted_sql(),
                b.expr,
                b.pending_predicate
            );
            seqmig::parse::parses(&update)
                .unwrap_or_else(|e| panic!("{what} {} backfill: {e}\n{update}", s.id));
        }
    }
}

#[test]
fn every_rendered_statement_reparses() {
    for dir in examples() {
        let (planned, _) = plan_example(&dir);
        assert_all_statements_parse(&planned, &dir.display().to_string());
    }
}

/// The examples again, with every table of `public` moved to a schema named `Odd Schema`
/// and `users` renamed `we"ird Name`: every template renders them quoted, and the SQL still
/// parses.
#[test]
fn odd_names_in_another_schema_are_quoted_everywhere() {
    const SCHEMA: &str = "\"Odd Schema\"";
    const USERS: &str = "\"we\"\"ird Name\"";
    let sql = |text: &str| {
        format!(
            "CREATE SCHEMA {SCHEMA};\n{}",
            text.replace("public.users", &format!("{SCHEMA}.{USERS}"))
                .replace("public.", &format!("{SCHEMA}."))
        )
    };
    let toml = |text: &str| {
        let mut out = String::new();
        for line in text.lines() {
            // "public.users[.col]" → '"Odd Schema"."we""ird Name"[.col]' (a TOML literal string)
            let l = if let Some(start) = line.find("\"public.") {
                let end = line[start + 1..].find('"').unwrap() + start + 1;
                let name = &line[start + 1..end];
                let replaced = name.replacen("public.users", &format!("{SCHEMA}.{USERS}"), 1).replacen(
                    "public.",
                    &format!("{SCHEMA}."),
                    1,
                );
                format!("{}'{}'{}", &line[..start], replaced, &line[end + 1..])
            } else {
                line.to_string()
            };
            out.push_str(&l);
            out.push('\n');
        }
        out
    };
    let mut seen_odd = 0;
    for dir in examples() {
        let before = load("before.sql", &sql(&std::fs::read_to_string(dir.join("before.sql")).unwrap()));
        let after = load("after.sql", &sql(&std::fs::read_to_string(dir.join("after.sql")).unwrap()));
        let hints = match std::fs::read_to_string(dir.join("seqmig.toml")) {
            Ok(t) => Hints::from_toml(&toml(&t), "seqmig.toml")
                .unwrap_or_else(|e| panic!("{}: {e}\n{}", dir.display(), toml(&t))),
            Err(_) => Hints::default(),
        };
        let plain = plan_example(&dir).0;
        let r = Renderer::embedded();
        let planned = plan(&before, &after, &hints, &r).unwrap();
        assert_eq!(
            planned.plan.findings.iter().filter(|f| f.is_error()).count(),
            plain.plan.findings.iter().filter(|f| f.is_error()).count(),
            "{}: {:#?}",
            dir.display(),
            planned.plan.findings
        );
        assert_all_statements_parse(&planned, &format!("odd {}", dir.display()));
        let all = planned.plan.steps.iter().map(|s| s.sql.clone()).collect::<Vec<_>>().join("\n");
        if all.contains(&format!("{SCHEMA}.{USERS}")) {
            seen_odd += 1;
        }
        assert!(!all.contains("public."), "{}: a name escaped the schema move:\n{all}", dir.display());
        seqmig::runbook::runbook(&planned, &hints.governance, &r).unwrap();
        seqmig::runbook::phase_files(&planned, &r).unwrap();
    }
    assert!(seen_odd >= 10, "the odd table name reached the SQL of {seen_odd} examples");
}

fn seqmig(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_seqmig"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn exit_codes_safe_blocked_error() {
    for dir in examples() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let before = dir.join("before.sql");
        let after = dir.join("after.sql");
        let mut args = vec!["plan", "--from", before.to_str().unwrap(), "--to", after.to_str().unwrap()];
        let toml = dir.join("seqmig.toml");
        if toml.is_file() {
            args.extend(["--config", toml.to_str().unwrap()]);
        }
        let out = seqmig(&args);
        let blocked = [
            "19-ambiguous-rename",
            "21-opaque-alter",
            "22-extension-drop",
            "25-identity-or-generated",
            "26-widen-identity-key",
        ];
        let expected = if blocked.contains(&name.as_str()) { 1 } else { 0 };
        assert_eq!(out.status.code(), Some(expected), "{name}: {}", String::from_utf8_lossy(&out.stdout));
    }
    // The ambiguous rename is resolved by a --rename flag.
    let d = examples_dir().join("19-ambiguous-rename");
    let out = seqmig(&[
        "plan",
        "--from",
        d.join("before.sql").to_str().unwrap(),
        "--to",
        d.join("after.sql").to_str().unwrap(),
        "--rename",
        "public.users.name=full_name",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let out = seqmig(&["plan", "--from", "does/not/exist.sql", "--to", "does/not/exist.sql"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does/not/exist.sql"));
}

#[test]
fn sql_format_writes_one_file_per_phase_and_rollbacks() {
    let d = examples_dir().join("07-rename-column");
    let out_dir = std::env::temp_dir().join(format!("seqmig-plan-sql-{}", std::process::id()));
    let out = seqmig(&[
        "plan",
        "--from",
        d.join("before.sql").to_str().unwrap(),
        "--to",
        d.join("after.sql").to_str().unwrap(),
        "--config",
        d.join("seqmig.toml").to_str().unwrap(),
        "--format",
        "sql",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "1-expand.rollback.sql",
            "1-expand.sql",
            "2-dual_write.rollback.sql",
            "2-dual_write.sql",
            "3-backfill.rollback.sql",
            "3-backfill.sql",
            "4-switch.rollback.sql",
            "4-switch.sql",
            "5-contract.rollback.sql",
            "5-contract.sql"
        ]
    );
    let contract = std::fs::read_to_string(out_dir.join("5-contract.sql")).unwrap();
    assert!(contract.contains("-- rollback: none — ONE-WAY DOOR"));
    std::fs::remove_dir_all(&out_dir).unwrap();
}

fn corpus(name: &str) -> Schema {
    let path = crate::harness::corpus_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    load(name, &text)
}

/// The two real diffs plan without panics; what they contain is printed (run with
/// `--nocapture` to see it) and summarised in the issue note.
#[test]
fn corpus_pairs_plan() {
    for (from, to) in [
        ("osm-structure-2025-07.sql", "osm-structure-2026-07.sql"),
        ("sourcegraph-frontend-2024-10.sql", "sourcegraph-frontend-2026-04.sql"),
    ] {
        let (a, b) = (corpus(from), corpus(to));
        let r = Renderer::embedded();
        let planned = plan(&a, &b, &Hints::default(), &r).unwrap();
        let p = &planned.plan;
        let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
        for c in &p.changes {
            *kinds.entry(c.kind.as_str()).or_default() += 1;
        }
        let mut codes: std::collections::BTreeMap<(String, String), usize> = Default::default();
        for f in &p.findings {
            *codes.entry((format!("{:?}", f.severity), f.code.clone())).or_default() += 1;
        }
        #[allow(clippy::print_stdout)] // test report
        {
            println!("{from} → {to}: {} changes, {} steps", p.changes.len(), p.steps.len());
            println!("  kinds: {kinds:?}");
            println!("  findings: {codes:?}");
        }
        assert!(!p.changes.is_empty());
        // Planning is deterministic on real input too.
        assert_eq!(plan(&a, &b, &Hints::default(), &r).unwrap().plan.id, p.id);
        seqmig::runbook::runbook(&planned, &Hints::default().governance, &r).unwrap();
        seqmig::runbook::phase_files(&planned, &r).unwrap();
    }
}
