//! The truth about a schema: identifiers with PostgreSQL's folding rules, tables, columns,
//! constraints, indexes, sequences, types, views and opaque objects. No I/O and no parser
//! types live here; `parse` and `introspect` produce these values, `diff` compares them.
//! Where a model value is read from SQL text (a partition bound, a qualified name, a type
//! spelling) the reading is `parse`'s leaf modules, `parse::text` and `parse::normalize`.

pub mod ddl;
pub mod expr;
mod ident;
mod partition;
mod schema;

pub use ident::{Ident, IdentError, MAX_IDENT_BYTES, QualifiedName, quote_ident};
pub use partition::{Bound, Strategy, parse_bound};
pub use schema::*;
