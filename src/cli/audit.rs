//! `seqmig audit [--plan-id ID] [--format json]`: the audit log, oldest first — every
//! break-glass with its reason and the criteria it bypassed, every approval.

use super::Outcome;
use super::gate::{DbArgs, Format, block_on, connect};
use super::output;
use crate::soak;

/// The `Examples:` section of `--help` (and of the book's CLI reference).
pub(crate) const EXAMPLES: &str = r#"Examples:
  seqmig audit
  seqmig audit --plan-id 3f2a --format json"#;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this plan's events (full id or a prefix of its hex).
    #[arg(long, value_name = "ID")]
    pub plan_id: Option<String>,
    /// How to print the events.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    #[command(flatten)]
    pub db: DbArgs,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    block_on(async {
        let client = connect(&args.db).await?;
        let plan_id = match &args.plan_id {
            Some(id) => Some(soak::stored_plan(&client, Some(id)).await?.id),
            None => None,
        };
        let events = soak::audit_events(&client, plan_id.as_deref()).await?;
        match args.format {
            Format::Json => output::stdout(&format!("{}\n", serde_json::to_string_pretty(&events)?))?,
            Format::Text => {
                let mut out = String::new();
                if events.is_empty() {
                    out.push_str("the audit log is empty\n");
                }
                for e in &events {
                    let plan = e.plan_id.as_deref().map(short).unwrap_or("-");
                    out.push_str(&format!("{}  {:<11}  plan {plan}  by {}", e.at, e.event, e.actor));
                    if let Some(r) = &e.reason {
                        out.push_str(&format!(": {r}"));
                    }
                    if !e.failing.is_empty() {
                        out.push_str(&format!(" (bypassed: {})", e.failing.join(", ")));
                    }
                    out.push('\n');
                }
                output::stdout(&out)?;
            }
        }
        Ok(Outcome::Yes)
    })
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}
