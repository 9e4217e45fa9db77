//! What the AWS step types share: SDK configuration per region, with the endpoint override that
//! lets moto or LocalStack stand in for AWS, and SDK errors turned into step errors that say
//! whether a retry can help and which plan field to fix.

use std::collections::HashMap;
use std::error::Error as _;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::sync::Mutex;

use crate::plan::AwsSettings;
use crate::step::StepError;

/// SDK configurations, loaded once per (region, endpoint, profile) and shared by every AWS step
/// of a run.
#[derive(Default)]
pub struct Aws {
    /// `--endpoint-url`: wins over the plan's `aws.endpoint_url` and `AWS_ENDPOINT_URL`.
    endpoint_override: Option<String>,
    configs: Mutex<HashMap<ConfigKey, SdkConfig>>,
}

/// Region, endpoint and profile: what makes two SDK configurations differ.
type ConfigKey = (String, Option<String>, Option<String>);

impl Aws {
    /// AWS access for a run; `endpoint_override` comes from `--endpoint-url`.
    pub fn new(endpoint_override: Option<String>) -> Self {
        Aws { endpoint_override, configs: Mutex::default() }
    }

    /// The endpoint calls go to, if not AWS itself: `--endpoint-url`, else the plan's
    /// `aws.endpoint_url`, else `AWS_ENDPOINT_URL` (which the SDK also reads on its own).
    pub fn endpoint(&self, plan: &AwsSettings) -> Option<String> {
        self.endpoint_override
            .clone()
            .or_else(|| plan.endpoint_url.clone())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty()))
    }

    /// The SDK configuration for `region`: the standard credential chain (environment, profiles,
    /// SSO, instance roles), the plan's profile, and the endpoint override.
    pub async fn config(&self, region: &str, plan: &AwsSettings) -> SdkConfig {
        let endpoint = self.endpoint(plan);
        let key = (region.to_string(), endpoint.clone(), plan.profile.clone());
        let mut configs = self.configs.lock().await;
        if let Some(config) = configs.get(&key) {
            return config.clone();
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_string()));
        if let Some(url) = &endpoint {
            loader = loader.endpoint_url(url);
        }
        if let Some(profile) = &plan.profile {
            loader = loader.profile_name(profile);
        }
        let config = loader.load().await;
        configs.insert(key, config.clone());
        config
    }
}

/// Error codes that mean "slow down" or "try again": retrying can help.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalError",
    "InternalServiceError",
    "InternalServiceErrorException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// How AWS step types fail, as `drctl explain` says it: what [`step_error`] retries.
pub const STEP_FAILURES: &str = "Throttling, 5xx answers, timeouts and connection failures are retried; invalid \
                                 input, a missing resource and access denied fail at once with AWS's error code \
                                 and the parameter to fix.";

/// Turns an SDK error into a step error. `action` says what was attempted ("promote the read
/// replica `db-1` in us-west-2"); `field` names the plan field to check when AWS says the input is
/// wrong or absent (`with.replica`). Throttling, 5xx answers, timeouts and connection failures are
/// retryable; everything else fails fast with AWS's error code.
pub fn step_error<E>(error: &SdkError<E, HttpResponse>, action: &str, field: &str) -> StepError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error {
        SdkError::ServiceError(context) => {
            let err = context.err();
            let status = context.raw().status().as_u16();
            let code = err.code().unwrap_or("Unknown");
            let text = match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("cannot {action}: AWS answered {code}: {message}"),
                (Some(code), None) => format!("cannot {action}: AWS answered {code}"),
                (None, _) => format!("cannot {action}: the endpoint answered HTTP {status} without an AWS error"),
            };
            if RETRYABLE_CODES.contains(&code) || status >= 500 || status == 429 {
                StepError::retryable(text)
            } else {
                StepError::fatal(format!("{text}; {}", hint(code, field)))
            }
        }
        SdkError::TimeoutError(_) => StepError::retryable(format!("cannot {action}: the AWS call timed out")),
        SdkError::DispatchFailure(failure) => {
            let cause = failure
                .as_connector_error()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "the request could not be sent".into());
            StepError::retryable(format!("cannot {action}: {cause} (check the network and the endpoint)"))
        }
        SdkError::ResponseError(_) => StepError::retryable(format!("cannot {action}: AWS's answer could not be read")),
        SdkError::ConstructionFailure(_) => {
            let cause = error.source().map(|e| e.to_string()).unwrap_or_default();
            StepError::fatal(format!("cannot {action}: the request is invalid ({cause}); check `{field}`"))
        }
        _ => StepError::retryable(format!("cannot {action}: {error}")),
    }
}

/// What to do about a non-retryable AWS error code.
fn hint(code: &str, field: &str) -> String {
    let lower = code.to_ascii_lowercase();
    if lower.contains("notfound") || lower.starts_with("nosuch") {
        format!("it does not exist where the step looked: check `{field}` and the step's `region`")
    } else if lower.contains("accessdenied") || lower.contains("unauthorized") || lower.contains("forbidden") {
        "the credentials in use lack the permission: check the IAM policy of the role or profile drctl runs with".into()
    } else if lower.contains("credential") || lower.contains("token") || lower.contains("signature") {
        "the AWS credentials were refused: check the profile, `aws sso login`, or the environment".into()
    } else if lower.contains("invalid") || lower.contains("validation") || lower.contains("malformed") {
        format!("AWS rejected the input: check `{field}`")
    } else {
        format!("check `{field}` and the state of the resource")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_point_at_the_plan_field() {
        assert!(hint("DBInstanceNotFound", "with.replica").contains("`with.replica`"));
        assert!(hint("NoSuchHostedZone", "with.zone_id").contains("`with.zone_id`"));
        assert!(hint("AccessDenied", "x").contains("IAM"));
        assert!(hint("InvalidParameterValue", "with.ttl").contains("`with.ttl`"));
    }
}
