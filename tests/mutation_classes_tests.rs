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
