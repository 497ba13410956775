//! `no_old_clients`: no session of the old release in the censuses of the window, none
//! connected now, and at least one census taken.

use tokio_postgres::Client;

use super::{Context, CriterionReport, db_failure, fail, ledger_failure, pass};
use crate::soak::SoakError;

pub(super) async fn no_old_clients(
    client: &Client,
    ctx: &Context<'_>,
    required: &str,
) -> Result<CriterionReport, SoakError> {
    let name = "no_old_clients";
    let patterns: Vec<String> = ctx.criteria.no_old_clients.iter().cloned().collect();
    let (n_samples, last) = match crate::ledger::evidence::census_count(client, ctx.window_start).await {
        Ok(r) => r,
        Err(e) => return ledger_failure(name, required, "reading the client censuses", e),
    };
    let seen = match crate::ledger::evidence::clients_seen(client, ctx.window_start, &patterns).await {
        Ok(rows) => rows,
        Err(e) => return ledger_failure(name, required, "matching the client censuses", e),
    };
    let live = match live_old_clients(client, &patterns).await {
        Ok(l) => l,
        Err(e) => return db_failure(name, required, "the live check of pg_stat_activity", e),
    };
    let mut parts = Vec::new();
    for (application, sessions, last) in &seen {
        parts.push(format!("'{application}' seen in censuses ({sessions} sessions, last at {last})"));
    }
    if !live.is_empty() {
        parts.push(format!("connected now: {}", live.join(", ")));
    }
    if !parts.is_empty() {
        return Ok(fail(
            name,
            required,
            parts.join("; "),
            "stop the old release; once it is gone, 'seqmig soak sample' records a clean census",
        ));
    }
    if n_samples == 0 {
        return Ok(fail(
            name,
            required,
            format!("no client census over {}; the live check alone is not a soak", ctx.window_text),
            "seqmig soak sample (run it from cron during the soak)",
        ));
    }
    Ok(pass(
        name,
        required,
        format!(
            "none in {n_samples} census(es) over {} (last at {}) nor connected now",
            ctx.window_text,
            last.unwrap_or_default()
        ),
    ))
}

/// Sessions of this database whose application_name matches the old release, now.
pub(super) async fn live_old_clients(
    client: &Client,
    patterns: &[String],
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT pid, application_name, coalesce(client_addr::text, 'local') FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
               AND application_name ~ ANY($1::text[]) ORDER BY pid",
            &[&patterns],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            format!("pid {} '{}' from {}", r.get::<_, i32>(0), r.get::<_, String>(1), r.get::<_, String>(2))
        })
        .collect())
}
