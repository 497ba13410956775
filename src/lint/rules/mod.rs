//! The rules, one file per family, and [`RULES`]: every code with its severity, the lock it
//! concerns and the text of its book page (`book/src/lints/<code>.md` is generated from it
//! and checked by a test, so the page and the finding never disagree).

mod compat;
mod constraints;
mod data_loss;
mod hygiene;
mod indexes;
mod operations;
mod registry;
mod rewrites;
mod transactions;

pub use registry::{COMPAT, DATA as DATA_LOSS, RULES, RuleInfo, rule};

use super::Stmt;
use super::action::Name;
use super::context::Ctx;
use crate::finding::{Finding, FindingCode};

/// Collects findings for one statement, with the span and the registry's help filled in.
#[derive(Debug)]
pub struct Out<'s> {
    stmt: &'s Stmt,
    found: &'s mut Vec<Finding>,
}

impl Out<'_> {
    pub fn push(&mut self, code: FindingCode, object: impl std::fmt::Display, message: impl Into<String>) {
        let info = rule(code).unwrap_or_else(|| panic!("lint code '{code}' is missing from RULES"));
        self.found.push(
            Finding::new(code, info.severity, object.to_string(), message)
                .with_help(info.help)
                .with_span(self.stmt.span.clone()),
        );
    }

    pub fn push_with_help(
        &mut self,
        code: FindingCode,
        object: impl std::fmt::Display,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(code, object, message);
        if let Some(last) = self.found.last_mut() {
            last.help = help.into();
        }
    }
}

/// Runs every rule on every action of `s`, updating the file state after each action.
pub fn check_statement(s: &Stmt, cx: &mut Ctx<'_>, found: &mut Vec<Finding>) {
    for a in &s.actions {
        let mut out = Out { stmt: s, found: &mut *found };
        transactions::check(s, a, cx, &mut out);
        data_loss::check(a, cx, &mut out);
        compat::check(a, cx, &mut out);
        indexes::check(a, cx, &mut out);
        constraints::check(a, cx, &mut out);
        rewrites::check(a, cx, &mut out);
        hygiene::check(a, cx, &mut out);
        cx.apply(a, &s.span);
    }
    let mut out = Out { stmt: s, found };
    operations::check_statement(s, cx, &mut out);
}

/// Rules that can only judge at the end of the file (an unclosed transaction, a foreign key
/// no later statement indexed).
pub fn finish(stmts: &[Stmt], cx: &mut Ctx<'_>, found: &mut Vec<Finding>) {
    transactions::finish(stmts, cx, found);
    constraints::finish(stmts, cx, found);
}

/// A short object name for messages: `public.t` is written `t`.
pub(crate) fn short(n: &Name) -> String {
    if n.schema == "public" { crate::model::quote_ident(&n.name) } else { n.to_string() }
}

pub(crate) fn column(t: &Name, c: &str) -> String {
    format!("{}.{}", short(t), crate::model::quote_ident(c))
}

/// A finding for a statement other than the current one (end-of-file rules).
pub(crate) fn finding_at(code: FindingCode, s: &Stmt, object: String, message: String) -> Finding {
    let info = rule(code).unwrap_or_else(|| panic!("lint code '{code}' is missing from RULES"));
    Finding::new(code, info.severity, object, message).with_help(info.help).with_span(s.span.clone())
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::lint::{LintConfig, lint_source};

    /// The codes `sql` produces, in order.
    pub fn codes(sql: &str) -> Vec<&'static str> {
        codes_with(sql, &LintConfig::default())
    }

    pub fn codes_with(sql: &str, config: &LintConfig) -> Vec<&'static str> {
        lint_source("t.sql", sql, config).unwrap().into_iter().map(|f| f.code.as_str()).collect()
    }
}
