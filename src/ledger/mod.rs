//! The ledger: schema `seqmig` in the target database, everything seqmig knows about it.
//! This module owns every `seqmig.*` table: its DDL (the ordered [`MIGRATIONS`], SQL in
//! `ledger/sql/`), its versioned upgrades ([`ensure`]) and every query on it. The executor,
//! the backfill engine, the soak gate and the CLI call its functions; none of them spells a
//! `seqmig.` table.
//!
//! - [`plans`]: stored plans, their states, and the one rule that turns a plan-id prefix
//!   into a plan ([`resolve_plan_id`]).
//! - [`runs`]: the runner registry, phase and step runs, flags.
//! - [`audit`]: the append-only audit log (gate decisions, bypasses, approvals).
//! - [`evidence`]: the gate's evidence (observations, approvals, client and statement
//!   censuses) and the reads the criteria make of it.
//! - [`backfills`]: the backfill engine's progress, batches and operator control.
//!
//! Versions: `seqmig.ledger_version` records which migrations ran; each runs once, in its
//! own transaction, under a transaction-level advisory lock so that two seqmig processes
//! upgrading at the same time serialise instead of racing on `CREATE`. Upgrades are
//! additive (expand only: new tables, columns, triggers, grants), so an older seqmig's
//! queries keep working on the tables it knows. A seqmig that meets a ledger newer than it
//! knows refuses before changing anything ([`LedgerError::TooNew`]).

pub mod audit;
pub mod backfills;
pub mod evidence;
pub mod plans;
pub mod runs;

use tokio_postgres::Client;

pub use audit::{
    AuditEntry, AuditEvent, AuditEventKind, audit, audit_entries, audit_events, break_glass_events,
    contract_decision, record_break_glass, record_contract_resumed, record_gate_open,
};
pub use plans::{
    StoredPlan, StoredPlanState, active_plan_ids, active_plan_jsons, insert_plan, latest_plan_id, plan_ids,
    resolve_plan_id, set_plan_state, stored_plan,
};
pub use runs::{
    PhaseRunRow, RunOutcome, STEP_OK_SQL, StepRow, finish_phase_run, flags, latest_phase_runs,
    latest_step_rows, register_runner, runner_registry_exists, start_phase_run, start_step_run,
    step_attempted, step_failed,
};

/// One ledger schema migration: version, what it adds, its SQL.
#[derive(Debug, Clone, Copy)]
pub struct LedgerMigration {
    pub version: i32,
    pub description: &'static str,
    pub sql: &'static str,
}

/// Version 2: the gate's evidence tables (idempotent DDL).
pub const EVIDENCE_SQL: &str = include_str!("sql/v2_evidence.sql");

/// Version 3: the backfill engine's tables (idempotent DDL). A bare database gets these
/// alone in the backfill engine's own tests; every command runs [`ensure`] instead.
pub const BACKFILLS_SQL: &str = include_str!("sql/v3_backfills.sql");

/// Version 5, the evidence guard (issue 18.5): every evidence table refuses UPDATE (but for
/// seqmig's own finishing of a phase run and refreshing of an approval), DELETE and
/// TRUNCATE, and takes its times from the server clock at insert. Idempotent. What it
/// promises against which role: book/src/trust-model.md.
pub const EVIDENCE_GUARD_SQL: &str = include_str!("sql/v5_evidence_guard.sql");

/// The evidence tables [`EVIDENCE_GUARD_SQL`] guards; `evidence_intact` checks their triggers.
pub const EVIDENCE_TABLES: [&str; 7] = [
    "phase_runs",
    "soak_observations",
    "approvals",
    "audit_log",
    "soak_samples",
    "client_samples",
    "statement_samples",
];

/// The ledger's history, in order. Append only: a released migration never changes, and a
/// new one only adds (a newer seqmig must not break an older one's queries before the older
/// one gets to refuse).
pub const MIGRATIONS: &[LedgerMigration] = &[
    LedgerMigration {
        version: 1,
        description: "plans, phase and step runs, runners, flags",
        sql: include_str!("sql/v1_plans.sql"),
    },
    LedgerMigration {
        version: 2,
        description: "gate evidence: soak observations, approvals, append-only audit log, samples",
        sql: EVIDENCE_SQL,
    },
    LedgerMigration { version: 3, description: "backfills: progress, batches, control", sql: BACKFILLS_SQL },
    // The dual-write triggers run as the application's role: seqmig.flag works for any
    // role that may write the table, and nothing else in the ledger is open to it.
    LedgerMigration {
        version: 4,
        description: "least privilege: seqmig.flag security definer, ledger closed to PUBLIC",
        sql: include_str!("sql/v4_privileges.sql"),
    },
    LedgerMigration {
        version: 5,
        description: "evidence is append-only (no UPDATE, DELETE or TRUNCATE) and timed by the server clock",
        sql: EVIDENCE_GUARD_SQL,
    },
];

/// Why the ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    #[error("failed to {context}: {source}")]
    Db {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error(
        "the seqmig ledger in this database is version {found}, newer than this seqmig knows ({known}); upgrade seqmig"
    )]
    TooNew { found: i32, known: i32 },
    #[error("stored plan {plan} does not match its id: {source}")]
    StoredPlanCorrupt {
        plan: String,
        #[source]
        source: crate::plan::PlanFileError,
    },
    /// No stored plan has this id or prefix (or there is no ledger).
    #[error("no plan {0} is stored in this database")]
    UnknownPlan(String),
    /// The prefix names several stored plans; `matches` lists every candidate.
    #[error("plan id prefix '{prefix}' matches several stored plans: {}", matches.join(", "))]
    AmbiguousPlan { prefix: String, matches: Vec<String> },
    /// A value spelled in a way this seqmig does not know (a newer ledger): `what` names
    /// where it was read (`the state of stored plan …`, `a step run outcome`).
    #[error("the ledger holds {what} '{value}', which this seqmig does not know; upgrade seqmig")]
    UnknownValue { what: String, value: String },
}

impl LedgerError {
    /// The SQLSTATE of a database error, if any.
    pub fn sqlstate(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            LedgerError::Db { source, .. } => source.code(),
            _ => None,
        }
    }

    /// Whether the ledger table read does not exist (a database without a ledger).
    pub fn is_missing_table(&self) -> bool {
        self.sqlstate() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
    }
}

pub(crate) fn db(context: &str) -> impl FnOnce(tokio_postgres::Error) -> LedgerError + '_ {
    move |source| LedgerError::Db { context: context.to_string(), source }
}

/// Whether `e` says a ledger table does not exist (no ledger in this database yet).
pub(crate) fn is_missing(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
}

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

/// Refuses a ledger newer than this build knows. Read-only commands call it before reading,
/// writing ones get it from [`ensure`]; either way nothing is changed.
pub async fn check_version(client: &Client) -> Result<i32, LedgerError> {
    let found = version(client).await?;
    if found > current_version() {
        return Err(LedgerError::TooNew { found, known: current_version() });
    }
    Ok(found)
}

/// Creates or upgrades the ledger to [`current_version`]. Safe to call concurrently and on
/// every command; returns the version found before upgrading (0 when there was none).
/// A ledger newer than this build is refused before anything is written.
pub async fn ensure(client: &Client) -> Result<i32, LedgerError> {
    let found = check_version(client).await?;
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
                client.batch_execute(m.sql).await.map_err(|source| LedgerError::Db {
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
            Ok::<(), LedgerError>(())
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
pub async fn version(client: &Client) -> Result<i32, LedgerError> {
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

const TS: &str = r#"'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'"#;

/// A timestamp column as ISO 8601 UTC with milliseconds.
pub(crate) fn ts(col: &str) -> String {
    format!("to_char({col} AT TIME ZONE 'UTC', {TS})")
}

/// A timestamp expression as ISO 8601 UTC to the second, as the gate shows its evidence.
pub fn utc(expr: &str) -> String {
    format!("to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
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
