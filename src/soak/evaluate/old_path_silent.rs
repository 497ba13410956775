//! `old_path_silent`: no calls of statements naming what contract drops since `switch`,
//! summed from pg_stat_statements readings (the baseline census, later censuses, now).

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::{Context, CriterionReport, Verdict, db_failure, fail, ledger_failure, pass};
use crate::soak::SoakError;
use crate::soak::config::OldPathRule;
use crate::soak::evidence::{old_path_statements, statements_available, stats_reset};
use crate::soak::objects::{dropped_objects, tokenize};

/// One reading of pg_stat_statements: when its counters were last reset, and the calls per
/// (userid, queryid) of statements naming the old path.
pub(super) struct StatementPoint {
    reset: Option<f64>,
    calls: BTreeMap<(u32, i64), (i64, String)>,
}

pub(super) async fn old_path_silent(
    client: &Client,
    ctx: &Context<'_>,
    required: &str,
) -> Result<CriterionReport, SoakError> {
    let name = "old_path_silent";
    let old = dropped_objects(ctx.plan);
    if old.is_empty() {
        return Ok(pass(name, required, "the plan drops no column, table or view".into()));
    }
    let old_list: Vec<String> = old.iter().map(ToString::to_string).collect();
    let old_list = old_list.join(", ");
    if !statements_available(client).await {
        let blocks = ctx.criteria.old_path_silent == Some(OldPathRule::Required);
        return Ok(CriterionReport {
            name: name.into(),
            required: required.into(),
            verdict: Verdict::Inconclusive,
            blocks,
            evidence: format!(
                "pg_stat_statements cannot be read in this database, so calls to {old_list} cannot be counted"
            ),
            next: blocks.then(|| {
                "add pg_stat_statements to shared_preload_libraries and run 'CREATE EXTENSION \
                 pg_stat_statements', or set old_path_silent = \"if_available\""
                    .to_string()
            }),
        });
    }
    let Some((switch_at, switch_text)) = ctx.switch_at.clone() else {
        return Ok(fail(
            name,
            required,
            "switch has not succeeded: the old path is still the live path".into(),
            "seqmig apply --phase switch",
        ));
    };
    let matches = |query: &str| {
        let toks = tokenize(query);
        old.iter().any(|o| o.named_in(&toks))
    };
    // The readings, in time order: the last census at or before switch (the baseline), every
    // census after it, and pg_stat_statements now.
    // Only censuses that recorded this plan's old path are readings of it.
    let tracked: Vec<String> = old.iter().map(ToString::to_string).collect();
    let sample_rows = match crate::ledger::evidence::statement_censuses(client, switch_at, &tracked).await {
        Ok(r) => r,
        Err(e) => return ledger_failure(name, required, "reading the statement censuses", e),
    };
    let baseline_id = crate::ledger::evidence::statement_baseline(client, switch_at, &tracked).await?;
    let mut points: Vec<StatementPoint> = Vec::new();
    for (id, reset) in sample_rows {
        let rows = crate::ledger::evidence::statement_census(client, id).await?;
        points.push(StatementPoint { reset, calls: collect_calls(rows, &matches) });
    }
    let live = match old_path_statements(client, &old).await {
        Ok(r) => r,
        Err(e) => return db_failure(name, required, "reading pg_stat_statements", e),
    };
    let live_calls = live.into_iter().map(|s| ((s.userid, s.queryid), (s.calls, s.query))).collect();
    points.push(StatementPoint { reset: stats_reset(client).await, calls: live_calls });

    // Sum the growth between consecutive readings; across a reset, everything counted since
    // the reset is new. Without a baseline every call since the last reset counts: that may
    // include calls from before switch, which errs on the side of keeping the door shut.
    //
    // Missing evidence is never a pass (issue 18.5): a reset of the statistics after switch
    // (`pg_stat_statements_reset()`, a restart that lost them) or a counter that went down
    // (entries evicted, or tampering) means calls since switch may be uncounted: fail closed.
    let mut lost: Vec<String> = Vec::new();
    let mut resets: Vec<Option<f64>> = Vec::new();
    if baseline_id.is_none() {
        if let Some(r) = points.first().and_then(|p| p.reset).filter(|r| *r > switch_at) {
            resets.push(Some(r));
        }
    }
    for pair in points.windows(2) {
        let (p, q) = (&pair[0], &pair[1]);
        if p.reset != q.reset {
            resets.push(q.reset);
            continue;
        }
        for (key, (calls, text)) in &p.calls {
            let now = q.calls.get(key).map(|c| c.0).unwrap_or(0);
            if now < *calls {
                lost.push(format!(
                    "the calls of `{}` went down from {calls} to {now} with no reset (entries evicted or removed)",
                    one_line(text)
                ));
            }
        }
    }
    resets.dedup();
    for r in resets.into_iter().rev() {
        let at = match r {
            Some(r) => client
                .query_one(&format!("SELECT {}", super::utc("to_timestamp($1)")), &[&r])
                .await
                .map_err(SoakError::db("format the statistics reset time"))?
                .get::<_, String>(0),
            None => "an unknown time".to_string(),
        };
        lost.insert(
            0,
            format!("pg_stat_statements was reset at {at} (stats_reset), after switch at {switch_text}"),
        );
    }
    lost.dedup();
    let mut prev: Option<&StatementPoint> = None;
    let mut calls_since: BTreeMap<(u32, i64), (i64, String)> = BTreeMap::new();
    for (i, p) in points.iter().enumerate() {
        if i == 0 && baseline_id.is_some() {
            prev = Some(p);
            continue;
        }
        for (key, (calls, text)) in &p.calls {
            let base = match prev {
                Some(q) if q.reset == p.reset => q.calls.get(key).map(|c| c.0).unwrap_or(0),
                _ => 0,
            };
            let delta = (calls - base).max(0);
            if delta > 0 {
                let e = calls_since.entry(*key).or_insert((0, text.clone()));
                e.0 += delta;
            }
        }
        prev = Some(p);
    }
    let baseline_note = match baseline_id {
        Some(_) => String::new(),
        None => " (no census at or before switch: counting every call since statistics were reset)".into(),
    };
    let total: i64 = calls_since.values().map(|c| c.0).sum();
    if !lost.is_empty() {
        let counted = if total == 0 {
            String::new()
        } else {
            let mut top: Vec<&(i64, String)> = calls_since.values().collect();
            top.sort_by_key(|c| std::cmp::Reverse(c.0));
            let shown: Vec<String> =
                top.iter().take(3).map(|(n, q)| format!("{n}× `{}`", one_line(q))).collect();
            format!("; {total} calls naming {old_list} counted nonetheless: {}", shown.join("; "))
        };
        return Ok(fail(
            name,
            required,
            format!(
                "the statement statistics since switch are incomplete, so silence on {old_list} cannot be shown: {}{counted}",
                lost.join("; ")
            ),
            "roll back switch and apply it again, so that the soak starts after the reset; do not reset              pg_stat_statements during a soak",
        ));
    }
    if total == 0 {
        return Ok(pass(
            name,
            required,
            format!("no calls naming {old_list} since switch at {switch_text}{baseline_note}"),
        ));
    }
    let mut top: Vec<&(i64, String)> = calls_since.values().collect();
    top.sort_by_key(|c| std::cmp::Reverse(c.0));
    let shown: Vec<String> = top.iter().take(3).map(|(n, q)| format!("{n}× `{}`", one_line(q))).collect();
    Ok(fail(
        name,
        required,
        format!(
            "{total} calls naming {old_list} since switch at {switch_text}{baseline_note}: {}",
            shown.join("; ")
        ),
        "find and change the code still reading the old path (the statements are in pg_stat_statements)",
    ))
}

pub(super) fn collect_calls(
    rows: Vec<crate::ledger::evidence::StatementSample>,
    matches: &impl Fn(&str) -> bool,
) -> BTreeMap<(u32, i64), (i64, String)> {
    rows.into_iter()
        .filter(|r| matches(&r.query))
        .map(|r| ((r.userid, r.queryid), (r.calls, r.query)))
        .collect()
}

pub(super) fn one_line(q: &str) -> String {
    let s: String = q.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 120 { format!("{}…", s.chars().take(120).collect::<String>()) } else { s }
}
