//! Issue 17.6 and 17.7: a real schema history (../shared/history/osm, 157 versions of
//! OpenStreetMap's structure.sql) replayed through `seqmig plan` and `seqmig rehearse`. The
//! full replay is `seqmig replay` (book/src/replay.md); here every pair is planned and a
//! fixed sample covering the classes of change the history holds is rehearsed.

use std::path::{Path, PathBuf};

use seqmig::db::ConnectOptions;
use seqmig::rehearse::replay::{self, Options, Outcome, Replay};

use crate::harness::{TestDb, block_on};

fn history() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/history/osm")
}

fn run(pairs: Option<&str>, plan_only: bool) -> Replay {
    let versions = replay::versions(&history()).unwrap();
    assert_eq!(versions.len(), 157, "the OSM history holds 157 versions");
    let pairs = match pairs {
        Some(spec) => replay::select_pairs(&versions, spec).unwrap(),
        None => (0..versions.len() - 1).collect(),
    };
    let db = TestDb::new();
    let admin = ConnectOptions::from_url(&db.url).unwrap();
    let options = Options { versions, pairs, plan_only, rows: 5 };
    block_on(replay::replay((!plan_only).then_some(&admin), &options, "osm", &mut |_| {}))
}

/// Every pair plans: exit 0, or exit 1 with blocking findings that each name their object;
/// never an error. The figures are those quoted in book/src/replay.md.
#[test]
fn issue_17_6_every_osm_pair_plans_without_error() {
    let r = run(None, true);
    let errors: Vec<String> =
        r.pairs.iter().filter(|p| p.outcome == Outcome::Error).map(|p| p.line()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    for p in r.pairs.iter().filter(|p| p.outcome == Outcome::Blocked) {
        assert!(
            !p.blocking.is_empty()
                && p.blocking.iter().all(|b| b.split_once(' ').is_some_and(|(_, o)| !o.is_empty()))
        );
    }
    assert_eq!(r.summary.pairs, 156);
    assert_eq!(
        (r.summary.planned, r.summary.blocked, r.summary.errors),
        (109, 47, 0),
        "{}",
        r.summary_line()
    );
    let line = r.summary_line();
    let counts = line.split(" in ").next().unwrap();
    let book =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/replay.md")).unwrap();
    assert!(book.contains(&format!("\n{counts} in ")), "book/src/replay.md must quote {line:?}");
}

/// One pair of the history planned and rehearsed on a scratch database: clean. A pair per
/// class that once failed and was fixed at its root, each its own test so the suite runs
/// them side by side (the full replay is `seqmig replay`; the stood-in C functions of 002
/// are pinned by the 17.7 test below, the plpgsql of 083/084 by the loader test at the end).
fn rehearses_clean(pair: &str) {
    let r = run(Some(pair), false);
    assert_eq!(r.pairs.len(), 1);
    let p = &r.pairs[0];
    assert_eq!(p.outcome, Outcome::Clean, "{}", p.line());
}

/// 086→087: a function's parameter renamed (CREATE OR REPLACE cannot; drop and create).
#[test]
fn issue_17_6_osm_086_function_parameter_renamed_rehearses_clean() {
    rehearses_clean("086");
}

/// 100→101: new foreign keys the desired schema keeps NOT VALID.
#[test]
fn issue_17_6_osm_100_foreign_keys_kept_not_valid_rehearse_clean() {
    rehearses_clean("100");
}

/// 116→117: a comment on an extension whose comment the current file does not state; the
/// rollback restores the extension's own comment, not none.
#[test]
fn issue_17_6_osm_116_extension_comment_rolls_back_to_the_control_file_comment() {
    rehearses_clean("116");
}

/// 136→137: NOT NULL column with a default and a NOT VALID foreign key on the new column.
#[test]
fn issue_17_6_osm_136_not_null_default_column_and_not_valid_foreign_key_rehearse_clean() {
    rehearses_clean("136");
}

/// 137→138: the NOT VALID foreign key of 137 validated.
#[test]
fn issue_17_6_osm_137_not_valid_foreign_key_validated_rehearses_clean() {
    rehearses_clean("137");
}

/// 17.7: what the server lacks is stood in and named, and everything else is still proven:
/// OSM's C functions from libpgosm.so (no rehearsal server has it), and an extension the
/// server does not offer (this server has postgis, so one that exists nowhere).
#[test]
fn issue_17_7_missing_library_and_extension_are_stood_in_and_reported() {
    let r = run(Some("002"), false);
    let early = &r.pairs[0];
    assert_eq!(early.outcome, Outcome::Clean, "{}", early.line());
    assert!(
        early.stood_in.iter().any(|s| s.starts_with("function maptile_for_point(bigint, bigint, integer)")
            && s.contains("libpgosm.so")),
        "{:#?}",
        early.stood_in
    );

    let current = "CREATE TABLE public.t (a integer);";
    let desired = "CREATE EXTENSION IF NOT EXISTS seqmig_absent_ext;\nCOMMENT ON EXTENSION seqmig_absent_ext IS 'x';\nCREATE TABLE public.t (a integer, b integer);";
    let (cur, des) = (
        seqmig::parse::load_str("current.sql", current).unwrap().schema,
        seqmig::parse::load_str("desired.sql", desired).unwrap().schema,
    );
    let plan = seqmig::plan::plan(&cur, &des, &Default::default(), &seqmig::render::Renderer::embedded())
        .unwrap()
        .plan;
    assert!(!plan.is_blocked());
    let input = seqmig::rehearse::Rehearsal {
        plan,
        current: cur,
        current_sql: current.into(),
        desired_sql: desired.into(),
        rows: 5,
    };
    let db = TestDb::new();
    let admin = ConnectOptions::from_url(&db.url).unwrap();
    let report = block_on(seqmig::rehearse::rehearse(&admin, &input, std::future::pending())).unwrap();
    assert!(report.passed(), "{:#?}", report.problems);
    assert_eq!(
        report.stood_in.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        vec!["extension seqmig_absent_ext: not available on the server; left out (unproven)".to_string()]
    );
}

/// OSM 001 installed btree_gist by its pre-9.1 contrib script (121 functions, types and
/// operator classes from `$libdir/btree_gist`); 002 says `CREATE EXTENSION btree_gist`.
/// CREATE EXTENSION fails on the existing objects (42723), so the plan blocks, naming the
/// extension, instead of planning a step that cannot run.
#[test]
fn issue_17_6_create_extension_over_hand_made_contrib_objects_blocks() {
    let r = run(Some("001"), true);
    let p = &r.pairs[0];
    assert_eq!(p.outcome, Outcome::Blocked, "{}", p.line());
    assert!(p.blocking.contains(&"unsupported-change btree_gist".to_string()), "{:#?}", p.blocking);
}

/// plpgsql is in every database: a file that creates it (and comments on it) and one that
/// does not load the same model, as introspection leaves it out (OSM 083→084 had planned a
/// DROP EXTENSION plpgsql that failed with 2BP01).
#[test]
fn issue_17_6_plpgsql_is_implied_by_the_loader() {
    let with = "CREATE EXTENSION IF NOT EXISTS plpgsql WITH SCHEMA pg_catalog;\nCOMMENT ON EXTENSION plpgsql IS 'PL/pgSQL procedural language';\nCREATE TABLE public.t (a integer);";
    let without = "CREATE TABLE public.t (a integer);";
    let a = seqmig::parse::load_str("with.sql", with).unwrap().schema;
    let b = seqmig::parse::load_str("without.sql", without).unwrap().schema;
    assert_eq!(a, b);
}
