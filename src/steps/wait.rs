//! `wait`: pause for a fixed time, such as letting DNS TTLs expire. The time counts from the step's
//! first start, so a run resumed after a crash waits only for what is left.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::HumanDuration;
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, ParamProblem, PlanContext, Receipt, Step, StepContext, StepError,
    TypedStep,
};

/// The `wait` step type.
pub struct Wait;

/// `with:` of a `wait` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitParams {
    /// How long to wait, counted from the step's first start: 30s, 15m, 1h30m.
    pub duration: HumanDuration,
    /// Why the run waits, shown in progress and reports ("let DNS TTLs expire").
    #[serde(default)]
    pub reason: Option<String>,
}

impl TypedStep for Wait {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Waits for `duration`, such as to let DNS TTLs expire. The time counts from the step's first \
            start, so a run resumed after a crash waits only for what is left.",
        example: r#"
duration: 60s
reason: let DNS TTLs expire
"#,
        failure: "",
    };
    type Params = WaitParams;
    const NAME: &'static str = "wait";
    const SUMMARY: &'static str =
        "Pauses for a fixed time, counted from the step's first start so a resumed run waits only for what is left.";
    const OUTPUTS: &'static [OutputSpec] = &[];

    /// A wait that does not fit in the step's timeout can only time out.
    fn check_in_plan(params: &WaitParams, plan: &PlanContext) -> Result<(), ParamProblem> {
        if params.duration.0 >= plan.timeout {
            return Err(ParamProblem::new(
                "duration",
                format!(
                    "the wait of {} is not shorter than the step's timeout of {}: the step could only time out; \
                     raise the step's `timeout`",
                    params.duration,
                    HumanDuration(plan.timeout)
                ),
            ));
        }
        Ok(())
    }

    fn build(&self, params: WaitParams, _context: &BuildContext) -> Box<dyn Step> {
        Box::new(WaitStep { duration: params.duration.0, reason: params.reason })
    }
}

struct WaitStep {
    duration: Duration,
    reason: Option<String>,
}

impl WaitStep {
    /// What is left of the wait at the clock's current time (never more than the whole wait). A
    /// wait so long that its end is past what the clock can hold is all still to come.
    fn remaining(&self, ctx: &StepContext) -> Duration {
        let Some(deadline) = ctx.first_started_at.checked_add(self.duration) else { return self.duration };
        deadline.duration_since(ctx.clock.now()).unwrap_or(Duration::ZERO).min(self.duration)
    }
}

#[async_trait]
impl Step for WaitStep {
    fn describe(&self) -> String {
        let duration = HumanDuration(self.duration);
        match &self.reason {
            Some(reason) => format!("wait {duration} ({reason})"),
            None => format!("wait {duration}"),
        }
    }

    /// A wait changes nothing, so there is nothing to find in place: `act` waits for what is left
    /// (nothing, when a resumed run comes back after the wait was over).
    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        Ok(Observation::NotDone)
    }

    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError> {
        let remaining = self.remaining(ctx);
        if !remaining.is_zero() {
            tracing::debug!(step = %ctx.step_id, "waiting {}", crate::clock::human_duration(remaining));
            ctx.sleep(remaining).await;
        }
        Ok(Receipt::NONE)
    }

    async fn verify(&self, _ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        Ok(Outputs::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::test_support::{build, build_error, ctx_started, t0};

    #[tokio::test(start_paused = true)]
    async fn a_fresh_wait_sleeps_the_whole_duration() {
        let step = build(&Wait, "duration: 15m\nreason: let DNS TTLs expire\n");
        assert_eq!(step.describe(), "wait 15m (let DNS TTLs expire)");
        let ctx = ctx_started(Duration::ZERO);
        assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
        step.act(&ctx).await.unwrap();
        assert_eq!(ctx.clock.now(), t0() + Duration::from_secs(15 * 60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_resumed_wait_sleeps_only_what_is_left() {
        let step = build(&Wait, "duration: 15m");
        let ctx = ctx_started(Duration::from_secs(10 * 60));
        assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
        step.act(&ctx).await.unwrap();
        assert_eq!(ctx.clock.now(), t0() + Duration::from_secs(5 * 60));

        let long_ago = ctx_started(Duration::from_secs(20 * 60));
        let before = long_ago.clock.now();
        step.act(&long_ago).await.unwrap();
        assert_eq!(long_ago.clock.now(), before, "a wait that is over does not wait again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_in_the_future_never_waits_longer_than_the_duration() {
        let step = build(&Wait, "duration: 1m");
        let mut ctx = ctx_started(Duration::ZERO);
        ctx.first_started_at = t0() + Duration::from_secs(3600);
        step.act(&ctx).await.unwrap();
        assert_eq!(ctx.clock.now(), t0() + Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_end_of_time_waits_without_overflowing() {
        // Built directly: validation may refuse such a duration, and the runtime must be safe anyway.
        let step = WaitStep { duration: Duration::MAX, reason: None };
        let ctx = ctx_started(Duration::ZERO);
        let waiting = tokio::time::timeout(Duration::from_secs(24 * 3600), step.act(&ctx)).await;
        assert!(waiting.is_err(), "still waiting a day later, and no panic");
    }

    #[test]
    fn bad_params_are_rejected() {
        assert!(build_error(&Wait, "duration: 15").contains("a duration such as 30s"));
        assert!(build_error(&Wait, "duration: 1m\nreasn: x").contains("unknown field `reasn`"));
        assert!(build_error(&Wait, "{}").contains("missing field `duration`"));
    }
}
