//! The command line: clap structs hold what the user typed; each command turns them into
//! validated library inputs, calls the library and writes the result through [`output`].
//! Nothing else lives here.

pub mod apply;
pub mod approve;
pub mod audit;
pub mod backfill;
pub mod completions;
pub mod gate;
pub mod inspect;
pub mod lint;
pub mod man;
pub mod output;
pub mod plan;
pub mod reference;
pub mod rehearse;
pub mod replay;
pub mod rollback;
pub mod soak;
pub mod status;

use clap::{Parser, Subcommand};

/// What a command concluded. Errors are `Err`, exit 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0: done, safe, open.
    Yes,
    /// Exit 1: the answer is no (blocking findings, gate closed, drift).
    No,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Yes => 0,
            Outcome::No => 1,
        }
    }
}

/// The `Examples:` section of `seqmig --help`: the first hour, in order.
const EXAMPLES: &str = "Examples:
  seqmig plan --from db/schema.sql --to db/schema.next.sql --format json > plan.json
  seqmig lint migrations/
  seqmig apply --plan plan.json --phase expand
  seqmig status
  seqmig gate";

/// Plans PostgreSQL schema changes as reversible expand/contract releases and runs them.
#[derive(Debug, Parser)]
#[command(name = "seqmig", version, about, long_about = None, max_term_width = 100, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan a schema change as expand → dual_write → backfill → switch → contract releases.
    #[command(after_help = plan::EXAMPLES)]
    Plan(plan::Args),
    #[command(after_help = lint::EXAMPLES)]
    Lint(lint::Args),
    /// Show the schema model read from a .sql file, a directory, stdin or a live database.
    #[command(after_help = inspect::EXAMPLES)]
    Inspect(inspect::Args),
    /// Prove a plan on a scratch database: every phase applied, rolled back and re-applied, locks observed.
    #[command(after_help = rehearse::EXAMPLES)]
    Rehearse(rehearse::Args),
    /// Replay a schema history: plan every consecutive pair of .sql files, rehearse each unblocked plan.
    #[command(after_help = replay::EXAMPLES)]
    Replay(replay::Args),
    /// Apply one phase of a plan to a database (expand, dual_write, backfill, switch, contract).
    #[command(after_help = apply::EXAMPLES)]
    Apply(apply::Args),
    /// Show where each plan stands in the database and the next command.
    #[command(after_help = status::EXAMPLES)]
    Status(status::Args),
    /// Undo the last applied phase of a plan (never contract).
    #[command(after_help = rollback::EXAMPLES)]
    Rollback(rollback::Args),
    /// Run, pause, resume, rate-limit and inspect backfills.
    #[command(after_help = backfill::EXAMPLES)]
    Backfill(backfill::Args),
    /// Evaluate the soak gate in front of contract: each criterion, its evidence, its verdict.
    #[command(after_help = gate::EXAMPLES)]
    Gate(gate::Args),
    /// Record soak evidence: external checks (`record`) and censuses (`sample`, from cron).
    #[command(after_help = soak::EXAMPLES)]
    Soak(soak::Args),
    /// Approve contract of a plan in a governance role.
    #[command(after_help = approve::EXAMPLES)]
    Approve(approve::Args),
    /// Show the audit log: break-glass bypasses and approvals.
    #[command(after_help = audit::EXAMPLES)]
    Audit(audit::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = completions::EXAMPLES)]
    Completions(completions::Args),
    /// Print the man page, or write one per command with --out-dir.
    #[command(after_help = man::EXAMPLES)]
    Man(man::Args),
}

/// Parses the process arguments and runs the command.
pub fn run() -> anyhow::Result<Outcome> {
    let cli = Cli::parse();
    ambiguity_is_a_refusal(dispatch(cli.command))
}

fn dispatch(command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Inspect(args) => inspect::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Backfill(args) => backfill::run(args),
        Command::Gate(args) => gate::run(args),
        Command::Soak(args) => soak::run(args),
        Command::Approve(args) => approve::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Rollback(args) => rollback::run(args),
        Command::Status(args) => status::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Rehearse(args) => rehearse::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    }
}

/// A plan choice the ledger leaves open (several plans in flight and no --plan-id, an id
/// prefix matching several plans) is a refusal like the others (exit 1, nothing changed,
/// the message lists the candidates), on every command that acts on one plan. `apply` and
/// `rollback` already say so ([`crate::exec::ExecError::is_refusal`]); the commands reading
/// a stored plan (`gate`, `approve`, `soak record`) get the same here.
fn ambiguity_is_a_refusal(result: anyhow::Result<Outcome>) -> anyhow::Result<Outcome> {
    use crate::exec::ExecError;
    use crate::soak::SoakError;
    let Err(err) = result else { return result };
    let ambiguous = err.chain().any(|c| {
        matches!(
            c.downcast_ref::<SoakError>(),
            Some(SoakError::AmbiguousPlan(_) | SoakError::AmbiguousPlanId { .. })
        ) || matches!(
            c.downcast_ref::<ExecError>(),
            Some(ExecError::SeveralActivePlans { .. } | ExecError::AmbiguousPlan { .. })
        )
    });
    if !ambiguous {
        return Err(err);
    }
    output::stderr_line(&format!("error: {err}"));
    for cause in err.chain().skip(1) {
        output::stderr_line(&format!("  caused by: {cause}"));
    }
    Ok(Outcome::No)
}

/// Who is acting, for the ledger and the audit log: `--actor`, else `$SEQMIG_ACTOR`, else the
/// login name (`$USER`, `$LOGNAME`, else the name of this process's user id, as containers
/// and cron jobs often set neither), else `unknown`.
pub(crate) fn actor(given: Option<String>) -> String {
    given
        .into_iter()
        .chain(["SEQMIG_ACTOR", "USER", "LOGNAME"].into_iter().filter_map(|v| std::env::var(v).ok()))
        .chain(std::iter::once_with(user_of_this_process).flatten())
        .find(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The user name of the real user id, from `/proc/self/status` and `/etc/passwd` (Linux).
fn user_of_this_process() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let fields: Vec<&str> = l.split(':').collect();
        (fields.len() > 2 && fields[2] == uid).then(|| fields[0].to_string())
    })
}

/// True when the error is a closed stdout (`seqmig … | head`), which is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_process_user_is_found_without_environment_variables() {
        let id = std::process::Command::new("id").arg("-un").output().unwrap();
        let expected = String::from_utf8(id.stdout).unwrap().trim().to_string();
        assert_eq!(super::user_of_this_process().as_deref(), Some(expected.as_str()));
    }
}
