//! `aws.secrets.read`: checks that a secret (and a key of its JSON) exists and hands on a reference
//! to the version read, never the value: the runbook's
//! `aws secretsmanager get-secret-value --secret-id dr-database-url | jq -r .DATABASE_URL`.

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{AWSCURRENT, Fetch, SecretRef, Secrets, Version, content, fetch, secrets};
use crate::aws::Aws;
use crate::step::{BuildContext, Observation, OutputSpec, Outputs, Receipt, Step, StepContext, StepError, TypedStep};

/// The `aws.secrets.read` step type.
pub struct SecretsRead {
    pub aws: Arc<Aws>,
}

/// `with:` of an `aws.secrets.read` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadParams {
    /// The secret's name or ARN.
    #[schemars(length(min = 1))]
    pub secret_id: String,
    /// A key of the secret's JSON object that must exist; the reference then points at it.
    #[serde(default)]
    pub key: Option<String>,
    /// The region of the secret (default: the region the run moves to).
    #[serde(default)]
    pub region: Option<String>,
    /// The staging label of the version to read (default AWSCURRENT).
    #[serde(default)]
    pub version_stage: Option<String>,
}

impl TypedStep for SecretsRead {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Checks that a Secrets Manager secret exists (and, with `key`, that its JSON has that key) and \
            hands on a reference to the version read, never the value. Steps that take a `secretsmanager://` \
            reference, such as `kube.write_secret`, resolve it in memory when they use it.",
        example: r#"
secret_id: app/database
key: password
"#,
        failure: crate::aws::STEP_FAILURES,
    };
    type Params = ReadParams;
    const NAME: &'static str = "aws.secrets.read";
    const SUMMARY: &'static str = "Checks that a Secrets Manager secret (and a JSON key of it) exists and outputs a \
                                   reference to the version read, never its value.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::reference(
            "secret_ref",
            "`secretsmanager://REGION/ID?version=V&key=K`: the version read (and the key).",
        ),
        OutputSpec::string("version_id", "The id of the version read."),
        OutputSpec::reference("arn", "The secret's ARN."),
    ];
    const POLICY: crate::step::TypePolicy = crate::step::TypePolicy::CHECK;

    fn build(&self, p: ReadParams, context: &BuildContext) -> Box<dyn Step> {
        Box::new(ReadStep {
            secrets: secrets(&self.aws, p.region, context),
            secret_id: p.secret_id,
            key: p.key,
            stage: p.version_stage.unwrap_or_else(|| AWSCURRENT.to_string()),
        })
    }
}

struct ReadStep {
    secrets: Secrets,
    secret_id: String,
    key: Option<String>,
    stage: String,
}

impl ReadStep {
    /// Reads the version, checks the key, and forgets the value.
    async fn read(&self) -> Result<Outputs, StepError> {
        let region = &self.secrets.region;
        let action = format!("read secret `{}` ({}) in {region}", self.secret_id, self.stage);
        let client = self.secrets.client().await;
        let fetched = match fetch(client, &self.secret_id, Version::Stage(&self.stage), &action).await? {
            Fetch::Found(fetched) => fetched,
            Fetch::NotFound(e) => return Err(e),
        };
        if let Some(key) = &self.key {
            let what = format!("secret `{}` (version {}) in {region}", self.secret_id, fetched.version_id);
            let Some(json) = content::as_object(&fetched.value) else {
                return Err(StepError::fatal(format!(
                    "{what} is not a JSON object, so it has no key `{key}`; leave out `with.key` to refer to the \
                     whole secret"
                )));
            };
            if !json.0.contains_key(key) {
                return Err(StepError::fatal(format!(
                    "{what} has no key `{key}` (check `with.key`); its keys are: {}",
                    content::key_list(&json.0)
                )));
            }
        }
        let reference = SecretRef {
            region: region.clone(),
            secret_id: self.secret_id.clone(),
            version_id: fetched.version_id.clone(),
            key: self.key.clone(),
        };
        Ok(Outputs::from([
            ("secret_ref".to_string(), reference.format()),
            ("version_id".to_string(), fetched.version_id.clone()),
            ("arn".to_string(), fetched.arn.clone()),
        ]))
    }
}

#[async_trait]
impl Step for ReadStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        super::preflight::secret(&self.secrets, &self.secret_id, super::preflight::Need::Exists).await
    }

    fn describe(&self) -> String {
        let key = self.key.as_ref().map(|k| format!(", key `{k}`")).unwrap_or_default();
        format!("read secret `{}` ({}{key}) in {}", self.secret_id, self.stage, self.secrets.region)
    }

    /// Reading changes nothing: the step is done once the read succeeds.
    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        self.read().await.map(Observation::Done)
    }

    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
        Ok(Receipt::NONE)
    }

    async fn verify(&self, _ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        self.read().await
    }
}
