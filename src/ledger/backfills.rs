//! The backfill engine's tables (`seqmig.backfills`, `backfill_batches`, `backfill_control`):
//! everything the engine knows lives here, not in memory. A batch's data change and its
//! progress row commit in one transaction, so after a crash the cursor says exactly where
//! to continue. The engine runs these statements itself (prepared, pipelined with its
//! batches, inside its own transactions), so most are given as SQL; the operator's controls
//! are functions.
//!
//! Keys are stored as JSON arrays of the key columns' text forms: keyset mode records the
//! inclusive upper bound of each batch (`["41","x"]`); TID mode records the first page not
//! yet done (`["(1200,0)"]`, exclusive).

use tokio_postgres::Client;

use super::{LedgerError, db};

/// Creates the backfill row, or returns the existing one unchanged (resume).
pub const START_SQL: &str = "\
INSERT INTO seqmig.backfills AS b
       (plan_id, step_id, table_name, target_column, key_kind, key_columns, batch_size, rows_total_estimate)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (plan_id, step_id) DO UPDATE SET updated_at = b.updated_at
RETURNING table_name, target_column, key_kind, key_columns, cursor_key::text, batch_size,
          rows_done, rows_scanned, batches, state, verify_mismatches, xmax <> 0";

/// Records one batch and moves the cursor, in the batch's own transaction.
/// Returns the ledger's totals, which the progress display shows, and the milliseconds the
/// transaction has taken on the server so far (what `pg_stat_database` counts as its
/// sessions' busy time, which the workload-latency signal leaves out).
pub const RECORD_BATCH_SQL: &str = "\
WITH batch AS (
    INSERT INTO seqmig.backfill_batches
           (plan_id, step_id, batch_no, from_key, to_key, rows_scanned, rows, batch_size,
            duration_ms, wal_bytes, throttle_reason, throttle_ms, attempt)
    SELECT $1, $2, b.batches + 1, $3::text::jsonb, $4::text::jsonb, $5, $6, $7, $8,
           (pg_current_wal_insert_lsn() - $9::text::pg_lsn)::bigint, $10, $11, $12
      FROM seqmig.backfills b WHERE b.plan_id = $1 AND b.step_id = $2
)
UPDATE seqmig.backfills
   SET cursor_key = coalesce($4::text::jsonb, cursor_key), state = $14, batch_size = $13, rows_done = rows_done + $6,
       rows_scanned = rows_scanned + $5, batches = batches + 1, throttle = $10,
       updated_at = clock_timestamp(), last_error = NULL,
       -- the walk's own verification: rows still pending after their batch (NULL while none)
       verify_mismatches = CASE WHEN $15::bigint > 0 OR verify_mismatches IS NOT NULL
                                THEN coalesce(verify_mismatches, 0) + $15::bigint END
 WHERE plan_id = $1 AND step_id = $2
RETURNING rows_done, rows_scanned, batches, verify_mismatches,
          (extract(epoch FROM clock_timestamp() - now()) * 1000)::float8";

/// The ledger's view of every backfill, for `seqmig backfill status` and `seqmig status`.
pub const STATUS_SQL: &str = "\
SELECT b.plan_id, b.step_id, b.table_name, b.target_column, b.state, b.rows_done, b.rows_scanned,
       b.rows_total_estimate, b.batches, b.batch_size, b.throttle, b.verify_mismatches,
       b.last_error,
       coalesce(c.paused, false), c.max_rows_per_sec,
       (SELECT sum(r.rows_scanned)::float8 / nullif(extract(epoch FROM max(r.committed_at) - min(r.committed_at)
                  + make_interval(secs => (array_agg(r.duration_ms ORDER BY r.batch_no))[1] / 1000)), 0)::float8
          FROM (SELECT * FROM seqmig.backfill_batches x
                 WHERE x.plan_id = b.plan_id
                   -- a partitioned run's step: its partitions' batches (`STEP@partition`)
                   AND (x.step_id = b.step_id OR left(x.step_id, length(b.step_id) + 1) = b.step_id || '@')
                 ORDER BY x.committed_at DESC LIMIT 20) r)
  FROM seqmig.backfills b
  LEFT JOIN seqmig.backfill_control c USING (plan_id, step_id)
 ORDER BY b.started_at, b.plan_id, b.step_id";

/// Marks a backfill failed with its error (`$3`), after its batch failed for good.
pub const FAILED_SQL: &str = "\
UPDATE seqmig.backfills SET state = 'failed', last_error = $3, updated_at = now()
 WHERE plan_id = $1 AND step_id = $2";

/// Starts the walk again from the first key (or page), keeping the totals.
pub const RESTART_SQL: &str = "\
UPDATE seqmig.backfills SET state = 'running', cursor_key = NULL, finished_at = NULL,
       verify_mismatches = NULL, updated_at = now()
 WHERE plan_id = $1 AND step_id = $2";

/// The walk has reached the end; the final count follows.
pub const VERIFYING_SQL: &str = "\
UPDATE seqmig.backfills SET state = 'verifying', updated_at = now()
 WHERE plan_id = $1 AND step_id = $2";

/// Why the backfill waits (`$3`, comma-separated reasons), for `seqmig backfill status` in
/// another session.
pub const THROTTLE_SQL: &str = "\
UPDATE seqmig.backfills SET throttle = $3, updated_at = now()
 WHERE plan_id = $1 AND step_id = $2";

/// The final count (`$3` rows still pending) and the end of the backfill, in the counting
/// transaction.
pub const DONE_SQL: &str = "\
UPDATE seqmig.backfills SET state = 'done', verify_mismatches = $3,
       verified_at = now(), finished_at = now(), updated_at = now(), throttle = NULL
 WHERE plan_id = $1 AND step_id = $2";

/// Forgets the records (and, by cascade, the batches) of backfills `$2` of plan `$1`, with
/// the records of each partition a partitioned run walked (`step@partition`).
pub const FORGET_SQL: &str = "DELETE FROM seqmig.backfills WHERE plan_id = $1 \
  AND (step_id = ANY($2) OR split_part(step_id, '@', 1) = ANY($2))";

/// The sampling query: `$1` the table's regclass as text, `$2`/`$3` plan and step id, `$4`
/// the step whose controls apply too (a partitioned run's step; else `$3` again).
pub const THROTTLE_SAMPLE_SQL: &str = "\
SELECT
  (SELECT coalesce(max(extract(epoch FROM replay_lag)), 0)::float8 FROM pg_stat_replication),
  (SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)::float8
     FROM pg_stat_activity
    WHERE pid <> pg_backend_pid() AND datname = current_database()
      AND backend_type = 'client backend' AND xact_start IS NOT NULL),
  (SELECT count(*) FROM pg_locks
    WHERE relation = $1::text::regclass AND NOT granted AND pid <> pg_backend_pid()),
  (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8,
  coalesce((SELECT bool_or(paused) FROM seqmig.backfill_control
             WHERE plan_id = $2 AND step_id IN ($3, $4::text)), false),
  (SELECT min(max_rows_per_sec) FROM seqmig.backfill_control WHERE plan_id = $2 AND step_id IN ($3, $4::text)),
  (SELECT count(*) FROM pg_stat_replication),
  (SELECT coalesce(max(pg_current_wal_lsn() - restart_lsn), 0)::float8 FROM pg_replication_slots
    WHERE restart_lsn IS NOT NULL),
  -- the workload: its transactions and the time its sessions spent in them (the time
  -- columns are PostgreSQL 14+; read through jsonb so that older servers give NULL)
  (SELECT (xact_commit + xact_rollback)::float8 FROM pg_stat_database WHERE datname = current_database()),
  (SELECT ((to_jsonb(d) ->> 'active_time')::float8 + (to_jsonb(d) ->> 'idle_in_transaction_time')::float8)
     FROM pg_stat_database d WHERE datname = current_database())";

/// True when this session may force its statistics out at its next idle moment
/// (PostgreSQL 15+), which keeps a batch's own time out of the next workload reading.
pub const CAN_FORCE_STATS_FLUSH_SQL: &str = "SELECT to_regprocedure('pg_stat_force_next_flush()') IS NOT NULL
   AND has_function_privilege('pg_stat_force_next_flush()', 'execute')";

/// A partitioned run's row for its step (key `(partitions)`); a failed one runs again.
pub const PARTITIONED_START_SQL: &str = "\
INSERT INTO seqmig.backfills AS b
       (plan_id, step_id, table_name, target_column, key_kind, key_columns, batch_size, rows_total_estimate)
VALUES ($1, $2, $3, $4, 'key', ARRAY['(partitions)'], 0, $5)
ON CONFLICT (plan_id, step_id) DO UPDATE
   SET state = CASE WHEN b.state = 'failed' THEN 'running' ELSE b.state END, updated_at = now()
RETURNING table_name, target_column, key_columns";

/// A sliced run's row for its step (key `(slices)`), with the slices' bounds (`$6`, a JSON
/// array of keys) when it is new; a failed one runs again. Returns the bounds kept.
pub const SLICED_START_SQL: &str = "\
INSERT INTO seqmig.backfills AS b
       (plan_id, step_id, table_name, target_column, key_kind, key_columns, batch_size, rows_total_estimate, cursor_key)
VALUES ($1, $2, $3, $4, 'key', ARRAY['(slices)'], 0, $5, $6::text::jsonb)
ON CONFLICT (plan_id, step_id) DO UPDATE
   SET state = CASE WHEN b.state = 'failed' THEN 'running' ELSE b.state END, updated_at = now()
RETURNING table_name, target_column, key_columns, cursor_key::text";

/// The step's row: the sums of its partitions' (or slices') rows.
pub const PARTITIONED_TOTALS_SQL: &str = "\
UPDATE seqmig.backfills p
   SET rows_done = s.rows_done, rows_scanned = s.rows_scanned, batches = s.batches,
       throttle = s.throttle, updated_at = clock_timestamp()
  FROM (SELECT coalesce(sum(rows_done), 0)::bigint AS rows_done,
               coalesce(sum(rows_scanned), 0)::bigint AS rows_scanned,
               coalesce(sum(batches), 0)::int AS batches,
               string_agg(DISTINCT throttle, ',') AS throttle
          FROM seqmig.backfills
         WHERE plan_id = $1 AND left(step_id, length($2) + 1) = $2 || '@') s
 WHERE p.plan_id = $1 AND p.step_id = $2";

/// A step's totals.
pub const TOTALS_READ_SQL: &str =
    "SELECT rows_done, batches FROM seqmig.backfills WHERE plan_id = $1 AND step_id = $2";

/// What an operator sets on a backfill (`seqmig backfill pause|resume|rate`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Control {
    Paused(bool),
    /// Rows per second; `None` lifts the limit.
    Rate(Option<f64>),
}

impl Control {
    fn column(self) -> &'static str {
        match self {
            Control::Paused(_) => "paused",
            Control::Rate(_) => "max_rows_per_sec",
        }
    }
}

/// Upserts the control row of every backfill the ledger has that matches `plan_id` and
/// `step_id` (`None` = any; without a plan, only backfills not done). The engine reads it
/// once a second. Returns how many backfills were set.
pub async fn set_control(
    client: &Client,
    plan_id: Option<&str>,
    step_id: Option<&str>,
    control: Control,
) -> Result<u64, LedgerError> {
    let column = control.column();
    let sql = format!(
        "INSERT INTO seqmig.backfill_control (plan_id, step_id, {column}) \
         SELECT b.plan_id, b.step_id, $3 FROM seqmig.backfills b \
          WHERE ($1::text IS NULL OR b.plan_id = $1) AND ($2::text IS NULL OR b.step_id = $2) \
            AND ($1::text IS NOT NULL OR b.state <> 'done') \
         ON CONFLICT (plan_id, step_id) DO UPDATE \
            SET {column} = EXCLUDED.{column}, updated_at = now(), updated_by = current_user"
    );
    match control {
        Control::Paused(p) => client.execute(&sql, &[&plan_id, &step_id, &p]).await,
        Control::Rate(r) => client.execute(&sql, &[&plan_id, &step_id, &r]).await,
    }
    .map_err(db("update seqmig.backfill_control"))
}

/// Sets the control row of a backfill that has not started yet, when `plan_id` is a stored
/// plan and `step_id` one of its backfill steps (so an operator can start one slow or
/// paused). Returns 0 or 1.
pub async fn preset_control(
    client: &Client,
    plan_id: &str,
    step_id: &str,
    control: Control,
) -> Result<u64, LedgerError> {
    let column = control.column();
    let sql = format!(
        "INSERT INTO seqmig.backfill_control (plan_id, step_id, {column}) \
         SELECT p.id, s->>'id', $3 FROM seqmig.plans p, json_array_elements(p.plan_json->'steps') s \
          WHERE p.id = $1 AND s->>'id' = $2 AND s->>'phase' = 'backfill' \
         ON CONFLICT (plan_id, step_id) DO UPDATE \
            SET {column} = EXCLUDED.{column}, updated_at = now(), updated_by = current_user"
    );
    match control {
        Control::Paused(p) => client.execute(&sql, &[&plan_id, &step_id, &p]).await,
        Control::Rate(r) => client.execute(&sql, &[&plan_id, &step_id, &r]).await,
    }
    .map_err(db("update seqmig.backfill_control"))
}
