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

/// One module per example, with one `#[test]` per format (`json`, `sql`, `md`), so a
/// failing snapshot names its example and format and hides none of the others. The snapshot
/// files keep the names `<example>.<format>.snap`. `EXAMPLES` lists the same directories:
/// `issue19_1_every_example_dir_has_its_snapshot_tests` fails when a directory is added to
/// `migrations-examples/` without a line here.
macro_rules! example_snapshots {
    ($($module:ident => $dir:literal,)*) => {
        const EXAMPLES: &[&str] = &[$($dir),*];
        $(
            mod $module {
                #[test]
                fn json() {
                    super::snapshot($dir, "json");
                }
                #[test]
                fn sql() {
                    super::snapshot($dir, "sql");
                }
                #[test]
                fn md() {
                    super::snapshot($dir, "md");
                }
            }
        )*
    };
}

mod issue19_1_example_snapshots {
    use super::*;

    example_snapshots! {
    e01_create_table => "01-create-table",
    e02_drop_table => "02-drop-table",
    e03_rename_table => "03-rename-table",
    e04_add_column => "04-add-column",
    e05_add_not_null_column => "05-add-not-null-column",
    e06_drop_column => "06-drop-column",
    e07_rename_column => "07-rename-column",
    e08_change_type => "08-change-type",
    e09_transform_column => "09-transform-column",
    e10_set_not_null => "10-set-not-null",
    e11_drop_not_null_change_default => "11-drop-not-null-change-default",
    e12_add_check_and_foreign_key => "12-add-check-and-foreign-key",
    e13_add_unique_and_primary_key => "13-add-unique-and-primary-key",
    e14_add_and_change_index => "14-add-and-change-index",
    e15_drop_index_and_constraint => "15-drop-index-and-constraint",
    e16_add_enum_value => "16-add-enum-value",
    e17_view_and_function => "17-view-and-function",
    e18_several_dependent_changes => "18-several-dependent-changes",
    e19_ambiguous_rename => "19-ambiguous-rename",
    e20_pg_dump_clean => "20-pg-dump-clean",
    e21_opaque_alter => "21-opaque-alter",
    e22_extension_drop => "22-extension-drop",
    e23_volatile_default => "23-volatile-default",
    e24_widen_serial_key => "24-widen-serial-key",
    e25_identity_or_generated => "25-identity-or-generated",
    e26_widen_identity_key => "26-widen-identity-key",
    e28_partitioned_column_changes => "28-partitioned-column-changes",
    e29_partitioned_index => "29-partitioned-index",
    e30_attach_partitions => "30-attach-partitions",
    e31_partitioned_type_change => "31-partitioned-type-change",
    e32_detach_partitions => "32-detach-partitions",
    e33_attach_partition_with_parent_changes => "33-attach-partition-with-parent-changes",
    }

    /// Asserts the snapshot of one example in one format.
    fn snapshot(example: &str, format: &str) {
        let (planned, hints) = plan_example(&examples_dir().join(example));
        let text = match format {
            "json" => planned.plan.to_json_pretty(),
            "sql" => sql_snapshot(&planned),
            "md" => seqmig::runbook::runbook(&planned, &hints.governance, &Renderer::embedded()).unwrap(),
            other => unreachable!("no snapshot format {other}"),
        };
        settings().bind(|| insta::assert_snapshot!(format!("{example}.{format}"), text));
    }

    #[test]
    fn issue19_1_every_example_dir_has_its_snapshot_tests() {
        let on_disk: Vec<String> =
            examples().iter().map(|d| d.file_name().unwrap().to_string_lossy().into_owned()).collect();
        let listed: Vec<String> = EXAMPLES.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            on_disk, listed,
            "every directory of migrations-examples/ with a before.sql needs a line in \
             example_snapshots! (tests/plan_tests.rs), in directory order"
        );
        assert!(EXAMPLES.len() >= 12, "at least 12 examples");
    }

    /// Every snapshot file belongs to a listed example and format: a renamed or removed
    /// example leaves no stale snapshot behind.
    #[test]
    fn issue19_1_every_snapshot_file_has_its_test() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
        let mut stale = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".snap") else { continue };
            let owned = ["json", "sql", "md"]
                .iter()
                .any(|f| stem.strip_suffix(&format!(".{f}")).is_some_and(|ex| EXAMPLES.contains(&ex)));
            if !owned {
                stale.push(name);
            }
        }
        assert!(stale.is_empty(), "snapshot files no test asserts: {stale:?}");
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
            *codes.entry((format!("{:?}", f.severity), f.code.to_string())).or_default() += 1;
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
