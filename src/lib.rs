//! seqmig: plans a PostgreSQL schema change as a sequence of reversible releases
//! (expand → dual_write → backfill → switch → contract), runs them, and keeps the one
//! irreversible step behind a gate of recorded evidence.
//!
//! Modules follow the pipeline and depend downwards only:
//! `cli` → `render` → `plan` → `diff` → `model`; `parse` and `introspect` produce `model`.

pub mod cli;
pub mod cluster;
pub mod db;
pub mod finding;
pub mod introspect;
pub mod lint;
pub mod model;
pub mod parse;
pub mod plan;
