//! `seqmig rehearse` (issue 9): plans run, rolled back and re-run on a scratch database, with
//! the locks each step really takes compared against the plan's predictions.

use seqmig::db::ConnectOptions;
use seqmig::plan::{GateSpec, LockMode, Phase, Plan, Step};
use seqmig::rehearse::{self, LockSource, Problem, Rehearsal, RollbackResult};

use crate::harness::{TestDb, block_on};

const BEFORE: &str = "CREATE TABLE public.t (id integer PRIMARY KEY, a integer NOT NULL, b text);
CREATE TABLE public.child (id bigint PRIMARY KEY, t_id integer NOT NULL REFERENCES public.t (id), note varchar(5));";

const AFTER: &str = "CREATE TABLE public.t (id integer PRIMARY KEY, a integer NOT NULL, c integer);
CREATE INDEX t_a_idx ON public.t (a);
CREATE TABLE public.child (id bigint PRIMARY KEY, t_id integer NOT NULL REFERENCES public.t (id), note varchar(5));";

fn step(
    id: &str,
    phase: Phase,
    sql: &str,
    rollback: Option<&str>,
    transactional: bool,
    lock: LockMode,
) -> Step {
    Step {
        rollback_sql: rollback.map(String::from),
        one_way: rollback.is_none(),
        transactional,
        ..Step::new(id, "c1", phase, sql, lock, "public.t")
    }
}

fn plan(steps: Vec<Step>) -> Plan {
    Plan::assemble(vec![], steps, vec![], GateSpec::default())
}

/// A correct plan for BEFORE → AFTER: add c, build the index concurrently, drop b at contract.
fn good_steps() -> Vec<Step> {
    vec![
        step(
            "s1",
            Phase::Expand,
            "ALTER TABLE public.t ADD COLUMN c integer",
            Some("ALTER TABLE public.t DROP COLUMN c"),
            true,
            LockMode::AccessExclusive,
        ),
        step(
            "s2",
            Phase::Expand,
            "CREATE INDEX CONCURRENTLY t_a_idx ON public.t (a)",
            Some("DROP INDEX CONCURRENTLY public.t_a_idx"),
            false,
            LockMode::ShareUpdateExclusive,
        ),
        step(
            "s3",
            Phase::Contract,
            "ALTER TABLE public.t DROP COLUMN b",
            None,
            true,
            LockMode::AccessExclusive,
        ),
    ]
}

fn run(plan: Plan) -> rehearse::Report {
    let db = TestDb::new();
    let admin = ConnectOptions::from_url(&db.url).unwrap();
    let input = Rehearsal {
        plan,
        current: seqmig::parse::load_str("before.sql", BEFORE).unwrap().schema,
        current_sql: BEFORE.into(),
        desired_sql: AFTER.into(),
        rows: 20,
    };
    block_on(rehearse::rehearse(&admin, &input, std::future::pending())).unwrap()
}

#[test]
fn a_correct_plan_passes_with_its_locks_observed() {
    let report = run(plan(good_steps()));
    assert!(report.passed(), "{:#?}", report.problems);
    assert_eq!(report.seed.rows["public.t"], 20);
    assert_eq!(report.seed.rows["public.child"], 20, "{:?}", report.seed.refused);
    assert_eq!(report.final_schema_matches, Some(true));
    let expand = &report.phases[0];
    assert_eq!(expand.rollback, RollbackResult::Restored);
    // The ADD COLUMN's lock is read inside its transaction: exact.
    let s1 = &expand.steps[0];
    assert_eq!(s1.lock_source, LockSource::Transaction);
    assert_eq!(s1.observed_lock, Some(LockMode::AccessExclusive));
    assert_eq!(s1.observed_on.as_deref(), Some("public.t"));
    let s2 = &expand.steps[1];
    assert!(s2.observed_lock.is_none_or(|m| m <= LockMode::ShareUpdateExclusive), "{s2:?}");
    assert!(s2.rollback_ms.is_some());
    let contract = &report.phases[1];
    assert_eq!(contract.phase, Phase::Contract);
    assert!(matches!(contract.rollback, RollbackResult::NotApplicable(_)));
}

#[test]
fn an_index_built_without_concurrently_is_caught_and_named() {
    let mut steps = good_steps();
    // The edited SQL file: CONCURRENTLY removed, the plan still predicts SHARE UPDATE EXCLUSIVE.
    steps[1].sql = "CREATE INDEX t_a_idx ON public.t (a)".into();
    let report = run(plan(steps));
    assert!(!report.passed());
    let lock = report
        .problems
        .iter()
        .find_map(|p| match p {
            Problem::LockExceeds { step, observed, predicted, relation, .. } => {
                Some((step.clone(), *observed, *predicted, relation.clone()))
            }
            _ => None,
        })
        .expect("a lock problem");
    assert_eq!(lock, ("s2".into(), LockMode::Share, LockMode::ShareUpdateExclusive, "public.t".into()));
    assert!(
        report.problems.iter().any(|p| p.to_string().contains("step s2 (expand) took SHARE on public.t"))
    );
}

#[test]
fn a_rollback_that_does_not_restore_is_caught() {
    let mut steps = good_steps();
    steps[0].rollback_sql = Some("ALTER TABLE public.t ALTER COLUMN c SET DEFAULT 1".into());
    steps.push(step(
        "s0",
        Phase::Expand,
        "UPDATE public.t SET a = a + 1",
        Some("SELECT 1"),
        true,
        LockMode::RowExclusive,
    ));
    let report = run(plan(steps));
    let not_restored = report
        .problems
        .iter()
        .find_map(|p| match p {
            Problem::RollbackNotRestored { phase: Phase::Expand, differences } => {
                Some(differences.join("; "))
            }
            _ => None,
        })
        .expect("rollback not restored");
    assert!(not_restored.contains("tables public.t differs"), "{not_restored}");
    assert!(not_restored.contains("data of public.t changed"), "{not_restored}");
}

#[test]
fn the_scratch_databases_are_dropped_afterwards() {
    let db = TestDb::new();
    let admin = ConnectOptions::from_url(&db.url).unwrap();
    let input = Rehearsal {
        plan: plan(good_steps()),
        current: seqmig::parse::load_str("before.sql", BEFORE).unwrap().schema,
        current_sql: BEFORE.into(),
        desired_sql: AFTER.into(),
        rows: 3,
    };
    block_on(async {
        let report = rehearse::rehearse(&admin, &input, std::future::pending()).await.unwrap();
        // Interrupted right away: still cleaned up, and the error says so.
        let interrupted = rehearse::rehearse(&admin, &input, async {}).await.unwrap_err();
        assert!(interrupted.to_string().contains("interrupted"), "{interrupted}");
        let c = db.client().await;
        let left: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname::text IN ($1::text, $1::text || '_want')",
                &[&report.database],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0);
    });
}

/// Plans `before` → `after` with the example's hints and rehearses it with `rows` rows.
pub(crate) fn rehearse_pair(
    before: &str,
    after: &str,
    hints: &seqmig::diff::Hints,
    rows: usize,
) -> rehearse::Report {
    let current = seqmig::parse::load_str("before.sql", before).unwrap().schema;
    let desired = seqmig::parse::load_str("after.sql", after).unwrap().schema;
    let planned =
        seqmig::plan::plan(&current, &desired, hints, &seqmig::render::Renderer::embedded()).unwrap();
    let db = TestDb::new();
    let admin = ConnectOptions::from_url(&db.url).unwrap();
    let input = Rehearsal {
        plan: planned.plan,
        current,
        current_sql: before.into(),
        desired_sql: after.into(),
        rows,
    };
    block_on(rehearse::rehearse(&admin, &input, std::future::pending())).unwrap()
}

/// Examples whose rehearsal finds a real defect, with the defect. When one is fixed, its
/// entry must go (the test fails while it is listed and passes).
const KNOWN_FAILING: &[(&str, &str)] = &[];

#[test]
fn every_example_rehearses_with_locks_as_predicted() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples");
    let mut examples: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("before.sql").is_file())
        .collect();
    examples.sort();
    assert!(examples.len() >= 18);
    // A few at a time: each rehearsal is mostly waiting on the server.
    let results: Vec<(String, Option<rehearse::Report>)> = std::thread::scope(|scope| {
        let chunks: Vec<Vec<std::path::PathBuf>> = examples.chunks(5).map(|c| c.to_vec()).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|d| {
                            let name = d.file_name().unwrap().to_string_lossy().to_string();
                            let toml = d.join("seqmig.toml");
                            let hints = if toml.is_file() {
                                seqmig::diff::Hints::from_file(&toml).unwrap()
                            } else {
                                seqmig::diff::Hints::default()
                            };
                            let before = std::fs::read_to_string(d.join("before.sql")).unwrap();
                            let after = std::fs::read_to_string(d.join("after.sql")).unwrap();
                            let blocked = {
                                let c = seqmig::parse::load_str("before.sql", &before).unwrap().schema;
                                let w = seqmig::parse::load_str("after.sql", &after).unwrap().schema;
                                seqmig::plan::plan(&c, &w, &hints, &seqmig::render::Renderer::embedded())
                                    .unwrap()
                                    .plan
                                    .is_blocked()
                            };
                            let report = (!blocked).then(|| rehearse_pair(&before, &after, &hints, 5));
                            (name, report)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut unexpected = Vec::new();
    for (name, report) in &results {
        let Some(report) = report else {
            // A blocked plan is never applied (19-ambiguous-rename shows the finding).
            continue;
        };
        let text = rehearse::render::text(report);
        match KNOWN_FAILING.iter().find(|(n, _)| n == name) {
            Some((_, why)) => {
                assert!(!report.passed(), "{name} now passes: remove it from KNOWN_FAILING\n{text}");
                assert!(text.contains(why), "{name} fails differently than known:\n{text}");
            }
            None if !report.passed() => unexpected.push(format!("{name}:\n{text}")),
            None => {
                assert_eq!(report.final_schema_matches, Some(true), "{name}");
                for phase in &report.phases {
                    for s in &phase.steps {
                        assert!(!s.lock_exceeds, "{name} {}", s.id);
                    }
                }
            }
        }
    }
    let blocked: Vec<&str> = results.iter().filter(|(_, r)| r.is_none()).map(|(n, _)| n.as_str()).collect();
    // 21 and 22 block on findings (issue 17.2/17.3); 25 has no online form (issue 17.4) and,
    // acknowledged, is rehearsed by online_ddl_tests.
    assert_eq!(
        blocked,
        [
            "19-ambiguous-rename",
            "21-opaque-alter",
            "22-extension-drop",
            "25-identity-or-generated",
            "26-widen-identity-key"
        ],
        "only the examples of blocking findings are blocked"
    );
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}

/// The real OpenStreetMap diff (needs PostGIS, installed by .ci/run): every table seeded,
/// expand applied, rolled back to the same schema and data, applied again, contract, and
/// the final schema equal to the 2026 dump, with every lock as predicted.
#[test]
fn the_openstreetmap_diff_rehearses_to_the_desired_schema() {
    let dir = crate::harness::corpus_dir();
    let before = std::fs::read_to_string(dir.join("osm-structure-2025-07.sql")).unwrap();
    let after = std::fs::read_to_string(dir.join("osm-structure-2026-07.sql")).unwrap();
    let t0 = std::time::Instant::now();
    let report = rehearse_pair(&before, &after, &seqmig::diff::Hints::default(), 3);
    let text = rehearse::render::text(&report);
    eprintln!("{text}\nOSM rehearsal took {:.1} s", t0.elapsed().as_secs_f64());
    assert_eq!(report.seed.rows.len(), 53, "{text}");
    assert!(report.seed.rows.values().all(|n| *n == 3), "{text}");
    assert!(report.passed(), "{text}");
    assert_eq!(report.final_schema_matches, Some(true));
    assert_eq!(report.phases[0].phase, Phase::Expand);
    assert_eq!(report.phases[0].rollback, RollbackResult::Restored, "{text}");
}

/// From the command line, the two ways a plan can differ from what the planner would write:
/// SQL templates edited by the team (`--templates`) and a plan artifact (`--plan`). An index
/// template without CONCURRENTLY makes rehearse exit 1 naming the step and the lock; the
/// planner's own artifact passes; an artifact edited by hand is refused before anything runs.
#[test]
fn rehearse_cli_catches_an_edited_template_and_checks_a_plan_artifact() {
    use crate::harness::cli::{TempDir, command, text};
    let db = TestDb::new();
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-examples/14-add-and-change-index");
    let from = example.join("before.sql").display().to_string();
    let to = example.join("after.sql").display().to_string();
    let pair = ["rehearse", "--from", from.as_str(), "--to", to.as_str(), "--database-url", db.url.as_str()];

    let templates = TempDir::new();
    std::fs::create_dir_all(templates.path.join("sql")).unwrap();
    let original = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/sql/create_index.sql"),
    )
    .unwrap();
    let edited = original.replace("{% if index.concurrently %}CONCURRENTLY {% endif %}", "");
    assert_ne!(edited, original, "the template still has its CONCURRENTLY switch");
    std::fs::write(templates.path.join("sql/create_index.sql"), edited).unwrap();
    let dir = templates.path.display().to_string();
    let out = command(&db.url).args(pair).args(["--templates", dir.as_str()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("step s1 (expand) took SHARE on public.users"), "{}", text(&out));

    let plan =
        command(&db.url).args(["plan", "--from", &from, "--to", &to, "--format", "json"]).output().unwrap();
    assert!(plan.status.success(), "{}", text(&plan));
    let file = templates.path.join("plan.json");
    std::fs::write(&file, &plan.stdout).unwrap();
    let file_arg = file.display().to_string();
    let out = command(&db.url).args(pair).args(["--plan", file_arg.as_str()]).output().unwrap();
    assert!(out.status.success(), "the planner's own artifact rehearses clean:\n{}", text(&out));

    let tampered = String::from_utf8(plan.stdout).unwrap().replacen("CONCURRENTLY ", "", 1);
    std::fs::write(&file, tampered).unwrap();
    let out = command(&db.url).args(pair).args(["--plan", file_arg.as_str()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("refused"), "{}", text(&out));
}
