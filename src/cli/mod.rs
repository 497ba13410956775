//! The command line: clap structs hold what the user typed; each command turns them into
//! validated library inputs, calls the library and writes the result through [`output`].
//! Nothing else lives here.

pub mod apply;
pub mod approve;
pub mod audit;
pub mod backfill;
pub mod gate;
pub mod inspect;
pub mod lint;
pub mod output;
pub mod plan;
pub mod rehearse;
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

/// Plans PostgreSQL schema changes as reversible expand/contract releases and runs them.
#[derive(Debug, Parser)]
#[command(name = "seqmig", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the schema model read from a .sql file, a directory or stdin.
    Inspect(inspect::Args),
    Lint(lint::Args),
    /// Run, pause, resume, rate-limit and inspect backfills.
    Backfill(backfill::Args),
    /// Evaluate the soak gate in front of contract: each criterion, its evidence, its verdict.
    Gate(gate::Args),
    /// Record soak evidence: external checks (`record`) and censuses (`sample`, from cron).
    Soak(soak::Args),
    /// Approve contract of a plan in a governance role.
    Approve(approve::Args),
    /// Show the audit log: break-glass bypasses and approvals.
    Audit(audit::Args),
    /// Apply one phase of a plan to a database (expand, dual_write, backfill, switch, contract).
    Apply(apply::Args),
    /// Undo the last applied phase of a plan (never contract).
    Rollback(rollback::Args),
    /// Show where each plan stands in the database and the next command.
    Status(status::Args),
    /// Plan a schema change as expand → dual_write → backfill → switch → contract releases.
    Plan(plan::Args),
    /// Prove a plan on a scratch database: every phase applied, rolled back and re-applied, locks observed.
    Rehearse(rehearse::Args),
}

/// Parses the process arguments and runs the command.
pub fn run() -> anyhow::Result<Outcome> {
    let cli = Cli::parse();
    match cli.command {
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
    }
}

/// Who is acting, for the ledger and the audit log: `--actor`, else `$SEQMIG_ACTOR`, else the
/// login name (`$USER`, `$LOGNAME`), else `unknown`.
pub(crate) fn actor(given: Option<String>) -> String {
    given
        .into_iter()
        .chain(["SEQMIG_ACTOR", "USER", "LOGNAME"].into_iter().filter_map(|v| std::env::var(v).ok()))
        .find(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// True when the error is a closed stdout (`seqmig … | head`), which is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
