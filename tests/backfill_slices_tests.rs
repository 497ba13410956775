//! Issue 22 (task: `--jobs N` on a table that is not partitioned): the table is split into N
//! slices of its unique key, one worker per slice, against real PostgreSQL: SIGKILL mid-run
//! and an exact resume of every slice, a composite key with the planner's dual-write trigger
//! and writers running, the operator's pause holding every slice, `status` during and after,
//! and a table without a key refused.

use std::time::{Duration, Instant};

use seqmig::backfill::{self, BackfillOptions, BackfillRequest, NoProgress, ThrottleOptions};
use seqmig::db::ConnectOptions;
use seqmig::plan::{BackfillSpec, Phase};

use crate::harness::{TestDb, block_on};

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

async fn scalar(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

fn seqmig(args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_seqmig"));
    c.args(args);
    c
}

/// Each slice's batches, in order: (from_key, to_key, rows).
async fn batches(c: &tokio_postgres::Client, step: &str) -> Vec<(Option<String>, Option<String>, i64)> {
    c.query(
        "SELECT from_key::text, to_key::text, rows FROM seqmig.backfill_batches WHERE step_id = $1 ORDER BY batch_no",
        &[&step],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// The slices' bounds as the step's ledger row keeps them (`[["10001"]]`).
async fn stored_bounds(c: &tokio_postgres::Client, step: &str) -> Vec<Vec<String>> {
    let j: String = c
        .query_one("SELECT cursor_key::text FROM seqmig.backfills WHERE step_id = $1", &[&step])
        .await
        .unwrap()
        .get(0);
    serde_json::from_str(&j).unwrap()
}

/// Slice `i` of `bounds.len() + 1` starts after the bound before it and ends at its own (the
/// last runs to the end), its batches chain without gap or overlap; all of them together
/// wrote `rows` rows.
async fn assert_each_slice_walked_once(c: &tokio_postgres::Client, step: &str, rows: i64) {
    let bounds = stored_bounds(c, step).await;
    let n = bounds.len() + 1;
    let text = |b: &Vec<String>| serde_json::to_string(b).unwrap().replace(',', ", ");
    let mut written = 0;
    for i in 0..n {
        let own = format!("{step}@slice{}of{n}", i + 1);
        let b = batches(c, &own).await;
        assert!(!b.is_empty(), "{own}: no batches");
        assert_eq!(b[0].0, i.checked_sub(1).map(|j| text(&bounds[j])), "{own} starts after its lower bound");
        assert_eq!(
            b.last().unwrap().1,
            bounds.get(i).map(text),
            "{own} ends at its bound (the last: the end)"
        );
        for w in b.windows(2) {
            assert_eq!(w[0].1, w[1].0, "{own}: gap or overlap between batches");
        }
        written += b.iter().map(|x| x.2).sum::<i64>();
    }
    assert_eq!(written, rows, "every row written exactly once over all slices");
}

#[test]
fn issue22_slices_1_jobs_2_resumes_every_slice_exactly_after_sigkill() {
    let db = TestDb::new();
    db.execute(seqmig::ledger::BACKFILLS_SQL);
    db.execute(
        "CREATE TABLE items (id bigint PRIMARY KEY, price int NOT NULL, note text NOT NULL, cents bigint);
         INSERT INTO items (id, price, note) SELECT g, g % 1000, 'n' || g FROM generate_series(1, 20000) g;
         ANALYZE items;
         -- Slow enough that the process is killed in the middle of the walk.
         CREATE FUNCTION slow_cents(v int) RETURNS bigint LANGUAGE plpgsql AS $$
         DECLARE x bigint := 0;
         BEGIN FOR i IN 1..2000 LOOP x := x + 1; END LOOP; RETURN v::bigint * 100 + x - 2000; END $$;",
    );
    let run = |db: &TestDb| {
        seqmig(&["backfill", "run", "--database-url", &db.url, "--plan-id", "p1", "--step-id", "s3"])
            .args(["--table", "items", "--column", "cents", "--expr", "slow_cents(price)", "--jobs", "2"])
            .args([
                "--target-ms",
                "50",
                "--initial-batch",
                "200",
                "--max-batch",
                "1000",
                "--unthrottled",
                "--json",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start seqmig backfill run --jobs 2")
    };
    let status = |db: &TestDb| {
        let out = seqmig(&["backfill", "status", "--database-url", &db.url]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut child = run(&db);
    let (bounds, during) = block_on(async {
        let c = connect(&db.url).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        // Both slices in flight at once, each with batches committed, and the step's sums
        // caught up (the run writes them once a second).
        loop {
            let busy = scalar(
                &c,
                "SELECT count(*) FROM seqmig.backfills WHERE step_id LIKE 's3@slice%' AND rows_done > 0 AND state = 'running'",
            )
            .await;
            let sums = scalar(
                &c,
                "SELECT coalesce((SELECT rows_done FROM seqmig.backfills WHERE step_id = 's3'), 0)::bigint",
            )
            .await;
            if busy >= 2 && sums >= 3_000 {
                break;
            }
            assert!(Instant::now() < deadline, "two slices did not run at once ({busy} busy, {sums} rows)");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (stored_bounds(&c, "s3").await, status(&db))
    });
    // The key split in two at its middle, kept in the step's row.
    assert_eq!(bounds, vec![vec!["10000".to_string()]]);
    // During: the step with the slices' sums, and each slice.
    assert!(during.contains("p1 s3 public.items running:"), "{during}");
    assert!(during.contains("p1 s3@slice1of2 public.items running:"), "{during}");
    assert!(during.contains("p1 s3@slice2of2 public.items running:"), "{during}");
    child.kill().expect("SIGKILL the backfill");
    assert!(!child.wait().unwrap().success(), "killed, not finished");
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    // Progress per slice and for the whole table.
    let tables: std::collections::BTreeSet<String> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["table"].as_str().map(str::to_string))
        .collect();
    assert!(tables.contains("public.items"), "total progress: {tables:?}");
    assert!(tables.contains("public.items (slice 1 of 2)"), "{tables:?}");
    assert!(tables.contains("public.items (slice 2 of 2)"), "{tables:?}");

    let before = block_on(async {
        let c = connect(&db.url).await;
        let before = scalar(
            &c,
            "SELECT coalesce(sum(rows_done), 0)::bigint FROM seqmig.backfills WHERE step_id LIKE 's3@%'",
        )
        .await;
        assert!(before < 20_000, "killed mid-run, {before} rows done");
        // What the kill interrupted rolled back with its ledger rows: data and ledger agree.
        assert_eq!(scalar(&c, "SELECT count(*) FROM items WHERE cents IS NOT NULL").await, before);
        before
    });

    let resumed = run(&db).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(resumed.status.success(), "{stdout}{}", String::from_utf8_lossy(&resumed.stderr));
    assert!(stdout.contains(&format!("{} rows written", 20_000 - before)), "only what was left: {stdout}");
    assert!(stdout.contains("  slice 1 of 2:"), "{stdout}");
    assert!(stdout.contains("  slice 2 of 2:"), "{stdout}");
    block_on(async {
        let c = connect(&db.url).await;
        // The resumed run used the bounds of the first.
        assert_eq!(stored_bounds(&c, "s3").await, bounds);
        assert_each_slice_walked_once(&c, "s3", 20_000).await;
        // The mapping holds on every row, and the step's own row sums its slices for the gate.
        assert_eq!(
            scalar(&c, "SELECT count(*) FROM items WHERE cents IS DISTINCT FROM price::bigint * 100").await,
            0
        );
        let row = c
            .query_one(
                "SELECT rows_done, state, verify_mismatches FROM seqmig.backfills WHERE step_id = 's3'",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 20_000);
        assert_eq!(row.get::<_, String>(1), "done");
        assert_eq!(row.get::<_, Option<i64>>(2), Some(0));
    });
    let after = status(&db);
    assert!(after.contains("p1 s3 public.items done: 20000/~20000 rows scanned, 20000 written"), "{after}");
    assert!(after.contains("p1 s3@slice1of2 public.items done:"), "{after}");
    assert!(after.contains("p1 s3@slice2of2 public.items done:"), "{after}");

    // Run again with one worker: the ledger's layout wins, each slice is counted again, not walked.
    let again = seqmig(&["backfill", "run", "--database-url", &db.url, "--plan-id", "p1", "--step-id", "s3"])
        .args(["--table", "items", "--column", "cents", "--expr", "slow_cents(price)", "--unthrottled"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{stdout}{}", String::from_utf8_lossy(&again.stderr));
    assert!(
        stdout.contains("0 rows written in 0 batches this run (20000 in total), 0 mismatching rows"),
        "{stdout}"
    );
}

/// The planner's own expand and dual_write SQL for `price int` → `cents bigint` on a table
/// keyed by `(tenant, id)`, and the plan's backfill spec.
fn planned_dual_write() -> (Vec<String>, BackfillSpec) {
    let plan = items_plan();
    let mut sql = Vec::new();
    let mut spec = None;
    for phase in &plan.phases {
        for id in &phase.steps {
            let step = plan.steps.iter().find(|s| &s.id == id).unwrap();
            if step.phase == Phase::Expand || step.phase == Phase::DualWrite {
                sql.push(step.sql.clone());
            }
            if step.backfill.is_some() && spec.is_none() {
                spec = step.backfill.clone();
            }
        }
    }
    (sql, spec.expect("the plan backfills cents"))
}

/// The plan: `price int` → `cents bigint` on `public.items` keyed by `(tenant, id)`.
fn items_plan() -> seqmig::plan::Plan {
    let load = |name: &str, cols: &str| {
        seqmig::parse::load_str(
            name,
            &format!("CREATE TABLE public.items (tenant int NOT NULL, id bigint NOT NULL, {cols}, PRIMARY KEY (tenant, id));"),
        )
        .expect("schema")
        .schema
    };
    let before = load("before.sql", "price int NOT NULL, note text NOT NULL");
    let after = load("after.sql", "cents bigint NOT NULL, note text NOT NULL");
    let hints = seqmig::diff::Hints::from_toml(
        "[[transform]]\ntable = \"public.items\"\ncolumn = \"cents\"\nfrom = \"price\"\n\
         up = \"price::bigint * 100\"\ndown = \"(cents / 100)::int\"\n",
        "test",
    )
    .expect("hints");
    seqmig::plan::plan(&before, &after, &hints, &seqmig::render::Renderer::embedded()).expect("plan").plan
}

fn small_batches() -> BackfillOptions {
    let mut o = BackfillOptions::default();
    o.sizing.target = Duration::from_millis(20);
    o.sizing.initial_rows = 200;
    o.sizing.max_rows = 1_000;
    o.throttle = ThrottleOptions::unthrottled();
    o.throttle.sample_every = Duration::from_millis(100);
    o
}

#[test]
fn issue22_slices_2_composite_key_planned_trigger_writers_running_and_a_pause_holding_every_slice() {
    let db = TestDb::new();
    db.execute(seqmig::ledger::BACKFILLS_SQL);
    db.execute(
        "CREATE TABLE items (tenant int NOT NULL, id bigint NOT NULL, price int NOT NULL, note text NOT NULL,
                             PRIMARY KEY (tenant, id));
         INSERT INTO items (tenant, id, price, note)
              SELECT g % 4, g, g % 1000, 'n' || g FROM generate_series(1, 12000) g;
         ANALYZE items;",
    );
    let (planned, spec) = planned_dual_write();
    block_on(async {
        let c = connect(&db.url).await;
        seqmig::ledger::ensure(&c).await.expect("the executor's ledger (flags the trigger reads)");
        for sql in &planned {
            c.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        c.batch_execute(
            "INSERT INTO seqmig.backfill_control (plan_id, step_id, paused) VALUES ('p2', 's4', true)",
        )
        .await
        .unwrap();
        let url = db.url.clone();
        let run = tokio::spawn(async move {
            let mut client = connect(&url).await;
            let conn = ConnectOptions::from_url(&url).unwrap();
            let req = BackfillRequest { plan_id: "p2", step_id: "s4", spec: &spec };
            backfill::run_table(&mut client, &conn, &req, &small_batches(), 2, &mut NoProgress).await
        });
        // Writers all along, in every slice and past the last bound (tenant 9 is new):
        // inserts, updates of the old column and of the key, deletes.
        let writer_url = db.url.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer_stop = stop.clone();
        let writer = tokio::spawn(async move {
            let w = connect(&writer_url).await;
            let mut i = 0i64;
            while !writer_stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let id = (i * 7919) % 12_000 + 1;
                w.batch_execute(&format!(
                    "UPDATE items SET price = price + 1 WHERE tenant = {t} AND id = {id};
                     INSERT INTO items (tenant, id, price, note) VALUES ({new_t}, {new_id}, {p}, 'new');
                     UPDATE items SET id = id + 1000000 WHERE tenant = {t2} AND id = {id2};
                     DELETE FROM items WHERE tenant = {t3} AND id = {id3}",
                    t = id % 4,
                    new_t = if i % 2 == 0 { 9 } else { i % 4 },
                    new_id = 100_000 + i,
                    p = i % 1000,
                    t2 = (id + 1) % 4,
                    id2 = id + 1,
                    t3 = ((i * 104_729) % 12_000 + 1) % 4,
                    id3 = (i * 104_729) % 12_000 + 1,
                ))
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let held = scalar(
                &c,
                "SELECT count(*) FROM seqmig.backfills WHERE step_id LIKE 's4@slice%' AND throttle = 'paused'",
            )
            .await;
            if held >= 2 {
                break;
            }
            assert!(Instant::now() < deadline, "the pause on the run's step did not hold the slices");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        assert_eq!(
            scalar(
                &c,
                "SELECT coalesce(sum(rows_done), 0)::bigint FROM seqmig.backfills WHERE step_id LIKE 's4@%'"
            )
            .await,
            0,
            "no slice moves while the run's step is paused"
        );
        // The composite key's bound, as text forms of both columns.
        let bounds: String = c
            .query_one("SELECT cursor_key::text FROM seqmig.backfills WHERE step_id = 's4'", &[])
            .await
            .unwrap()
            .get(0);
        let bounds: Vec<Vec<String>> = serde_json::from_str(&bounds).unwrap();
        assert_eq!(bounds.len(), 1);
        assert_eq!(bounds[0].len(), 2, "(tenant, id): {bounds:?}");
        let status = backfill::status(&c).await.unwrap();
        let step = status.iter().find(|s| s.progress.step_id == "s4").expect("the step's row");
        assert_eq!(step.progress.throttle.as_deref(), Some("paused"), "status says why the step waits");
        c.batch_execute("UPDATE seqmig.backfill_control SET paused = false WHERE step_id = 's4'")
            .await
            .unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .expect("backfill ends")
            .unwrap()
            .unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.await.unwrap();
        let labels: Vec<&str> = outcome.partitions.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["slice 1 of 2", "slice 2 of 2"]);
        assert_eq!(outcome.total.key_columns, ["(slices)"]);
        assert_eq!(outcome.total.verify_mismatches, 0);
        // The mapping holds on every row: the backfilled ones, the ones the writers inserted
        // past the last bound and the ones they updated or moved.
        assert_eq!(
            scalar(&c, "SELECT count(*) FROM items WHERE cents IS DISTINCT FROM price::bigint * 100").await,
            0
        );
        assert!(scalar(&c, "SELECT count(*) FROM items WHERE tenant = 9").await > 0);
        let all = backfill::status(&c).await.unwrap();
        let step = all.iter().find(|s| s.progress.step_id == "s4").expect("the step's row");
        assert_eq!(step.progress.state, "done");
        assert_eq!(step.progress.rows_done, outcome.total.rows_done);
        assert_eq!(step.progress.verify_mismatches, Some(0));
        assert_eq!(all.iter().filter(|s| s.progress.step_id.starts_with("s4@slice")).count(), 2);
    });
}

#[test]
fn issue22_slices_3_a_table_without_a_key_is_refused_with_jobs_2() {
    let db = TestDb::new();
    db.execute(seqmig::ledger::BACKFILLS_SQL);
    db.execute(
        "CREATE TABLE loose (price int NOT NULL, cents bigint);
         INSERT INTO loose (price) SELECT g FROM generate_series(1, 100) g;",
    );
    let out = seqmig(&["backfill", "run", "--database-url", &db.url, "--plan-id", "p3", "--step-id", "s1"])
        .args(["--table", "loose", "--column", "cents", "--expr", "price::bigint * 100", "--jobs", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("public.loose has no unique NOT NULL key to split into slices"),
        "names the table: {stderr}"
    );
    // With one worker it walks by page as before.
    let out = seqmig(&["backfill", "run", "--database-url", &db.url, "--plan-id", "p3", "--step-id", "s2"])
        .args(["--table", "loose", "--column", "cents", "--expr", "price::bigint * 100"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn issue22_slices_4_apply_phase_backfill_jobs_2_walks_the_step_in_slices() {
    let db = TestDb::new();
    db.execute(
        "CREATE TABLE items (tenant int NOT NULL, id bigint NOT NULL, price int NOT NULL, note text NOT NULL,
                             PRIMARY KEY (tenant, id));
         INSERT INTO items (tenant, id, price, note)
              SELECT g % 4, g, g % 1000, 'n' || g FROM generate_series(1, 5000) g;
         ANALYZE items;",
    );
    let plan = items_plan();
    let (_dir, file) = crate::harness::cli::write_plan(&plan);
    for phase in ["expand", "dual_write"] {
        let out = crate::harness::cli::seqmig(&["apply", "--plan", &file, "--phase", phase], &db);
        assert!(out.status.success(), "{phase}: {}", crate::harness::cli::text(&out));
    }
    let out =
        crate::harness::cli::seqmig(&["apply", "--plan", &file, "--phase", "backfill", "--jobs", "2"], &db);
    assert!(out.status.success(), "{}", crate::harness::cli::text(&out));
    let step = plan.steps.iter().find(|s| s.backfill.is_some()).unwrap().id.clone();
    block_on(async {
        let c = connect(&db.url).await;
        let slices = scalar(
            &c,
            &format!("SELECT count(*) FROM seqmig.backfills WHERE step_id LIKE '{step}@slice%of2' AND state = 'done'"),
        )
        .await;
        assert_eq!(slices, 2, "two slices under the plan's step");
        let row = c
            .query_one(
                "SELECT key_columns, rows_done, state, verify_mismatches FROM seqmig.backfills WHERE step_id = $1",
                &[&step],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, Vec<String>>(0), ["(slices)"]);
        assert_eq!(row.get::<_, i64>(1), 5000);
        assert_eq!(row.get::<_, String>(2), "done");
        assert_eq!(row.get::<_, Option<i64>>(3), Some(0));
        assert_eq!(
            scalar(&c, "SELECT count(*) FROM items WHERE cents IS DISTINCT FROM price::bigint * 100").await,
            0
        );
    });
}
