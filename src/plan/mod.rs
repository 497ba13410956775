//! Turns changes into a DAG of steps in phases and the sealed [`Plan`] artifact.
//!
//! `steps/` holds one planner file per change kind; `build` wires their steps into the DAG
//! and orders it deterministically. Step SQL is rendered here (through `render`), because
//! the SQL is part of the sealed artifact.

mod artifact;
mod build;
pub mod draft;
pub mod expect;
pub mod inflight;
pub mod signature;
pub mod sqltext;
mod steps;

pub use artifact::*;
pub use build::{PlanError, Planned, StepNote, build};

use crate::diff::{Hints, diff};
use crate::model::Schema;
use crate::render::Renderer;

/// Diff and plan in one call.
pub fn plan(
    current: &Schema,
    desired: &Schema,
    hints: &Hints,
    renderer: &Renderer,
) -> Result<Planned, PlanError> {
    let (changes, findings) = diff(current, desired, hints);
    build(current, desired, &changes, findings, hints, renderer)
}
