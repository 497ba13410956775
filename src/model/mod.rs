//! The truth about a schema: identifiers with PostgreSQL's folding rules, tables, columns,
//! constraints, indexes, sequences, types, views and opaque objects. No I/O and no parser
//! types live here; `parse` and `introspect` produce these values, `diff` compares them.

pub mod ddl;
pub mod expr;
mod ident;
mod normalize;
mod partition;
mod schema;

pub use ident::{Ident, IdentError, MAX_IDENT_BYTES, QualifiedName, quote_ident, split_qualified};
pub use normalize::{dollar_tag, lower_outside_quotes, normalize_default, normalize_expr, normalize_type};
pub use partition::{Bound, Strategy, parse_bound};
pub use schema::*;
