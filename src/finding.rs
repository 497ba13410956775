//! Findings are data, not errors: what the parser, the planner and the linter tell the user
//! about a schema or a change. Every code is kebab-case and has a page in the book.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Blocks: `plan` and `lint` exit 1.
    Error,
    Warning,
}

/// Where in the input a finding or error points. Lines and columns are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Kebab-case code, such as `ambiguous-rename`.
    pub code: String,
    pub severity: Severity,
    /// The object concerned, in SQL spelling (`public.users.email`).
    pub object: String,
    /// The consequence, as a lowercase phrase.
    pub message: String,
    /// The remedy.
    pub help: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub span: Option<Span>,
}

impl Finding {
    pub fn new(
        code: &str,
        severity: Severity,
        object: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            code: code.to_string(),
            severity,
            object: object.into(),
            message: message.into(),
            help: String::new(),
            span: None,
        }
    }

    pub fn error(code: &str, object: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(code, Severity::Error, object, message)
    }

    pub fn warning(code: &str, object: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(code, Severity::Warning, object, message)
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }

    pub fn with_span(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}
