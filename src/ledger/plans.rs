//! Stored plans: the full artifact as it was applied, its state, and the one rule that
//! names a stored plan by a prefix of its id ([`resolve_plan_id`]).

use tokio_postgres::Client;

use super::{LedgerError, db, is_missing, ts};
use crate::plan::Plan;

/// Where a stored plan stands: `seqmig.plans.state`, spelled in the ledger and in JSON
/// exactly as [`StoredPlanState::as_str`] says (the table's CHECK allows these three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredPlanState {
    /// Applied in part or in full, with contract not yet done: the plan commands act on.
    Active,
    /// Every phase applied.
    Complete,
    /// Every applied phase rolled back.
    RolledBack,
}

impl StoredPlanState {
    pub fn as_str(self) -> &'static str {
        match self {
            StoredPlanState::Active => "active",
            StoredPlanState::Complete => "complete",
            StoredPlanState::RolledBack => "rolled_back",
        }
    }

    /// The state spelled as the ledger stores it; `None` for a spelling this seqmig does not know.
    pub fn from_ledger(s: &str) -> Option<StoredPlanState> {
        [StoredPlanState::Active, StoredPlanState::Complete, StoredPlanState::RolledBack]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for StoredPlanState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A plan as stored in `seqmig.plans`.
#[derive(Debug, Clone)]
pub struct StoredPlan {
    pub plan: Plan,
    pub state: StoredPlanState,
    pub created_at: String,
    pub actor: String,
}

/// Reads one stored plan, re-checking its id against its content.
pub async fn stored_plan(client: &Client, id: &str) -> Result<Option<StoredPlan>, LedgerError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT plan_json::text, state, {}, actor FROM seqmig.plans WHERE id = $1",
                ts("created_at")
            ),
            &[&id],
        )
        .await
        .map_err(db("read a stored plan"))?;
    let Some(row) = row else { return Ok(None) };
    let text: String = row.get(0);
    let plan = Plan::from_json(&text)
        .map_err(|source| LedgerError::StoredPlanCorrupt { plan: id.to_string(), source })?;
    let state: String = row.get(1);
    let state = StoredPlanState::from_ledger(&state).ok_or_else(|| LedgerError::UnknownValue {
        what: format!("the state of stored plan {id}"),
        value: state,
    })?;
    Ok(Some(StoredPlan { plan, state, created_at: row.get(2), actor: row.get(3) }))
}

/// Ids of plans whose state is `active`, oldest first.
pub async fn active_plan_ids(client: &Client) -> Result<Vec<String>, LedgerError> {
    plan_ids(client, Some(StoredPlanState::Active)).await
}

/// Ids of plans, optionally only those in `state`, oldest first.
pub async fn plan_ids(client: &Client, state: Option<StoredPlanState>) -> Result<Vec<String>, LedgerError> {
    let state = state.map(StoredPlanState::as_str);
    let rows = client
        .query(
            "SELECT id FROM seqmig.plans WHERE $1::text IS NULL OR state = $1 ORDER BY created_at, id",
            &[&state],
        )
        .await
        .map_err(db("list stored plans"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The most recently updated plan in `state`.
pub async fn latest_plan_id(client: &Client, state: StoredPlanState) -> Result<Option<String>, LedgerError> {
    let state = state.as_str();
    let row = client
        .query_opt(
            "SELECT id FROM seqmig.plans WHERE state = $1 ORDER BY updated_at DESC, id LIMIT 1",
            &[&state],
        )
        .await
        .map_err(db("find the latest plan"))?;
    Ok(row.map(|r| r.get(0)))
}

/// Stores a plan on its first apply; the JSON is kept exactly as serialised.
pub async fn insert_plan(client: &Client, plan: &Plan, actor: &str) -> Result<(), LedgerError> {
    let json = plan.to_json_pretty();
    client
        .execute(
            "INSERT INTO seqmig.plans (id, plan_json, actor) VALUES ($1, $2::text::json, $3) \
             ON CONFLICT (id) DO NOTHING",
            &[&plan.id, &json, &actor],
        )
        .await
        .map_err(db("store the plan"))?;
    Ok(())
}

pub async fn set_plan_state(
    client: &Client,
    plan_id: &str,
    state: StoredPlanState,
) -> Result<(), LedgerError> {
    let state = state.as_str();
    client
        .execute("UPDATE seqmig.plans SET state = $2, updated_at = now() WHERE id = $1", &[&plan_id, &state])
        .await
        .map_err(db("update the plan state"))?;
    Ok(())
}

/// The one rule that names a stored plan (`--plan-id`, in every command):
///
/// - the full id (`sha256:…`) names that plan;
/// - otherwise a non-empty prefix of the id's hex, with or without `sha256:`, names the one
///   stored plan whose id starts with it, whatever its state;
/// - no match (or no ledger) is [`LedgerError::UnknownPlan`]; several matches are
///   [`LedgerError::AmbiguousPlan`], which lists every candidate so the next try can be
///   exact.
///
/// Matching is on the text, not SQL `LIKE`: `_` and `%` in a prefix are not wildcards. A
/// ledger newer than this build is refused ([`LedgerError::TooNew`]).
pub async fn resolve_plan_id(client: &Client, given: &str) -> Result<String, LedgerError> {
    let hex = given.strip_prefix("sha256:").unwrap_or(given);
    // A newer ledger is refused here too: its plans may be stored in a form this build
    // misreads.
    if super::check_version(client).await? == 0 || hex.is_empty() {
        return Err(LedgerError::UnknownPlan(given.to_string()));
    }
    let ids = plan_ids(client, None).await?;
    if ids.iter().any(|id| id == given) {
        return Ok(given.to_string());
    }
    let matches: Vec<String> =
        ids.into_iter().filter(|id| id.strip_prefix("sha256:").unwrap_or(id).starts_with(hex)).collect();
    match matches.as_slice() {
        [] => Err(LedgerError::UnknownPlan(given.to_string())),
        [one] => Ok(one.clone()),
        _ => Err(LedgerError::AmbiguousPlan { prefix: given.to_string(), matches }),
    }
}

/// The artifacts of every active plan, as stored (none without a ledger).
pub async fn active_plan_jsons(client: &Client) -> Result<Vec<String>, LedgerError> {
    match client.query("SELECT plan_json::text FROM seqmig.plans WHERE state = 'active'", &[]).await {
        Ok(rows) => Ok(rows.iter().map(|r| r.get(0)).collect()),
        Err(e) if is_missing(&e) => Ok(Vec::new()),
        Err(e) => Err(db("read the active plans")(e)),
    }
}
