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

/// Roles that approved `contract` of `plan_id`, each with its approvers (comma-separated).
pub async fn approvals_by_role(client: &Client, plan_id: &str) -> Result<Vec<(String, String)>, LedgerError> {
    let rows = client
        .query(
            "SELECT role, string_agg(DISTINCT actor, ', ' ORDER BY actor) FROM seqmig.approvals \
             WHERE plan_id = $1 GROUP BY role ORDER BY role",
            &[&plan_id],
        )
        .await
        .map_err(db("read seqmig.approvals"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Observations of one name and outcome since a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservationCount {
    pub name: String,
    pub passed: bool,
    pub count: i64,
    /// The latest value and source, `value from source`.
    pub last: Option<String>,
}

/// The observations counting for `plan_id` (its own and the service-wide ones) recorded
/// since `since` (epoch seconds), by name and outcome.
pub async fn observation_counts(
    client: &Client,
    plan_id: &str,
    since: f64,
) -> Result<Vec<ObservationCount>, LedgerError> {
    let rows = client
        .query(
            "SELECT name, passed, count(*)::bigint, \
                    (array_agg(coalesce(value, '') || CASE WHEN source IS NULL THEN '' ELSE ' from ' || source END \
                               ORDER BY observed_at DESC))[1] \
             FROM seqmig.soak_observations \
             WHERE (plan_id IS NULL OR plan_id = $1) AND observed_at >= to_timestamp($2) \
             GROUP BY 1, 2 ORDER BY 1, 2",
            &[&plan_id, &since],
        )
        .await
        .map_err(db("read seqmig.soak_observations"))?;
    Ok(rows
        .iter()
        .map(|r| ObservationCount { name: r.get(0), passed: r.get(1), count: r.get(2), last: r.get(3) })
        .collect())
}

/// How many censuses were taken since `since` (epoch seconds), and when the last one was.
pub async fn census_count(client: &Client, since: f64) -> Result<(i64, Option<String>), LedgerError> {
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), {} FROM seqmig.soak_samples WHERE taken_at >= to_timestamp($1)",
                utc("max(taken_at)")
            ),
            &[&since],
        )
        .await
        .map_err(db("read the client censuses"))?;
    Ok((row.get(0), row.get(1)))
}

/// Applications matching one of `patterns` (regular expressions) seen in the client censuses
/// since `since`: (application_name, sessions summed over censuses, last seen).
pub async fn clients_seen(
    client: &Client,
    since: f64,
    patterns: &[String],
) -> Result<Vec<(String, i64, String)>, LedgerError> {
    let rows = client
        .query(
            &format!(
                "SELECT application_name, sum(sessions)::bigint, {} FROM seqmig.client_samples \
                 WHERE taken_at >= to_timestamp($1) AND application_name ~ ANY($2::text[]) \
                 GROUP BY 1 ORDER BY 1",
                utc("max(taken_at)")
            ),
            &[&since, &patterns],
        )
        .await
        .map_err(db("match the client censuses"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// The statement censuses that tracked every name of `tracked`: the last one at or before
/// `switch_at` (epoch seconds) and every later one, in time order, as (id, stats_reset).
pub async fn statement_censuses(
    client: &Client,
    switch_at: f64,
    tracked: &[String],
) -> Result<Vec<(i64, Option<f64>)>, LedgerError> {
    let rows = client
        .query(
            "SELECT id, extract(epoch FROM stats_reset)::float8 FROM seqmig.soak_samples \
             WHERE statements_available AND tracked @> $2::text[] AND (taken_at > to_timestamp($1) OR id = ( \
                 SELECT id FROM seqmig.soak_samples \
                 WHERE statements_available AND tracked @> $2::text[] AND taken_at <= to_timestamp($1) \
                 ORDER BY taken_at DESC, id DESC LIMIT 1)) \
             ORDER BY taken_at, id",
            &[&switch_at, &tracked],
        )
        .await
        .map_err(db("read the statement censuses"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The last statement census at or before `switch_at` that tracked every name of `tracked`.
pub async fn statement_baseline(
    client: &Client,
    switch_at: f64,
    tracked: &[String],
) -> Result<Option<i64>, LedgerError> {
    let row = client
        .query_opt(
            "SELECT id FROM seqmig.soak_samples \
             WHERE statements_available AND tracked @> $2::text[] AND taken_at <= to_timestamp($1) \
             ORDER BY taken_at DESC, id DESC LIMIT 1",
            &[&switch_at, &tracked],
        )
        .await
        .map_err(db("read the statement baseline"))?;
    Ok(row.map(|r| r.get(0)))
}

/// The statements census `sample_id` recorded.
pub async fn statement_census(client: &Client, sample_id: i64) -> Result<Vec<StatementSample>, LedgerError> {
    let rows = client
        .query(
            "SELECT userid, queryid, calls, query FROM seqmig.statement_samples WHERE sample_id = $1",
            &[&sample_id],
        )
        .await
        .map_err(db("read a statement census"))?;
    Ok(rows
        .iter()
        .map(|r| StatementSample { userid: r.get(0), queryid: r.get(1), calls: r.get(2), query: r.get(3) })
        .collect())
}

/// The guard's triggers every evidence table must have, enabled ([`super::EVIDENCE_GUARD_SQL`]).
pub const GUARD_TRIGGERS: [&str; 4] =
    ["evidence_stamp", "evidence_update", "evidence_no_delete", "evidence_no_truncate"];

/// (table, time column) of the evidence tables whose times must follow their ids.
pub const ORDERED_EVIDENCE: [(&str, &str); 5] = [
    ("phase_runs", "started_at"),
    ("soak_observations", "observed_at"),
    ("audit_log", "at"),
    ("soak_samples", "taken_at"),
    ("approvals", "approved_at"),
];

/// Every (evidence table, guard trigger) pair with the trigger's `tgenabled` (`None` when
/// the trigger is missing).
pub async fn guard_triggers(client: &Client) -> Result<Vec<(String, String, Option<String>)>, LedgerError> {
    let tables: Vec<String> = super::EVIDENCE_TABLES.iter().map(|t| t.to_string()).collect();
    let triggers: Vec<String> = GUARD_TRIGGERS.iter().map(|t| t.to_string()).collect();
    let rows = client
        .query(
            "SELECT t.name, g.name, tr.tgenabled::text \
             FROM unnest($1::text[]) t (name) CROSS JOIN unnest($2::text[]) g (name) \
             LEFT JOIN pg_trigger tr ON tr.tgrelid = to_regclass('seqmig.' || quote_ident(t.name)) \
                                    AND tr.tgname = g.name \
             ORDER BY t.name, g.name",
            &[&tables, &triggers],
        )
        .await
        .map_err(db("read the evidence guard's triggers"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// Rows of one of [`ORDERED_EVIDENCE`] dated in the future, and rows older than a row
/// written before them by more than a second (back-dated).
pub async fn out_of_order(client: &Client, table: &str, column: &str) -> Result<(i64, i64), LedgerError> {
    let sql = format!(
        "SELECT count(*) FILTER (WHERE t > clock_timestamp()), \
                count(*) FILTER (WHERE t < before - interval '1 second') \
         FROM (SELECT {column} AS t, \
                      max({column}) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before \
               FROM seqmig.{table}) x"
    );
    let row = client
        .query_one(&sql, &[])
        .await
        .map_err(|source| LedgerError::Db { context: format!("read seqmig.{table}"), source })?;
    Ok((row.get(0), row.get(1)))
}

/// Phase runs that finished before they started or in the future.
pub async fn impossible_phase_runs(client: &Client) -> Result<i64, LedgerError> {
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE finished_at < started_at OR finished_at > clock_timestamp()) \
             FROM seqmig.phase_runs",
            &[],
        )
        .await
        .map_err(db("read seqmig.phase_runs"))?;
    Ok(row.get(0))
}
