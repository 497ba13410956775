//! `backfill_verified`: the rows that still differ, counted again at gate time from the plan's
//! backfill steps.

use tokio_postgres::Client;

use super::{Context, CriterionReport, db_failure, fail, pass};
use crate::soak::{MARKER, SoakError};

pub(super) async fn backfill_verified(
    client: &Client,
    ctx: &Context<'_>,
    required: &str,
) -> Result<CriterionReport, SoakError> {
    let name = "backfill_verified";
    let specs: Vec<_> = ctx.plan.steps.iter().filter_map(|s| s.backfill.as_ref()).collect();
    if specs.is_empty() {
        return Ok(pass(name, required, "the plan copies no rows".into()));
    }
    let mut parts = Vec::new();
    let mut bad = false;
    for spec in specs {
        let target = format!("{}.{}", spec.table, spec.target_column.quoted_sql());
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_attribute \
                 WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped",
                &[&spec.table.quoted(), &spec.target_column.as_str()],
            )
            .await
            .map_err(SoakError::db(format!("look up column {target}")))?;
        if exists.is_none() {
            parts.push(format!("{target} does not exist"));
            bad = true;
            continue;
        }
        // The pending predicate is the backfill's own definition of "still differs"
        // (`target IS DISTINCT FROM (expr)` for a transform, `target IS NULL` for a fill).
        let predicate = if spec.pending_predicate.trim().is_empty() {
            format!("{} IS DISTINCT FROM ({})", spec.target_column.quoted_sql(), spec.expr)
        } else {
            spec.pending_predicate.clone()
        };
        // pg_stat_statements merges statements by parse tree, not text: the backfill engine's
        // own `SELECT count(*) … WHERE <predicate>` has the same tree, and our calls would be
        // counted under its unmarked text as the old path. The extra constant column gives
        // this statement a tree of its own, whose text carries the marker.
        let sql =
            format!("SELECT {MARKER} count(*), 'seqmig:gate' FROM {} WHERE {predicate}", spec.table.quoted());
        match client.query_one(&sql, &[]).await {
            Ok(row) => {
                let n: i64 = row.get(0);
                bad |= n != 0;
                parts.push(format!("{target}: {n} mismatches"));
            }
            Err(e) => return db_failure(name, required, &format!("verification of {target}"), e),
        }
    }
    let evidence = parts.join("; ");
    Ok(if bad {
        fail(
            name,
            required,
            evidence,
            "seqmig apply --phase backfill (resumes and copies the rows that differ)",
        )
    } else {
        pass(name, required, evidence)
    })
}
