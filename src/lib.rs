//! drctl: a disaster-recovery orchestrator. Plans of typed steps run under a journaled state machine
//! that survives crashes, with measured RTO and RPO.
//!
//! Modules mirror the concepts: [`plan`] (what to do), [`engine`] (doing it), [`journal`] (remembering
//! it), [`step`] and [`steps`] (the step contract and the step types), [`report`] (telling people),
//! [`cli`] (the `drctl` command). [`aws`] and [`k8s`] hold what the cloud step types share.

pub mod aws;
pub mod cli;
pub mod clock;
pub mod drill;
pub mod engine;
pub mod exit_code;
pub mod journal;
pub mod k8s;
pub mod plan;
pub mod readiness;
pub mod report;
/// The state store on S3 (journal objects and the plan lock as a lease), outside `journal` so that
/// the journal names no cloud crate.
pub mod state_s3;
pub mod step;
pub mod steps;
