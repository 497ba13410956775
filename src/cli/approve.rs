//! `seqmig approve --role R [--actor A]`: approve `contract` of a plan in a role. Whether the
//! role counts is the governance matrix's decision; an unlisted role is recorded (it is
//! still a fact worth keeping) and the command says it does not count.

use super::Outcome;
use super::actor;
use super::gate::{ConfigArgs, DbArgs, PlanArgs, block_on, connect, load_config, load_plan};
use super::output;
use crate::soak;

/// The `Examples:` section of `--help` (and of the book's CLI reference).
pub(crate) const EXAMPLES: &str = r#"Examples:
  seqmig approve --role dba --actor alice
  seqmig approve --plan-id 3f2a --role release-manager"#;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The role approving (`owner`, `dba`, `release-manager`), as named in [governance.contract].
    #[arg(long, value_name = "R")]
    pub role: String,
    /// Who approves; default $SEQMIG_ACTOR, else $USER.
    #[arg(long, value_name = "A", env = "SEQMIG_ACTOR")]
    pub actor: Option<String>,
    #[command(flatten)]
    pub plan: PlanArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub db: DbArgs,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let cfg = load_config(&args.config)?;
    let actor = actor(args.actor);
    block_on(async {
        let client = connect(&args.db).await?;
        crate::ledger::ensure(&client).await?;
        let plan = load_plan(&client, &args.plan).await?;
        soak::approve(&client, &plan, &args.role, &actor).await?;
        let (radius, _) = soak::blast_radius(&client, &plan, &cfg).await?;
        let tables = soak::plan_tables(&plan);
        let criteria = cfg.criteria_for(&tables, &plan.gate.criteria)?;
        let mut required = criteria.approval_roles.clone();
        if criteria.approvals_from_matrix {
            required.extend(cfg.governance.required_roles(radius));
        }
        let role = args.role.trim();
        output::stdout(&format!("recorded approval of plan {} as {role} by {actor}\n", plan.short_id()))?;
        if !required.contains(role) {
            let list: Vec<&str> = required.iter().map(String::as_str).collect();
            output::stdout(&format!(
                "note: role '{role}' is not required at blast radius {radius} (required: {}); it does not count \
                 toward the gate\n",
                if list.is_empty() { "none".to_string() } else { list.join(", ") }
            ))?;
        }
        Ok(Outcome::Yes)
    })
}
