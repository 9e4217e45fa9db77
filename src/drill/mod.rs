//! Drill mode: a plan run against an emulated environment with a real fault injected while a
//! synthetic client writes through the public name; RTO, RPO and split brain measured from what
//! that client lived through (see [`measure`]); a failback, checks that the environment is back and
//! nothing was left behind, and the evidence: JSON, Markdown, JUnit XML, an HTML timeline and a
//! postmortem draft.

pub mod client;
pub mod definition;
pub mod environment;
pub mod evidence;
pub mod fence;
pub mod heartbeat;
pub mod latency;
pub mod measure;
pub mod probe;
pub mod report;
pub mod rescale;
pub mod runner;
pub mod targets;
