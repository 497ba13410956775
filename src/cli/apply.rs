//! `seqmig apply --phase P`: runs one phase of a plan through the executor. Also holds what
//! `rollback` shares with it: the plan source, the connection and retry flags, the reporter.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args as ClapArgs;

use super::Outcome;
use super::output;
use crate::db::ConnectOptions;
use crate::exec::{
    self, ContractGate, Event, ExecError, GatePassage, PlanSource, Reporter, RetryPolicy, RunnerOptions,
};
use crate::plan::signature::{PlanKey, VERIFY_KEY_ENV};
use crate::plan::{Phase, Plan};

/// The `Examples:` section of `--help` (and of the book's CLI reference).
pub(crate) const EXAMPLES: &str = r#"Examples:
  # The first apply stores the plan in the database; later commands find it there
  seqmig apply --plan plan.json --phase expand
  seqmig apply --phase dual_write
  seqmig apply --phase backfill --dry-run
  seqmig apply --phase switch --lock-timeout 500 --retry-budget 30m
  # contract runs only while `seqmig gate` is open, unless the glass is broken (recorded)
  seqmig apply --phase contract
  seqmig apply --phase contract --break-glass --reason "INC-4711: disk almost full""#;

/// Which plan, where, as whom.
#[derive(Debug, Clone, ClapArgs)]
pub struct Target {
    /// The plan file written by `seqmig plan --format json` (stored in the database on first apply).
    #[arg(long, value_name = "FILE", conflicts_with = "plan_id")]
    pub plan: Option<PathBuf>,
    /// A plan already stored in the database, by id or unambiguous prefix; default: the only active plan.
    #[arg(long, value_name = "ID")]
    pub plan_id: Option<String>,
    /// The database (default: $DATABASE_URL, then the libpq variables PGHOST, PGPORT, …).
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Who is running this, recorded in the ledger (default: $SEQMIG_ACTOR, then $USER, $LOGNAME).
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
    /// The longest any DDL statement waits for a lock per attempt, in milliseconds; readers queued
    /// behind it wait at most this long.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub lock_timeout: u64,
    /// Total time to keep retrying one statement that cannot get its lock (`90s`, `10m`, `1h`).
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub retry_budget: String,
    /// Apply or roll back only plans signed with this key (`seqmig plan --sign-key-file`);
    /// unsigned and altered plans are refused before anything runs. Default:
    /// $SEQMIG_VERIFY_KEY_FILE; without either, signatures are not checked.
    #[arg(long, value_name = "FILE")]
    pub verify_key_file: Option<PathBuf>,
}

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// The phase to apply.
    #[arg(long, value_name = "PHASE", value_parser = super::apply::phase_values())]
    pub phase: String,
    /// Print what would run and change nothing (no lock, no ledger writes).
    #[arg(long)]
    pub dry_run: bool,
    /// Apply contract although the soak gate is closed; requires --reason and is recorded in the audit log.
    #[arg(long, requires = "reason")]
    pub break_glass: bool,
    /// Why the gate is bypassed.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Backfill: pace while the workload's transactions take more than FACTOR times their
    /// time while the backfill is idle, or `off` (default: [backfill] workload_latency in the
    /// configuration, else 1.5).
    #[arg(long, value_name = "FACTOR|off", value_parser = parse_workload_latency_flag)]
    pub workload_latency: Option<WorkloadLatency>,
    /// Backfill: workers per backfill, each on its own connection: a partitioned table's
    /// partitions, or slices of another table's key (default: [backfill] jobs in the
    /// configuration, else 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: Option<u32>,
    #[command(flatten)]
    pub config: super::gate::ConfigArgs,
}

/// A parsed `--workload-latency`: a factor or off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkloadLatency(pub Option<f64>);

pub(crate) fn parse_workload_latency_flag(text: &str) -> Result<WorkloadLatency, String> {
    crate::backfill::parse_workload_latency(text).map(WorkloadLatency)
}

/// The validated form of [`Target`].
pub(crate) struct Resolved {
    pub source: PlanSource,
    pub runner: RunnerOptions,
    /// The key every plan must be signed with (issue 18.6).
    pub verify_key: Option<PlanKey>,
}

/// Turns the raw flags into a plan source and runner options. A tampered or unreadable plan
/// file is refused here, before connecting: `Err(Some(message))` for a refusal (exit 1).
pub(crate) fn resolve(target: &Target) -> anyhow::Result<Result<Resolved, String>> {
    let source = match (&target.plan, &target.plan_id) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read '{}'", path.display()))?;
            match Plan::from_json(&text) {
                Ok(plan) => PlanSource::File { plan: Box::new(plan), path: path.display().to_string() },
                Err(e) => return Ok(Err(format!("refusing '{}': {e}", path.display()))),
            }
        }
        (None, Some(id)) => PlanSource::Id(id.clone()),
        (None, None) => PlanSource::Active,
    };
    let verify_key = PlanKey::from_flag_or_env(target.verify_key_file.as_deref(), VERIFY_KEY_ENV)?;
    // A plan file is checked before connecting; a stored plan by the runner (Runner::apply).
    if let (Some(key), PlanSource::File { plan, path }) = (&verify_key, &source)
        && let Err(e) = key.verify(plan)
    {
        return Ok(Err(format!("refusing '{path}': {e}; nothing was changed")));
    }
    let connection = ConnectOptions::resolve(target.database_url.as_deref().filter(|u| !u.is_empty()))?;
    let actor = super::actor(target.actor.clone());
    if target.lock_timeout == 0 {
        bail!("--lock-timeout must be at least 1 ms: an unbounded wait would block every reader behind it");
    }
    let budget = parse_duration(&target.retry_budget)
        .with_context(|| format!("invalid --retry-budget '{}'", target.retry_budget))?;
    let retry = RetryPolicy { lock_timeout: Duration::from_millis(target.lock_timeout), budget };
    Ok(Ok(Resolved { source, runner: RunnerOptions { connection, actor, retry }, verify_key }))
}

/// What every apply and rollback runner is given before it runs: the signature key, and
/// the fault injection of the reliability tests.
pub(crate) fn prepare(runner: &mut exec::Runner, verify_key: Option<PlanKey>) {
    if let Some(key) = verify_key {
        runner.verify_signatures(key);
    }
    inject_faults(runner);
}

/// `SEQMIG_FAULT_AFTER_STEPS=k`: abort the process right after the k-th step completes, like
/// `kill -9` at the worst moment; `SEQMIG_FAULT_AFTER_BATCHES=k`: right after the k-th
/// backfill batch commits, in the middle of a backfill step. Only the reliability tests set
/// them (book: reliability.md); they are deliberately not flags.
pub(crate) fn inject_faults(runner: &mut exec::Runner) {
    if let Some(k) = std::env::var("SEQMIG_FAULT_AFTER_STEPS").ok().and_then(|v| v.trim().parse().ok()) {
        runner.dangerous_abort_after_steps(k);
    }
    if let Some(k) = std::env::var("SEQMIG_FAULT_AFTER_BATCHES").ok().and_then(|v| v.trim().parse().ok()) {
        runner.dangerous_abort_after_batches(k);
    }
}

/// The values `--phase` takes, which the shell completions offer.
pub(crate) fn phase_values() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Phase::ALL.map(|p| p.as_str()))
}

pub(crate) fn parse_phase(name: &str) -> anyhow::Result<Phase> {
    Phase::parse(name).with_context(|| {
        format!("unknown phase '{name}'; phases are expand, dual_write, backfill, switch, contract")
    })
}

/// A duration flag, in the grammar of `seqmig.toml` ([`crate::duration`]).
pub(crate) fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    crate::duration::parse_duration(text).map_err(anyhow::Error::msg)
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

/// Prints executor events as they happen; backfill progress goes to the same bar (terminal)
/// or JSON lines (otherwise) as `seqmig backfill run`.
#[derive(Default)]
pub(crate) struct Printer {
    backfill: Option<Box<dyn crate::backfill::ProgressSink>>,
}

impl Reporter for Printer {
    fn report(&mut self, event: &Event<'_>) {
        if let Event::BackfillProgress { progress, finished, .. } = event {
            let sink = self.backfill.get_or_insert_with(|| output::progress_sink(false));
            if *finished {
                sink.finish(progress);
                self.backfill = None;
            } else {
                sink.update(progress);
            }
            return;
        }
        let line = match event {
            Event::PhaseStarted { plan, phase, action, steps } => {
                format!(
                    "{} phase {phase} of plan {} ({})",
                    action.as_str(),
                    exec::short_id(plan),
                    output::count(*steps, "step")
                )
            }
            Event::StepSkipped { step, reason } => format!("  {} skipped: {reason}", step.id),
            Event::StepStarted { step, action } => {
                let lock = if step.lock_target.is_empty() {
                    String::new()
                } else {
                    format!(" [{} on {}]", step.lock, step.lock_target)
                };
                format!("  {} {} ({}){lock} …", step.id, action.as_str(), step.change)
            }
            Event::Retrying { step, attempt, lock_timeout, sleep, error } => format!(
                "  {} attempt {attempt} hit lock_timeout {} ms ({error}); retrying in {} ms",
                step.id,
                lock_timeout.as_millis(),
                sleep.as_millis()
            ),
            Event::DroppedInvalidIndex { step, index } => {
                format!("  {} dropped invalid index {index} left by a failed attempt", step.id)
            }
            Event::FinalizedDetach { step, partition } => {
                format!(
                    "  {} finished the pending detach of {partition} left by an interrupted attempt",
                    step.id
                )
            }
            Event::BackfillProgress { .. } => return,
            Event::StepDone { step, elapsed, attempts, .. } => {
                format!(
                    "  {} ok in {} ms ({attempts} attempt{})",
                    step.id,
                    elapsed.as_millis(),
                    if *attempts == 1 { "" } else { "s" }
                )
            }
            Event::PhaseDone { phase, action, ran, skipped } => {
                format!("{} of phase {phase} done: {ran} ran, {skipped} skipped", action.as_str())
            }
        };
        output::stderr_line(&line);
    }
}

/// Maps an executor result: refusals print and exit 1, errors exit 2.
pub(crate) fn finish(result: Result<String, ExecError>) -> anyhow::Result<Outcome> {
    match result {
        Ok(text) => {
            output::stdout(&text)?;
            Ok(Outcome::Yes)
        }
        Err(e) if e.is_refusal() => {
            output::stderr_line(&format!("error: {e}"));
            Ok(Outcome::No)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let phase = parse_phase(&args.phase)?;
    let resolved = match resolve(&args.target)? {
        Ok(r) => r,
        Err(refusal) => {
            output::stderr_line(&format!("error: {refusal}"));
            return Ok(Outcome::No);
        }
    };
    let passage = match (args.break_glass, args.reason) {
        (true, Some(reason)) if !reason.trim().is_empty() => GatePassage::BreakGlass { reason },
        (true, _) => bail!("--break-glass needs a non-empty --reason"),
        (false, _) => GatePassage::Evidence,
    };
    // The gate's configuration matters for contract only; reading it costs nothing otherwise.
    let config = if phase == Phase::Contract {
        super::gate::load_config(&args.config)?
    } else {
        crate::soak::GateConfig::default()
    };
    let gate = ContractGate { config, passage };
    // Likewise `[backfill]` for backfill; the flag wins over the file.
    let mut backfill_config = if phase == Phase::Backfill {
        crate::backfill::BackfillConfig::discover(args.config.config.as_deref())
            .map_err(anyhow::Error::msg)?
    } else {
        crate::backfill::BackfillConfig::default()
    };
    if let Some(WorkloadLatency(w)) = args.workload_latency {
        backfill_config.workload_latency = Some(w);
    }
    if let Some(j) = args.jobs {
        backfill_config.jobs = Some(j);
    }
    let rt = runtime()?;
    if args.dry_run {
        return finish(rt.block_on(async {
            let d = exec::dry_run(
                &resolved.runner.connection,
                &resolved.source,
                phase,
                resolved.verify_key.as_ref(),
            )
            .await?;
            Ok(render_dry_run(&d))
        }));
    }
    let command = format!("apply --phase {phase}");
    finish(rt.block_on(async {
        let mut runner = exec::Runner::acquire(resolved.runner, &command).await?;
        prepare(&mut runner, resolved.verify_key);
        runner.configure_backfill(&backfill_config);
        let report = runner.apply(&resolved.source, phase, &gate, &mut Printer::default()).await;
        runner.release().await;
        let report = report?;
        let mut text = format!(
            "phase {phase} of plan {} applied: {} ran, {} already done\n",
            exec::short_id(&report.plan_id),
            output::count(report.ran.len(), "step"),
            report.skipped.len()
        );
        if report.plan_complete {
            text.push_str("every phase is applied; the plan is complete\n");
        } else if let Some(next) = &report.next {
            // Right after switch, contract is next but not yet allowed: say what it waits for.
            let gated = next.ends_with("--phase contract");
            let note = if gated { " (once the soak gate is open: see 'seqmig gate')" } else { "" };
            text.push_str(&format!("next: {next}{note}\n"));
        }
        Ok(text)
    }))
}

fn render_dry_run(d: &exec::DryRun) -> String {
    let mut out = format!(
        "dry run: phase {} of plan {}{}\n",
        d.phase,
        d.plan.short_id(),
        if d.stored { "" } else { " (not stored yet; the first apply stores it)" }
    );
    for id in &d.already_done {
        out.push_str(&format!("-- {id}: already done, skipped\n"));
    }
    if d.would_run.is_empty() {
        out.push_str("-- nothing to run\n");
    }
    for s in &d.would_run {
        out.push_str(&format!(
            "-- {}: {} ({}), lock {}{}{}\n",
            s.id,
            s.change,
            if s.transactional { "in a transaction" } else { "outside a transaction" },
            s.lock,
            if s.lock_target.is_empty() { String::new() } else { format!(" on {}", s.lock_target) },
            if s.backfill.is_some() { ", batched backfill" } else { "" }
        ));
        out.push_str(s.sql.trim_end());
        out.push_str(if s.sql.trim_end().ends_with(';') { "\n" } else { ";\n" });
    }
    out.push_str("-- nothing was changed\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_humans_write_them() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("10 parsecs").is_err());
        // The grammar of seqmig.toml: compounds and fractions both (issue 19).
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
    }
}
