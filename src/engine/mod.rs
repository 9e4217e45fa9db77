//! The engine: runs a plan direction as a state machine, journaling every transition.
//!
//! It knows nothing of AWS or Kubernetes: step types plug in through [`crate::step::Step`], time
//! comes from an injected [`crate::clock::Clock`], and it speaks only in [`events::Event`]s.

mod dry_run;
pub mod events;
mod executor;
pub mod lifecycle;
mod outputs;
pub mod retry;
pub mod runs;
pub mod state;
mod step_task;
pub mod wait;

pub use dry_run::{DryRunStep, dry_run};
pub use executor::{Engine, EngineError};

#[cfg(test)]
mod tests;
