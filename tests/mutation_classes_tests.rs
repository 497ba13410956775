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
