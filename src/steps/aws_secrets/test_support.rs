//! Test support: Secrets Manager clients answered by aws-smithy-mocks rules, and one engine-like
//! attempt (observe → act → poll → verify).

use aws_sdk_secretsmanager::Client;
use aws_smithy_mocks::{Rule, RuleMode};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;

use crate::step::{Observation, Outputs, Step, StepContext, StepError};

/// A client whose calls are answered by the first matching rule; the SDK does not retry, so a
/// throttled call reaches the step as it would after the SDK's own retries ran out.
pub fn client(rules: &[&Rule]) -> Client {
    crate::steps::aws_mocks::mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, rules)
}

/// The HTTP answer Secrets Manager gives a throttled call.
pub fn throttled() -> Response {
    let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
    let mut response = Response::new(StatusCode::try_from(400).unwrap(), SdkBody::from(body));
    response.headers_mut().insert("content-type", "application/x-amz-json-1.1");
    response
}

/// One attempt as the engine makes it: `true` with the outputs when observation found it done.
pub async fn attempt(step: &dyn Step, ctx: &StepContext) -> Result<(Outputs, bool), StepError> {
    let receipt = match step.observe(ctx).await? {
        Observation::Done(outputs) => return Ok((outputs, true)),
        Observation::InProgress(receipt) => receipt,
        Observation::NotDone => step.act(ctx).await?,
    };
    crate::steps::test_support::settle(step, ctx, &receipt).await?;
    Ok((step.verify(ctx, &receipt).await?, false))
}
