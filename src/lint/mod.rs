//! `seqmig lint`: judges hand-written migration files statement by statement, the way squawk,
//! strong_migrations and eugene do, and hands back [`Finding`]s (code, severity, object, the
//! consequence, the remedy, the span) for `cli::lint` to print as text, JSON, GitHub
//! annotations or SARIF.
//!
//! This is the second module that imports sqlparser, next to `parse/`, on purpose: `parse/`
//! turns DDL into a [`crate::model::Schema`], which forgets exactly what a linter needs (the
//! statement order, `BEGIN`/`COMMIT`, `CONCURRENTLY`, `NOT VALID`, `SET lock_timeout`, which
//! statement said what). So lint reads the statements itself, through
//! [`crate::parse::split_statements`] and sqlparser's AST, into its own small vocabulary
//! ([`action::Action`]); where sqlparser 0.64 rejects a statement PostgreSQL accepts, a
//! token-level reader (`fallback`) produces the same vocabulary so the rules still fire.
//!
//! The rules live in `rules/`, one file per family with its tests; [`rules::RULES`] lists
//! every code with its severity and book text. File-level state (transactions, tables the
//! file created, constraints added `NOT VALID`, timeouts set) is in `context`.

pub mod action;
mod classify;
mod context;
mod fallback;
pub mod format;
pub mod rules;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::finding::{Finding, FindingCode, Severity, Span};
use crate::parse::split_statements;
use action::Action;
pub use context::Carry;
use context::Ctx;

/// How the linter is configured: `[lint]` in `seqmig.toml`, then command-line flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintConfig {
    /// The PostgreSQL major version the migrations run on (fast defaults since 11,
    /// `REINDEX CONCURRENTLY` since 12, `DETACH … CONCURRENTLY` since 14, `NOT NULL … NOT
    /// VALID` since 18).
    pub pg_version: u32,
    /// Codes that are never reported.
    pub allow: BTreeSet<FindingCode>,
    /// Codes reported as errors even when their default severity is warning.
    pub deny: BTreeSet<FindingCode>,
    /// The migration runner wraps every file in a transaction (Rails, Flyway, sqlx, …).
    pub assume_in_transaction: bool,
}

impl Default for LintConfig {
    fn default() -> Self {
        LintConfig {
            pg_version: 15,
            allow: BTreeSet::new(),
            deny: BTreeSet::new(),
            assume_in_transaction: false,
        }
    }
}

/// `[lint]` as written: the codes are still text, so that an unknown one is refused by
/// [`lint_code`] with its own message rather than by serde's list of every variant.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawLintConfig {
    pg_version: u32,
    allow: Vec<String>,
    deny: Vec<String>,
    assume_in_transaction: bool,
}

impl Default for RawLintConfig {
    fn default() -> Self {
        let d = LintConfig::default();
        RawLintConfig {
            pg_version: d.pg_version,
            allow: Vec::new(),
            deny: Vec::new(),
            assume_in_transaction: d.assume_in_transaction,
        }
    }
}

impl LintConfig {
    /// Reads the `[lint]` table of a `seqmig.toml`; other tables are someone else's.
    pub fn from_toml(text: &str) -> Result<LintConfig, LintError> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            lint: Option<toml::Value>,
        }
        let file: File = toml::from_str(text).map_err(|e| LintError::Config(e.to_string()))?;
        let raw: RawLintConfig = match file.lint {
            Some(v) => v.try_into().map_err(|e: toml::de::Error| LintError::Config(e.to_string()))?,
            None => RawLintConfig::default(),
        };
        let codes = |names: &[String]| names.iter().map(|c| lint_code(c)).collect::<Result<_, _>>();
        Ok(LintConfig {
            pg_version: raw.pg_version,
            allow: codes(&raw.allow)?,
            deny: codes(&raw.deny)?,
            assume_in_transaction: raw.assume_in_transaction,
        })
    }
}

/// The lint code `name` spells. Refuses unknown codes, and codes of `seqmig plan` the linter
/// never reports, so a typo does not silently allow nothing.
pub fn lint_code(name: &str) -> Result<FindingCode, LintError> {
    match name.parse::<FindingCode>() {
        Ok(code) if rules::rule(code).is_some() => Ok(code),
        Ok(_) => Err(LintError::PlanCode(name.to_string())),
        Err(_) => Err(LintError::UnknownCode(name.to_string())),
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LintError {
    #[error("failed to read '{path}': {source}")]
    Io { path: String, source: std::io::Error },
    #[error("'{path}' is a directory with no .sql files")]
    EmptyDir { path: String },
    #[error("{file}:{line}:{column}: {what}")]
    Split { file: String, line: usize, column: usize, what: String },
    #[error("invalid [lint] configuration: {0}")]
    Config(String),
    #[error("unknown lint code '{0}'; 'seqmig lint --list' shows every code")]
    UnknownCode(String),
    #[error("'{0}' is a finding of 'seqmig plan', not a lint code; 'seqmig lint --list' shows every code")]
    PlanCode(String),
}

/// One linted file: its text (for excerpts) and what was found, in source order.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: String,
    pub source: String,
    pub findings: Vec<Finding>,
}

/// Expands files and directories (their `.sql` files in name order) and lints each.
pub fn lint_paths(paths: &[PathBuf], config: &LintConfig) -> Result<Vec<FileReport>, LintError> {
    lint_paths_after(paths, config, Carry::default())
}

/// [`lint_paths`] for migrations that run against a schema `start` summarises
/// ([`Carry::from_schema`]).
pub fn lint_paths_after(
    paths: &[PathBuf],
    config: &LintConfig,
    start: Carry,
) -> Result<Vec<FileReport>, LintError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|source| io_err(p, source))?;
            let mut sql: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "sql"))
                .collect();
            if sql.is_empty() {
                return Err(LintError::EmptyDir { path: p.display().to_string() });
            }
            sql.sort();
            files.extend(sql);
        } else {
            files.push(p.clone());
        }
    }
    // Files are linted in order, each inheriting what the earlier ones established (a CHECK
    // validated in `002_backfill.sql` lets `003_contract.sql` SET NOT NULL without a scan).
    let mut carry = start;
    files
        .iter()
        .map(|f| {
            let source = std::fs::read_to_string(f).map_err(|source| io_err(f, source))?;
            let path = f.display().to_string();
            let findings = lint_source_after(&path, &source, config, &mut carry)?;
            Ok(FileReport { path, source, findings })
        })
        .collect()
}

fn io_err(p: &Path, source: std::io::Error) -> LintError {
    LintError::Io { path: p.display().to_string(), source }
}

/// One statement as the rules see it.
#[derive(Debug, Clone)]
pub struct Stmt {
    pub text: String,
    pub span: Span,
    pub actions: Vec<Action>,
    /// Codes suppressed on this statement (`-- seqmig:ignore code`).
    pub ignored: Suppressed,
}

/// Lints one file's text. `file` is only used in spans.
pub fn lint_source(file: &str, sql: &str, config: &LintConfig) -> Result<Vec<Finding>, LintError> {
    lint_source_after(file, sql, config, &mut Carry::default())
}

/// Lints one file that runs after the files `carry` summarises, and extends `carry`.
pub fn lint_source_after(
    file: &str,
    sql: &str,
    config: &LintConfig,
    carry: &mut Carry,
) -> Result<Vec<Finding>, LintError> {
    let raw =
        split_statements(sql).map_err(|crate::parse::SplitError::Unterminated { what, line, column }| {
            LintError::Split { file: file.to_string(), line, column, what: format!("unterminated {what}") }
        })?;
    let raw: Vec<_> = raw.into_iter().filter(|r| !r.meta).collect();
    let file_ignored = suppressions(sql, "seqmig:ignore-file");

    let mut stmts: Vec<Stmt> = raw
        .iter()
        .map(|r| Stmt {
            text: r.text.clone(),
            span: r.span(file),
            actions: read_actions(&r.text),
            ignored: suppressions(&r.text, "seqmig:ignore"),
        })
        .collect();
    // Comments between statements belong to the next statement, unless they sit on the line
    // where the previous statement ended (`ALTER …; -- seqmig:ignore code`).
    let lines = crate::parse::LineIndex::new(sql);
    let mut prev_end = 0usize;
    let mut prev_end_line = 0usize;
    for i in 0..=raw.len() {
        let next = raw.get(i).map(|r| r.offset).unwrap_or(sql.len());
        let gap = &sql[prev_end.min(next)..next];
        for (line_no, line) in gap.lines().enumerate() {
            let codes = suppressions(line, "seqmig:ignore");
            if codes.is_empty() {
                continue;
            }
            let same_line = line_no == 0 && i > 0 && lines.position(prev_end).0 == prev_end_line;
            let target = if same_line || i == raw.len() { i.saturating_sub(1) } else { i };
            if let Some(s) = stmts.get_mut(target) {
                s.ignored.extend(codes);
            }
        }
        if let Some(r) = raw.get(i) {
            prev_end = (r.offset + r.text.len() + 1).min(sql.len());
            prev_end_line = lines.position(r.offset + r.text.len()).0;
        }
    }

    let mut cx = Ctx::new(config, std::mem::take(carry));
    let mut out = Vec::new();
    for s in &stmts {
        let mut found = Vec::new();
        rules::check_statement(s, &mut cx, &mut found);
        found.retain(|f| !s.ignored.covers(f.code));
        out.extend(found);
    }
    let mut tail = Vec::new();
    rules::finish(&stmts, &mut cx, &mut tail);
    tail.retain(|f| {
        let s = stmts.iter().find(|s| Some(&s.span) == f.span.as_ref());
        !s.is_some_and(|s| s.ignored.covers(f.code))
    });
    out.extend(tail);
    // A renamed table with a view under its old name in the same file is the compatibility
    // recipe: the previous release keeps reading and writing through the view.
    let views: BTreeSet<String> = cx.views.iter().map(rules::short).collect();
    out.retain(|f| !(f.code == FindingCode::RenameTable && views.contains(&f.object)));
    *carry = cx.carry();

    // seqmig's own plan files: in `switch` (the release point, after which the new release
    // owns the shape) and `contract` (which `seqmig apply` runs only when the soak gate is
    // open) renames and drops are the plan's intended one-way steps, not accidents. They stay
    // visible as warnings; lock and rewrite findings keep their severity.
    if let Some(phase @ ("switch" | "contract")) = plan_phase(sql) {
        for f in &mut out {
            let family = rules::rule(f.code).map(|r| r.family);
            if matches!(family, Some(rules::DATA_LOSS | rules::COMPAT)) && f.is_error() {
                f.severity = Severity::Warning;
                f.message.push_str(&format!(
                    " (planned by seqmig for the {phase} phase: {})",
                    if phase == "switch" {
                        "the release point, after the new release owns the shape"
                    } else {
                        "it runs only once the soak gate is open"
                    }
                ));
            }
        }
    }

    out.retain(|f| !config.allow.contains(&f.code) && !file_ignored.covers(f.code));
    for f in &mut out {
        if config.deny.contains(&f.code) {
            f.severity = Severity::Error;
        }
    }
    out.sort_by(|a, b| a.span.cmp(&b.span).then_with(|| a.code.cmp(&b.code)));
    out.dedup();
    Ok(out)
}

/// Reads the actions of one statement: sqlparser first, the token reader when it refuses.
fn read_actions(text: &str) -> Vec<Action> {
    if starts_with_words(text, &["create", "materialized", "view"])
        || starts_with_words(text, &["create", "view"])
        || starts_with_words(text, &["create", "or", "replace", "view"])
    {
        // Only the name matters (it is new); its query is not worth parsing.
        return fallback::tokens(text)
            .map(|t| fallback::classify_tokens(&t))
            .unwrap_or_else(|| vec![Action::Other]);
    }
    if !worth_parsing(text) {
        return vec![Action::Other];
    }
    match Parser::parse_sql(&PostgreSqlDialect {}, text) {
        Ok(parsed) if !parsed.is_empty() => parsed.iter().flat_map(classify::classify).collect(),
        _ => fallback::tokens(text)
            .map(|t| fallback::classify_tokens(&t))
            .unwrap_or_else(|| vec![Action::Other]),
    }
}

/// Statements no rule judges (functions, views, grants, comments, inserts) are not parsed:
/// most of a pg_dump file is function bodies, and parsing them would only cost time.
fn worth_parsing(text: &str) -> bool {
    let mut words = text.split_ascii_whitespace().map(|w| w.to_ascii_lowercase());
    let first = words.next().unwrap_or_default();
    match first.as_str() {
        "create" => {
            let mut second = words.next().unwrap_or_default();
            while matches!(second.as_str(), "unique" | "unlogged" | "temporary" | "temp" | "global" | "local")
            {
                second = words.next().unwrap_or_default();
            }
            // `CREATE OR REPLACE FUNCTION …` bodies are most of a dump: never parsed.
            matches!(second.as_str(), "table" | "index")
        }
        "alter" | "drop" | "truncate" | "update" | "delete" | "set" | "begin" | "start" | "commit"
        | "end" | "rollback" | "abort" | "vacuum" | "cluster" | "reindex" | "with" => true,
        _ => first.starts_with("begin") || first.starts_with("commit"),
    }
}

/// The phase of a file `seqmig plan --format sql --out DIR` wrote, from its header:
/// `-- seqmig plan sha256:…` then `-- phase N: <name> (…)`.
fn plan_phase(sql: &str) -> Option<&str> {
    let mut lines = sql.lines();
    lines.next()?.starts_with("-- seqmig plan ").then_some(())?;
    let rest = lines.next()?.strip_prefix("-- phase ")?;
    rest.split(':').nth(1)?.split_whitespace().next()
}

fn starts_with_words(text: &str, words: &[&str]) -> bool {
    let mut it = text.split_ascii_whitespace();
    words.iter().all(|w| it.next().is_some_and(|x| x.eq_ignore_ascii_case(w)))
}

/// What `-- seqmig:ignore …` comments silence: every code (a bare marker), or the codes named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suppressed {
    pub all: bool,
    /// Names that spell no code are dropped: they cannot silence anything.
    pub codes: BTreeSet<FindingCode>,
}

impl Suppressed {
    pub fn covers(&self, code: FindingCode) -> bool {
        self.all || self.codes.contains(&code)
    }

    fn is_empty(&self) -> bool {
        !self.all && self.codes.is_empty()
    }

    fn extend(&mut self, other: Suppressed) {
        self.all |= other.all;
        self.codes.extend(other.codes);
    }
}

/// Codes named after `marker` in comments of `text`: `-- seqmig:ignore a, b` → {a, b}; a bare
/// marker means every code.
fn suppressions(text: &str, marker: &str) -> Suppressed {
    let mut out = Suppressed::default();
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let after = &rest[at + marker.len()..];
        // `seqmig:ignore` must not match the prefix of `seqmig:ignore-file`.
        if after.starts_with('-') {
            rest = after;
            continue;
        }
        let line = after.split(['\n', '*']).next().unwrap_or("");
        let codes: Vec<String> = line
            .split([',', ' ', '\t'])
            .map(str::trim)
            .take_while(|w| w.is_empty() || w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        if codes.is_empty() {
            out.all = true;
        }
        out.codes.extend(codes.iter().filter_map(|c| c.parse::<FindingCode>().ok()));
        rest = after;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(sql: &str) -> Vec<&'static str> {
        lint_source("m.sql", sql, &LintConfig::default())
            .unwrap()
            .into_iter()
            .map(|f| f.code.as_str())
            .collect()
    }

    #[test]
    fn suppression_comments_on_the_statement_or_the_line_before() {
        let sql = "SET lock_timeout = '1s'; SET statement_timeout = '1min';\n-- seqmig:ignore drop-table\nDROP TABLE a;\nDROP TABLE b; -- seqmig:ignore drop-table\nDROP TABLE c;";
        assert_eq!(codes(sql), vec!["drop-table"]);
        assert_eq!(codes("-- seqmig:ignore-file drop-table\nDROP TABLE a;\nDROP TABLE b;").len(), 2);
        assert!(codes("DROP TABLE a; -- seqmig:ignore\n").is_empty());
    }

    #[test]
    fn config_allows_and_denies() {
        let config =
            LintConfig::from_toml("[lint]\nallow = [\"drop-table\"]\ndeny = [\"drop-not-null\"]\n").unwrap();
        let sql = "SET lock_timeout = '1s'; SET statement_timeout = '1min';\nDROP TABLE a; ALTER TABLE b ALTER COLUMN c DROP NOT NULL;";
        let f = lint_source("m.sql", sql, &config).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].code.as_str(), f[0].severity), ("drop-not-null", Severity::Error));
        assert!(matches!(
            LintConfig::from_toml("[lint]\nallow = [\"no-such\"]"),
            Err(LintError::UnknownCode(_))
        ));
        assert_eq!(LintConfig::from_toml("[plan]\nallow_one_way = []\n").unwrap(), LintConfig::default());
    }

    #[test]
    fn seqmig_plan_switch_and_contract_files_keep_drops_and_renames_as_warnings() {
        let header = "-- seqmig plan sha256:abc\n-- phase 5: contract (1 step)\n";
        let sql = format!(
            "{header}SET lock_timeout = '1s'; SET statement_timeout = '1min';\nALTER TABLE t DROP COLUMN a;\nALTER TABLE t ADD CONSTRAINT c CHECK (b > 0);"
        );
        let f = lint_source("5-contract.sql", &sql, &LintConfig::default()).unwrap();
        let got: Vec<(&str, Severity)> = f.iter().map(|f| (f.code.as_str(), f.severity)).collect();
        assert_eq!(
            got,
            vec![("drop-column", Severity::Warning), ("check-without-not-valid", Severity::Error)]
        );
        assert!(f[0].message.ends_with("it runs only once the soak gate is open)"), "{}", f[0].message);
        let expand = sql.replace("phase 5: contract", "phase 1: expand");
        assert_eq!(
            lint_source("1-expand.sql", &expand, &LintConfig::default()).unwrap()[0].severity,
            Severity::Error
        );
    }

    #[test]
    fn function_bodies_are_not_parsed() {
        // They are most of a pg_dump file; parsing them made the corpus benchmark 5x slower.
        assert!(!worth_parsing("CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql"));
        assert!(!worth_parsing("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql"));
        assert!(worth_parsing("CREATE UNIQUE INDEX i ON t (a)"));
        assert!(worth_parsing("alter table t add column a int"));
    }

    #[test]
    fn unterminated_quotes_are_errors_with_positions() {
        let err = lint_source("m.sql", "SELECT 1;\nSELECT 'abc", &LintConfig::default()).unwrap_err();
        assert_eq!(err.to_string(), "m.sql:2:8: unterminated string literal");
    }
}
