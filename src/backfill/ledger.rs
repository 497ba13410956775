//! The backfill's part of the `seqmig` ledger schema. Everything the engine knows lives
//! here, not in memory: a batch's data change and its progress row commit in one
//! transaction, so after a crash the cursor says exactly where to continue.
//!
//! Keys are stored as JSON arrays of the key columns' text forms: keyset mode records the
//! inclusive upper bound of each batch (`["41","x"]`); TID mode records the first page not
//! yet done (`["(1200,0)"]`, exclusive).

/// Idempotent DDL for the backfill ledger; the executor's versioned ledger includes it.
pub const LEDGER_SQL: &str = "\
CREATE SCHEMA IF NOT EXISTS seqmig;
CREATE TABLE IF NOT EXISTS seqmig.backfills (
    plan_id             text NOT NULL,
    step_id             text NOT NULL,
    table_name          text NOT NULL,
    target_column       text NOT NULL,
    key_kind            text NOT NULL CHECK (key_kind IN ('key', 'tid')),
    key_columns         text[] NOT NULL,
    cursor_key          jsonb,
    batch_size          integer NOT NULL,
    rows_done           bigint NOT NULL DEFAULT 0,
    rows_scanned        bigint NOT NULL DEFAULT 0,
    rows_total_estimate bigint,
    batches             integer NOT NULL DEFAULT 0,
    state               text NOT NULL DEFAULT 'running'
                        CHECK (state IN ('running', 'verifying', 'done', 'failed')),
    throttle            text,
    last_error          text,
    started_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    verify_mismatches   bigint,
    verified_at         timestamptz,
    PRIMARY KEY (plan_id, step_id)
);
CREATE TABLE IF NOT EXISTS seqmig.backfill_batches (
    plan_id         text NOT NULL,
    step_id         text NOT NULL,
    batch_no        integer NOT NULL,
    from_key        jsonb,
    to_key          jsonb,
    rows_scanned    bigint NOT NULL,
    rows            bigint NOT NULL,
    batch_size      integer NOT NULL,
    duration_ms     double precision NOT NULL,
    wal_bytes       bigint,
    throttle_reason text,
    throttle_ms     double precision NOT NULL DEFAULT 0,
    attempt         integer NOT NULL,
    committed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (plan_id, step_id, batch_no),
    FOREIGN KEY (plan_id, step_id) REFERENCES seqmig.backfills ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS seqmig.backfill_control (
    plan_id          text NOT NULL,
    step_id          text NOT NULL,
    paused           boolean NOT NULL DEFAULT false,
    max_rows_per_sec double precision CHECK (max_rows_per_sec IS NULL OR max_rows_per_sec > 0),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       text NOT NULL DEFAULT current_user,
    PRIMARY KEY (plan_id, step_id)
);
";

/// Creates the backfill row, or returns the existing one unchanged (resume).
pub(crate) const START_SQL: &str = "\
INSERT INTO seqmig.backfills AS b
       (plan_id, step_id, table_name, target_column, key_kind, key_columns, batch_size, rows_total_estimate)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (plan_id, step_id) DO UPDATE SET updated_at = b.updated_at
RETURNING table_name, target_column, key_kind, key_columns, cursor_key::text, batch_size,
          rows_done, rows_scanned, batches, state, verify_mismatches, xmax <> 0";

/// Records one batch and moves the cursor, in the batch's own transaction.
/// Returns the ledger's totals, which the progress display shows.
pub(crate) const RECORD_BATCH_SQL: &str = "\
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
RETURNING rows_done, rows_scanned, batches, verify_mismatches";

/// The ledger's view of every backfill, for `seqmig backfill status` and `seqmig status`.
pub(crate) const STATUS_SQL: &str = "\
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
