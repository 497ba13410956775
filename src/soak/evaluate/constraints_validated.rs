//! `constraints_validated`: no `NOT VALID` constraint remains on the plan's tables.

use tokio_postgres::Client;

use super::{Context, CriterionReport, fail, pass, relation_names};
use crate::soak::SoakError;

pub(super) async fn constraints_validated(
    client: &Client,
    ctx: &Context<'_>,
    required: &str,
) -> Result<CriterionReport, SoakError> {
    let name = "constraints_validated";
    let rows = client
        .query(
            "SELECT c.conrelid::regclass::text, c.conname::text FROM pg_constraint c \
             WHERE NOT c.convalidated \
               AND c.conrelid IN (SELECT to_regclass(x) FROM unnest($1::text[]) x) \
             ORDER BY 1, 2",
            &[&relation_names(ctx.plan)],
        )
        .await
        .map_err(SoakError::db("read NOT VALID constraints"))?;
    if rows.is_empty() {
        return Ok(pass(name, required, "no NOT VALID constraint on the plan's tables".into()));
    }
    let list: Vec<String> =
        rows.iter().map(|r| format!("{} on {}", r.get::<_, String>(1), r.get::<_, String>(0))).collect();
    Ok(fail(
        name,
        required,
        format!("NOT VALID: {}", list.join(", ")),
        "seqmig apply --phase backfill (runs VALIDATE CONSTRAINT)",
    ))
}
