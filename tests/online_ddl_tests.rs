//! Issue 17.4 and 17.5 on real PostgreSQL: rewrites and long scans under a write-blocking lock
//! are planned the online way or block; widening a key widens the sequence feeding it.

use seqmig::db::ConnectOptions;
use seqmig::diff::Hints;
use seqmig::finding::FindingCode;
use seqmig::plan::{LockMode, Phase, Plan};
use seqmig::rehearse::{self, Rehearsal};

use crate::exec_examples_tests::{apply, plan_of, read};
use crate::harness::{TestDb, block_on};

const PHASES: [Phase; 5] = [Phase::Expand, Phase::DualWrite, Phase::Backfill, Phase::Switch, Phase::Contract];

fn plan_with(example: &str, hints: &Hints) -> Plan {
    let load = |f: &str| seqmig::parse::load_str(f, &read(example, f)).unwrap().schema;
    seqmig::plan::plan(&load("before.sql"), &load("after.sql"), hints, &seqmig::render::Renderer::embedded())
        .unwrap()
        .plan
}

/// Rehearses `plan` of `example` with `rows` seeded rows: every phase applied, rolled back
/// and applied again, the locks each step takes observed and compared with the plan's.
fn rehearse(example: &str, plan: Plan, rows: usize) -> rehearse::Report {
    let db = TestDb::new();
    let input = Rehearsal {
        plan,
        current: seqmig::parse::load_str("before.sql", &read(example, "before.sql")).unwrap().schema,
        current_sql: read(example, "before.sql"),
        desired_sql: read(example, "after.sql"),
        rows,
    };
    block_on(rehearse::rehearse(&ConnectOptions::from_url(&db.url).unwrap(), &input, std::future::pending()))
        .unwrap()
}

async fn relfilenode(c: &tokio_postgres::Client) -> u32 {
    c.query_one("SELECT relfilenode FROM pg_class WHERE oid = 'public.users'::regclass", &[])
        .await
        .unwrap()
        .get(0)
}

#[test]
fn issue_17_4_volatile_default_is_filled_in_batches_without_a_rewrite() {
    let plan = plan_of("23-volatile-default");
    assert!(!plan.is_blocked(), "{:#?}", plan.findings);
    assert!(plan.findings.iter().all(|f| f.code != FindingCode::TableRewrite), "{:#?}", plan.findings);
    // No step rewrites; the only scans hold locks that let writes through.
    for s in &plan.steps {
        assert!(!s.rewrites_table, "{}: {}", s.id, s.sql);
        if s.scans_table {
            assert!(s.lock < LockMode::Share, "{} scans under {}", s.id, s.lock.as_str());
        }
    }
    let report = rehearse("23-volatile-default", plan.clone(), 50);
    assert!(report.passed(), "{}", rehearse::render::text(&report));
    assert_eq!(report.final_schema_matches, Some(true));

    // Applied on rows that exist: each gets its own value, and new rows (written by the old
    // release, which does not name the columns) get theirs from the default.
    let db = TestDb::new();
    db.execute(&read("23-volatile-default", "before.sql"));
    db.execute("INSERT INTO public.users (name) SELECT 'u' || g FROM generate_series(1, 3000) g");
    block_on(async {
        let c = db.client().await;
        let before = relfilenode(&c).await;
        for phase in PHASES {
            apply(&db, &plan, phase).await.unwrap_or_else(|e| panic!("{phase:?}: {e}"));
            if phase == Phase::Expand {
                c.execute("INSERT INTO public.users (name) VALUES ('old release')", &[]).await.unwrap();
            }
        }
        assert_eq!(relfilenode(&c).await, before, "the table was never rewritten");
        let row = c
            .query_one("SELECT count(*), count(DISTINCT public_id), count(touched_at) FROM public.users", &[])
            .await
            .unwrap();
        let (n, distinct, touched): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!((n, distinct, touched), (3001, 3001, 3001));
        let not_null: bool = c
            .query_one(
                "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = 'public_id'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(not_null);
    });
}

#[test]
fn issue_17_4_no_online_form_blocks_unless_acknowledged() {
    let plan = plan_of("25-identity-or-generated");
    assert!(plan.is_blocked());
    let mut blocked: Vec<&str> = plan
        .findings
        .iter()
        .filter(|f| f.code == FindingCode::TableRewrite && f.is_error())
        .map(|f| f.object.as_str())
        .collect();
    blocked.sort();
    assert_eq!(
        blocked,
        ["public.bookings.bookings_during_excl", "public.bookings.price", "public.bookings.seq"]
    );

    let hints = Hints::from_toml(
        "[plan]\nallow_blocking = [\"public.bookings.seq\", \"bookings.price\", \"public.bookings.bookings_during_excl\"]\n",
        "seqmig.toml",
    )
    .unwrap();
    let acknowledged = plan_with("25-identity-or-generated", &hints);
    assert!(!acknowledged.is_blocked(), "{:#?}", acknowledged.findings);
    assert_eq!(acknowledged.findings.iter().filter(|f| f.code == FindingCode::TableRewrite).count(), 3);
    // The rehearsal observes what the plan predicts: rewrites and a scan under ACCESS EXCLUSIVE.
    let report = rehearse("25-identity-or-generated", acknowledged, 50);
    assert!(report.passed(), "{}", rehearse::render::text(&report));
    assert_eq!(report.final_schema_matches, Some(true));
    // A typo in the acknowledgement is an error, not silence.
    assert!(Hints::from_toml("[plan]\nallow_blocking = [\"a..b\"]\n", "seqmig.toml").is_err());
}

#[test]
fn issue_17_5_widened_key_gets_a_wider_sequence_and_the_old_type_limit_holds_until_contract() {
    let plan = plan_of("24-widen-serial-key");
    assert!(!plan.is_blocked(), "{:#?}", plan.findings);
    let codes: Vec<(&str, &str)> =
        plan.findings.iter().map(|f| (f.code.as_str(), f.object.as_str())).collect();
    assert!(codes.contains(&("old-type-limit", "public.orders.id")), "{codes:?}");
    let widen = plan
        .steps
        .iter()
        .find(|s| s.sql.starts_with("ALTER SEQUENCE public.orders_id_seq AS bigint"))
        .unwrap();
    assert_eq!(widen.phase, Phase::Contract);
    let drop = plan.steps.iter().position(|s| s.sql.contains("DROP COLUMN id__seqmig_old")).unwrap();
    assert!(plan.steps.iter().position(|s| s.id == widen.id).unwrap() > drop);

    let db = TestDb::new();
    db.execute(&read("24-widen-serial-key", "before.sql"));
    db.execute(
        "INSERT INTO public.orders (total_cents) SELECT g FROM generate_series(1, 500) g;
         INSERT INTO public.order_lines (id, order_id) SELECT g, g FROM generate_series(1, 500) g;",
    );
    block_on(async {
        let c = db.client().await;
        for phase in &PHASES[..4] {
            apply(&db, &plan, *phase).await.unwrap_or_else(|e| panic!("{phase:?}: {e}"));
        }
        // After switch, before contract: the new release writes the bigint column, and the
        // dual-write trigger copies the value into the parked integer column.
        let err = c
            .execute("INSERT INTO public.orders (id, total_cents) VALUES (3000000000, 1)", &[])
            .await
            .unwrap_err();
        let msg = format!("{err:?}");
        assert!(msg.contains("integer out of range"), "{msg}");
        c.execute("INSERT INTO public.orders (id, total_cents) VALUES (2000000000, 1)", &[]).await.unwrap();
        let ty: String = c
            .query_one("SELECT seqtypid::regtype::text FROM pg_sequence WHERE seqrelid = 'public.orders_id_seq'::regclass", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(ty, "integer", "not widened before contract");
        apply(&db, &plan, Phase::Contract).await.unwrap();
        let row = c
            .query_one("SELECT seqtypid::regtype::text, seqmax FROM pg_sequence WHERE seqrelid = 'public.orders_id_seq'::regclass", &[])
            .await
            .unwrap();
        assert_eq!((row.get::<_, String>(0), row.get::<_, i64>(1)), ("bigint".to_string(), i64::MAX));
        // The sequence now hands out values above 2^31 and the column takes them.
        c.batch_execute("SELECT setval('public.orders_id_seq', 3000000000)").await.unwrap();
        let id: i64 = c
            .query_one("INSERT INTO public.orders (total_cents) VALUES (2) RETURNING id", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(id, 3_000_000_001);
        c.execute("INSERT INTO public.order_lines (id, order_id) VALUES (501, 3000000001)", &[])
            .await
            .unwrap();
    });
    let report = rehearse("24-widen-serial-key", plan, 50);
    assert!(report.passed(), "{}", rehearse::render::text(&report));
}

#[test]
fn issue_17_5_narrow_foreign_key_and_narrow_sequence_are_named() {
    let plan = plan_of("08-change-type");
    let codes: Vec<(&str, &str)> =
        plan.findings.iter().map(|f| (f.code.as_str(), f.object.as_str())).collect();
    assert!(codes.contains(&("narrow-foreign-key", "public.sessions.account_id")), "{codes:?}");
    assert!(codes.contains(&("narrow-sequence", "public.accounts_id_seq")), "{codes:?}");
    let fk = plan.findings.iter().find(|f| f.code == FindingCode::NarrowForeignKey).unwrap();
    assert!(fk.help.contains("public.sessions.account_id to bigint"), "{}", fk.help);
}
