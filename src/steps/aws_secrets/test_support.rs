//! Test support: Secrets Manager clients answered by aws-smithy-mocks rules, and one engine-like
//! attempt (observe → act → wait → verify).

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;

use crate::step::{Observation, Outputs, Step, StepContext, StepError};

/// A client whose calls are answered by the first matching rule; the SDK does not retry, so a
/// throttled call reaches the step as it would after the SDK's own retries ran out.
pub fn client(rules: &[&Rule]) -> Client {
    let interceptor =
        rules.iter().fold(MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny), |i, rule| i.with_rule(rule));
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-west-2"))
        .credentials_provider(Credentials::new("AKIDTEST", "test-secret", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    Client::from_conf(config)
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
    crate::steps::test_server::settle(step, ctx, &receipt).await?;
    Ok((step.verify(ctx, &receipt).await?, false))
}
