//! Loading real-world dumps (`../shared/corpus/`), identifiers through load → emit → load,
//! and bad input through the built binary (issue 2).

use std::path::{Path, PathBuf};
use std::process::Command;

use seqmig::finding::FindingCode;
use seqmig::model::ddl::schema_sql;
use seqmig::model::{Ident, OpaqueKind, QualifiedName};
use seqmig::parse::{self, SourceSpec, load_str, split_statements};

use crate::harness::corpus_dir;

fn corpus_file(name: &str) -> (String, String) {
    let path = corpus_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    (path.display().to_string(), text)
}

/// Loads one corpus file and checks the accounting, the unparsed rate, the modelled forms
/// and the round trip through `schema_sql`.
fn check_corpus_file(name: &str) {
    let (path, text) = corpus_file(name);
    let top_level = split_statements(&text).unwrap().len();
    let loaded = load_str(&path, &text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let r = &loaded.report;
    assert_eq!(r.statements, top_level, "{name}: statements seen");
    assert_eq!(r.modelled + r.opaque + r.skipped, top_level, "{name}: statements lost: {r:?}");
    assert!(r.unparsed <= r.opaque);
    assert!(
        (r.unparsed as f64) < top_level as f64 * 0.01,
        "{name}: {} unparsed of {top_level}: {:#?}",
        r.unparsed,
        r.findings
    );
    // OWNED BY and COMMENT ON are modelled, never opaque.
    for o in loaded.schema.opaque.values() {
        assert!(
            !o.text.starts_with("alter sequence") && !o.text.starts_with("comment on"),
            "{name}: kept opaque: {}",
            o.text
        );
    }
    let owned_by_in_file = text.matches("OWNED BY").count();
    let owned = loaded.schema.sequences.values().filter(|s| s.owned_by.is_some()).count();
    assert!(owned >= owned_by_in_file.min(1), "{name}: OWNED BY not modelled");
    if text.contains("COMMENT ON") {
        assert!(!loaded.schema.comments.is_empty(), "{name}: COMMENT ON not modelled");
    }

    let sql = schema_sql(&loaded.schema);
    let again =
        load_str("emitted.sql", &sql).unwrap_or_else(|e| panic!("{name}: emitted DDL does not load: {e}"));
    if again.schema != loaded.schema {
        let a = serde_json::to_string_pretty(&loaded.schema).unwrap();
        let b = serde_json::to_string_pretty(&again.schema).unwrap();
        let first = a.lines().zip(b.lines()).position(|(x, y)| x != y).unwrap_or(0);
        let around =
            |s: &str| s.lines().skip(first.saturating_sub(5)).take(12).collect::<Vec<_>>().join("\n");
        panic!(
            "{name}: round trip differs near line {first}:\n--- loaded\n{}\n--- reloaded\n{}",
            around(&a),
            around(&b)
        );
    }
}

#[test]
fn corpus_pagila() {
    check_corpus_file("pagila.sql");
}

#[test]
fn corpus_osm_2025() {
    check_corpus_file("osm-structure-2025-07.sql");
}

#[test]
fn corpus_osm_2026() {
    check_corpus_file("osm-structure-2026-07.sql");
}

#[test]
fn corpus_danbooru() {
    check_corpus_file("danbooru-structure.sql");
}

#[test]
fn corpus_sourcegraph_2024() {
    check_corpus_file("sourcegraph-frontend-2024-10.sql");
}

#[test]
fn corpus_sourcegraph_2026() {
    check_corpus_file("sourcegraph-frontend-2026-04.sql");
}

#[test]
fn corpus_postgrest() {
    check_corpus_file("postgrest-spec-schema.sql");
}

#[test]
fn every_corpus_file_has_a_test() {
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    let covered = [
        "danbooru-structure.sql",
        "osm-structure-2025-07.sql",
        "osm-structure-2026-07.sql",
        "pagila.sql",
        "postgrest-spec-schema.sql",
        "sourcegraph-frontend-2024-10.sql",
        "sourcegraph-frontend-2026-04.sql",
    ];
    assert_eq!(names, covered, "add a corpus_* test for each new corpus file");
}

#[test]
fn pg_dump_forms_are_modelled() {
    let (path, text) = corpus_file("osm-structure-2025-07.sql");
    let s = load_str(&path, &text).unwrap().schema;
    let users = &s.tables[&QualifiedName::of("public", "users")];
    let id = users.column(&Ident::exact("id").unwrap()).unwrap();
    assert_eq!(id.data_type, "bigint");
    assert_eq!(id.default.as_deref(), Some("nextval('public.users_id_seq'::regclass)"));
    assert!(users.constraints.contains_key(&Ident::exact("users_pkey").unwrap()));
    let seq = &s.sequences[&QualifiedName::of("public", "users_id_seq")];
    assert_eq!(seq.owned_by.as_ref().map(|(t, c)| (t.clone(), c.as_str())), Some((users.name.clone(), "id")));
}

#[test]
fn identifiers_fold_and_survive_the_round_trip() {
    let sql = r#"
CREATE SCHEMA "Ünï Schema";
CREATE TABLE "Users" (id integer PRIMARY KEY, "we""ird Name" text, "موظف" text);
CREATE TABLE users (id integer);
CREATE TABLE Accounts (ID integer);
CREATE TABLE "Ünï Schema"."a b" ("Col" integer UNIQUE);
CREATE INDEX "Idx ""q""" ON "Users" ("we""ird Name");
COMMENT ON COLUMN "Users"."we""ird Name" IS 'it''s odd';
"#;
    let s = load_str("ids.sql", sql).unwrap().schema;
    let upper = QualifiedName::of("public", "Users");
    let lower = QualifiedName::of("public", "users");
    assert!(s.tables.contains_key(&upper) && s.tables.contains_key(&lower), "\"Users\" and users differ");
    assert!(s.tables.contains_key(&QualifiedName::of("public", "accounts")), "Accounts folds to accounts");
    assert!(
        s.tables[&QualifiedName::of("public", "accounts")].column(&Ident::exact("id").unwrap()).is_some()
    );
    let t = &s.tables[&upper];
    assert!(t.column(&Ident::exact("we\"ird Name").unwrap()).is_some());
    assert!(t.column(&Ident::exact("موظف").unwrap()).is_some());
    assert!(t.constraints.contains_key(&Ident::exact("Users_pkey").unwrap()));
    let odd = &s.tables[&QualifiedName::of("Ünï Schema", "a b")];
    assert!(odd.constraints.contains_key(&Ident::exact("a b_Col_key").unwrap()));
    assert!(s.indexes.contains_key(&QualifiedName::of("public", "Idx \"q\"")));

    let emitted = schema_sql(&s);
    let again = load_str("emitted.sql", &emitted).unwrap().schema;
    assert_eq!(again, s, "{emitted}");
    let emitted_twice = schema_sql(&again);
    assert_eq!(emitted, emitted_twice, "emission is deterministic");
}

#[test]
fn unparsed_statements_are_kept_with_a_warning() {
    let sql = "CREATE TABLE t (a int);\nCREATE FROBNICATOR x WITH (y);\n";
    let loaded = load_str("u.sql", sql).unwrap();
    assert_eq!(loaded.report.unparsed, 1);
    assert_eq!(loaded.report.opaque, 1);
    let f = &loaded.report.findings[0];
    assert_eq!(f.code, FindingCode::UnparsedStatement);
    assert_eq!(f.span.as_ref().map(|s| (s.line, s.column)), Some((2, 1)));
    assert!(loaded.schema.opaque.keys().any(|k| k.kind == OpaqueKind::Unparsed));
}

#[test]
fn a_directory_loads_in_name_order() {
    let dir = temp_dir("dir-order");
    std::fs::write(dir.join("02_b.sql"), "ALTER TABLE a ADD CONSTRAINT a_pkey PRIMARY KEY (id);").unwrap();
    std::fs::write(dir.join("01_a.sql"), "CREATE TABLE a (id int);").unwrap();
    std::fs::write(dir.join("notes.txt"), "not sql").unwrap();
    let loaded = parse::load(&SourceSpec::Dir(dir.clone())).unwrap();
    assert_eq!(loaded.report.statements, 2);
    assert!(loaded.schema.tables[&QualifiedName::of("public", "a")].primary_key().is_some());
    std::fs::remove_dir_all(dir).ok();
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seqmig-parse-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `seqmig inspect <path>` and returns (exit code, stderr).
fn inspect(path: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_seqmig")).arg("inspect").arg(path).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Bad input: exit 2, one line, naming the file and (where there is one) line:column.
fn assert_one_line_error(path: &Path, position: Option<&str>) {
    let (code, err) = inspect(path);
    assert_eq!(code, 2, "{}: {err}", path.display());
    assert_eq!(err.trim_end().lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(err.contains(name.as_ref()), "names the file: {err}");
    if let Some(p) = position {
        assert!(err.contains(&format!("{name}:{p}")), "position {p}: {err}");
    }
}

#[test]
fn bad_input_gets_one_line_errors_with_positions() {
    let dir = temp_dir("bad");
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let truncated = write("truncated.sql", b"CREATE TABLE t (a int);\nCREATE TABLE u (a int");
    assert_one_line_error(&truncated, Some("2:"));
    let dollar =
        write("dollar.sql", b"CREATE TABLE t (a int);\nCREATE FUNCTION f() RETURNS int AS $body$ begin\n");
    assert_one_line_error(&dollar, Some("2:36"));
    let garbage = write("garbage.sql", &[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0xff, 0xfe, 0x00, 0x13]);
    assert_one_line_error(&garbage, Some("1:"));
    let empty = write("empty.sql", b"");
    assert_one_line_error(&empty, Some("1:1"));
    let alter = write("alter.sql", b"CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a FROB;\n");
    assert_one_line_error(&alter, Some("2:30"));
    assert_one_line_error(&dir.join("missing.sql"), None);
    let empty_dir = dir.join("no-sql-here");
    std::fs::create_dir_all(&empty_dir).unwrap();
    std::fs::write(empty_dir.join("readme.txt"), "x").unwrap();
    assert_one_line_error(&empty_dir, None);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn inspect_formats_are_stable() {
    let dir = temp_dir("formats");
    let p = dir.join("s.sql");
    std::fs::write(&p, "CREATE TABLE t (id serial PRIMARY KEY, b text);\nCOMMENT ON TABLE t IS 'x';\n")
        .unwrap();
    let run = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_seqmig"))
            .args(["inspect", p.to_str().unwrap(), "--format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let json = run("json");
    assert_eq!(json, run("json"));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["tables"]["public.t"]["constraints"]["t_pkey"].is_object(), "{json}");
    let summary = run("summary");
    for key in [
        "tables",
        "columns",
        "indexes",
        "constraints",
        "views",
        "opaque objects",
        "unparsed statements",
        "skipped lines",
    ] {
        assert!(summary.lines().any(|l| l.starts_with(key)), "{key} missing from summary:\n{summary}");
    }
    let sql = run("sql");
    let again = load_str("again.sql", &sql).unwrap().schema;
    assert_eq!(again, load_str("s.sql", &std::fs::read_to_string(&p).unwrap()).unwrap().schema);
    std::fs::remove_dir_all(dir).ok();
}
