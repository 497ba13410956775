//! Turns changes into a DAG of steps in phases and the sealed [`Plan`] artifact.

mod artifact;

pub use artifact::*;
