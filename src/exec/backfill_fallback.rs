//! A minimal keyset backfill used until the adaptive engine (`crate::backfill`) lands: fixed
//! batches over a single-column primary key (ctid batches otherwise), each batch in its own
//! transaction with `seqmig.backfill = 'on'` so dual-write triggers do not echo it. It writes
//! only the target column and only rows still matching the pending predicate, so a rerun
//! after a crash redoes nothing that was committed.

use tokio_postgres::Client;

use crate::model::quote_ident;
use crate::plan::BackfillSpec;

const BATCH: i64 = 1000;

/// Copies every pending row; calls `progress(rows, batches)` after each batch.
pub async fn run(
    client: &mut Client,
    spec: &BackfillSpec,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(u64, u64), tokio_postgres::Error> {
    let table = spec.table.quoted();
    let col = spec.target_column.quoted_sql();
    let key = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
             FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
             WHERE i.indrelid = to_regclass($1) AND i.indisprimary",
            &[&table],
        )
        .await?;
    let (mut rows, mut batches) = (0u64, 0u64);
    if let [k] = key.as_slice() {
        let (name, ty): (String, String) = (k.get(0), k.get(1));
        let k = quote_ident(&name);
        let sql = format!(
            "WITH batch AS (SELECT {k} AS seqmig_key FROM {table}
                            WHERE $1::text IS NULL OR {k} > $1::text::{ty} ORDER BY {k} LIMIT {BATCH}),
                  changed AS (UPDATE {table} SET {col} = {expr} FROM batch
                              WHERE {table}.{k} = batch.seqmig_key AND ({pending}) RETURNING 1)
             SELECT (SELECT max(seqmig_key)::text FROM batch), (SELECT count(*) FROM changed)",
            expr = spec.expr,
            pending = spec.pending_predicate,
        );
        let mut cursor: Option<String> = None;
        loop {
            let tx = client.transaction().await?;
            tx.batch_execute("SET LOCAL seqmig.backfill = 'on'").await?;
            let row = tx.query_one(&sql, &[&cursor]).await?;
            tx.commit().await?;
            let last: Option<String> = row.get(0);
            let changed: i64 = row.get(1);
            let Some(last) = last else { break };
            cursor = Some(last);
            rows += changed as u64;
            batches += 1;
            progress(rows, batches);
        }
    } else {
        let sql = format!(
            "UPDATE {table} SET {col} = {expr}
             WHERE ctid = ANY (ARRAY(SELECT ctid FROM {table} WHERE ({pending}) LIMIT {BATCH}))",
            expr = spec.expr,
            pending = spec.pending_predicate,
        );
        loop {
            let tx = client.transaction().await?;
            tx.batch_execute("SET LOCAL seqmig.backfill = 'on'").await?;
            let n = tx.execute(&sql, &[]).await?;
            tx.commit().await?;
            if n == 0 {
                break;
            }
            rows += n;
            batches += 1;
            progress(rows, batches);
        }
    }
    Ok((rows, batches))
}
