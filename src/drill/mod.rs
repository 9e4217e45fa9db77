//! Drill mode: a plan run against an emulated environment with a real fault injected, RTO and RPO
//! measured (from the fault to the DR region's first healthy answer; from heartbeats committed on
//! the old primary against those present on the new), a failback, checks that the environment is
//! back and nothing was left behind, and the evidence: JSON, Markdown, JUnit XML, an HTML timeline
//! and a postmortem draft.

pub mod definition;
pub mod environment;
pub mod evidence;
pub mod fence;
pub mod heartbeat;
pub mod probe;
pub mod report;
pub mod runner;
pub mod targets;
