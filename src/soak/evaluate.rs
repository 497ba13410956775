//! Evaluating the gate: each criterion reads its evidence from the database (database clock,
//! never the local one) and gives a verdict. Missing evidence is a failure, never a pass; a
//! criterion whose query fails on the database (an expression that no longer compiles, an
//! invalid pattern) fails with the error as its evidence. Only a lost connection is an
//! error of the whole evaluation.
//!
//! One file per criterion under `evaluate/`, each with its query and its evidence phrase.
//!
//! The statements run outside any transaction of their own; call [`evaluate`] on a session
//! that is not inside a transaction block.

use std::fmt;

use serde::Serialize;
use tokio_postgres::Client;

mod approvals;
mod backfill_verified;
mod blast_radius;
mod constraints_validated;
mod evidence_intact;
mod min_soak;
mod no_old_clients;
mod observations;
mod old_path_silent;

pub use blast_radius::blast_radius;

use super::config::{BlastRadius, Criteria, GateConfig, format_duration};
use super::objects::plan_tables;
use super::{CRITERIA, SoakError};
use crate::model::QualifiedName;
use crate::plan::Plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// The evidence cannot be read here (no pg_stat_statements); blocks unless configured not to.
    Inconclusive,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "inconclusive",
        })
    }
}

/// One criterion: what is required, what the database shows, the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CriterionReport {
    pub name: String,
    /// The configured requirement (`24h`, `0 mismatches`, …).
    pub required: String,
    pub verdict: Verdict,
    /// Whether this criterion keeps the gate closed.
    pub blocks: bool,
    /// What the database shows, as a phrase naming objects, counts and times.
    pub evidence: String,
    /// The command or action that would supply the missing evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The gate's answer for one plan.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    pub plan_id: String,
    /// Database clock at evaluation (UTC, RFC 3339).
    pub evaluated_at: String,
    pub open: bool,
    pub blast_radius: BlastRadius,
    /// Why the radius is what it is.
    pub blast_radius_reason: String,
    pub tiers: Vec<String>,
    pub criteria: Vec<CriterionReport>,
}

impl GateReport {
    /// The criteria that keep the gate closed.
    pub fn failing(&self) -> impl Iterator<Item = &CriterionReport> {
        self.criteria.iter().filter(|c| c.blocks)
    }

    pub fn criterion(&self, name: &str) -> Option<&CriterionReport> {
        self.criteria.iter().find(|c| c.name == name)
    }

    /// One line per blocking criterion: what is missing and the command that supplies it,
    /// for the executor's refusal (`min_soak: switch succeeded … ; next: wait 23h…`).
    pub fn blocking_summary(&self) -> Vec<String> {
        self.failing()
            .map(|c| match &c.next {
                Some(next) => format!("{} ({}): {}; next: {next}", c.name, c.verdict, c.evidence),
                None => format!("{} ({}): {}", c.name, c.verdict, c.evidence),
            })
            .collect()
    }
}

fn pass(name: &str, required: &str, evidence: String) -> CriterionReport {
    CriterionReport {
        name: name.into(),
        required: required.into(),
        verdict: Verdict::Pass,
        blocks: false,
        evidence,
        next: None,
    }
}

fn fail(name: &str, required: &str, evidence: String, next: impl Into<String>) -> CriterionReport {
    CriterionReport {
        name: name.into(),
        required: required.into(),
        verdict: Verdict::Fail,
        blocks: true,
        evidence,
        next: Some(next.into()),
    }
}

/// A database error inside one criterion's query becomes that criterion's failing evidence;
/// anything else (connection lost) aborts the evaluation.
/// [`db_failure`] for a ledger read: a database error fails the criterion, anything else
/// is an error.
fn ledger_failure(
    name: &str,
    required: &str,
    what: &str,
    e: crate::ledger::LedgerError,
) -> Result<CriterionReport, SoakError> {
    match e {
        crate::ledger::LedgerError::Db { source, .. } => db_failure(name, required, what, source),
        other => Err(other.into()),
    }
}

fn db_failure(
    name: &str,
    required: &str,
    what: &str,
    e: tokio_postgres::Error,
) -> Result<CriterionReport, SoakError> {
    match e.as_db_error() {
        Some(db) => Ok(fail(
            name,
            required,
            format!("{what} failed: {} ({})", db.message(), db.code().code()),
            "fix the cause above; the gate re-checks on every run",
        )),
        None => Err(SoakError::Db { action: what.to_string(), source: e }),
    }
}

/// Facts every criterion shares, read once.
struct Context<'a> {
    plan: &'a Plan,
    criteria: Criteria,
    /// Database clock, epoch seconds.
    now: f64,
    /// When `switch` last succeeded, epoch seconds and text.
    switch_at: Option<(f64, String)>,
    /// Start of the window over which sampled evidence counts (epoch seconds).
    window_start: f64,
    window_text: String,
}

/// Evaluates every criterion in force for `plan` and says whether `contract` may run.
pub async fn evaluate(client: &Client, plan: &Plan, cfg: &GateConfig) -> Result<GateReport, SoakError> {
    let tables = plan_tables(plan);
    let criteria = cfg.criteria_for(&tables, &plan.gate.criteria)?;
    let row = client
        .query_one(&format!("SELECT extract(epoch FROM now())::float8, {}", utc("now()")), &[])
        .await
        .map_err(SoakError::db("read the database clock"))?;
    let (now, evaluated_at): (f64, String) = (row.get(0), row.get(1));
    let switch_at = match switch_succeeded_at(client, &plan.id).await? {
        Some(at) => Some(at),
        None => switch_steps_done_at(client, plan).await?,
    };
    let mut window_start = switch_at.as_ref().map(|s| s.0).unwrap_or(0.0);
    if let Some(w) = criteria.effective_window() {
        window_start = window_start.max(now - w.as_secs_f64());
    }
    let window_text = match (criteria.effective_window(), &switch_at) {
        (Some(w), Some(_)) => format!("the last {} since switch", format_duration(w)),
        (Some(w), None) => format!("the last {}", format_duration(w)),
        (None, Some(_)) => "since switch".to_string(),
        (None, None) => "all time".to_string(),
    };
    let ctx = Context { plan, criteria, now, switch_at, window_start, window_text };
    let (radius, radius_reason) = blast_radius(client, plan, cfg).await?;

    let mut reports = Vec::new();
    for name in CRITERIA {
        let Some(required) = ctx.criteria.describe(name) else { continue };
        let r = match name {
            "min_soak" => min_soak::min_soak(&ctx, &required),
            "backfill_verified" => backfill_verified::backfill_verified(client, &ctx, &required).await?,
            "constraints_validated" => {
                constraints_validated::constraints_validated(client, &ctx, &required).await?
            }
            "no_old_clients" => no_old_clients::no_old_clients(client, &ctx, &required).await?,
            "old_path_silent" => old_path_silent::old_path_silent(client, &ctx, &required).await?,
            "observations" => observations::observations(client, &ctx, &required).await?,
            "approvals" => approvals::approvals(client, &ctx, cfg, radius, &required).await?,
            _ => continue,
        };
        reports.push(r);
    }
    // Always in force and reported last: every verdict above rests on it.
    reports.push(evidence_intact::evidence_intact(client).await?);
    let tiers = cfg.tiers_of(&tables).iter().map(|t| t.name.clone()).collect();
    Ok(GateReport {
        plan_id: plan.id.clone(),
        evaluated_at,
        open: reports.iter().all(|r| !r.blocks),
        blast_radius: radius,
        blast_radius_reason: radius_reason,
        tiers,
        criteria: reports,
    })
}

/// How `contract` means to get past the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passage<'a> {
    /// Only on evidence: a closed gate refuses.
    Evidence,
    /// `--break-glass --reason …`: a closed gate is bypassed and the bypass recorded.
    BreakGlass { actor: &'a str, reason: &'a str },
}

/// What the gate decided for one `apply --phase contract`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum GateDecision {
    /// Every criterion passes: contract may run.
    Open(GateReport),
    /// Closed, and bypassed by a break-glass recorded as `audit_log` row `audit_id`.
    BrokenGlass { report: GateReport, audit_id: i64 },
    /// Closed: contract must not run. [`GateReport::blocking_summary`] says what is missing.
    Closed(GateReport),
}

impl GateDecision {
    /// Whether contract may proceed.
    pub fn proceeds(&self) -> bool {
        !matches!(self, GateDecision::Closed(_))
    }

    pub fn report(&self) -> &GateReport {
        match self {
            GateDecision::Open(r) | GateDecision::Closed(r) | GateDecision::BrokenGlass { report: r, .. } => {
                r
            }
        }
    }
}

/// The executor's one call before `contract`: evaluates the gate and, when it is closed and
/// the operator broke the glass, records the bypass. An open gate records nothing (nothing
/// was bypassed). Call [`recheck_before_drop`] again right before the drop itself.
pub async fn decide(
    client: &Client,
    plan: &Plan,
    cfg: &GateConfig,
    passage: Passage<'_>,
) -> Result<GateDecision, SoakError> {
    let report = evaluate(client, plan, cfg).await?;
    if report.open {
        return Ok(GateDecision::Open(report));
    }
    match passage {
        Passage::Evidence => Ok(GateDecision::Closed(report)),
        Passage::BreakGlass { actor, reason } => {
            let audit_id = super::evidence::record_break_glass(client, plan, actor, reason, &report).await?;
            Ok(GateDecision::BrokenGlass { report, audit_id })
        }
    }
}

/// When `switch` last succeeded for `plan_id`, from the executor's `seqmig.phase_runs`; a
/// switch rolled back since does not count. No ledger or no successful switch = `None`
/// (and `min_soak` fails).
async fn switch_succeeded_at(client: &Client, plan_id: &str) -> Result<Option<(f64, String)>, SoakError> {
    Ok(crate::ledger::runs::switch_succeeded_at(client, plan_id).await?)
}

/// When the last step of `switch` succeeded, from `seqmig.step_runs`, when every switch step
/// of the plan is applied and none rolled back since. A runner killed right after the last
/// step committed leaves its phase run unfinished although the switch is complete (found by
/// the lifecycle model, issue 18): the steps are the truth the executor goes by.
async fn switch_steps_done_at(client: &Client, plan: &Plan) -> Result<Option<(f64, String)>, SoakError> {
    let steps: Vec<String> = plan.steps_of(crate::plan::Phase::Switch).iter().map(|s| s.id.clone()).collect();
    if steps.is_empty() {
        return Ok(None);
    }
    Ok(crate::ledger::runs::steps_done_at(client, &plan.id, &steps).await?)
}

/// The plan's names resolved to relation oids, as text for `= ANY($1::oid[])`-style queries.
fn relation_names(plan: &Plan) -> Vec<String> {
    plan_tables(plan).iter().map(QualifiedName::quoted).collect()
}

/// Right before the drop: fails when a session of the old release is connected now. With no
/// `no_old_clients` pattern in force there is nothing to check.
pub async fn recheck_before_drop(client: &Client, plan: &Plan, cfg: &GateConfig) -> Result<(), SoakError> {
    let criteria = cfg.criteria_for(&plan_tables(plan), &plan.gate.criteria)?;
    let patterns: Vec<String> = criteria.no_old_clients.into_iter().collect();
    if patterns.is_empty() {
        return Ok(());
    }
    let live = no_old_clients::live_old_clients(client, &patterns)
        .await
        .map_err(SoakError::db("check pg_stat_activity for old clients before the drop"))?;
    if live.is_empty() {
        Ok(())
    } else {
        Err(SoakError::OldClientsConnected {
            plan_id: plan.short_id().to_string(),
            sessions: live.join(", "),
        })
    }
}

/// A timestamp expression as RFC 3339 UTC text (`2026-11-29T00:46:24Z`), the one format
/// the gate shows times in.
pub(crate) fn utc(expr: &str) -> String {
    format!("to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_statements_are_shortened_on_one_line() {
        assert_eq!(old_path_silent::one_line("SELECT a\n  FROM t"), "SELECT a FROM t");
        assert!(old_path_silent::one_line(&"x ".repeat(200)).ends_with('…'));
    }

    #[test]
    fn report_lists_only_blocking_criteria_as_failing() {
        let r = GateReport {
            plan_id: "sha256:x".into(),
            evaluated_at: String::new(),
            open: false,
            blast_radius: BlastRadius::Table,
            blast_radius_reason: String::new(),
            tiers: vec![],
            criteria: vec![
                pass("min_soak", "1h", "ok".into()),
                CriterionReport {
                    name: "old_path_silent".into(),
                    required: "if_available".into(),
                    verdict: Verdict::Inconclusive,
                    blocks: false,
                    evidence: String::new(),
                    next: None,
                },
                fail("observations", "1 passing", "none".into(), "x"),
            ],
        };
        let names: Vec<&str> = r.failing().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["observations"]);
    }
}
