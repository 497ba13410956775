//! Issue 22: the backfill's throttle against a real streaming replica. Each test starts its own
//! primary (so a paused replica never slows the other tests' backfills on the shared cluster)
//! and a standby made with `pg_basebackup -R` on another port, both as user `postgres`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use seqmig::backfill::{self, BackfillOptions, BackfillRequest, NoProgress, ThrottleOptions};
use seqmig::model::{Ident, QualifiedName};
use seqmig::plan::BackfillSpec;
use seqmig::scratch::local::{TempCluster, find_bindir};

use crate::harness::block_on;

static STANDBYS: AtomicUsize = AtomicUsize::new(0);

/// A streaming standby of a [`TempCluster`], stopped (immediately) and removed on drop.
struct Standby {
    dir: PathBuf,
    bindir: PathBuf,
    port: u16,
    running: bool,
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a server binary as `postgres` (the harness's clusters belong to that user).
fn as_postgres(bin: &Path, args: &[&str]) {
    let out = if is_root() {
        Command::new("runuser").args(["-u", "postgres", "--"]).arg(bin).args(args).output()
    } else {
        Command::new(bin).args(args).output()
    }
    .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        bin.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Standby {
    fn start(primary: &TempCluster) -> Standby {
        let bindir = find_bindir().expect("PostgreSQL server binaries");
        let n = STANDBYS.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("seqmig-standby-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let ok = Command::new("chown").args(["-R", "postgres:"]).arg(&dir).status().unwrap();
            assert!(ok.success());
        }
        let data = dir.join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let primary_port = primary.port().to_string();
        as_postgres(
            &bindir.join("pg_basebackup"),
            &["-h", "127.0.0.1", "-p", &primary_port, "-U", "postgres", "-D", &data.to_string_lossy()]
                .into_iter()
                .chain(["-R", "-X", "stream", "-c", "fast"])
                .collect::<Vec<_>>(),
        );
        let conf =
            format!("\nport = {port}\nunix_socket_directories = '{}'\nhot_standby = on\n", dir.display());
        let mut existing = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        existing.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), existing).unwrap();
        let log = dir.join("standby.log");
        let mut standby = Standby { dir, bindir, port, running: false };
        as_postgres(
            &standby.bindir.join("pg_ctl"),
            &["-D", &data.to_string_lossy(), "-l", &log.to_string_lossy(), "-w", "start"],
        );
        standby.running = true;
        standby
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The replica disappears: an immediate shutdown, as a crash or a network cut looks.
    fn stop(&mut self) {
        if self.running {
            self.running = false;
            let data = self.dir.join("data");
            as_postgres(
                &self.bindir.join("pg_ctl"),
                &["-D", &data.to_string_lossy(), "-m", "immediate", "-w", "stop"],
            );
        }
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        if self.running {
            self.running = false;
            let data = self.dir.join("data");
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bindir.join("pg_ctl"))
                .args(["-D", &data.to_string_lossy(), "-m", "immediate", "-w", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn primary() -> TempCluster {
    TempCluster::start(&["max_wal_senders = 4", "wal_sender_timeout = '2s'", "wal_keep_size = '256MB'"])
        .expect("start a primary")
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

fn spec(table: &str) -> BackfillSpec {
    BackfillSpec {
        table: QualifiedName::of("public", table),
        target_column: Ident::exact("b").unwrap(),
        expr: "a::bigint * 2".into(),
        pending_predicate: "b IS DISTINCT FROM (a::bigint * 2)".into(),
    }
}

/// Small batches, sampled often, every signal but replica lag off.
fn options(max_lag: Duration) -> BackfillOptions {
    let mut o = BackfillOptions::default();
    o.sizing.target = Duration::from_millis(20);
    o.sizing.initial_rows = 200;
    o.sizing.max_rows = 500;
    o.throttle = ThrottleOptions::unthrottled();
    o.throttle.max_replica_lag = Some(max_lag);
    o.throttle.sample_every = Duration::from_millis(100);
    o
}

async fn make_table(c: &tokio_postgres::Client, name: &str, rows: i64) {
    c.batch_execute(&format!(
        "CREATE TABLE {name} (id bigint PRIMARY KEY, a int NOT NULL, b bigint);
         INSERT INTO {name} SELECT g, g % 1000, NULL FROM generate_series(1, {rows}) g;
         CREATE TABLE IF NOT EXISTS wal_filler (x int);"
    ))
    .await
    .unwrap();
    c.batch_execute(seqmig::ledger::BACKFILLS_SQL).await.unwrap();
}

/// Waits until the standby streams and has replayed everything written so far.
async fn wait_caught_up(c: &tokio_postgres::Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = c
            .query_opt(
                "SELECT replay_lsn >= pg_current_wal_lsn() FROM pg_stat_replication WHERE state = 'streaming'",
                &[],
            )
            .await
            .unwrap();
        if row.is_some_and(|r| r.get::<_, Option<bool>>(0) == Some(true)) {
            return;
        }
        assert!(Instant::now() < deadline, "the standby did not catch up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ledger_text(c: &tokio_postgres::Client, sql: &str) -> Option<String> {
    c.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

#[test]
fn issue22_2_replica_lag_pauses_the_backfill_and_resumes_after_replay_catches_up() {
    let primary = primary();
    let standby = Standby::start(&primary);
    block_on(async {
        let url = primary.url("postgres");
        let c = connect(&url).await;
        make_table(&c, "t", 20_000).await;
        wait_caught_up(&c).await;
        let replica = connect(&standby.url()).await;
        replica.batch_execute("SELECT pg_wal_replay_pause()").await.unwrap();
        // WAL keeps coming while replay stands still: the replay lag grows past 1 s.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            c.batch_execute("INSERT INTO wal_filler VALUES (1)").await.unwrap();
            let lag: f64 = c
                .query_one(
                    "SELECT coalesce(max(extract(epoch FROM replay_lag)), 0)::float8 FROM pg_stat_replication",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if lag > 2.0 {
                break;
            }
            assert!(Instant::now() < deadline, "replay lag did not grow with replay paused ({lag} s)");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        let runner_url = url.clone();
        let run = tokio::spawn(async move {
            let mut client = connect(&runner_url).await;
            let spec = spec("t");
            let req = BackfillRequest { plan_id: "p", step_id: "lag", spec: &spec };
            backfill::run(&mut client, &req, &options(Duration::from_secs(1)), &mut NoProgress).await
        });
        // The first sample holds the backfill before its first batch; status says why.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let t = ledger_text(&c, "SELECT max(throttle) FROM seqmig.backfills WHERE step_id = 'lag'").await;
            if t.as_deref() == Some("replica_lag") {
                break;
            }
            assert!(Instant::now() < deadline, "the backfill was not held back by replica lag ({t:?})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let held = "SELECT rows_done FROM seqmig.backfills WHERE step_id = 'lag'";
        let before: i64 = c.query_one(held, &[]).await.unwrap().get(0);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let after: i64 = c.query_one(held, &[]).await.unwrap().get(0);
        assert_eq!(before, after, "no batch runs while the replica lags");
        assert!(!run.is_finished());

        replica.batch_execute("SELECT pg_wal_replay_resume()").await.unwrap();
        let outcome =
            tokio::time::timeout(Duration::from_secs(120), run).await.expect("backfill ends").unwrap();
        let outcome = outcome.expect("backfill");
        assert_eq!(outcome.rows_done, 20_000);
        assert_eq!(outcome.verify_mismatches, 0);
        // The first batch after the wait records why and how long it waited.
        let row = c
            .query_one(
                "SELECT throttle_reason, throttle_ms FROM seqmig.backfill_batches
                  WHERE step_id = 'lag' AND throttle_reason IS NOT NULL ORDER BY batch_no LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "replica_lag");
        assert!(row.get::<_, f64>(1) >= 1_500.0, "waited {} ms", row.get::<_, f64>(1));
        let state = ledger_text(
            &c,
            "SELECT state || coalesce(throttle, '') FROM seqmig.backfills WHERE step_id = 'lag'",
        )
        .await;
        assert_eq!(state.as_deref(), Some("done"));
    });
    drop(standby);
    primary.stop();
}

#[test]
fn issue22_3_a_replica_that_disappears_mid_backfill_is_reported_and_the_run_goes_on() {
    let primary = primary();
    let mut standby = Standby::start(&primary);
    block_on(async {
        let url = primary.url("postgres");
        let c = connect(&url).await;
        make_table(&c, "t", 30_000).await;
        wait_caught_up(&c).await;
        // 5,000 rows/s: the walk takes about six seconds, long enough to lose the replica in it.
        c.batch_execute(
            "INSERT INTO seqmig.backfill_control (plan_id, step_id, max_rows_per_sec) VALUES ('p', 'gone', 5000)",
        )
        .await
        .unwrap();
        let runner_url = url.clone();
        let run = tokio::spawn(async move {
            let mut client = connect(&runner_url).await;
            let spec = spec("t");
            let req = BackfillRequest { plan_id: "p", step_id: "gone", spec: &spec };
            backfill::run(&mut client, &req, &options(Duration::from_secs(10)), &mut NoProgress).await
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let done: Option<i64> = c
                .query_opt("SELECT rows_done FROM seqmig.backfills WHERE step_id = 'gone'", &[])
                .await
                .unwrap()
                .map(|r| r.get(0));
            if done.unwrap_or(0) >= 2_000 {
                break;
            }
            assert!(Instant::now() < deadline, "the backfill made no progress");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        standby.stop();
        let outcome =
            tokio::time::timeout(Duration::from_secs(120), run).await.expect("backfill ends").unwrap();
        let outcome = outcome.expect("the documented policy: the backfill goes on without the replica");
        assert_eq!(outcome.rows_done, 30_000);
        assert_eq!(outcome.verify_mismatches, 0);
        let lost = ledger_text(
            &c,
            "SELECT string_agg(DISTINCT throttle_reason, ',') FROM seqmig.backfill_batches
              WHERE step_id = 'gone' AND throttle_reason LIKE '%replica_lost%'",
        )
        .await;
        assert!(lost.is_some(), "a batch row records that the replica was lost");
        let replicas: i64 =
            c.query_one("SELECT count(*) FROM pg_stat_replication", &[]).await.unwrap().get(0);
        assert_eq!(replicas, 0);
    });
    drop(standby);
    primary.stop();
}

#[test]
fn issue22_4_a_logical_slot_retaining_wal_and_the_wal_rate_limit_hold_the_backfill() {
    let primary =
        TempCluster::start(&["wal_level = logical", "max_replication_slots = 4"]).expect("start a primary");
    block_on(async {
        let url = primary.url("postgres");
        let c = connect(&url).await;
        make_table(&c, "t", 20_000).await;
        // A logical slot nobody consumes: everything the backfill writes stays on disk for it.
        c.batch_execute("SELECT pg_create_logical_replication_slot('issue22_slot', 'test_decoding')")
            .await
            .unwrap();
        let retained = "SELECT (pg_current_wal_lsn() - restart_lsn)::bigint FROM pg_replication_slots \
                        WHERE slot_name = 'issue22_slot'";
        let retained_before: i64 = c.query_one(retained, &[]).await.unwrap().get(0);
        let mut opts = options(Duration::from_secs(10));
        opts.throttle.max_replica_lag = None;
        // 200 kB/s of WAL: well under what unpaced batches write.
        opts.throttle.max_wal_bytes_per_sec = Some(200_000);
        // Unpaced, 20,000 rows take well under the default 1 s sampling interval on a quiet
        // machine: sample often enough that the rate is measured within the run.
        opts.throttle.sample_every = Duration::from_millis(50);
        let runner_url = url.clone();
        let run = tokio::spawn(async move {
            let mut client = connect(&runner_url).await;
            let spec = spec("t");
            let req = BackfillRequest { plan_id: "p", step_id: "slot", spec: &spec };
            backfill::run(&mut client, &req, &opts, &mut NoProgress).await
        });
        // `seqmig backfill status` reads the same ledger column: it says why the backfill waits.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let t =
                ledger_text(&c, "SELECT max(throttle) FROM seqmig.backfills WHERE step_id = 'slot'").await;
            if t.as_deref() == Some("wal_rate") {
                break;
            }
            if run.is_finished() {
                let outcome = run.await.unwrap();
                panic!("the backfill ended without being held by the WAL rate: {outcome:?}");
            }
            assert!(Instant::now() < deadline, "the backfill was not held back by the WAL rate ({t:?})");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let outcome =
            tokio::time::timeout(Duration::from_secs(180), run).await.expect("backfill ends").unwrap();
        let outcome = outcome.expect("backfill");
        assert_eq!(outcome.rows_done, 20_000);
        let held: i64 = c
            .query_one(
                "SELECT count(*) FROM seqmig.backfill_batches WHERE step_id = 'slot'
                    AND throttle_reason LIKE '%wal_rate%' AND throttle_ms > 0",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(held > 0, "batch rows record the WAL-rate waits");
        let retained_after: i64 = c.query_one(retained, &[]).await.unwrap().get(0);
        assert!(
            retained_after > retained_before + 1_000_000,
            "the slot retains the backfill's WAL ({retained_before} -> {retained_after} bytes)"
        );
        c.batch_execute("SELECT pg_drop_replication_slot('issue22_slot')").await.unwrap();
    });
    primary.stop();
}

#[test]
fn issue22_5_wal_retained_by_a_logical_slot_holds_the_backfill_and_status_says_why() {
    let primary =
        TempCluster::start(&["wal_level = logical", "max_replication_slots = 4"]).expect("start a primary");
    block_on(async {
        let url = primary.url("postgres");
        let c = connect(&url).await;
        make_table(&c, "t", 20_000).await;
        // A logical slot nobody consumes, then 4 MB of WAL after it: the slot retains all of it.
        c.batch_execute("SELECT pg_create_logical_replication_slot('issue22_retained', 'test_decoding')")
            .await
            .unwrap();
        c.batch_execute("INSERT INTO wal_filler SELECT g FROM generate_series(1, 120000) g").await.unwrap();
        let retained = "SELECT (pg_current_wal_lsn() - restart_lsn)::bigint FROM pg_replication_slots \
                        WHERE slot_name = 'issue22_retained'";
        let retained_now: i64 = c.query_one(retained, &[]).await.unwrap().get(0);
        assert!(retained_now > 2_000_000, "the slot retains the filler's WAL ({retained_now} bytes)");

        let mut opts = options(Duration::from_secs(10));
        opts.throttle.max_replica_lag = None;
        // No WAL-rate limit: only the retained WAL can hold this run.
        opts.throttle.max_retained_wal_bytes = Some(1_000_000);
        let runner_url = url.clone();
        let run = tokio::spawn(async move {
            let mut client = connect(&runner_url).await;
            let spec = spec("t");
            let req = BackfillRequest { plan_id: "p", step_id: "retained", spec: &spec };
            backfill::run(&mut client, &req, &opts, &mut NoProgress).await
        });
        // `seqmig status` and `seqmig backfill status` read the ledger through backfill::status
        // and show `describe`: the operator sees why the backfill waits.
        let deadline = Instant::now() + Duration::from_secs(60);
        let line = loop {
            let all = backfill::status(&c).await.unwrap();
            if let Some(s) = all.iter().find(|s| s.progress.step_id == "retained")
                && s.progress.throttle.as_deref() == Some("retained_wal")
            {
                break backfill::describe(&s.progress);
            }
            assert!(!run.is_finished(), "the backfill ended without being held by the retained WAL");
            assert!(Instant::now() < deadline, "the backfill was not held back by the retained WAL");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(line.contains("throttled: retained_wal"), "{line}");
        let held = "SELECT rows_done FROM seqmig.backfills WHERE step_id = 'retained'";
        let before: i64 = c.query_one(held, &[]).await.unwrap().get(0);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let after: i64 = c.query_one(held, &[]).await.unwrap().get(0);
        assert_eq!(before, after, "no batch runs while the slot retains more WAL than the limit");
        assert!(!run.is_finished());

        // The consumer goes away for good: the slot is dropped and its WAL released.
        c.batch_execute("SELECT pg_drop_replication_slot('issue22_retained')").await.unwrap();
        let outcome =
            tokio::time::timeout(Duration::from_secs(120), run).await.expect("backfill ends").unwrap();
        let outcome = outcome.expect("backfill");
        assert_eq!(outcome.rows_done, 20_000);
        assert_eq!(outcome.verify_mismatches, 0);
        // The first batch after the wait records the reason and how long it waited.
        let row = c
            .query_one(
                "SELECT throttle_reason, throttle_ms FROM seqmig.backfill_batches
                  WHERE step_id = 'retained' AND throttle_reason IS NOT NULL ORDER BY batch_no LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "retained_wal");
        assert!(row.get::<_, f64>(1) >= 1_500.0, "waited {} ms", row.get::<_, f64>(1));
        let state = ledger_text(
            &c,
            "SELECT state || coalesce(throttle, '') FROM seqmig.backfills WHERE step_id = 'retained'",
        )
        .await;
        assert_eq!(state.as_deref(), Some("done"));
    });
    primary.stop();
}
