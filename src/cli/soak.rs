//! `seqmig soak record --criterion NAME --pass|--fail [--value V] [--source S]`: an external
//! check (error rate, SLO probe, a human) as evidence for the gate.
//! `seqmig soak sample`: a census of client sessions and statement statistics, recorded;
//! meant to run from cron every few minutes during the soak.

use super::Outcome;
use super::actor;
use super::gate::{DbArgs, Format, block_on, connect};
use super::output;
use crate::soak;

/// The `Examples:` section of `--help` (and of the book's CLI reference).
pub(crate) const EXAMPLES: &str = r#"Examples:
  seqmig soak record --criterion error_rate --pass --value 0.02% --source prometheus
  seqmig soak sample"#;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: SoakCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SoakCommand {
    /// Record the result of an external check.
    #[command(after_help = r#"Examples:
  seqmig soak record --criterion error_rate --pass --value 0.02% --source prometheus
  seqmig soak record --criterion slo_probe --fail --value "p99 900ms" --plan-id 3f2a"#)]
    Record(RecordArgs),
    /// Take a census of clients and statement statistics now and record it (cron-friendly).
    #[command(after_help = "Examples:
  # crontab: every minute while a plan soaks
  seqmig soak sample
  seqmig soak sample --format json")]
    Sample(SampleArgs),
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("result").required(true).args(["pass", "fail"]))]
pub struct RecordArgs {
    /// Name of the check (`error_rate`, `slo_probe`); the gate's `observations` counts by it.
    #[arg(long, value_name = "NAME")]
    pub criterion: String,
    /// The check passed.
    #[arg(long)]
    pub pass: bool,
    /// The check failed: the gate stays closed while this is in its window.
    #[arg(long)]
    pub fail: bool,
    /// What was measured (`0.02%`, `p99 180ms`).
    #[arg(long, value_name = "V")]
    pub value: Option<String>,
    /// Where it comes from (`prometheus`, `k6`, a URL).
    #[arg(long, value_name = "S")]
    pub source: Option<String>,
    /// Tie the observation to one plan; by default it counts for every plan.
    #[arg(long, value_name = "ID")]
    pub plan_id: Option<String>,
    /// Who records it; default $SEQMIG_ACTOR, else $USER.
    #[arg(long, value_name = "NAME", env = "SEQMIG_ACTOR")]
    pub actor: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, clap::Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// How to print the census.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.command {
        SoakCommand::Record(a) => record(a),
        SoakCommand::Sample(a) => sample(a),
    }
}

fn record(args: RecordArgs) -> anyhow::Result<Outcome> {
    let actor = actor(args.actor);
    block_on(async {
        let client = connect(&args.db).await?;
        crate::ledger::ensure(&client).await?;
        let plan_id = match &args.plan_id {
            Some(id) => Some(soak::stored_plan(&client, Some(id)).await?.id),
            None => None,
        };
        let id = soak::record_observation(
            &client,
            plan_id.as_deref(),
            &args.criterion,
            args.pass,
            args.value.as_deref(),
            args.source.as_deref(),
            &actor,
        )
        .await?;
        let verdict = if args.pass { "passing" } else { "failing" };
        output::stdout(&format!("recorded {verdict} observation '{}' (#{id}) by {actor}\n", args.criterion))?;
        Ok(Outcome::Yes)
    })
}

fn sample(args: SampleArgs) -> anyhow::Result<Outcome> {
    block_on(async {
        let client = connect(&args.db).await?;
        crate::ledger::ensure(&client).await?;
        let s = soak::take_sample(&client).await?;
        match args.format {
            Format::Json => output::stdout(&format!("{}\n", serde_json::to_string(&s)?))?,
            Format::Text => {
                let clients: Vec<String> = s.clients.iter().map(|(app, n)| format!("'{app}' ×{n}")).collect();
                let stats = if s.statements_available {
                    format!("{} statements", s.statements)
                } else {
                    "pg_stat_statements not readable".to_string()
                };
                output::stdout(&format!(
                    "census #{} at {}: clients {}; {stats}\n",
                    s.sample_id,
                    s.taken_at,
                    if clients.is_empty() { "none".to_string() } else { clients.join(", ") }
                ))?;
            }
        }
        Ok(Outcome::Yes)
    })
}
