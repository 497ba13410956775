//! `observations`: external checks in the window, at least N passing and none failing.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::{Context, CriterionReport, fail, ledger_failure, pass};
use crate::soak::SoakError;

pub(super) async fn observations(
    client: &Client,
    ctx: &Context<'_>,
    required: &str,
) -> Result<CriterionReport, SoakError> {
    let name = "observations";
    let rule = ctx.criteria.observations.clone().unwrap_or_default();
    let rows = match crate::ledger::evidence::observation_counts(client, &ctx.plan.id, ctx.window_start).await
    {
        Ok(r) => r,
        Err(e) => return ledger_failure(name, required, "reading seqmig.soak_observations", e),
    };
    let mut passing: BTreeMap<String, i64> = BTreeMap::new();
    let mut failing = Vec::new();
    for r in rows {
        let (crit, passed, n, last) = (r.name, r.passed, r.count, r.last);
        if passed {
            passing.insert(crit, n);
        } else {
            let last = last
                .filter(|l| !l.trim().is_empty())
                .map(|l| format!(", last: {}", l.trim()))
                .unwrap_or_default();
            failing.push(format!("{n} failing {crit}{last}"));
        }
    }
    let total: i64 = passing.values().sum();
    let mut short = Vec::new();
    if total < i64::from(rule.total) {
        short.push(format!("{} of {} passing", i64::from(rule.total) - total, rule.total));
    }
    for (crit, need) in &rule.per_name {
        let have = passing.get(crit).copied().unwrap_or(0);
        if have < i64::from(*need) {
            short.push(format!("{} of {need} passing {crit}", i64::from(*need) - have));
        }
    }
    let counts: Vec<String> = passing.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let seen = if counts.is_empty() {
        "none passing".to_string()
    } else {
        format!("passing: {}", counts.join(", "))
    };
    let evidence = format!("over {}: {seen}", ctx.window_text);
    if !failing.is_empty() {
        return Ok(fail(
            name,
            required,
            format!("{evidence}; {}", failing.join("; ")),
            "a failing check blocks the whole window: investigate it; the gate opens once the window holds none",
        ));
    }
    if !short.is_empty() {
        let next = rule
            .per_name
            .keys()
            .next()
            .map(|k| format!("seqmig soak record --criterion {k} --pass"))
            .unwrap_or_else(|| "seqmig soak record --criterion NAME --pass".into());
        return Ok(fail(name, required, format!("{evidence}; missing {}", short.join(", ")), next));
    }
    Ok(pass(name, required, evidence))
}
