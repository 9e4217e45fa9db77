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

/// How long an RDS IAM authentication token is valid: 15 minutes, the most RDS accepts.
pub const RDS_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(900);

/// An RDS IAM database authentication token (the password for `user` at `host:port`): a SigV4
/// presigned `GET https://HOST:PORT/?Action=connect&DBUser=USER` for the service `rds-db` in
/// `region`, signed at `at` with `credentials` and valid for [`RDS_TOKEN_LIFETIME`], without its
/// `https://`. Made with aws-sigv4, the SDK's own signer.
pub fn rds_auth_token(
    host: &str,
    port: u16,
    user: &str,
    region: &str,
    credentials: &aws_sdk_rds::config::Credentials,
    at: std::time::SystemTime,
) -> Result<String, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
    let mut settings = SigningSettings::default();
    settings.expires_in = Some(RDS_TOKEN_LIFETIME);
    settings.signature_location = SignatureLocation::QueryParams;
    let identity = credentials.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("rds-db")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| format!("cannot sign an RDS authentication token: {e}"))?
        .into();
    let unsigned = format!("{host}:{port}/?Action=connect&DBUser={}", sigv4_encode(user));
    let url = format!("https://{unsigned}");
    let request = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::empty())
        .map_err(|e| format!("cannot sign an RDS authentication token for {host}:{port}: {e}"))?;
    let (instructions, _signature) =
        sign(request, &params).map_err(|e| format!("cannot sign an RDS authentication token: {e}"))?.into_parts();
    let mut token = unsigned;
    for (name, value) in instructions.params() {
        token.push_str(&format!("&{name}={}", sigv4_encode(value)));
    }
    Ok(token)
}

/// SigV4's URI encoding: everything but `A-Za-z0-9-_.~` as `%XX`.
pub(crate) fn sigv4_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
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

    /// The RDS IAM token of aws-sdk-rds's own test (`auth_token::test::signing_works`): fixed
    /// credentials and time give exactly this presigned URL.
    #[test]
    fn rds_tokens_match_the_sdks_sigv4_vector() {
        let credentials = aws_sdk_rds::config::Credentials::new("akid", "secret", None, None, "test");
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_724_709_600);
        let token =
            rds_auth_token("prod-instance.us-east-1.rds.amazonaws.com", 3306, "peccy", "us-east-1", &credentials, at)
                .unwrap();
        assert_eq!(
            token,
            "prod-instance.us-east-1.rds.amazonaws.com:3306/?Action=connect&DBUser=peccy&X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=akid%2F20240826%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20240826T220000Z\
             &X-Amz-Expires=900&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=dd0cba843009474347af724090233265628ace491ea17ce3eb3da098b983ad89"
        );
    }

    /// Temporary credentials put their session token in the URL; a user name is URL-encoded, and
    /// the generator in aws-sdk-rds agrees with ours for the same inputs.
    #[tokio::test]
    async fn rds_tokens_carry_the_session_token_and_agree_with_the_sdks_generator() {
        use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config};
        use aws_sdk_rds::config::{Credentials, SharedCredentialsProvider};
        let credentials = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI", Some("SESSION/TOKEN=".into()), None, "t");
        let at = humantime::parse_rfc3339("2026-11-30T02:00:00Z").unwrap();
        let token =
            rds_auth_token("db.abc.us-west-2.rds.amazonaws.com", 5432, "drctl", "us-west-2", &credentials, at).unwrap();
        assert!(token.contains("&X-Amz-Security-Token=SESSION%2FTOKEN%3D"), "{token}");
        assert!(token.contains("X-Amz-Credential=AKIDEXAMPLE%2F20261130%2Fus-west-2%2Frds-db%2Faws4_request"));
        let sdk_config = aws_config::SdkConfig::builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials.clone()))
            .time_source(aws_smithy_async::time::StaticTimeSource::new(at))
            .build();
        let generator = AuthTokenGenerator::new(
            Config::builder()
                .hostname("db.abc.us-west-2.rds.amazonaws.com")
                .port(5432)
                .region(Region::new("us-west-2"))
                .username("drctl")
                .build()
                .unwrap(),
        );
        assert_eq!(generator.auth_token(&sdk_config).await.unwrap().as_str(), token);
        let odd = rds_auth_token("db", 5432, "app user@x", "us-west-2", &credentials, at).unwrap();
        assert!(odd.starts_with("db:5432/?Action=connect&DBUser=app%20user%40x&"), "{odd}");
    }

    #[test]
    fn hints_point_at_the_plan_field() {
        assert!(hint("DBInstanceNotFound", "with.replica").contains("`with.replica`"));
        assert!(hint("NoSuchHostedZone", "with.zone_id").contains("`with.zone_id`"));
        assert!(hint("AccessDenied", "x").contains("IAM"));
        assert!(hint("InvalidParameterValue", "with.ttl").contains("`with.ttl`"));
    }
}
