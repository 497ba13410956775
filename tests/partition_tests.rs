//! Partitioned tables (issue 21) on real PostgreSQL 15: the model both sources fill, changes
//! PostgreSQL propagates planned once on the parent, partitioned indexes built per partition,
//! with writers running.

use seqmig::model::Schema;

use crate::exec_examples_tests::{assert_same, normalize};
use crate::harness::{TestDb, block_on};

pub(crate) const SCHEMA: &str = include_str!("fixtures/partitions/schema.sql");

fn load(sql: &str) -> Schema {
    seqmig::parse::load_str("schema.sql", sql).unwrap().schema
}

fn introspect(db: &TestDb) -> Schema {
    block_on(async { seqmig::introspect::introspect(&db.client().await).await.unwrap() })
}

#[test]
fn issue21_1_loader_and_introspection_agree_on_every_strategy() {
    let db = TestDb::new();
    db.execute(SCHEMA);
    let live = normalize(introspect(&db));
    let file = normalize(load(SCHEMA));
    assert_same(&live, &file, "partitioned tables: catalog vs file");
}

/// pg_dump writes the same tables the other way round: standalone tables attached with
/// `ALTER TABLE ONLY … ATTACH PARTITION`, indexes `ON ONLY` the parent with each partition's
/// index attached. Its model must equal the catalog's as well.
#[test]
fn issue21_1_pg_dump_of_partitioned_tables_loads_to_the_catalog_model() {
    let db = TestDb::new();
    db.execute(SCHEMA);
    let pg_dump = seqmig::cluster::find_bindir()
        .map(|d| d.join("pg_dump"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| "pg_dump".into());
    let out = std::process::Command::new(pg_dump)
        .args(["--schema-only", "--no-owner", "-d", &db.url])
        .output()
        .expect("run pg_dump");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dump = String::from_utf8(out.stdout).unwrap();
    assert!(dump.contains("ATTACH PARTITION") && dump.contains("ON ONLY"), "{dump}");
    let live = normalize(introspect(&db));
    let file = normalize(load(&dump));
    assert_same(&live, &file, "partitioned tables: catalog vs pg_dump");
    let q = |n: &str| seqmig::model::QualifiedName::of("public", n);
    use seqmig::model::{Bound, Strategy};
    assert_eq!(file.tables[&q("events")].strategy(), Some(Strategy::Range));
    assert_eq!(file.tables[&q("accounts")].strategy(), Some(Strategy::List));
    assert_eq!(file.tables[&q("sessions")].strategy(), Some(Strategy::Hash));
    assert_eq!(file.tables[&q("events_default")].bound(), Some(Bound::Default));
    assert_eq!(file.tables[&q("sessions_1")].bound(), Some(Bound::Hash { modulus: 2, remainder: 1 }));
    let leaves: Vec<String> =
        file.leaf_partitions(&q("metrics")).iter().map(|t| t.name.name.as_str().to_string()).collect();
    assert_eq!(leaves, ["metrics_2024_a", "metrics_2024_b", "metrics_2025"]);
}
