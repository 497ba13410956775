//! The append-only audit log: every gate decision contract started on, every bypass of a
//! closed gate, every approval, every resumed contract. Nothing here is ever updated or
//! deleted (ledger version 5 refuses it).

use serde::Serialize;
use tokio_postgres::Client;

use super::{LedgerError, db, is_missing, ts};

/// What an audit row records (`seqmig.audit_log.event`), spelled in the ledger and in JSON
/// exactly as [`AuditEventKind::as_str`] says. A spelling this seqmig does not know (written
/// by a newer one) is kept as [`AuditEventKind::Other`] and shown as it is: the log is read,
/// never judged, by the code that lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEventKind {
    /// The gate was open when contract started (seqmig apply).
    GateOpen,
    /// A closed gate was bypassed with `--break-glass --reason`.
    BreakGlass,
    /// An interrupted contract resumed on an earlier decision.
    ContractResumed,
    /// The gate's verdict, recorded for a runner file (`seqmig gate --record`).
    GateVerdict,
    /// A role approved contract.
    Approval,
    #[serde(untagged)]
    Other(String),
}

impl AuditEventKind {
    const KNOWN: [AuditEventKind; 5] = [
        AuditEventKind::GateOpen,
        AuditEventKind::BreakGlass,
        AuditEventKind::ContractResumed,
        AuditEventKind::GateVerdict,
        AuditEventKind::Approval,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            AuditEventKind::GateOpen => "gate_open",
            AuditEventKind::BreakGlass => "break_glass",
            AuditEventKind::ContractResumed => "contract_resumed",
            AuditEventKind::GateVerdict => "gate_verdict",
            AuditEventKind::Approval => "approval",
            AuditEventKind::Other(s) => s,
        }
    }

    /// The event as the ledger spells it.
    pub fn from_ledger(s: &str) -> AuditEventKind {
        AuditEventKind::KNOWN
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or_else(|| AuditEventKind::Other(s.to_string()))
    }
}

impl std::fmt::Display for AuditEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Appends to `seqmig.audit_log`.
pub async fn audit(
    client: &Client,
    plan_id: Option<&str>,
    event: &str,
    actor: &str,
    reason: Option<&str>,
    detail: &serde_json::Value,
) -> Result<(), LedgerError> {
    let detail = detail.to_string();
    client
        .execute(
            "INSERT INTO seqmig.audit_log (plan_id, event, actor, reason, detail) VALUES ($1, $2, $3, $4, $5::text::jsonb)",
            &[&plan_id, &event, &actor, &reason, &detail],
        )
        .await
        .map_err(db("write the audit log"))?;
    Ok(())
}

/// One row of `seqmig.audit_log`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub event: AuditEventKind,
    pub actor: String,
    pub reason: Option<String>,
    pub at: String,
    pub detail: serde_json::Value,
}

pub async fn audit_entries(client: &Client, plan_id: &str) -> Result<Vec<AuditEntry>, LedgerError> {
    let rows = client
        .query(
            &format!(
                "SELECT event, actor, reason, {}, detail::text FROM seqmig.audit_log WHERE plan_id = $1 ORDER BY id",
                ts("at")
            ),
            &[&plan_id],
        )
        .await
        .map_err(db("read the audit log"))?;
    Ok(rows
        .iter()
        .map(|r| AuditEntry {
            event: AuditEventKind::from_ledger(r.get(0)),
            actor: r.get(1),
            reason: r.get(2),
            at: r.get(3),
            detail: serde_json::from_str(r.get::<_, &str>(4)).unwrap_or(serde_json::Value::Null),
        })
        .collect())
}

/// Records a bypass of a closed gate: one `break_glass` row with actor, time (database
/// clock), reason and `detail` (the failing criteria with their evidence). Returns its id.
pub async fn record_break_glass(
    client: &Client,
    plan_id: &str,
    actor: &str,
    reason: &str,
    detail: &serde_json::Value,
) -> Result<i64, LedgerError> {
    let detail = detail.to_string();
    let row = client
        .query_one(
            "INSERT INTO seqmig.audit_log (event, plan_id, actor, reason, detail) \
             VALUES ($5, $1, $2, $3, $4::text::jsonb) RETURNING id",
            &[&plan_id, &actor, &reason, &detail, &AuditEventKind::BreakGlass.as_str()],
        )
        .await
        .map_err(db("record the break-glass in seqmig.audit_log"))?;
    Ok(row.get(0))
}

/// Records that the gate was open when `contract` started: one `gate_open` row with the
/// evaluation in `detail`. Returns its id.
pub async fn record_gate_open(
    client: &Client,
    plan_id: &str,
    actor: &str,
    detail: &serde_json::Value,
) -> Result<i64, LedgerError> {
    let detail = detail.to_string();
    let row = client
        .query_one(
            "INSERT INTO seqmig.audit_log (event, plan_id, actor, detail) \
             VALUES ($4, $1, $2, $3::text::jsonb) RETURNING id",
            &[&plan_id, &actor, &detail, &AuditEventKind::GateOpen.as_str()],
        )
        .await
        .map_err(db("record the gate decision in seqmig.audit_log"))?;
    Ok(row.get(0))
}

/// The decision `contract` of `plan_id` last started on: the id and event (`gate_open` or
/// `break_glass`) of its row, if any.
pub async fn contract_decision(
    client: &Client,
    plan_id: &str,
) -> Result<Option<(i64, AuditEventKind)>, LedgerError> {
    let row = client
        .query_opt(
            "SELECT id, event FROM seqmig.audit_log \
             WHERE plan_id = $1 AND event IN ('gate_open', 'break_glass') ORDER BY id DESC LIMIT 1",
            &[&plan_id],
        )
        .await
        .map_err(db("read the gate decision from seqmig.audit_log"))?;
    Ok(row.map(|r| (r.get(0), AuditEventKind::from_ledger(r.get(1)))))
}

/// Records that an interrupted `contract` resumed on an earlier decision instead of a new
/// evaluation: one `contract_resumed` row. Returns its id.
pub async fn record_contract_resumed(
    client: &Client,
    plan_id: &str,
    actor: &str,
    reason: &str,
    detail: &serde_json::Value,
) -> Result<i64, LedgerError> {
    let detail = detail.to_string();
    let row = client
        .query_one(
            "INSERT INTO seqmig.audit_log (event, plan_id, actor, reason, detail) \
             VALUES ($5, $1, $2, $3, $4::text::jsonb) RETURNING id",
            &[&plan_id, &actor, &reason, &detail, &AuditEventKind::ContractResumed.as_str()],
        )
        .await
        .map_err(db("record the resumed contract in seqmig.audit_log"))?;
    Ok(row.get(0))
}

/// One row of the audit log, as `seqmig audit` and `seqmig status` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: String,
    pub event: AuditEventKind,
    pub plan_id: Option<String>,
    pub actor: String,
    pub reason: Option<String>,
    /// Names of the criteria that were failing (break-glass only).
    pub failing: Vec<String>,
}

/// Every audit row, oldest first; `plan_id` narrows to one plan. None without a ledger.
pub async fn audit_events(client: &Client, plan_id: Option<&str>) -> Result<Vec<AuditEvent>, LedgerError> {
    query_audit(client, "($1::text IS NULL OR plan_id = $1)", plan_id).await
}

/// Every break-glass ever recorded, oldest first (shown by `seqmig status` forever after).
pub async fn break_glass_events(client: &Client) -> Result<Vec<AuditEvent>, LedgerError> {
    query_audit(client, "event = 'break_glass' AND ($1::text IS NULL OR plan_id = $1)", None).await
}

async fn query_audit(
    client: &Client,
    filter: &str,
    plan_id: Option<&str>,
) -> Result<Vec<AuditEvent>, LedgerError> {
    let rows = client
        .query(
            &format!(
                "SELECT id, {}, event, plan_id, actor, \
                        reason, \
                        ARRAY(SELECT coalesce(e->>'criterion', e #>> '{{}}') \
                              FROM jsonb_array_elements(CASE jsonb_typeof(detail->'failing') \
                                                        WHEN 'array' THEN detail->'failing' ELSE '[]' END) e) \
                 FROM seqmig.audit_log WHERE {filter} ORDER BY id",
                super::utc("at")
            ),
            &[&plan_id],
        )
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        // No ledger yet: nothing was ever bypassed or approved here.
        Err(e) if is_missing(&e) => return Ok(Vec::new()),
        Err(e) => return Err(db("read seqmig.audit_log")(e)),
    };
    Ok(rows
        .iter()
        .map(|r| AuditEvent {
            id: r.get(0),
            at: r.get(1),
            event: AuditEventKind::from_ledger(r.get(2)),
            plan_id: r.get(3),
            actor: r.get(4),
            reason: r.get(5),
            failing: r.get::<_, Vec<Option<String>>>(6).into_iter().flatten().collect(),
        })
        .collect())
}
