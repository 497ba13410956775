//! How loading and planning grow with the size of a schema (issue 18 item 9): generated
//! schemas of 10k, 50k and 100k statements (`tests/common/scale.rs`), loaded and planned
//! against a changed copy. Prints load and plan time per size, the growth factor from the
//! smallest to the largest size (linear work grows about 10×, quadratic work 100×), and the
//! peak resident memory of each size, which runs in its own process so the peaks do not mix.
//! Targets at 100k statements: load under 2 s, plan under 10 s.
//!
//! `cargo bench --bench scale` (SEQMIG_SCALE_SIZES=5000,10000 picks other sizes).

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

#[path = "../tests/common/scale.rs"]
mod scale;

use std::process::Command;
use std::time::Instant;

use seqmig::diff::Hints;
use seqmig::render::Renderer;

const CHILD: &str = "--seqmig-scale-child";

/// Peak resident set size of this process in MB (`VmHWM`), if the platform has /proc.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// One size, in this process: prints `load_ms plan_ms steps rss_mb`.
fn child(n: usize) {
    let (a_sql, b_sql) = (scale::before_sql(n), scale::after_sql(n));
    let renderer = Renderer::embedded();
    let hints = Hints::default();
    let t0 = Instant::now();
    let a = seqmig::parse::load_str("before.sql", &a_sql).expect("loads");
    let t1 = Instant::now();
    let b = seqmig::parse::load_str("after.sql", &b_sql).expect("loads").schema;
    let t2 = Instant::now();
    let planned = seqmig::plan::plan(&a.schema, &b, &hints, &renderer).expect("plans");
    let t3 = Instant::now();
    assert_eq!(a.report.statements, n / scale::STATEMENTS_PER_TABLE * scale::STATEMENTS_PER_TABLE);
    let load_ms = (t1 - t0).as_secs_f64() * 1000.0;
    let _second_load_ms = (t2 - t1).as_secs_f64() * 1000.0;
    let plan_ms = (t3 - t2).as_secs_f64() * 1000.0;
    let steps = planned.plan.steps.len();
    println!("{load_ms} {plan_ms} {steps} {}", peak_rss_mb().unwrap_or(f64::NAN));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == CHILD) {
        child(args[i + 1].parse().expect("a size"));
        return;
    }
    let sizes: Vec<usize> = std::env::var("SEQMIG_SCALE_SIZES")
        .map(|s| s.split(',').map(|n| n.trim().parse().expect("SEQMIG_SCALE_SIZES: numbers")).collect())
        .unwrap_or_else(|_| vec![10_000, 50_000, 100_000]);
    let exe = std::env::current_exe().expect("own path");
    let mut rows = Vec::new();
    for &n in &sizes {
        let out = Command::new(&exe).args([CHILD, &n.to_string()]).output().expect("runs itself");
        assert!(out.status.success(), "size {n}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let f: Vec<f64> = text.split_whitespace().map(|x| x.parse().expect("a number")).collect();
        let (load, plan, steps, rss) = (f[0], f[1], f[2] as usize, f[3]);
        println!(
            "{n:>7} statements: load {load:>8.1} ms, plan {plan:>8.1} ms ({steps} steps), peak RSS {rss:.0} MB"
        );
        rows.push((n, load, plan));
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && rows.len() > 1
    {
        let size = last.0 as f64 / first.0 as f64;
        println!(
            "growth {}k → {}k ({size:.0}× the statements; linear ≈ {size:.0}×, quadratic ≈ {:.0}×): \
             load {:.1}×, plan {:.1}×",
            first.0 / 1000,
            last.0 / 1000,
            size * size,
            last.1 / first.1,
            last.2 / first.2,
        );
        println!("targets at 100k statements: load < 2000 ms, plan < 10000 ms");
    }
}
