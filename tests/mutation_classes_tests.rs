//! Classes of "the plan said safe but the rehearsal failed" found by `scripts/mutate.py`,
//! one realistic change at a time on the real corpus schemas, each reproduced here small.

use crate::rehearse_tests::rehearse_pair;

/// Sourcegraph's dump names an extension type unqualified (`citext`), the catalog says
/// `public.citext`: the drift check before a phase refused every rename or drop of such a
/// column ("has type public.citext, the plan expects citext").
#[test]
fn an_unqualified_extension_type_is_not_drift() {
    let before = "
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TABLE users (id integer PRIMARY KEY, username citext NOT NULL, nickname citext);
";
    let after = "
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TABLE users (id integer PRIMARY KEY, login citext NOT NULL);
";
    let toml = "[[rename]]\ntable = \"public.users\"\nfrom = \"username\"\nto = \"login\"\n\n[plan]\nallow_one_way = [\"public.users.nickname\"]\n";
    let hints = seqmig::diff::Hints::from_toml(toml, "seqmig.toml").unwrap();
    let report = rehearse_pair(before, after, &hints, 20);
    assert!(report.passed(), "{}", seqmig::rehearse::render::text(&report));
}

/// A column that becomes NOT NULL while rows (and the old release, until switch) hold NULL.
/// The plan said safe; expand's `CHECK (… IS NOT NULL) NOT VALID` then failed every update
/// of a NULL row and the backfill with it. The fill (a `[[fill]]`, else the column's new
/// DEFAULT) now fills those rows, whether the column only becomes NOT NULL, is renamed or
/// changes type on the way. The rehearsal seeds NULLs in nullable columns.
#[test]
fn a_column_that_becomes_not_null_fills_the_rows_holding_null() {
    let before = "CREATE TABLE orders (id integer PRIMARY KEY, status text, qty integer, note text);";
    let cases = [
        // Only NOT NULL, the new default is the fill.
        (
            "CREATE TABLE orders (id integer PRIMARY KEY, status text NOT NULL DEFAULT 'new', qty integer, note text);",
            "",
        ),
        // Renamed on the way.
        (
            "CREATE TABLE orders (id integer PRIMARY KEY, state text NOT NULL DEFAULT 'new', qty integer, note text);",
            "[[rename]]\ntable = \"public.orders\"\nfrom = \"status\"\nto = \"state\"\n",
        ),
        // Through a shadow column (integer to bigint), the fill from a hint.
        (
            "CREATE TABLE orders (id integer PRIMARY KEY, status text, qty bigint NOT NULL, note text);",
            "[[fill]]\ntable = \"public.orders\"\ncolumn = \"qty\"\nvalue = \"0\"\n",
        ),
    ];
    for (after, toml) in cases {
        let hints = seqmig::diff::Hints::from_toml(toml, "seqmig.toml").unwrap();
        let report = rehearse_pair(before, after, &hints, 40);
        assert!(report.passed(), "{after}\n{}", seqmig::rehearse::render::text(&report));
    }
}

/// Without a fill, the same change is blocked, naming the column.
#[test]
fn a_column_that_becomes_not_null_without_a_fill_is_blocked() {
    let before =
        seqmig::parse::load_str("a.sql", "CREATE TABLE orders (id integer PRIMARY KEY, status text);")
            .unwrap()
            .schema;
    let after = seqmig::parse::load_str(
        "b.sql",
        "CREATE TABLE orders (id integer PRIMARY KEY, status text NOT NULL);",
    )
    .unwrap()
    .schema;
    let planned = seqmig::plan::plan(
        &before,
        &after,
        &seqmig::diff::Hints::default(),
        &seqmig::render::Renderer::embedded(),
    )
    .unwrap();
    let f = planned
        .plan
        .findings
        .iter()
        .find(|f| f.code == seqmig::finding::FindingCode::MissingFill)
        .expect("missing-fill");
    assert_eq!(f.object, "public.orders.status");
    assert_eq!(f.severity, seqmig::finding::Severity::Error);
    assert!(f.help.contains("column = \"status\""), "{f:?}");
}

/// Dropping a NOT NULL column without default: from switch the new release inserts rows
/// without it. Switch dropped NOT NULL, and rolling switch back after such an insert failed
/// (23514 on the helper check) with "run … to retry", which never succeeds. With a
/// `[[fill]]` switch sets it as the default instead and rolls back cleanly; without one the
/// plan warns (`drop-without-fill`) and the failed rollback says that rows must change.
#[test]
fn a_dropped_not_null_column_keeps_the_way_back_after_the_new_release_inserts() {
    use crate::harness::cli::{seqmig, text, write_plan};
    use crate::harness::{TestDb, block_on, connect};
    use crate::reliability_faults_tests::plan_from;
    use seqmig::plan::Phase;

    let before = "CREATE TABLE orders (id integer PRIMARY KEY, code text NOT NULL, qty integer);";
    let after = "CREATE TABLE orders (id integer PRIMARY KEY, qty integer);";
    let one_way = "[plan]\nallow_one_way = [\"public.orders.code\"]\n";
    for fill in [true, false] {
        let toml = if fill {
            format!("{one_way}\n[[fill]]\ntable = \"public.orders\"\ncolumn = \"code\"\nvalue = \"'none'\"\n")
        } else {
            one_way.to_string()
        };
        let plan = plan_from(before, after, &toml);
        let warned = plan.findings.iter().any(|f| f.code == seqmig::finding::FindingCode::DropWithoutFill);
        assert_eq!(warned, !fill, "{:?}", plan.findings);
        let db = TestDb::new();
        db.execute(&format!("{before} INSERT INTO orders VALUES (1, 'a', 1);"));
        let (_dir, path) = write_plan(&plan);
        for phase in [Phase::Expand, Phase::DualWrite, Phase::Backfill, Phase::Switch] {
            if plan.steps_of(phase).is_empty() {
                continue;
            }
            let out = seqmig(&["apply", "--plan", &path, "--phase", &phase.to_string()], &db);
            assert!(out.status.success(), "{phase}: {}", text(&out));
        }
        // The new release: the column is not in its INSERT.
        db.execute("INSERT INTO orders (id, qty) VALUES (2, 2);");
        let out = seqmig(&["rollback", "--plan", &path, "--phase", "switch"], &db);
        if fill {
            assert!(out.status.success(), "{}", text(&out));
            let code: String = block_on(async {
                connect(&db.url)
                    .await
                    .query_one("SELECT code FROM orders WHERE id = 2", &[])
                    .await
                    .unwrap()
                    .get(0)
            });
            assert_eq!(code, "none");
            let nullable: String = block_on(async {
                connect(&db.url)
                    .await
                    .query_one(
                        "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'code'",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0)
            });
            assert_eq!(nullable, "NO");
        } else {
            let msg = text(&out);
            assert!(!out.status.success(), "{msg}");
            assert!(msg.contains("23514") && msg.contains("retrying alone fails the same way"), "{msg}");
        }
    }
}

/// An in-place type change (varchar to text) of a column with a default: PostgreSQL keeps the
/// default through `ALTER COLUMN … TYPE`, respelt with a cast to the type it had, so rolling
/// expand back left `'CHAT'::text` on the varchar column (Sourcegraph's prompts.mode).
#[test]
fn an_in_place_type_change_keeps_the_default_as_written_both_ways() {
    let before = "CREATE TABLE prompts (id integer PRIMARY KEY, mode character varying DEFAULT 'CHAT'::character varying NOT NULL);";
    let after = "CREATE TABLE prompts (id integer PRIMARY KEY, mode text DEFAULT 'CHAT'::character varying NOT NULL);";
    let report = rehearse_pair(before, after, &seqmig::diff::Hints::default(), 20);
    assert!(report.passed(), "{}", seqmig::rehearse::render::text(&report));
}

/// PostgREST's dump says `CREATE SCHEMA public` (its `public` was dropped and created
/// again), which a new database refuses: every rehearsal of it failed while loading.
#[test]
fn a_dump_that_creates_schema_public_rehearses() {
    let before = "CREATE SCHEMA public;\nCREATE TABLE public.items (id integer PRIMARY KEY);";
    let after = "CREATE SCHEMA public;\nCREATE TABLE public.items (id integer PRIMARY KEY, note text);";
    let report = rehearse_pair(before, after, &seqmig::diff::Hints::default(), 10);
    assert!(report.passed(), "{}", seqmig::rehearse::render::text(&report));
}

/// A renamed column in a primary key, with a view over it and a foreign key into it: the
/// key's new unique index waited for the column's backfilled data (backfill) but was placed
/// in expand, a phase conflict, so every rename of a key column was blocked (PostgREST's
/// article_stars.article_id, car_models.year). The index is built in expand on the new
/// column and kept up by the backfill; the key is attached at contract after its NOT NULL.
#[test]
fn a_renamed_primary_key_column_is_planned_and_rehearses() {
    let before = "
CREATE TABLE parent (id integer NOT NULL, year integer NOT NULL, name text, CONSTRAINT parent_pkey PRIMARY KEY (id, year));
CREATE TABLE child (id integer PRIMARY KEY, parent_id integer, parent_year integer,
    CONSTRAINT child_parent_fkey FOREIGN KEY (parent_id, parent_year) REFERENCES parent (id, year));
CREATE VIEW parent_names AS SELECT parent.id, parent.year, parent.name FROM parent;
";
    let after = "
CREATE TABLE parent (id integer NOT NULL, year_made integer NOT NULL, name text, CONSTRAINT parent_pkey PRIMARY KEY (id, year_made));
CREATE TABLE child (id integer PRIMARY KEY, parent_id integer, parent_year integer,
    CONSTRAINT child_parent_fkey FOREIGN KEY (parent_id, parent_year) REFERENCES parent (id, year_made));
CREATE VIEW parent_names AS SELECT parent.id, parent.year_made, parent.name FROM parent;
";
    let toml = "[[rename]]\ntable = \"public.parent\"\nfrom = \"year\"\nto = \"year_made\"\n";
    let hints = seqmig::diff::Hints::from_toml(toml, "seqmig.toml").unwrap();
    let report = rehearse_pair(before, after, &hints, 30);
    assert!(report.passed(), "{}", seqmig::rehearse::render::text(&report));
}
