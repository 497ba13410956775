//! `backfill_verified`: the rows that still differ, counted again at gate time from the plan's
//! backfill steps.

use tokio_postgres::Client;

use super::{Context, CriterionReport, db_failure, fail, pass};
use crate::parse::text::repoint;
use crate::plan::BackfillSpec;
use crate::plan::sqltext::derived_name;
use crate::soak::{MARKER, SoakError};

/// After the `switch` of a same-name type change the shadow column the backfill wrote
/// (`id__seqmig_new`) carries the real name (`id`) and the old column is parked
/// (`id__seqmig_old`). Returns the column's name and `predicate` rewritten to the swapped
/// names, or `None` when the table does not look like that (the column is really missing).
async fn swapped(
    client: &Client,
    spec: &BackfillSpec,
    predicate: &str,
) -> Result<Option<(String, String)>, SoakError> {
    let rows = client
        .query(
            "SELECT attname::text FROM pg_attribute \
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
            &[&spec.table.quoted()],
        )
        .await
        .map_err(SoakError::db(format!("list the columns of {}", spec.table)))?;
    let columns: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let shadow = spec.target_column.as_str();
    let Some(base) = columns.iter().find(|c| derived_name(c, "__seqmig_new").as_str() == shadow) else {
        return Ok(None);
    };
    let parked = derived_name(base, "__seqmig_old");
    if !columns.iter().any(|c| c == parked.as_str()) {
        return Ok(None);
    }
    let base_quoted = crate::model::Ident::exact(base).map(|i| i.quoted_sql()).unwrap_or_default();
    let repointed = repoint(predicate, &|n| {
        if n == shadow {
            Some(base_quoted.clone())
        } else if n == base.as_str() {
            Some(parked.quoted_sql())
        } else {
            None
        }
    });
    Ok(Some((base_quoted, repointed)))
}

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
        let mut target = format!("{}.{}", spec.table, spec.target_column.quoted_sql());
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_attribute \
                 WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped",
                &[&spec.table.quoted(), &spec.target_column.as_str()],
            )
            .await
            .map_err(SoakError::db(format!("look up column {target}")))?;
        // The pending predicate is the backfill's own definition of "still differs"
        // (`target IS DISTINCT FROM (expr)` for a transform, `target IS NULL` for a fill).
        let mut predicate = if spec.pending_predicate.trim().is_empty() {
            format!("{} IS DISTINCT FROM ({})", spec.target_column.quoted_sql(), spec.expr)
        } else {
            spec.pending_predicate.clone()
        };
        if exists.is_none() {
            match swapped(client, spec, &predicate).await? {
                Some((column, repointed)) => {
                    target = format!("{}.{column} (swapped in at switch)", spec.table);
                    predicate = repointed;
                }
                None => {
                    parts.push(format!("{target} does not exist"));
                    bad = true;
                    continue;
                }
            }
        }
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
