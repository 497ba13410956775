//! Loads the largest file of the shared real-world corpus (`../shared/corpus/`, never copied
//! into the repository) and prints how long it took and the statements per second.
//! Target: under 200 ms in a release build. Run with `cargo bench --bench load`.

#![allow(clippy::print_stdout)] // a benchmark's output is its report

#[path = "../tests/common/corpus.rs"]
mod corpus;

use std::time::Instant;

use seqmig::parse::load_str;

const LARGEST: &str = "sourcegraph-frontend-2026-04.sql";

fn main() {
    let path = corpus::corpus_dir().join(LARGEST);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.display().to_string();
    // One warm-up run, then the best and the median of ten.
    let first = load_str(&name, &text).unwrap_or_else(|e| panic!("{e}"));
    let statements = first.report.statements;
    let mut runs = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        let loaded = load_str(&name, &text).unwrap();
        std::hint::black_box(loaded);
        runs.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    runs.sort_by(f64::total_cmp);
    let best = runs[0];
    let median = runs[runs.len() / 2];
    println!(
        "load {LARGEST}: {:.0} KB, {statements} statements, best {best:.1} ms, median {median:.1} ms, \
         {:.0} statements/s (target < 200 ms)",
        text.len() as f64 / 1024.0,
        statements as f64 / (median / 1000.0),
    );
}
