//! `cargo bench --bench partitioned_backfill`: the backfill of a partitioned table, partition
//! by partition (issue 21), in one run: a 4-partition (RANGE) table of 2,000,000 rows,
//! backfilled with `--jobs 2` and with `--jobs 1` (the planner's expand and dual_write steps
//! applied to the parent, so the trigger is on every partition; default throttle; verification
//! included), against one plain `UPDATE` of the whole parent of an identical table without
//! seqmig's objects. Target: `--jobs 2` ≥ 1.5× the plain UPDATE (which uses one core).
//!
//! `SEQMIG_BENCH_ROWS` changes the table size. `SEQMIG_BENCH_PROFILE=1` also prints, for each
//! run, the server's and the client's CPU seconds, the worker backends' wait events sampled
//! every 10 ms, the WAL written and the checkpoints (see `support/profile.rs`).
#![allow(clippy::print_stdout)] // a benchmark's output is its result

#[path = "support/profile.rs"]
mod profile;

use std::time::Instant;

use seqmig::backfill::{self, BackfillOptions, BackfillRequest, NoProgress};
use seqmig::db::ConnectOptions;
use seqmig::plan::{BackfillSpec, Phase};
use seqmig::scratch::local::TempCluster;

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

/// Four RANGE partitions on id, loaded, then `planned` (the plan's expand + dual_write SQL).
async fn make_table(c: &tokio_postgres::Client, name: &str, rows: u64, planned: &[String]) {
    let q = rows / 4;
    let cents = if planned.is_empty() { ", cents bigint" } else { "" };
    let mut sql = vec![
        format!("DROP TABLE IF EXISTS {name}"),
        format!(
            "CREATE TABLE {name} (id bigint NOT NULL, price int NOT NULL, note text NOT NULL{cents}, PRIMARY KEY (id)) \
             PARTITION BY RANGE (id)"
        ),
    ];
    for i in 0..4 {
        let (lo, hi) =
            (i * q + 1, if i == 3 { "MAXVALUE".to_string() } else { ((i + 1) * q + 1).to_string() });
        sql.push(format!("CREATE TABLE {name}_p{i} PARTITION OF {name} FOR VALUES FROM ({lo}) TO ({hi})"));
    }
    sql.push(format!(
        "INSERT INTO {name} (id, price, note) SELECT g, g % 100000, 'order note ' || g FROM generate_series(1, {rows}) g"
    ));
    sql.extend(planned.iter().map(|s| s.replace("public.orders", &format!("public.{name}"))));
    sql.push(format!("VACUUM ANALYZE {name}"));
    sql.push("CHECKPOINT".into());
    for s in sql {
        c.batch_execute(&s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

fn main() {
    let rows: u64 = std::env::var("SEQMIG_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000_000);
    let profiling = std::env::var("SEQMIG_BENCH_PROFILE").is_ok_and(|v| v == "1");
    let cluster = TempCluster::start(&["max_wal_size = '4GB'", "shared_buffers = '256MB'"])
        .expect("start a throwaway cluster");
    let url = cluster.url("postgres");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = connect(&url).await;
        let version: String = client.query_one("SHOW server_version", &[]).await.unwrap().get(0);
        println!("seqmig partitioned backfill benchmark: 4 partitions, {rows} rows, PostgreSQL {version}");
        seqmig::ledger::ensure(&client).await.expect("install the executor's ledger");
        let conn = ConnectOptions::from_url(&url).unwrap();
        let (planned, spec) = planned_dual_write();

        make_table(&client, "plain_t", rows, &[]).await;
        let prof = if profiling { Some(profile::Profile::start(&client, &url).await) } else { None };
        let t = Instant::now();
        client.batch_execute("UPDATE plain_t SET cents = price::bigint * 100").await.unwrap();
        let plain = rows as f64 / t.elapsed().as_secs_f64();
        println!("plain UPDATE of the whole parent:  {:>6.2} s ({plain:>8.0} rows/s); load average {}", rows as f64 / plain, load_average());
        if let Some(p) = prof {
            p.finish(&client, "the plain UPDATE").await;
        }
        client.batch_execute("DROP TABLE plain_t; CHECKPOINT").await.unwrap();

        let mut rates = Vec::new();
        for jobs in [2usize, 1] {
            let name = format!("orders_j{jobs}");
            make_table(&client, &name, rows, &planned).await;
            let mut own = spec.clone();
            own.table = seqmig::model::QualifiedName::of("public", &name);
            let step = format!("s{jobs}");
            let req = BackfillRequest { plan_id: "bench", step_id: &step, spec: &own };
            let prof = if profiling { Some(profile::Profile::start(&client, &url).await) } else { None };
            let t = Instant::now();
            let out = backfill::run_partitioned(&client, &conn, &req, &BackfillOptions::default(), jobs, &mut NoProgress)
                .await
                .expect("backfill");
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(out.total.rows_updated, rows);
            assert_eq!(out.total.verify_mismatches, 0);
            let rate = rows as f64 / secs;
            println!(
                "seqmig backfill --jobs {jobs}:          {secs:>6.2} s ({rate:>8.0} rows/s, {} partitions, verified), ratio {:.2}; load average {}",
                out.partitions.len(),
                rate / plain,
                load_average()
            );
            if let Some(p) = prof {
                p.finish(&client, &format!("--jobs {jobs}")).await;
            }
            // Which batches were held, and where in their partition's walk.
            for r in client
                .query(
                    "SELECT x.step_id, x.batch_no, x.throttle_reason, x.throttle_ms::float8, \
                            extract(epoch FROM x.committed_at - s.started_at)::float8 \
                       FROM seqmig.backfill_batches x, seqmig.backfills s \
                      WHERE s.plan_id = 'bench' AND s.step_id = $1 AND x.plan_id = 'bench' \
                        AND left(x.step_id, length($1) + 1) = $1 || '@' AND x.throttle_reason IS NOT NULL \
                      ORDER BY x.committed_at",
                    &[&step],
                )
                .await
                .unwrap()
            {
                println!(
                    "  held: {} batch {} ({}, {:.0} ms), committed at {:.2} s",
                    r.get::<_, String>(0),
                    r.get::<_, i32>(1),
                    r.get::<_, String>(2),
                    r.get::<_, f64>(3),
                    r.get::<_, f64>(4)
                );
            }
            // When each partition's walk started and ended, from the start of the run.
            for r in client
                .query(
                    "SELECT b.step_id, extract(epoch FROM b.started_at - s.started_at)::float8, \
                            extract(epoch FROM b.finished_at - s.started_at)::float8 \
                       FROM seqmig.backfills b, seqmig.backfills s \
                      WHERE s.plan_id = 'bench' AND s.step_id = $1 AND b.plan_id = 'bench' \
                        AND left(b.step_id, length($1) + 1) = $1 || '@' ORDER BY b.started_at",
                    &[&step],
                )
                .await
                .unwrap()
            {
                println!(
                    "  {}: {:.2} s to {:.2} s",
                    r.get::<_, String>(0),
                    r.get::<_, f64>(1),
                    r.get::<_, Option<f64>>(2).unwrap_or(f64::NAN)
                );
            }
            // What held the workers back, from the batch rows.
            for r in client
                .query(
                    "SELECT coalesce(throttle_reason, 'none'), count(*), coalesce(sum(throttle_ms), 0)::float8 / 1000 \
                       FROM seqmig.backfill_batches WHERE left(step_id, length($1) + 1) = $1 || '@' GROUP BY 1 ORDER BY 1",
                    &[&step],
                )
                .await
                .unwrap()
            {
                println!(
                    "  batches throttled for {}: {}, held {:.2} s in all",
                    r.get::<_, String>(0),
                    r.get::<_, i64>(1),
                    r.get::<_, f64>(2)
                );
            }
            rates.push(rate);
            client.batch_execute(&format!("DROP TABLE {name}; CHECKPOINT")).await.unwrap();
        }
        let ratio = rates[0] / plain;
        println!(
            "--jobs 2 / plain UPDATE: {ratio:.2} (target >= 1.5) {}; --jobs 2 / --jobs 1: {:.2}",
            if ratio >= 1.5 { "ok" } else { "MISSED" },
            rates[0] / rates[1]
        );
    });
    drop(rt);
    cluster.stop();
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The planner's own expand and dual_write SQL for `price int` → `cents bigint` on
/// `public.orders` (renamed per table), and the plan's backfill spec.
fn planned_dual_write() -> (Vec<String>, BackfillSpec) {
    let load = |name: &str, cols: &str| {
        seqmig::parse::load_str(name, &format!("CREATE TABLE public.orders (id bigint PRIMARY KEY, {cols});"))
            .expect("schema")
            .schema
    };
    let before = load("before.sql", "price int NOT NULL, note text NOT NULL");
    let after = load("after.sql", "cents bigint NOT NULL, note text NOT NULL");
    let hints = seqmig::diff::Hints::from_toml(
        "[[transform]]\ntable = \"public.orders\"\ncolumn = \"cents\"\nfrom = \"price\"\n\
         up = \"price::bigint * 100\"\ndown = \"(cents / 100)::int\"\n",
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
            let step = plan.steps.iter().find(|s| &s.id == id).expect("step");
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
