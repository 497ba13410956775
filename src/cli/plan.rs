//! `seqmig plan --from SRC --to SRC`: diff two schemas, plan the releases, and print the
//! plan (text on a terminal, or `--format json|sql|markdown`). Exit 0 when the plan is
//! safe, 1 when findings block it, 2 on errors.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{Outcome, output};
use crate::diff::Hints;
use crate::model::Schema;
use crate::plan::signature::{PlanKey, SIGN_KEY_ENV};
use crate::plan::{Phase, Planned};
use crate::render::Renderer;

/// The `Examples:` section of `--help` (and of the book's CLI reference).
pub(crate) const EXAMPLES: &str = r#"Examples:
  # Exit 1 when the change is unsafe as written (ambiguous, unsupported, an unacknowledged drop)
  seqmig plan --from db/schema.sql --to db/schema.next.sql --config seqmig.toml
  # The artifact `seqmig apply` runs, and the runbook for humans
  seqmig plan --from db/schema.sql --to db/schema.next.sql --format json > plan.json
  seqmig plan --from db/schema.sql --to db/schema.next.sql --format markdown > runbook.md
  # From the live database to the desired schema, one SQL file per phase
  seqmig plan --from "$DATABASE_URL" --to db/schema.next.sql --format sql --out migrations/
  # A rename given as a flag instead of in seqmig.toml
  seqmig plan --from db/schema.sql --to db/schema.next.sql --rename public.users.name=full_name"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A readable summary.
    Text,
    /// The plan artifact (seqmig.plan/v3).
    Json,
    /// SQL per phase (`--out DIR` writes one file per phase plus rollbacks).
    Sql,
    /// The runbook.
    Markdown,
    /// A sqitch project (`--out DIR`): sqitch.plan, deploy/ and revert/ per phase.
    Sqitch,
    /// An Alembic script directory (`--out DIR`): alembic.ini, env.py, versions/.
    Alembic,
    /// A Django app (`--out DIR`): seqmig_<id>/migrations/ and seqmig_settings.py.
    Django,
    /// node-pg-migrate migrations (`--out DIR`): migrations/NNNN_seqmig_<id>_<unit>.js.
    NodePgMigrate,
    /// sqlx-cli migrations (`--out DIR`): <version>_seqmig_<id>_<unit>.sql.
    Sqlx,
    /// Rails / ActiveRecord migrations (`--out DIR`): db/migrate/<version>_seqmig_<id>_<unit>.rb
    /// and a Rakefile.
    Rails,
}

/// The two schemas of a change and the hints that say how to get from one to the other;
/// shared by `plan` and `rehearse`.
#[derive(Debug, clap::Args)]
pub struct SchemaPair {
    /// The current schema: a .sql file, a directory of .sql files, `-` or a postgres:// URL.
    #[arg(long, value_name = "SRC")]
    pub from: String,
    /// The desired schema, in the same forms.
    #[arg(long, value_name = "SRC")]
    pub to: String,
    /// Hints file (renames, transforms, fills, acknowledged one-way doors, gate, governance);
    /// default: ./seqmig.toml when it exists.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Rename hint: SCHEMA.TABLE.OLD=NEW (column) or SCHEMA.TABLE=NEW (table). Repeatable.
    #[arg(long = "rename", value_name = "OLD=NEW")]
    pub renames: Vec<String>,
    /// Transform hint: SCHEMA.TABLE.COLUMN:up=EXPR, :down=EXPR or :from=OLD_COLUMN. Repeatable.
    #[arg(long = "transform", value_name = "COLUMN:KEY=EXPR")]
    pub transforms: Vec<String>,
}

impl SchemaPair {
    /// The hints file (or ./seqmig.toml) with the flag hints added on top.
    pub fn hints(&self) -> anyhow::Result<Hints> {
        let mut hints = match &self.config {
            Some(path) => Hints::from_file(path)?,
            None if Path::new("seqmig.toml").is_file() => Hints::from_file(Path::new("seqmig.toml"))?,
            None => Hints::default(),
        };
        for r in &self.renames {
            hints.add_rename_flag(r)?;
        }
        for t in &self.transforms {
            hints.add_transform_flag(t)?;
        }
        Ok(hints)
    }
}

/// Plan a schema change as expand → dual_write → backfill → switch → contract releases.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub pair: SchemaPair,
    /// What to write.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Directory to write into instead of stdout (`--format sql`: one file per phase).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Directory whose files override the embedded templates (same relative names).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// `--format sqlx|rails`: the version of the first migration; the others follow it
    /// (+1 each). Default: the UTC time now as YYYYMMDDHHMMSS. Give the same value to write
    /// the files of a plan again.
    #[arg(long, value_name = "N")]
    pub first_version: Option<i64>,
    /// Sign the plan with the HMAC-SHA256 key in FILE (held by CI), so that `apply
    /// --verify-key-file` accepts it and nothing edited after planning. Default:
    /// $SEQMIG_SIGNING_KEY_FILE; without either, the plan is not signed.
    #[arg(long, value_name = "FILE")]
    pub sign_key_file: Option<PathBuf>,
    /// Stack the plan on a plan in flight (id or unambiguous prefix; needs --from
    /// postgres://…): it may change that plan's objects, and each of its phases waits until
    /// that plan has completed the same phase.
    #[arg(long, value_name = "PLAN_ID")]
    pub after: Option<String>,
}

/// Loads one schema source. A `.json` file holds a serialised model (what `seqmig inspect
/// --format json` style tools write); everything else goes through the loader.
pub fn load_schema(arg: &str) -> anyhow::Result<Schema> {
    if arg.ends_with(".json") {
        let text = std::fs::read_to_string(arg).with_context(|| format!("failed to read '{arg}'"))?;
        return serde_json::from_str(&text)
            .with_context(|| format!("'{arg}' is not a seqmig schema in JSON"));
    }
    let spec = crate::parse::SourceSpec::from_arg(arg);
    let loaded =
        crate::source::load_source(&spec).with_context(|| format!("failed to load schema '{arg}'"))?;
    Ok(loaded.schema)
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let hints = args.pair.hints()?;
    let sign_key = PlanKey::from_flag_or_env(args.sign_key_file.as_deref(), SIGN_KEY_ENV)?;
    let renderer = Renderer::with_overrides(args.templates.as_deref())?;
    let current = load_schema(&args.pair.from)?;
    let desired = load_schema(&args.pair.to)?;
    let mut planned =
        plan_over_flights(&args.pair.from, current, &desired, &hints, &renderer, args.after.as_deref())?;
    if let Some(key) = sign_key {
        planned.plan = key.sign(planned.plan);
    }
    match args.format {
        Format::Json => emit(&args.out, "plan.json", &planned.plan.to_json_pretty())?,
        Format::Markdown => {
            emit(&args.out, "runbook.md", &crate::runbook::runbook(&planned, &hints.governance, &renderer)?)?
        }
        Format::Sql => {
            let files = crate::runner::sql_files(&planned, &renderer)?;
            match &args.out {
                Some(dir) => {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("failed to create '{}'", dir.display()))?;
                    for (p, sql, back) in &files {
                        for (name, text) in [
                            (crate::runbook::phase_file_name(*p, false), sql),
                            (crate::runbook::phase_file_name(*p, true), back),
                        ] {
                            let path = dir.join(&name);
                            std::fs::write(&path, text)
                                .with_context(|| format!("failed to write '{}'", path.display()))?;
                        }
                    }
                    output::stderr_line(&format!(
                        "wrote {} phase files to '{}'",
                        files.len() * 2,
                        dir.display()
                    ));
                }
                None => {
                    let all: Vec<&str> = files.iter().map(|(_, sql, _)| sql.as_str()).collect();
                    output::stdout(&all.join("\n"))?;
                }
            }
        }
        Format::Sqitch => {
            let dir = args.out.as_deref().context("--format sqitch writes a project: give --out DIR")?;
            write_files(dir, &crate::runner::sqitch::files(&planned, &renderer)?)?;
        }
        Format::Alembic => {
            let dir = args.out.as_deref().context("--format alembic writes a project: give --out DIR")?;
            write_files(dir, &crate::runner::alembic::files(&planned))?;
        }
        Format::Django => {
            let dir = args.out.as_deref().context("--format django writes an app: give --out DIR")?;
            write_files(dir, &crate::runner::django::files(&planned))?;
        }
        Format::NodePgMigrate => {
            let dir = args.out.as_deref().context("--format node-pg-migrate writes files: give --out DIR")?;
            write_files(dir, &crate::runner::node_pg_migrate::files(&planned))?;
        }
        Format::Sqlx => {
            let dir = args.out.as_deref().context("--format sqlx writes migrations: give --out DIR")?;
            let first = args.first_version.unwrap_or_else(crate::runner::sqlx::timestamp_version);
            write_files(dir, &crate::runner::sqlx::files(&planned, &renderer, first)?)?;
        }
        Format::Rails => {
            let dir = args.out.as_deref().context("--format rails writes migrations: give --out DIR")?;
            let first = args.first_version.unwrap_or_else(crate::runner::sqlx::timestamp_version);
            write_files(dir, &crate::runner::rails::files(&planned, first))?;
        }
        Format::Text => {
            let text = summary(&planned, std::io::stdout().is_terminal());
            emit(&args.out, "plan.txt", &text)?;
        }
    }
    if planned.plan.is_blocked() {
        if args.format != Format::Text {
            let n = planned.plan.findings.iter().filter(|f| f.is_error()).count();
            output::stderr_line(&format!(
                "plan {} is blocked by {n} finding(s); run with --format text to see them",
                planned.plan.short_id()
            ));
        }
        Ok(Outcome::No)
    } else {
        Ok(Outcome::Yes)
    }
}

/// Writes runner files (paths relative to `dir`).
fn write_files(dir: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    for (name, text) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create '{}'", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("failed to write '{}'", path.display()))?;
    }
    output::stderr_line(&format!("wrote {} files to '{}'", files.len(), dir.display()));
    Ok(())
}

/// Plans from `current` to `desired`. When `from` is a live database with plans in flight,
/// the plan starts from the schema they leave when they complete, records them as assumed,
/// and is blocked where it overlaps one of them (issue 20).
pub fn plan_over_flights(
    from: &str,
    current: Schema,
    desired: &Schema,
    hints: &Hints,
    renderer: &Renderer,
    after: Option<&str>,
) -> anyhow::Result<Planned> {
    let flights = match crate::parse::SourceSpec::from_arg(from) {
        crate::parse::SourceSpec::Url(url) => {
            let opts = crate::db::ConnectOptions::from_url(&url)?;
            crate::exec::inflight::in_flight_blocking(&opts)
                .context("failed to read the plans in flight from the ledger")?
        }
        _ if after.is_some() => {
            bail!("--after stacks the plan on a plan in flight in a database: plan with --from postgres://…")
        }
        _ => vec![],
    };
    let after = match after {
        Some(given) => {
            Some(crate::plan::inflight::stack_target(&flights, given).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    if flights.is_empty() {
        return Ok(crate::plan::plan(&current, desired, hints, renderer)?);
    }
    let derived = crate::plan::inflight::completed_schema(&current, &flights);
    let start = derived.as_ref().unwrap_or(&current);
    let mut planned = crate::plan::plan(start, desired, hints, renderer)?;
    planned.plan.after = after;
    crate::plan::inflight::assume(&mut planned, &flights, &derived);
    Ok(planned)
}

fn emit(out: &Option<PathBuf>, name: &str, text: &str) -> anyhow::Result<()> {
    match out {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("failed to create '{}'", dir.display()))?;
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("failed to write '{}'", path.display()))?;
            output::stderr_line(&format!("wrote '{}'", path.display()));
            Ok(())
        }
        None => Ok(output::stdout(text)?),
    }
}

/// The terminal summary: changes, phases with their steps, findings, verdict.
pub fn summary(planned: &Planned, color: bool) -> String {
    let (bold, red, yellow, reset) =
        if color { ("\x1b[1m", "\x1b[31m", "\x1b[33m", "\x1b[0m") } else { ("", "", "", "") };
    let plan = &planned.plan;
    let mut s = String::new();
    s.push_str(&format!(
        "{bold}plan {}{reset}: {} change(s), {} step(s)\n",
        plan.short_id(),
        plan.changes.len(),
        plan.steps.len()
    ));
    for a in &plan.assumes {
        s.push_str(&format!(
            "assumes plan {} (in flight, through {}) completes first\n",
            crate::exec::short_id(&a.id),
            a.through
        ));
    }
    if let Some(after) = &plan.after {
        s.push_str(&format!(
            "stacked after plan {0}: each phase waits until plan {0} has completed it (contract: its switch, or its contract when this one removes what it still needs)\n",
            crate::exec::short_id(after)
        ));
    }
    if plan.changes.is_empty() {
        s.push_str("\nthe schemas are equal: nothing to do\n");
    } else {
        s.push_str(&format!("\n{bold}changes{reset}\n"));
        for c in &plan.changes {
            s.push_str(&format!(
                "  {:<4} {:<20} {}{}\n",
                c.id,
                c.kind,
                c.summary,
                if c.one_way { "  [one-way]" } else { "" }
            ));
        }
        for p in Phase::ALL {
            let steps = plan.steps_of(p);
            if steps.is_empty() {
                continue;
            }
            s.push_str(&format!("\n{bold}{}. {}{reset} ({} step(s))\n", p.number(), p, steps.len()));
            for st in steps {
                let purpose = planned.notes.get(&st.id).map(|n| n.purpose.as_str()).unwrap_or("");
                let mut flags = Vec::new();
                if st.lock != crate::plan::LockMode::None {
                    flags.push(format!("{} on {}", st.lock, st.lock_target));
                }
                if !st.transactional {
                    flags.push("no transaction".into());
                }
                if st.rewrites_table {
                    flags.push("REWRITES".into());
                }
                if st.backfill.is_some() {
                    flags.push("batched".into());
                }
                if st.one_way {
                    flags.push("ONE-WAY".into());
                }
                s.push_str(&format!("  {:<5} {:<4} {purpose}\n", st.id, st.change));
                // A step with no lock and nothing else to flag gets no (empty) flags line.
                if !flags.is_empty() {
                    s.push_str(&format!("        {}\n", flags.join(" · ")));
                }
            }
        }
        if !plan.gate.criteria.is_empty() {
            let c: Vec<String> =
                plan.gate.criteria.iter().map(|c| format!("{}={}", c.name, c.value)).collect();
            s.push_str(&format!("\n{bold}gate before contract{reset}: {}\n", c.join(", ")));
        }
    }
    if !plan.findings.is_empty() {
        s.push_str(&format!("\n{bold}findings{reset}\n"));
        for f in &plan.findings {
            let (color, word) = if f.is_error() { (red, "error") } else { (yellow, "warning") };
            s.push_str(&format!("  {color}{word}{reset}[{}] {}: {}\n", f.code, f.object, f.message));
            if !f.help.is_empty() {
                for (i, line) in f.help.lines().enumerate() {
                    s.push_str(&format!("      {} {line}\n", if i == 0 { "help:" } else { "     " }));
                }
            }
        }
    }
    let errors = plan.findings.iter().filter(|f| f.is_error()).count();
    if errors > 0 {
        s.push_str(&format!("\n{red}blocked{reset}: {errors} blocking finding(s)\n"));
    } else {
        s.push_str("\nsafe: no blocking findings; write the SQL with --format sql --out DIR, the runbook with --format markdown\n");
    }
    s
}
