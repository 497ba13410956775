//! The plan's predicted lock, per relation, against what PostgreSQL 15 takes (issue 21): an
//! attach next to a default partition, one without, a plain detach (a default partition
//! forbids the concurrent one) and a concurrent detach. Each step's statements run on a real
//! server and `pg_locks` shows the strongest mode held (or, for the second transaction of a
//! concurrent detach, asked for) on every relation the plan names.

use std::collections::BTreeMap;

use seqmig::model::QualifiedName;
use seqmig::plan::{LockMode, Phase, Step};
use tokio_postgres::Client;

use crate::harness::{TestDb, block_on};
use crate::partition2_tests::plan;

const BEFORE: &str = "
CREATE TABLE public.events (id bigint NOT NULL, kind text) PARTITION BY RANGE (id);
CREATE TABLE public.events_now PARTITION OF public.events FOR VALUES FROM (MINVALUE) TO (1000);
CREATE TABLE public.events_default PARTITION OF public.events DEFAULT;
CREATE TABLE public.metrics (id bigint NOT NULL, value integer) PARTITION BY RANGE (id);
CREATE TABLE public.metrics_now PARTITION OF public.metrics FOR VALUES FROM (MINVALUE) TO (1000);
CREATE TABLE public.accounts (id bigint NOT NULL, region text NOT NULL) PARTITION BY LIST (region);
CREATE TABLE public.accounts_eu PARTITION OF public.accounts FOR VALUES IN ('eu');
CREATE TABLE public.accounts_other PARTITION OF public.accounts DEFAULT;
CREATE TABLE public.sessions (id bigint NOT NULL, token text) PARTITION BY HASH (id);
CREATE TABLE public.sessions_0 PARTITION OF public.sessions FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE public.sessions_1 PARTITION OF public.sessions FOR VALUES WITH (modulus 2, remainder 1);
";

const AFTER: &str = "
CREATE TABLE public.events (id bigint NOT NULL, kind text) PARTITION BY RANGE (id);
CREATE TABLE public.events_now PARTITION OF public.events FOR VALUES FROM (MINVALUE) TO (1000);
CREATE TABLE public.events_next PARTITION OF public.events FOR VALUES FROM (1000) TO (2000);
CREATE TABLE public.events_default PARTITION OF public.events DEFAULT;
CREATE TABLE public.metrics (id bigint NOT NULL, value integer) PARTITION BY RANGE (id);
CREATE TABLE public.metrics_now PARTITION OF public.metrics FOR VALUES FROM (MINVALUE) TO (1000);
CREATE TABLE public.metrics_next PARTITION OF public.metrics FOR VALUES FROM (1000) TO (2000);
CREATE TABLE public.accounts (id bigint NOT NULL, region text NOT NULL) PARTITION BY LIST (region);
CREATE TABLE public.accounts_other PARTITION OF public.accounts DEFAULT;
CREATE TABLE public.sessions (id bigint NOT NULL, token text) PARTITION BY HASH (id);
CREATE TABLE public.sessions_0 PARTITION OF public.sessions FOR VALUES WITH (modulus 2, remainder 0);
";

const TOML: &str = "[plan]\nauthoritative_partitions = [\"public.accounts\", \"public.sessions\"]\n\
                    allow_one_way = [\"public.accounts_eu\", \"public.sessions_1\"]\n";

/// The strongest mode session `pid` holds (granted) or waits for (not granted) per relation.
async fn modes(c: &Client, pid: i32, granted: bool) -> BTreeMap<String, LockMode> {
    let rows = c
        .query(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(k.relname), l.mode
             FROM pg_locks l JOIN pg_class k ON k.oid = l.relation JOIN pg_namespace n ON n.oid = k.relnamespace
             WHERE l.pid = $1 AND l.granted = $2 AND n.nspname = 'public'",
            &[&pid, &granted],
        )
        .await
        .unwrap();
    let mut out: BTreeMap<String, LockMode> = BTreeMap::new();
    for r in rows {
        let (rel, name): (String, String) = (r.get(0), r.get(1));
        let mode = seqmig::rehearse::observe::parse_mode(&name).unwrap();
        let e = out.entry(rel).or_insert(mode);
        *e = (*e).max(mode);
    }
    out
}

/// The step's predicted mode on every relation it names.
fn predicted(step: &Step) -> Vec<(QualifiedName, LockMode)> {
    let lock = step.effects.lock.as_ref().unwrap_or_else(|| panic!("{} predicts no lock", step.id));
    lock.each().into_iter().map(|(r, m)| (r.clone(), m)).collect()
}

async fn pid(c: &Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0)
}

#[test]
fn issue21_lock_per_relation_is_what_postgres_takes() {
    let plan = plan(BEFORE, AFTER, TOML);
    assert!(!plan.is_blocked(), "{:?}", plan.findings);
    let db = TestDb::new();
    db.execute(BEFORE);
    let mut checked = Vec::new();
    block_on(async {
        let c = db.client().await;
        let me = pid(&c).await;
        for phase in Phase::ALL {
            for step in plan.steps_of(phase) {
                let attach = step.effects.statements.iter().any(|s| s.contains("ATTACH PARTITION"));
                let detach = step.effects.statements.iter().any(|s| s.contains("DETACH PARTITION"));
                if !(attach || detach) {
                    // The flag steps write seqmig's ledger, which the executor would create.
                    for s in step.effects.statements.iter().filter(|s| !s.contains("seqmig.")) {
                        c.batch_execute(s).await.unwrap_or_else(|e| panic!("{}: {s}: {e:?}", step.id));
                    }
                    continue;
                }
                let want = predicted(step);
                if step.transactional {
                    c.batch_execute("BEGIN").await.unwrap();
                    for s in &step.effects.statements {
                        c.batch_execute(s).await.unwrap_or_else(|e| panic!("{}: {s}: {e:?}", step.id));
                    }
                    let held = modes(&c, me, true).await;
                    c.batch_execute("COMMIT").await.unwrap();
                    for (rel, mode) in &want {
                        assert_eq!(
                            held.get(&rel.quoted()),
                            Some(mode),
                            "{}: {rel} (held: {held:?})",
                            step.id
                        );
                    }
                    checked.push((step.id.clone(), want));
                    continue;
                }
                // DETACH … CONCURRENTLY: a reader of the partition (not of the parent) makes
                // its second transaction wait for the partition's lock, with the parent's held.
                let [stmt] = step.effects.statements.as_slice() else { panic!("{}: one statement", step.id) };
                let detach = step.effects.detaches.as_ref().expect("a concurrent detach");
                let reader = db.client().await;
                reader
                    .batch_execute(&format!("BEGIN; SELECT count(*) FROM {}", detach.partition.quoted()))
                    .await
                    .unwrap();
                let runner = db.client().await;
                let runner_pid = pid(&runner).await;
                let stmt = stmt.clone();
                let job = tokio::spawn(async move { runner.batch_execute(&stmt).await });
                let (mut held, mut waits) = (BTreeMap::new(), BTreeMap::new());
                for _ in 0..200 {
                    waits = modes(&c, runner_pid, false).await;
                    if !waits.is_empty() {
                        held = modes(&c, runner_pid, true).await;
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
                reader.batch_execute("COMMIT").await.unwrap();
                job.await.unwrap().unwrap_or_else(|e| panic!("{}: {e:?}", step.id));
                let parent = detach.parent.quoted();
                let partition = detach.partition.quoted();
                for (rel, mode) in &want {
                    let seen =
                        if rel.quoted() == partition { waits.get(&partition) } else { held.get(&parent) };
                    assert_eq!(seen, Some(mode), "{}: {rel} (held {held:?}, waits {waits:?})", step.id);
                }
                checked.push((step.id.clone(), want));
            }
        }
    });
    // An attach with and without a default partition, a plain and a concurrent detach.
    let text: Vec<String> = checked
        .iter()
        .map(|(_, w)| w.iter().map(|(r, m)| format!("{} {r}", m.as_str())).collect::<Vec<_>>().join(", "))
        .collect();
    let expect = [
        "SHARE UPDATE EXCLUSIVE public.events, ACCESS EXCLUSIVE public.events_next, ACCESS EXCLUSIVE public.events_default",
        "SHARE UPDATE EXCLUSIVE public.metrics, ACCESS EXCLUSIVE public.metrics_next",
        "ACCESS EXCLUSIVE public.accounts, ACCESS EXCLUSIVE public.accounts_eu",
        "SHARE UPDATE EXCLUSIVE public.sessions, ACCESS EXCLUSIVE public.sessions_1",
    ];
    for e in expect {
        assert!(text.iter().any(|t| t == e), "no step predicted {e}: {text:#?}");
    }
    assert_eq!(text.len(), expect.len(), "{text:#?}");
}

/// A v2 plan (one mode for every relation of a step) still loads as written, its id over its
/// v2 body; a v3 plan names each relation's mode, which an older seqmig refuses by format.
#[test]
fn issue21_v2_plans_still_load_with_one_mode_per_step() {
    let v3 = plan(BEFORE, AFTER, TOML);
    assert_eq!(v3.format, seqmig::plan::PLAN_FORMAT);
    assert!(v3.steps.iter().any(|s| s.effects.lock.as_ref().is_some_and(|l| !l.per_relation.is_empty())));
    let mut v2 = v3.clone();
    v2.format = seqmig::plan::PLAN_FORMAT_V2.into();
    for s in &mut v2.steps {
        if let Some(l) = &mut s.effects.lock {
            l.per_relation.clear();
        }
    }
    let v2 = v2.seal();
    let read = seqmig::plan::Plan::from_json(&v2.to_json_pretty()).unwrap();
    assert_eq!(read.id, v2.id);
    assert!(!read.to_json_pretty().contains("per_relation"));
    let attach = read.steps.iter().find(|s| s.sql.contains("ATTACH PARTITION public.events_next")).unwrap();
    let lock = attach.effects.lock.as_ref().unwrap();
    assert!(lock.each().iter().all(|(_, m)| *m == LockMode::AccessExclusive), "{lock:?}");
}

/// The lock line the partitions page quotes, as the runbook prints it.
#[test]
fn issue21_runbook_names_each_relation_with_its_mode() {
    let hints = seqmig::diff::Hints::from_toml(TOML, "seqmig.toml").unwrap();
    let load = |sql: &str| seqmig::parse::load_str("x.sql", sql).unwrap().schema;
    let renderer = seqmig::render::Renderer::embedded();
    let planned = seqmig::plan::plan(&load(BEFORE), &load(AFTER), &hints, &renderer).unwrap();
    let md = seqmig::runbook::runbook(&planned, &hints.governance, &renderer).unwrap();
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/book/src/partitions.md")).unwrap();
    let quoted =
        page.lines().find(|l| l.starts_with("Lock: SHARE UPDATE EXCLUSIVE on `public.events`")).unwrap();
    let quoted = quoted.trim_end_matches(" …");
    assert!(md.lines().any(|l| l.starts_with(quoted)), "the runbook has no line starting {quoted:?}:\n{md}");
}
