//! The verdict a runner's contract file checks. The gate is evaluated by the binary only
//! (`soak::evaluate`, one implementation); `seqmig gate --record` appends the verdict to
//! the append-only, server-timed `seqmig.audit_log` (ledger v5), and
//! `seqmig.assert_gate_open(plan)` in the database reads the latest one. A closed verdict is
//! recorded too: the guard then names the criteria that were missing.

use tokio_postgres::Client;

use crate::plan::Plan;
use crate::soak::{GateReport, SoakError};

/// Appends `gate_verdict` for `plan`: open or not, when (database clock), each criterion and
/// the blocking ones with their evidence. Returns the audit row id.
pub async fn record_verdict(
    client: &Client,
    plan: &Plan,
    actor: &str,
    report: &GateReport,
) -> Result<i64, SoakError> {
    let item = |c: &crate::soak::CriterionReport| serde_json::json!({ "criterion": c.name, "evidence": c.evidence, "verdict": c.verdict });
    let detail = serde_json::json!({
        "phase": "contract",
        "open": report.open,
        "evaluated_at": report.evaluated_at,
        "criteria": report.criteria.iter().map(item).collect::<Vec<_>>(),
        "blocking": report.failing().map(item).collect::<Vec<_>>(),
    })
    .to_string();
    let row = client
        .query_one(
            "INSERT INTO seqmig.audit_log (event, plan_id, actor, detail) \
             VALUES ('gate_verdict', $1, $2, $3::text::jsonb) RETURNING id",
            &[&plan.id, &actor, &detail],
        )
        .await
        .map_err(SoakError::db("record the gate verdict in seqmig.audit_log"))?;
    Ok(row.get(0))
}

/// What the database guard says now: `Ok(())` when `seqmig.assert_gate_open` passes, else
/// its error message. For tests and `seqmig gate --record`'s confirmation.
pub async fn guard_says(client: &Client, plan_id: &str) -> Result<Result<(), String>, tokio_postgres::Error> {
    match client.execute("SELECT seqmig.assert_gate_open($1)", &[&plan_id]).await {
        Ok(_) => Ok(Ok(())),
        Err(e) => match e.as_db_error() {
            Some(db) => Ok(Err(db.message().to_string())),
            None => Err(e),
        },
    }
}
