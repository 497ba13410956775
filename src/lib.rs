//! seqmig: plans a PostgreSQL schema change as a sequence of reversible releases
//! (expand → dual_write → backfill → switch → contract), runs them, and keeps the one
//! irreversible step behind a gate of recorded evidence.
//!
//! Modules follow the pipeline and depend downwards only:
//! `cli` → `render` → `plan` → `diff` → `model`; `parse` and `introspect` produce `model`.

pub mod backfill;
pub mod cli;
pub mod db;
pub mod diff;
pub mod duration;
// Executor errors carry what was already done and who blocked; they are returned once per
// command, never in a hot loop, so their size does not matter.
#[allow(clippy::result_large_err)]
pub mod exec;
pub mod finding;
pub mod introspect;
pub mod ledger;
pub mod lint;
pub mod model;
pub mod parse;
pub mod plan;
pub mod rehearse;
pub mod render;
pub mod runbook;
pub mod runner;
pub mod scratch;
pub mod soak;
pub mod source;

/// The old path of [`scratch::local`], kept so code written before the move still builds.
#[doc(hidden)]
pub use scratch::local as cluster;
