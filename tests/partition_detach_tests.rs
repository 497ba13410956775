//! Issue 21: a `DETACH PARTITION … CONCURRENTLY` interrupted between its two transactions
//! leaves the partition "pending detach", where PostgreSQL refuses the same statement again
//! (55000, "already pending detach") and only `… FINALIZE` completes it. `status` explains
//! the state, `apply` finishes the detach, `rollback` finishes it and attaches the partition
//! again; with a writer running.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use seqmig::plan::Phase;

use crate::exec_examples_tests::{assert_same, normalize};
use crate::harness::cli::{command, text, write_plan};
use crate::harness::{TestDb, block_on};
use crate::partition2_tests::{live, plan as plan_of, writer_of};

const BEFORE: &str = "
CREATE TABLE public.events (id bigint NOT NULL, kind text NOT NULL, CONSTRAINT events_pkey PRIMARY KEY (id))
    PARTITION BY RANGE (id);
CREATE TABLE public.events_old PARTITION OF public.events FOR VALUES FROM (MINVALUE) TO (1000);
CREATE TABLE public.events_now PARTITION OF public.events FOR VALUES FROM (1000) TO (MAXVALUE);
";

const TOML: &str =
    "[plan]\nauthoritative_partitions = [\"public.events\"]\nallow_one_way = [\"public.events_old\"]\n";

fn after() -> String {
    BEFORE.lines().filter(|l| !l.contains("events_old")).collect::<Vec<_>>().join("\n")
}

fn pending(db: &TestDb) -> Option<bool> {
    block_on(async {
        db.client()
            .await
            .query_opt(
                "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = to_regclass('public.events_old')",
                &[],
            )
            .await
            .unwrap()
            .map(|r| r.get(0))
    })
}

/// Runs `apply --phase switch` while an old snapshot keeps the detach's second transaction
/// waiting, then kills the runner and terminates its backend there: the partition is left
/// pending detach.
fn interrupt_the_detach(db: &TestDb, plan_path: &str) {
    block_on(async {
        let holder = db.client().await;
        holder
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM public.events;")
            .await
            .unwrap();
        let mut child = command(&db.url)
            .args(["apply", "--phase", "switch", "--plan", plan_path])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let watcher = db.client().await;
        let t0 = Instant::now();
        let pid: i32 = loop {
            let row = watcher
                .query_opt(
                    "SELECT a.pid FROM pg_stat_activity a, pg_inherits i
                      WHERE a.query LIKE 'ALTER TABLE public.events DETACH PARTITION%' AND a.state = 'active'
                        AND i.inhrelid = 'public.events_old'::regclass AND i.inhdetachpending",
                    &[],
                )
                .await
                .unwrap();
            if let Some(r) = row {
                break r.get(0);
            }
            if t0.elapsed() > Duration::from_secs(30) {
                child.kill().unwrap();
                panic!(
                    "the detach never reached its second transaction: {}",
                    text(&child.wait_with_output().unwrap())
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        child.kill().unwrap();
        child.wait().unwrap();
        watcher.execute("SELECT pg_terminate_backend($1)", &[&pid]).await.unwrap();
        holder.batch_execute("COMMIT").await.unwrap();
        while watcher
            .query_opt("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&pid])
            .await
            .unwrap()
            .is_some()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

/// The status line `book/src/partitions.md` quotes in a text block.
fn book_line(containing: &str) -> String {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/book/src/partitions.md")).unwrap();
    let blocks = crate::inflight_tests::text_blocks(&page);
    let line = blocks.iter().flat_map(|b| b.lines()).find(|l| l.contains(containing));
    line.unwrap_or_else(|| panic!("partitions.md quotes no line with {containing:?}")).trim().to_string()
}

#[test]
fn issue21_5_an_interrupted_concurrent_detach_is_explained_finished_by_apply_and_undone_by_rollback() {
    let plan = plan_of(BEFORE, &after(), TOML);
    let detach = plan.steps.iter().find(|s| s.effects.detaches.is_some()).expect("a concurrent detach step");
    assert_eq!((detach.phase, detach.transactional), (Phase::Switch, false));
    let (_dir, path) = write_plan(&plan);

    for finish_with in ["apply", "rollback"] {
        let db = TestDb::new();
        db.execute(BEFORE);
        db.execute("INSERT INTO public.events SELECT g, 'k' FROM generate_series(1, 2000) g");
        let before = normalize(live(&db));
        let stop = Arc::new(AtomicBool::new(false));
        let w = writer_of(&db, stop.clone(), |n| {
            format!("INSERT INTO public.events VALUES ({}, 'w')", 100_000 + n)
        });
        for phase in ["expand", "dual_write", "backfill"] {
            let out = command(&db.url).args(["apply", "--phase", phase, "--plan", &path]).output().unwrap();
            assert!(out.status.success(), "{}", text(&out));
        }
        interrupt_the_detach(&db, &path);
        assert_eq!(pending(&db), Some(true), "the partition is left pending detach");

        let status = text(&command(&db.url).args(["status"]).output().unwrap());
        assert!(status.contains(&book_line("is pending detach")), "{status}");
        let out =
            command(&db.url).args([finish_with, "--phase", "switch", "--plan", &path]).output().unwrap();
        let said = text(&out);
        assert!(out.status.success(), "{said}");
        assert!(said.contains("finished the pending detach of public.events_old"), "{said}");
        if finish_with == "apply" {
            assert_eq!(pending(&db), None, "detached");
            // And the way back still works from here.
            let out = command(&db.url).args(["rollback", "--phase", "switch"]).output().unwrap();
            assert!(out.status.success(), "{}", text(&out));
        }
        assert_eq!(pending(&db), Some(false), "attached again");
        let mut back = live(&db);
        back.tables.retain(|n, _| n.schema.as_str() != "seqmig");
        let mut want = before.clone();
        want.tables.retain(|n, _| n.schema.as_str() != "seqmig");
        assert_same(&normalize(back), &want, &format!("interrupted detach, then {finish_with}"));
        let out = command(&db.url).args(["apply", "--phase", "switch", "--plan", &path]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(pending(&db), None, "detached by the re-apply");
        stop.store(true, Ordering::SeqCst);
        assert!(w.join().unwrap() > 0);
    }
}

/// A partition detached while a foreign key references its parent: the plan warns
/// (`detach-referenced-partition`, naming the key), `switch` stops at the detach with
/// PostgreSQL's 23503 while a row points into the partition and changes nothing else, and
/// runs again once that row is gone; with a writer running.
#[test]
fn issue21_6_a_referenced_partition_is_flagged_and_switch_resumes_once_its_referencing_rows_are_gone() {
    let refs =
        "\nCREATE TABLE public.notes (id bigint NOT NULL, event_id bigint REFERENCES public.events (id));";
    let (before, after_refs) = (format!("{BEFORE}{refs}"), format!("{}{refs}", after()));
    let plan = plan_of(&before, &after_refs, TOML);
    assert!(!plan.is_blocked(), "{:#?}", plan.findings);
    let warning = plan
        .findings
        .iter()
        .find(|f| f.code == seqmig::finding::FindingCode::DetachReferencedPartition)
        .unwrap_or_else(|| panic!("no detach-referenced-partition finding: {:#?}", plan.findings));
    assert_eq!(warning.object, "public.events_old");
    assert!(warning.message.contains("notes_event_id_fkey (public.notes)"), "{}", warning.message);
    // Without the key, no warning.
    let plain = plan_of(BEFORE, &after(), TOML);
    assert!(
        !plain.findings.iter().any(|f| f.code == seqmig::finding::FindingCode::DetachReferencedPartition)
    );

    let (_dir, path) = write_plan(&plan);
    let db = TestDb::new();
    db.execute(&before);
    db.execute(
        "INSERT INTO public.events SELECT g, 'k' FROM generate_series(1, 2000) g;
         INSERT INTO public.notes VALUES (1, 5), (2, 1500);",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let w =
        writer_of(&db, stop.clone(), |n| format!("INSERT INTO public.events VALUES ({}, 'w')", 100_000 + n));
    for phase in ["expand", "dual_write", "backfill"] {
        let out = command(&db.url).args(["apply", "--phase", phase, "--plan", &path]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = command(&db.url).args(["apply", "--phase", "switch", "--plan", &path]).output().unwrap();
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("23503") && said.contains("notes_event_id_fkey"), "{said}");
    assert_eq!(pending(&db), Some(false), "still attached, not pending");
    let status = text(&command(&db.url).args(["status"]).output().unwrap());
    assert!(status.contains("failed"), "{status}");

    db.execute("DELETE FROM public.notes WHERE event_id < 1000");
    let out = command(&db.url).args(["apply", "--phase", "switch", "--plan", &path]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(pending(&db), None, "detached");
    stop.store(true, Ordering::SeqCst);
    assert!(w.join().unwrap() > 0);
}

/// A partition the desired schema keeps as a table of its own (it used to be planned as "the
/// schemas are equal"): detached concurrently at switch with its rows, the CHECK the detach
/// leaves dropped at contract, so the end state is the desired schema; rolled back, it is a
/// partition again; with a writer running.
#[test]
fn issue21_8_a_partition_kept_as_a_table_of_its_own_is_detached_and_can_be_attached_again() {
    use crate::exec_examples_tests::{apply, rollback};
    let kept = BEFORE.replace(
        "CREATE TABLE public.events_old PARTITION OF public.events FOR VALUES FROM (MINVALUE) TO (1000);",
        "CREATE TABLE public.events_old (id bigint NOT NULL, kind text NOT NULL,
            CONSTRAINT events_old_pkey PRIMARY KEY (id));",
    );
    let plan = plan_of(BEFORE, &kept, "");
    assert!(!plan.is_blocked(), "{:#?}", plan.findings);
    assert_eq!(plan.changes.iter().map(|c| c.kind.as_str()).collect::<Vec<_>>(), ["detach_partition"]);

    let db = TestDb::new();
    db.execute(BEFORE);
    db.execute("INSERT INTO public.events SELECT g, 'k' FROM generate_series(1, 2000) g");
    let before = normalize(live(&db));
    let stop = Arc::new(AtomicBool::new(false));
    let w =
        writer_of(&db, stop.clone(), |n| format!("INSERT INTO public.events VALUES ({}, 'w')", 100_000 + n));
    for phase in [Phase::Expand, Phase::DualWrite, Phase::Backfill, Phase::Switch] {
        block_on(apply(&db, &plan, phase)).unwrap();
    }
    let count = |sql: &str| -> i64 {
        block_on(async { db.client().await.query_one(sql, &[]).await.unwrap().get(0) })
    };
    assert_eq!(count("SELECT count(*) FROM public.events WHERE id < 1000"), 0, "its rows left the parent");
    assert_eq!(count("SELECT count(*) FROM public.events_old"), 999, "and stayed in the table");
    let strip = |mut s: seqmig::model::Schema| {
        s.tables.retain(|n, _| n.schema.as_str() != "seqmig");
        normalize(s)
    };
    block_on(rollback(&db, Phase::Switch)).unwrap();
    assert_eq!(count("SELECT count(*) FROM public.events WHERE id < 1000"), 999, "attached again");
    assert_same(&strip(live(&db)), &strip(before), "switch rolled back: a partition again");
    for phase in [Phase::Switch, Phase::Contract] {
        block_on(apply(&db, &plan, phase)).unwrap();
    }
    let reference = TestDb::new();
    reference.execute(&kept);
    assert_same(&strip(live(&db)), &strip(live(&reference)), "contracted: the desired schema");
    stop.store(true, Ordering::SeqCst);
    assert!(w.join().unwrap() > 0);
}
