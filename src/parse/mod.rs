//! Reads DDL into a [`Schema`]: the only module that imports sqlparser. Splits the input into
//! statements, skips psql meta-lines and session noise, and applies the statements in order
//! (CREATE, then the `ALTER TABLE ONLY … ADD CONSTRAINT`, `ALTER SEQUENCE … OWNED BY`,
//! `COMMENT ON` … forms pg_dump writes). Nothing is dropped silently: a statement sqlparser
//! rejects becomes an opaque object with an `unparsed-statement` warning, or an error when it
//! changes a modelled object in a way seqmig cannot follow.

mod split;

use std::path::{Path, PathBuf};

pub use split::{LineIndex, RawStatement, SplitError, split_statements};

use crate::finding::{Finding, Span};
use crate::model::Schema;

/// Where a schema comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A `.sql` file.
    File(PathBuf),
    /// A directory: its `.sql` files in name order.
    Dir(PathBuf),
    /// `-`: standard input.
    Stdin,
    /// `postgres://…`: introspected.
    Url(String),
}

impl SourceSpec {
    /// Classifies a user-given `SRC` string.
    pub fn from_arg(arg: &str) -> SourceSpec {
        if arg == "-" {
            SourceSpec::Stdin
        } else if arg.starts_with("postgres://") || arg.starts_with("postgresql://") {
            SourceSpec::Url(arg.to_string())
        } else if Path::new(arg).is_dir() {
            SourceSpec::Dir(PathBuf::from(arg))
        } else {
            SourceSpec::File(PathBuf::from(arg))
        }
    }
}

/// What loading accounted for: every top-level statement lands in exactly one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoadReport {
    /// Top-level statements in the input (psql meta-lines included).
    pub statements: usize,
    /// Statements that changed a modelled object.
    pub modelled: usize,
    /// Statements kept as opaque objects (functions, triggers, grants, …).
    pub opaque: usize,
    /// Session noise and psql meta-lines (`SET …`, `SELECT pg_catalog.set_config(…)`, `\restrict`).
    pub skipped: usize,
    /// Statements sqlparser rejected, kept as opaque objects with a warning (a subset of `opaque`).
    pub unparsed: usize,
    pub findings: Vec<Finding>,
}

/// A loaded schema and the account of how it was read.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub schema: Schema,
    pub report: LoadReport,
}

/// Why a schema could not be loaded. Every variant names the file and, where there is one,
/// the position and the statement.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("failed to read '{path}': {source}")]
    Io { path: String, source: std::io::Error },
    #[error("'{path}' is a directory with no .sql files")]
    EmptyDir { path: String },
    #[error("{span}: {message}\n  | {statement}")]
    Statement { span: Span, message: String, statement: String },
    #[error("{file}:{line}:{column}: {what}", file = .file, line = .line, column = .column)]
    Split { file: String, line: usize, column: usize, what: String },
}

/// Whether `sql` (one or more statements) parses with the PostgreSQL dialect. For tests that
/// check generated SQL round-trips; comments alone count as valid.
///
/// sqlparser 0.64 lacks `DROP INDEX CONCURRENTLY` (PostgreSQL has had it since 9.2); the
/// keyword is removed before parsing so the rest of the statement is still checked.
pub fn parses(sql: &str) -> Result<(), String> {
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;
    let patched = sql.replace("DROP INDEX CONCURRENTLY ", "DROP INDEX ");
    Parser::parse_sql(&PostgreSqlDialect {}, &patched).map(|_| ()).map_err(|e| e.to_string())
}
