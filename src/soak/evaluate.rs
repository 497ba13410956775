//! Evaluating the gate: each criterion reads its evidence from the database (database clock,
//! never the local one) and gives a verdict. Missing evidence is a failure, never a pass; a
//! criterion whose query fails on the database (an expression that no longer compiles, an
//! invalid pattern) fails with the error as its evidence. Only a lost connection is an
//! error of the whole evaluation.
//!
//! The statements run outside any transaction of their own; call [`evaluate`] on a session
//! that is not inside a transaction block.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use tokio_postgres::Client;

use super::config::{BlastRadius, Criteria, GateConfig, OldPathRule, format_duration};
use super::evidence::{old_path_statements, statements_available, stats_reset};
use super::objects::{change_relation, dropped_objects, plan_tables, tokenize};
use super::{CRITERIA, MARKER, SoakError};
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
    let switch_at = switch_succeeded_at(client, &plan.id).await?;
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
            "min_soak" => min_soak(&ctx, &required),
            "backfill_verified" => backfill_verified(client, &ctx, &required).await?,
            "constraints_validated" => constraints_validated(client, &ctx, &required).await?,
            "no_old_clients" => no_old_clients(client, &ctx, &required).await?,
            "old_path_silent" => old_path_silent(client, &ctx, &required).await?,
            "observations" => observations(client, &ctx, &required).await?,
            "approvals" => approvals(client, &ctx, cfg, radius, &required).await?,
            _ => continue,
        };
        reports.push(r);
    }
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
    let row = client
        .query_opt(
            &format!(
                "SELECT extract(epoch FROM r.finished_at)::float8, {} FROM seqmig.phase_runs r \
                 WHERE r.plan_id = $1 AND r.phase = 'switch' AND r.action = 'apply' AND r.outcome = 'ok' \
                   AND r.finished_at IS NOT NULL \
                   AND NOT EXISTS (SELECT 1 FROM seqmig.phase_runs b \
                                   WHERE b.plan_id = r.plan_id AND b.phase = 'switch' AND b.action = 'rollback' \
                                     AND b.outcome = 'ok' AND b.id > r.id) \
                 ORDER BY r.id DESC LIMIT 1",
                utc("r.finished_at")
            ),
            &[&plan_id],
        )
        .await;
    match row {
        Ok(r) => Ok(r.map(|r| (r.get(0), r.get(1)))),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(e) => Err(SoakError::db("read when switch succeeded from seqmig.phase_runs")(e)),
    }
}

fn min_soak(ctx: &Context<'_>, required: &str) -> CriterionReport {
    let need = ctx.criteria.min_soak.unwrap_or_default();
    match &ctx.switch_at {
        None => fail(
            "min_soak",
            required,
            "switch has not succeeded for this plan: the soak has not started".into(),
            "seqmig apply --phase switch",
        ),
        Some((at, text)) => {
            let age = (ctx.now - at).max(0.0);
            let shown = format_duration(Duration::from_secs(age as u64));
            if age >= need.as_secs_f64() {
                pass("min_soak", required, format!("switch succeeded at {text}, {shown} ago"))
            } else {
                let left = Duration::from_secs_f64((need.as_secs_f64() - age).max(0.0));
                fail(
                    "min_soak",
                    required,
                    format!("switch succeeded at {text}, only {shown} ago; {} to go", format_duration(left)),
                    format!(
                        "wait {} and run 'seqmig gate' again",
                        format_duration(left.max(Duration::from_secs(1)))
                    ),
                )
            }
        }
    }
}

async fn backfill_verified(
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
        let sql = format!("SELECT {MARKER} count(*) FROM {} WHERE {predicate}", spec.table.quoted());
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

/// The plan's names resolved to relation oids, as text for `= ANY($1::oid[])`-style queries.
fn relation_names(plan: &Plan) -> Vec<String> {
    plan_tables(plan).iter().map(QualifiedName::quoted).collect()
}

async fn constraints_validated(
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

async fn no_old_clients(
    client: &Client,
    ctx: &Context<'_>,
    required: &str,
) -> Result<CriterionReport, SoakError> {
    let name = "no_old_clients";
    let patterns: Vec<String> = ctx.criteria.no_old_clients.iter().cloned().collect();
    let samples = client
        .query_one(
            &format!(
                "SELECT count(*), {} FROM seqmig.soak_samples WHERE taken_at >= to_timestamp($1)",
                utc("max(taken_at)")
            ),
            &[&ctx.window_start],
        )
        .await;
    let samples = match samples {
        Ok(r) => r,
        Err(e) => return db_failure(name, required, "reading the client censuses", e),
    };
    let (n_samples, last): (i64, Option<String>) = (samples.get(0), samples.get(1));
    let seen = match client
        .query(
            &format!(
                "SELECT application_name, sum(sessions)::bigint, {} FROM seqmig.client_samples \
                 WHERE taken_at >= to_timestamp($1) AND application_name ~ ANY($2::text[]) \
                 GROUP BY 1 ORDER BY 1",
                utc("max(taken_at)")
            ),
            &[&ctx.window_start, &patterns],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => return db_failure(name, required, "matching the client censuses", e),
    };
    let live = match live_old_clients(client, &patterns).await {
        Ok(l) => l,
        Err(e) => return db_failure(name, required, "the live check of pg_stat_activity", e),
    };
    let mut parts = Vec::new();
    for r in &seen {
        parts.push(format!(
            "'{}' seen in censuses ({} sessions, last at {})",
            r.get::<_, String>(0),
            r.get::<_, i64>(1),
            r.get::<_, String>(2)
        ));
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
async fn live_old_clients(
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

/// Right before the drop: fails when a session of the old release is connected now. With no
/// `no_old_clients` pattern in force there is nothing to check.
pub async fn recheck_before_drop(client: &Client, plan: &Plan, cfg: &GateConfig) -> Result<(), SoakError> {
    let criteria = cfg.criteria_for(&plan_tables(plan), &plan.gate.criteria)?;
    let patterns: Vec<String> = criteria.no_old_clients.into_iter().collect();
    if patterns.is_empty() {
        return Ok(());
    }
    let live = live_old_clients(client, &patterns)
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

/// One reading of pg_stat_statements: when its counters were last reset, and the calls per
/// (userid, queryid) of statements naming the old path.
struct StatementPoint {
    reset: Option<f64>,
    calls: BTreeMap<(u32, i64), (i64, String)>,
}

async fn old_path_silent(
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
    let sample_rows = match client
        .query(
            "SELECT id, extract(epoch FROM stats_reset)::float8 FROM seqmig.soak_samples \
             WHERE statements_available AND (taken_at > to_timestamp($1) OR id = ( \
                 SELECT id FROM seqmig.soak_samples WHERE statements_available AND taken_at <= to_timestamp($1) \
                 ORDER BY taken_at DESC, id DESC LIMIT 1)) \
             ORDER BY taken_at, id",
            &[&switch_at],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return db_failure(name, required, "reading the statement censuses", e),
    };
    let baseline_row = client
        .query_opt(
            "SELECT id FROM seqmig.soak_samples WHERE statements_available AND taken_at <= to_timestamp($1) \
             ORDER BY taken_at DESC, id DESC LIMIT 1",
            &[&switch_at],
        )
        .await
        .map_err(SoakError::db("read the statement baseline"))?;
    let baseline_id: Option<i64> = baseline_row.map(|r| r.get(0));
    let mut points: Vec<StatementPoint> = Vec::new();
    for s in &sample_rows {
        let id: i64 = s.get(0);
        let rows = client
            .query(
                "SELECT userid, queryid, calls, query FROM seqmig.statement_samples WHERE sample_id = $1",
                &[&id],
            )
            .await
            .map_err(SoakError::db("read a statement census"))?;
        points.push(StatementPoint { reset: s.get(1), calls: collect_calls(&rows, &matches) });
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
    let mut prev: Option<&StatementPoint> = None;
    let mut first_reset_after_switch = false;
    if baseline_id.is_none() {
        first_reset_after_switch = points.first().and_then(|p| p.reset).is_some_and(|r| r >= switch_at);
    }
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
    let baseline_note = match (baseline_id, first_reset_after_switch) {
        (Some(_), _) | (None, true) => String::new(),
        (None, false) => {
            " (no census at or before switch: counting every call since statistics were reset)".into()
        }
    };
    let total: i64 = calls_since.values().map(|c| c.0).sum();
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

fn collect_calls(
    rows: &[tokio_postgres::Row],
    matches: &impl Fn(&str) -> bool,
) -> BTreeMap<(u32, i64), (i64, String)> {
    rows.iter()
        .filter_map(|r| {
            let query: String = r.get(3);
            matches(&query).then(|| ((r.get::<_, u32>(0), r.get::<_, i64>(1)), (r.get::<_, i64>(2), query)))
        })
        .collect()
}

/// A timestamp expression as RFC 3339 UTC text (`2026-11-29T00:46:24Z`), the one format
/// the gate shows times in.
pub(crate) fn utc(expr: &str) -> String {
    format!("to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
}

fn one_line(q: &str) -> String {
    let s: String = q.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 120 { format!("{}…", s.chars().take(120).collect::<String>()) } else { s }
}

async fn observations(
    client: &Client,
    ctx: &Context<'_>,
    required: &str,
) -> Result<CriterionReport, SoakError> {
    let name = "observations";
    let rule = ctx.criteria.observations.clone().unwrap_or_default();
    let rows = match client
        .query(
            "SELECT name, passed, count(*)::bigint, \
                    (array_agg(coalesce(value, '') || CASE WHEN source IS NULL THEN '' ELSE ' from ' || source END \
                               ORDER BY observed_at DESC))[1] \
             FROM seqmig.soak_observations \
             WHERE (plan_id IS NULL OR plan_id = $1) AND observed_at >= to_timestamp($2) \
             GROUP BY 1, 2 ORDER BY 1, 2",
            &[&ctx.plan.id, &ctx.window_start],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return db_failure(name, required, "reading seqmig.soak_observations", e),
    };
    let mut passing: BTreeMap<String, i64> = BTreeMap::new();
    let mut failing = Vec::new();
    for r in &rows {
        let (crit, passed, n, last): (String, bool, i64, Option<String>) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
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
        short.push(format!("{total} of {} passing", rule.total));
    }
    for (crit, need) in &rule.per_name {
        let have = passing.get(crit).copied().unwrap_or(0);
        if have < i64::from(*need) {
            short.push(format!("{have} of {need} passing {crit}"));
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

async fn approvals(
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
    let rows = match client
        .query(
            "SELECT role, string_agg(DISTINCT actor, ', ' ORDER BY actor) FROM seqmig.approvals \
             WHERE plan_id = $1 GROUP BY role ORDER BY role",
            &[&ctx.plan.id],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return db_failure(name, required, "reading seqmig.approvals", e),
    };
    let given: BTreeMap<String, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
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

fn list_or_none(set: &BTreeSet<String>) -> String {
    if set.is_empty() { "none".into() } else { set.iter().cloned().collect::<Vec<_>>().join(", ") }
}

/// The blast radius of `plan` against the catalog, and why: one table alone; several tables,
/// tables linked by foreign keys or in a tier marked `shared`; or everything (objects that
/// are not relations, or relations in several schemas).
pub async fn blast_radius(
    client: &Client,
    plan: &Plan,
    cfg: &GateConfig,
) -> Result<(BlastRadius, String), SoakError> {
    // Names from changes must resolve; names from lock targets may be indexes or objects
    // created later and are only used when they do.
    let mut from_changes: Vec<(String, String)> = Vec::new();
    for change in &plan.changes {
        match change_relation(&change.object) {
            Some(q) => from_changes.push((change.object.clone(), q.quoted())),
            None => from_changes.push((change.object.clone(), String::new())),
        }
    }
    let mut names: Vec<String> = relation_names(plan);
    names.extend(from_changes.iter().map(|c| c.1.clone()).filter(|s| !s.is_empty()));
    let resolve = "SELECT x, n.nspname::text, c2.oid::text, c2.relname::text \
                   FROM unnest($1::text[]) x \
                   LEFT JOIN pg_class c ON c.oid = to_regclass(x) \
                   LEFT JOIN pg_index i ON i.indexrelid = c.oid \
                   LEFT JOIN pg_class c2 ON c2.oid = coalesce(i.indrelid, c.oid) \
                   LEFT JOIN pg_namespace n ON n.oid = c2.relnamespace";
    let rows = client.query(resolve, &[&names]).await.map_err(SoakError::db("resolve the plan's tables"))?;
    let mut resolved: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for r in &rows {
        let x: String = r.get(0);
        if let (Some(schema), Some(oid), Some(rel)) =
            (r.get::<_, Option<String>>(1), r.get::<_, Option<String>>(2), r.get::<_, Option<String>>(3))
        {
            resolved.insert(x, (schema, oid, rel));
        }
    }
    let not_relations: Vec<&str> = from_changes
        .iter()
        .filter(|(_, q)| q.is_empty() || !resolved.contains_key(q))
        .map(|(o, _)| o.as_str())
        .collect();
    if !not_relations.is_empty() {
        return Ok((
            BlastRadius::Everything,
            format!("changes objects that are not tables: {}", not_relations.join(", ")),
        ));
    }
    let oids: BTreeSet<&String> = resolved.values().map(|v| &v.1).collect();
    let schemas: BTreeSet<&String> = resolved.values().map(|v| &v.0).collect();
    if schemas.len() > 1 {
        let s: Vec<&str> = schemas.iter().map(|s| s.as_str()).collect();
        return Ok((BlastRadius::Everything, format!("tables in several schemas: {}", s.join(", "))));
    }
    if oids.len() > 1 {
        let mut t: Vec<String> = resolved.values().map(|v| format!("{}.{}", v.0, v.2)).collect();
        t.dedup();
        t.sort();
        t.dedup();
        return Ok((BlastRadius::Linked, format!("several tables: {}", t.join(", "))));
    }
    let tables = plan_tables(plan);
    if let Some(tier) = cfg.tiers_of(&tables).into_iter().find(|t| t.shared) {
        return Ok((BlastRadius::Linked, format!("tier '{}' is shared", tier.name)));
    }
    let Some(oid) = oids.into_iter().next() else {
        return Ok((BlastRadius::Table, "the plan touches no existing table".into()));
    };
    let links = client
        .query(
            "SELECT conname::text, conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint \
             WHERE contype = 'f' AND conrelid <> confrelid \
               AND (conrelid = $1::text::oid OR confrelid = $1::text::oid) ORDER BY 1 LIMIT 3",
            &[oid],
        )
        .await
        .map_err(SoakError::db("read foreign keys of the plan's table"))?;
    if let Some(l) = links.first() {
        return Ok((
            BlastRadius::Linked,
            format!(
                "linked by foreign key {} ({} → {})",
                l.get::<_, String>(0),
                l.get::<_, String>(1),
                l.get::<_, String>(2)
            ),
        ));
    }
    let (schema, _, rel) = resolved.values().next().cloned().unwrap_or_default();
    Ok((BlastRadius::Table, format!("one table alone: {schema}.{rel}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_statements_are_shortened_on_one_line() {
        assert_eq!(one_line("SELECT a\n  FROM t"), "SELECT a FROM t");
        assert!(one_line(&"x ".repeat(200)).ends_with('…'));
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
