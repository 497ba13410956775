//! Classes of "the plan said safe but the rehearsal failed" found by `scripts/mutate.py`,
//! one realistic change at a time on the real corpus schemas, each reproduced here small.

use crate::rehearse_tests::rehearse_pair;

/// The plan of `before` → `after` with the hints in `toml` (blocked or not).
fn plan_of(before: &str, after: &str, toml: &str) -> seqmig::plan::Plan {
    let load = |file: &str, sql: &str| seqmig::parse::load_str(file, sql).unwrap().schema;
    let hints = seqmig::diff::Hints::from_toml(toml, "seqmig.toml").unwrap();
    seqmig::plan::plan(
        &load("a.sql", before),
        &load("b.sql", after),
        &hints,
        &seqmig::render::Renderer::embedded(),
    )
    .unwrap()
    .plan
}

/// The finding of `plan` with `code`.
fn finding(plan: &seqmig::plan::Plan, code: seqmig::finding::FindingCode) -> &seqmig::finding::Finding {
    plan.findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code:?} in {:?}", plan.findings))
}

/// Plans `before` → `after` with the hints in `toml` and rehearses it on a real server (20
/// rows per table, every fourth NULL in nullable columns): it must pass.
fn assert_rehearses(before: &str, after: &str, toml: &str) {
    let hints = seqmig::diff::Hints::from_toml(toml, "seqmig.toml").unwrap();
    let report = rehearse_pair(before, after, &hints, 20);
    assert!(report.passed(), "{after}\n{}", seqmig::rehearse::render::text(&report));
}

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
    assert_rehearses(before, after, toml);
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
        assert_rehearses(before, after, toml);
    }
}

/// Without a fill, the same change is blocked, naming the column.
#[test]
fn a_column_that_becomes_not_null_without_a_fill_is_blocked() {
    let plan = plan_of(
        "CREATE TABLE orders (id integer PRIMARY KEY, status text);",
        "CREATE TABLE orders (id integer PRIMARY KEY, status text NOT NULL);",
        "",
    );
    let f = finding(&plan, seqmig::finding::FindingCode::MissingFill);
    assert_eq!(f.object, "public.orders.status");
    assert_eq!(f.severity, seqmig::finding::Severity::Error);
    assert!(f.help.contains("column = \"status\""), "{f:?}");
}

/// Dropping a NOT NULL column without default: from switch the new release inserts rows
/// without it. Switch dropped NOT NULL, and rolling switch back after such an insert failed
/// (23514 on the helper check) with "run … to retry", which never succeeds. With a
/// `[[fill]]` switch sets it as the default instead and rolls back cleanly; without one the
/// plan warns (`drop-without-fill`), the failed rollback and `status` say that rows must
/// change, and once they have, the rollback finishes and switch applies again.
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
        let status = text(&seqmig(&["status"], &db));
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
            assert!(
                status.contains("switch     rolled back")
                    && status.contains("next: seqmig apply --phase switch"),
                "{status}"
            );
        } else {
            let msg = text(&out);
            assert!(!out.status.success(), "{msg}");
            assert!(msg.contains("23514") && msg.contains("retrying alone fails the same way"), "{msg}");
            // Status says what the database holds: the undo stopped on the data, and why.
            assert!(
                status.contains("ROLLBACK INCOMPLETE")
                    && status.contains("refused by rows that violate it (SQLSTATE 23514)")
                    && status.contains("next: seqmig rollback --phase switch"),
                "{status}"
            );
            // Once the row has a value, rolling back again finishes, and switch applies again.
            db.execute("UPDATE orders SET code = 'given' WHERE code IS NULL;");
            let again = seqmig(&["rollback", "--plan", &path, "--phase", "switch"], &db);
            assert!(again.status.success(), "{}", text(&again));
            let status = text(&seqmig(&["status"], &db));
            assert!(status.contains("switch     rolled back"), "{status}");
        }
        let out = seqmig(&["apply", "--plan", &path, "--phase", "switch"], &db);
        assert!(out.status.success(), "re-apply switch: {}", text(&out));
    }
}

/// An in-place type change (varchar to text) of a column with a default: PostgreSQL keeps the
/// default through `ALTER COLUMN … TYPE`, respelt with a cast to the type it had, so rolling
/// expand back left `'CHAT'::text` on the varchar column (Sourcegraph's prompts.mode).
#[test]
fn an_in_place_type_change_keeps_the_default_as_written_both_ways() {
    let before = "CREATE TABLE prompts (id integer PRIMARY KEY, mode character varying DEFAULT 'CHAT'::character varying NOT NULL);";
    let after = "CREATE TABLE prompts (id integer PRIMARY KEY, mode text DEFAULT 'CHAT'::character varying NOT NULL);";
    assert_rehearses(before, after, "");
}

/// PostgREST's dump says `CREATE SCHEMA public` (its `public` was dropped and created
/// again), which a new database refuses: every rehearsal of it failed while loading.
#[test]
fn a_dump_that_creates_schema_public_rehearses() {
    let before = "CREATE SCHEMA public;\nCREATE TABLE public.items (id integer PRIMARY KEY);";
    let after = "CREATE SCHEMA public;\nCREATE TABLE public.items (id integer PRIMARY KEY, note text);";
    assert_rehearses(before, after, "");
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
    assert_rehearses(before, after, toml);
}

/// A table renamed while a function's signature names its row type (pagila's
/// `rewards_report(…) RETURNS SETOF customer`) and the function is replaced in expand.
/// PostgreSQL binds the row type by OID, so after the rename the function returns
/// `customer_renamed`; its rollback recreated it from the old text, `RETURNS SETOF customer`,
/// which by then named the compatibility view: the rollback of the rename could not drop that
/// view ("cannot drop view customer because other objects depend on it"). The rollback now
/// recreates the function as it read after the rename.
#[test]
fn a_renamed_tables_rollback_is_not_held_by_a_function_over_its_compatibility_view() {
    let before = "
CREATE TABLE customer (customer_id integer CONSTRAINT customer_pkey PRIMARY KEY, name text);
CREATE VIEW customer_list AS SELECT cu.customer_id, cu.name FROM public.customer cu;
CREATE FUNCTION public.rewards(min integer) RETURNS SETOF public.customer
    LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY SELECT * FROM customer WHERE customer_id > min; END $$;
";
    let after = "
CREATE TABLE customer_renamed (customer_id integer CONSTRAINT customer_pkey PRIMARY KEY, name text);
CREATE VIEW customer_list AS SELECT cu.customer_id, cu.name FROM public.customer_renamed cu;
CREATE FUNCTION public.rewards(min integer) RETURNS SETOF public.customer_renamed
    LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY SELECT * FROM customer_renamed WHERE customer_id > min; END $$;
";
    let toml = "[[rename]]\nfrom = \"public.customer\"\nto = \"customer_renamed\"\n";
    assert_rehearses(before, after, toml);
}

/// A renamed table whose name is also a column alias in a view over it (pagila's
/// `film_list`: `category.name AS category`). Carrying the view's text through the rename
/// replaced every identifier `category`, the alias too: the view read as unchanged while its
/// output column was really renamed, and the index on a materialized view's `category`
/// column was planned over a column that never came ("column category_renamed does not
/// exist"). Only references to the table (the relation and its qualifiers) follow it.
#[test]
fn a_renamed_table_does_not_rename_a_column_alias_spelled_like_it() {
    let before = "
CREATE TABLE category (category_id integer CONSTRAINT category_pkey PRIMARY KEY, name text NOT NULL);
CREATE TABLE film_category (film_id integer, category_id integer REFERENCES category);
CREATE VIEW film_list AS SELECT film_category.film_id, category.name AS category
    FROM (public.category LEFT JOIN public.film_category ON ((category.category_id = film_category.category_id)));
CREATE MATERIALIZED VIEW rental_by_category AS SELECT c.name AS category, count(*) AS n
    FROM (public.film_category fc JOIN public.category c ON ((fc.category_id = c.category_id))) GROUP BY c.name;
CREATE UNIQUE INDEX rental_category ON public.rental_by_category USING btree (category);
";
    // The table is renamed and nothing else: the views keep their output columns.
    let after = "
CREATE TABLE category_renamed (category_id integer CONSTRAINT category_pkey PRIMARY KEY, name text NOT NULL);
CREATE TABLE film_category (film_id integer, category_id integer REFERENCES category_renamed);
CREATE VIEW film_list AS SELECT film_category.film_id, category_renamed.name AS category
    FROM (public.category_renamed LEFT JOIN public.film_category ON ((category_renamed.category_id = film_category.category_id)));
CREATE MATERIALIZED VIEW rental_by_category AS SELECT c.name AS category, count(*) AS n
    FROM (public.film_category fc JOIN public.category_renamed c ON ((fc.category_id = c.category_id))) GROUP BY c.name;
CREATE UNIQUE INDEX rental_category ON public.rental_by_category USING btree (category);
";
    let toml = "[[rename]]\nfrom = \"public.category\"\nto = \"category_renamed\"\n";
    let plan = plan_of(before, after, toml);
    let kinds: Vec<&str> = plan.changes.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["rename_table"], "only the rename: {:?}", plan.changes);
    assert_rehearses(before, after, toml);

    // The mutation as scripts/mutate.py wrote it: the alias renamed as well, so the views'
    // output columns (and the index over one) really change.
    let after =
        after.replace("AS category,", "AS category_renamed,").replace("(category);", "(category_renamed);");
    assert_rehearses(before, &after, toml);
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
        assert_rehearses(before, after, "");
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
    assert_rehearses(before, &after, toml);
}

/// A view's output column renamed (pagila's views after the mutation above renamed
/// `AS category`): PostgreSQL refuses to rename a view's column by `CREATE OR REPLACE`, so
/// the view and the view over it are dropped and created again in one transaction. A
/// materialized view loses its indexes when it is dropped: its index over the renamed column
/// was planned on its own, before the view had that column ("column title does not exist"),
/// and an index it keeps unchanged was not built again at all. The replacement now builds the
/// view's desired indexes and its undo the current ones.
#[test]
fn a_view_whose_output_column_is_renamed_rehearses_with_its_indexes() {
    let before = "
CREATE TABLE t (id integer PRIMARY KEY, name text);
CREATE VIEW v AS SELECT t.id, t.name AS label FROM t;
CREATE VIEW w AS SELECT v.id, v.label FROM v;
CREATE MATERIALIZED VIEW m AS SELECT t.id, t.name AS label FROM t;
CREATE UNIQUE INDEX m_label ON m (id, label);
CREATE INDEX m_id ON m (id);
";
    let cases = [
        // Output columns renamed; the index over one follows.
        "
CREATE TABLE t (id integer PRIMARY KEY, name text);
CREATE VIEW v AS SELECT t.id, t.name AS title FROM t;
CREATE VIEW w AS SELECT v.id, v.title AS label FROM v;
CREATE MATERIALIZED VIEW m AS SELECT t.id, t.name AS title FROM t;
CREATE UNIQUE INDEX m_label ON m (id, title);
CREATE INDEX m_id ON m (id);
",
        // The materialized view's definition changes, its indexes do not.
        "
CREATE TABLE t (id integer PRIMARY KEY, name text);
CREATE VIEW v AS SELECT t.id, t.name AS label FROM t;
CREATE VIEW w AS SELECT v.id, v.label FROM v;
CREATE MATERIALIZED VIEW m AS SELECT t.id, upper(t.name) AS label FROM t;
CREATE UNIQUE INDEX m_label ON m (id, label);
CREATE INDEX m_id ON m (id);
",
    ];
    for after in cases {
        assert_rehearses(before, after, "");
    }
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
    assert_rehearses(before, after, toml);
}

/// Widening a numeric's precision and scale together (pagila's `film.rental_rate`
/// numeric(4,2) to numeric(20,4)) loses nothing, yet was blocked for want of a
/// `[[transform]]`. It is a widening cast now, through a shadow column (a new scale rewrites).
#[test]
fn a_numeric_widened_in_precision_and_scale_needs_no_transform() {
    let before =
        "CREATE TABLE film (id integer PRIMARY KEY, rental_rate numeric(4,2) DEFAULT 4.99 NOT NULL);";
    let after =
        "CREATE TABLE film (id integer PRIMARY KEY, rental_rate numeric(20,4) DEFAULT 4.99 NOT NULL);";
    assert_rehearses(before, after, "");
}

/// A key of a partitioned table that changes its definition (PostgREST's `car_models`,
/// partitioned, with `year` in its primary key renamed) was planned with a concurrent
/// unique index on the parent, which PostgreSQL refuses (0A000) at expand. It is blocked,
/// naming the key, with the two-plan way around.
#[test]
fn a_changed_key_of_a_partitioned_table_is_blocked_naming_it() {
    let before = "CREATE TABLE cars (name text NOT NULL, year integer NOT NULL, CONSTRAINT cars_pkey PRIMARY KEY (name, year)) PARTITION BY LIST (year);
CREATE TABLE cars_2020 PARTITION OF cars FOR VALUES IN (2020);";
    let after = "CREATE TABLE cars (name text NOT NULL, year integer NOT NULL, CONSTRAINT cars_pkey PRIMARY KEY (year, name)) PARTITION BY LIST (year);
CREATE TABLE cars_2020 PARTITION OF cars FOR VALUES IN (2020);";
    let plan = plan_of(before, after, "");
    let f = finding(&plan, seqmig::finding::FindingCode::UnsupportedChange);
    assert_eq!(f.object, "public.cars.cars_pkey");
    assert!(plan.is_blocked());
}
