//! Finding codes are one enum, `FindingCode`: every code has its book page, and a config that
//! names a code the linter does not know is refused with that code in the message.

use std::path::Path;
use std::process::Command;

use seqmig::finding::FindingCode;
use seqmig::lint::rules::rule;

fn book() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src")
}

/// A lint code's page is `lints/<code>.md` (generated and compared by `lint_tests`); every
/// other code is a plan or loader finding with a hand-written `findings/<code>.md`, listed in
/// the findings index and in SUMMARY.md. A new variant without its page fails here.
#[test]
fn issue19_1_every_finding_code_has_its_book_page() {
    let summary = std::fs::read_to_string(book().join("SUMMARY.md")).unwrap();
    let index = std::fs::read_to_string(book().join("findings/README.md")).unwrap();
    let mut missing = Vec::new();
    for &code in FindingCode::ALL {
        let page =
            if rule(code).is_some() { format!("lints/{code}.md") } else { format!("findings/{code}.md") };
        if !book().join(&page).is_file() {
            missing.push(format!("{page} does not exist"));
        }
        if !summary.contains(&format!("({page})")) {
            missing.push(format!("SUMMARY.md does not list {page}"));
        }
        if rule(code).is_none() && !index.contains(&format!("({code}.md)")) {
            missing.push(format!("findings/README.md does not list {code}"));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

/// The other direction: a page under findings/ or lints/ is the page of a code that exists.
#[test]
fn issue19_1_every_code_page_names_a_finding_code() {
    for dir in ["findings", "lints"] {
        for entry in std::fs::read_dir(book().join(dir)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            let Some(code) = name.strip_suffix(".md").filter(|c| *c != "README") else { continue };
            assert!(code.parse::<FindingCode>().is_ok(), "{dir}/{name} names no FindingCode");
        }
    }
}

fn lint_with_config(toml: &str) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("seqmig-finding-codes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join(format!("seqmig-{:x}.toml", toml.len()));
    std::fs::write(&config, toml).unwrap();
    let sql = dir.join("m.sql");
    std::fs::write(&sql, "SET lock_timeout = '1s'; SET statement_timeout = '1min';\nDROP TABLE a;").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_seqmig"))
        .args(["lint", "--config", &config.display().to_string(), &sql.display().to_string()])
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn issue19_1_config_naming_an_unknown_code_is_refused_by_name() {
    let (code, err) = lint_with_config("[lint]\nallow = [\"drop-table\", \"drop-tabel\"]\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown lint code 'drop-tabel'"), "{err}");

    let (code, err) = lint_with_config("[lint]\ndeny = [\"ambiguous-rename\"]\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'ambiguous-rename' is a finding of 'seqmig plan', not a lint code"), "{err}");

    // The allowed code still silences the finding it names.
    let (code, err) = lint_with_config("[lint]\nallow = [\"drop-table\"]\n");
    assert_eq!(code, 0, "{err}");
}
