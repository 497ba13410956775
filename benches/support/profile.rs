//! Where a backfill's time goes, measured around one run (issue 22, task "why two workers
//! scale badly"): every `SAMPLE_EVERY` a sampler connection reads `pg_stat_activity` (the
//! wait event of every active client backend but its own, `CPU` when it waits on nothing)
//! and `/proc/<pid>/stat` of each backend it sees, so the CPU seconds of worker backends
//! that exit before the end are kept. Around the run: the server's CPU by process kind (the
//! postmaster's children that still live, plus the postmaster's `cutime` for those that
//! exited), the benchmark process's own CPU (the seqmig client), the WAL written
//! (`pg_current_wal_lsn` difference) and the checkpoints (`pg_stat_bgwriter`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const HZ: f64 = 100.0;

/// utime + stime, and cutime + cstime (children waited for), in seconds.
fn proc_cpu(pid: i32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // rest[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
    Some(((n(11) + n(12)) / HZ, (n(13) + n(14)) / HZ))
}

fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The postmaster's children by kind (`comm` of `/proc`, e.g. `postgres: walwriter`), CPU s.
fn server_cpu(postmaster: i32) -> (BTreeMap<String, f64>, f64) {
    let mut by_kind = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            if ppid(pid) != Some(postmaster) {
                continue;
            }
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = cmd.replace('\0', " ");
            let kind = cmd
                .trim()
                .strip_prefix("postgres: ")
                .map(|k| {
                    // "postgres: walwriter", "postgres: postgres postgres [local] idle": the
                    // client backends are one kind.
                    let w: Vec<&str> = k.split_whitespace().collect();
                    if w.len() > 2 { "client backends (alive)".to_string() } else { k.to_string() }
                })
                .unwrap_or_else(|| cmd.trim().to_string());
            if let Some((own, _)) = proc_cpu(pid) {
                *by_kind.entry(kind).or_insert(0.0) += own;
            }
        }
    }
    let exited = proc_cpu(postmaster).map(|(_, children)| children).unwrap_or(0.0);
    (by_kind, exited)
}

pub struct Profile {
    stop: Arc<AtomicBool>,
    sampler: Option<tokio::task::JoinHandle<Samples>>,
    postmaster: i32,
    started: Instant,
    client_cpu: f64,
    server: (BTreeMap<String, f64>, f64),
    lsn: String,
    bgwriter: Vec<i64>,
    /// The server's clock at the start: the batches committed since are this run's.
    since: String,
}

#[derive(Default)]
struct Samples {
    rounds: u64,
    /// (wait_event_type/wait_event or CPU) -> backend-samples.
    waits: BTreeMap<String, u64>,
    /// Each client backend seen active: its last CPU reading and its first.
    backend_cpu: BTreeMap<i32, (f64, f64)>,
    /// Rounds with 0, 1, 2 ... active client backends.
    active: BTreeMap<usize, u64>,
}

const BGWRITER_SQL: &str = "SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint, buffers_backend, \
    buffers_backend_fsync, buffers_clean FROM pg_stat_bgwriter";

async fn bgwriter(c: &tokio_postgres::Client) -> Vec<i64> {
    let r = c.query_one(BGWRITER_SQL, &[]).await.expect("pg_stat_bgwriter");
    (0..6).map(|i| r.get::<_, i64>(i)).collect()
}

impl Profile {
    /// Starts sampling; `client` is the benchmark's own connection (for the before/after
    /// readings), `url` makes the sampler's.
    pub async fn start(client: &tokio_postgres::Client, url: &str) -> Profile {
        let backend: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
        let postmaster = ppid(backend).expect("the postmaster's pid");
        let lsn: String = client.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.unwrap().get(0);
        let bg = bgwriter(client).await;
        let since: String = client.query_one("SELECT clock_timestamp()::text", &[]).await.unwrap().get(0);
        let (sampler_client, conn) =
            tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(conn);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = tokio::spawn(async move {
            let sql = "SELECT pid, coalesce(wait_event_type || '/' || wait_event, 'CPU') FROM pg_stat_activity \
                       WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()";
            let stmt = sampler_client.prepare(sql).await.expect("prepare the sampler");
            let mut s = Samples::default();
            while !flag.load(Ordering::Relaxed) {
                let rows = sampler_client.query(&stmt, &[]).await.unwrap_or_default();
                s.rounds += 1;
                *s.active.entry(rows.len()).or_insert(0) += 1;
                for r in &rows {
                    let pid: i32 = r.get(0);
                    *s.waits.entry(r.get::<_, String>(1)).or_insert(0) += 1;
                    if let Some((cpu, _)) = proc_cpu(pid) {
                        let e = s.backend_cpu.entry(pid).or_insert((cpu, cpu));
                        e.0 = cpu;
                    }
                }
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
            s
        });
        Profile {
            stop,
            sampler: Some(sampler),
            postmaster,
            started: Instant::now(),
            client_cpu: proc_cpu(std::process::id() as i32).map(|c| c.0).unwrap_or(0.0),
            server: server_cpu(postmaster),
            lsn,
            bgwriter: bg,
            since,
        }
    }

    /// Stops sampling and prints what the run cost, indented under `label`.
    pub async fn finish(mut self, client: &tokio_postgres::Client, label: &str) {
        let wall = self.started.elapsed().as_secs_f64();
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.sampler.take().unwrap().await.unwrap_or_default();
        let client_cpu = proc_cpu(std::process::id() as i32).map(|c| c.0).unwrap_or(0.0) - self.client_cpu;
        let (kinds, exited) = server_cpu(self.postmaster);
        let wal: f64 = client
            .query_one("SELECT (pg_current_wal_lsn() - $1::text::pg_lsn)::float8", &[&self.lsn])
            .await
            .unwrap()
            .get(0);
        let bg = bgwriter(client).await;
        let d: Vec<i64> = bg.iter().zip(&self.bgwriter).map(|(a, b)| a - b).collect();
        println!("  profile of {label} ({wall:.2} s wall, load average {}):", super::load_average());
        let mut server_total = exited - self.server.1;
        let mut parts = vec![format!("exited backends {:.2}", exited - self.server.1)];
        for (k, v) in &kinds {
            let before = self.server.0.get(k).copied().unwrap_or(0.0);
            server_total += v - before;
            if v - before >= 0.01 {
                parts.push(format!("{k} {:.2}", v - before));
            }
        }
        println!(
            "    server CPU {server_total:.2} s ({}); seqmig client (this process) CPU {client_cpu:.2} s",
            parts.join(", ")
        );
        let backends: Vec<String> = samples
            .backend_cpu
            .iter()
            .map(|(pid, (last, first))| format!("{pid}: {:.2}", last - first))
            .collect();
        println!(
            "    active client backends' CPU seen by the sampler (s, from the first sample): {}",
            backends.join(", ")
        );
        let total: u64 = samples.waits.values().sum();
        let waits: Vec<String> = samples
            .waits
            .iter()
            .map(|(k, v)| format!("{k} {:.1}%", 100.0 * *v as f64 / total.max(1) as f64))
            .collect();
        println!(
            "    wait events of active client backends ({} samples every {} ms, {} backend-samples): {}",
            samples.rounds,
            SAMPLE_EVERY.as_millis(),
            total,
            waits.join(", ")
        );
        let active: Vec<String> = samples
            .active
            .iter()
            .map(|(n, v)| format!("{n} active {:.0}%", 100.0 * *v as f64 / samples.rounds.max(1) as f64))
            .collect();
        println!("    rounds by active backends: {}", active.join(", "));
        println!(
            "    WAL {:.0} MB; checkpoints timed {} requested {}; buffers written by checkpoint {}, by backends {} (fsyncs {}), by bgwriter {}",
            wal / 1e6,
            d[0],
            d[1],
            d[2],
            d[3],
            d[4],
            d[5]
        );
        // The batches this run committed, by the throttle's reason for holding them back.
        let rows = client
            .query(
                "SELECT coalesce(throttle_reason, 'none'), count(*), coalesce(sum(throttle_ms), 0)::float8, \
                        coalesce(sum(duration_ms), 0)::float8 \
                   FROM seqmig.backfill_batches WHERE committed_at >= $1::text::timestamptz GROUP BY 1 ORDER BY 1",
                &[&self.since],
            )
            .await
            .unwrap();
        let held: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{}: {} batches, held {:.2} s, batches' own time {:.2} s",
                    r.get::<_, String>(0),
                    r.get::<_, i64>(1),
                    r.get::<_, f64>(2) / 1000.0,
                    r.get::<_, f64>(3) / 1000.0
                )
            })
            .collect();
        if !held.is_empty() {
            println!("    batches by throttle reason: {}", held.join("; "));
        }
    }
}
