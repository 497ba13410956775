-- seqmig ledger: the backfill engine's progress. A batch's data change and its progress row
-- commit in one transaction, so after a crash the cursor says exactly where to continue.
-- Idempotent.

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
