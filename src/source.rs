//! One door for every schema source (DESIGN.md §1 `SRC`): files, directories and stdin go to
//! the parser, `postgres://` URLs to introspection. Commands (`inspect`, `plan --from`, the
//! executor's drift check) call [`load_source`] and never care which it was.

use crate::db::{ConnectOptions, DbError};
use crate::introspect::IntrospectError;
use crate::parse::{LoadReport, Loaded, ParseError, SourceSpec};

/// Why a schema source could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Connect(#[from] DbError),
    /// Messages name the server (`user@host:port/db`) already.
    #[error(transparent)]
    Introspect(IntrospectError),
}

/// Loads `spec`: parses SQL, or connects and introspects a URL. Blocking (introspection runs
/// on its own small runtime), so callers need none; do not call it from inside a runtime.
pub fn load_source(spec: &SourceSpec) -> Result<Loaded, SourceError> {
    match spec {
        SourceSpec::Url(url) => {
            let opts = ConnectOptions::from_url(url)?;
            load_database(&opts)
        }
        other => Ok(crate::parse::load(other)?),
    }
}

/// Introspects the database `opts` points at. The report counts no statements: a catalog
/// has none, and nothing in it can be left unread.
pub fn load_database(opts: &ConnectOptions) -> Result<Loaded, SourceError> {
    match crate::introspect::introspect_url_blocking(opts) {
        Ok(schema) => Ok(Loaded { schema, report: LoadReport::default() }),
        // A connection failure already names the server; keep its message as it is.
        Err(IntrospectError::Db(e)) => Err(SourceError::Connect(e)),
        Err(e) => Err(SourceError::Introspect(e)),
    }
}
