//! Issue 17: classes of change found by replaying the OSM history, pinned on small schemas
//! against real PostgreSQL: comments an object has without the file stating them (OSM
//! 116→117, 118→119), and identity and sequence widening (17.5).

use seqmig::db::ConnectOptions;
use seqmig::finding::FindingCode;
use seqmig::plan::Plan;
use seqmig::rehearse::{self, Rehearsal};

use crate::harness::{TestDb, block_on};

fn plan(current: &str, desired: &str) -> Plan {
    let (cur, des) = (
        seqmig::parse::load_str("current.sql", current).unwrap().schema,
        seqmig::parse::load_str("desired.sql", desired).unwrap().schema,
    );
    seqmig::plan::plan(&cur, &des, &Default::default(), &seqmig::render::Renderer::embedded()).unwrap().plan
}

fn rehearse_clean(current: &str, desired: &str) -> Plan {
    let plan = plan(current, desired);
    assert!(!plan.is_blocked(), "{:#?}", plan.findings);
    let input = Rehearsal {
        plan: plan.clone(),
        current: seqmig::parse::load_str("current.sql", current).unwrap().schema,
        current_sql: current.into(),
        desired_sql: desired.into(),
        rows: 5,
    };
    let db = TestDb::new();
    let admin = ConnectOptions::from_url(&db.url).unwrap();
    let report = block_on(rehearse::rehearse(&admin, &input, std::future::pending())).unwrap();
    assert!(report.passed(), "{}", rehearse::render::text(&report));
    plan
}

fn examples(name: &str, file: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples").join(name).join(file),
    )
    .unwrap()
}

const GIST: &str =
    "CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;\nCREATE TABLE public.t (a integer);\n";

/// CREATE EXTENSION gives the extension its control file's comment, so a file that states
/// no comment does not mean "no comment". Commenting it rolls back to that comment (OSM
/// 116→117 rolled back to none), and a stated comment the desired file drops is replaced by
/// it; the public schema's default comment likewise. Each rehearsed: applied, rolled back to
/// the same catalog, applied again, equal to the desired schema.
#[test]
fn issue_17_6_comments_an_object_has_without_the_file_roll_back_to_that_comment() {
    let commented = format!("{GIST}COMMENT ON EXTENSION btree_gist IS 'ours';\n");
    let p = rehearse_clean(GIST, &commented);
    assert!(p.steps[0].rollback_sql.as_deref().unwrap().contains("pg_available_extension_versions"));

    let p = rehearse_clean(&commented, GIST);
    assert_eq!(p.steps.len(), 1);
    assert_eq!(p.changes[0].summary, "restore the control file's comment on extension btree_gist");
    assert_eq!(p.steps[0].rollback_sql.as_deref(), Some("COMMENT ON EXTENSION btree_gist IS 'ours';"));

    let p = rehearse_clean(GIST, &format!("{GIST}COMMENT ON SCHEMA public IS 'the app';\n"));
    assert_eq!(
        p.steps[0].rollback_sql.as_deref(),
        Some("COMMENT ON SCHEMA public IS 'standard public schema';")
    );
}

/// 17.5, example 26: an identity key widened. The online plan would swap in a shadow column
/// without the identity and drop the identity sequence with the old column, so the plan
/// blocks, naming the column. The way out the finding names is true on the server: the
/// offline ALTER widens the identity sequence with the column and leaves the desired schema.
#[test]
fn issue_17_5_widening_an_identity_key_blocks_naming_the_column_and_its_fix_holds() {
    let before = examples("26-widen-identity-key", "before.sql");
    let after = examples("26-widen-identity-key", "after.sql");
    let p = plan(&before, &after);
    assert!(p.is_blocked());
    let f =
        p.findings.iter().find(|f| f.code == FindingCode::IdentityTypeChange).expect("identity-type-change");
    assert_eq!(f.object, "public.events.id");
    assert!(f.help.contains("ALTER TABLE public.events ALTER COLUMN id TYPE bigint"), "{}", f.help);

    let db = TestDb::new();
    db.execute(&before);
    db.execute("ALTER TABLE public.events ALTER COLUMN id TYPE bigint");
    block_on(async {
        let c = db.client().await;
        let row = c
            .query_one(
                "SELECT s.seqtypid::regtype::text FROM pg_sequence s \
                 WHERE s.seqrelid = pg_get_serial_sequence('public.events', 'id')::regclass",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "bigint");
        let live = seqmig::introspect::introspect(&c).await.unwrap();
        let desired = seqmig::parse::load_str("after.sql", &after).unwrap().schema;
        let rest =
            seqmig::plan::plan(&live, &desired, &Default::default(), &seqmig::render::Renderer::embedded())
                .unwrap()
                .plan;
        assert!(rest.steps.is_empty(), "{:#?}", rest.steps);
    });
}

/// 17.5: a desired schema that widens a serial key but keeps its sequence `AS integer` is
/// planned as written, with a `narrow-sequence` warning naming the sequence (the file says
/// so explicitly; the warning says the column still stops at 2^31-1). Rehearsed clean: the
/// sequence is still integer after contract, as the desired schema says.
#[test]
fn issue_17_5_a_sequence_kept_narrow_is_a_warning_and_planned_as_written() {
    let current = "CREATE SEQUENCE public.k_id_seq AS integer;\nCREATE TABLE public.k (id integer DEFAULT nextval('public.k_id_seq'::regclass) NOT NULL, CONSTRAINT k_pkey PRIMARY KEY (id));\nALTER SEQUENCE public.k_id_seq OWNED BY public.k.id;\n";
    let desired = current.replace("id integer DEFAULT", "id bigint DEFAULT");
    let p = rehearse_clean(current, &desired);
    let f = p.findings.iter().find(|f| f.code == FindingCode::NarrowSequence).expect("narrow-sequence");
    assert_eq!(f.object, "public.k_id_seq");
    assert!(!p.is_blocked());
    assert!(!p.steps.iter().any(|s| s.sql.contains("AS bigint")), "the sequence stays integer");
}
