//! `seqmig replay DIR`: replay a schema history, one consecutive pair of `.sql` files at a
//! time: plan each pair and rehearse every unblocked plan on a throwaway cluster. Progress on
//! stderr, the report on stdout. Exit 0 when no pair errs or fails (blocked pairs are correct
//! refusals), 1 when one does, 2 on errors.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{Outcome, output};
use crate::db::ConnectOptions;
use crate::rehearse::replay;

/// The `Examples:` section of `--help` (and of the book's CLI reference).
pub(crate) const EXAMPLES: &str = r#"Examples:
  seqmig replay db/history/
  # Plan every pair without rehearsing (seconds, not minutes)
  seqmig replay db/history/ --plan-only
  # Only some pairs, named by the version they start from
  seqmig replay db/history/ --pairs 001,086,130..140 --format json > replay.json"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A line per pair and a summary.
    Text,
    /// Every pair and the summary, for CI.
    Json,
}

/// Replay a schema history: plan every consecutive pair of .sql files and rehearse each unblocked plan.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory of schema versions: its .sql files in name order, oldest first.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Only these pairs, named by the version they start from: `050..060` (inclusive, either
    /// end may be left open), `001,086` or both mixed.
    #[arg(long, value_name = "A..B|LIST")]
    pub pairs: Option<String>,
    /// Plan every pair, rehearse none.
    #[arg(long)]
    pub plan_only: bool,
    /// A server to create the scratch databases on (they are dropped afterwards). Without
    /// it, a throwaway cluster is started from the local PostgreSQL binaries, or from
    /// --image.
    #[arg(long, value_name = "URL", conflicts_with = "image")]
    pub database_url: Option<String>,
    /// Rehearse in a throwaway PostgreSQL container from this image (`postgres:17`), through
    /// the local Docker engine; removed afterwards.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Generated rows per table in each rehearsal.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub rows: usize,
    /// How to print the report.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let versions = replay::versions(&args.dir)
        .with_context(|| format!("failed to read directory '{}'", args.dir.display()))?;
    if versions.len() < 2 {
        bail!("'{}' holds {} .sql file(s); a history needs at least two", args.dir.display(), versions.len());
    }
    let pairs = match &args.pairs {
        Some(spec) => {
            replay::select_pairs(&versions, spec).map_err(|e| anyhow::anyhow!("--pairs {spec}: {e}"))?
        }
        None => (0..versions.len() - 1).collect(),
    };
    // The server lives until the end of this function; dropping it stops the server.
    let (_server, admin) = match (&args.database_url, args.plan_only) {
        (_, true) => (None, None),
        (Some(url), false) => (None, Some(ConnectOptions::from_url(url)?)),
        (None, false) => {
            let server = super::rehearse::start_scratch(args.image.as_deref())?;
            let admin = ConnectOptions::from_url(&server.url("postgres"))?;
            (Some(server), Some(admin))
        }
    };
    let options = replay::Options { versions, pairs, plan_only: args.plan_only, rows: args.rows };
    let total = options.pairs.len();
    let mut done = 0;
    let rt = super::apply::runtime()?;
    let report =
        rt.block_on(replay::replay(admin.as_ref(), &options, &args.dir.display().to_string(), &mut |p| {
            done += 1;
            output::stderr_line(&format!("[{done}/{total}] {}", p.line()));
        }));
    match args.format {
        Format::Text => output::stdout(&report.text())?,
        Format::Json => output::stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?,
    }
    Ok(if report.passed() { Outcome::Yes } else { Outcome::No })
}
