//! `pg_dump --clean --if-exists` dumps (issue 17.1): what many teams commit as their schema
//! file. Each corpus file PostgreSQL 15 can load is loaded into a fresh database; the real
//! `pg_dump --schema-only` is run on it twice, with and without `--clean --if-exists`; both
//! dumps are read by seqmig. The clean dump opens with the removal of everything it then
//! creates, which on an empty model must do nothing, as on an empty database:
//!
//! - no statement of the clean dump is unparsed, and its removals are counted as skips;
//! - its model equals the plain dump's model exactly (owners included);
//! - for the files that are themselves pg_dump output (danbooru, OSM), it also equals the
//!   model of the corpus file. The only normalisations: the dump is taken with `--no-owner`
//!   as the files were, and the file's data statements (`INSERT INTO schema_migrations`),
//!   which a `--schema-only` dump cannot have, are left out. The hand-written files
//!   (Sourcegraph, PostgREST) are re-spelled by pg_dump as a whole (qualified names,
//!   re-printed bodies); how a catalog re-spells them is the introspection corpus tests'
//!   subject, with their documented normalisations.
//!
//! `pagila.sql` is not here: it uses PostgreSQL 18 syntax and does not load on 15.

use std::path::PathBuf;
use std::process::Command;

use seqmig::finding::FindingCode;
use seqmig::model::{OpaqueKind, Schema};
use seqmig::parse::{Loaded, load_str};

use crate::harness::{TestDb, corpus_dir};
use crate::introspect_tests::load_with_psql;

fn pg_dump(db: &TestDb, extra: &[&str]) -> String {
    let bin = seqmig::scratch::local::find_bindir()
        .map(|d| d.join("pg_dump"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| "pg_dump".into());
    let out =
        Command::new(bin).args(["--schema-only", "-d", &db.url]).args(extra).output().expect("run pg_dump");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn load(name: &str, sql: &str) -> Loaded {
    load_str(name, sql).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The first lines where two models' JSON differ, for a readable failure.
fn first_difference(a: &Schema, b: &Schema) -> String {
    let a = serde_json::to_string_pretty(a).unwrap();
    let b = serde_json::to_string_pretty(b).unwrap();
    let at = a.lines().zip(b.lines()).position(|(x, y)| x != y).unwrap_or(0);
    let around = |s: &str| s.lines().skip(at.saturating_sub(4)).take(10).collect::<Vec<_>>().join("\n");
    format!("near line {at}:\n--- expected\n{}\n--- clean dump\n{}", around(&a), around(&b))
}

/// Loads `file` into a database, dumps it, and checks the clean dump as described above.
/// `pg_dump_form`: the corpus file is itself pg_dump output, so its model must be equal too.
fn check(file: &str, pg_dump_form: bool) {
    let started = std::time::Instant::now();
    let path: PathBuf = corpus_dir().join(file);
    let db = TestDb::new();
    load_with_psql(&db, &path);
    let clean_sql = pg_dump(&db, &["--clean", "--if-exists"]);
    let plain_sql = pg_dump(&db, &[]);
    let clean = load("clean.sql", &clean_sql);
    let plain = load("plain.sql", &plain_sql);

    let r = &clean.report;
    assert_eq!(r.unparsed, 0, "{file}: unparsed statements in the clean dump: {:#?}", r.findings);
    let drops = clean_sql
        .lines()
        .filter(|l| l.starts_with("DROP ") || l.starts_with("ALTER TABLE IF EXISTS"))
        .count();
    assert!(
        r.if_exists_skips >= drops && drops > 0,
        "{file}: {} skips for {drops} removals",
        r.if_exists_skips
    );
    assert!(
        !r.findings.iter().any(|f| f.code == FindingCode::DropOfMissingObject),
        "{file}: every removal of a clean dump is guarded by IF EXISTS: {:#?}",
        r.findings
    );
    assert!(clean.schema == plain.schema, "{file}: {}", first_difference(&plain.schema, &clean.schema));

    if pg_dump_form {
        let no_owner = load("no-owner.sql", &pg_dump(&db, &["--clean", "--if-exists", "--no-owner"]));
        let mut from_file = load(file, &std::fs::read_to_string(&path).unwrap()).schema;
        from_file.opaque.retain(|id, o| !(id.kind == OpaqueKind::Other && o.text.starts_with("insert ")));
        assert!(from_file == no_owner.schema, "{file}: {}", first_difference(&from_file, &no_owner.schema));
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "{file}: clean dump {} statements, {} if-exists skips, 0 unparsed ({:.1}s)",
            r.statements,
            r.if_exists_skips,
            started.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn issue_17_1_clean_dump_of_danbooru_loads_like_the_file() {
    check("danbooru-structure.sql", true);
}

#[test]
fn issue_17_1_clean_dump_of_osm_2025_loads_like_the_file() {
    check("osm-structure-2025-07.sql", true);
}

/// Needs PostGIS (`postgresql-15-postgis-3`, installed by .ci/run).
#[test]
fn issue_17_1_clean_dump_of_osm_2026_loads_like_the_file() {
    check("osm-structure-2026-07.sql", true);
}

#[test]
fn issue_17_1_clean_dump_of_sourcegraph_2024_loads_like_the_plain_dump() {
    check("sourcegraph-frontend-2024-10.sql", false);
}

#[test]
fn issue_17_1_clean_dump_of_sourcegraph_2026_loads_like_the_plain_dump() {
    check("sourcegraph-frontend-2026-04.sql", false);
}

#[test]
fn issue_17_1_clean_dump_of_postgrest_loads_like_the_plain_dump() {
    check("postgrest-spec-schema.sql", false);
}
