//! Issue 21: `seqmig lint --schema SRC` lints migrations against the schema they run on, so
//! the partition rules know a table the migrations do not create is partitioned: a DDL file
//! and a live database give the same answer, and without `--schema` the rule cannot know.

use crate::harness::TestDb;
use crate::harness::cli::{TempDir, command, text};

const SCHEMA: &str = "
CREATE TABLE public.events (id bigint NOT NULL, kind text) PARTITION BY RANGE (id);
CREATE TABLE public.events_a PARTITION OF public.events FOR VALUES FROM (0) TO (1000);
CREATE TABLE public.plain (id bigint NOT NULL, kind text);
";

const MIGRATION: &str = "SET lock_timeout = '2s';
CREATE INDEX CONCURRENTLY events_kind_idx ON public.events (kind);
CREATE INDEX CONCURRENTLY plain_kind_idx ON public.plain (kind);
";

#[test]
fn issue21_7_lint_with_a_schema_knows_which_existing_tables_are_partitioned() {
    let dir = TempDir::new();
    let schema = dir.path.join("schema.sql");
    let migration = dir.path.join("001_index.sql");
    std::fs::write(&schema, SCHEMA).unwrap();
    std::fs::write(&migration, MIGRATION).unwrap();
    let db = TestDb::new();
    db.execute(SCHEMA);
    let lint = |schema: Option<&str>| {
        let mut c = command(&db.url);
        c.args(["lint", "--format", "json", migration.to_str().unwrap()]);
        if let Some(s) = schema {
            c.args(["--schema", s]);
        }
        let out = c.output().unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        let hits: Vec<String> = json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == "concurrent-index-on-partitioned-table")
            .map(|f| f["span"]["line"].to_string())
            .collect();
        (out.status.code(), hits)
    };
    assert_eq!(lint(None), (Some(0), vec![]), "without the schema, public.events is unknown");
    let from_file = lint(Some(schema.to_str().unwrap()));
    assert_eq!(from_file, (Some(1), vec!["2".to_string()]), "only the partitioned table's index, line 2");
    assert_eq!(lint(Some(&db.url)), from_file, "a live database says the same as the file");

    let out = command(&db.url)
        .args(["lint", "--schema", "no-such.sql", migration.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no-such.sql"), "{}", text(&out));
}
