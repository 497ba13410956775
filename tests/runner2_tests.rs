//! sqlx and Rails runner files (issue 23), driven by the real `sqlx` CLI and ActiveRecord's
//! own migrator on a real database with writers, phase by phase, as `runner_tests` does for
//! psql, sqitch, Alembic, Django and node-pg-migrate: the contract migration is refused while
//! the gate is closed and runs once an open verdict is recorded; `seqmig status` then shows
//! the plan complete. Missing runner binaries fail the tests.

use crate::runner_tests::{RENAME, Runner, TYPE_CHANGE, concurrently_case, run_case};

#[test]
fn issue23_1_sqlx_runs_the_phases_rename() {
    run_case(Runner::Sqlx, &RENAME);
}

#[test]
fn issue23_1_sqlx_runs_the_phases_type_change() {
    run_case(Runner::Sqlx, &TYPE_CHANGE);
}

/// Example 14's `CONCURRENTLY` steps each run alone in a `-- no-transaction` migration.
#[test]
fn issue23_1_sqlx_runs_concurrently_steps_outside_transactions_and_break_glass_is_audited() {
    concurrently_case(Runner::Sqlx);
}

#[test]
fn issue23_2_rails_runs_the_phases_rename() {
    run_case(Runner::Rails, &RENAME);
}

#[test]
fn issue23_2_rails_runs_the_phases_type_change() {
    run_case(Runner::Rails, &TYPE_CHANGE);
}

/// Example 14's `CONCURRENTLY` steps run in `disable_ddl_transaction!` migrations.
#[test]
fn issue23_2_rails_runs_concurrently_steps_outside_transactions_and_break_glass_is_audited() {
    concurrently_case(Runner::Rails);
}

fn example_plan(example: &str, format: &str, db: &crate::harness::TestDb) -> String {
    let ex = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples").join(example);
    let arg = |f: &str| ex.join(f).to_string_lossy().into_owned();
    let mut args =
        vec!["plan".to_string(), "--from".into(), arg("before.sql"), "--to".into(), arg("after.sql")];
    if ex.join("seqmig.toml").is_file() {
        args.extend(["--config".to_string(), arg("seqmig.toml")]);
    }
    args.extend(["--format".to_string(), format.to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    String::from_utf8_lossy(&crate::harness::cli::seqmig(&args, db).stdout).into_owned()
}

/// `seqmig apply --phase <TAB>` and `rollback --phase <TAB>` offer the phases, in bash (the
/// generated function run by a real bash) and in the zsh and fish scripts.
#[test]
fn issue23_5_completions_complete_phase_names() {
    let script = seqmig::cli::completions::script(clap_complete::Shell::Bash);
    let file = crate::harness::cli::TempDir::new();
    let path = file.path.join("seqmig.bash");
    std::fs::write(&path, &script).unwrap();
    for sub in ["apply", "rollback"] {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}'; COMP_WORDS=(seqmig {sub} --phase d); COMP_CWORD=3; \
                 COMP_LINE='seqmig {sub} --phase d'; COMP_POINT=${{#COMP_LINE}}; \
                 _seqmig seqmig d --phase; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                path.display()
            ))
            .output()
            .expect("bash");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "dual_write\n", "{sub}: {out:?}");
    }
    for shell in [clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
        let script = seqmig::cli::completions::script(shell);
        for phase in ["expand", "dual_write", "backfill", "switch", "contract"] {
            assert!(script.contains(phase), "{shell} completions miss {phase}");
        }
    }
}

/// The runbook's governance section names only the roles seqmig.toml names: none invented
/// when `[governance]` is absent (example 07), the configured ones when present (example 18).
#[test]
fn issue23_5_runbook_governance_lists_only_configured_roles() {
    let db = crate::harness::TestDb::new();
    let unset = example_plan("07-rename-column", "markdown", &db);
    let section = |md: &str| {
        let start = md.find("## Governance").expect("a governance section");
        let rest = &md[start..];
        rest[..rest[2..].find("\n## ").map(|n| n + 2).unwrap_or(rest.len())].to_string()
    };
    let gov = section(&unset);
    for invented in ["on-call DBA", "release manager", "DBA on call", "the team owning the schema", "Owner:"]
    {
        assert!(!gov.contains(invented), "the runbook invents '{invented}':\n{gov}");
    }
    assert!(gov.contains("no role named (set `operators`"), "{gov}");
    let set = section(&example_plan("18-several-dependent-changes", "markdown", &db));
    assert!(set.contains("- Owner: identity team"), "{set}");
    assert!(set.contains("DBA, identity team lead"), "{set}");
    assert!(!set.contains("on-call DBA") && !set.contains("release manager"), "{set}");
}

/// `seqmig plan` text: a step with no lock and no other flag prints no empty flags line
/// (example 11's undo-only steps hold no lock).
#[test]
fn issue23_5_a_step_with_no_lock_prints_no_empty_line() {
    let db = crate::harness::TestDb::new();
    let text = example_plan("11-drop-not-null-change-default", "text", &db);
    assert!(text.contains("  s1 "), "{text}");
    for line in text.lines() {
        assert!(line.is_empty() || !line.trim().is_empty(), "a whitespace-only line in:\n{text}");
    }
}

/// Writes `--format <format>` for an example into a fresh directory, with the versions the
/// pages show; returns the directory and the plan.
fn write_example(
    example: &str,
    format: &str,
    db: &crate::harness::TestDb,
) -> (crate::harness::cli::TempDir, seqmig::plan::Plan) {
    let ex = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples").join(example);
    let arg = |f: &str| ex.join(f).to_string_lossy().into_owned();
    let dir = crate::harness::cli::TempDir::new();
    let mut base =
        vec!["plan".to_string(), "--from".into(), arg("before.sql"), "--to".into(), arg("after.sql")];
    if ex.join("seqmig.toml").is_file() {
        base.extend(["--config".to_string(), arg("seqmig.toml")]);
    }
    let first = crate::runner_tests::FIRST_VERSION.to_string();
    let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
    args.extend(["--format", format, "--out", dir.path.to_str().unwrap(), "--first-version", &first]);
    let out = crate::harness::cli::seqmig(&args, db);
    assert!(out.status.success(), "{}", crate::harness::cli::text(&out));
    let plan = seqmig::plan::Plan::from_json(&example_plan(example, "json", db)).unwrap();
    (dir, plan)
}

fn listing(root: &std::path::Path) -> String {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    files.join("\n") + "\n"
}

/// The sqlx and Rails pages quote what seqmig writes (plan ids normalised to the ones the
/// pages show, as `issue23_4_runner_pages_quote_what_seqmig_writes` does), and the versions
/// they name for expand, dual_write and backfill are those phases' last versions.
#[test]
fn issue23_4_sqlx_and_rails_pages_quote_what_seqmig_writes() {
    let db = crate::harness::TestDb::new();
    let book = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/runners");
    let sqlx_page = std::fs::read_to_string(book.join("sqlx.md")).unwrap();
    let rails_page = std::fs::read_to_string(book.join("rails.md")).unwrap();
    let normalise = |s: &str, plan: &seqmig::plan::Plan, shown: &str| {
        s.replace(&plan.id, &format!("sha256:{shown}…")).replace(&plan.short_id()[..8], shown)
    };
    let quotes = |page: &str, text: &str, fence: &str| {
        assert!(page.contains(&format!("```{fence}\n{text}```")), "the page does not quote:\n{text}");
    };

    let (dir, plan) = write_example("07-rename-column", "sqlx", &db);
    quotes(&sqlx_page, &normalise(&listing(&dir.path), &plan, "53eb5881"), "text");
    let planned = seqmig::plan::Planned { plan: plan.clone(), notes: Default::default() };
    let renderer = seqmig::render::Renderer::with_overrides(None).unwrap();
    let migrations =
        seqmig::runner::sqlx::migrations(&planned, &renderer, crate::runner_tests::FIRST_VERSION).unwrap();
    let targets = seqmig::runner::sqlx::phase_targets(&migrations);
    assert_eq!(
        targets.iter().take(3).map(|(p, v)| format!("{p}={v}")).collect::<Vec<_>>(),
        ["expand=20261206000001", "dual_write=20261206000002", "backfill=20261206000005"]
    );
    assert!(sqlx_page.contains("--target-version 20261206000002 \\\n  --database-url postgres://app@db.example/shop   # expand and dual_write"));
    assert!(sqlx_page.contains("override skip --source migrations --target-version 20261206000005"));
    let rails_targets = seqmig::runner::rails::phase_targets(&planned, crate::runner_tests::FIRST_VERSION);
    assert_eq!(rails_targets, targets);

    let (dir, plan) = write_example("07-rename-column", "rails", &db);
    quotes(&rails_page, &normalise(&listing(&dir.path), &plan, "53eb5881"), "text");
    assert!(rails_page.contains("VERSION=20261206000001   # expand of this plan"));
    assert!(rails_page.contains("VALUES ('20261206000003'), ('20261206000004'), ('20261206000005')"));

    let (dir, plan) = write_example("14-add-and-change-index", "sqlx", &db);
    quotes(&sqlx_page, &normalise(&listing(&dir.path), &plan, "d4f804e4"), "text");
    let run = dir.path.join(format!("20261206000001_seqmig_{}_expand_run.sql", &plan.short_id()[..8]));
    let run = std::fs::read_to_string(run).unwrap();
    quotes(&sqlx_page, &normalise(&run, &plan, "d4f804e4"), "sql");
}
