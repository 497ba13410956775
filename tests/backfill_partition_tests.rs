//! Issue 21: the backfill of a partitioned table, partition by partition, with `--jobs N`
//! workers on different partitions, against real PostgreSQL: SIGKILL mid-run and an exact
//! resume, the planner's dual-write trigger on the parent with writers running, and the
//! operator's controls on the plan's step holding every worker.

use std::time::{Duration, Instant};

use seqmig::backfill::{self, BackfillOptions, BackfillRequest, NoProgress, ThrottleOptions};
use seqmig::db::ConnectOptions;
use seqmig::model::QualifiedName;
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

/// RANGE on id in four partitions, the last one HASH-partitioned again in two: five leaves,
/// two levels. `price` is the old column; rows are loaded before the migration starts.
fn partitioned_events(rows: i64) -> String {
    let q = rows / 4;
    format!(
        "CREATE TABLE events (id bigint NOT NULL, price int NOT NULL, note text NOT NULL, PRIMARY KEY (id))
           PARTITION BY RANGE (id);
         CREATE TABLE events_p1 PARTITION OF events FOR VALUES FROM (MINVALUE) TO ({a});
         CREATE TABLE events_p2 PARTITION OF events FOR VALUES FROM ({a}) TO ({b});
         CREATE TABLE events_p3 PARTITION OF events FOR VALUES FROM ({b}) TO ({c});
         CREATE TABLE events_p4 PARTITION OF events FOR VALUES FROM ({c}) TO (MAXVALUE) PARTITION BY HASH (id);
         CREATE TABLE events_p4_h0 PARTITION OF events_p4 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
         CREATE TABLE events_p4_h1 PARTITION OF events_p4 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
         INSERT INTO events (id, price, note) SELECT g, g % 1000, 'n' || g FROM generate_series(1, {rows}) g;
         ANALYZE events;",
        a = q + 1,
        b = 2 * q + 1,
        c = 3 * q + 1,
    )
}

/// The planner's own expand and dual_write SQL for `price int` → `cents bigint`, applied to
/// the partitioned parent as the plan's steps would be (the trigger on the parent is cloned
/// to every partition by PostgreSQL), and the plan's backfill spec.
fn planned_dual_write() -> (Vec<String>, BackfillSpec) {
    let load = |name: &str, cols: &str| {
        seqmig::parse::load_str(name, &format!("CREATE TABLE public.events (id bigint PRIMARY KEY, {cols});"))
            .expect("schema")
            .schema
    };
    let before = load("before.sql", "price int NOT NULL, note text NOT NULL");
    let after = load("after.sql", "cents bigint NOT NULL, note text NOT NULL");
    let hints = seqmig::diff::Hints::from_toml(
        "[[transform]]\ntable = \"public.events\"\ncolumn = \"cents\"\nfrom = \"price\"\n\
         up = \"price::bigint * 100\"\ndown = \"(cents / 100)::int\"\n",
        "test",
    )
    .expect("hints");
    let plan = seqmig::plan::plan(&before, &after, &hints, &seqmig::render::Renderer::embedded())
        .expect("plan")
        .plan;
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

fn small_batches() -> BackfillOptions {
    let mut o = BackfillOptions::default();
    o.sizing.target = Duration::from_millis(20);
    o.sizing.initial_rows = 200;
    o.sizing.max_rows = 1_000;
    o.throttle = ThrottleOptions::unthrottled();
    o.throttle.sample_every = Duration::from_millis(100);
    o
}

const LEAVES: [&str; 5] = ["events_p1", "events_p2", "events_p3", "events_p4_h0", "events_p4_h1"];

/// Every partition's batches cover its keys once, in order, and wrote `rows` rows in all.
async fn assert_each_partition_walked_once(c: &tokio_postgres::Client, step: &str, rows: i64) {
    let mut written = 0;
    for leaf in LEAVES {
        let own = format!("{step}@public.{leaf}");
        let b: Vec<(Option<String>, Option<String>, i64)> = c
            .query(
                "SELECT from_key::text, to_key::text, rows FROM seqmig.backfill_batches \
                  WHERE step_id = $1 ORDER BY batch_no",
                &[&own],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert!(!b.is_empty(), "{own}: no batches");
        assert_eq!(b[0].0, None, "{own} starts at its first key");
        assert_eq!(b.last().unwrap().1, None, "{own} runs to its end");
        for w in b.windows(2) {
            assert_eq!(w[0].1, w[1].0, "{own}: gap or overlap between batches");
        }
        written += b.iter().map(|x| x.2).sum::<i64>();
    }
    assert_eq!(written, rows, "every row written exactly once over all partitions");
}

#[test]
fn issue21_backfill_1_jobs_2_resumes_every_partition_exactly_after_sigkill() {
    let db = TestDb::new();
    db.execute(seqmig::ledger::BACKFILLS_SQL);
    db.execute(&partitioned_events(20_000));
    db.execute(
        "ALTER TABLE events ADD COLUMN cents bigint;
         -- Slow enough that the process is killed in the middle of the walk.
         CREATE FUNCTION slow_cents(v int) RETURNS bigint LANGUAGE plpgsql AS $$
         DECLARE x bigint := 0;
         BEGIN FOR i IN 1..2000 LOOP x := x + 1; END LOOP; RETURN v::bigint * 100 + x - 2000; END $$;",
    );
    let run = |db: &TestDb| {
        std::process::Command::new(env!("CARGO_BIN_EXE_seqmig"))
            .args(["backfill", "run", "--database-url", &db.url, "--plan-id", "p1", "--step-id", "s3"])
            .args(["--table", "events", "--column", "cents", "--expr", "slow_cents(price)", "--jobs", "2"])
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
    let mut child = run(&db);
    block_on(async {
        let c = connect(&db.url).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        // Two partitions in flight at once, each with batches committed.
        loop {
            let busy = scalar(
                &c,
                "SELECT count(*) FROM seqmig.backfills WHERE step_id LIKE 's3@%' AND rows_done > 0 AND state = 'running'",
            )
            .await;
            let done = scalar(
                &c,
                "SELECT coalesce(sum(rows_done), 0)::bigint FROM seqmig.backfills WHERE step_id LIKE 's3@%'",
            )
            .await;
            if busy >= 2 && done >= 3_000 {
                break;
            }
            assert!(Instant::now() < deadline, "two workers did not run at once ({busy} busy, {done} rows)");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    child.kill().expect("SIGKILL the backfill");
    assert!(!child.wait().unwrap().success(), "killed, not finished");
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    // Progress per partition and for the whole table.
    let tables: std::collections::BTreeSet<String> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["table"].as_str().map(str::to_string))
        .collect();
    assert!(tables.contains("public.events"), "total progress: {tables:?}");
    assert!(tables.iter().filter(|t| t.starts_with("public.events_p")).count() >= 2, "{tables:?}");

    let before = block_on(async {
        let c = connect(&db.url).await;
        let before = scalar(
            &c,
            "SELECT coalesce(sum(rows_done), 0)::bigint FROM seqmig.backfills WHERE step_id LIKE 's3@%'",
        )
        .await;
        assert!(before < 20_000, "killed mid-run, {before} rows done");
        // What the kill interrupted rolled back with its ledger rows: data and ledger agree.
        assert_eq!(scalar(&c, "SELECT count(*) FROM events WHERE cents IS NOT NULL").await, before);
        before
    });

    let resumed = run(&db).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(resumed.status.success(), "{stdout}{}", String::from_utf8_lossy(&resumed.stderr));
    assert!(stdout.contains(&format!("{} rows written", 20_000 - before)), "only what was left: {stdout}");
    for leaf in LEAVES {
        assert!(stdout.contains(&format!("partition public.{leaf}:")), "{stdout}");
    }
    block_on(async {
        let c = connect(&db.url).await;
        assert_each_partition_walked_once(&c, "s3", 20_000).await;
        // The mapping holds on every row, and the step's own row sums its partitions for the gate.
        assert_eq!(
            scalar(&c, "SELECT count(*) FROM events WHERE cents IS DISTINCT FROM price::bigint * 100").await,
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
}

#[test]
fn issue21_backfill_2_planned_trigger_on_the_parent_writers_running_and_a_pause_holding_every_worker() {
    let db = TestDb::new();
    db.execute(seqmig::ledger::BACKFILLS_SQL);
    db.execute(&partitioned_events(12_000));
    let (planned, spec) = planned_dual_write();
    block_on(async {
        let c = connect(&db.url).await;
        seqmig::ledger::ensure(&c).await.expect("the executor's ledger (flags the trigger reads)");
        for sql in &planned {
            c.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        // The plan's trigger, cloned by PostgreSQL onto every leaf.
        let cloned = scalar(
            &c,
            "SELECT count(DISTINCT tgrelid) FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
              WHERE NOT t.tgisinternal AND r.relname LIKE 'events_p%' AND r.relkind = 'r'",
        )
        .await;
        assert_eq!(cloned, 5);
        // The operator paused the plan's step before the run: no worker may move.
        c.batch_execute(
            "INSERT INTO seqmig.backfill_control (plan_id, step_id, paused) VALUES ('p2', 's4', true)",
        )
        .await
        .unwrap();

        let url = db.url.clone();
        let run = tokio::spawn(async move {
            let client = connect(&url).await;
            let conn = ConnectOptions::from_url(&url).unwrap();
            let req = BackfillRequest { plan_id: "p2", step_id: "s4", spec: &spec };
            backfill::run_partitioned(&client, &conn, &req, &small_batches(), 2, &mut NoProgress).await
        });
        // Writers on every partition all along: inserts, updates of the old column, deletes.
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
                    "UPDATE events SET price = price + 1 WHERE id = {id};
                     INSERT INTO events (id, price, note) VALUES ({}, {}, 'new');
                     DELETE FROM events WHERE id = {}",
                    100_000 + i,
                    i % 1000,
                    (i * 104_729) % 12_000 + 1
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
                "SELECT count(*) FROM seqmig.backfills WHERE step_id LIKE 's4@%' AND throttle = 'paused'",
            )
            .await;
            if held >= 2 {
                break;
            }
            assert!(Instant::now() < deadline, "the pause on the run's step did not hold the workers");
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
            "no partition moves while the run's step is paused"
        );
        // The step's own row says why, for `seqmig status`.
        let shown: Option<String> = c
            .query_one("SELECT throttle FROM seqmig.backfills WHERE step_id = 's4'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(shown.as_deref(), Some("paused"));
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
        assert_eq!(outcome.partitions.len(), 5);
        assert_eq!(outcome.total.verify_mismatches, 0);
        // The mapping holds on every row, the backfilled ones and the ones the writers touched.
        assert_eq!(
            scalar(&c, "SELECT count(*) FROM events WHERE cents IS DISTINCT FROM price::bigint * 100").await,
            0
        );
        let all = backfill::status(&c).await.unwrap();
        let parent = all.iter().find(|s| s.progress.step_id == "s4").expect("the step's row");
        assert_eq!(parent.progress.state, "done");
        assert_eq!(parent.progress.rows_done, outcome.total.rows_done);
        assert_eq!(all.iter().filter(|s| s.progress.step_id.starts_with("s4@")).count(), 5);
    });
}

/// The partition's quoted name is part of its ledger step id.
#[test]
fn issue21_backfill_3_partition_step_ids_name_the_partition() {
    let p = QualifiedName::of("public", "Events 2024");
    assert_eq!(backfill::partition_step_id("s5", &p), "s5@public.\"Events 2024\"");
}
