//! How long introspecting the largest corpus schema takes (target: under 1 s in a release
//! build). Starts a throwaway cluster, loads `../shared/corpus/sourcegraph-frontend-2026-04.sql`
//! with psql, then introspects it several times and prints the figures.
//!
//! Run: `cargo bench --bench introspect`.

use std::process::Command;
use std::time::{Duration, Instant};

use seqmig::db::{ConnectOptions, connect, default_application_name};
use seqmig::scratch::local::{TempCluster, find_bindir};

const FILE: &str = "sourcegraph-frontend-2026-04.sql";
const RUNS: usize = 10;

#[allow(clippy::print_stdout)] // a benchmark's figures are its output
fn main() {
    // `../shared/corpus` beside the checkout (CI, the main clone); a worktree one level deeper.
    let file = ["/../shared/corpus/", "/../../shared/corpus/"]
        .iter()
        .map(|d| format!("{}{d}{FILE}", env!("CARGO_MANIFEST_DIR")))
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| panic!("{FILE} not found in ../shared/corpus or ../../shared/corpus"));
    let cluster = TempCluster::start(&[]).expect("start a throwaway cluster");
    let psql = find_bindir().map(|d| d.join("psql")).filter(|p| p.exists()).unwrap_or_else(|| "psql".into());
    let ok = Command::new(&psql)
        .args(["-q", "-X", "-v", "ON_ERROR_STOP=0", "-d", &cluster.url("postgres"), "-f", &file])
        .output()
        .expect("run psql");
    assert!(ok.status.success(), "psql failed: {}", String::from_utf8_lossy(&ok.stderr));

    let opts = ConnectOptions::from_url(&cluster.url("postgres")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut times: Vec<Duration> = Vec::new();
    let mut counts = None;
    rt.block_on(async {
        let client = connect(&opts, &default_application_name()).await.unwrap();
        for _ in 0..RUNS {
            let start = Instant::now();
            let schema = seqmig::introspect::introspect(&client).await.unwrap();
            times.push(start.elapsed());
            counts = Some(seqmig::model::ddl::object_counts(&schema));
        }
    });
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("introspect sourcegraph-frontend-2026-04.sql ({RUNS} runs on one connection)");
    println!(
        "  first connection included: no; min {:.1} ms, median {:.1} ms, max {:.1} ms",
        ms(times[0]),
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1])
    );
    for (k, v) in counts.unwrap_or_default() {
        println!("  {k:<12} {v}");
    }
    let median = times[RUNS / 2];
    println!(
        "{}",
        if median < Duration::from_secs(1) { "target < 1 s: met" } else { "target < 1 s: MISSED" }
    );
}
