//! The gate's evidence: external observations, approvals, and the censuses of client
//! sessions and old-path statements that `seqmig soak sample` takes. Every write is one
//! statement (or one transaction) so that a crash never leaves half a record. The reads
//! here are the ones the gate's criteria make.

use tokio_postgres::Client;

use super::{LedgerError, db, utc};
use crate::db::OWN_STATEMENT_MARKER as MARKER;

/// Records one external check (`seqmig soak record`). `plan_id` `None` = counts for every
/// plan. Returns the row id.
pub async fn record_observation(
    client: &Client,
    plan_id: Option<&str>,
    name: &str,
    passed: bool,
    value: Option<&str>,
    source: Option<&str>,
    actor: &str,
) -> Result<i64, LedgerError> {
    let row = client
        .query_one(
            "INSERT INTO seqmig.soak_observations (plan_id, name, passed, value, source, actor) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[&plan_id, &name, &passed, &value, &source, &actor],
        )
        .await
        .map_err(|source| LedgerError::Db { context: format!("record observation '{name}'"), source })?;
    Ok(row.get(0))
}

/// Records that `actor` approves `contract` of `plan_id` in `role`, with an audit row, in
/// one statement. Returns the approval's id.
pub async fn record_approval(
    client: &Client,
    plan_id: &str,
    role: &str,
    actor: &str,
) -> Result<i64, LedgerError> {
    let row = client
        .query_one(
            // Approving twice in the same role is the same fact: kept once, audited each time.
            "WITH a AS (INSERT INTO seqmig.approvals (plan_id, role, actor) VALUES ($1, $2, $3) \
                        ON CONFLICT (plan_id, role, actor) DO UPDATE SET approved_at = excluded.approved_at \
                        RETURNING id) \
             , l AS (INSERT INTO seqmig.audit_log (event, plan_id, actor, reason) \
                     VALUES ('approval', $1, $3, 'approved contract as ' || $2)) \
             SELECT id FROM a",
            &[&plan_id, &role, &actor],
        )
        .await
        .map_err(|source| LedgerError::Db { context: format!("record approval by role '{role}'"), source })?;
    Ok(row.get(0))
}

/// Starts a census: one `soak_samples` row. Returns its id and time (UTC, to the second).
pub async fn insert_sample(
    client: &Client,
    statements_available: bool,
    stats_reset: Option<f64>,
    tracked: &[String],
) -> Result<(i64, String), LedgerError> {
    let row = client
        .query_one(
            &format!(
                "INSERT INTO seqmig.soak_samples (statements_available, stats_reset, tracked) \
                 VALUES ($1, to_timestamp($2), $3) RETURNING id, {}",
                utc("taken_at")
            ),
            &[&statements_available, &stats_reset, &tracked],
        )
        .await
        .map_err(db("record a census"))?;
    Ok((row.get(0), row.get(1)))
}

/// Records the client sessions of this database (all but this one) by application, user and
/// address under census `sample_id`. Returns (application_name, sessions) per row.
pub async fn record_client_census(
    client: &Client,
    sample_id: i64,
) -> Result<Vec<(String, i32)>, LedgerError> {
    let rows = client
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
        .map_err(db("record the client census"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// One `pg_stat_statements` counter kept by a census.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementSample {
    pub userid: u32,
    pub queryid: i64,
    pub calls: i64,
    pub query: String,
}

/// Records `statements` under census `sample_id`. Returns how many rows were written.
pub async fn record_statement_census(
    client: &Client,
    sample_id: i64,
    statements: &[StatementSample],
) -> Result<u64, LedgerError> {
    let userids: Vec<u32> = statements.iter().map(|r| r.userid).collect();
    let queryids: Vec<i64> = statements.iter().map(|r| r.queryid).collect();
    let calls: Vec<i64> = statements.iter().map(|r| r.calls).collect();
    let queries: Vec<&str> = statements.iter().map(|r| r.query.as_str()).collect();
    client
        .execute(
            "INSERT INTO seqmig.statement_samples (sample_id, taken_at, userid, queryid, calls, query) \
             SELECT s.id, s.taken_at, u.userid, u.queryid, u.calls, u.query \
             FROM seqmig.soak_samples s, \
                  unnest($2::oid[], $3::int8[], $4::int8[], $5::text[]) AS u (userid, queryid, calls, query) \
             WHERE s.id = $1",
            &[&sample_id, &userids, &queryids, &calls, &queries],
        )
        .await
        .map_err(db("record the statement census"))
}
