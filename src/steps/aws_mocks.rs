//! The one way AWS step tests build an SDK client: its calls are answered by aws-smithy-mocks rules
//! and the SDK's own retries are off, so every scripted error reaches the step as it would after
//! the SDK gave up.

/// `mock_client!(aws_sdk_rds, RuleMode::MatchAny, &[&rule, ...])`: a client of that SDK crate.
macro_rules! mock_client {
    ($sdk:ident, $mode:expr, $rules:expr) => {{
        let rules: &[&aws_smithy_mocks::Rule] = $rules;
        let interceptor = rules
            .iter()
            .fold(aws_smithy_mocks::MockResponseInterceptor::new().rule_mode($mode), |i, rule| i.with_rule(rule));
        let config = $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new("us-west-2"))
            .credentials_provider($sdk::config::Credentials::new("AKIDTEST", "test-secret", None, None, "test"))
            .retry_config($sdk::config::retry::RetryConfig::disabled())
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(interceptor)
            .build();
        $sdk::Client::from_conf(config)
    }};
}

pub(crate) use mock_client;
