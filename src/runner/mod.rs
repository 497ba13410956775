//! Phase SQL for the tools teams already deploy with (issue 23): psql, sqitch, Alembic, …
//!
//! Every file this module writes is self-contained: it creates or upgrades the ledger
//! ([`install_sql`], the same DDL `seqmig apply` installs), stores the plan, records each
//! step in `seqmig.step_runs` as the executor does (functions in `runner_functions.sql`), so
//! `seqmig status` tells the truth whichever tool ran the SQL. The contract file starts with
//! `SELECT seqmig.assert_gate_open('<plan id>')`, which raises while the gate's latest
//! recorded verdict (`seqmig gate --record`) is not open.
//!
//! A phase is cut into [`Unit`]s, one step each: every step is its own transaction (or, for
//! `CONCURRENTLY` and `ADD VALUE`, runs outside one), as under `seqmig apply`. Each runner
//! module turns units into its own files; `cli::plan` writes them.

pub mod alembic;
pub mod django;
pub mod gate;
pub mod node_pg_migrate;
pub mod rails;
pub mod sqitch;
pub mod sqlx;

use serde_json::{Value, json};

use crate::plan::{Phase, Planned, Step};
use crate::render::{RenderError, Renderer, quote_literal};

/// The functions phase files call: `runner_begin`, `runner_step`, `runner_end`,
/// `assert_gate_open`. Idempotent.
pub const FUNCTIONS_SQL: &str = include_str!("runner_functions.sql");

/// Everything a phase file needs before its first step, on any database: the ledger at this
/// build's version and the runner functions, both under the ledger's upgrade lock.
pub fn install_sql() -> String {
    format!("{}{}", crate::ledger::install_sql(), functions_install_sql())
}

fn functions_install_sql() -> String {
    format!(
        "DO $seqmig_runner$\nBEGIN\n    PERFORM pg_advisory_xact_lock({});\n    EXECUTE $seqmig_functions${}$seqmig_functions$;\nEND\n$seqmig_runner$;\n",
        crate::ledger::UPGRADE_LOCK,
        FUNCTIONS_SQL
    )
}

/// Stores the plan as `seqmig apply` does on its first phase (same JSON text, so `status`
/// and `apply` recognise it by id).
pub fn store_plan_sql(planned: &Planned) -> String {
    let plan = &planned.plan;
    format!(
        "INSERT INTO seqmig.plans (id, plan_json, actor) VALUES ({}, {}::json, session_user) ON CONFLICT (id) DO NOTHING;\n",
        quote_literal(&plan.id),
        quote_literal(&plan.to_json_pretty())
    )
}

/// The guard at the top of every contract file.
pub fn gate_guard_sql(plan_id: &str) -> String {
    format!("SELECT seqmig.assert_gate_open({});\n", quote_literal(plan_id))
}

/// Applying or undoing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Apply,
    Rollback,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Apply => "apply",
            Direction::Rollback => "rollback",
        }
    }
}

/// Who opens and commits transactions in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transactions {
    /// The file says `BEGIN` / `COMMIT` around each transactional step (psql, sqitch).
    InFile,
    /// The runner wraps the file (or the file opts out); the file has no transaction control.
    ByRunner,
}

/// One step of a phase as a runner migration of its own (see [`units`]).
#[derive(Debug, Clone)]
pub struct Unit<'a> {
    pub phase: Phase,
    /// 1-based within the phase.
    pub index: usize,
    pub steps: Vec<&'a Step>,
    pub transactional: bool,
    /// The phase's first unit starts the phase run; its last one finishes it.
    pub first: bool,
    pub last: bool,
}

impl Unit<'_> {
    /// `expand`, `expand_2`, … (the first unit keeps the phase's name).
    pub fn name(&self) -> String {
        if self.index == 1 {
            self.phase.as_str().to_string()
        } else {
            format!("{}_{}", self.phase.as_str(), self.index)
        }
    }
}

/// The plan's units in order: phase by phase, one step each. A step is its own transaction,
/// as under `seqmig apply`: steps sharing one would hold the first one's lock through the
/// next one's work (a `VALIDATE` scanning under the `ADD CONSTRAINT`'s ACCESS EXCLUSIVE).
pub fn units(planned: &Planned) -> Vec<Unit<'_>> {
    let mut out = Vec::new();
    for phase in Phase::ALL {
        let mut phase_units: Vec<Unit<'_>> = Vec::new();
        for step in planned.plan.steps_of(phase) {
            let index = phase_units.len() + 1;
            phase_units.push(Unit {
                phase,
                index,
                steps: vec![step],
                transactional: step.transactional,
                first: index == 1,
                last: false,
            })
        }
        if let Some(u) = phase_units.last_mut() {
            u.last = true;
        }
        out.extend(phase_units);
    }
    out
}

fn record_sql(plan_id: &str, phase: Phase, step: &str, dir: Direction) -> String {
    format!(
        "SELECT seqmig.runner_step({}, {}, {}, {});",
        quote_literal(plan_id),
        quote_literal(phase.as_str()),
        quote_literal(step),
        quote_literal(dir.as_str())
    )
}

/// What runs before a unit's first step: the gate guard (contract only), the ledger and
/// the runner functions, the plan, and the start of the phase run (first unit only).
fn prologue_statements(planned: &Planned, phase: Phase, dir: Direction, first: bool) -> Vec<String> {
    let plan = &planned.plan;
    let mut out = Vec::new();
    if phase == Phase::Contract && dir == Direction::Apply && first {
        out.push(format!(
            "-- The gate: refuses contract (changing nothing) until 'seqmig gate --record' found it open.\n{}",
            gate_guard_sql(&plan.id).trim_end()
        ));
    }
    out.push(format!(
        "-- The seqmig ledger (created or upgraded here, idempotently) and this plan in it.\n{}",
        crate::ledger::install_sql().trim_end()
    ));
    out.push(functions_install_sql().trim_end().to_string());
    out.push(store_plan_sql(planned).trim_end().to_string());
    if first {
        out.push(format!(
            "SELECT seqmig.runner_begin({}, {}, {});",
            quote_literal(&plan.id),
            quote_literal(phase.as_str()),
            quote_literal(dir.as_str())
        ));
    }
    out
}

fn end_sql(plan_id: &str, phase: Phase, dir: Direction) -> String {
    format!(
        "SELECT seqmig.runner_end({}, {}, {});",
        quote_literal(plan_id),
        quote_literal(phase.as_str()),
        quote_literal(dir.as_str())
    )
}

/// A unit as single statements, for runners that execute one statement at a time (Alembic,
/// Django): no transaction control; each step's SQL split into its statements, so that
/// `CONCURRENTLY` never shares a query string with another statement.
pub fn unit_statements(planned: &Planned, unit: &Unit<'_>, dir: Direction) -> Vec<String> {
    let plan = &planned.plan;
    let (first, last) = match dir {
        Direction::Apply => (unit.first, unit.last),
        Direction::Rollback => (unit.last, unit.first),
    };
    let mut out = prologue_statements(planned, unit.phase, dir, first);
    let ordered: Vec<&Step> = match dir {
        Direction::Apply => unit.steps.clone(),
        Direction::Rollback => unit.steps.iter().rev().copied().collect(),
    };
    for s in ordered {
        let sql = match dir {
            Direction::Apply => s.sql.as_str(),
            Direction::Rollback => match &s.rollback_sql {
                Some(sql) if !s.one_way => sql.as_str(),
                _ => continue,
            },
        };
        // One statement per string: drivers that use the extended protocol (psycopg 3)
        // take one statement per call.
        match crate::parse::split_statements(sql) {
            Ok(parts) => out.extend(parts.into_iter().filter(|p| !p.meta).map(|p| p.text)),
            Err(_) => out.push(sql.to_string()),
        }
        out.push(record_sql(&plan.id, unit.phase, &s.id, dir));
    }
    if last {
        out.push(end_sql(&plan.id, unit.phase, dir));
    }
    out
}

/// Renders the steps of one phase (all of them, or one unit) as a self-contained file
/// through the `phase.sql` / `rollback.sql` templates.
pub fn render_steps(
    planned: &Planned,
    r: &Renderer,
    unit: &Unit<'_>,
    dir: Direction,
    tx: Transactions,
) -> Result<String, RenderError> {
    let (phase, steps) = (unit.phase, &unit.steps);
    // Undoing runs the unit backwards: its last step starts the rollback run.
    let (first, last) = match dir {
        Direction::Apply => (unit.first, unit.last),
        Direction::Rollback => (unit.last, unit.first),
    };
    let plan = &planned.plan;
    let mut values: Vec<Value> = Vec::new();
    let ordered: Vec<&Step> = match dir {
        Direction::Apply => steps.to_vec(),
        Direction::Rollback => steps.iter().rev().copied().collect(),
    };
    for s in &ordered {
        let mut v = crate::runbook::step_value(planned, s);
        let skipped = dir == Direction::Rollback && s.one_way;
        if !skipped {
            v["record"] = json!(record_sql(&plan.id, phase, &s.id, dir));
        }
        if tx == Transactions::InFile && s.transactional && !skipped {
            // One transaction per step, as `seqmig apply` runs them.
            v["open_tx"] = json!(true);
            v["close_tx"] = json!(true);
        }
        values.push(v);
    }
    let prologue = prologue_statements(planned, phase, dir, first).join("\n");
    let epilogue = if last { format!("\n{}\n", end_sql(&plan.id, phase, dir)) } else { String::new() };
    let ctx = json!({
        "plan_id": plan.id,
        "phase": phase.as_str(),
        "number": phase.number(),
        "steps": values,
        "runner": { "prologue": prologue.trim_end(), "epilogue": epilogue },
    });
    let name = match dir {
        Direction::Apply => "phase.sql",
        Direction::Rollback => "rollback.sql",
    };
    let mut sql = r.render_value(name, &ctx)?;
    sql.push('\n');
    Ok(sql)
}

/// `(phase, its SQL file, its rollback file)` for every phase with steps, each file
/// self-contained (`seqmig plan --format sql`). Run them with `psql -v ON_ERROR_STOP=1 -f`.
pub fn sql_files(planned: &Planned, r: &Renderer) -> Result<Vec<(Phase, String, String)>, RenderError> {
    let mut out = Vec::new();
    for p in Phase::ALL {
        let steps = planned.plan.steps_of(p);
        if steps.is_empty() {
            continue;
        }
        let unit = Unit { phase: p, index: 1, steps, transactional: false, first: true, last: true };
        let fwd = render_steps(planned, r, &unit, Direction::Apply, Transactions::InFile)?;
        let back = render_steps(planned, r, &unit, Direction::Rollback, Transactions::InFile)?;
        out.push((p, fwd, back));
    }
    Ok(out)
}
