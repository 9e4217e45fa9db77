//! `kube.write_secret`: writes a Kubernetes Secret from Secrets Manager values (the app reads its
//! DATABASE_URL from it), by server-side apply.
//!
//! Each key's value is a `secretsmanager://` reference (the output of `aws.secrets.read` or
//! `aws.secrets.put`), resolved at the moment of writing, or a literal. Values stay in memory: they
//! are compared and sent, never logged, journaled or quoted in an error. Observation reads the
//! Secret and compares every key; when all match, nothing is written. Outputs: `name`, `keys` and
//! `resource_version` (which changes whenever the Secret does, for templating into a pod
//! annotation that rolls the pods onto the new value).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{SharedKube, connect, context_for};
use crate::aws::Aws;
use crate::k8s::step_error;
use crate::plan::AwsSettings;
use crate::step::{BuildContext, Observation, OutputSpec, Outputs, Receipt, Step, StepContext, StepError, TypedStep};
use crate::steps::aws_secrets::{SecretRef, SecretValue, redacted, resolve};

/// The field manager drctl's server-side applies are recorded under.
pub const FIELD_MANAGER: &str = "drctl";

/// The `kube.write_secret` step type.
pub struct WriteSecret {
    pub kube: SharedKube,
    pub aws: Arc<Aws>,
}

/// `with:` of a `kube.write_secret` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteSecretParams {
    /// The kubeconfig context (default: the plan's context of the region the run moves to).
    #[serde(default)]
    pub context: Option<String>,
    /// The Secret's namespace (default: the context's namespace).
    #[serde(default)]
    pub namespace: Option<String>,
    /// The Secret's name.
    pub name: String,
    /// The Secret's keys: a `secretsmanager://` reference (resolved when written) or a literal.
    pub data: BTreeMap<String, String>,
    /// The Secret's type (default `Opaque`).
    #[serde(default, rename = "type")]
    pub secret_type: Option<String>,
}

impl TypedStep for WriteSecret {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Writes a Kubernetes Secret's `data` keys by server-side apply. A value is a `secretsmanager://` \
            reference (from `aws.secrets.read` or `aws.secrets.put`), resolved in memory when written, or a literal. \
            A Secret already holding the values is left alone.",
        example: r#"
name: app-db
namespace: production
data:
  url: "{{ steps.db-url.outputs.secret_ref }}"
  user: app
"#,
        failure: crate::k8s::STEP_FAILURES,
    };
    type Params = WriteSecretParams;
    const NAME: &'static str = "kube.write_secret";
    const SUMMARY: &'static str =
        "Write a Kubernetes Secret from Secrets Manager references (resolved in memory) by server-side apply.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::string("name", "The Secret's name."),
        OutputSpec::string("keys", "The keys written, separated by `,`."),
        OutputSpec::string("resource_version", "The Secret's resourceVersion after the write."),
    ];

    fn build(&self, params: WriteSecretParams, context: &BuildContext) -> Box<dyn Step> {
        Box::new(WriteSecretStep {
            kube: self.kube.clone(),
            aws: self.aws.clone(),
            aws_settings: context.plan.aws.clone(),
            context: context_for(params.context, context),
            namespace: params.namespace,
            name: params.name,
            data: params.data,
            secret_type: params.secret_type.unwrap_or_else(|| "Opaque".into()),
        })
    }
}

struct WriteSecretStep {
    kube: SharedKube,
    aws: Arc<Aws>,
    aws_settings: AwsSettings,
    context: Option<String>,
    namespace: Option<String>,
    name: String,
    /// References or literals, never resolved values.
    data: BTreeMap<String, String>,
    secret_type: String,
}

impl WriteSecretStep {
    /// Every key's value, references resolved now.
    async fn values(&self) -> Result<BTreeMap<String, SecretValue>, StepError> {
        let mut values = BTreeMap::new();
        for (key, text) in &self.data {
            let value = match SecretRef::parse(text) {
                Ok(reference) => resolve(&self.aws, &self.aws_settings, &reference).await?,
                Err(_) => SecretValue::new(text.clone()),
            };
            values.insert(key.clone(), value);
        }
        Ok(values)
    }

    fn keys(&self) -> String {
        self.data.keys().cloned().collect::<Vec<_>>().join(",")
    }

    fn outputs(&self, secret: &Secret) -> Outputs {
        Outputs::from([
            ("name".into(), self.name.clone()),
            ("keys".into(), self.keys()),
            ("resource_version".into(), secret.metadata.resource_version.clone().unwrap_or_default()),
        ])
    }

    async fn current(&self) -> Result<(Api<Secret>, crate::k8s::Target, Option<Secret>), StepError> {
        let c = connect(&self.kube, self.context.as_deref(), self.namespace.as_deref(), "secret", &self.name).await?;
        let api: Api<Secret> = c.api();
        let secret = api.get_opt(&self.name).await.map_err(|e| step_error(&e, "read", &c.target))?;
        Ok((api, c.target, secret))
    }
}

/// Whether `secret` holds every key with the wanted value.
fn holds(secret: &Secret, values: &BTreeMap<String, SecretValue>) -> bool {
    let data = secret.data.as_ref();
    values.iter().all(|(key, value)| data.and_then(|d| d.get(key)).is_some_and(|b| b.0 == value.expose().as_bytes()))
}

#[async_trait]
impl Step for WriteSecretStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        super::preflight::secret(&self.kube, self.context.as_deref(), self.namespace.as_deref(), &self.name).await
    }

    fn describe(&self) -> String {
        let namespace = self.namespace.as_ref().map(|n| format!("{n}/")).unwrap_or_default();
        let context = self.context.as_ref().map(|c| format!(" in context {c}")).unwrap_or_default();
        format!("write secret {namespace}{} ({}){context}", self.name, self.keys())
    }

    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        let (_, _, secret) = self.current().await?;
        let Some(secret) = secret else { return Ok(Observation::NotDone) };
        let values = self.values().await?;
        Ok(match holds(&secret, &values) {
            true => Observation::Done(self.outputs(&secret)),
            false => Observation::NotDone,
        })
    }

    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
        let (api, target, _) = self.current().await?;
        let values = self.values().await?;
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(target.namespace.clone()),
                labels: Some(BTreeMap::from([("app.kubernetes.io/managed-by".into(), "drctl".into())])),
                ..ObjectMeta::default()
            },
            data: Some(values.iter().map(|(k, v)| (k.clone(), ByteString(v.expose().as_bytes().to_vec()))).collect()),
            type_: Some(self.secret_type.clone()),
            ..Secret::default()
        };
        // k8s-openapi writes `apiVersion` and `kind`, which server-side apply needs.
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let result = api.patch(&self.name, &params, &Patch::Apply(&secret)).await;
        result.map(|_| Receipt::NONE).map_err(|e| {
            let error = step_error(&e, "write", &target);
            values.values().fold(error, redacted)
        })
    }

    async fn verify(&self, _ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        let (_, target, secret) = self.current().await?;
        let values = self.values().await?;
        match secret {
            Some(secret) if holds(&secret, &values) => Ok(self.outputs(&secret)),
            _ => Err(StepError::retryable(format!("{target} does not hold the written values yet"))),
        }
    }
}
