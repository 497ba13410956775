//! Recording evidence: observations, approvals, censuses of clients and statements, and the
//! audit trail of every bypass. Every write is one statement (or one transaction) so that a
//! crash never leaves half a record.

use serde::Serialize;
use tokio_postgres::Client;

use super::objects::{OldObject, dropped_objects, tokenize};
use super::{GateReport, MARKER, SoakError};
use crate::plan::Plan;

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
    let row = client
        .query_one(
            "INSERT INTO seqmig.soak_observations (plan_id, name, passed, value, source, actor) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[&plan_id, &criterion.trim(), &passed, &value, &source, &actor],
        )
        .await
        .map_err(SoakError::db(format!("record observation '{criterion}'")))?;
    Ok(row.get(0))
}

/// Records that `actor` approves `contract` of `plan` in `role`, with an audit row. Whether
/// the role counts is the governance matrix's decision at gate time.
pub async fn approve(client: &Client, plan: &Plan, role: &str, actor: &str) -> Result<i64, SoakError> {
    let role = role.trim();
    if role.is_empty() {
        return Err(SoakError::EmptyRole);
    }
    let row = client
        .query_one(
            // Approving twice in the same role is the same fact: kept once, audited each time.
            "WITH a AS (INSERT INTO seqmig.approvals (plan_id, role, actor) VALUES ($1, $2, $3) \
                        ON CONFLICT (plan_id, role, actor) DO UPDATE SET approved_at = excluded.approved_at \
                        RETURNING id) \
             , l AS (INSERT INTO seqmig.audit_log (event, plan_id, actor, reason) \
                     VALUES ('approval', $1, $3, 'approved contract as ' || $2)) \
             SELECT id FROM a",
            &[&plan.id, &role, &actor],
        )
        .await
        .map_err(SoakError::db(format!("record approval by role '{role}'")))?;
    Ok(row.get(0))
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
    let row = client
        .query_one(
            &format!(
                "INSERT INTO seqmig.soak_samples (statements_available, stats_reset, tracked) \
                 VALUES ($1, to_timestamp($2), $3) RETURNING id, {}",
                super::evaluate::utc("taken_at")
            ),
            &[&stats, &stats_reset, &tracked],
        )
        .await
        .map_err(SoakError::db("record a census"))?;
    let (sample_id, taken_at): (i64, String) = (row.get(0), row.get(1));
    let clients = client
        .query(
            &format!(
                "INSERT INTO seqmig.client_samples \
                     (sample_id, taken_at, application_name, usename, client_addr, sessions) \
                 SELECT {MARKER} $1, s.taken_at, a.application_name, a.usename::text, a.client_addr::text, \
                        count(*)::int \
                 FROM pg_stat_activity a, seqmig.soak_samples s \
                 WHERE s.id = $1 AND a.datname = current_database() AND a.pid <> pg_backend_pid() \
                   AND a.backend_type = 'client backend' \
                 GROUP BY s.taken_at, a.application_name, a.usename, a.client_addr \
                 RETURNING application_name, sessions"
            ),
            &[&sample_id],
        )
        .await
        .map_err(SoakError::db("record the client census"))?;
    let mut clients: Vec<(String, i32)> = clients.iter().map(|r| (r.get(0), r.get(1))).collect();
    clients.sort();
    let mut statements = 0;
    if !old.is_empty() {
        let rows = old_path_statements(client, &old)
            .await
            .map_err(SoakError::db("read pg_stat_statements for the census"))?;
        let userids: Vec<u32> = rows.iter().map(|r| r.userid).collect();
        let queryids: Vec<i64> = rows.iter().map(|r| r.queryid).collect();
        let calls: Vec<i64> = rows.iter().map(|r| r.calls).collect();
        let queries: Vec<&str> = rows.iter().map(|r| r.query.as_str()).collect();
        statements = client
            .execute(
                "INSERT INTO seqmig.statement_samples (sample_id, taken_at, userid, queryid, calls, query) \
                 SELECT s.id, s.taken_at, u.userid, u.queryid, u.calls, u.query \
                 FROM seqmig.soak_samples s, \
                      unnest($2::oid[], $3::int8[], $4::int8[], $5::text[]) AS u (userid, queryid, calls, query) \
                 WHERE s.id = $1",
                &[&sample_id, &userids, &queryids, &calls, &queries],
            )
            .await
            .map_err(SoakError::db("record the statement census"))?;
    }
    Ok(SampleSummary { sample_id, taken_at, clients, statements_available: stats, statements })
}

/// The old paths of every active plan in the executor's `seqmig.plans` (none without it).
async fn active_old_paths(client: &Client) -> Result<Vec<OldObject>, SoakError> {
    let rows =
        match client.query("SELECT plan_json::text FROM seqmig.plans WHERE state = 'active'", &[]).await {
            Ok(rows) => rows,
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(SoakError::db("read the active plans")(e)),
        };
    let mut old: Vec<OldObject> = rows
        .iter()
        .filter_map(|r| Plan::from_json(r.get::<_, &str>(0)).ok())
        .flat_map(|p| dropped_objects(&p))
        .collect();
    old.sort();
    old.dedup();
    Ok(old)
}

/// One pg_stat_statements entry of this database.
#[derive(Debug, Clone)]
pub(crate) struct StatementCount {
    pub userid: u32,
    pub queryid: i64,
    pub calls: i64,
    pub query: String,
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
    let detail = serde_json::json!({ "phase": "contract", "failing": failing }).to_string();
    let row = client
        .query_one(
            "INSERT INTO seqmig.audit_log (event, plan_id, actor, reason, detail) \
             VALUES ('break_glass', $1, $2, $3, $4::text::jsonb) RETURNING id",
            &[&plan.id, &actor, &reason.trim(), &detail],
        )
        .await
        .map_err(SoakError::db("record the break-glass in seqmig.audit_log"))?;
    Ok(row.get(0))
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
        serde_json::json!({ "phase": "contract", "evaluated_at": report.evaluated_at, "criteria": criteria })
            .to_string();
    let row = client
        .query_one(
            "INSERT INTO seqmig.audit_log (event, plan_id, actor, detail) \
             VALUES ('gate_open', $1, $2, $3::text::jsonb) RETURNING id",
            &[&plan.id, &actor, &detail],
        )
        .await
        .map_err(SoakError::db("record the gate decision in seqmig.audit_log"))?;
    Ok(row.get(0))
}

/// The decision `contract` of `plan_id` last started on: the id and event (`gate_open` or
/// `break_glass`) of its `audit_log` row, if any.
pub async fn contract_decision(client: &Client, plan_id: &str) -> Result<Option<(i64, String)>, SoakError> {
    let row = client
        .query_opt(
            "SELECT id, event FROM seqmig.audit_log \
             WHERE plan_id = $1 AND event IN ('gate_open', 'break_glass') ORDER BY id DESC LIMIT 1",
            &[&plan_id],
        )
        .await
        .map_err(SoakError::db("read the gate decision from seqmig.audit_log"))?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Records that an interrupted `contract` resumed on the decision in `audit_log` row
/// `decision` instead of a new evaluation. Returns the row id.
pub async fn record_contract_resumed(
    client: &Client,
    plan: &Plan,
    actor: &str,
    decision: i64,
    event: &str,
) -> Result<i64, SoakError> {
    let detail =
        serde_json::json!({ "phase": "contract", "decision": decision, "decision_event": event }).to_string();
    let row = client
        .query_one(
            "INSERT INTO seqmig.audit_log (event, plan_id, actor, reason, detail) \
             VALUES ('contract_resumed', $1, $2, $3, $4::text::jsonb) RETURNING id",
            &[&plan.id, &actor, &format!("resumed on the {event} decision of audit row {decision}"), &detail],
        )
        .await
        .map_err(SoakError::db("record the resumed contract in seqmig.audit_log"))?;
    Ok(row.get(0))
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: String,
    pub event: String,
    pub plan_id: Option<String>,
    pub actor: String,
    pub reason: Option<String>,
    /// Names of the criteria that were failing (break-glass only).
    pub failing: Vec<String>,
}

/// Every audit row, oldest first; `plan_id` narrows to one plan.
pub async fn audit_events(client: &Client, plan_id: Option<&str>) -> Result<Vec<AuditEvent>, SoakError> {
    query_audit(client, "($1::text IS NULL OR plan_id = $1)", plan_id).await
}

/// Every break-glass ever recorded, oldest first, for `seqmig status` (shown forever after).
pub async fn break_glass_events(client: &Client) -> Result<Vec<AuditEvent>, SoakError> {
    query_audit(client, "event = 'break_glass' AND ($1::text IS NULL OR plan_id = $1)", None).await
}

async fn query_audit(
    client: &Client,
    filter: &str,
    plan_id: Option<&str>,
) -> Result<Vec<AuditEvent>, SoakError> {
    let rows = client
        .query(
            &format!(
                "SELECT id, {}, event, plan_id, actor, \
                        reason, \
                        ARRAY(SELECT coalesce(e->>'criterion', e #>> '{{}}') \
                              FROM jsonb_array_elements(CASE jsonb_typeof(detail->'failing') \
                                                        WHEN 'array' THEN detail->'failing' ELSE '[]' END) e) \
                 FROM seqmig.audit_log WHERE {filter} ORDER BY id",
                super::evaluate::utc("at")
            ),
            &[&plan_id],
        )
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        // No ledger yet: nothing was ever bypassed or approved here.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(SoakError::db("read seqmig.audit_log")(e)),
    };
    Ok(rows
        .iter()
        .map(|r| AuditEvent {
            id: r.get(0),
            at: r.get(1),
            event: r.get(2),
            plan_id: r.get(3),
            actor: r.get(4),
            reason: r.get(5),
            failing: r.get::<_, Vec<Option<String>>>(6).into_iter().flatten().collect(),
        })
        .collect())
}

/// The plan stored by the executor in `seqmig.plans`: by id (full `sha256:…` or a unique
/// prefix of its hex), or the only active one when `id` is `None`.
pub async fn stored_plan(client: &Client, id: Option<&str>) -> Result<Plan, SoakError> {
    let rows = match client
        .query(
            "SELECT id, plan_json::text FROM seqmig.plans \
             WHERE ($1::text IS NULL AND state = 'active') OR id = $1 OR id LIKE 'sha256:' || $1 || '%' \
             ORDER BY id",
            &[&id],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
            return Err(match id {
                Some(id) => SoakError::UnknownPlan(id.to_string()),
                None => SoakError::NoPlan,
            });
        }
        Err(e) => return Err(SoakError::db("read seqmig.plans")(e)),
    };
    match (rows.as_slice(), id) {
        ([row], _) => {
            let (pid, text): (String, String) = (row.get(0), row.get(1));
            Plan::from_json(&text).map_err(|source| SoakError::StoredPlan { id: pid, source })
        }
        ([], Some(id)) => Err(SoakError::UnknownPlan(id.to_string())),
        ([], None) => Err(SoakError::NoPlan),
        (rows, _) => Err(SoakError::AmbiguousPlan(rows.len())),
    }
}
