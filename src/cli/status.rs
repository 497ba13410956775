//! `seqmig status`: each plan's phases and steps as the ledger records them, what is running,
//! failed or interrupted, the flags, any break-glass, and the exact next command.

use clap::Args as ClapArgs;

use super::Outcome;
use super::apply::runtime;
use super::output;
use crate::db::ConnectOptions;
use crate::exec::{self, PhaseState, StatusReport, StepState};

/// The `Examples:` section of `--help` (and of the book's CLI reference).
pub(crate) const EXAMPLES: &str = r#"Examples:
  seqmig status
  seqmig status --plan-id 3f2a --format json"#;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// One stored plan by id or prefix; default: the active plans (or the latest one).
    #[arg(long, value_name = "ID")]
    pub plan_id: Option<String>,
    /// The database (default: $DATABASE_URL, then the libpq variables PGHOST, PGPORT, …).
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// How to print the state of each plan.
    #[arg(long, value_enum, default_value_t)]
    pub format: super::gate::Format,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let url = args.database_url.as_deref().filter(|u| !u.is_empty());
    let connection = ConnectOptions::resolve(url)?;
    let report = runtime()?.block_on(async {
        let client =
            exec::connect_observer(&connection).await.map_err(|e| super::gate::no_url_given(e, url))?;
        Ok::<_, anyhow::Error>(exec::status(&client, args.plan_id.as_deref()).await?)
    })?;
    let text = if args.format == super::gate::Format::Json {
        let mut s = serde_json::to_string_pretty(&report)?;
        s.push('\n');
        s
    } else {
        render(&report)
    };
    output::stdout(&text)?;
    Ok(Outcome::Yes)
}

fn step_mark(s: StepState) -> &'static str {
    match s {
        StepState::Pending => "pending",
        StepState::Done => "done",
        StepState::Running => "RUNNING",
        StepState::Interrupted => "INTERRUPTED",
        StepState::Failed => "FAILED",
        StepState::RolledBack => "rolled back",
        StepState::RollbackIncomplete => "ROLLBACK INCOMPLETE",
    }
}

/// The human form.
pub fn render(r: &StatusReport) -> String {
    if r.ledger_version == 0 {
        return "no seqmig ledger in this database: nothing has been applied\n".to_string();
    }
    let mut out = String::new();
    if let Some(h) = &r.runner {
        out.push_str(&format!("runner: {h}\n"));
    }
    if r.plans.is_empty() {
        out.push_str("no plans stored\n");
    }
    for p in &r.plans {
        out.push_str(&format!(
            "plan {} ({}), stored {} by {}\n",
            exec::short_id(&p.id),
            p.state,
            p.created_at,
            p.actor
        ));
        for s in &p.summary {
            out.push_str(&format!("  change: {s}\n"));
        }
        if let Some(through) = &p.through {
            out.push_str(&format!("  in flight: through {through}\n"));
        }
        if let Some(gate) = &p.gate {
            out.push_str(&format!("  gate: {gate}\n"));
        }
        if let Some(after) = &p.after {
            out.push_str(&format!(
                "  stacked after plan {0}: each phase waits until plan {0} has completed it (contract: its switch, or its contract when this one removes what it still needs)\n",
                exec::short_id(after)
            ));
        }
        for d in &p.stacked {
            out.push_str(&format!(
                "  plan {} is stacked after it: roll that one back first\n",
                exec::short_id(d)
            ));
        }
        for ph in &p.phases {
            if ph.state == PhaseState::Empty {
                out.push_str(&format!("  {:<10} empty\n", ph.phase.as_str()));
                continue;
            }
            let who = ph
                .last_run
                .as_ref()
                .map(|r| {
                    format!(
                        " — last {} by {} at {}{}",
                        r.action,
                        r.actor,
                        r.started_at,
                        if r.outcome == crate::ledger::RunOutcome::Failed { " (failed)" } else { "" }
                    )
                })
                .unwrap_or_default();
            out.push_str(&format!(
                "  {:<10} {} ({}/{} steps){who}\n",
                ph.phase.as_str(),
                ph.state.as_str(),
                ph.steps_done,
                ph.steps_total
            ));
            for s in &ph.steps {
                let mut details = Vec::new();
                if let Some(ms) = s.duration_ms {
                    details.push(format!("{ms} ms"));
                }
                if s.attempts > 1 {
                    details.push(format!("{} attempts", s.attempts));
                }
                if let Some(pid) = s.backend_pid {
                    details.push(format!("backend pid {pid}"));
                }
                if let Some(actor) = &s.actor {
                    details.push(format!("by {actor}"));
                }
                let mut line = format!("    {:<8} {:<12} {}", s.id, step_mark(s.state), details.join(", "));
                if matches!(
                    s.state,
                    StepState::Failed | StepState::RollbackIncomplete | StepState::Interrupted
                ) {
                    if let Some(code) = &s.sqlstate {
                        line.push_str(&format!(" [{code}]"));
                    }
                    if let Some(m) = &s.message {
                        line.push_str(&format!(": {m}"));
                    }
                }
                out.push_str(line.trim_end());
                out.push('\n');
                if let Some(index) = &s.invalid_index {
                    out.push_str(&format!(
                        "             index {index} is INVALID: the build was interrupted; apply drops it and builds it again, rollback drops it\n"
                    ));
                }
                if let Some(partition) = &s.pending_detach {
                    out.push_str(&format!(
                        "             partition {partition} is pending detach: the detach was interrupted; apply finishes it (DETACH PARTITION … FINALIZE), rollback finishes it and attaches the partition again\n"
                    ));
                }
            }
        }
        for b in &p.backfills {
            let g = &b.progress;
            let total = g.rows_total_estimate.map(|t| format!(" of ~{t}")).unwrap_or_default();
            out.push_str(&format!(
                "  backfill {} on {}: {}, {} rows scanned{total}, {} written, {} batches, {}{}{}\n",
                g.step_id,
                g.table,
                g.state,
                g.rows_scanned,
                g.rows_done,
                g.batches,
                crate::backfill::describe(g),
                if b.paused { ", PAUSED" } else { "" },
                b.last_error.as_deref().map(|e| format!(", last error: {e}")).unwrap_or_default()
            ));
        }
        for b in &p.break_glass {
            out.push_str(&format!(
                "  BREAK-GLASS by {} at {}: {}{}\n",
                b.actor,
                b.at,
                b.reason.as_deref().unwrap_or(""),
                bypassed(&b.detail)
            ));
        }
        out.push_str(&format!("  {}\n", p.explanation));
        if let Some(next) = &p.next {
            out.push_str(&format!("  next: {next}\n"));
        }
    }
    if !r.flags.is_empty() {
        out.push_str("flags:\n");
        for (name, authority) in &r.flags {
            out.push_str(&format!("  {name} = {authority}\n"));
        }
    }
    out
}

/// ` (bypassed: min_soak, approvals)` from a break-glass row's detail: the gate writes
/// `{"failing": [{"criterion": …}, …]}`; older rows hold plain strings.
fn bypassed(detail: &serde_json::Value) -> String {
    let names: Vec<&str> = detail
        .get("failing")
        .and_then(|f| f.as_array())
        .map(|a| {
            a.iter().filter_map(|e| e.get("criterion").and_then(|c| c.as_str()).or(e.as_str())).collect()
        })
        .unwrap_or_default();
    if names.is_empty() { String::new() } else { format!(" (bypassed: {})", names.join(", ")) }
}
