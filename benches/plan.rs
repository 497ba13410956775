//! Plans the two real-world diffs of `../shared/corpus/` (OpenStreetMap 2025-07 → 2026-07,
//! Sourcegraph 2024-10 → 2026-04) and prints milliseconds per pair: loading both files, then
//! diff + DAG + rendering. Target: under one second per pair in a release build.
//!
//! `cargo bench --bench plan` (SEQMIG_CORPUS_DIR overrides the corpus location).

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

#[path = "../tests/common/corpus.rs"]
mod corpus;

use std::time::Instant;

use seqmig::diff::Hints;
use seqmig::render::Renderer;

fn main() {
    let dir = corpus::corpus_dir();
    let renderer = Renderer::embedded();
    let hints = Hints::default();
    for (from, to) in [
        ("osm-structure-2025-07.sql", "osm-structure-2026-07.sql"),
        ("sourcegraph-frontend-2024-10.sql", "sourcegraph-frontend-2026-04.sql"),
    ] {
        let read = |n: &str| {
            std::fs::read_to_string(dir.join(n)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(n).display()))
        };
        let (a_sql, b_sql) = (read(from), read(to));
        let runs = 5;
        let mut load_ms = Vec::new();
        let mut plan_ms = Vec::new();
        let mut steps = 0;
        for _ in 0..runs {
            let t0 = Instant::now();
            let a = seqmig::parse::load_str(from, &a_sql).expect("loads").schema;
            let b = seqmig::parse::load_str(to, &b_sql).expect("loads").schema;
            let t1 = Instant::now();
            let planned = seqmig::plan::plan(&a, &b, &hints, &renderer).expect("plans");
            let t2 = Instant::now();
            steps = planned.plan.steps.len();
            load_ms.push((t1 - t0).as_secs_f64() * 1000.0);
            plan_ms.push((t2 - t1).as_secs_f64() * 1000.0);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let (l, p) = (median(&mut load_ms), median(&mut plan_ms));
        println!(
            "{from} → {to}: {steps} steps; load {l:.1} ms, plan {p:.1} ms, total {:.1} ms (median of {runs})",
            l + p
        );
    }
}
