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

/// A column that a view or materialized view reads changes type through a shadow column:
/// the plan drops the view and creates it again around the swap. What hangs on it went with
/// the drop and never came back, forward or on undo: pagila's `rental_category` index on
/// the matview `rental_by_category`, Sourcegraph's `COMMENT ON VIEW user_relevant_repos`.
/// The recreate now brings back its indexes, owner, grants, INSTEAD OF triggers and the
/// comments on it, its columns and its indexes (as the desired schema has them; on undo as
/// the current one had them), and an index or comment of such a view that changes at the
/// same time is made by the recreate, not on the view about to go.
#[test]
fn a_recreated_view_keeps_what_hangs_on_it() {
    let before = "
CREATE TABLE film (film_id integer PRIMARY KEY, title text NOT NULL, rating integer);
CREATE MATERIALIZED VIEW film_titles AS SELECT film_id, title FROM film;
CREATE UNIQUE INDEX film_titles_id ON film_titles (film_id);
CREATE INDEX film_titles_title ON film_titles (lower(title));
COMMENT ON MATERIALIZED VIEW film_titles IS 'titles by id';
COMMENT ON INDEX film_titles_id IS 'for REFRESH CONCURRENTLY';
CREATE VIEW rated WITH (security_barrier = true) AS SELECT film_id, rating FROM film WHERE rating > 0;
COMMENT ON VIEW rated IS 'films with a rating';
COMMENT ON COLUMN rated.rating IS 'stars';
GRANT SELECT ON TABLE rated TO PUBLIC;
CREATE FUNCTION rated_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO film (film_id, title, rating) VALUES (NEW.film_id, 'untitled', NEW.rating); RETURN NEW; END $$;
CREATE TRIGGER rated_insert INSTEAD OF INSERT ON rated FOR EACH ROW EXECUTE FUNCTION rated_insert();
";
    let widened = before.replace("film_id integer PRIMARY KEY", "film_id bigint PRIMARY KEY");
    // The same, and the matview's indexes and comment change with it.
    let reshaped = widened
        .replace(
            "CREATE INDEX film_titles_title ON film_titles (lower(title));",
            "CREATE INDEX film_titles_title ON film_titles (upper(title));",
        )
        .replace("'titles by id'", "'titles'")
        .replace("COMMENT ON COLUMN rated.rating IS 'stars';", "");
    // No type change: the view's definition changes and its trigger calls a new function,
    // which the recreate (in expand) must follow.
    let redefined = before
        .replace("WHERE rating > 0", "WHERE rating > 1")
        .replace("FUNCTION rated_insert()", "FUNCTION rated_insert_v2()");
    for after in [widened.as_str(), reshaped.as_str(), redefined.as_str()] {
        let report = rehearse_pair(before, after, &seqmig::diff::Hints::default(), 20);
        assert!(report.passed(), "{after}\n{}", seqmig::rehearse::render::text(&report));
    }
}

/// Sourcegraph's `gitserver_repos_schedule_order_idx` reads `last_fetched` in an expression;
/// renaming the column rebuilds the index over the new name. Contract dropped the old column
/// first (PostgreSQL drops the index with it), then the old index: 42704, index does not
/// exist. An index's drop now comes before the drop of any column its expressions or
/// predicate read.
#[test]
fn an_expression_index_over_a_renamed_column_is_dropped_before_the_column() {
    let before = "
CREATE TABLE repos (id integer PRIMARY KEY, last_fetched timestamptz, last_changed timestamptz);
CREATE INDEX repos_order ON repos ((last_fetched - last_changed) DESC, id) WHERE last_fetched IS NOT NULL;
";
    let after = before.replace("last_fetched", "fetched_at");
    let toml = "[[rename]]\ntable = \"public.repos\"\nfrom = \"last_fetched\"\nto = \"fetched_at\"\n";
    let hints = seqmig::diff::Hints::from_toml(toml, "seqmig.toml").unwrap();
    let report = rehearse_pair(before, &after, &hints, 20);
    assert!(report.passed(), "{}", seqmig::rehearse::render::text(&report));
}

/// Pagila's `rental_by_category` names its output column after the table it reads
/// (`c.name AS category`). Renaming `category` (and, in the desired schema, that column
/// with it) carried the alias along as if it were the table: the current matview looked
/// unchanged, and only its index over the new column name was planned, on a column the
/// matview does not have (42703). An alias is not the table: the matview is recreated, with
/// its index.
#[test]
fn a_view_column_named_like_a_renamed_table_is_not_renamed_with_it() {
    let before = "
CREATE TABLE category (category_id integer PRIMARY KEY, name text NOT NULL);
CREATE MATERIALIZED VIEW by_category AS SELECT c.name AS category, count(*) AS n FROM category c GROUP BY c.name;
CREATE UNIQUE INDEX by_category_key ON by_category (category);
";
    let after = "
CREATE TABLE genre (category_id integer PRIMARY KEY, name text NOT NULL);
CREATE MATERIALIZED VIEW by_category AS SELECT c.name AS genre, count(*) AS n FROM genre c GROUP BY c.name;
CREATE UNIQUE INDEX by_category_key ON by_category (genre);
";
    let toml = "[[rename]]\nfrom = \"public.category\"\nto = \"public.genre\"\n";
    let hints = seqmig::diff::Hints::from_toml(toml, "seqmig.toml").unwrap();
    let report = rehearse_pair(before, after, &hints, 20);
    assert!(report.passed(), "{after}\n{}", seqmig::rehearse::render::text(&report));
}
