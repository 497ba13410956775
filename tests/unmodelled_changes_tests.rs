//! Changes the plan must not guess in the user's favour (issue 17.2, 17.3): statements seqmig
//! keeps as text, and drops nobody asked for (extensions, seqmig's own prerequisites).

use seqmig::diff::Hints;
use seqmig::finding::FindingCode;
use seqmig::introspect::{IntrospectOptions, introspect_with};
use seqmig::plan::{LockMode, Planned, plan};
use seqmig::render::Renderer;

use crate::harness::{TestDb, block_on};

fn load(sql: &str) -> seqmig::model::Schema {
    seqmig::parse::load_str("t.sql", sql).unwrap_or_else(|e| panic!("{e}")).schema
}

fn plan_of(before: &seqmig::model::Schema, after: &seqmig::model::Schema, toml: &str) -> Planned {
    let hints = Hints::from_toml(toml, "seqmig.toml").unwrap();
    plan(before, after, &hints, &Renderer::embedded()).unwrap()
}

fn codes(p: &Planned) -> Vec<&str> {
    p.plan.findings.iter().map(|f| f.code.as_str()).collect()
}

const USERS: &str = "CREATE TABLE public.users (id bigint PRIMARY KEY, email text, legacy text);
                     CREATE TABLE public.orders (id bigint PRIMARY KEY);";

const OPAQUE: &str = "DO $$ BEGIN ALTER TABLE public.users DROP COLUMN legacy; END $$;";

#[test]
fn issue_17_2_an_opaque_step_predicts_the_strongest_lock_on_every_relation_it_names() {
    let after = load(&format!(
        "{USERS}\nDO $$ BEGIN PERFORM 1 FROM public.orders; ALTER TABLE public.users DROP COLUMN legacy; END $$;"
    ));
    let p = plan_of(&load(USERS), &after, "");
    let step = p.plan.steps.iter().find(|s| s.sql.starts_with("do ")).expect("the opaque step");
    assert_eq!(step.lock, LockMode::AccessExclusive);
    assert_eq!(step.lock_target, "public.orders, public.users");
}

#[test]
fn issue_17_2_an_opaque_statement_that_changes_a_modelled_table_blocks_until_acknowledged() {
    let after = load(&format!("{USERS}\n{OPAQUE}"));
    let p = plan_of(&load(USERS), &after, "");
    assert!(p.plan.is_blocked());
    let f = p.plan.findings.iter().find(|f| f.code == FindingCode::OpaqueChangesModelled).expect("finding");
    assert_eq!(f.object, "public.users");
    let acked = plan_of(&load(USERS), &after, "[plan]\nallow_one_way = [\"public.users\"]\n");
    assert!(!acked.plan.is_blocked(), "{:?}", codes(&acked));
    // A statement that names no modelled object is not this finding's business.
    let unrelated = load(&format!("{USERS}\nDO $$ BEGIN PERFORM pg_sleep(0); END $$;"));
    assert!(!codes(&plan_of(&load(USERS), &unrelated, "")).contains(&"opaque-changes-modelled"));
}

#[test]
fn issue_17_3_dropping_an_extension_is_one_way_and_blocks_until_acknowledged() {
    let before = load(&format!("CREATE EXTENSION pg_trgm;\n{USERS}"));
    let p = plan_of(&before, &load(USERS), "");
    assert!(p.plan.is_blocked());
    assert!(codes(&p).contains(&"extension-drop"), "{:?}", codes(&p));
    let step = p.plan.steps.iter().find(|s| s.sql.contains("DROP EXTENSION")).unwrap();
    assert!(step.one_way && step.rollback_sql.is_none());
    let acked = plan_of(&before, &load(USERS), "[plan]\nallow_one_way = [\"pg_trgm\"]\n");
    assert!(!acked.plan.is_blocked(), "{:?}", codes(&acked));
}

/// Planning from a live database that has pg_stat_statements (the gate reads it) and the
/// seqmig schema (the ledger) against a file that mentions neither: neither is dropped.
#[test]
fn issue_17_3_planning_from_a_live_database_keeps_pg_stat_statements_and_the_seqmig_schema() {
    let db = TestDb::new();
    db.execute(&format!(
        "CREATE EXTENSION pg_stat_statements;
         CREATE SCHEMA seqmig; CREATE TABLE seqmig.ledger (id int PRIMARY KEY); CREATE TABLE seqmig.flags (f text);
         {USERS}"
    ));
    let live = block_on(async {
        let client = db.client().await;
        introspect_with(&client, &IntrospectOptions { search_path: String::new() }).await.unwrap()
    });
    assert!(live.tables.keys().all(|q| q.schema.as_str() != "seqmig"), "introspection read schema seqmig");
    let p = plan_of(&live, &load(USERS), "");
    let sql: Vec<&str> = p.plan.steps.iter().map(|s| s.sql.as_str()).collect();
    assert!(sql.is_empty(), "nothing to do, nothing dropped: {sql:#?}");
    assert!(!p.plan.is_blocked(), "{:?}", codes(&p));
    let f = p.plan.findings.iter().find(|f| f.code == FindingCode::SeqmigPrerequisite).expect("a warning");
    assert_eq!(f.object, "extension pg_stat_statements");
}
