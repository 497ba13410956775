//! `approvals`: the roles the governance matrix requires for the blast radius have approved.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Client;

use super::{Context, CriterionReport, fail, ledger_failure, pass};
use crate::soak::SoakError;
use crate::soak::config::{BlastRadius, GateConfig};

pub(super) async fn approvals(
    client: &Client,
    ctx: &Context<'_>,
    cfg: &GateConfig,
    radius: BlastRadius,
    required: &str,
) -> Result<CriterionReport, SoakError> {
    let name = "approvals";
    let mut need: BTreeSet<String> = ctx.criteria.approval_roles.clone();
    if ctx.criteria.approvals_from_matrix {
        need.extend(cfg.governance.required_roles(radius));
    }
    let given: BTreeMap<String, String> =
        match crate::ledger::evidence::approvals_by_role(client, &ctx.plan.id).await {
            Ok(rows) => rows.into_iter().collect(),
            Err(e) => return ledger_failure(name, required, "reading seqmig.approvals", e),
        };
    let required = format!("{required} ({radius}: {})", list_or_none(&need));
    let counted: Vec<String> =
        given.iter().filter(|(r, _)| need.contains(*r)).map(|(r, a)| format!("{r} by {a}")).collect();
    let ignored: Vec<String> =
        given.iter().filter(|(r, _)| !need.contains(*r)).map(|(r, a)| format!("{r} by {a}")).collect();
    let missing: Vec<&String> = need.iter().filter(|r| !given.contains_key(*r)).collect();
    let mut evidence =
        if counted.is_empty() { "no required approval".to_string() } else { counted.join(", ") };
    if !ignored.is_empty() {
        evidence.push_str(&format!("; not counted (role not required): {}", ignored.join(", ")));
    }
    if missing.is_empty() {
        if need.is_empty() {
            evidence = format!("governance requires no approval at blast radius {radius}");
        }
        return Ok(pass(name, &required, evidence));
    }
    let missing_s: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
    evidence.push_str(&format!("; missing: {}", missing_s.join(", ")));
    Ok(fail(name, &required, evidence, format!("seqmig approve --role {}", missing_s[0])))
}

pub(super) fn list_or_none(set: &BTreeSet<String>) -> String {
    if set.is_empty() { "none".into() } else { set.iter().cloned().collect::<Vec<_>>().join(", ") }
}
