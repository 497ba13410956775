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

/// The best of three runs of loading both versions, and of planning between them.
fn load_and_plan(n: usize) -> (Duration, Duration, usize) {
    let (a_sql, b_sql) = (scale::before_sql(n), scale::after_sql(n));
    let renderer = Renderer::embedded();
    let (mut load, mut plan, mut steps) = (Duration::MAX, Duration::MAX, 0);
    for _ in 0..3 {
        let t0 = Instant::now();
        let a = seqmig::parse::load_str("before.sql", &a_sql).expect("loads").schema;
        let b = seqmig::parse::load_str("after.sql", &b_sql).expect("loads").schema;
        let t1 = Instant::now();
        let planned = seqmig::plan::plan(&a, &b, &Hints::default(), &renderer).expect("plans");
        let t2 = Instant::now();
        load = load.min(t1 - t0);
        plan = plan.min(t2 - t1);
        steps = planned.plan.steps.len();
    }
    (load, plan, steps)
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

    let (load_2k, plan_2k, steps_2k) = load_and_plan(2_000);
    let (load_8k, plan_8k, steps_8k) = load_and_plan(8_000);
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
