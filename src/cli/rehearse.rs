//! `seqmig rehearse --from SRC --to SRC`: plan the change, then prove the plan on a scratch
//! database (every phase applied, rolled back, compared, applied again; contract with the
//! gate bypassed as a recorded rehearsal; locks observed against the predictions). Exit 0
//! when proven, 1 when a rollback did not restore, the final schema differs, an observed
//! lock exceeds its prediction or a step failed, 2 on errors.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{Outcome, output};
use crate::db::ConnectOptions;
use crate::model::Schema;
use crate::parse::SourceSpec;
use crate::rehearse::{Rehearsal, render};
use crate::render::Renderer;
use crate::scratch::Scratch;

/// The `Examples:` section of `--help` (and of the book's CLI reference).
pub(crate) const EXAMPLES: &str = r#"Examples:
  seqmig rehearse --from db/schema.sql --to db/schema.next.sql
  seqmig rehearse --from db/schema.sql --to db/schema.next.sql --database-url postgres://ci@localhost/postgres --format markdown > rehearsal.md
  # The exact artifact that will be applied, or the SQL your own templates write
  seqmig rehearse --from db/schema.sql --to db/schema.next.sql --plan plan.json
  seqmig rehearse --from db/schema.sql --to db/schema.next.sql --templates db/seqmig-templates
  # On the PostgreSQL major version production runs, in a container (Docker)
  seqmig rehearse --from db/schema.sql --to db/schema.next.sql --image postgres:17"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table per phase.
    Text,
    /// The whole report, for CI.
    Json,
    /// A pull-request comment.
    Markdown,
}

/// Prove a plan on a scratch database: apply, roll back and re-apply every phase, observing locks.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub pair: super::plan::SchemaPair,
    /// A server to create the scratch databases on (they are dropped afterwards). Without
    /// it, a throwaway cluster is started from the local PostgreSQL binaries, or from
    /// --image.
    #[arg(long, value_name = "URL", conflicts_with = "image")]
    pub database_url: Option<String>,
    /// Rehearse on PostgreSQL in a throwaway container from this image (`postgres:17`,
    /// the major version production runs), through the local Docker engine; removed
    /// afterwards. Official `postgres` images and images with the same conventions work.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Generated rows per table.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub rows: usize,
    /// How to print the report.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Directory whose files override the embedded templates, as for `seqmig plan`: the
    /// rehearsal proves the SQL your templates write.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Rehearse this plan artifact (`seqmig plan --format json`) instead of planning again:
    /// the exact file `seqmig apply` will run. Its id is checked; --from must be the schema it
    /// starts from and --to the one it ends in. Hints and templates were applied when it was
    /// planned, so they cannot be given with it.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["templates", "config", "renames", "transforms"])]
    pub plan: Option<PathBuf>,
}

/// A schema source read once: its model and SQL that creates it.
fn load(arg: &str) -> anyhow::Result<(Schema, String)> {
    let spec = SourceSpec::from_arg(arg);
    let text = match &spec {
        SourceSpec::File(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("failed to read '{}'", path.display()))?,
        ),
        SourceSpec::Dir(dir) => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("failed to read directory '{}'", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .collect();
            files.sort();
            let mut all = String::new();
            for f in files {
                all.push_str(
                    &std::fs::read_to_string(&f)
                        .with_context(|| format!("failed to read '{}'", f.display()))?,
                );
                all.push_str("\n;\n");
            }
            Some(all)
        }
        SourceSpec::Stdin => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("failed to read stdin")?;
            let schema = crate::parse::load_str("<stdin>", &s)?.schema;
            return Ok((schema, s));
        }
        SourceSpec::Url(_) => None,
    };
    let schema =
        crate::source::load_source(&spec).with_context(|| format!("failed to load schema '{arg}'"))?.schema;
    let sql = text.unwrap_or_else(|| crate::model::ddl::schema_sql(&schema));
    Ok((schema, sql))
}

/// A throwaway server: a container from `image`, or a cluster from the local binaries. A
/// container is announced on stderr, so it can be found while it runs.
pub(crate) fn start_scratch(image: Option<&str>) -> anyhow::Result<Scratch> {
    let server = Scratch::start(image, &[]).with_context(|| match image {
        Some(image) => format!("failed to start PostgreSQL from image '{image}'"),
        None => "failed to start a throwaway PostgreSQL cluster".to_string(),
    })?;
    if let Scratch::Container(c) = &server {
        output::stderr_line(&format!(
            "PostgreSQL from {} runs in container {} on 127.0.0.1:{} (removed afterwards)",
            c.image(),
            c.name(),
            c.port()
        ));
    }
    Ok(server)
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if args.pair.from == "-" && args.pair.to == "-" {
        bail!("only one of --from and --to can be stdin");
    }
    let (current, current_sql) = load(&args.pair.from)?;
    let (desired, desired_sql) = load(&args.pair.to)?;
    let plan = match &args.plan {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read plan '{}'", path.display()))?;
            crate::plan::Plan::from_json(&text)
                .with_context(|| format!("plan '{}' refused", path.display()))?
        }
        None => {
            let renderer = Renderer::with_overrides(args.templates.as_deref())?;
            crate::plan::plan(&current, &desired, &args.pair.hints()?, &renderer)?.plan
        }
    };
    if plan.is_blocked() {
        let codes: Vec<&str> =
            plan.findings.iter().filter(|f| f.is_error()).map(|f| f.code.as_str()).collect();
        output::stderr_line(&format!(
            "plan {} is blocked by findings ({}); a blocked plan is never applied, so there is nothing to rehearse; run 'seqmig plan --from {} --to {}' to see them",
            plan.short_id(),
            codes.join(", "),
            args.pair.from,
            args.pair.to
        ));
        return Ok(Outcome::No);
    }
    // The server lives until the end of this function; dropping it (also on panic, and its
    // supervisor or reaper on SIGKILL) stops it and deletes its directory or container.
    let (_server, admin) = match &args.database_url {
        Some(url) => (None, ConnectOptions::from_url(url)?),
        None => {
            let server = start_scratch(args.image.as_deref())?;
            let admin = ConnectOptions::from_url(&server.url("postgres"))?;
            (Some(server), admin)
        }
    };
    let input = Rehearsal { plan, current, current_sql, desired_sql, rows: args.rows };
    let rt = super::apply::runtime()?;
    let report = rt.block_on(crate::rehearse::rehearse(&admin, &input, async {
        // Without a handler, Ctrl-C would end the process before the scratch database is dropped.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }))?;
    match args.format {
        Format::Text => output::stdout(&render::text(&report))?,
        Format::Markdown => output::stdout(&render::markdown(&report))?,
        Format::Json => output::stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?,
    }
    Ok(if report.passed() { Outcome::Yes } else { Outcome::No })
}
