//! Reads DDL into a [`Schema`]: the only module that imports sqlparser. Splits the input into
//! statements, skips psql meta-lines and session noise, and applies the statements in order
//! (CREATE, then the `ALTER TABLE ONLY … ADD CONSTRAINT`, `ALTER SEQUENCE … OWNED BY`,
//! `COMMENT ON` … forms pg_dump writes). Nothing is dropped silently: a statement sqlparser
//! rejects becomes an opaque object with an `unparsed-statement` warning, or an error when it
//! changes a modelled object in a way seqmig cannot follow.

//!
//! The DDL grammar is read from our own token stream ([`lex`]) rather than from sqlparser's
//! AST: pg_dump forms such as opclasses, `PARTITION OF`, identity options and `ATTACH
//! PARTITION` are missing from it, and its `Display` re-spells expressions, while the model
//! must keep the text PostgreSQL itself prints. sqlparser decides whether a statement of a
//! kind seqmig does not recognise is SQL at all.

mod cursor;
mod drop;
pub mod effects;
mod expr;
pub(crate) mod lex;
mod load;
mod names;
pub mod normalize;
mod objects;
mod partition;
mod rename;
mod split;
pub mod stand_in;
mod table;
pub mod text;

use std::path::{Path, PathBuf};

pub use expr::{hint_expression, hint_sql};
pub use lex::mentions;
pub use normalize::{dollar_tag, lower_outside_quotes, normalize_default, normalize_expr, normalize_type};
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
    /// Statements guarded by `IF EXISTS` that found an object missing and skipped it, as
    /// PostgreSQL does (a subset of `modelled`): the opening of a `pg_dump --clean --if-exists` dump.
    pub if_exists_skips: usize,
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
    // The I/O error is part of the message, not a `source`, so the CLI prints one line.
    #[error("failed to read '{path}': {error}")]
    Io { path: String, error: std::io::Error },
    #[error("'{path}' is a directory with no .sql files")]
    EmptyDir { path: String },
    #[error("{span}: {message}; in: {statement}")]
    Statement { span: Span, message: String, statement: String },
    #[error("{file}:{line}:{column}: {what}", file = .file, line = .line, column = .column)]
    Split { file: String, line: usize, column: usize, what: String },
    #[error("{path}:1:1: the input contains no SQL statements")]
    Empty { path: String },
    #[error("{what}")]
    Unsupported { what: String },
}

/// Loads a schema source. `postgres://` URLs are read by introspection, not here.
pub fn load(spec: &SourceSpec) -> Result<Loaded, ParseError> {
    match spec {
        SourceSpec::File(path) => {
            let text = read_file(path)?;
            load_str(&path.display().to_string(), &text)
        }
        SourceSpec::Dir(dir) => {
            let shown = dir.display().to_string();
            let entries =
                std::fs::read_dir(dir).map_err(|error| ParseError::Io { path: shown.clone(), error })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "sql"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(ParseError::EmptyDir { path: shown });
            }
            let mut loader = load::Loader::default();
            for f in &files {
                let text = read_file(f)?;
                let name = f.display().to_string();
                let stmts = split_checked(&name, &text)?;
                loader.apply_file(&name, &stmts)?;
            }
            Ok(loader.finish())
        }
        SourceSpec::Stdin => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
                .map_err(|error| ParseError::Io { path: "<stdin>".into(), error })?;
            let text = decode("<stdin>", bytes)?;
            load_str("<stdin>", &text)
        }
        SourceSpec::Url(url) => Err(ParseError::Unsupported {
            what: format!(
                "'{}': postgres:// sources are read by introspection, not by the file loader",
                redact(url)
            ),
        }),
    }
}

/// The spelling opaque objects carry for a statement's text: tokens joined by one space
/// where the source had whitespace or a comment, words lower-cased. Introspection spells the
/// statements it rebuilds from the catalog with this too, so both producers agree.
pub fn normalize_statement(sql: &str) -> String {
    match lex::tokenize(sql) {
        Ok(toks) => lex::normalized_text(sql, &toks),
        Err(_) => crate::parse::normalize_expr(sql),
    }
}

/// Loads SQL text; `file_name` is used in positions and findings.
pub fn load_str(file_name: &str, sql: &str) -> Result<Loaded, ParseError> {
    let stmts = split_checked(file_name, sql)?;
    if stmts.is_empty() {
        return Err(ParseError::Empty { path: file_name.to_string() });
    }
    let mut loader = load::Loader::default();
    loader.apply_file(file_name, &stmts)?;
    Ok(loader.finish())
}

/// Applies `sql`, statements seqmig itself wrote (the steps of a plan), to `schema` as the
/// loader would after the schema's own DDL: what the database will look like once they have
/// run. Left out are what introspection never reads either: DML (seqmig's flag bookkeeping)
/// and the functions of seqmig's own schema (dual-write helpers).
pub fn replay_onto(schema: Schema, file_name: &str, sql: &str) -> Result<Loaded, ParseError> {
    let stmts: Vec<RawStatement> = split_checked(file_name, sql)?
        .into_iter()
        .filter(|s| !s.meta && !on_seqmig_schema_or_data(&s.text))
        .collect();
    let mut loader = load::Loader::default();
    loader.schema = schema;
    loader.apply_file(file_name, &stmts)?;
    Ok(loader.finish())
}

/// DML, and `CREATE [OR REPLACE] | DROP FUNCTION [IF EXISTS] seqmig.…`.
fn on_seqmig_schema_or_data(text: &str) -> bool {
    let Ok(toks) = lex::tokenize(text) else { return false };
    let words: Vec<String> = toks
        .iter()
        .take(10)
        .map(|t| text[t.start..t.end].to_ascii_lowercase())
        .filter(|w| !matches!(w.as_str(), "or" | "replace" | "if" | "exists"))
        .collect();
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    matches!(
        w.as_slice(),
        ["insert" | "update" | "delete" | "select" | "with", ..]
            | ["create" | "drop", "function" | "procedure", "seqmig", ".", ..]
    )
}

fn split_checked(file: &str, sql: &str) -> Result<Vec<RawStatement>, ParseError> {
    if let Some(at) = sql.find('\0') {
        let (line, column) = LineIndex::new(sql).position(at);
        return Err(ParseError::Split {
            file: file.into(),
            line,
            column,
            what: "binary data (NUL byte) in SQL input".into(),
        });
    }
    split_statements(sql).map_err(|e| match e {
        SplitError::Unterminated { what, line, column } => {
            ParseError::Split { file: file.into(), line, column, what: format!("unterminated {what}") }
        }
    })
}

fn read_file(path: &Path) -> Result<String, ParseError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| ParseError::Io { path: shown.clone(), error })?;
    decode(&shown, bytes)
}

/// UTF-8 text or a positioned error (binary garbage is not SQL).
fn decode(path: &str, bytes: Vec<u8>) -> Result<String, ParseError> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let text = String::from_utf8_lossy(valid);
        let (line, column) = LineIndex::new(&text).position(text.len());
        ParseError::Split {
            file: path.into(),
            line,
            column,
            what: "input is not UTF-8 text (binary file?)".into(),
        }
    })
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Whether `sql` (one or more statements) parses with the PostgreSQL dialect. For tests that
/// check generated SQL round-trips; comments alone count as valid.
///
/// sqlparser 0.64 lacks `DROP INDEX CONCURRENTLY` (PostgreSQL has had it since 9.2) and
/// `ALTER SEQUENCE`: the keyword is removed from the first, and the second is checked as the
/// equivalent `ALTER TABLE` form (same name and clause grammar is not available), so the rest
/// of the text is still checked.
pub fn parses(sql: &str) -> Result<(), String> {
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;
    let patched: String = sql
        .replace("DROP INDEX CONCURRENTLY ", "DROP INDEX ")
        .lines()
        .map(|l| {
            // Nor `CREATE INDEX … ON ONLY t` nor `ALTER INDEX i ATTACH PARTITION c` (both
            // PostgreSQL 11): checked as the index without ONLY, and as a rename of `i`.
            if l.starts_with("CREATE ") && l.contains(" INDEX ") {
                return l.replacen(" ON ONLY ", " ON ", 1);
            }
            if let Some(rest) = l.strip_prefix("ALTER INDEX ") {
                if let Some(at) = rest.find(" ATTACH PARTITION ") {
                    return format!("ALTER INDEX {} RENAME TO x;", &rest[..at]);
                }
            }
            l.to_string()
        })
        .map(|l| match l.strip_prefix("ALTER SEQUENCE ") {
            Some(rest) => {
                let end = [
                    " OWNED BY",
                    " AS ",
                    " INCREMENT",
                    " MINVALUE",
                    " NO ",
                    " MAXVALUE",
                    " START",
                    " CACHE",
                    ";",
                ]
                .iter()
                .filter_map(|k| rest.find(k))
                .min()
                .unwrap_or(rest.len());
                format!("ALTER TABLE {} RENAME TO x;", &rest[..end])
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    Parser::parse_sql(&PostgreSqlDialect {}, &patched).map(|_| ()).map_err(|e| e.to_string())
}

/// Every name a statement spells that could be a relation or type (`a`, `s.a`, `"S"."A"`),
/// read with seqmig's lexer; unqualified names resolve to `default_schema`. Callers keep
/// the ones their schema holds: this is how opaque statements are tied to modelled objects.
pub fn named_objects(sql: &str, default_schema: &str) -> Vec<crate::model::QualifiedName> {
    use crate::model::QualifiedName;
    let Ok(toks) = lex::tokenize(sql) else { return Vec::new() };
    let mut out: Vec<QualifiedName> = Vec::new();
    let is_name = |t: &lex::Tok| matches!(t.kind, lex::Kind::Word | lex::Kind::QuotedIdent);
    let mut i = 0;
    while i < toks.len() {
        if toks[i].kind == lex::Kind::Dollar {
            // A dollar-quoted body (`DO $$ … $$`, a function) is SQL too: read inside it.
            let quoted = &sql[toks[i].start..toks[i].end];
            let tag =
                quoted.find('$').and_then(|a| quoted[a + 1..].find('$').map(|b| a + b + 2)).unwrap_or(0);
            if tag > 0 && quoted.len() >= 2 * tag {
                for q in named_objects(&quoted[tag..quoted.len() - tag], default_schema) {
                    if !out.contains(&q) {
                        out.push(q);
                    }
                }
            }
            i += 1;
            continue;
        }
        if !is_name(&toks[i]) {
            i += 1;
            continue;
        }
        let dotted = toks.get(i + 1).is_some_and(|t| &sql[t.start..t.end] == ".")
            && toks.get(i + 2).is_some_and(is_name);
        let end = if dotted { i + 3 } else { i + 1 };
        let text = lex::normalized_text(sql, &toks[i..end]).replace(" . ", ".");
        if let Ok(q) = QualifiedName::parse_sql(&text, default_schema) {
            if !out.contains(&q) {
                out.push(q);
            }
        }
        i = end;
    }
    out
}
