//! `aws.secrets.put`: writes a new version of a secret and moves AWSCURRENT to it; AWSPREVIOUS then
//! holds the old one, which `aws.secrets.restore_previous` brings back on failback.
//!
//! The new content is a `value` or `json` keys merged over the current JSON. Their strings may say
//! `${secret:KEY}` for a key of the current version (`postgres://app:${secret:password}@HOST/app`),
//! filled in memory when the step writes. The request's `ClientRequestToken` is derived from the run,
//! the step and the content, so a repeated write of the same content is one version, not two.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::content::{self, Current, Desired};
use super::{
    AWSCURRENT, Fetch, Fetched, SecretValue, Secrets, Version, describe, fetch, quiet, redacted, secrets, token,
};
use crate::aws::{self, Aws};
use crate::step::{BuildContext, Observation, OutputSpec, Outputs, Receipt, Step, StepContext, StepError, TypedStep};

/// The `aws.secrets.put` step type.
pub struct SecretsPut {
    pub aws: Arc<Aws>,
}

/// `with:` of an `aws.secrets.put` step (`value` or `json`).
#[derive(Deserialize, JsonSchema)]
#[serde(try_from = "PutFields")]
pub struct PutParams(PutFields);

/// The fields of [`PutParams`], before checks across fields.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutFields {
    /// The secret's name or ARN.
    #[schemars(length(min = 1))]
    pub secret_id: String,
    /// The region of the secret (default: the region the run moves to).
    #[serde(default)]
    pub region: Option<String>,
    /// The whole new secret string. `${secret:KEY}` stands for key KEY of the current version.
    #[serde(default)]
    pub value: Option<String>,
    /// Keys of the secret's JSON object to set. `${secret:KEY}` in a value stands for key KEY of the
    /// current version: `postgres://app:${secret:password}@{{ steps.promote.outputs.endpoint }}/app`.
    #[serde(default)]
    pub json: Option<BTreeMap<String, String>>,
    /// With `json`: keep the current version's other keys (default true); false writes only `json`.
    #[serde(default)]
    pub merge: Option<bool>,
    /// Create the secret when it does not exist (default false: a missing secret fails the step).
    #[serde(default)]
    pub create_if_missing: bool,
}

impl TryFrom<PutFields> for PutParams {
    type Error = String;
    fn try_from(f: PutFields) -> Result<Self, String> {
        match (&f.value, &f.json) {
            (Some(_), Some(_)) => return Err("set `value` or `json`, not both".into()),
            (None, None) => return Err("set the new content: `value` (a string) or `json` (keys to set)".into()),
            (Some(_), None) if f.merge.is_some() => return Err("`merge` goes with `json`, not `value`".into()),
            (_, Some(json)) if json.is_empty() => return Err("`json` names no key to set".into()),
            _ => {}
        }
        if let Some(value) = &f.value {
            content::check(value).map_err(|e| format!("`value`: {e}"))?;
        }
        for (key, value) in f.json.iter().flatten() {
            content::check(value).map_err(|e| format!("`json.{key}`: {e}"))?;
        }
        Ok(PutParams(f))
    }
}

impl TypedStep for SecretsPut {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Writes a new version of a Secrets Manager secret and makes it AWSCURRENT; the old version stays \
            AWSPREVIOUS, which `aws.secrets.restore_previous` brings back on failback. The content is a whole \
            `value`, or `json` keys merged over the current version's. `${secret:KEY}` in either stands for key KEY \
            of the current version, filled in memory, so a password never enters the plan. Writing the same content \
            again makes no second version.",
        example: r#"
secret_id: app/database-url
json:
  DATABASE_URL: "postgres://app:${secret:password}@{{ steps.promote.outputs.endpoint }}/app"
"#,
        failure: crate::aws::STEP_FAILURES,
    };
    type Params = PutParams;
    const NAME: &'static str = "aws.secrets.put";
    const SUMMARY: &'static str = "Writes a new version of a Secrets Manager secret (a value, or JSON keys merged over \
                                   the current ones, with ${secret:KEY} taken from the current version) and makes \
                                   it AWSCURRENT.";
    const OUTPUTS: &'static [OutputSpec] = super::NEW_VERSION_OUTPUTS;

    fn build(&self, PutParams(p): PutParams, context: &BuildContext) -> Box<dyn Step> {
        let desired = match (p.value, p.json) {
            (Some(value), _) => Desired::Value(value),
            (None, json) => Desired::Json {
                entries: json.unwrap_or_default().into_iter().collect(),
                merge: p.merge.unwrap_or(true),
            },
        };
        Box::new(PutStep {
            secrets: secrets(&self.aws, p.region, context),
            secret_id: p.secret_id,
            desired,
            create_if_missing: p.create_if_missing,
        })
    }
}

struct PutStep {
    secrets: Secrets,
    secret_id: String,
    desired: Desired,
    create_if_missing: bool,
}

impl PutStep {
    fn what(&self, version_id: &str) -> String {
        format!("secret `{}` (version {version_id}) in {}", self.secret_id, self.secrets.region)
    }

    /// The current version, or `None` when the secret is missing and may be created.
    async fn current(&self) -> Result<Option<Fetched>, StepError> {
        let action = format!("read secret `{}` ({AWSCURRENT}) in {}", self.secret_id, self.secrets.region);
        match fetch(self.secrets.client().await, &self.secret_id, Version::Stage(AWSCURRENT), &action).await? {
            Fetch::Found(fetched) => Ok(Some(fetched)),
            Fetch::NotFound(_) if self.create_if_missing => Ok(None),
            Fetch::NotFound(mut e) => {
                e.message.push_str("; to create it, set `create_if_missing: true`");
                Err(e)
            }
        }
    }

    /// What to write given the current version, and whether it is already there.
    fn compute(&self, current: Option<&Fetched>) -> Result<(SecretValue, bool), StepError> {
        let what = current.map(|c| self.what(&c.version_id)).unwrap_or_default();
        let current = current.map(|c| Current { what: &what, text: &c.value });
        content::desired(&self.desired, current.as_ref())
    }

    async fn outputs(&self, version_id: &str) -> Result<Outputs, StepError> {
        let region = &self.secrets.region;
        let described = describe(self.secrets.client().await, &self.secret_id, region).await?;
        Ok(super::version_outputs(region, &self.secret_id, &described, version_id))
    }
}

#[async_trait]
impl Step for PutStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        let need =
            if self.create_if_missing { super::preflight::Need::MayBeCreated } else { super::preflight::Need::Exists };
        super::preflight::secret(&self.secrets, &self.secret_id, need).await
    }

    fn describe(&self) -> String {
        let what = match &self.desired {
            Desired::Value(_) => "a new value".to_string(),
            Desired::Json { entries, merge } => {
                let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
                let how = if *merge { "merged over the current keys" } else { "replacing the current keys" };
                format!("keys {} ({how})", keys.join(", "))
            }
        };
        format!("put {what} into secret `{}` in {} and make it {AWSCURRENT}", self.secret_id, self.secrets.region)
    }

    /// Done when the current version already holds exactly the content this step would write.
    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        let Some(current) = self.current().await? else { return Ok(Observation::NotDone) };
        let (_content, same) = self.compute(Some(&current))?;
        if !same {
            return Ok(Observation::NotDone);
        }
        Ok(Observation::Done(self.outputs(&current.version_id).await?))
    }

    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError> {
        let current = self.current().await?;
        let (content, _) = self.compute(current.as_ref())?;
        // The token names what is written without hashing any secret material (a journaled version
        // id must not let anyone test guesses of a password): the step, the version the content is
        // computed from, and the plan's template for it.
        let source_version = current.as_ref().map_or("", |c| c.version_id.as_str());
        let spec = self.desired.fingerprint();
        let token = token(&[
            b"aws.secrets.put",
            ctx.run_id.as_bytes(),
            ctx.step_id.as_bytes(),
            source_version.as_bytes(),
            spec.as_bytes(),
        ]);
        let client = self.secrets.client().await;
        let region = &self.secrets.region;
        let action = format!("write a new version of secret `{}` in {region}", self.secret_id);
        let mut version = None;
        if current.is_none() {
            let created = client
                .create_secret()
                .name(&self.secret_id)
                .secret_string(content.expose())
                .client_request_token(&token)
                .send();
            match quiet::call(created).await {
                Ok(output) => version = Some(output.version_id.unwrap_or_else(|| token.clone())),
                // Created meanwhile (or by an earlier attempt whose answer was lost): put a version.
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_exists_exception()) => {}
                Err(e) => {
                    let action = format!("create secret `{}` in {region}", self.secret_id);
                    return Err(redacted(aws::step_error(&e, &action, "with.secret_id"), &content));
                }
            }
        }
        let version = match version {
            Some(version) => version,
            None => {
                let put = client
                    .put_secret_value()
                    .secret_id(&self.secret_id)
                    .secret_string(content.expose())
                    .client_request_token(&token)
                    .send();
                let output = quiet::call(put)
                    .await
                    .map_err(|e| redacted(aws::step_error(&e, &action, "with.secret_id"), &content))?;
                output.version_id.unwrap_or(token)
            }
        };
        // The version id written (not the value): the receipt.
        Ok(Receipt::of(&version))
    }

    /// AWSCURRENT is on the version `act` wrote.
    async fn verify(&self, _ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError> {
        let written: String = receipt.read()?;
        let region = &self.secrets.region;
        let described = describe(self.secrets.client().await, &self.secret_id, region).await?;
        if !described.has(&written, AWSCURRENT) {
            return Err(StepError::retryable(format!(
                "{AWSCURRENT} of secret `{}` in {region} is on version {}, not on the version just written ({written})",
                self.secret_id,
                described.current()
            )));
        }
        Ok(super::version_outputs(region, &self.secret_id, &described, &written))
    }
}
