//! Issue 18 item 9: loading and planning grow linearly with the size of the schema. Not a
//! timed test (machines are noisy): it compares the growth from 2k to 8k generated
//! statements, where linear work grows about 4× and quadratic work 16×. The absolute
//! figures are `cargo bench --bench scale`'s (see the book's Scale page).

#[path = "common/scale.rs"]
mod scale;

use std::time::{Duration, Instant};

use seqmig::diff::Hints;
use seqmig::model::{Ident, QualifiedName};
use seqmig::render::Renderer;

/// Loading both versions, and planning between them, once.
fn load_and_plan_once(n: usize, renderer: &Renderer) -> (Duration, Duration, usize) {
    let (a_sql, b_sql) = (scale::before_sql(n), scale::after_sql(n));
    let t0 = Instant::now();
    let a = seqmig::parse::load_str("before.sql", &a_sql).expect("loads").schema;
    let b = seqmig::parse::load_str("after.sql", &b_sql).expect("loads").schema;
    let t1 = Instant::now();
    let planned = seqmig::plan::plan(&a, &b, &Hints::default(), renderer).expect("plans");
    let t2 = Instant::now();
    (t1 - t0, t2 - t1, planned.plan.steps.len())
}

/// The best of five runs at each size. The sizes alternate, so that a neighbour's burst of
/// work on a shared machine slows both sizes rather than only one of them.
fn load_and_plan(small: usize, large: usize) -> [(Duration, Duration, usize); 2] {
    let renderer = Renderer::embedded();
    let mut best = [(Duration::MAX, Duration::MAX, 0); 2];
    for _ in 0..5 {
        for (i, n) in [small, large].into_iter().enumerate() {
            let (load, plan, steps) = load_and_plan_once(n, &renderer);
            best[i] = (best[i].0.min(load), best[i].1.min(plan), steps);
        }
    }
    best
}

#[test]
fn issue18_9_load_and_plan_grow_linearly() {
    // The unnamed check gets PostgreSQL's default name, chosen against every name in use.
    let small = seqmig::parse::load_str("before.sql", &scale::before_sql(8)).expect("loads").schema;
    let t =
        &small.tables[&QualifiedName::new(Ident::exact("public").unwrap(), Ident::exact("t000001").unwrap())];
    assert!(
        t.constraints.contains_key(&Ident::exact("t000001_amount_check").unwrap()),
        "{:?}",
        t.constraints.keys()
    );

    let [(load_2k, plan_2k, steps_2k), (load_8k, plan_8k, steps_8k)] = load_and_plan(2_000, 8_000);
    // The plan's work grows with the input: four times the changes, four times the steps.
    assert_eq!(steps_8k, steps_2k * 4, "steps at 2k: {steps_2k}, at 8k: {steps_8k}");
    let load_growth = load_8k.as_secs_f64() / load_2k.as_secs_f64();
    let plan_growth = plan_8k.as_secs_f64() / plan_2k.as_secs_f64();
    let figures = format!(
        "load {load_2k:?} → {load_8k:?} ({load_growth:.1}×), plan {plan_2k:?} → {plan_8k:?} ({plan_growth:.1}×) \
         for 4× the statements (linear ≈ 4×, quadratic ≈ 16×)"
    );
    assert!(load_growth < 8.0, "loading grows faster than linearly: {figures}");
    assert!(plan_growth < 8.0, "planning grows faster than linearly: {figures}");
}
