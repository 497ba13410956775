//! `seqmig inspect SRC`: shows the model seqmig reads from a schema source, as stable JSON,
//! as re-emitted DDL, or as a summary of counts.

use clap::{Args as ClapArgs, ValueEnum};

use super::{Outcome, output};
use crate::model::ddl;
use crate::parse::{self, SourceSpec};

/// The `Examples:` section of `--help` (and of the book's CLI reference).
pub(crate) const EXAMPLES: &str = r#"Examples:
  seqmig inspect examples/shop.sql
  seqmig inspect db/schema/ --format json > schema.json
  pg_dump --schema-only shop | seqmig inspect - --format sql
  seqmig inspect postgres://app@db.internal/shop"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The normalised model as sorted JSON.
    Json,
    /// DDL that loads back to the same model.
    Sql,
    /// Counts of objects and of how statements were accounted for.
    Summary,
}

/// Show the schema model read from a source.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// A .sql file, a directory of .sql files (name order), '-' for stdin, or a
    /// postgres:// URL (the live database is introspected; see 'Live databases' in the book).
    pub src: String,
    /// What to show.
    #[arg(long, value_enum, default_value = "summary")]
    pub format: Format,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let spec = SourceSpec::from_arg(&args.src);
    let loaded = crate::source::load_source(&spec)?;
    for f in &loaded.report.findings {
        let at = f.span.as_ref().map(|s| format!("{s}: ")).unwrap_or_default();
        output::stderr_line(&format!("warning: {at}{}: {} [{}]", f.object, f.message, f.code));
    }
    let text = match args.format {
        Format::Json => {
            let mut v = serde_json::to_value(&loaded.schema)?;
            sort_json(&mut v);
            let mut s = serde_json::to_string_pretty(&v)?;
            s.push('\n');
            s
        }
        Format::Sql => ddl::schema_sql(&loaded.schema),
        Format::Summary => summary(&loaded, &spec),
    };
    output::stdout(&text)?;
    Ok(Outcome::Yes)
}

fn summary(loaded: &parse::Loaded, loaded_from: &SourceSpec) -> String {
    let mut out = String::new();
    for (k, v) in ddl::object_counts(&loaded.schema) {
        out.push_str(&format!("{k:<22} {v}\n"));
    }
    if matches!(loaded_from, SourceSpec::Url(_)) {
        return out;
    }
    let r = &loaded.report;
    out.push_str(&format!("{:<22} {}\n", "statements", r.statements));
    out.push_str(&format!("{:<22} {}\n", "modelled statements", r.modelled));
    out.push_str(&format!("{:<22} {}\n", "opaque statements", r.opaque));
    out.push_str(&format!("{:<22} {}\n", "unparsed statements", r.unparsed));
    out.push_str(&format!("{:<22} {}\n", "if-exists skips", r.if_exists_skips));
    out.push_str(&format!("{:<22} {}\n", "skipped lines", r.skipped));
    out
}

/// Objects keyed by structs serialise as arrays; maps are already sorted (BTreeMap). This
/// sorts object keys recursively so the output is stable whatever serde_json's map type is.
fn sort_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(String, serde_json::Value)> = std::mem::take(map).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, mut val) in entries {
                sort_json(&mut val);
                map.insert(k, val);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(sort_json),
        _ => {}
    }
}
