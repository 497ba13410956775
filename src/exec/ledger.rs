//! The ledger: schema `seqmig` in the target database, created and upgraded by seqmig itself.
//! `seqmig.ledger_version` records which of the ordered [`MIGRATIONS`] ran; each runs once,
//! in its own transaction, under a transaction-level advisory lock so that two seqmig
//! processes upgrading at the same time serialise instead of racing on `CREATE`.
//!
//! Other modules (backfill, soak) read and write their own tables here; this file owns the
//! schema and the executor's queries.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::ExecError;
use crate::plan::{Phase, Plan};

/// One ledger schema migration: version, what it adds, its SQL.
#[derive(Debug, Clone, Copy)]
pub struct LedgerMigration {
    pub version: i32,
    pub description: &'static str,
    pub sql: &'static str,
}

/// The ledger's history, in order. Append only: a released migration never changes.
pub const MIGRATIONS: &[LedgerMigration] = &[
    LedgerMigration {
        version: 1,
        description: "plans, phase and step runs, runners, flags",
        sql: include_str!("sql/ledger_v1.sql"),
    },
    // The gate and the backfill engine own their tables' DDL (idempotent); the ledger
    // versions it here so every command brings a database to the same shape.
    LedgerMigration {
        version: 2,
        description: "gate evidence: soak observations, approvals, append-only audit log, samples",
        sql: crate::soak::LEDGER_SQL,
    },
    LedgerMigration {
        version: 3,
        description: "backfills: progress, batches, control",
        sql: crate::backfill::LEDGER_SQL,
    },
    // The dual-write triggers run as the application's role: seqmig.flag works for any
    // role that may write the table, and nothing else in the ledger is open to it.
    LedgerMigration {
        version: 4,
        description: "least privilege: seqmig.flag security definer, ledger closed to PUBLIC",
        sql: include_str!("sql/ledger_privileges.sql"),
    },
    LedgerMigration {
        version: 5,
        description: "evidence is append-only (no UPDATE, DELETE or TRUNCATE) and timed by the server clock",
        sql: crate::soak::EVIDENCE_GUARD_SQL,
    },
];

/// Transaction-level advisory lock key serialising ledger upgrades ("seqm", "ledg").
pub(crate) const UPGRADE_LOCK: i64 = (0x7365_716d_i64 << 32) | 0x6c65_6467;

/// The schema and the table recording which [`MIGRATIONS`] ran; idempotent.
const VERSION_TABLE_SQL: &str = "CREATE SCHEMA IF NOT EXISTS seqmig;
CREATE TABLE IF NOT EXISTS seqmig.ledger_version (
    version        integer PRIMARY KEY,
    description    text NOT NULL,
    seqmig_version text NOT NULL,
    applied_at     timestamptz NOT NULL DEFAULT now()
);";

/// What [`ensure`] does, as SQL a migration runner can run (issue 23): creates or upgrades
/// the ledger to [`current_version`], idempotently, under the same advisory lock. Each
/// migration runs once inside a `DO` block (no psql needed), so the text works in a
/// transaction or outside one. Refuses a ledger newer than this build knows.
pub fn install_sql() -> String {
    let mut s = format!(
        "DO $seqmig_ledger$\nBEGIN\n    PERFORM set_config('client_min_messages', 'warning', true);\n    \
         PERFORM pg_advisory_xact_lock({UPGRADE_LOCK});\n    EXECUTE $seqmig_v0${VERSION_TABLE_SQL}$seqmig_v0$;\n    \
         IF (SELECT max(version) FROM seqmig.ledger_version) > {known} THEN\n        \
         RAISE EXCEPTION 'the seqmig ledger in this database is newer than this file knows ({known}); plan again with a newer seqmig';\n    \
         END IF;\n",
        known = current_version()
    );
    for m in MIGRATIONS {
        let tag = format!("$seqmig_v{}$", m.version);
        assert!(!m.sql.contains(&tag), "ledger migration {} contains its quote tag", m.version);
        s.push_str(&format!(
            "    IF NOT EXISTS (SELECT 1 FROM seqmig.ledger_version WHERE version = {v}) THEN\n        \
             EXECUTE {tag}{sql}{tag};\n        \
             INSERT INTO seqmig.ledger_version (version, description, seqmig_version) VALUES ({v}, {d}, {sv});\n    \
             END IF;\n",
            v = m.version,
            sql = m.sql,
            d = crate::render::quote_literal(m.description),
            sv = crate::render::quote_literal(env!("CARGO_PKG_VERSION")),
        ));
    }
    s.push_str("END\n$seqmig_ledger$;\n");
    s
}

/// The newest ledger version this build knows.
pub fn current_version() -> i32 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

fn db(context: &str) -> impl FnOnce(tokio_postgres::Error) -> ExecError + '_ {
    move |source| ExecError::Db { context: context.to_string(), source }
}

/// Creates or upgrades the ledger to [`current_version`]. Safe to call concurrently and on
/// every command; returns the version found before upgrading (0 when there was none).
pub async fn ensure(client: &Client) -> Result<i32, ExecError> {
    let found = version(client).await?;
    if found > current_version() {
        return Err(ExecError::LedgerTooNew { found, known: current_version() });
    }
    if found == current_version() {
        return Ok(found);
    }
    client
        .batch_execute(&format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock({UPGRADE_LOCK});
             {VERSION_TABLE_SQL}
             COMMIT;"
        ))
        .await
        .map_err(db("create the seqmig ledger schema"))?;
    for m in MIGRATIONS {
        client.batch_execute("BEGIN").await.map_err(db("begin a ledger upgrade"))?;
        let result = async {
            client
                .execute("SELECT pg_advisory_xact_lock($1)", &[&UPGRADE_LOCK])
                .await
                .map_err(db("lock the ledger for upgrade"))?;
            let done: i64 = client
                .query_one("SELECT count(*) FROM seqmig.ledger_version WHERE version = $1", &[&m.version])
                .await
                .map_err(db("read the ledger version"))?
                .get(0);
            if done == 0 {
                client.batch_execute(m.sql).await.map_err(|source| ExecError::Db {
                    context: format!("upgrade the ledger to version {} ({})", m.version, m.description),
                    source,
                })?;
                client
                    .execute(
                        "INSERT INTO seqmig.ledger_version (version, description, seqmig_version) \
                         VALUES ($1, $2, $3)",
                        &[&m.version, &m.description, &env!("CARGO_PKG_VERSION")],
                    )
                    .await
                    .map_err(db("record the ledger version"))?;
            }
            Ok::<(), ExecError>(())
        }
        .await;
        match result {
            Ok(()) => client.batch_execute("COMMIT").await.map_err(db("commit a ledger upgrade"))?,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(e);
            }
        }
    }
    Ok(found)
}

/// The ledger version in the database, 0 when there is no ledger.
pub async fn version(client: &Client) -> Result<i32, ExecError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('seqmig.ledger_version') IS NOT NULL", &[])
        .await
        .map_err(db("look for the seqmig ledger"))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<i32> = client
        .query_one("SELECT max(version) FROM seqmig.ledger_version", &[])
        .await
        .map_err(db("read the ledger version"))?
        .get(0);
    Ok(v.unwrap_or(0))
}

/// A plan as stored in `seqmig.plans`.
#[derive(Debug, Clone)]
pub struct StoredPlan {
    pub plan: Plan,
    pub state: String,
    pub created_at: String,
    pub actor: String,
}

const TS: &str = r#"'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'"#;

fn ts(col: &str) -> String {
    format!("to_char({col} AT TIME ZONE 'UTC', {TS})")
}

/// Reads one stored plan, re-checking its id against its content.
pub async fn stored_plan(client: &Client, id: &str) -> Result<Option<StoredPlan>, ExecError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT plan_json::text, state, {}, actor FROM seqmig.plans WHERE id = $1",
                ts("created_at")
            ),
            &[&id],
        )
        .await
        .map_err(db("read a stored plan"))?;
    let Some(row) = row else { return Ok(None) };
    let text: String = row.get(0);
    let plan = Plan::from_json(&text)
        .map_err(|source| ExecError::StoredPlanCorrupt { plan: id.to_string(), source })?;
    Ok(Some(StoredPlan { plan, state: row.get(1), created_at: row.get(2), actor: row.get(3) }))
}

/// Ids of plans whose state is `active`, oldest first.
pub async fn active_plan_ids(client: &Client) -> Result<Vec<String>, ExecError> {
    plan_ids(client, Some("active")).await
}

/// Ids of plans, optionally only those in `state`, oldest first.
pub async fn plan_ids(client: &Client, state: Option<&str>) -> Result<Vec<String>, ExecError> {
    let rows = client
        .query(
            "SELECT id FROM seqmig.plans WHERE $1::text IS NULL OR state = $1 ORDER BY created_at, id",
            &[&state],
        )
        .await
        .map_err(db("list stored plans"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The most recently updated plan in `state`.
pub async fn latest_plan_id(client: &Client, state: &str) -> Result<Option<String>, ExecError> {
    let row = client
        .query_opt(
            "SELECT id FROM seqmig.plans WHERE state = $1 ORDER BY updated_at DESC, id LIMIT 1",
            &[&state],
        )
        .await
        .map_err(db("find the latest plan"))?;
    Ok(row.map(|r| r.get(0)))
}

/// Stores a plan on its first apply; the JSON is kept exactly as serialised.
pub async fn insert_plan(client: &Client, plan: &Plan, actor: &str) -> Result<(), ExecError> {
    let json = plan.to_json_pretty();
    client
        .execute(
            "INSERT INTO seqmig.plans (id, plan_json, actor) VALUES ($1, $2::text::json, $3) \
             ON CONFLICT (id) DO NOTHING",
            &[&plan.id, &json, &actor],
        )
        .await
        .map_err(db("store the plan"))?;
    Ok(())
}

pub async fn set_plan_state(client: &Client, plan_id: &str, state: &str) -> Result<(), ExecError> {
    client
        .execute("UPDATE seqmig.plans SET state = $2, updated_at = now() WHERE id = $1", &[&plan_id, &state])
        .await
        .map_err(db("update the plan state"))?;
    Ok(())
}

/// Records this session as the runner (after the advisory lock was taken).
pub async fn register_runner(client: &Client, actor: &str, command: &str) -> Result<(), ExecError> {
    client
        .execute(
            "INSERT INTO seqmig.runners (pid, backend_start, actor, command) \
             SELECT pid, backend_start, $1, $2 FROM pg_stat_activity WHERE pid = pg_backend_pid() \
             ON CONFLICT (pid, backend_start) DO UPDATE SET actor = excluded.actor, command = excluded.command",
            &[&actor, &command],
        )
        .await
        .map_err(db("register the runner"))?;
    Ok(())
}

/// The latest ledger row for one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    pub action: String,
    pub outcome: String,
    /// 'running' and its backend is gone.
    pub interrupted: bool,
    pub backend_pid: i32,
    pub sqlstate: Option<String>,
    pub message: Option<String>,
    pub attempts: i32,
    pub actor: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
}

/// The latest row per step of a plan, keyed by step id.
pub async fn latest_step_rows(
    client: &Client,
    plan_id: &str,
) -> Result<BTreeMap<String, StepRow>, ExecError> {
    // A 'running' row is interrupted when no live backend with that pid started before it
    // (a newer backend with a recycled pid does not count).
    let sql = format!(
        "SELECT DISTINCT ON (s.step_id) s.step_id, s.action, s.outcome,
                (s.outcome = 'running' AND NOT EXISTS (
                    SELECT 1 FROM pg_stat_activity a
                    WHERE a.pid = s.backend_pid AND a.backend_start <= s.started_at)) AS interrupted,
                s.backend_pid, s.sqlstate, s.message, s.attempts, s.actor, {}, {}, s.duration_ms
         FROM seqmig.step_runs s WHERE s.plan_id = $1
         ORDER BY s.step_id, s.id DESC",
        ts("s.started_at"),
        ts("s.finished_at")
    );
    let rows = client.query(&sql, &[&plan_id]).await.map_err(db("read step runs"))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                StepRow {
                    action: r.get(1),
                    outcome: r.get(2),
                    interrupted: r.get(3),
                    backend_pid: r.get(4),
                    sqlstate: r.get(5),
                    message: r.get(6),
                    attempts: r.get(7),
                    actor: r.get(8),
                    started_at: r.get(9),
                    finished_at: r.get(10),
                    duration_ms: r.get(11),
                },
            )
        })
        .collect())
}

/// The latest run of one phase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PhaseRunRow {
    pub action: String,
    pub outcome: String,
    pub actor: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub message: Option<String>,
}

pub async fn latest_phase_runs(
    client: &Client,
    plan_id: &str,
) -> Result<BTreeMap<Phase, PhaseRunRow>, ExecError> {
    let sql = format!(
        "SELECT DISTINCT ON (phase) phase, action, outcome, actor, {}, {}, message
         FROM seqmig.phase_runs WHERE plan_id = $1 ORDER BY phase, id DESC",
        ts("started_at"),
        ts("finished_at")
    );
    let rows = client.query(&sql, &[&plan_id]).await.map_err(db("read phase runs"))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let phase = Phase::parse(r.get::<_, &str>(0))?;
            Some((
                phase,
                PhaseRunRow {
                    action: r.get(1),
                    outcome: r.get(2),
                    actor: r.get(3),
                    started_at: r.get(4),
                    finished_at: r.get(5),
                    message: r.get(6),
                },
            ))
        })
        .collect())
}

pub async fn start_phase_run(
    client: &Client,
    plan_id: &str,
    phase: Phase,
    action: &str,
    actor: &str,
) -> Result<i64, ExecError> {
    let row = client
        .query_one(
            "INSERT INTO seqmig.phase_runs (plan_id, phase, action, actor) VALUES ($1, $2, $3, $4) RETURNING id",
            &[&plan_id, &phase.as_str(), &action, &actor],
        )
        .await
        .map_err(db("record the phase run"))?;
    Ok(row.get(0))
}

pub async fn finish_phase_run(
    client: &Client,
    id: i64,
    outcome: &str,
    message: Option<&str>,
) -> Result<(), ExecError> {
    client
        .execute(
            "UPDATE seqmig.phase_runs SET outcome = $2, message = $3, finished_at = clock_timestamp() WHERE id = $1",
            &[&id, &outcome, &message],
        )
        .await
        .map_err(db("record the end of the phase run"))?;
    Ok(())
}

/// Inserts a 'running' step row (committed on its own, so a crash leaves it behind).
pub async fn start_step_run(
    client: &Client,
    phase_run_id: i64,
    plan_id: &str,
    step_id: &str,
    phase: Phase,
    action: &str,
    actor: &str,
) -> Result<i64, ExecError> {
    let row = client
        .query_one(
            "INSERT INTO seqmig.step_runs (phase_run_id, plan_id, step_id, phase, action, actor) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[&phase_run_id, &plan_id, &step_id, &phase.as_str(), &action, &actor],
        )
        .await
        .map_err(db("record the step run"))?;
    Ok(row.get(0))
}

/// Marks a step row ok. For a transactional step the caller runs this inside the step's own
/// transaction, so the step and its record commit together.
pub const STEP_OK_SQL: &str = "UPDATE seqmig.step_runs SET outcome = 'ok', attempts = $2, \
     duration_ms = $3, finished_at = clock_timestamp(), sqlstate = NULL, message = $4 WHERE id = $1";

pub async fn step_attempted(client: &Client, id: i64, attempts: i32, message: &str) -> Result<(), ExecError> {
    client
        .execute(
            "UPDATE seqmig.step_runs SET attempts = $2, message = $3 WHERE id = $1",
            &[&id, &attempts, &message],
        )
        .await
        .map_err(db("record a step attempt"))?;
    Ok(())
}

pub async fn step_failed(
    client: &Client,
    id: i64,
    attempts: i32,
    duration_ms: i64,
    sqlstate: Option<&str>,
    message: &str,
) -> Result<(), ExecError> {
    client
        .execute(
            "UPDATE seqmig.step_runs SET outcome = 'failed', attempts = $2, duration_ms = $3, \
             sqlstate = $4, message = $5, finished_at = clock_timestamp() WHERE id = $1",
            &[&id, &attempts, &duration_ms, &sqlstate, &message],
        )
        .await
        .map_err(db("record a failed step"))?;
    Ok(())
}

/// Appends to `seqmig.audit_log`.
pub async fn audit(
    client: &Client,
    plan_id: Option<&str>,
    event: &str,
    actor: &str,
    reason: Option<&str>,
    detail: &serde_json::Value,
) -> Result<(), ExecError> {
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
    pub event: String,
    pub actor: String,
    pub reason: Option<String>,
    pub at: String,
    pub detail: serde_json::Value,
}

pub async fn audit_entries(client: &Client, plan_id: &str) -> Result<Vec<AuditEntry>, ExecError> {
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
            event: r.get(0),
            actor: r.get(1),
            reason: r.get(2),
            at: r.get(3),
            detail: serde_json::from_str(r.get::<_, &str>(4)).unwrap_or(serde_json::Value::Null),
        })
        .collect())
}

/// All flags, by name.
pub async fn flags(client: &Client) -> Result<BTreeMap<String, String>, ExecError> {
    let rows = client
        .query("SELECT name, authority FROM seqmig.flags ORDER BY name", &[])
        .await
        .map_err(db("read the flags"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{}", m.description);
        }
    }
}
