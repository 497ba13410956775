//! Recording evidence: observations, approvals, censuses of clients and statements, and the
//! audit trail of every bypass. Every write is one statement (or one transaction) so that a
//! crash never leaves half a record.

use serde::Serialize;
use tokio_postgres::Client;

use super::objects::{OldObject, dropped_objects, tokenize};
use super::{GateReport, MARKER, SoakError};
use crate::ledger::{self, evidence::StatementSample as StatementCount};
use crate::plan::Plan;

pub use crate::ledger::AuditEvent;

/// Records one external check (`seqmig soak record`). `plan_id` `None` = counts for every plan.
pub async fn record_observation(
    client: &Client,
    plan_id: Option<&str>,
    criterion: &str,
    passed: bool,
    value: Option<&str>,
    source: Option<&str>,
    actor: &str,
) -> Result<i64, SoakError> {
    if criterion.trim().is_empty() {
        return Err(SoakError::Config("an observation needs a name: --criterion NAME".into()));
    }
    Ok(ledger::evidence::record_observation(client, plan_id, criterion.trim(), passed, value, source, actor)
        .await?)
}

/// Records that `actor` approves `contract` of `plan` in `role`, with an audit row. Whether
/// the role counts is the governance matrix's decision at gate time.
pub async fn approve(client: &Client, plan: &Plan, role: &str, actor: &str) -> Result<i64, SoakError> {
    let role = role.trim();
    if role.is_empty() {
        return Err(SoakError::EmptyRole);
    }
    Ok(ledger::evidence::record_approval(client, &plan.id, role, actor).await?)
}

/// What one census saw.
#[derive(Debug, Clone, Serialize)]
pub struct SampleSummary {
    pub sample_id: i64,
    pub taken_at: String,
    /// Client sessions of this database (excluding this one), by application_name.
    pub clients: Vec<(String, i32)>,
    /// Whether pg_stat_statements could be read.
    pub statements_available: bool,
    /// Statements naming the old path of an active plan, recorded from pg_stat_statements.
    pub statements: u64,
}

/// Takes a census now: the client sessions of this database by `application_name`, and the
/// `pg_stat_statements` counters of the DML naming the old path of an active plan, when the
/// extension can be read. Meant to run
/// from cron (`seqmig soak sample`); the executor should also call it right after `switch`
/// succeeds, which gives `old_path_silent` an exact baseline.
pub async fn take_sample(client: &Client) -> Result<SampleSummary, SoakError> {
    let stats = statements_available(client).await;
    let stats_reset = if stats { stats_reset(client).await } else { None };
    // Only statements naming the old path of an active plan are kept: a census every few
    // minutes must not copy all of pg_stat_statements into the ledger.
    let old = if stats { active_old_paths(client).await? } else { Vec::new() };
    let tracked: Vec<String> = old.iter().map(ToString::to_string).collect();
    let (sample_id, taken_at) = ledger::evidence::insert_sample(client, stats, stats_reset, &tracked).await?;
    let mut clients = ledger::evidence::record_client_census(client, sample_id).await?;
    clients.sort();
    let mut statements = 0;
    if !old.is_empty() {
        let rows = old_path_statements(client, &old)
            .await
            .map_err(SoakError::db("read pg_stat_statements for the census"))?;
        statements = ledger::evidence::record_statement_census(client, sample_id, &rows).await?;
    }
    Ok(SampleSummary { sample_id, taken_at, clients, statements_available: stats, statements })
}

/// The old paths of every active plan in the executor's `seqmig.plans` (none without it).
async fn active_old_paths(client: &Client) -> Result<Vec<OldObject>, SoakError> {
    let mut old: Vec<OldObject> = ledger::active_plan_jsons(client)
        .await?
        .iter()
        .filter_map(|text| Plan::from_json(text).ok())
        .flat_map(|p| dropped_objects(&p))
        .collect();
    old.sort();
    old.dedup();
    Ok(old)
}

/// The DML statements of this database whose text names one of `old` (as identifiers, see
/// [`OldObject::named_in`]). seqmig's own statements carry [`MARKER`] and are left out, so
/// the gate never counts itself. The SQL prefilter on names keeps the scan cheap.
pub(crate) async fn old_path_statements(
    client: &Client,
    old: &[OldObject],
) -> Result<Vec<StatementCount>, tokio_postgres::Error> {
    let names: Vec<String> = old
        .iter()
        .map(|o| match o {
            OldObject::Column { table, .. } | OldObject::Relation(table) => {
                table.name.as_str().to_lowercase()
            }
        })
        .collect();
    let rows = client
        .query(
            &format!(
                "SELECT {MARKER} userid, queryid, calls, query FROM pg_stat_statements \
                 WHERE queryid IS NOT NULL \
                   AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                   AND query ~* '^\\s*(select|insert|update|delete|with|merge|copy|table)\\M' \
                   AND strpos(query, '{MARKER}') = 0 \
                   AND EXISTS (SELECT 1 FROM unnest($1::text[]) n WHERE strpos(lower(query), n) > 0)"
            ),
            &[&names],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StatementCount { userid: r.get(0), queryid: r.get(1), calls: r.get(2), query: r.get(3) })
        .filter(|s| {
            let toks = tokenize(&s.query);
            old.iter().any(|o| o.named_in(&toks))
        })
        .collect())
}

/// Whether `pg_stat_statements` exists in this database and can be read (it must also be in
/// `shared_preload_libraries`, or reading it fails).
pub(crate) async fn statements_available(client: &Client) -> bool {
    let installed = client
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'", &[])
        .await
        .ok()
        .flatten()
        .is_some();
    installed && client.query_opt("SELECT 1 FROM pg_stat_statements LIMIT 1", &[]).await.is_ok()
}

/// When the statement statistics were last reset, as an epoch (PostgreSQL 14+).
pub(crate) async fn stats_reset(client: &Client) -> Option<f64> {
    client
        .query_opt("SELECT extract(epoch FROM stats_reset)::float8 FROM pg_stat_statements_info", &[])
        .await
        .ok()
        .flatten()
        .and_then(|r| r.get(0))
}

/// Records a bypass of a closed gate: one `audit_log` row with actor, time (database clock),
/// reason and the failing criteria with their evidence. Returns the row id.
pub async fn record_break_glass(
    client: &Client,
    plan: &Plan,
    actor: &str,
    reason: &str,
    report: &GateReport,
) -> Result<i64, SoakError> {
    if reason.trim().is_empty() {
        return Err(SoakError::EmptyReason);
    }
    let failing: Vec<serde_json::Value> = report
        .failing()
        .map(|c| serde_json::json!({ "criterion": c.name, "evidence": c.evidence, "verdict": c.verdict }))
        .collect();
    let detail = serde_json::json!({ "phase": "contract", "failing": failing });
    Ok(ledger::record_break_glass(client, &plan.id, actor, reason.trim(), &detail).await?)
}

/// Records that the gate was open when `contract` started: one `audit_log` row `gate_open`
/// with the evaluation. A contract interrupted part-way resumes on this decision (its drops
/// have removed what a fresh evaluation would read). Returns the row id.
pub async fn record_gate_open(
    client: &Client,
    plan: &Plan,
    actor: &str,
    report: &GateReport,
) -> Result<i64, SoakError> {
    let criteria: Vec<serde_json::Value> = report
        .criteria
        .iter()
        .map(|c| serde_json::json!({ "criterion": c.name, "evidence": c.evidence, "verdict": c.verdict }))
        .collect();
    let detail =
        serde_json::json!({ "phase": "contract", "evaluated_at": report.evaluated_at, "criteria": criteria });
    Ok(ledger::record_gate_open(client, &plan.id, actor, &detail).await?)
}

/// The decision `contract` of `plan_id` last started on: the id and event (`gate_open` or
/// `break_glass`) of its `audit_log` row, if any.
pub async fn contract_decision(
    client: &Client,
    plan_id: &str,
) -> Result<Option<(i64, ledger::AuditEventKind)>, SoakError> {
    Ok(ledger::contract_decision(client, plan_id).await?)
}

/// Records that an interrupted `contract` resumed on the decision in `audit_log` row
/// `decision` instead of a new evaluation. Returns the row id.
pub async fn record_contract_resumed(
    client: &Client,
    plan: &Plan,
    actor: &str,
    decision: i64,
    event: &ledger::AuditEventKind,
) -> Result<i64, SoakError> {
    let detail =
        serde_json::json!({ "phase": "contract", "decision": decision, "decision_event": event.as_str() });
    let reason = format!("resumed on the {event} decision of audit row {decision}");
    Ok(ledger::record_contract_resumed(client, &plan.id, actor, &reason, &detail).await?)
}

/// Every audit row, oldest first; `plan_id` narrows to one plan.
pub async fn audit_events(client: &Client, plan_id: Option<&str>) -> Result<Vec<AuditEvent>, SoakError> {
    Ok(ledger::audit_events(client, plan_id).await?)
}

/// Every break-glass ever recorded, oldest first, for `seqmig status` (shown forever after).
pub async fn break_glass_events(client: &Client) -> Result<Vec<AuditEvent>, SoakError> {
    Ok(ledger::break_glass_events(client).await?)
}

/// The plan stored by the executor in `seqmig.plans`: by id or prefix, under the one rule of
/// [`ledger::resolve_plan_id`], or the only active one when `id` is `None`.
pub async fn stored_plan(client: &Client, id: Option<&str>) -> Result<Plan, SoakError> {
    let id = match id {
        Some(given) => ledger::resolve_plan_id(client, given).await?,
        None if ledger::check_version(client).await? == 0 => return Err(SoakError::NoPlan),
        None => match ledger::active_plan_ids(client).await {
            Ok(ids) => match ids.as_slice() {
                [] => return Err(SoakError::NoPlan),
                [one] => one.clone(),
                more => {
                    let listed = crate::exec::inflight::candidates(client).await.unwrap_or_else(|_| {
                        more.iter().map(|id| crate::exec::short_id(id).to_string()).collect()
                    });
                    return Err(SoakError::AmbiguousPlan(listed));
                }
            },
            Err(e) if e.is_missing_table() => return Err(SoakError::NoPlan),
            Err(e) => return Err(e.into()),
        },
    };
    match ledger::stored_plan(client, &id).await? {
        Some(stored) => Ok(stored.plan),
        None => Err(SoakError::UnknownPlan(id)),
    }
}
