//! `seqmig lint FILE…`: judges hand-written migration files and prints the findings as text,
//! JSON, GitHub annotations or SARIF. Exit 1 when an error-severity finding remains.

use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;

use super::{Outcome, output};
use crate::lint::{self, LintConfig, format};

/// The `Examples:` section of `--help` (and of the book's CLI reference).
pub(crate) const EXAMPLES: &str = r#"Examples:
  seqmig lint migrations/*.sql
  seqmig lint migrations/ --format sarif > seqmig.sarif
  seqmig lint migrations/ --exclude prefer-text,prefer-bigint --pg-version 15
  seqmig lint --list"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `file:line:col: severity[code]: message` with the source line and the help.
    Text,
    /// One document: files, findings with their spans, error and warning counts.
    Json,
    /// GitHub Actions workflow commands (`::error file=…::…`).
    Github,
    /// SARIF 2.1.0 for code-scanning upload.
    Sarif,
}

/// Lint migration files for statements that lock, rewrite, lose data or break the running release.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Migration files or directories (their .sql files, in name order).
    #[arg(required_unless_present = "list")]
    pub files: Vec<PathBuf>,
    /// How to print the findings.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Codes not to report (repeatable or comma-separated).
    #[arg(long, value_name = "CODES", value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// The PostgreSQL major version the migrations run on.
    #[arg(long, value_name = "MAJOR")]
    pub pg_version: Option<u32>,
    /// The migration runner wraps each file in a transaction.
    #[arg(long)]
    pub assume_in_transaction: bool,
    /// The config file with a [lint] table (default: ./seqmig.toml when it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print every code with its severity and exit.
    #[arg(long)]
    pub list: bool,
    /// The schema the migrations run against: a DDL file, a directory, `-` or a
    /// `postgres://` URL. Rules then know which tables are partitioned (a `CREATE INDEX
    /// CONCURRENTLY` on one fails) and which columns are NOT NULL or nullable. Without it,
    /// only what the linted files themselves create is known.
    #[arg(long, value_name = "SRC")]
    pub schema: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if args.list {
        let mut text = String::new();
        for r in lint::rules::RULES {
            let sev = if r.severity == crate::finding::Severity::Error { "error" } else { "warning" };
            text.push_str(&format!("{:<34} {sev:<8} {}\n", r.code, r.what.replace('`', "")));
        }
        output::stdout(&text)?;
        return Ok(Outcome::Yes);
    }
    let config = config(&args)?;
    let start = match &args.schema {
        Some(src) => lint::Carry::from_schema(&super::plan::load_schema(src)?),
        None => lint::Carry::default(),
    };
    let reports = lint::lint_paths_after(&args.files, &config, start)?;
    let rendered = match args.format {
        Format::Text => format::text(&reports),
        Format::Json => format::json(&reports),
        Format::Github => format::github(&reports),
        Format::Sarif => format::sarif(&reports),
    };
    output::stdout(&rendered)?;
    let (errors, _) = format::counts(&reports);
    Ok(if errors > 0 { Outcome::No } else { Outcome::Yes })
}

/// `[lint]` from the config file, then the flags on top.
fn config(args: &Args) -> anyhow::Result<LintConfig> {
    let path = args.config.clone().or_else(|| {
        let default = PathBuf::from("seqmig.toml");
        default.is_file().then_some(default)
    });
    let mut config = match &path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("failed to read '{}'", p.display()))?;
            LintConfig::from_toml(&text).with_context(|| format!("in '{}'", p.display()))?
        }
        None => LintConfig::default(),
    };
    for name in &args.exclude {
        config.allow.insert(lint::lint_code(name.trim())?);
    }
    if let Some(v) = args.pg_version {
        config.pg_version = v;
    }
    config.assume_in_transaction |= args.assume_in_transaction;
    Ok(config)
}
