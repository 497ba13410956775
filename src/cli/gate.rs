//! `seqmig gate [--plan FILE | --plan-id ID] [--format json]`: each criterion in force, its
//! evidence and verdict; exit 0 when open, 1 while closed. Also holds what the other gate
//! commands (`soak`, `approve`, `audit`) share: the database, the plan and the config.

use std::path::PathBuf;

use anyhow::Context as _;
use tokio_postgres::Client;

use super::Outcome;
use super::output;
use crate::plan::Plan;
use crate::soak::{self, GateConfig, GateReport};

/// The `Examples:` section of `--help` (and of the book's CLI reference).
pub(crate) const EXAMPLES: &str = r#"Examples:
  seqmig gate
  seqmig gate --plan plan.json --config seqmig.toml --format json"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// For people.
    #[default]
    Text,
    /// For scripts: the same facts, pretty-printed JSON.
    Json,
}

/// The database to read and record evidence in.
#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// PostgreSQL URL of the database being migrated; default DATABASE_URL, else the libpq
    /// variables (PGHOST, PGDATABASE, …).
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// Which plan: a plan file, or one stored by `seqmig apply` (by id or id prefix; may be
/// omitted when exactly one is stored).
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The plan file written by `seqmig plan --format json`.
    #[arg(long, value_name = "FILE", conflicts_with = "plan_id")]
    pub plan: Option<PathBuf>,
    /// The id (or a unique prefix of it) of a plan stored in seqmig.plans.
    #[arg(long, value_name = "ID")]
    pub plan_id: Option<String>,
}

/// Where `[gate]`, `[[tier]]` and `[governance]` are read from.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Configuration file; default: ./seqmig.toml when it exists, else the built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub plan: PlanArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// How to print the criteria and the verdict.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Append the verdict to seqmig.audit_log, where the guard of a runner's contract file
    /// (`seqmig.assert_gate_open`) reads it.
    #[arg(long)]
    pub record: bool,
    /// With --record: open the guard although the gate is closed; requires --reason and is
    /// recorded in the audit log forever.
    #[arg(long, requires = "reason", requires = "record")]
    pub break_glass: bool,
    /// Why the glass is broken (incident, ticket).
    #[arg(long, value_name = "TEXT", requires = "break_glass")]
    pub reason: Option<String>,
    /// Who records (default: SEQMIG_ACTOR, USER, LOGNAME, the OS user).
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let cfg = load_config(&args.config)?;
    block_on(async {
        let client = connect(&args.db).await?;
        let plan = load_plan(&client, &args.plan).await?;
        let report = soak::evaluate(&client, &plan, &cfg).await?;
        match args.format {
            Format::Json => output::stdout(&format!("{}\n", serde_json::to_string_pretty(&report)?))?,
            Format::Text => output::stdout(&render(&plan, &report))?,
        }
        if args.record {
            crate::ledger::ensure(&client).await?;
            let actor = super::actor(args.actor);
            let id = crate::runner::gate::record_verdict(&client, &plan, &actor, &report).await?;
            output::stderr_line(&format!(
                "recorded the gate verdict ({}) for plan {} in seqmig.audit_log row {id}",
                if report.open { "open" } else { "closed" },
                plan.short_id()
            ));
            if !report.open
                && args.break_glass
                && let Some(reason) = &args.reason
            {
                let id = soak::record_break_glass(&client, &plan, &actor, reason, &report).await?;
                output::stderr_line(&format!(
                    "break-glass recorded in seqmig.audit_log row {id}: the contract guard is open for plan {}",
                    plan.short_id()
                ));
                return Ok(Outcome::Yes);
            }
        }
        Ok(if report.open { Outcome::Yes } else { Outcome::No })
    })
}

/// The human form: one line per criterion, then what to do for each that blocks.
pub fn render(plan: &Plan, report: &GateReport) -> String {
    let blocking = report.failing().count();
    let mut out = if report.open {
        format!("gate for plan {}: open (all {} criteria pass)\n", plan.short_id(), report.criteria.len())
    } else {
        format!(
            "gate for plan {}: CLOSED ({blocking} of {} criteria block contract)\n",
            plan.short_id(),
            report.criteria.len()
        )
    };
    out.push_str(&format!(
        "evaluated at {} (database clock); blast radius {} ({})",
        report.evaluated_at, report.blast_radius, report.blast_radius_reason
    ));
    if !report.tiers.is_empty() {
        out.push_str(&format!("; tiers: {}", report.tiers.join(", ")));
    }
    out.push('\n');
    let width = report.criteria.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &report.criteria {
        let verdict = match (c.verdict, c.blocks) {
            (soak::Verdict::Inconclusive, false) => "inconclusive (allowed)".to_string(),
            (v, _) => v.to_string(),
        };
        out.push_str(&format!("  {:<width$}  {verdict:<12}  requires {}\n", c.name, c.required));
        out.push_str(&format!("  {:<width$}  {:<12}  {}\n", "", "", c.evidence));
        if c.blocks
            && let Some(next) = &c.next
        {
            out.push_str(&format!("  {:<width$}  {:<12}  next: {next}\n", "", ""));
        }
    }
    if !report.open {
        out.push_str(
            "contract stays locked; 'seqmig apply --phase contract --break-glass --reason \"…\"' bypasses \
             the gate and is recorded in the audit log forever\n",
        );
    }
    out
}

pub(crate) fn load_config(args: &ConfigArgs) -> anyhow::Result<GateConfig> {
    Ok(GateConfig::discover(args.config.as_deref())?)
}

pub(crate) async fn load_plan(client: &Client, args: &PlanArgs) -> anyhow::Result<Plan> {
    if let Some(path) = &args.plan {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read plan '{}'", path.display()))?;
        return Plan::from_json(&text).with_context(|| format!("plan '{}'", path.display()));
    }
    Ok(soak::stored_plan(client, args.plan_id.as_deref()).await?)
}

pub(crate) async fn connect(args: &DbArgs) -> anyhow::Result<Client> {
    let url = args.database_url.as_deref().filter(|u| !u.is_empty());
    let opts = crate::db::ConnectOptions::resolve(url)?;
    crate::db::connect(&opts, &crate::db::default_application_name()).await.map_err(|e| no_url_given(e, url))
}

/// A connection error, saying so when no URL was given: the libpq defaults were tried, and
/// the user would otherwise hunt a server problem that is a missing setting (issue 23).
pub(crate) fn no_url_given(e: impl Into<anyhow::Error>, url: Option<&str>) -> anyhow::Error {
    let e = e.into();
    if url.is_some() {
        return e;
    }
    anyhow::anyhow!(
        "{e}; neither --database-url nor DATABASE_URL was given, so the libpq defaults were used \
         (PGHOST, PGPORT, PGDATABASE, PGUSER, else localhost:5432)"
    )
}

pub(crate) fn block_on<T>(fut: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?
        .block_on(fut)
}
