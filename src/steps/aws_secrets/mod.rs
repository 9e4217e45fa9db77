//! AWS Secrets Manager: the `aws.secrets.read`, `aws.secrets.put`, `aws.secrets.restore_previous`
//! and `aws.secrets.rotate` step types, secret references ([`SecretRef`]) and [`resolve`].
//!
//! A secret's value never leaves memory: it is no step output, no log line, no error message and no
//! journal record. Steps hand on a reference (`secretsmanager://REGION/ID?version=V&key=K`) that a
//! consumer resolves at the moment of use ([`resolve`]). Values in memory are [`SecretValue`]s,
//! wiped when dropped; the SDK calls that carry one run with the SDK's trace-level dumps silenced
//! (module `quiet`), so no logging switch (`RUST_LOG=trace`, the SDK's `LOG_SENSITIVE_BODIES`)
//! prints one.

mod content;
mod preflight;
mod put;
mod quiet;
mod read;
pub mod reference;
mod restore;
mod rotate;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aws_sdk_secretsmanager::Client;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// The outputs of a step that makes a new AWSCURRENT version (put and rotate declare the same).
const NEW_VERSION_OUTPUTS: &[OutputSpec] = &[
    OutputSpec::string("version_id", "The id of the version now AWSCURRENT."),
    OutputSpec::string(
        "previous_version_id",
        "The version that was current before, now AWSPREVIOUS; absent when there was none.",
    )
    .optional(),
    OutputSpec::reference(
        "secret_ref",
        "A reference to the new version, `secretsmanager://REGION/ID?version=V`, never the value.",
    ),
    OutputSpec::reference("arn", "The secret's ARN."),
];

pub use put::{PutParams, SecretsPut};
pub use read::{ReadParams, SecretsRead};
pub use reference::SecretRef;
pub use restore::{RestoreParams, SecretsRestorePrevious};
pub use rotate::{RotateParams, SecretsRotate};

use crate::aws::{self, Aws};
use crate::plan::AwsSettings;
use crate::step::{OutputSpec, Outputs, StepError};

/// The staging label of the version in use.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The staging label Secrets Manager moves to the version AWSCURRENT left.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";
/// The staging label of a version a rotation is creating.
pub const AWSPENDING: &str = "AWSPENDING";

/// A secret's value in memory: no `Display`, a redacted `Debug`, overwritten with zeros when dropped
/// (best effort: copies the SDK or serde made on the way are not reachable).
pub struct SecretValue(String);

impl SecretValue {
    /// Takes ownership of `value`.
    pub fn new(value: String) -> Self {
        SecretValue(value)
    }

    /// The value, for handing to whatever needs it (an environment variable of a child process,
    /// a Kubernetes secret). Never log it or put it in an error.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Overwrites a string's whole buffer with zeros and leaves it empty.
fn wipe(text: &mut String) {
    let mut bytes = std::mem::take(text).into_bytes();
    let capacity = bytes.capacity();
    bytes.clear();
    bytes.resize(capacity, 0);
    std::hint::black_box(&bytes);
}

/// `error` with `value` (as is and JSON-escaped) replaced by `<redacted>`: for the errors of calls
/// that sent it, in case AWS quotes the input it refused.
pub(crate) fn redacted(mut error: StepError, value: &SecretValue) -> StepError {
    let raw = value.expose();
    if raw.len() >= 4 {
        let json = serde_json::to_string(raw).unwrap_or_default();
        for form in [raw, &json[1..json.len() - 1]] {
            error.message = error.message.replace(form, "<redacted>");
        }
    }
    error
}

/// Reads the secret `reference` points at, at the moment of use: the pinned version, and the key
/// if the reference names one (a string, or a number or boolean as its JSON text). Errors name the
/// secret, the version and the key, never a value.
pub async fn resolve(aws: &Aws, plan_aws: &AwsSettings, reference: &SecretRef) -> Result<SecretValue, StepError> {
    let client = Client::new(&aws.config(&reference.region, plan_aws).await);
    resolve_with(&client, reference).await
}

/// [`resolve`] with a given client (tests, or a caller that has one for the reference's region).
pub async fn resolve_with(client: &Client, reference: &SecretRef) -> Result<SecretValue, StepError> {
    let what = reference.describe();
    let action = format!("read {what}");
    let fetched = match fetch(client, &reference.secret_id, Version::Id(&reference.version_id), &action).await? {
        Fetch::Found(fetched) => fetched,
        Fetch::NotFound(e) => return Err(e),
    };
    let Some(key) = &reference.key else { return Ok(fetched.value) };
    let Some(json) = content::as_object(&fetched.value) else {
        return Err(StepError::fatal(format!(
            "cannot read {what}: the secret is not a JSON object, so it has no keys"
        )));
    };
    match json.0.get(key) {
        Some(serde_json::Value::String(s)) => Ok(SecretValue::new(s.clone())),
        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => Ok(SecretValue::new(v.to_string())),
        Some(_) => {
            Err(StepError::fatal(format!("cannot read {what}: key `{key}` holds a JSON object or list, not a string")))
        }
        None => Err(StepError::fatal(format!(
            "cannot read {what}: it has no key `{key}`; its keys are: {}",
            content::key_list(&json.0)
        ))),
    }
}

/// Where a step's Secrets Manager calls go: a region and the run's SDK configuration, or (in
/// tests) a given client.
pub(crate) struct Secrets {
    region: String,
    aws: Option<(Arc<Aws>, AwsSettings)>,
    client: OnceCell<Client>,
}

impl Secrets {
    fn new(aws: &Arc<Aws>, settings: &AwsSettings, region: String) -> Self {
        Secrets { region, aws: Some((aws.clone(), settings.clone())), client: OnceCell::new() }
    }

    /// Calls go to `client` (scripted responses in tests).
    #[cfg(test)]
    fn with_client(client: Client, region: &str) -> Self {
        Secrets { region: region.to_string(), aws: None, client: OnceCell::new_with(Some(client)) }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let (aws, settings) = self.aws.as_ref().expect("a client or the AWS configuration");
                Client::new(&aws.config(&self.region, settings).await)
            })
            .await
    }
}

/// Which version to read.
#[derive(Debug, Clone, Copy)]
enum Version<'a> {
    Stage(&'a str),
    Id(&'a str),
}

/// A version read with GetSecretValue.
struct Fetched {
    arn: String,
    version_id: String,
    value: SecretValue,
}

/// What GetSecretValue found.
enum Fetch {
    Found(Fetched),
    /// The secret, or the version asked for, does not exist; the error says so.
    NotFound(StepError),
}

/// Reads one version. Errors other than "not found" come back as `Err`; `action` says what was
/// attempted ("read secret `db` (AWSCURRENT) in us-west-2").
async fn fetch(client: &Client, secret_id: &str, version: Version<'_>, action: &str) -> Result<Fetch, StepError> {
    let request = client.get_secret_value().secret_id(secret_id);
    let (request, field) = match version {
        Version::Stage(stage) => (request.version_stage(stage), "with.secret_id"),
        Version::Id(id) => (request.version_id(id), "secret_ref"),
    };
    let mut output = match quiet::call(request.send()).await {
        Ok(output) => output,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
            return Ok(Fetch::NotFound(aws::step_error(&e, action, field)));
        }
        Err(e) => return Err(aws::step_error(&e, action, field)),
    };
    let Some(text) = output.secret_string.take() else {
        return Err(StepError::fatal(format!(
            "cannot {action}: it holds binary data (SecretBinary); these steps handle secret strings only"
        )));
    };
    Ok(Fetch::Found(Fetched {
        arn: output.arn.take().unwrap_or_default(),
        version_id: output.version_id.take().unwrap_or_default(),
        value: SecretValue::new(text),
    }))
}

/// A secret's metadata: its versions' staging labels and whether rotation is set up.
#[derive(Debug, Clone, Default)]
struct Described {
    arn: String,
    /// Version id → staging labels.
    stages: BTreeMap<String, Vec<String>>,
    /// A rotation Lambda is set, or rotation is on (managed rotation has no Lambda).
    rotation_configured: bool,
}

impl Described {
    /// The version carrying `label`.
    fn holder(&self, label: &str) -> Option<&str> {
        self.stages.iter().find(|(_, labels)| labels.iter().any(|l| l == label)).map(|(v, _)| v.as_str())
    }

    /// Whether `version` carries `label`.
    fn has(&self, version: &str, label: &str) -> bool {
        self.stages.get(version).is_some_and(|labels| labels.iter().any(|l| l == label))
    }

    /// The version carrying AWSCURRENT ("" when none).
    fn current(&self) -> &str {
        self.holder(AWSCURRENT).unwrap_or_default()
    }

    /// The version carrying AWSPREVIOUS ("" when none).
    fn previous(&self) -> &str {
        self.holder(AWSPREVIOUS).unwrap_or_default()
    }
}

/// DescribeSecret.
async fn describe(client: &Client, secret_id: &str, region: &str) -> Result<Described, StepError> {
    let output =
        client.describe_secret().secret_id(secret_id).send().await.map_err(|e| {
            aws::step_error(&e, &format!("describe secret `{secret_id}` in {region}"), "with.secret_id")
        })?;
    let stages = output
        .version_ids_to_stages()
        .map(|m| m.iter().map(|(v, labels)| (v.clone(), labels.clone())).collect())
        .unwrap_or_default();
    let lambda = output.rotation_lambda_arn().is_some_and(|arn| !arn.is_empty());
    Ok(Described {
        arn: output.arn().unwrap_or_default().to_string(),
        stages,
        rotation_configured: lambda || output.rotation_enabled() == Some(true),
    })
}

/// A `ClientRequestToken` (which becomes the new version's id) derived from `parts`: the same
/// parts give the same token, so Secrets Manager treats a repeated request as the same one. UUID
/// shaped, 36 characters (Secrets Manager wants 32 to 64).
fn token(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let hex: String = hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// The outputs the writing steps share: `version_id` (now AWSCURRENT), `previous_version_id`
/// (AWSPREVIOUS: what a failback restores), `secret_ref` (pinned to `version_id`) and `arn`.
fn version_outputs(region: &str, secret_id: &str, described: &Described, version_id: &str) -> Outputs {
    let reference = SecretRef {
        region: region.to_string(),
        secret_id: secret_id.to_string(),
        version_id: version_id.to_string(),
        key: None,
    };
    let mut outputs = Outputs::from([
        ("version_id".to_string(), version_id.to_string()),
        ("secret_ref".to_string(), reference.format()),
        ("arn".to_string(), described.arn.clone()),
    ]);
    // No AWSPREVIOUS (a secret's first version) is an absent output.
    outputs
        .extend(Some(described.previous()).filter(|p| !p.is_empty()).map(|p| ("previous_version_id".into(), p.into())));
    outputs
}

/// Builds `Secrets` for a step from its optional `region` parameter.
fn secrets(aws: &Arc<Aws>, region: Option<String>, context: &crate::step::BuildContext) -> Secrets {
    let region = region.unwrap_or_else(|| context.target_region().to_string());
    Secrets::new(aws, &context.plan.aws, region)
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_do_not_show() {
        let value = SecretValue::new("s3cr3t".into());
        assert_eq!(format!("{value:?}"), "SecretValue(<redacted>)");
        assert_eq!(value.expose(), "s3cr3t");
        let mut text = String::from("s3cr3t");
        wipe(&mut text);
        assert!(text.is_empty());
    }

    #[test]
    fn errors_quoting_a_sent_value_are_redacted() {
        let value = SecretValue::new(r#"{"password":"pa ss"}"#.into());
        let e = StepError::fatal(r#"cannot put: Value '{"password":"pa ss"}' or {\"password\":\"pa ss\"} is too long"#);
        assert_eq!(redacted(e, &value).message, "cannot put: Value '<redacted>' or <redacted> is too long");
    }

    #[test]
    fn tokens_are_stable_uuid_shaped_and_separate_their_parts() {
        let a = token(&[b"run-1", b"step", b"x"]);
        assert_eq!(a, token(&[b"run-1", b"step", b"x"]));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        assert_ne!(a, token(&[b"run-1", b"ste", b"px"]));
        assert_ne!(a, token(&[b"run-2", b"step", b"x"]));
    }
}
