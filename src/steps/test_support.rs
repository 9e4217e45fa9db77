//! Support for the step types' unit tests: contexts on a test clock, a proxy-free HTTP client,
//! building steps from YAML, settling them as the engine does, and the tests' HTTP server.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::{Clock, TokioClock};
use crate::plan::yaml::parse;
use crate::step::{Receipt, Step, StepContext, StepError, StepKind};

/// The HTTP server the integration tests use too: one copy, in `tests/support/http.rs`.
#[path = "../../tests/support/http.rs"]
pub mod http;

/// The wall-clock time test clocks start at: 2025-01-01T12:00:00Z.
pub fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_732_800)
}

/// A context for step `step` of run `run-1`, first started `ago` before `t0()`, on a [`TokioClock`].
pub fn ctx_started(ago: Duration) -> StepContext {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(t0()));
    StepContext { run_id: "run-1".into(), step_id: "step".into(), attempt: 1, first_started_at: t0() - ago, clock }
}

/// A context for a step that starts now.
pub fn ctx() -> StepContext {
    ctx_started(Duration::ZERO)
}

/// An HTTP client that ignores proxy settings, so tests reach 127.0.0.1 directly.
pub fn client() -> reqwest::Client {
    super::client_builder().no_proxy().build().unwrap()
}

/// Builds a step of `kind` from YAML `with:` parameters.
pub fn build(kind: &dyn StepKind, yaml: &str) -> Box<dyn Step> {
    let node = parse(yaml).unwrap();
    let plan = crate::plan::Plan::minimal("test", "us-east-1", "us-west-2");
    let context = crate::step::BuildContext { plan: &plan, direction: crate::plan::Direction::Failover };
    match kind.build(&node, &context) {
        Ok(step) => step,
        Err(e) => panic!("{} at {}: {}", e.path, e.pos, e.message),
    }
}

/// The message with which building a step of `kind` from `yaml` fails.
pub fn build_error(kind: &dyn StepKind, yaml: &str) -> String {
    let node = parse(yaml).unwrap();
    match kind.check(&node) {
        Ok(()) => panic!("expected {yaml:?} to be rejected"),
        Err(e) => e.message,
    }
}

/// Polls `step` as the engine does (at once, then backing off; a few retryable errors tolerated)
/// until done, on the context's clock.
pub async fn settle(step: &dyn Step, ctx: &StepContext, receipt: &Receipt) -> Result<(), StepError> {
    struct Unjournaled;
    #[async_trait::async_trait]
    impl crate::engine::wait::WaitJournal for Unjournaled {
        async fn wait_error(&self, _: &StepError, _: u32) -> Result<(), StepError> {
            Ok(())
        }
    }
    let policy = crate::engine::wait::WaitPolicy::default();
    crate::engine::wait::wait(step, ctx, receipt, policy, &Unjournaled, &Default::default()).await
}
