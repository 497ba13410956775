//! Reads the plans in flight from the ledger for `plan --from postgres://…` (issue 20); what
//! is done with them is in [`crate::plan::inflight`].

use std::collections::BTreeSet;

use tokio_postgres::Client;

use super::state::PlanState;
use super::{ExecError, ledger};
use crate::db::ConnectOptions;
use crate::plan::inflight::InFlight;

/// The active plans of the ledger, oldest first, with the steps each has applied; none when
/// the database has no ledger.
pub async fn in_flight(client: &Client) -> Result<Vec<InFlight>, ExecError> {
    if ledger::version(client).await? == 0 {
        return Ok(vec![]);
    }
    let mut out = Vec::new();
    for id in ledger::active_plan_ids(client).await? {
        let Some(stored) = ledger::stored_plan(client, &id).await? else { continue };
        let state = PlanState::load(client, &id).await?;
        let applied: BTreeSet<String> =
            stored.plan.steps.iter().filter(|s| state.step(s).is_applied()).map(|s| s.id.clone()).collect();
        out.push(InFlight { plan: stored.plan, applied });
    }
    Ok(out)
}

/// Every plan in flight as `3f2a9c4b1d07 (through switch)`, oldest first: what an ambiguous
/// command lists.
pub async fn candidates(client: &Client) -> Result<Vec<String>, ExecError> {
    Ok(in_flight(client)
        .await?
        .iter()
        .map(|f| {
            let after = match &f.plan.after {
                Some(a) => format!(", after {}", super::short_id(a)),
                None => String::new(),
            };
            format!("{} (through {}{after})", f.plan.short_id(), f.through())
        })
        .collect())
}

/// [`in_flight`] on a read-only session of its own, on a small runtime of its own (callers
/// need none; do not call it from inside a runtime).
pub fn in_flight_blocking(opts: &ConnectOptions) -> Result<Vec<InFlight>, ExecError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ExecError::Runtime(e.to_string()))?;
    rt.block_on(async {
        let client = super::connect_observer(opts).await?;
        in_flight(&client).await
    })
}
