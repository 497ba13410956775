//! Where a plan stands: ledger rows turned into step and phase states, and the exact next
//! command. The runner decides with these; `seqmig status` prints them.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::Client;

use super::ledger::{self, AuditEntry, AuditEventKind, PhaseRunRow, RunOutcome, StepRow, StoredPlanState};
use super::leftover::{DetachState, IndexState, detach_state, index_state};
use super::{Action, ExecError, Holder, command_for};
use crate::plan::{Phase, Plan, Step};

/// The state of one step, from its latest ledger row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Never run, or rolled back.
    Pending,
    /// Applied and recorded.
    Done,
    /// A live runner is on it.
    Running,
    /// Its runner went away mid-step (crash, kill, lost connection).
    Interrupted,
    /// It failed; the error is recorded.
    Failed,
    /// Undone by a rollback.
    RolledBack,
    /// A rollback of it failed or was interrupted: still applied.
    RollbackIncomplete,
}

impl StepState {
    pub fn from_row(row: Option<&StepRow>) -> StepState {
        let Some(r) = row else { return StepState::Pending };
        match (r.action.as_str(), r.outcome) {
            ("apply", RunOutcome::Ok) => StepState::Done,
            ("apply", RunOutcome::Failed) => StepState::Failed,
            ("apply", _) if r.interrupted => StepState::Interrupted,
            ("apply", _) => StepState::Running,
            (_, RunOutcome::Ok) => StepState::RolledBack,
            _ => StepState::RollbackIncomplete,
        }
    }

    /// Whether the step's effect is (believed to be) in the database.
    pub fn is_applied(self) -> bool {
        matches!(self, StepState::Done | StepState::RollbackIncomplete)
    }

    /// Whether an apply of it started but did not finish.
    pub fn is_attempted(self) -> bool {
        matches!(self, StepState::Failed | StepState::Interrupted | StepState::Running)
    }
}

/// The state of one phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseState {
    /// The plan has no steps in it.
    Empty,
    Pending,
    Running,
    /// Some steps done, none failed or interrupted.
    Partial,
    Failed,
    Interrupted,
    Applied,
    RolledBack,
}

impl PhaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseState::Empty => "empty",
            PhaseState::Pending => "pending",
            PhaseState::Running => "running",
            PhaseState::Partial => "partially applied",
            PhaseState::Failed => "failed",
            PhaseState::Interrupted => "interrupted",
            PhaseState::Applied => "applied",
            PhaseState::RolledBack => "rolled back",
        }
    }

    /// Applied, or nothing to apply.
    pub fn is_complete(self) -> bool {
        matches!(self, PhaseState::Applied | PhaseState::Empty)
    }
}

/// A step with its state, for status output.
#[derive(Debug, Clone, Serialize)]
pub struct StepStatus {
    pub id: String,
    pub change: String,
    pub state: StepState,
    pub lock: String,
    pub lock_target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    pub attempts: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_pid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The INVALID index an interrupted or failed `CREATE INDEX CONCURRENTLY` of this step
    /// left behind (one partition's index of a half-built set, for example).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_index: Option<String>,
    /// The partition an interrupted `DETACH PARTITION … CONCURRENTLY` of this step left
    /// pending detach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_detach: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseStatus {
    pub phase: Phase,
    pub state: PhaseState,
    pub steps_done: usize,
    pub steps_total: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<PhaseRunRow>,
    pub steps: Vec<StepStatus>,
}

/// One plan's whole picture.
#[derive(Debug, Clone, Serialize)]
pub struct PlanStatus {
    pub id: String,
    pub state: StoredPlanState,
    pub created_at: String,
    pub actor: String,
    pub summary: Vec<String>,
    pub phases: Vec<PhaseStatus>,
    /// The command a human should run next, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Why `next` (interrupted here, failed there, …).
    pub explanation: String,
    pub break_glass: Vec<AuditEntry>,
    /// Progress of this plan's backfills, from the engine's ledger.
    pub backfills: Vec<BackfillView>,
    /// The plan it is stacked after (`plan --after`), full id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Active plans stacked after this one, full ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stacked: Vec<String>,
    /// With several plans in flight: the last phase each has completed, and its soak gate
    /// (`open`, or `closed: <first failing criterion>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub through: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
}

/// One backfill of a plan, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BackfillView {
    #[serde(flatten)]
    pub progress: crate::backfill::Progress,
    pub paused: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What `seqmig status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub ledger_version: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner: Option<Holder>,
    pub flags: BTreeMap<String, String>,
    pub plans: Vec<PlanStatus>,
}

/// Step states of a plan, computed from the ledger.
#[derive(Debug, Clone)]
pub struct PlanState {
    pub rows: BTreeMap<String, StepRow>,
}

impl PlanState {
    pub async fn load(client: &Client, plan_id: &str) -> Result<PlanState, ExecError> {
        Ok(PlanState { rows: ledger::latest_step_rows(client, plan_id).await? })
    }

    /// A plan never applied.
    pub fn empty() -> PlanState {
        PlanState { rows: BTreeMap::new() }
    }

    pub fn step(&self, step: &Step) -> StepState {
        StepState::from_row(self.rows.get(&step.id))
    }

    pub fn phase(&self, plan: &Plan, phase: Phase) -> PhaseState {
        let steps = plan.steps_of(phase);
        if steps.is_empty() {
            return PhaseState::Empty;
        }
        let states: Vec<StepState> = steps.iter().map(|s| self.step(s)).collect();
        if states.iter().all(|s| s.is_applied()) {
            PhaseState::Applied
        } else if states.contains(&StepState::Running) {
            PhaseState::Running
        } else if states.contains(&StepState::Interrupted) {
            PhaseState::Interrupted
        } else if states.contains(&StepState::Failed) {
            PhaseState::Failed
        } else if states.iter().any(|s| s.is_applied()) {
            PhaseState::Partial
        } else if states.contains(&StepState::RolledBack) {
            PhaseState::RolledBack
        } else {
            PhaseState::Pending
        }
    }

    /// Whether any step of the plan is applied.
    pub fn anything_applied(&self, plan: &Plan) -> bool {
        plan.steps.iter().any(|s| self.step(s).is_applied())
    }

    /// The first phase, in order, that is not complete.
    pub fn first_incomplete(&self, plan: &Plan) -> Option<(Phase, PhaseState)> {
        Phase::ALL.into_iter().map(|p| (p, self.phase(plan, p))).find(|(_, s)| !s.is_complete())
    }

    /// The next command and why, for a plan whose ledger state is `plan_state`.
    pub fn next(&self, plan: &Plan, plan_state: StoredPlanState) -> (Option<String>, String) {
        let flag = (plan_state != StoredPlanState::Active)
            .then(|| format!("--plan-id {}", super::short_id(&plan.id)));
        let id = flag.as_deref();
        match self.first_incomplete(plan) {
            None => (None, "every phase is applied; the plan is complete".into()),
            Some((phase, state)) => {
                let cmd = command_for(Action::Apply, phase, id);
                let why = match state {
                    PhaseState::Interrupted => {
                        let step = self.blamed_step(plan, phase, StepState::Interrupted);
                        format!(
                            "phase {phase} was interrupted at step {step} (its runner is gone); applying the phase \
                             again resumes it, skipping the steps already done"
                        )
                    }
                    PhaseState::Failed => {
                        let step = self.blamed_step(plan, phase, StepState::Failed);
                        let msg = self.rows.get(&step).and_then(|r| r.message.clone()).unwrap_or_default();
                        format!(
                            "phase {phase} failed at step {step}: {msg}; fix the cause and apply the phase again"
                        )
                    }
                    PhaseState::Running => {
                        let step = self.blamed_step(plan, phase, StepState::Running);
                        let pid = self.rows.get(&step).map(|r| r.backend_pid).unwrap_or_default();
                        return (None, format!("phase {phase} is running step {step} (backend pid {pid})"));
                    }
                    // A rollback stopped half way (killed, connection lost): the operator's
                    // last intent was to undo, so finishing the undo comes first.
                    PhaseState::Partial if self.partly_rolled_back(plan, phase) => {
                        let steps = plan.steps_of(phase);
                        let undone = steps.iter().filter(|s| self.step(s) == StepState::RolledBack).count();
                        // An undo refused by the data fails again until those rows change.
                        let on_data = steps.iter().find_map(|s| {
                            let code = self.rows.get(&s.id)?.sqlstate.as_deref()?;
                            (self.step(s) == StepState::RollbackIncomplete && super::violates_data(code))
                                .then(|| format!(
                                    "; the undo of step {} was refused by rows that violate it (SQLSTATE {code}): \
                                     give them values that satisfy it first",
                                    s.id
                                ))
                        });
                        return (
                            Some(command_for(Action::Rollback, phase, id)),
                            format!(
                                "phase {phase} is partly rolled back ({undone} of {} steps undone; the rollback \
                                 stopped before finishing); rolling it back again finishes the undo, applying it \
                                 again redoes it{}",
                                steps.len(),
                                on_data.unwrap_or_default()
                            ),
                        );
                    }
                    PhaseState::Partial => {
                        format!("phase {phase} is partially applied; applying it again finishes it")
                    }
                    _ if phase == Phase::Contract => {
                        "phases before contract are applied; contract is behind the soak gate (see 'seqmig gate')"
                            .to_string()
                    }
                    _ => format!("phase {phase} is next"),
                };
                (Some(cmd), why)
            }
        }
    }

    /// Some steps of `phase` undone by a rollback while others are still applied.
    fn partly_rolled_back(&self, plan: &Plan, phase: Phase) -> bool {
        let steps = plan.steps_of(phase);
        steps.iter().any(|s| self.step(s) == StepState::RolledBack)
            && steps.iter().any(|s| self.step(s).is_applied())
    }

    fn blamed_step(&self, plan: &Plan, phase: Phase, state: StepState) -> String {
        plan.steps_of(phase).iter().find(|s| self.step(s) == state).map(|s| s.id.clone()).unwrap_or_default()
    }

    /// Per-phase status for output.
    pub fn phases(&self, plan: &Plan, runs: &BTreeMap<Phase, PhaseRunRow>) -> Vec<PhaseStatus> {
        Phase::ALL
            .into_iter()
            .map(|phase| {
                let steps = plan.steps_of(phase);
                let steps: Vec<StepStatus> = steps
                    .iter()
                    .map(|s| {
                        let row = self.rows.get(&s.id);
                        StepStatus {
                            id: s.id.clone(),
                            change: s.change.clone(),
                            state: self.step(s),
                            lock: s.lock.as_str().to_string(),
                            lock_target: s.lock_target.clone(),
                            actor: row.map(|r| r.actor.clone()),
                            started_at: row.map(|r| r.started_at.clone()),
                            finished_at: row.and_then(|r| r.finished_at.clone()),
                            duration_ms: row.and_then(|r| r.duration_ms),
                            attempts: row.map(|r| r.attempts).unwrap_or(0),
                            backend_pid: row
                                .filter(|r| r.outcome == RunOutcome::Running)
                                .map(|r| r.backend_pid),
                            sqlstate: row.and_then(|r| r.sqlstate.clone()),
                            message: row.and_then(|r| r.message.clone()),
                            invalid_index: None,
                            pending_detach: None,
                        }
                    })
                    .collect();
                PhaseStatus {
                    phase,
                    state: self.phase(plan, phase),
                    steps_done: steps.iter().filter(|s| s.state.is_applied()).count(),
                    steps_total: steps.len(),
                    last_run: runs.get(&phase).cloned(),
                    steps,
                }
            })
            .collect()
    }
}

/// Reads everything `seqmig status` shows. `plan` narrows to one stored plan (id or prefix);
/// otherwise active plans are shown, or the most recent one when none is active.
pub async fn status(client: &Client, plan: Option<&str>) -> Result<StatusReport, ExecError> {
    let version = ledger::check_version(client).await?;
    if version == 0 {
        return Ok(StatusReport { ledger_version: 0, runner: None, flags: BTreeMap::new(), plans: vec![] });
    }
    let ids = match plan {
        Some(prefix) => vec![super::guard::resolve_id(client, prefix).await?],
        None => {
            let active = ledger::active_plan_ids(client).await?;
            if active.is_empty() {
                ledger::plan_ids(client, None).await?.into_iter().last().into_iter().collect()
            } else {
                active
            }
        }
    };
    // Ledger version 3 brought the backfill tables; status never upgrades, so check.
    let backfills = if version >= 3 {
        crate::backfill::status(client)
            .await
            .map_err(|source| ExecError::Db { context: "read backfill progress".into(), source })?
    } else {
        Vec::new()
    };
    // Several plans in flight: each one's progress, gate and dependencies (issue 20).
    let flights =
        if plan.is_none() && ids.len() > 1 { super::inflight::in_flight(client).await? } else { vec![] };
    let gate_config = if flights.is_empty() { None } else { crate::soak::GateConfig::discover(None).ok() };
    // What each active plan is stacked after, read once for every plan shown.
    let mut afters = Vec::new();
    for other in ledger::active_plan_ids(client).await? {
        if let Some(o) = ledger::stored_plan(client, &other).await? {
            afters.push((other, o.plan.after));
        }
    }
    let mut plans = Vec::new();
    for id in ids {
        let stored =
            ledger::stored_plan(client, &id).await?.ok_or_else(|| ExecError::UnknownPlan(id.clone()))?;
        let state = PlanState::load(client, &id).await?;
        let runs = ledger::latest_phase_runs(client, &id).await?;
        let (mut next, explanation) = state.next(&stored.plan, stored.state);
        // With several plans shown, the next command names its plan.
        if !flights.is_empty()
            && let Some(n) = &mut next
            && n.starts_with("seqmig ")
            && !n.contains("--plan")
        {
            n.push_str(&format!(" --plan-id {}", super::short_id(&id)));
        }
        let break_glass = ledger::audit_entries(client, &id)
            .await?
            .into_iter()
            .filter(|e| e.event == AuditEventKind::BreakGlass)
            .collect();
        let flight = flights.iter().find(|f| f.plan.id == id);
        let gate = match (flight, &gate_config) {
            (Some(f), Some(cfg)) => Some(match crate::soak::evaluate(client, &f.plan, cfg).await {
                Ok(g) if g.open => "open".to_string(),
                Ok(g) => format!("closed: {}", g.blocking_summary().first().cloned().unwrap_or_default()),
                Err(e) => format!("unknown: {e}"),
            }),
            _ => None,
        };
        let stacked: Vec<String> = afters
            .iter()
            .filter(|(_, after)| after.as_deref() == Some(id.as_str()))
            .map(|(other, _)| other.clone())
            .collect();
        let mut phases = state.phases(&stored.plan, &runs);
        for s in phases.iter_mut().flat_map(|p| p.steps.iter_mut()) {
            if !matches!(s.state, StepState::Failed | StepState::Interrupted | StepState::RollbackIncomplete)
            {
                continue;
            }
            let Some(effects) = stored.plan.steps.iter().find(|p| p.id == s.id).map(|p| &p.effects) else {
                continue;
            };
            if let Some(build) = &effects.builds_index
                && let IndexState::Invalid(index) = index_state(client, build)
                    .await
                    .map_err(|source| ExecError::Db { context: "look for an invalid index".into(), source })?
            {
                s.invalid_index = Some(index);
            }
            if let Some(d) = &effects.detaches
                && detach_state(client, d)
                    .await
                    .map_err(|source| ExecError::Db { context: "look for a pending detach".into(), source })?
                    == DetachState::Pending
            {
                s.pending_detach = Some(d.partition.quoted());
            }
        }
        plans.push(PlanStatus {
            after: stored.plan.after.clone(),
            stacked,
            through: flight.map(|f| f.through()),
            gate,
            id: id.clone(),
            state: stored.state,
            created_at: stored.created_at.clone(),
            actor: stored.actor.clone(),
            summary: stored.plan.changes.iter().map(|c| c.summary.clone()).collect(),
            phases,
            next,
            explanation,
            break_glass,
            backfills: backfills
                .iter()
                .filter(|b| b.progress.plan_id == id)
                .map(|b| BackfillView {
                    progress: b.progress.clone(),
                    paused: b.paused,
                    last_error: b.last_error.clone(),
                })
                .collect(),
        });
    }
    Ok(StatusReport {
        ledger_version: version,
        runner: super::guard::lock_holder(client).await?,
        flags: ledger::flags(client).await?,
        plans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{GateSpec, LockMode};

    fn plan() -> Plan {
        let step = |id: &str, phase: Phase| Step {
            rollback_sql: Some("SELECT 1".into()),
            one_way: false,
            ..Step::new(id, "c1", phase, "SELECT 1", LockMode::None, "")
        };
        let steps = vec![step("s1", Phase::Expand), step("s2", Phase::Expand), step("s3", Phase::Switch)];
        Plan::assemble(vec![], steps, vec![], GateSpec::default())
    }

    fn row(action: &str, outcome: &str, interrupted: bool) -> StepRow {
        StepRow {
            action: action.into(),
            outcome: match outcome {
                "ok" => RunOutcome::Ok,
                "failed" => RunOutcome::Failed,
                _ => RunOutcome::Running,
            },
            interrupted,
            backend_pid: 42,
            sqlstate: None,
            message: Some("boom".into()),
            attempts: 1,
            actor: "a".into(),
            started_at: String::new(),
            finished_at: None,
            duration_ms: None,
        }
    }

    fn state(rows: &[(&str, StepRow)]) -> PlanState {
        PlanState { rows: rows.iter().map(|(id, r)| (id.to_string(), r.clone())).collect() }
    }

    #[test]
    fn a_fresh_plan_starts_with_expand_and_skips_empty_phases() {
        let p = plan();
        let s = PlanState::empty();
        assert_eq!(s.phase(&p, Phase::Expand), PhaseState::Pending);
        assert_eq!(s.phase(&p, Phase::DualWrite), PhaseState::Empty);
        assert_eq!(s.next(&p, StoredPlanState::Active).0.as_deref(), Some("seqmig apply --phase expand"));
        let s = state(&[("s1", row("apply", "ok", false)), ("s2", row("apply", "ok", false))]);
        assert_eq!(s.phase(&p, Phase::Expand), PhaseState::Applied);
        assert_eq!(s.next(&p, StoredPlanState::Active).0.as_deref(), Some("seqmig apply --phase switch"));
    }

    #[test]
    fn a_running_row_whose_backend_is_gone_is_interrupted() {
        let p = plan();
        let s = state(&[("s1", row("apply", "ok", false)), ("s2", row("apply", "running", true))]);
        assert_eq!(s.phase(&p, Phase::Expand), PhaseState::Interrupted);
        let (next, why) = s.next(&p, StoredPlanState::Active);
        assert_eq!(next.as_deref(), Some("seqmig apply --phase expand"));
        assert!(why.contains("interrupted at step s2"), "{why}");
        let s = state(&[("s2", row("apply", "running", false))]);
        assert_eq!(s.phase(&p, Phase::Expand), PhaseState::Running);
        assert_eq!(s.next(&p, StoredPlanState::Active).0, None, "nothing to run while a runner works");
    }

    #[test]
    fn rollback_rows_return_steps_to_pending_unless_the_rollback_failed() {
        let p = plan();
        let s = state(&[("s1", row("rollback", "ok", false)), ("s2", row("rollback", "failed", false))]);
        assert_eq!(s.step(&p.steps[0]), StepState::RolledBack);
        assert!(s.step(&p.steps[1]).is_applied(), "a failed rollback leaves the step applied");
        assert_eq!(s.phase(&p, Phase::Expand), PhaseState::Partial);
        let (next, why) = s.next(&p, StoredPlanState::Active);
        assert_eq!(next.as_deref(), Some("seqmig rollback --phase expand"), "finish the undo first");
        assert!(why.contains("partly rolled back (1 of 2 steps undone"), "{why}");
        let s = state(&[("s1", row("rollback", "ok", false)), ("s2", row("rollback", "ok", false))]);
        assert_eq!(s.phase(&p, Phase::Expand), PhaseState::RolledBack);
        assert_eq!(
            s.next(&p, StoredPlanState::RolledBack).0.as_deref(),
            Some(&*format!("seqmig apply --phase expand --plan-id {}", p.short_id()))
        );
    }
}
