//! Issue 22: the backfill's throttle reacts to the workload's latency. A synthetic competing
//! load (sessions updating single rows of the table being backfilled, so some of them wait
//! for the rows a batch holds) runs next to the backfill on the harness's real PostgreSQL.
//! The backfill measures the load's baseline while it holds, records `workload_latency` on
//! its batch rows with the time it waited, and `status` shows it; without a load it never
//! waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use seqmig::backfill::{self, BackfillOptions, BackfillRequest, NoProgress};
use seqmig::model::{Ident, QualifiedName};
use seqmig::plan::BackfillSpec;

use crate::harness::{TestDb, block_on};

const ROWS: i64 = 300_000;

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

fn spec() -> BackfillSpec {
    BackfillSpec {
        table: QualifiedName::of("public", "t"),
        target_column: Ident::exact("b").unwrap(),
        expr: "a::bigint * 2".into(),
        pending_predicate: "b IS DISTINCT FROM (a::bigint * 2)".into(),
    }
}

fn make_table(db: &TestDb) {
    db.execute(&format!(
        "CREATE TABLE t (id bigint PRIMARY KEY, a int NOT NULL, b bigint, hits int NOT NULL DEFAULT 0);
         INSERT INTO t (id, a) SELECT g, g % 1000 FROM generate_series(1, {ROWS}) g;"
    ));
    db.execute("VACUUM ANALYZE t");
    db.execute(seqmig::ledger::BACKFILLS_SQL);
}

/// The production defaults (the workload-latency signal is on by default), with batches kept
/// small enough that the backfill runs for a few seconds.
fn options() -> BackfillOptions {
    let mut o = BackfillOptions::default();
    o.sizing.target = Duration::from_millis(100);
    o.sizing.max_rows = 2_000;
    assert_eq!(o.throttle.workload_latency, Some(1.5), "the default factor");
    o
}

async fn reasons(c: &tokio_postgres::Client, step: &str) -> Vec<(String, i64, f64)> {
    c.query(
        "SELECT throttle_reason, count(*), coalesce(sum(throttle_ms), 0)::float8
           FROM seqmig.backfill_batches WHERE step_id = $1 AND throttle_reason IS NOT NULL
          GROUP BY throttle_reason ORDER BY 1",
        &[&step],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

#[test]
fn issue22_throttle_1_a_competing_load_makes_the_backfill_wait_for_workload_latency() {
    let db = TestDb::new();
    make_table(&db);
    block_on(async {
        let c = connect(&db.url).await;
        // Four sessions update random rows of the table in a loop: the rows a batch holds
        // make some of them wait, so their transactions take longer while batches run.
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..4i64 {
            let client = connect(&db.url).await;
            let stop = stop.clone();
            writers.push(tokio::spawn(async move {
                let update = client.prepare("UPDATE t SET hits = hits + 1 WHERE id = $1").await.unwrap();
                let mut n = 0u64;
                let mut id = 1 + w * 7919;
                while !stop.load(Ordering::Relaxed) {
                    id = (id * 48271 + 11) % ROWS + 1;
                    client.execute(&update, &[&id]).await.unwrap();
                    n += 1;
                }
                n
            }));
        }
        // Let the load run before the backfill starts, as an application's does.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let url = db.url.clone();
        let run = tokio::spawn(async move {
            let mut client = connect(&url).await;
            let spec = spec();
            let req = BackfillRequest { plan_id: "p", step_id: "loaded", spec: &spec };
            backfill::run(&mut client, &req, &options(), &mut NoProgress).await
        });
        // `status` in another session says why the backfill waits.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = None;
        while !run.is_finished() && Instant::now() < deadline {
            let st = backfill::status(&c).await.unwrap();
            if let Some(t) =
                st.iter().find(|s| s.progress.step_id == "loaded").and_then(|s| s.progress.throttle.clone())
                && t.contains("workload_latency")
            {
                seen = Some(t);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let outcome = run.await.unwrap().expect("the backfill finishes under the load");
        stop.store(true, Ordering::Relaxed);
        let mut done = 0;
        for w in writers {
            done += w.await.unwrap();
        }
        assert!(done > 1_000, "the load ran ({done} updates)");
        assert_eq!(outcome.rows_updated, ROWS as u64);
        assert_eq!(outcome.verify_mismatches, 0);
        assert_eq!(seen.as_deref().map(|t| t.contains("workload_latency")), Some(true), "status: {seen:?}");
        let r = reasons(&c, "loaded").await;
        let (_, batches, waited_ms) = r
            .iter()
            .find(|(reason, _, _)| reason.split(',').any(|x| x == "workload_latency"))
            .unwrap_or_else(|| panic!("no batch row records workload_latency: {r:?}"));
        assert!(*batches >= 1 && *waited_ms > 0.0, "{r:?}");
        let pending: i64 = c
            .query_one("SELECT count(*) FROM t WHERE b IS DISTINCT FROM a::bigint * 2", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(pending, 0);
    });
}

#[test]
fn issue22_throttle_2_without_a_load_the_backfill_never_waits_for_the_workload() {
    let db = TestDb::new();
    make_table(&db);
    block_on(async {
        let c = connect(&db.url).await;
        let mut client = connect(&db.url).await;
        let spec = spec();
        let req = BackfillRequest { plan_id: "p", step_id: "quiet", spec: &spec };
        let outcome = backfill::run(&mut client, &req, &options(), &mut NoProgress).await.unwrap();
        assert_eq!(outcome.rows_updated, ROWS as u64);
        assert!(outcome.batches_run > 3, "several samples were taken ({} batches)", outcome.batches_run);
        assert_eq!(reasons(&c, "quiet").await, vec![], "no throttle reason at all");
    });
}

#[test]
fn issue22_throttle_3_workload_latency_off_ignores_the_load() {
    let db = TestDb::new();
    make_table(&db);
    block_on(async {
        let c = connect(&db.url).await;
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let client = connect(&db.url).await;
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut id = 1i64;
                while !stop.load(Ordering::Relaxed) {
                    id = (id * 48271 + 11) % ROWS + 1;
                    client.execute("UPDATE t SET hits = hits + 1 WHERE id = $1", &[&id]).await.unwrap();
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut o = options();
        o.throttle.workload_latency = None;
        let mut client = connect(&db.url).await;
        let spec = spec();
        let req = BackfillRequest { plan_id: "p", step_id: "off", spec: &spec };
        let outcome = backfill::run(&mut client, &req, &o, &mut NoProgress).await.unwrap();
        stop.store(true, Ordering::Relaxed);
        writer.await.unwrap();
        assert_eq!(outcome.rows_updated, ROWS as u64);
        let r = reasons(&c, "off").await;
        assert!(r.iter().all(|(reason, _, _)| !reason.contains("workload_latency")), "{r:?}");
    });
}
