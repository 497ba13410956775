//! Lints every file of the shared real-world corpus (`../shared/corpus/`, never copied into
//! the repository) and prints how long it took. Target: under 300 ms in a release build.
//! Run with `cargo bench --bench lint`.

#![allow(clippy::print_stdout)] // a benchmark's output is its report

#[path = "../tests/common/corpus.rs"]
mod corpus;

use std::time::Instant;

use seqmig::lint::{LintConfig, lint_paths};

/// CPU time (user + system) this process has used, from Linux's `/proc/self/stat`, in
/// clock ticks of 10 ms (`CLK_TCK` is 100 on Linux).
fn cpu_ms() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 10.0)
}

fn main() {
    let dir = corpus::corpus_dir();
    let config = LintConfig::default();
    let paths = vec![dir.clone()];
    // One warm-up run, then the best of five: the figure is the linter, not the page cache.
    let reports = lint_paths(&paths, &config).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let bytes: usize = reports.iter().map(|r| r.source.len()).sum();
    let findings: usize = reports.iter().map(|r| r.findings.len()).sum();
    let mut best = f64::MAX;
    let cpu_start = cpu_ms();
    for _ in 0..5 {
        let start = Instant::now();
        let r = lint_paths(&paths, &config).unwrap();
        std::hint::black_box(r);
        best = best.min(start.elapsed().as_secs_f64() * 1000.0);
    }
    // On a shared machine wall time includes waiting for a core; CPU time does not.
    let cpu = match (cpu_start, cpu_ms()) {
        (Some(a), Some(b)) => format!(", {:.0} ms CPU per run (mean of 5)", (b - a) / 5.0),
        _ => String::new(),
    };
    println!(
        "lint corpus: {} files, {:.1} MB, {findings} findings, best of 5: {best:.1} ms wall{cpu} (target < 300 ms)",
        reports.len(),
        bytes as f64 / 1_000_000.0
    );
}
