//! `cargo bench --bench backfill`: the backfill engine against the fastest thing it could
//! be, on a throwaway cluster, in one run (issue 7):
//!
//! 1. rows/s of seqmig's backfill as `seqmig apply --phase backfill` runs it (default options,
//!    after the planner's own expand and dual_write, so the trigger is in place; verification
//!    included) vs one plain `UPDATE t SET new = expr` on an identical 1,000,000-row table
//!    without seqmig's objects (target ratio ≥ 0.85 end to end), alternating the two twice;
//!    the walk and the verification are printed separately, with the load average and the
//!    benchmark process's peak RSS;
//! 2. p50/p99 batch duration against the 250 ms target (target p99 ≤ 2× target);
//! 3. dual-write trigger overhead: pgbench single-row UPDATE throughput with the trigger
//!    vs without (target ≥ 0.6), alternating the two.
//!
//! Sections 1 and 2 also time the same single `UPDATE` on a table with the trigger (its
//! `WHEN` keeps the function out, as in a batch): the part of the gap the trigger itself
//! makes, since PostgreSQL locks each row before a BEFORE ROW trigger, `WHEN` or not.
//!
//! Section 1 also runs the same backfill with `--jobs 2` (`backfill::run_table` with two
//! workers: the table split into two slices of its key, one connection each) on a third
//! identical table, printed with its walk, its verification and its ratio to the same
//! round's plain `UPDATE`.
//!
//! `SEQMIG_BENCH_PROFILE=1` prints, around each plain `UPDATE` and each backfill, the server's
//! and this process's CPU seconds, the backends' wait events sampled every 10 ms, the WAL
//! written and the checkpoints (`support/profile.rs`).
//!
//! `SEQMIG_BENCH_ROWS` changes the table size; a list (`1000000,10000000`) runs sections 1
//! and 2 for each size and prints each ratio with the peak RSS after it (two rounds up to
//! 2,000,000 rows, one above; `SEQMIG_BENCH_ROUNDS` overrides). `SEQMIG_BENCH_PGBENCH_SECS`
//! sets the pgbench runs.
#![allow(clippy::print_stdout)] // a benchmark's output is its result

#[path = "support/profile.rs"]
mod profile;

use std::process::Command;
use std::time::Instant;

use seqmig::backfill::{self, BackfillOptions, BackfillRequest, NoProgress, ThrottleOptions};
use seqmig::plan::{BackfillSpec, Phase};
use seqmig::scratch::local::TempCluster;

const EXPR: &str = "price::bigint * 100";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

/// A table like a real one being migrated: key, the old column, some payload, the new column.
async fn make_table(c: &tokio_postgres::Client, name: &str, rows: u64) {
    make_table_with(c, name, rows, &[]).await;
}

/// The same table; `planned` (the plan's expand and dual_write SQL) runs before the load,
/// so the trigger is in place and the load pays for it as the application would.
async fn make_table_with(c: &tokio_postgres::Client, name: &str, rows: u64, planned: &[String]) {
    // One statement per call: VACUUM refuses to run in the implicit transaction of a
    // multi-statement query.
    for sql in [
        format!("DROP TABLE IF EXISTS {name}"),
        if planned.is_empty() {
            format!(
                "CREATE TABLE {name} (id bigint PRIMARY KEY, price int NOT NULL, note text NOT NULL, cents bigint)"
            )
        } else {
            format!("CREATE TABLE {name} (id bigint PRIMARY KEY, price int NOT NULL, note text NOT NULL)")
        },
        // Loaded before the plan's steps: the rows exist before the migration starts, the
        // new column is NULL in all of them.
        format!(
            "INSERT INTO {name} (id, price, note) SELECT g, g % 100000, 'order note ' || g FROM generate_series(1, {rows}) g"
        ),
    ]
    .into_iter()
    .chain(planned.iter().cloned())
    .chain([
        format!("VACUUM ANALYZE {name}"),
        "CHECKPOINT".to_string(),
    ]) {
        c.batch_execute(&sql).await.expect("create the benchmark table");
    }
}

async fn each(c: &tokio_postgres::Client, statements: &[&str]) {
    for sql in statements {
        c.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

fn main() {
    // One size or several (`1000000,10000000`): each prints its own ratio and the peak RSS
    // after it, so growth with the table's size shows in one run.
    let sizes: Vec<u64> = std::env::var("SEQMIG_BENCH_ROWS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().replace('_', "").parse().ok()).collect())
        .filter(|v: &Vec<u64>| !v.is_empty())
        .unwrap_or_else(|| vec![1_000_000]);
    let pgbench_secs = env_num("SEQMIG_BENCH_PGBENCH_SECS", 10);
    let cluster = TempCluster::start(&["max_wal_size = '4GB'", "shared_buffers = '256MB'"])
        .expect("start a throwaway cluster");
    let url = cluster.url("postgres");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut client = connect(&url).await;
        client.batch_execute(seqmig::ledger::BACKFILLS_SQL).await.unwrap();
        println!("seqmig backfill benchmark: {sizes:?} rows, PostgreSQL {}", server_version(&client).await);
        seqmig::ledger::ensure(&client).await.expect("install the executor's ledger");
        let mut summary = Vec::new();
        for &rows in &sizes {
            // Two alternating rounds up to 2,000,000 rows; one above (minutes per round).
            let rounds = env_num("SEQMIG_BENCH_ROUNDS", if rows > 2_000_000 { 1 } else { 2 });
            println!();
            println!("== {rows} rows, {rounds} round(s) ==");
            let ratio = compare(&mut client, &url, rows, rounds).await;
            summary.push(format!(
                "{rows} rows: ratio {ratio:.2} {}; load average {}; peak RSS {}",
                verdict(ratio >= 0.85),
                load_average(),
                peak_rss()
            ));
        }
        if sizes.len() > 1 {
            println!();
            println!("by size (end to end seqmig / plain UPDATE, target >= 0.85):");
            for line in &summary {
                println!("  {line}");
            }
        }

        // 3. Dual-write trigger overhead.
        println!();
        let trigger_rows = 100_000;
        // The old shape, then the planner's expand + dual_write phases, then a backfill:
        // the state a table is in while the trigger runs in production.
        let opts = BackfillOptions { throttle: ThrottleOptions::unthrottled(), ..BackfillOptions::default() };
        let (plan_sql, spec) = planned_dual_write("tr");
        client
            .batch_execute(&format!(
                "CREATE TABLE tr (id bigint PRIMARY KEY, price int NOT NULL);
                 INSERT INTO tr SELECT g, g % 1000 FROM generate_series(1, {trigger_rows}) g;"
            ))
            .await
            .unwrap();
        // The executor's ledger (seqmig.flags and seqmig.flag(), which the trigger reads).
        seqmig::ledger::ensure(&client).await.expect("install the executor's ledger");
        for sql in &plan_sql {
            client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let req = BackfillRequest { plan_id: "bench", step_id: "tr", spec: &spec };
        backfill::run(&mut client, &req, &opts, &mut NoProgress).await.expect("backfill tr");
        let triggers: i64 = client
            .query_one("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tr'::regclass AND NOT tgisinternal", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(triggers, 1, "the plan installed one dual-write trigger");
        let script = std::env::temp_dir().join(format!("seqmig-bench-{}.sql", std::process::id()));
        std::fs::write(
            &script,
            format!("\\set id random(1, {trigger_rows})\nUPDATE tr SET price = price + 1 WHERE id = :id;\n"),
        )
        .unwrap();
        let (mut without, mut with) = (Vec::new(), Vec::new());
        let mut mismatched = 0i64;
        for _ in 0..2 {
            each(&client, &["ALTER TABLE tr DISABLE TRIGGER USER", "VACUUM tr"]).await;
            without.push(pgbench(&cluster, &script, pgbench_secs));
            // Without the trigger the shapes drift; bring them back before measuring it.
            each(
                &client,
                &[
                    "UPDATE tr SET cents = price::bigint * 100 WHERE cents IS DISTINCT FROM price::bigint * 100",
                    "ALTER TABLE tr ENABLE TRIGGER USER",
                    "VACUUM tr",
                ],
            )
            .await;
            with.push(pgbench(&cluster, &script, pgbench_secs));
            let m: i64 = client
                .query_one("SELECT count(*) FROM tr WHERE cents IS DISTINCT FROM price::bigint * 100", &[])
                .await
                .unwrap()
                .get(0);
            mismatched += m;
        }
        let _ = std::fs::remove_file(&script);
        let without_tps = without.iter().sum::<f64>() / without.len() as f64;
        let with_tps = with.iter().sum::<f64>() / with.len() as f64;
        let overhead = with_tps / without_tps;
        println!("dual-write trigger: rendered by seqmig::plan (templates/sql/dual_write_trigger.sql) for price int -> cents bigint");
        println!("pgbench single-row UPDATE, 2 clients, {pgbench_secs} s x2 each, alternating:");
        println!("  without trigger: {without_tps:>10.0} tps  {without:.0?}");
        println!("  with trigger:    {with_tps:>10.0} tps  {with:.0?}");
        println!("  ratio with / without: {overhead:.2}   (target >= 0.60; pgroll published ~0.23) {}", verdict(overhead >= 0.6));
        println!("  rows the trigger left disagreeing after its runs: {mismatched} (must be 0)");
    });
    drop(rt);
    cluster.stop();
}

/// Sections 1 and 2 for one table size: seqmig's backfill against one plain `UPDATE`,
/// alternating `rounds` times; returns the end-to-end ratio.
async fn compare(client: &mut tokio_postgres::Client, url: &str, rows: u64, rounds: u64) -> f64 {
    let profiling = std::env::var("SEQMIG_BENCH_PROFILE").is_ok_and(|v| v == "1");
    let conn = seqmig::db::ConnectOptions::from_url(url).unwrap();
    let (j2_sql, j2_spec) = planned_dual_write("orders_j2");
    let (mut j2_secs, mut j2_walk_secs) = (0.0, 0.0);
    // 1. Backfill vs plain UPDATE, alternating so that neither side gets the warm cache.
    // The backfill runs with the executor's options (the defaults), as
    // `seqmig apply --phase backfill` does; section 3 below uses the unthrottled ones.
    let (orders_sql, orders_spec) = planned_dual_write("orders");
    let (trig_sql, _) = planned_dual_write("trig_t");
    let opts = BackfillOptions::default();
    let (mut plain_secs, mut seqmig_secs, mut seqmig_total_secs, mut floor_secs) = (0.0, 0.0, 0.0, 0.0);
    let mut verify_secs = 0.0;
    let mut durations: Vec<f64> = Vec::new();
    for round in 1..=rounds {
        make_table(client, "plain_t", rows).await;
        let prof = if profiling { Some(profile::Profile::start(client, url).await) } else { None };
        let t = Instant::now();
        client.batch_execute(&format!("UPDATE plain_t SET cents = {EXPR}")).await.unwrap();
        let plain = t.elapsed().as_secs_f64();
        if let Some(p) = prof {
            p.finish(client, "the plain UPDATE").await;
        }
        each(client, &["DROP TABLE plain_t", "CHECKPOINT"]).await;

        // The floor the trigger sets: the same single UPDATE on a table with the plan's
        // dual-write trigger, its WHEN condition keeping the function out (as in a batch).
        // A BEFORE ROW trigger makes PostgreSQL lock every row before updating it, WHEN or not.
        make_table_with(client, "trig_t", rows, &trig_sql).await;
        let t = Instant::now();
        client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL seqmig.backfill = 'on'; UPDATE trig_t SET cents = {EXPR}; COMMIT"
            ))
            .await
            .unwrap();
        let floor = t.elapsed().as_secs_f64();
        each(client, &["DROP TABLE trig_t", "CHECKPOINT"]).await;

        make_table_with(client, "orders", rows, &orders_sql).await;
        let triggers: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'orders'::regclass AND NOT tgisinternal",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(triggers, 1, "the plan's dual-write trigger is in place during the backfill");
        let spec = orders_spec.clone();
        let step = format!("s{rows}-{round}");
        let req = BackfillRequest { plan_id: "bench", step_id: &step, spec: &spec };
        let prof = if profiling { Some(profile::Profile::start(client, url).await) } else { None };
        let t = Instant::now();
        let outcome = backfill::run(client, &req, &opts, &mut NoProgress).await.expect("backfill");
        let total = t.elapsed().as_secs_f64();
        if let Some(p) = prof {
            p.finish(client, "seqmig --jobs 1").await;
        }
        assert_eq!(outcome.verify_mismatches, 0);
        assert_eq!(outcome.rows_updated, rows);
        // The gate's own full re-count agrees with the walk's verification.
        let pending: i64 = client
            .query_one(&format!("SELECT count(*) FROM orders WHERE {}", spec.pending_predicate), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(pending, 0, "rows left pending after the backfill");
        let verify = outcome.verify_elapsed.as_secs_f64();
        // The walk: from the ledger row's start to the last batch's commit (the plain
        // UPDATE has no verification pass, so the comparison leaves ours out).
        let walk: f64 = client
            .query_one(
                "SELECT extract(epoch FROM max(x.committed_at) - b.started_at)::float8
                   FROM seqmig.backfills b JOIN seqmig.backfill_batches x USING (plan_id, step_id)
                  WHERE b.step_id = $1 GROUP BY b.started_at",
                &[&step],
            )
            .await
            .unwrap()
            .get(0);
        let batch_ms: Vec<f64> = client
            .query("SELECT duration_ms FROM seqmig.backfill_batches WHERE step_id = $1", &[&step])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        println!(
            "round {round}: plain UPDATE {plain:.2} s ({:.0} rows/s); the same UPDATE with the trigger {floor:.2} s; seqmig walk {walk:.2} s ({:.0} rows/s, \
             {} batches), final verification {verify:.2} s, end to end {total:.2} s \
             ({:.0} rows/s)",
            rows as f64 / plain,
            rows as f64 / walk,
            batch_ms.len(),
            rows as f64 / total
        );
        verify_secs += verify;
        durations.extend(batch_ms);
        each(client, &["DROP TABLE orders", "CHECKPOINT"]).await;

        // The same backfill with two workers on two slices of the key.
        make_table_with(client, "orders_j2", rows, &j2_sql).await;
        let step2 = format!("j2-{rows}-{round}");
        let req = BackfillRequest { plan_id: "bench", step_id: &step2, spec: &j2_spec };
        let prof = if profiling { Some(profile::Profile::start(client, url).await) } else { None };
        let t = Instant::now();
        let run = backfill::run_table(client, &conn, &req, &opts, 2, &mut NoProgress)
            .await
            .expect("backfill --jobs 2");
        let j2_total = t.elapsed().as_secs_f64();
        if let Some(p) = prof {
            p.finish(client, "seqmig --jobs 2").await;
        }
        assert_eq!(run.total.verify_mismatches, 0);
        assert_eq!(run.total.rows_updated, rows);
        assert_eq!(run.partitions.len(), 2, "two slices");
        let j2_walk: f64 = client
            .query_one(
                "SELECT extract(epoch FROM max(x.committed_at) - b.started_at)::float8
                   FROM seqmig.backfills b, seqmig.backfill_batches x
                  WHERE b.plan_id = 'bench' AND b.step_id = $1 AND x.plan_id = 'bench'
                    AND left(x.step_id, length($1) + 1) = $1 || '@'
                  GROUP BY b.started_at",
                &[&step2],
            )
            .await
            .unwrap()
            .get(0);
        println!(
            "round {round}: seqmig --jobs 2 walk {j2_walk:.2} s ({:.0} rows/s), verification and end {:.2} s, end to end {j2_total:.2} s \
             ({:.0} rows/s, {:.2} of this round's plain UPDATE)",
            rows as f64 / j2_walk,
            j2_total - j2_walk,
            rows as f64 / j2_total,
            plain / j2_total
        );
        each(client, &["DROP TABLE orders_j2", "CHECKPOINT"]).await;
        j2_secs += j2_total;
        j2_walk_secs += j2_walk;
        plain_secs += plain;
        floor_secs += floor;
        seqmig_secs += walk;
        seqmig_total_secs += total;
    }
    let plain_rate = rounds as f64 * rows as f64 / plain_secs;
    let seqmig_rate = rounds as f64 * rows as f64 / seqmig_secs;
    let total_rate = rounds as f64 * rows as f64 / seqmig_total_secs;
    let ratio = total_rate / plain_rate;
    println!();
    println!("plain UPDATE (no seqmig objects):       {plain_rate:>10.0} rows/s");
    let floor_rate = rounds as f64 * rows as f64 / floor_secs;
    println!(
        "one UPDATE, trigger in place (WHEN):     {floor_rate:>10.0} rows/s ({:.2} of plain: the trigger's own cost)",
        floor_rate / plain_rate
    );
    println!("seqmig backfill walk (trigger in place): {seqmig_rate:>10.0} rows/s");
    println!(
        "seqmig final verification pass:          {:>10.2} s (one count of the pending rows after the walk)",
        verify_secs / rounds as f64
    );
    println!("seqmig backfill end to end:              {total_rate:>10.0} rows/s");
    println!(
        "ratio end to end seqmig / plain:         {ratio:>10.2}   (target >= 0.85) {}",
        verdict(ratio >= 0.85)
    );
    let j2_rate = rounds as f64 * rows as f64 / j2_secs;
    println!(
        "seqmig --jobs 2 walk:                    {:>10.0} rows/s; verification and end {:.2} s",
        rounds as f64 * rows as f64 / j2_walk_secs,
        (j2_secs - j2_walk_secs) / rounds as f64
    );
    println!(
        "seqmig --jobs 2 end to end:              {j2_rate:>10.0} rows/s, ratio to plain {:.2} (target >= 0.85) {}",
        j2_rate / plain_rate,
        verdict(j2_rate / plain_rate >= 0.85)
    );
    println!("load average: {}; peak RSS of this process: {}", load_average(), peak_rss());

    durations.sort_by(f64::total_cmp);
    let target = opts.sizing.target.as_secs_f64() * 1000.0;
    let p50 = percentile(&durations, 0.50);
    let p99 = percentile(&durations, 0.99);
    println!(
        "batch duration p50 {p50:.0} ms, p99 {p99:.0} ms, target {target:.0} ms: p99 = {:.2}x target (target <= 2x) {}",
        p99 / target,
        verdict(p99 <= 2.0 * target)
    );
    ratio
}

/// `/proc/loadavg`'s three averages: the benchmark shares its machine, and says how busy it was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// VmHWM of this process (the client side of the backfill; the batches keep no rows in memory).
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l["VmHWM:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn server_version(c: &tokio_postgres::Client) -> String {
    c.query_one("SHOW server_version", &[]).await.unwrap().get(0)
}

/// Runs pgbench with `script` for `secs` seconds and returns transactions per second.
fn pgbench(cluster: &TempCluster, script: &std::path::Path, secs: u64) -> f64 {
    let out = Command::new("pgbench")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port().to_string(),
            "-U",
            "postgres",
            "-n",
            "-c",
            "2",
            "-j",
            "2",
        ])
        .args(["-T", &secs.to_string(), "-f"])
        .arg(script)
        .arg("postgres")
        .output()
        .expect("run pgbench (install the postgresql-client package)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pgbench failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ").and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok())
        })
        .unwrap_or_else(|| panic!("no tps in pgbench output: {text}"))
}

/// The planner's own expand and dual_write SQL for `price int` → `cents bigint` (a transform
/// with up `price::bigint * 100` and down `(cents / 100)::int`), rendered by `seqmig::plan`
/// from the same templates `seqmig plan` uses. Returns the statements in plan order and the
/// plan's backfill spec.
fn planned_dual_write(table: &str) -> (Vec<String>, BackfillSpec) {
    // `tr` has no note column; `orders` keeps one as payload.
    let note = if table == "tr" { "" } else { ", note text NOT NULL" };
    let before = seqmig::parse::load_str(
        "before.sql",
        &format!("CREATE TABLE public.{table} (id bigint PRIMARY KEY, price int NOT NULL{note});"),
    )
    .expect("before schema")
    .schema;
    let after = seqmig::parse::load_str(
        "after.sql",
        &format!("CREATE TABLE public.{table} (id bigint PRIMARY KEY, cents bigint NOT NULL{note});"),
    )
    .expect("after schema")
    .schema;
    let hints = seqmig::diff::Hints::from_toml(
        &format!(
            r#"
[[transform]]
table = "public.{table}"
column = "cents"
from = "price"
up = "price::bigint * 100"
down = "(cents / 100)::int"
"#
        ),
        "bench",
    )
    .expect("hints");
    let planned =
        seqmig::plan::plan(&before, &after, &hints, &seqmig::render::Renderer::embedded()).expect("plan");
    let plan = planned.plan;
    let mut sql = Vec::new();
    let mut spec = None;
    for phase in &plan.phases {
        for id in &phase.steps {
            let step = plan.steps.iter().find(|s| &s.id == id).expect("step of the phase");
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
