//! `seqmig backfill run|pause|resume|set-rate|status`: run one backfill outside a plan
//! (the executor's backfill phase runs the same engine), and steer running ones from any
//! session through `seqmig.backfill_control`.

use std::time::Duration;

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};

use crate::backfill::{self, BackfillOptions, BackfillRequest, ThrottleOptions};
use crate::cli::{Outcome, output};
use crate::ledger::{self, backfills::Control};
use crate::model::{Ident, QualifiedName};
use crate::parse::text::unwrap_parens;
use crate::plan::BackfillSpec;

/// The `Examples:` section of `--help` (and of the book's CLI reference).
pub(crate) const EXAMPLES: &str = r#"Examples:
  seqmig backfill status
  seqmig backfill pause
  seqmig backfill set-rate 500
  seqmig backfill resume"#;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub command: BackfillCommand,
}

#[derive(Debug, Subcommand)]
pub enum BackfillCommand {
    /// Run (or resume) a backfill to the end and verify it; exit 1 when rows still differ.
    #[command(after_help = r#"Examples:
  # `seqmig apply --phase backfill` runs the plan's backfills; this runs one by hand
  seqmig backfill run --plan-id 3f2a --step-id s5 --table public.users --column full_name --expr name
  seqmig backfill run --plan-id 3f2a --step-id s5 --table public.users --column full_name --expr name --target-ms 100 --max-wal-bytes-per-sec 20000000"#)]
    Run(Box<RunArgs>),
    /// Hold running backfills before their next batch.
    #[command(after_help = "Examples:
  seqmig backfill pause
  seqmig backfill pause --plan-id 3f2a --step-id s5")]
    Pause(Target),
    /// Let paused backfills continue.
    #[command(after_help = "Examples:
  seqmig backfill resume
  seqmig backfill resume --plan-id 3f2a")]
    Resume(Target),
    /// Limit backfills to a number of rows per second (or lift the limit).
    #[command(after_help = "Examples:
  seqmig backfill set-rate 500
  seqmig backfill set-rate unlimited")]
    SetRate(RateArgs),
    /// Show every backfill in the ledger.
    #[command(after_help = "Examples:
  seqmig backfill status")]
    Status(Conn),
}

#[derive(Debug, ClapArgs)]
pub struct Conn {
    /// The database (default: $DATABASE_URL, then the libpq variables PGHOST, PGPORT, …).
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, ClapArgs)]
pub struct Target {
    #[command(flatten)]
    pub conn: Conn,
    /// Only this plan's backfills (default: every backfill not yet done).
    #[arg(long, value_name = "ID")]
    pub plan_id: Option<String>,
    /// Only this step (needs --plan-id); with both, a backfill that has not started yet is set
    /// in advance and honoured from its first batch.
    #[arg(long, value_name = "STEP", requires = "plan_id")]
    pub step_id: Option<String>,
}

#[derive(Debug, ClapArgs)]
pub struct RateArgs {
    #[command(flatten)]
    pub target: Target,
    /// Rows per second; `0` or `unlimited` lifts the limit.
    #[arg(value_name = "ROWS_PER_SEC")]
    pub rows_per_sec: String,
}

#[derive(Debug, ClapArgs)]
pub struct RunArgs {
    #[command(flatten)]
    pub conn: Conn,
    /// The plan the backfill belongs to (its id or the prefix shown by `seqmig status`).
    #[arg(long, value_name = "ID")]
    pub plan_id: String,
    /// The plan's backfill step (`s5`), the key of its cursor in the ledger.
    #[arg(long, value_name = "STEP")]
    pub step_id: String,
    /// The table, as written in SQL (`public.orders`, `"Odd"."Name"`).
    #[arg(long, value_name = "TABLE")]
    pub table: String,
    /// The column written, as written in SQL.
    #[arg(long, value_name = "COLUMN")]
    pub column: String,
    /// The SQL expression giving the new value.
    #[arg(long, value_name = "SQL")]
    pub expr: String,
    /// Rows still needing work (default: `column IS DISTINCT FROM (expr)`).
    #[arg(long, value_name = "SQL")]
    pub pending: Option<String>,
    /// Walk this unique NOT NULL key (comma-separated columns) instead of the catalog's choice.
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',')]
    pub key: Option<Vec<String>>,
    /// Target duration of one batch, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    pub target_ms: u64,
    /// The fewest rows a batch shrinks to when batches run long.
    #[arg(long, value_name = "ROWS", default_value_t = 100)]
    pub min_batch: u32,
    /// The most rows a batch grows to when batches run short.
    #[arg(long, value_name = "ROWS", default_value_t = 50_000)]
    pub max_batch: u32,
    /// Rows in the first batch, before the size adapts to --target-ms.
    #[arg(long, value_name = "ROWS", default_value_t = 1_000)]
    pub initial_batch: u32,
    /// Ignore replica lag, long transactions and lock waiters (the operator's pause still applies).
    #[arg(long)]
    pub unthrottled: bool,
    /// Hold back while the oldest transaction in the database is older than this many seconds.
    #[arg(long, value_name = "SECS")]
    pub max_transaction_age_secs: Option<u64>,
    /// Hold back while WAL is written faster than this many bytes per second.
    #[arg(long, value_name = "BYTES")]
    pub max_wal_bytes_per_sec: Option<u64>,
    /// Hold back while replication slots retain more than this many bytes of WAL.
    #[arg(long, value_name = "BYTES")]
    pub max_retained_wal_bytes: Option<u64>,
    /// Pace while the workload's transactions take more than FACTOR times their time while
    /// the backfill is idle, or `off` (default: [backfill] workload_latency in ./seqmig.toml,
    /// else 1.5).
    #[arg(long, value_name = "FACTOR|off", value_parser = super::apply::parse_workload_latency_flag)]
    pub workload_latency: Option<super::apply::WorkloadLatency>,
    /// Workers, each on its own connection. A partitioned table is backfilled partition by
    /// partition (its leaf partitions, found now), the workers on different partitions at
    /// once; another table is split into N slices of its unique key, one worker per slice
    /// (default: [backfill] jobs in ./seqmig.toml, else 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: Option<u32>,
    /// Progress as JSON lines even on a terminal.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the runtime")?;
    rt.block_on(async move {
        match args.command {
            BackfillCommand::Run(a) => run_backfill(*a).await,
            BackfillCommand::Pause(t) => control(&t, Control::Paused(true)).await,
            BackfillCommand::Resume(t) => control(&t, Control::Paused(false)).await,
            BackfillCommand::SetRate(r) => {
                control(&r.target, Control::Rate(parse_rate(&r.rows_per_sec)?)).await
            }
            BackfillCommand::Status(c) => show_status(&c).await,
        }
    })
}

fn parse_rate(text: &str) -> anyhow::Result<Option<f64>> {
    if text.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let rate: f64 = text.parse().with_context(|| format!("'{text}' is not a number of rows per second"))?;
    anyhow::ensure!(rate >= 0.0 && rate.is_finite(), "the rate must be a positive number of rows per second");
    Ok((rate > 0.0).then_some(rate))
}

/// The same connection rules as every other command (URL or libpq variables, TLS modes).
async fn connect(conn: &Conn) -> anyhow::Result<tokio_postgres::Client> {
    let opts = crate::db::ConnectOptions::resolve(conn.database_url.as_deref().filter(|u| !u.is_empty()))?;
    Ok(crate::db::connect(&opts, &crate::db::default_application_name()).await?)
}

async fn run_backfill(a: RunArgs) -> anyhow::Result<Outcome> {
    let table = QualifiedName::parse_sql(&a.table, "public")
        .with_context(|| format!("bad table name '{}'", a.table))?;
    let column = Ident::from_sql(&a.column).with_context(|| format!("bad column name '{}'", a.column))?;
    let pending =
        a.pending.clone().unwrap_or_else(|| format!("{} IS DISTINCT FROM ({})", column.quoted_sql(), a.expr));
    let spec =
        BackfillSpec { table, target_column: column, expr: a.expr.clone(), pending_predicate: pending };
    let mut opts = BackfillOptions::default();
    opts.sizing.target = Duration::from_millis(a.target_ms);
    opts.sizing.min_rows = a.min_batch;
    opts.sizing.max_rows = a.max_batch;
    opts.sizing.initial_rows = a.initial_batch;
    opts.key = a.key.clone();
    if a.unthrottled {
        opts.throttle = ThrottleOptions::unthrottled();
    }
    if let Some(s) = a.max_transaction_age_secs {
        opts.throttle.max_transaction_age = Some(Duration::from_secs(s));
    }
    opts.throttle.max_wal_bytes_per_sec = a.max_wal_bytes_per_sec;
    opts.throttle.max_retained_wal_bytes = a.max_retained_wal_bytes;
    let config = backfill::BackfillConfig::discover(None).map_err(anyhow::Error::msg)?;
    if !a.unthrottled {
        config.apply(&mut opts);
    }
    let jobs = a.jobs.or(config.jobs).unwrap_or(1);
    if let Some(super::apply::WorkloadLatency(w)) = a.workload_latency {
        opts.throttle.workload_latency = w;
    }

    let conn = crate::db::ConnectOptions::resolve(a.conn.database_url.as_deref().filter(|u| !u.is_empty()))?;
    let mut client = crate::db::connect(&conn, &crate::db::default_application_name()).await?;
    let plan_id = check_against_stored_plan(&client, &a, &spec).await?;
    ledger::ensure(&client).await.context("failed to install the seqmig ledger")?;
    let req = BackfillRequest { plan_id: &plan_id, step_id: &a.step_id, spec: &spec };
    let mut sink = output::progress_sink(a.json);
    let run = backfill::run_table(&mut client, &conn, &req, &opts, jobs as usize, sink.as_mut()).await?;
    for (part, o) in &run.partitions {
        output::stdout(&format!(
            "  {part}: {} rows written in {} batches this run ({} in total), {} mismatching rows\n",
            o.rows_updated, o.batches_run, o.rows_done, o.verify_mismatches
        ))?;
    }
    let outcome = run.total;
    output::stdout(&format!(
        "backfill {} of plan {}: {} rows written in {} batches this run ({} in total), {} mismatching rows\n",
        a.step_id,
        a.plan_id,
        outcome.rows_updated,
        outcome.batches_run,
        outcome.rows_done,
        outcome.verify_mismatches
    ))?;
    Ok(if outcome.verify_mismatches == 0 { Outcome::Yes } else { Outcome::No })
}

/// When the plan is stored in the database, the step must be one of its backfills and write
/// what it writes: a backfill run under a plan's step with another table, column or
/// expression would record that step done for work the plan never asked for (issue 18.1).
/// Returns the plan's full id (the ledger's key), or the id as given for a plan that is not
/// stored (an ad-hoc backfill).
async fn check_against_stored_plan(
    client: &tokio_postgres::Client,
    a: &RunArgs,
    spec: &BackfillSpec,
) -> anyhow::Result<String> {
    let plan = match crate::soak::stored_plan(client, Some(&a.plan_id)).await {
        Ok(plan) => plan,
        Err(crate::soak::SoakError::UnknownPlan(_)) => return Ok(a.plan_id.clone()),
        Err(e) => return Err(e).context("failed to read the stored plan"),
    };
    let Some(planned) = plan.steps.iter().find(|s| s.id == a.step_id).and_then(|s| s.backfill.as_ref())
    else {
        anyhow::bail!(
            "step {} of plan {} is not a backfill; 'seqmig apply --phase backfill' runs the plan's backfills",
            a.step_id,
            plan.short_id()
        );
    };
    let same = |x: &str, y: &str| x.split_whitespace().eq(y.split_whitespace());
    let pending_differs = a.pending.as_deref().is_some_and(|p| !same(p, &planned.pending_predicate));
    if planned.table.quoted() != spec.table.quoted()
        || planned.target_column != spec.target_column
        || !same(unwrap_parens(&planned.expr), unwrap_parens(&spec.expr))
        || pending_differs
    {
        anyhow::bail!(
            "refusing backfill {} of plan {}: it writes {}.{} = {}{}, but the plan's step writes {}.{} = {} \
             (pending: {}); run it with the plan's table, column and expression, or let \
             'seqmig apply --phase backfill' run it",
            a.step_id,
            plan.short_id(),
            spec.table.quoted(),
            spec.target_column.quoted_sql(),
            spec.expr,
            a.pending.as_deref().map(|p| format!(" (pending: {p})")).unwrap_or_default(),
            planned.table.quoted(),
            planned.target_column.quoted_sql(),
            planned.expr,
            planned.pending_predicate
        );
    }
    Ok(plan.id.clone())
}

/// Upserts the control row of every targeted backfill; the engine reads it once a second.
async fn control(t: &Target, setting: Control) -> anyhow::Result<Outcome> {
    let client = connect(&t.conn).await?;
    ledger::ensure(&client).await.context("failed to install the seqmig ledger")?;
    let mut n =
        ledger::backfills::set_control(&client, t.plan_id.as_deref(), t.step_id.as_deref(), setting).await?;
    if n == 0 {
        n = preset(&client, t, setting).await?;
    }
    if n == 0 {
        output::stdout(
            "no backfill matched; 'seqmig backfill status' lists them (to set one before it starts, \
             give the full --plan-id and the --step-id of its backfill step)\n",
        )?;
        return Ok(Outcome::No);
    }
    output::stdout(&format!("updated {n} backfill(s); running ones pick it up within a second\n"))?;
    Ok(Outcome::Yes)
}

/// A setting for a backfill that has not started yet: allowed when `--plan-id` and
/// `--step-id` name a backfill step of a plan stored in the ledger, so that an operator can
/// start a backfill slow or paused. The engine reads the control row from its first batch.
async fn preset(client: &tokio_postgres::Client, t: &Target, setting: Control) -> anyhow::Result<u64> {
    let (Some(plan_id), Some(step_id)) = (&t.plan_id, &t.step_id) else { return Ok(0) };
    Ok(ledger::backfills::preset_control(client, plan_id, step_id, setting).await?)
}

async fn show_status(c: &Conn) -> anyhow::Result<Outcome> {
    let client = connect(c).await?;
    ledger::ensure(&client).await.context("failed to install the seqmig ledger")?;
    let all = backfill::status(&client).await.context("failed to read seqmig.backfills")?;
    if all.is_empty() {
        output::stdout("no backfills recorded\n")?;
    }
    for s in all {
        let p = &s.progress;
        let total = p.rows_total_estimate.map(|t| format!("/~{t}")).unwrap_or_default();
        let mut line = format!(
            "{} {} {} {}: {}{} rows scanned, {} written, {}",
            p.plan_id,
            p.step_id,
            p.table,
            p.state,
            p.rows_scanned,
            total,
            p.rows_done,
            backfill::describe(p)
        );
        if s.paused {
            line.push_str(", PAUSED by operator");
        }
        if let Some(r) = s.max_rows_per_sec {
            line.push_str(&format!(", limited to {r} rows/s"));
        }
        if let Some(e) = s.last_error {
            line.push_str(&format!("\n  last error: {e}"));
        }
        line.push('\n');
        output::stdout(&line)?;
    }
    Ok(Outcome::Yes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("500").unwrap(), Some(500.0));
        assert_eq!(parse_rate("0").unwrap(), None);
        assert_eq!(parse_rate("unlimited").unwrap(), None);
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
