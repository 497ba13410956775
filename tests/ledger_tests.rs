//! The ledger module (issue 19): one rule for naming a stored plan by a prefix of its id, in
//! every command; and an older seqmig meeting a newer ledger refuses, naming both versions,
//! and changes nothing.

use seqmig::exec::ExecError;
use seqmig::ledger::{self, LedgerError};
use seqmig::plan::Plan;
use seqmig::soak::{self, SoakError};

use crate::harness::cli::{seqmig, text, write_plan};
use crate::harness::{TestDb, block_on};
use crate::reliability_faults_tests::plan_from;

fn small_plan() -> Plan {
    plan_from(
        "CREATE TABLE t (id bigint PRIMARY KEY);",
        "CREATE TABLE t (id bigint PRIMARY KEY, note text);",
        "",
    )
}

/// Everything in schema `seqmig` and the application's table: every relation and function
/// by name, and every ledger row, as one text.
async fn everything(c: &tokio_postgres::Client) -> String {
    let objects: String = c
        .query_one(
            "SELECT string_agg(x, ',' ORDER BY x) FROM ( \
                 SELECT relname::text || ':' || relkind::text AS x FROM pg_class \
                  WHERE relnamespace = 'seqmig'::regnamespace \
                 UNION ALL SELECT proname::text || '()' FROM pg_proc WHERE pronamespace = 'seqmig'::regnamespace \
                 UNION ALL SELECT tgname::text FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid \
                  WHERE r.relnamespace = 'seqmig'::regnamespace \
                 UNION ALL SELECT 't.' || attname::text FROM pg_attribute \
                  WHERE attrelid = 'public.t'::regclass AND attnum > 0 AND NOT attisdropped) o",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let tables: Vec<String> = c
        .query(
            "SELECT relname::text FROM pg_class WHERE relnamespace = 'seqmig'::regnamespace AND relkind = 'r' \
             ORDER BY relname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = objects;
    for t in tables {
        let rows: Option<String> = c
            .query_one(&format!("SELECT string_agg(x::text, '|' ORDER BY x::text) FROM seqmig.{t} x"), &[])
            .await
            .unwrap()
            .get(0);
        out.push_str(&format!("\n{t}: {}", rows.unwrap_or_default()));
    }
    out
}

#[test]
fn issue19_3_older_seqmig_refuses_a_newer_ledger_and_changes_nothing() {
    let db = TestDb::new();
    db.execute("CREATE TABLE t (id bigint PRIMARY KEY)");
    let plan = small_plan();
    let (_dir, path) = write_plan(&plan);
    let out = seqmig(&["apply", "--plan", &path, "--phase", "expand"], &db);
    assert!(out.status.success(), "{}", text(&out));
    let known = ledger::current_version();
    let newer = known + 1;
    block_on(async {
        let c = db.client().await;
        // What a newer seqmig leaves behind: one more ledger version (and whatever it added).
        c.execute(
            "INSERT INTO seqmig.ledger_version (version, description, seqmig_version) VALUES ($1, 'from a newer seqmig', '99.0.0')",
            &[&newer],
        )
        .await
        .unwrap();
        let before = everything(&c).await;

        match ledger::ensure(&c).await {
            Err(LedgerError::TooNew { found, known: k }) => assert_eq!((found, k), (newer, known)),
            other => panic!("ensure on a newer ledger: {other:?}"),
        }
        assert!(matches!(ledger::resolve_plan_id(&c, &plan.id).await, Err(LedgerError::TooNew { .. })));

        let expected = format!("version {newer}, newer than this seqmig knows ({known})");
        let id = plan.short_id();
        for args in [
            vec!["apply", "--plan", path.as_str(), "--phase", "dual_write"],
            vec!["apply", "--phase", "dual_write"],
            vec!["rollback", "--plan-id", id, "--phase", "expand"],
            vec!["status"],
            vec!["gate", "--plan-id", id],
            vec!["approve", "--plan-id", id, "--role", "dba", "--actor", "alice"],
            vec!["soak", "record", "--criterion", "error_rate", "--pass"],
            vec!["soak", "sample"],
            vec!["backfill", "pause"],
            vec!["backfill", "status"],
        ] {
            let out = seqmig(&args, &db);
            let said = text(&out);
            assert_eq!(out.status.code(), Some(2), "seqmig {}: {said}", args.join(" "));
            assert!(said.contains(&expected), "seqmig {}: {said}", args.join(" "));
        }
        assert_eq!(everything(&c).await, before, "a refusing seqmig changed the database");
    });
}

#[test]
fn issue19_2_one_plan_id_rule_for_every_command() {
    let db = TestDb::new();
    let base = small_plan();
    // Two stored plans whose ids share a prefix, a third apart.
    let ids = ["sha256:ab12aa", "sha256:ab34bb", "sha256:c_d"];
    block_on(async {
        let c = db.client().await;
        assert!(matches!(ledger::resolve_plan_id(&c, "ab").await, Err(LedgerError::UnknownPlan(_))));
        ledger::ensure(&c).await.unwrap();
        for id in ids {
            let mut p = base.clone();
            p.id = id.to_string();
            ledger::insert_plan(&c, &p, "tester").await.unwrap();
        }
        let resolve = |given: &'static str| {
            let c = &c;
            async move { ledger::resolve_plan_id(c, given).await }
        };
        // A unique prefix, with or without sha256:, and the full id.
        assert_eq!(resolve("ab1").await.unwrap(), ids[0]);
        assert_eq!(resolve("sha256:ab3").await.unwrap(), ids[1]);
        assert_eq!(resolve("sha256:ab12aa").await.unwrap(), ids[0]);
        // Several: every candidate is named.
        match resolve("ab").await {
            Err(LedgerError::AmbiguousPlan { prefix, matches }) => {
                assert_eq!(prefix, "ab");
                assert_eq!(matches, vec![ids[0].to_string(), ids[1].to_string()]);
            }
            other => panic!("{other:?}"),
        }
        // No match; an empty prefix matches nothing; `_` is a character, not a wildcard.
        for given in ["ff", "", "sha256:", "c_x", "c%"] {
            assert!(matches!(resolve(given).await, Err(LedgerError::UnknownPlan(_))), "{given}");
        }
        assert_eq!(resolve("c_").await.unwrap(), ids[2]);

        // The gate's reader follows the same rule (it used to miss `sha256:` prefixes and
        // read `_` as a wildcard) and names the candidates too.
        match soak::stored_plan(&c, Some("ab")).await {
            Err(SoakError::AmbiguousPlanId { matches, .. }) => assert_eq!(matches.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(soak::stored_plan(&c, Some("c%")).await, Err(SoakError::UnknownPlan(_))));
        // The stored plans' content does not match these made-up ids; reaching that check
        // means the id was found.
        assert!(matches!(soak::stored_plan(&c, Some("sha256:ab3")).await, Err(SoakError::StoredPlan { .. })));
        let e: ExecError = ledger::resolve_plan_id(&c, "ab").await.unwrap_err().into();
        assert!(e.to_string().contains("sha256:ab12aa, sha256:ab34bb"), "{e}");
    });
    // The CLI says the same.
    let out = seqmig(&["status", "--plan-id", "ab"], &db);
    let said = text(&out);
    assert!(said.contains("matches several stored plans: sha256:ab12aa, sha256:ab34bb"), "{said}");
    let out = seqmig(&["gate", "--plan-id", "ab"], &db);
    let said = text(&out);
    assert!(said.contains("matches several stored plans: sha256:ab12aa, sha256:ab34bb"), "{said}");
    // An ambiguous choice is a refusal (issue 20): exit 1, like several plans in flight.
    assert_eq!(out.status.code(), Some(1), "{said}");
    let out = seqmig(&["apply", "--plan-id", "ab", "--phase", "expand"], &db);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}
