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

/// What PostgreSQL applies to every partition when it is done to the parent after the
/// partitions exist: add, drop, rename and retype a column, set and drop a default and NOT
/// NULL, on one and two levels. The file's model must follow as the catalog does.
#[test]
fn issue21_1_changes_on_a_parent_reach_its_partitions_in_the_model_as_in_the_catalog() {
    let changes = format!(
        "{SCHEMA}
ALTER TABLE public.metrics ADD COLUMN note text, ADD COLUMN value__new bigint;
ALTER TABLE public.metrics DROP COLUMN value;
ALTER TABLE public.metrics RENAME COLUMN value__new TO value;
ALTER TABLE public.metrics ALTER COLUMN note SET DEFAULT 'none'::text;
ALTER TABLE public.metrics ALTER COLUMN note SET NOT NULL;
ALTER TABLE public.events ALTER COLUMN payload TYPE varchar(200);
ALTER TABLE public.events ALTER COLUMN kind DROP NOT NULL;
ALTER TABLE public.accounts RENAME COLUMN name TO display_name;
ALTER TABLE public.accounts ALTER COLUMN display_name SET DEFAULT 'x'::text;
"
    );
    let db = TestDb::new();
    db.execute(&changes);
    let live = normalize(introspect(&db));
    let file = normalize(load(&changes));
    assert_same(&live, &file, "parent changes: catalog vs file");
}

/// pg_dump writes the same tables the other way round: standalone tables attached with
/// `ALTER TABLE ONLY … ATTACH PARTITION`, indexes `ON ONLY` the parent with each partition's
/// index attached. Its model must equal the catalog's as well.
#[test]
fn issue21_1_pg_dump_of_partitioned_tables_loads_to_the_catalog_model() {
    let db = TestDb::new();
    db.execute(SCHEMA);
    let pg_dump = seqmig::scratch::local::find_bindir()
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

fn plan(before: &str, after: &str, hints: &seqmig::diff::Hints) -> seqmig::plan::Planned {
    seqmig::plan::plan(&load(before), &load(after), hints, &seqmig::render::Renderer::embedded()).unwrap()
}

const EVENTS: &str = "CREATE TABLE public.events (id bigint NOT NULL, at date NOT NULL, CONSTRAINT events_pkey PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.events_2024 PARTITION OF public.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');";

/// A partition pg_partman made after the desired file was dumped is not dropped by a plan
/// from the live database; it is once the config declares the file's partition set complete.
#[test]
fn issue21_5_managed_partitions_are_never_dropped_unless_the_file_is_authoritative() {
    let db = TestDb::new();
    db.execute(EVENTS);
    db.execute("CREATE TABLE public.events_2025 PARTITION OF public.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
                CREATE INDEX events_2025_extra ON public.events_2025 (id);
                INSERT INTO public.events VALUES (1, '2025-03-01');");
    let live = introspect(&db);
    let desired = load(EVENTS);
    let r = seqmig::render::Renderer::embedded();
    let managed = seqmig::plan::plan(&live, &desired, &seqmig::diff::Hints::default(), &r).unwrap();
    assert!(managed.plan.steps.is_empty(), "{:#?}", managed.plan.steps);
    assert!(!managed.plan.is_blocked());

    let hints = seqmig::diff::Hints::from_toml(
        "[plan]\nauthoritative_partitions = [\"public.events\"]\nallow_one_way = [\"public.events_2025\"]\n",
        "seqmig.toml",
    )
    .unwrap();
    let authoritative = seqmig::plan::plan(&live, &desired, &hints, &r).unwrap();
    let drops: Vec<&str> = authoritative.plan.changes.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(drops, ["drop_table"], "{:#?}", authoritative.plan.changes);
    assert_eq!(authoritative.plan.changes[0].object, "public.events_2025");
}

/// PostgreSQL refuses a unique key that leaves out the partition key; the plan says so
/// before anything runs.
#[test]
fn issue21_3_unique_key_without_the_partition_key_is_a_finding() {
    let after = format!("{EVENTS}\nCREATE UNIQUE INDEX events_id_key ON public.events (id);");
    let planned = plan(EVENTS, &after, &seqmig::diff::Hints::default());
    let codes: Vec<(&str, &str)> =
        planned.plan.findings.iter().map(|f| (f.code.as_str(), f.object.as_str())).collect();
    assert!(codes.contains(&("partition-key-not-in-unique", "public.events.events_id_key")), "{codes:?}");
    assert!(planned.plan.is_blocked());
    // What PostgreSQL says to the statement the plan refuses to run.
    let db = TestDb::new();
    db.execute(EVENTS);
    let err = block_on(async {
        db.client()
            .await
            .batch_execute("CREATE UNIQUE INDEX events_id_key ON public.events (id)")
            .await
            .unwrap_err()
    });
    assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::FEATURE_NOT_SUPPORTED), "{err}");
}

/// Adding a column to a partitioned parent is one step on the parent, and it runs on the
/// server (the old plan added it to each partition again: SQLSTATE 42809).
#[test]
fn issue21_2_add_column_is_planned_once_on_the_parent() {
    let after = EVENTS.replace("at date NOT NULL,", "at date NOT NULL, note text,");
    let planned = plan(EVENTS, &after, &seqmig::diff::Hints::default());
    assert_eq!(planned.plan.changes.len(), 1, "{:#?}", planned.plan.changes);
    let db = TestDb::new();
    db.execute(EVENTS);
    for s in &planned.plan.steps {
        db.execute(&s.sql);
    }
    assert_same(&normalize(introspect(&db)), &normalize(load(&after)), "after the plan");
    // The statement the old plan ran next.
    let err = block_on(async {
        db.client()
            .await
            .batch_execute("ALTER TABLE public.events_2024 ADD COLUMN other text")
            .await
            .unwrap_err()
    });
    assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::WRONG_OBJECT_TYPE), "{err}");
}
