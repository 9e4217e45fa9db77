//! `aws.secrets.restore_previous`: failback's undo of `aws.secrets.put` (or of a rotation): moves
//! AWSCURRENT back to the version AWSPREVIOUS is on, or to an explicit `version_id`.
//!
//! Moving AWSCURRENT moves AWSPREVIOUS too (to the version AWSCURRENT left), so "make AWSPREVIOUS
//! current" done twice flips back. The step therefore labels the version it restores with a staging
//! label of its own, [`RESTORED`], before moving AWSCURRENT to it: while that version is current the
//! step is done, whether it is resumed, retried or run again by a later failback. A later put or
//! rotation makes another version current, and the next restore moves the label on. The label keeps
//! that one version from being deprecated.

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{AWSCURRENT, AWSPREVIOUS, Described, Secrets, describe, secrets, version_outputs};
use crate::aws::{self, Aws};
use crate::step::{BuildContext, Observation, OutputSpec, Outputs, Receipt, Step, StepContext, StepError, TypedStep};

/// The staging label on the version this step last made current.
pub const RESTORED: &str = "drctl-restored";

/// The `aws.secrets.restore_previous` step type.
pub struct SecretsRestorePrevious {
    pub aws: Arc<Aws>,
}

/// `with:` of an `aws.secrets.restore_previous` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreParams {
    /// The secret's name or ARN.
    #[schemars(length(min = 1))]
    pub secret_id: String,
    /// The region of the secret (default: the region the run moves to).
    #[serde(default)]
    pub region: Option<String>,
    /// The version to make current (default: the one AWSPREVIOUS is on).
    #[serde(default)]
    pub version_id: Option<String>,
}

impl TypedStep for SecretsRestorePrevious {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Failback's undo of `aws.secrets.put` or of a rotation: makes the version AWSPREVIOUS is on (or \
            `version_id`) AWSCURRENT again. The step labels the version it restores, so a resumed or repeated step \
            does not flip back and forth.",
        example: r#"
secret_id: app/database-url
"#,
        failure: crate::aws::STEP_FAILURES,
    };
    type Params = RestoreParams;
    const NAME: &'static str = "aws.secrets.restore_previous";
    const SUMMARY: &'static str = "Makes the AWSPREVIOUS version of a Secrets Manager secret (or a given version) \
                                   AWSCURRENT again, for failback.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::string("version_id", "The id of the version now AWSCURRENT."),
        OutputSpec::string(
            "previous_version_id",
            "The version that was current before, now AWSPREVIOUS; absent when there was none.",
        )
        .optional(),
        OutputSpec::reference(
            "secret_ref",
            "A reference to the restored version, `secretsmanager://REGION/ID?version=V`, never the \
                value.",
        ),
        OutputSpec::reference("arn", "The secret's ARN."),
    ];

    fn build(&self, p: RestoreParams, context: &BuildContext) -> Box<dyn Step> {
        Box::new(RestoreStep {
            secrets: secrets(&self.aws, p.region, context),
            secret_id: p.secret_id,
            version_id: p.version_id.filter(|v| !v.is_empty()),
        })
    }
}

struct RestoreStep {
    secrets: Secrets,
    secret_id: String,
    version_id: Option<String>,
}

impl RestoreStep {
    fn field(&self) -> &'static str {
        if self.version_id.is_some() { "with.version_id" } else { "with.secret_id" }
    }

    /// Whether the restore is in effect: the explicit version is current, or the version this step
    /// labelled is.
    fn in_effect(&self, described: &Described) -> bool {
        let version = self.version_id.as_deref().or_else(|| described.holder(RESTORED));
        version.is_some_and(|v| described.has(v, AWSCURRENT))
    }

    /// The version to make current: the explicit one, or the one AWSPREVIOUS is on.
    fn target(&self, described: &Described) -> Result<String, StepError> {
        if let Some(version) = &self.version_id {
            return Ok(version.clone());
        }
        match described.holder(AWSPREVIOUS) {
            Some(version) => Ok(version.to_string()),
            None => Err(StepError::fatal(format!(
                "secret `{}` in {} has no {AWSPREVIOUS} version, so there is nothing to restore; set \
                 `with.version_id` to the version to make current",
                self.secret_id, self.secrets.region
            ))),
        }
    }

    /// The version that is current because of this step, for the outputs.
    fn restored(&self, described: &Described) -> String {
        self.version_id.clone().unwrap_or_else(|| described.current().to_string())
    }

    /// UpdateSecretVersionStage.
    async fn move_label(&self, label: &str, to: &str, from: Option<&str>) -> Result<(), StepError> {
        let client = self.secrets.client().await;
        let mut request =
            client.update_secret_version_stage().secret_id(&self.secret_id).version_stage(label).move_to_version_id(to);
        if let Some(from) = from.filter(|f| !f.is_empty()) {
            request = request.remove_from_version_id(from);
        }
        request.send().await.map(drop).map_err(|e| {
            let action = format!(
                "move staging label {label} of secret `{}` to version {to} in {}",
                self.secret_id, self.secrets.region
            );
            aws::step_error(&e, &action, self.field())
        })
    }
}

#[async_trait]
impl Step for RestoreStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        let need =
            if self.version_id.is_some() { super::preflight::Need::Exists } else { super::preflight::Need::Previous };
        super::preflight::secret(&self.secrets, &self.secret_id, need).await
    }

    fn describe(&self) -> String {
        let which = match &self.version_id {
            Some(version) => format!("version {version}"),
            None => format!("the {AWSPREVIOUS} version"),
        };
        format!("make {which} of secret `{}` in {} {AWSCURRENT} again", self.secret_id, self.secrets.region)
    }

    /// Done when the version this step restores (or restored, in an earlier attempt or run) is current.
    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        let described = describe(self.secrets.client().await, &self.secret_id, &self.secrets.region).await?;
        if !self.in_effect(&described) {
            // Fails fast when there is nothing to restore.
            self.target(&described)?;
            return Ok(Observation::NotDone);
        }
        Ok(Observation::Done(version_outputs(
            &self.secrets.region,
            &self.secret_id,
            &described,
            &self.restored(&described),
        )))
    }

    /// Labels the target, then moves AWSCURRENT to it: a resumed run finds the label.
    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
        let described = describe(self.secrets.client().await, &self.secret_id, &self.secrets.region).await?;
        if self.in_effect(&described) {
            return Ok(Receipt::NONE);
        }
        let target = self.target(&described)?;
        if self.version_id.is_none() && !described.has(&target, RESTORED) {
            self.move_label(RESTORED, &target, described.holder(RESTORED)).await?;
        }
        self.move_label(AWSCURRENT, &target, Some(described.current())).await?;
        // The version made current (an id, not a value): the receipt.
        Ok(Receipt::of(&target))
    }

    async fn verify(&self, _ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError> {
        let described = describe(self.secrets.client().await, &self.secret_id, &self.secrets.region).await?;
        let target = match receipt.is_none() {
            true => self.restored(&described),
            false => receipt.read::<String>()?,
        };
        if !described.has(&target, AWSCURRENT) {
            return Err(StepError::retryable(format!(
                "{AWSCURRENT} of secret `{}` in {} is on version {}, not on version {target}",
                self.secret_id,
                self.secrets.region,
                described.current()
            )));
        }
        Ok(version_outputs(&self.secrets.region, &self.secret_id, &described, &target))
    }
}
