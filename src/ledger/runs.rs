//! The runner registry, the runs of phases and steps, and the authority flags.
//! A step row is inserted 'running' and committed on its own before the step runs, so a
//! crash leaves it behind and `status` shows it interrupted.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::{LedgerError, db, ts};
use crate::plan::Phase;

/// Whether `seqmig.runners` exists (a database that never had a runner has none).
pub async fn runner_registry_exists(client: &Client) -> Result<bool, LedgerError> {
    Ok(client
        .query_one("SELECT to_regclass('seqmig.runners') IS NOT NULL", &[])
        .await
        .map_err(db("look for the runner registry"))?
        .get(0))
}

/// Columns and join that add the registered runner (actor, command, since) to a query over
/// `pg_locks l` joined to `pg_stat_activity a`; NULLs when there is no registry.
pub fn runner_columns(registry: bool) -> (&'static str, &'static str) {
    if registry {
        (
            "r.actor, r.command, to_char(r.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            "LEFT JOIN seqmig.runners r ON r.pid = l.pid AND r.backend_start = a.backend_start",
        )
    } else {
        ("NULL::text, NULL::text, NULL::text", "")
    }
}

/// Records this session as the runner (after the advisory lock was taken).
pub async fn register_runner(client: &Client, actor: &str, command: &str) -> Result<(), LedgerError> {
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

/// How a step or phase run ended (`outcome` of `seqmig.step_runs` and `seqmig.phase_runs`),
/// spelled in the ledger and in JSON exactly as [`RunOutcome::as_str`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Started and not finished: still running, or interrupted.
    Running,
    Ok,
    Failed,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Ok => "ok",
            RunOutcome::Failed => "failed",
        }
    }

    fn from_ledger(s: &str) -> Result<RunOutcome, LedgerError> {
        [RunOutcome::Running, RunOutcome::Ok, RunOutcome::Failed]
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| LedgerError::UnknownValue { what: "a run outcome".into(), value: s.to_string() })
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The latest ledger row for one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    pub action: String,
    pub outcome: RunOutcome,
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
) -> Result<BTreeMap<String, StepRow>, LedgerError> {
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
    rows.iter()
        .map(|r| {
            Ok((
                r.get::<_, String>(0),
                StepRow {
                    action: r.get(1),
                    outcome: RunOutcome::from_ledger(r.get(2))?,
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
            ))
        })
        .collect()
}

/// The latest run of one phase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PhaseRunRow {
    pub action: String,
    pub outcome: RunOutcome,
    pub actor: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub message: Option<String>,
}

pub async fn latest_phase_runs(
    client: &Client,
    plan_id: &str,
) -> Result<BTreeMap<Phase, PhaseRunRow>, LedgerError> {
    let sql = format!(
        "SELECT DISTINCT ON (phase) phase, action, outcome, actor, {}, {}, message
         FROM seqmig.phase_runs WHERE plan_id = $1 ORDER BY phase, id DESC",
        ts("started_at"),
        ts("finished_at")
    );
    let rows = client.query(&sql, &[&plan_id]).await.map_err(db("read phase runs"))?;
    rows.iter()
        .filter_map(|r| {
            let phase = Phase::parse(r.get::<_, &str>(0))?;
            let outcome = match RunOutcome::from_ledger(r.get(2)) {
                Ok(o) => o,
                Err(e) => return Some(Err(e)),
            };
            Some(Ok((
                phase,
                PhaseRunRow {
                    action: r.get(1),
                    outcome,
                    actor: r.get(3),
                    started_at: r.get(4),
                    finished_at: r.get(5),
                    message: r.get(6),
                },
            )))
        })
        .collect()
}

pub async fn start_phase_run(
    client: &Client,
    plan_id: &str,
    phase: Phase,
    action: &str,
    actor: &str,
) -> Result<i64, LedgerError> {
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
    outcome: RunOutcome,
    message: Option<&str>,
) -> Result<(), LedgerError> {
    let outcome = outcome.as_str();
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
) -> Result<i64, LedgerError> {
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

pub async fn step_attempted(
    client: &Client,
    id: i64,
    attempts: i32,
    message: &str,
) -> Result<(), LedgerError> {
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
) -> Result<(), LedgerError> {
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

/// All flags, by name.
pub async fn flags(client: &Client) -> Result<BTreeMap<String, String>, LedgerError> {
    let rows = client
        .query("SELECT name, authority FROM seqmig.flags ORDER BY name", &[])
        .await
        .map_err(db("read the flags"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// When `switch` of `plan_id` last succeeded (epoch seconds, UTC text), unless a rollback of
/// switch succeeded since. `None` without a ledger.
pub async fn switch_succeeded_at(
    client: &Client,
    plan_id: &str,
) -> Result<Option<(f64, String)>, LedgerError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT extract(epoch FROM r.finished_at)::float8, {} FROM seqmig.phase_runs r \
                 WHERE r.plan_id = $1 AND r.phase = 'switch' AND r.action = 'apply' AND r.outcome = 'ok' \
                   AND r.finished_at IS NOT NULL \
                   AND NOT EXISTS (SELECT 1 FROM seqmig.phase_runs b \
                                   WHERE b.plan_id = r.plan_id AND b.phase = 'switch' AND b.action = 'rollback' \
                                     AND b.outcome = 'ok' AND b.id > r.id) \
                 ORDER BY r.id DESC LIMIT 1",
                super::utc("r.finished_at")
            ),
            &[&plan_id],
        )
        .await;
    match row {
        Ok(r) => Ok(r.map(|r| (r.get(0), r.get(1)))),
        Err(e) if super::is_missing(&e) => Ok(None),
        Err(e) => Err(db("read when switch succeeded from seqmig.phase_runs")(e)),
    }
}

/// When the last of `step_ids` succeeded (epoch seconds, UTC text), when the latest run of
/// every one of them is a successful apply. `None` otherwise and without a ledger.
pub async fn steps_done_at(
    client: &Client,
    plan_id: &str,
    step_ids: &[String],
) -> Result<Option<(f64, String)>, LedgerError> {
    let row = client
        .query_opt(
            &format!(
                "WITH latest AS (SELECT DISTINCT ON (step_id) step_id, action, outcome, finished_at \
                                   FROM seqmig.step_runs WHERE plan_id = $1 AND step_id = ANY($2) \
                                  ORDER BY step_id, id DESC) \
                 SELECT extract(epoch FROM max(finished_at))::float8, {} FROM latest \
                 HAVING count(*) FILTER (WHERE action = 'apply' AND outcome = 'ok') = cardinality($2::text[])",
                super::utc("max(finished_at)")
            ),
            &[&plan_id, &step_ids],
        )
        .await;
    match row {
        Ok(r) => Ok(r.map(|r| (r.get(0), r.get(1)))),
        Err(e) if super::is_missing(&e) => Ok(None),
        Err(e) => Err(db("read when the switch steps succeeded from seqmig.step_runs")(e)),
    }
}
