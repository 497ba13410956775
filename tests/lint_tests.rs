//! `seqmig lint`: the fixture corpus (every rule's unsafe and safe forms, expected codes
//! declared in each file's leading comments), the command's exit codes and output formats, and the
//! structure of the SARIF it writes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use seqmig::lint::{LintConfig, lint_source, rules::RULES};
use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint")
}

fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
}

/// `-- expect: a, b` → [a, b] (sorted, duplicates kept); `-- expect: none` → [].
fn expected(text: &str, file: &Path) -> Vec<String> {
    // The first line, or the first comment line after a `seqmig plan` file header.
    let list = text
        .lines()
        .take_while(|l| l.starts_with("--"))
        .find_map(|l| l.strip_prefix("-- expect:"))
        .unwrap_or_else(|| panic!("{}: the leading comments must have '-- expect: …'", file.display()))
        .trim();
    let mut codes: Vec<String> =
        if list == "none" { Vec::new() } else { list.split(',').map(|c| c.trim().to_string()).collect() };
    codes.sort();
    codes
}

/// Optional directives among the leading comments: `-- pg-version: N`, `-- assume-in-transaction`.
fn fixture_config(text: &str) -> LintConfig {
    let mut config = LintConfig::default();
    for line in text.lines().take_while(|l| l.starts_with("--")) {
        if let Some(v) = line.strip_prefix("-- pg-version:") {
            config.pg_version = v.trim().parse().unwrap();
        } else if line.trim() == "-- assume-in-transaction" {
            config.assume_in_transaction = true;
        }
    }
    config
}

#[test]
fn every_fixture_yields_exactly_its_expected_codes() {
    let files = fixtures();
    assert!(files.len() >= 60, "only {} lint fixtures", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let want = expected(&text, f);
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let findings = lint_source(&name, &text, &fixture_config(&text)).unwrap();
        let mut got: Vec<String> = findings.iter().map(|f| f.code.to_string()).collect();
        got.sort();
        if name.contains(".safe.") {
            assert_eq!(want, Vec::<String>::new(), "{name}: safe fixtures must expect none");
        }
        if got != want {
            failures.push(format!("{name}: expected {want:?}, got {got:?}"));
        }
        for finding in &findings {
            let span = finding.span.as_ref().expect("every lint finding has a span");
            assert!(span.line >= 1 && span.column >= 1);
            assert!(!finding.help.is_empty() && !finding.message.is_empty(), "{name}: {finding:?}");
            assert!(
                !finding.message.starts_with(|c: char| c.is_ascii_uppercase()),
                "{name}: messages are lowercase: {}",
                finding.message
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_has_an_unsafe_and_a_safe_fixture() {
    let names: Vec<String> =
        fixtures().iter().map(|p| p.file_name().unwrap().to_string_lossy().to_string()).collect();
    let mut fired = BTreeSet::new();
    for f in fixtures() {
        let text = std::fs::read_to_string(&f).unwrap();
        fired.extend(expected(&text, &f));
    }
    for r in RULES {
        assert!(fired.contains(r.code.as_str()), "no fixture triggers {}", r.code);
        assert!(
            names.iter().any(|n| n.starts_with(r.code.as_str()) && n.contains(".safe.")),
            "no safe fixture for {}",
            r.code
        );
    }
}

fn seqmig(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_seqmig")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn fixture(name: &str) -> String {
    fixtures_dir().join(name).display().to_string()
}

#[test]
fn exit_codes_follow_the_answer() {
    let (code, out, _) = seqmig(&["lint", &fixture("drop-table.unsafe.sql")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("drop-table.unsafe.sql:4:1: error[drop-table]: deletes table old_events"), "{out}");
    assert!(out.contains("4 | DROP TABLE old_events;"), "{out}");
    assert!(out.contains("= help: "), "{out}");

    let (code, out, _) =
        seqmig(&["lint", &fixture("drop-table.safe.sql"), &fixture("prefer-jsonb.unsafe.sql")]);
    assert_eq!(code, 0, "warnings alone pass: {out}");
    assert!(out.contains("warning[prefer-jsonb]"), "{out}");

    let (code, _, _) = seqmig(&["lint", "--exclude", "drop-table", &fixture("drop-table.unsafe.sql")]);
    assert_eq!(code, 0);

    let (code, _, err) = seqmig(&["lint", "/nonexistent/migration.sql"]);
    assert_eq!(code, 2);
    assert!(err.contains("failed to read '/nonexistent/migration.sql'"), "{err}");

    let dir = tempdir("unterminated");
    std::fs::write(dir.join("001.sql"), "SELECT 1;\nSELECT 'abc;\n").unwrap();
    let (code, _, err) = seqmig(&["lint", &dir.display().to_string()]);
    assert_eq!(code, 2);
    assert!(err.contains("001.sql:2:8: unterminated string literal"), "{err}");

    let (code, _, err) = seqmig(&["lint", "--exclude", "no-such-code", &fixture("drop-table.safe.sql")]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown lint code 'no-such-code'"), "{err}");
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seqmig-lint-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn directories_expand_to_sql_files_in_name_order() {
    let dir = tempdir("order");
    std::fs::write(dir.join("002_b.sql"), "DROP TABLE b;").unwrap();
    std::fs::write(dir.join("001_a.sql"), "DROP TABLE a;").unwrap();
    std::fs::write(dir.join("notes.txt"), "DROP TABLE c;").unwrap();
    let (code, out, _) = seqmig(&[
        "lint",
        "--format",
        "json",
        "--exclude",
        "missing-lock-timeout,missing-statement-timeout",
        &dir.display().to_string(),
    ]);
    assert_eq!(code, 1);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let files: Vec<&str> = doc["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(files.len(), 2);
    assert!(files[0].ends_with("001_a.sql") && files[1].ends_with("002_b.sql"), "{files:?}");
    assert_eq!(doc["errors"], 2);
    assert_eq!(doc["findings"][0]["code"], "drop-table");
    assert_eq!(doc["findings"][0]["span"]["line"], 1);
}

#[test]
fn seqmig_toml_lint_table_is_honoured() {
    let dir = tempdir("config");
    std::fs::write(dir.join("seqmig.toml"), "[lint]\nallow = [\"drop-table\"]\npg_version = 16\n").unwrap();
    std::fs::write(
        dir.join("m.sql"),
        "SET lock_timeout = '1s'; SET statement_timeout = '1min';\nDROP TABLE a;",
    )
    .unwrap();
    let config = dir.join("seqmig.toml").display().to_string();
    let (code, out, err) = seqmig(&["lint", "--config", &config, &dir.join("m.sql").display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn github_annotations() {
    let (code, out, _) = seqmig(&["lint", "--format", "github", &fixture("set-not-null.unsafe.sql")]);
    assert_eq!(code, 1);
    let line = out.lines().next().unwrap();
    assert!(line.starts_with("::error file="), "{line}");
    assert!(line.contains("set-not-null.unsafe.sql,line=4,col=1,title=seqmig set-not-null::setting users.email NOT NULL scans"), "{line}");
}

/// Checks the parts of the SARIF 2.1.0 schema code-scanning relies on: required properties,
/// their types, and the links between results and rules.
fn check_sarif(doc: &Value) -> Result<(), String> {
    let obj = |v: &Value, what: &str| v.as_object().cloned().ok_or(format!("{what} must be an object"));
    let string =
        |v: &Value, what: &str| v.as_str().map(str::to_string).ok_or(format!("{what} must be a string"));
    let top = obj(doc, "sarifLog")?;
    if top.get("version").and_then(Value::as_str) != Some("2.1.0") {
        return Err("version must be \"2.1.0\"".into());
    }
    string(top.get("$schema").unwrap_or(&Value::Null), "$schema")?;
    let runs = top.get("runs").and_then(Value::as_array).ok_or("runs must be an array")?;
    for (i, run) in runs.iter().enumerate() {
        let driver = run.pointer("/tool/driver").ok_or(format!("runs[{i}].tool.driver is required"))?;
        string(driver.get("name").unwrap_or(&Value::Null), "tool.driver.name")?;
        let rules =
            driver.get("rules").and_then(Value::as_array).ok_or("tool.driver.rules must be an array")?;
        let mut ids = Vec::new();
        for r in rules {
            let id = string(r.get("id").unwrap_or(&Value::Null), "rule.id")?;
            for key in ["shortDescription", "fullDescription", "help"] {
                if let Some(m) = r.get(key) {
                    string(m.get("text").unwrap_or(&Value::Null), &format!("rule {id}.{key}.text"))?;
                }
            }
            if let Some(level) = r.pointer("/defaultConfiguration/level") {
                check_level(level)?;
            }
            ids.push(id);
        }
        let results = run.get("results").and_then(Value::as_array).ok_or("results must be an array")?;
        for res in results {
            let rule_id = string(res.get("ruleId").unwrap_or(&Value::Null), "result.ruleId")?;
            if !ids.contains(&rule_id) {
                return Err(format!("result names rule {rule_id} the driver does not describe"));
            }
            if let Some(idx) = res.get("ruleIndex") {
                let idx = idx.as_u64().ok_or("ruleIndex must be a non-negative integer")? as usize;
                if ids.get(idx) != Some(&rule_id) {
                    return Err(format!("ruleIndex {idx} does not point at {rule_id}"));
                }
            }
            check_level(res.get("level").unwrap_or(&Value::Null))?;
            string(res.pointer("/message/text").unwrap_or(&Value::Null), "result.message.text")?;
            let locations =
                res.get("locations").and_then(Value::as_array).ok_or("result.locations must be an array")?;
            if locations.is_empty() {
                return Err("result.locations must not be empty".into());
            }
            for loc in locations {
                let phys = loc.get("physicalLocation").ok_or("location.physicalLocation is required")?;
                let uri = string(
                    phys.pointer("/artifactLocation/uri").unwrap_or(&Value::Null),
                    "artifactLocation.uri",
                )?;
                if uri.contains(' ') || uri.contains('\\') {
                    return Err(format!("uri {uri} is not a URI reference"));
                }
                let region = phys.get("region").ok_or("physicalLocation.region is required")?;
                for key in ["startLine", "startColumn"] {
                    let n = region
                        .get(key)
                        .and_then(Value::as_u64)
                        .ok_or(format!("region.{key} must be an integer"))?;
                    if n < 1 {
                        return Err(format!("region.{key} must be >= 1"));
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_level(v: &Value) -> Result<(), String> {
    match v.as_str() {
        Some("none" | "note" | "warning" | "error") => Ok(()),
        _ => Err(format!("level {v} is not one of none/note/warning/error")),
    }
}

#[test]
fn sarif_output_has_the_structure_of_sarif_2_1_0() {
    let (code, out, _) = seqmig(&["lint", "--format", "sarif", &fixtures_dir().display().to_string()]);
    assert_eq!(code, 1);
    let doc: Value = serde_json::from_str(&out).unwrap();
    check_sarif(&doc).unwrap();
    let results = doc.pointer("/runs/0/results").unwrap().as_array().unwrap();
    assert!(results.len() >= 50, "{}", results.len());
    assert_eq!(doc.pointer("/runs/0/tool/driver/rules").unwrap().as_array().unwrap().len(), RULES.len());

    // The checker itself rejects what the schema rejects.
    let mut broken = doc.clone();
    broken["runs"][0]["results"][0]["level"] = Value::from("fatal");
    assert!(check_sarif(&broken).is_err());
    let mut broken = doc.clone();
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        Value::from(0);
    assert!(check_sarif(&broken).is_err());
    let mut broken = doc;
    broken["version"] = Value::from("2.0.0");
    assert!(check_sarif(&broken).is_err());
}

/// `book/src/lints/<code>.md` is generated from the rule registry; `SEQMIG_BLESS=1` rewrites
/// the pages, otherwise they must match and be listed in SUMMARY.md.
#[test]
fn every_code_has_its_book_page() {
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src");
    let summary = std::fs::read_to_string(book.join("SUMMARY.md")).unwrap();
    let bless = std::env::var_os("SEQMIG_BLESS").is_some();
    let mut stale = Vec::new();
    for r in RULES {
        let path = book.join("lints").join(format!("{}.md", r.code));
        let page = r.book_page();
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &page).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(page.as_str()) {
            stale.push(r.code);
        }
        assert!(
            summary.contains(&format!("(lints/{}.md)", r.code)),
            "SUMMARY.md does not list lints/{}.md",
            r.code
        );
    }
    assert!(
        stale.is_empty(),
        "stale book pages (run SEQMIG_BLESS=1 cargo test --test tests lint): {stale:?}"
    );
}

#[test]
fn later_files_inherit_validated_constraints_but_not_new_tables() {
    let dir = tempdir("carry");
    let p = "SET lock_timeout = '2s';\nSET statement_timeout = '5min';\n";
    std::fs::write(
        dir.join("001_expand.sql"),
        format!("{p}CREATE TABLE t (id bigint PRIMARY KEY);\nALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;"),
    )
    .unwrap();
    std::fs::write(
        dir.join("002_backfill.sql"),
        format!("{p}ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;"),
    )
    .unwrap();
    std::fs::write(
        dir.join("003_contract.sql"),
        format!("{p}ALTER TABLE users ALTER COLUMN email SET NOT NULL;\nCREATE INDEX t_idx ON t (id);"),
    )
    .unwrap();
    let reports = seqmig::lint::lint_paths(&[dir], &LintConfig::default()).unwrap();
    let codes: Vec<&str> = reports.iter().flat_map(|r| r.findings.iter().map(|f| f.code.as_str())).collect();
    // t was new in 001, but by 003 it may hold rows: the plain index build is reported.
    assert_eq!(codes, vec!["create-index-non-concurrently"]);
}

/// Every example in `migrations-examples/`, in name order.
fn example_dirs() -> Vec<PathBuf> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("before.sql").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no examples in {}", examples.display());
    dirs
}

/// `seqmig plan --format sql --out DIR` for one example: the exit code and the phase files
/// (`rollback` = the `.rollback.sql` files, else the forward ones), in phase order.
fn planned_sql(ex: &Path, rollback: bool) -> (i32, Vec<PathBuf>) {
    let name = ex.file_name().unwrap().to_string_lossy().to_string();
    let out = tempdir(&format!("dogfood-{name}-{rollback}"));
    let mut args = vec![
        "plan".to_string(),
        "--from".into(),
        ex.join("before.sql").display().to_string(),
        "--to".into(),
        ex.join("after.sql").display().to_string(),
        "--format".into(),
        "sql".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    if ex.join("seqmig.toml").is_file() {
        args.extend(["--config".into(), ex.join("seqmig.toml").display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = seqmig(&args);
    assert!(code == 0 || code == 1, "{name}: seqmig plan failed ({code}): {stdout}{stderr}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "sql")
                && p.to_string_lossy().ends_with(".rollback.sql") == rollback
        })
        .collect();
    files.sort();
    (code, files)
}

/// Dogfood: the SQL `seqmig plan` writes for every example in `migrations-examples/` lints
/// with zero error findings, its phase files linted in order as one run (as `seqmig lint
/// DIR` does). The rollback files have their own test below.
#[test]
fn plan_output_for_every_example_lints_without_errors() {
    let mut failures = Vec::new();
    for ex in &example_dirs() {
        let name = ex.file_name().unwrap().to_string_lossy().to_string();
        let (code, phases) = planned_sql(ex, false);
        if code == 0 {
            assert!(!phases.is_empty(), "{name}: seqmig plan wrote no phase files");
        }
        // A blocked plan (exit 1, e.g. 25's table-rewrite findings) says itself that its SQL
        // is not safe; the linter agreeing with it is no defect.
        if phases.is_empty() || code != 0 {
            continue;
        }
        let reports = seqmig::lint::lint_paths(&phases, &LintConfig::default()).unwrap();
        for r in &reports {
            for f in r.findings.iter().filter(|f| f.is_error()) {
                let span = f.span.as_ref().unwrap();
                failures.push(format!("{name}: {}:{}: {}: {}", span.file, span.line, f.code, f.message));
            }
        }
    }
    assert!(failures.is_empty(), "seqmig lint rejects SQL that seqmig plan wrote:\n{}", failures.join("\n"));
}

/// Rules that guard the previous release's data and names, which an undo never touches: it
/// drops only what its phase added (a column, table or index the previous release never
/// used) and renames only back (a swap undone in the same transaction, a table rename with
/// its view, a brownout). Every other error rule applies to rollback SQL as to any other.
const UNDO_EXCEPTIONS: &[&str] = &["drop-column", "drop-table", "rename-column", "rename-table"];

/// Dogfood for undo: every example's rollback files (each linted alone: each runs on its own
/// when an operator rolls a phase back) have no error findings beyond [`UNDO_EXCEPTIONS`] —
/// no index built or dropped without CONCURRENTLY, no key built under a lock, no NOT NULL set
/// by a scan under ACCESS EXCLUSIVE, no validation in the transaction that added the
/// constraint.
#[test]
fn plan_rollback_sql_for_every_example_lints_without_errors() {
    let mut failures = Vec::new();
    let mut linted = 0;
    for ex in &example_dirs() {
        let name = ex.file_name().unwrap().to_string_lossy().to_string();
        for file in planned_sql(ex, true).1 {
            linted += 1;
            let sql = std::fs::read_to_string(&file).unwrap();
            let findings = lint_source(&file.display().to_string(), &sql, &LintConfig::default()).unwrap();
            for f in findings.iter().filter(|f| f.is_error() && !UNDO_EXCEPTIONS.contains(&f.code.as_str())) {
                let span = f.span.as_ref().unwrap();
                failures.push(format!("{name}: {}:{}: {}: {}", span.file, span.line, f.code, f.message));
            }
        }
    }
    assert!(linted >= 30, "only {linted} rollback files");
    assert!(
        failures.is_empty(),
        "seqmig lint rejects rollback SQL that seqmig plan wrote:\n{}",
        failures.join("\n")
    );
}
