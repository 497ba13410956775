//! `cargo bench --bench workload`: what a backfill costs the application next to it
//! (issue 22), on a throwaway cluster, in one run:
//!
//! 1. one plain `UPDATE t SET cents = expr` of a 2,000,000-row table without seqmig's objects
//!    (the fastest the data change can go, nothing else running);
//! 2. a pgbench read/write workload (the built-in TPC-B-like script, `-c 4`, 60 s) alone:
//!    its tps and its p99 latency, computed from pgbench's per-transaction log;
//! 3. the same workload again while seqmig backfills an identical 2,000,000-row table at its
//!    default pacing, as `seqmig apply --phase backfill` runs it: the table as the planner's
//!    own `expand` and `dual_write` steps leave it (dual-write trigger in place), the
//!    executor's backfill options. The workload's tps and p99 are printed for the window in
//!    which the backfill ran and for the whole 60 s, with the backfill's rows/s.
//!
//! Targets: p99 ≤ 1.5× and tps ≥ 0.8× of the workload's own baseline, with the backfill
//! ≥ 0.5× of the plain `UPDATE`. The load average is printed with the results: on a shared
//! machine the figures say as much about the neighbours as about seqmig.
//!
//! `SEQMIG_BENCH_ROWS` (default 2,000,000), `SEQMIG_BENCH_WORKLOAD_SECS` (default 60),
//! `SEQMIG_BENCH_PGBENCH_SCALE` (default 10) change the sizes.
#![allow(clippy::print_stdout)] // a benchmark's output is its result

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use seqmig::backfill::{self, BackfillOptions, BackfillRequest, NoProgress};
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

/// The table being migrated: key, the old column, payload; `planned` (the plan's expand and
/// dual_write SQL) runs after the load, as a migration of an existing table does.
async fn make_table(c: &tokio_postgres::Client, name: &str, rows: u64, planned: &[String]) {
    let create = if planned.is_empty() {
        format!(
            "CREATE TABLE {name} (id bigint PRIMARY KEY, price int NOT NULL, note text NOT NULL, cents bigint)"
        )
    } else {
        format!("CREATE TABLE {name} (id bigint PRIMARY KEY, price int NOT NULL, note text NOT NULL)")
    };
    for sql in [format!("DROP TABLE IF EXISTS {name}"), create, format!(
        "INSERT INTO {name} (id, price, note) SELECT g, g % 100000, 'order note ' || g FROM generate_series(1, {rows}) g"
    )]
    .into_iter()
    .chain(planned.iter().cloned())
    .chain([format!("VACUUM ANALYZE {name}"), "CHECKPOINT".to_string()])
    {
        c.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// One pgbench run's transactions: (end time in seconds since the epoch, latency in ms).
struct Workload {
    tps: f64,
    transactions: Vec<(f64, f64)>,
}

impl Workload {
    /// tps and p99 latency of the transactions that ended in `[from, to]` (all when `None`).
    fn window(&self, window: Option<(f64, f64)>) -> (f64, f64, usize) {
        let mut lat: Vec<f64> = self
            .transactions
            .iter()
            .filter(|(t, _)| window.is_none_or(|(a, b)| *t >= a && *t <= b))
            .map(|(_, l)| *l)
            .collect();
        lat.sort_by(f64::total_cmp);
        let n = lat.len();
        let tps = match window {
            Some((a, b)) if b > a => n as f64 / (b - a),
            _ => self.tps,
        };
        (tps, percentile(&lat, 0.99), n)
    }
}

fn pgbench_base(cluster: &TempCluster) -> Command {
    let mut cmd = Command::new("pgbench");
    cmd.args(["-h", "127.0.0.1", "-p", &cluster.port().to_string(), "-U", "postgres"]);
    cmd
}

/// Starts `pgbench -c 4 -j 2 -T secs` with a per-transaction log under `dir/prefix`.
fn start_pgbench(cluster: &TempCluster, dir: &Path, prefix: &str, secs: u64) -> std::process::Child {
    pgbench_base(cluster)
        .args(["-n", "-c", "4", "-j", "2", "-T", &secs.to_string(), "--log", "--log-prefix"])
        .arg(dir.join(prefix))
        .arg("postgres")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pgbench (install the postgresql-client package)")
}

fn finish_pgbench(child: std::process::Child, dir: &Path, prefix: &str) -> Workload {
    let out = child.wait_with_output().expect("wait for pgbench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pgbench failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    let tps = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ").and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok())
        })
        .unwrap_or_else(|| panic!("no tps in pgbench output: {text}"));
    // One log file per thread: `client_id transaction_no time_us script_no epoch_s epoch_us`.
    let mut transactions = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read the pgbench log directory") {
        let path = entry.expect("log entry").path();
        if !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)) {
            continue;
        }
        for line in std::fs::read_to_string(&path).expect("read a pgbench log").lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 6 {
                continue;
            }
            let (Ok(us), Ok(s), Ok(sus)) = (f[2].parse::<f64>(), f[4].parse::<f64>(), f[5].parse::<f64>())
            else {
                continue;
            };
            transactions.push((s + sus / 1e6, us / 1000.0));
        }
    }
    assert!(!transactions.is_empty(), "pgbench wrote no per-transaction log under {}", dir.display());
    Workload { tps, transactions }
}

fn now_epoch() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn main() {
    let rows = env_num("SEQMIG_BENCH_ROWS", 2_000_000);
    let secs = env_num("SEQMIG_BENCH_WORKLOAD_SECS", 60);
    let scale = env_num("SEQMIG_BENCH_PGBENCH_SCALE", 10);
    let cluster = TempCluster::start(&["max_wal_size = '4GB'", "shared_buffers = '256MB'"])
        .expect("start a throwaway cluster");
    let logs = std::env::temp_dir().join(format!("seqmig-workload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).expect("create the pgbench log directory");
    let url = cluster.url("postgres");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut client = connect(&url).await;
        let version: String = client.query_one("SHOW server_version", &[]).await.unwrap().get(0);
        println!(
            "seqmig workload-impact benchmark: {rows}-row backfill next to pgbench -c 4 (TPC-B-like, scale {scale}), \
             {secs} s, PostgreSQL {version}"
        );
        println!("load average at start: {}", load_average());
        let init = pgbench_base(&cluster).args(["-i", "-q", "-s", &scale.to_string(), "postgres"]).output();
        let init = init.expect("run pgbench -i");
        assert!(init.status.success(), "pgbench -i failed: {}", String::from_utf8_lossy(&init.stderr));
        seqmig::ledger::ensure(&client).await.expect("install the executor's ledger");

        // 1. The plain UPDATE, alone.
        make_table(&client, "plain_t", rows, &[]).await;
        let t = Instant::now();
        client.batch_execute(&format!("UPDATE plain_t SET cents = {EXPR}")).await.unwrap();
        let plain_secs = t.elapsed().as_secs_f64();
        client.batch_execute("DROP TABLE plain_t; CHECKPOINT").await.unwrap();
        let plain_rate = rows as f64 / plain_secs;
        println!("plain UPDATE of {rows} rows alone: {plain_secs:.2} s ({plain_rate:.0} rows/s)");

        // The migrated table is ready before the baseline, so both workload runs see the same
        // database (the same size on disk, the same cache pressure).
        let (planned, spec) = planned_dual_write("orders");
        make_table(&client, "orders", rows, &planned).await;

        // 2. The workload alone.
        client.batch_execute("VACUUM ANALYZE pgbench_accounts").await.unwrap();
        client.batch_execute("CHECKPOINT").await.unwrap();
        let base = finish_pgbench(start_pgbench(&cluster, &logs, "base", secs), &logs, "base");
        let load_base = load_average();
        let (base_tps, base_p99, base_n) = base.window(None);
        println!("workload alone:           {base_tps:>8.0} tps, p99 {base_p99:>7.2} ms ({base_n} transactions); load average {load_base}");

        // 3. The same workload with the backfill running.
        client.batch_execute("CHECKPOINT").await.unwrap();
        let child = start_pgbench(&cluster, &logs, "with", secs);
        // Let the clients connect and settle before the backfill starts.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let opts = executor_options();
        let req = BackfillRequest { plan_id: "bench", step_id: "s1", spec: &spec };
        let started = now_epoch();
        let t = Instant::now();
        let outcome = backfill::run(&mut client, &req, &opts, &mut NoProgress).await.expect("backfill");
        let backfill_secs = t.elapsed().as_secs_f64();
        let ended = now_epoch();
        let load_with = load_average();
        let with = finish_pgbench(child, &logs, "with");
        assert_eq!(outcome.rows_updated, rows);
        assert_eq!(outcome.verify_mismatches, 0);
        let throttled: Vec<String> = client
            .query(
                "SELECT throttle_reason || ' x' || count(*) || ', ' || round(sum(throttle_ms)) || ' ms'
                   FROM seqmig.backfill_batches WHERE step_id = 's1' AND throttle_reason IS NOT NULL
                  GROUP BY throttle_reason",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let backfill_rate = rows as f64 / backfill_secs;
        let (w_tps, w_p99, w_n) = with.window(Some((started, ended.min(started + secs as f64))));
        let (all_tps, all_p99, all_n) = with.window(None);
        println!(
            "workload during backfill: {w_tps:>8.0} tps, p99 {w_p99:>7.2} ms ({w_n} transactions in the {:.1} s the backfill ran); load average {load_with}",
            ended - started
        );
        println!("workload, whole {secs} s:    {all_tps:>8.0} tps, p99 {all_p99:>7.2} ms ({all_n} transactions)");
        println!(
            "backfill next to the workload: {backfill_secs:.2} s ({backfill_rate:.0} rows/s, {} batches, verified); throttled: {}",
            outcome.batches_run,
            if throttled.is_empty() { "never".to_string() } else { throttled.join("; ") }
        );
        println!();
        let tps_ratio = w_tps / base_tps;
        let p99_ratio = w_p99 / base_p99;
        let rate_ratio = backfill_rate / plain_rate;
        println!("workload tps during / alone:  {tps_ratio:>5.2}   (target >= 0.80) {}", verdict(tps_ratio >= 0.8));
        println!("workload p99 during / alone:  {p99_ratio:>5.2}   (target <= 1.50) {}", verdict(p99_ratio <= 1.5));
        println!("backfill / plain UPDATE:      {rate_ratio:>5.2}   (target >= 0.50) {}", verdict(rate_ratio >= 0.5));
        println!("load average at the end: {}", load_average());
    });
    drop(rt);
    let _ = std::fs::remove_dir_all(&logs);
    cluster.stop();
}

/// The options `seqmig apply --phase backfill` runs with (the executor's Runner takes the
/// defaults and caps the lock timeout at its own DDL lock timeout, 200 ms by default).
fn executor_options() -> BackfillOptions {
    BackfillOptions::default()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
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

/// The planner's own expand and dual_write SQL for `price int` → `cents bigint` (a transform
/// with up `price::bigint * 100` and down `(cents / 100)::int`), rendered by `seqmig::plan`
/// from the templates `seqmig plan` uses, and the plan's backfill spec.
fn planned_dual_write(table: &str) -> (Vec<String>, BackfillSpec) {
    let load = |name: &str, cols: &str| {
        seqmig::parse::load_str(
            name,
            &format!("CREATE TABLE public.{table} (id bigint PRIMARY KEY, {cols});"),
        )
        .expect("schema")
        .schema
    };
    let before = load("before.sql", "price int NOT NULL, note text NOT NULL");
    let after = load("after.sql", "cents bigint NOT NULL, note text NOT NULL");
    let hints = seqmig::diff::Hints::from_toml(
        &format!(
            "[[transform]]\ntable = \"public.{table}\"\ncolumn = \"cents\"\nfrom = \"price\"\n\
             up = \"price::bigint * 100\"\ndown = \"(cents / 100)::int\"\n"
        ),
        "bench",
    )
    .expect("hints");
    let plan = seqmig::plan::plan(&before, &after, &hints, &seqmig::render::Renderer::embedded())
        .expect("plan")
        .plan;
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
