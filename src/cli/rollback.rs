//! `seqmig rollback --phase P`: undoes the last applied phase of a plan (never contract).

use clap::Args as ClapArgs;

use super::Outcome;
use super::apply::{Printer, Target, finish, parse_phase, prepare, resolve, runtime};
use super::output;
use crate::exec;

/// The `Examples:` section of `--help` (and of the book's CLI reference).
pub(crate) const EXAMPLES: &str = r#"Examples:
  seqmig rollback --phase switch
  seqmig rollback --plan-id 3f2a --phase backfill --role dba"#;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// The phase to undo; it must be the last one applied. contract cannot be undone.
    #[arg(long, value_name = "PHASE", value_parser = super::apply::phase_values())]
    pub phase: String,
    /// Your role, when [governance] rollback in seqmig.toml limits who may roll back (by
    /// default every role is pre-authorised).
    #[arg(long, value_name = "R")]
    pub role: Option<String>,
    #[command(flatten)]
    pub config: super::gate::ConfigArgs,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let phase = parse_phase(&args.phase)?;
    let governance = super::gate::load_config(&args.config)?.governance;
    if let Some(allowed) = &governance.rollback
        && !governance.may_roll_back(args.role.as_deref().unwrap_or(""))
    {
        let roles: Vec<&str> = allowed.iter().map(String::as_str).collect();
        let who = match &args.role {
            Some(r) => format!("role '{r}' is not pre-authorised to roll back"),
            None => "rolling back is limited to some roles".to_string(),
        };
        output::stderr_line(&format!(
            "error: {who} ([governance] rollback = {}); run 'seqmig rollback --phase {phase} --role ROLE' \
             as one of them",
            roles.join(", ")
        ));
        return Ok(Outcome::No);
    }
    let resolved = match resolve(&args.target)? {
        Ok(r) => r,
        Err(refusal) => {
            output::stderr_line(&format!("error: {refusal}"));
            return Ok(Outcome::No);
        }
    };
    let command = format!("rollback --phase {phase}");
    finish(runtime()?.block_on(async {
        let mut runner = exec::Runner::acquire(resolved.runner, &command).await?;
        prepare(&mut runner, resolved.verify_key);
        let report = runner.rollback(&resolved.source, phase, &mut Printer::default()).await;
        runner.release().await;
        let report = report?;
        let mut text = format!(
            "phase {phase} of plan {} rolled back: {} undone, {} not applied\n",
            exec::short_id(&report.plan_id),
            output::count(report.ran.len(), "step"),
            report.skipped.len()
        );
        if let Some(next) = &report.next {
            text.push_str(&format!("to go further back: {next}\n"));
        }
        Ok(text)
    }))
}
