//! What humans and scripts read from a plan: the Markdown runbook (per release: purpose,
//! steps with SQL, lock and expected hold, verification, rollback in reverse order, the gate
//! in front of contract, the one-way door, governance) and the per-phase SQL files
//! (`1-expand.sql` … with matching `*.rollback.sql`). Everything is rendered from templates.

use serde_json::{Value, json};

use crate::diff::GovernanceSection;
use crate::plan::{LockMode, Phase, Planned, Step};
use crate::render::{RenderError, Renderer};

/// How long a step is expected to hold its lock, in words.
pub fn expected_hold(s: &Step) -> &'static str {
    match s.lock {
        LockMode::None => "no table lock",
        LockMode::RowExclusive if s.backfill.is_some() => {
            "row locks of one batch at a time; batch size adapts to a target duration, reads and writes continue"
        }
        LockMode::RowExclusive => "a row lock for milliseconds",
        LockMode::ShareUpdateExclusive if s.scans_table => {
            "for the whole scan or build (minutes to hours on big tables), but reads and writes continue; only DDL, VACUUM and ANALYZE wait"
        }
        LockMode::ShareUpdateExclusive => "milliseconds; reads and writes continue",
        LockMode::AccessExclusive if s.rewrites_table => {
            "the full table rewrite: reads and writes are blocked for its whole duration"
        }
        LockMode::AccessExclusive if s.scans_table => {
            "a full scan: reads and writes are blocked for its whole duration"
        }
        LockMode::AccessExclusive => {
            "milliseconds (catalog only), but it queues behind running transactions and blocks everything behind it; seqmig takes it with a short lock_timeout and retries"
        }
        LockMode::ShareRowExclusive => {
            "milliseconds (catalog only); blocks writes while held; taken with a short lock_timeout and retries"
        }
        LockMode::Share => "the index build on a new, empty table: milliseconds",
        LockMode::Exclusive => "milliseconds; blocks writes while held",
        LockMode::AccessShare | LockMode::RowShare => "milliseconds; blocks only ACCESS EXCLUSIVE",
    }
}

fn phase_purpose(p: Phase) -> &'static str {
    match p {
        Phase::Expand => {
            "Additive changes only. The running release (N-1) keeps working unchanged; deploy it again freely."
        }
        Phase::DualWrite => {
            "Triggers keep the old and the new shape of every row in step, in both directions, while N-1 writes."
        }
        Phase::Backfill => {
            "Existing rows are copied into the new shape in small batches; constraints are validated without blocking writes."
        }
        Phase::Switch => {
            "The release point: deploy release N together with this phase. The authority flag flips to the new shape; the triggers keep the old shape current, so switching back loses nothing."
        }
        Phase::Contract => {
            "The old shape is removed. Release N-1 must be gone everywhere. Steps without a rollback are the one-way door, guarded by the soak gate."
        }
    }
}

pub(crate) fn step_value(planned: &Planned, s: &Step) -> Value {
    let plan = &planned.plan;
    let change = plan.changes.iter().find(|c| c.id == s.change);
    let note = planned.notes.get(&s.id);
    json!({
        "id": s.id,
        "change": s.change,
        "summary": change.map(|c| c.summary.clone()).unwrap_or_default(),
        "object": change.map(|c| c.object.clone()).unwrap_or_default(),
        "purpose": note.map(|n| n.purpose.clone()).unwrap_or_default(),
        "verify": note.and_then(|n| n.verify.clone()),
        "sql": s.sql,
        "rollback_sql": s.rollback_sql,
        "rollback_lines": s.rollback_sql.as_deref().unwrap_or("").lines().collect::<Vec<_>>(),
        "one_way": s.one_way,
        "transactional": s.transactional,
        "lock": s.lock.as_str(),
        "lock_target": s.lock_target,
        // Per relation where the modes differ (plan v3): `MODE on relation`.
        "lock_each": s.effects.lock.as_ref().filter(|l| !l.per_relation.is_empty()).map(|l| {
            l.each().iter().map(|(r, m)| json!({ "mode": m.as_str(), "relation": r.quoted() })).collect::<Vec<_>>()
        }),
        "hold": expected_hold(s),
        "rewrites_table": s.rewrites_table,
        "scans_table": s.scans_table,
        "backfill": s.backfill.is_some(),
        "depends_on": s.depends_on,
    })
}

/// `(phase, its SQL file, its rollback file)` for every phase with steps.
pub fn phase_files(planned: &Planned, r: &Renderer) -> Result<Vec<(Phase, String, String)>, RenderError> {
    let plan = &planned.plan;
    let mut out = Vec::new();
    for p in Phase::ALL {
        let steps: Vec<Value> = plan.steps_of(p).into_iter().map(|s| step_value(planned, s)).collect();
        if steps.is_empty() {
            continue;
        }
        let mut rev = steps.clone();
        rev.reverse();
        let base = json!({ "plan_id": plan.id, "phase": p.as_str(), "number": p.number() });
        let mut fwd_ctx = base.clone();
        fwd_ctx["steps"] = Value::Array(steps);
        let mut back_ctx = base;
        back_ctx["steps"] = Value::Array(rev);
        let mut sql = r.render_value("phase.sql", &fwd_ctx)?;
        sql.push('\n');
        let mut back = r.render_value("rollback.sql", &back_ctx)?;
        back.push('\n');
        out.push((p, sql, back));
    }
    Ok(out)
}

/// File name of a phase's SQL: `1-expand.sql`, `1-expand.rollback.sql`.
pub fn phase_file_name(p: Phase, rollback: bool) -> String {
    format!("{}-{}{}.sql", p.number(), p.as_str(), if rollback { ".rollback" } else { "" })
}

/// The Markdown runbook.
pub fn runbook(
    planned: &Planned,
    governance: &GovernanceSection,
    r: &Renderer,
) -> Result<String, RenderError> {
    let plan = &planned.plan;
    let phases: Vec<Value> = Phase::ALL
        .iter()
        .filter_map(|&p| {
            let steps: Vec<Value> = plan.steps_of(p).into_iter().map(|s| step_value(planned, s)).collect();
            if steps.is_empty() {
                return None;
            }
            let mut rev = steps.clone();
            rev.reverse();
            Some(json!({
                "name": p.as_str(),
                "number": p.number(),
                "purpose": phase_purpose(p),
                "steps": steps,
                "rollback": rev,
                "sql_file": phase_file_name(p, false),
                "rollback_file": phase_file_name(p, true),
            }))
        })
        .collect();
    let one_way: Vec<Value> =
        plan.steps.iter().filter(|s| s.one_way).map(|s| step_value(planned, s)).collect();
    let errors = plan.findings.iter().filter(|f| f.is_error()).count();
    let findings: Vec<Value> = plan
        .findings
        .iter()
        .map(|f| {
            json!({
                "severity": f.severity, "code": f.code, "object": f.object, "message": f.message,
                "help_lines": f.help.lines().collect::<Vec<_>>(),
            })
        })
        .collect();
    let ctx = json!({
        "plan": plan,
        "findings": findings,
        "short_id": plan.short_id(),
        "phases": phases,
        "one_way": one_way,
        "errors": errors,
        "warnings": plan.findings.len() - errors,
        "governance": governance,
        "has_contract": !plan.steps_of(Phase::Contract).is_empty(),
    });
    let mut s = r.render_value("runbook.md", &ctx)?;
    s.push('\n');
    Ok(s)
}
