//! `aws.secrets.rotate`: runs a secret's rotation (its rotation Lambda, or the owning service's
//! managed rotation) and waits until the new version is AWSCURRENT and no rotation is pending.
//!
//! The RotateSecret `ClientRequestToken`, which becomes the new version's id, is derived from the
//! run and the step: a resumed run recognises the rotation it started (finished: done; still
//! pending: wait for it) instead of starting another one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{AWSCURRENT, AWSPENDING, Described, Secrets, describe, secrets, token, version_outputs};
use crate::aws::{self, Aws};
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, Progress, Receipt, Step, StepContext, StepError, TypedStep,
};
use crate::steps::HumanDuration;

/// The `aws.secrets.rotate` step type.
pub struct SecretsRotate {
    pub aws: Arc<Aws>,
}

/// `with:` of an `aws.secrets.rotate` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateParams {
    /// The secret's name or ARN; its rotation must be set up.
    #[schemars(length(min = 1))]
    pub secret_id: String,
    /// The region of the secret (default: the region the run moves to).
    #[serde(default)]
    pub region: Option<String>,
    /// How often to look whether the rotation finished (default 5s); the step's timeout bounds the wait.
    #[serde(default = "five_seconds")]
    pub interval: HumanDuration,
}

fn five_seconds() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

impl TypedStep for SecretsRotate {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Runs a secret's configured rotation (its rotation Lambda, or the owning service's managed \
            rotation) and waits until the new version is AWSCURRENT and no rotation is pending. A resumed run \
            recognises the rotation it started instead of starting another.",
        example: r#"
secret_id: app/database
interval: 10s
"#,
        failure: crate::aws::STEP_FAILURES,
    };
    type Params = RotateParams;
    const NAME: &'static str = "aws.secrets.rotate";
    const SUMMARY: &'static str = "Rotates a Secrets Manager secret with its configured rotation and waits until the \
                                   new version is AWSCURRENT.";
    const OUTPUTS: &'static [OutputSpec] = super::NEW_VERSION_OUTPUTS;

    fn build(&self, p: RotateParams, context: &BuildContext) -> Box<dyn Step> {
        Box::new(RotateStep {
            secrets: secrets(&self.aws, p.region, context),
            secret_id: p.secret_id,
            interval: p.interval.0,
        })
    }
}

struct RotateStep {
    secrets: Secrets,
    secret_id: String,
    interval: Duration,
}

/// The id of the version the rotation started by this step of run `ctx` creates.
fn rotation_token(ctx: &StepContext) -> String {
    token(&[b"aws.secrets.rotate", ctx.run_id.as_bytes(), ctx.step_id.as_bytes()])
}

/// Whether the rotation that creates `version` finished: it is AWSCURRENT and no other version is
/// AWSPENDING (a rotation may leave AWSPENDING on the new current version).
fn finished(described: &Described, version: &str) -> bool {
    described.has(version, AWSCURRENT) && described.holder(AWSPENDING).is_none_or(|pending| pending == version)
}

impl RotateStep {
    async fn described(&self) -> Result<Described, StepError> {
        let described = describe(self.secrets.client().await, &self.secret_id, &self.secrets.region).await?;
        if !described.rotation_configured {
            return Err(StepError::fatal(format!(
                "secret `{}` in {} has no rotation configured (no rotation Lambda, rotation off), so it cannot be \
                 rotated; configure rotation for it, or write the new value with `aws.secrets.put`",
                self.secret_id, self.secrets.region
            )));
        }
        Ok(described)
    }
}

#[async_trait]
impl Step for RotateStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        super::preflight::secret(&self.secrets, &self.secret_id, super::preflight::Need::Exists).await
    }

    fn describe(&self) -> String {
        format!(
            "rotate secret `{}` in {} and wait for the new version to be {AWSCURRENT}",
            self.secret_id, self.secrets.region
        )
    }

    /// Done when the rotation this step started (in an earlier attempt or run) has finished.
    async fn observe(&self, ctx: &StepContext) -> Result<Observation, StepError> {
        let described = self.described().await?;
        let version = rotation_token(ctx);
        if !finished(&described, &version) {
            return Ok(Observation::NotDone);
        }
        Ok(Observation::Done(version_outputs(&self.secrets.region, &self.secret_id, &described, &version)))
    }

    /// Starts the rotation, unless the one this step started earlier is still pending.
    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError> {
        let described = self.described().await?;
        let version = rotation_token(ctx);
        if described.has(&version, AWSPENDING) || finished(&described, &version) {
            return Ok(Receipt::NONE);
        }
        if let Some(pending) = described.holder(AWSPENDING).filter(|p| !described.has(p, AWSCURRENT)) {
            return Err(StepError::retryable(format!(
                "another rotation of secret `{}` in {} is in progress ({AWSPENDING} is on version {pending}); \
                 waiting for it to finish",
                self.secret_id, self.secrets.region
            )));
        }
        let request = self
            .secrets
            .client()
            .await
            .rotate_secret()
            .secret_id(&self.secret_id)
            .client_request_token(&version)
            .rotate_immediately(true);
        request.send().await.map(|_| Receipt::NONE).map_err(|e| {
            let action = format!("start the rotation of secret `{}` in {}", self.secret_id, self.secrets.region);
            aws::step_error(&e, &action, "with.secret_id")
        })
    }

    /// One look: done once the new version is AWSCURRENT.
    async fn poll(&self, ctx: &StepContext, _receipt: &Receipt) -> Progress {
        let version = rotation_token(ctx);
        let described = match describe(self.secrets.client().await, &self.secret_id, &self.secrets.region).await {
            Ok(described) => described,
            Err(e) => return Progress::Failed(e),
        };
        if finished(&described, &version) {
            return Progress::Done;
        }
        Progress::Waiting(format!(
            "the rotation of secret `{}` in {}: version {version} to become {AWSCURRENT} (now on {})",
            self.secret_id,
            self.secrets.region,
            described.current()
        ))
    }

    fn poll_interval(&self) -> std::time::Duration {
        self.interval
    }

    async fn verify(&self, ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        let described = describe(self.secrets.client().await, &self.secret_id, &self.secrets.region).await?;
        let version = rotation_token(ctx);
        if !finished(&described, &version) {
            return Err(StepError::retryable(format!(
                "the rotation of secret `{}` in {} has not finished: {AWSCURRENT} is on version {}, {AWSPENDING} on {}",
                self.secret_id,
                self.secrets.region,
                described.current(),
                described.holder(AWSPENDING).unwrap_or("none")
            )));
        }
        Ok(version_outputs(&self.secrets.region, &self.secret_id, &described, &version))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Mutex;

    use aws_sdk_secretsmanager::Client;
    use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
    use aws_sdk_secretsmanager::operation::rotate_secret::RotateSecretOutput;
    use aws_smithy_mocks::{MockResponse, Rule, mock};

    use super::super::test_support::{attempt, client, throttled};
    use super::*;
    use crate::steps::test_support::ctx;

    const ARN: &str = "arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf";

    /// A secret in a scripted Secrets Manager: RotateSecret adds an AWSPENDING version; the rotation
    /// "Lambda" finishes after `polls` DescribeSecret calls.
    struct Fake {
        stages: BTreeMap<String, Vec<String>>,
        rotation: bool,
        throttle_next_rotate: bool,
        polls: usize,
        rotate_tokens: Vec<String>,
    }

    impl Fake {
        fn new(rotation: bool) -> Arc<Mutex<Fake>> {
            Arc::new(Mutex::new(Fake {
                stages: BTreeMap::from([("v1".into(), vec![AWSCURRENT.into()])]),
                rotation,
                throttle_next_rotate: false,
                polls: 2,
                rotate_tokens: Vec::new(),
            }))
        }

        /// The pending version becomes current once `polls` describes have passed.
        fn advance(&mut self) {
            let Some(pending) = self.pending() else { return };
            if self.polls > 0 {
                self.polls -= 1;
                return;
            }
            for labels in self.stages.values_mut() {
                labels.retain(|l| l != "AWSPREVIOUS");
                if let Some(i) = labels.iter().position(|l| l == AWSCURRENT) {
                    labels[i] = "AWSPREVIOUS".into();
                }
            }
            self.stages.insert(pending, vec![AWSCURRENT.into()]);
        }

        fn pending(&self) -> Option<String> {
            self.stages.iter().find(|(_, l)| l.iter().any(|l| l == AWSPENDING)).map(|(v, _)| v.clone())
        }
    }

    fn rules(fake: &Arc<Mutex<Fake>>) -> (Rule, Rule) {
        let f = fake.clone();
        let describe = mock!(Client::describe_secret).then_compute_output(move |_| {
            let mut fake = f.lock().unwrap();
            fake.advance();
            let stages: HashMap<String, Vec<String>> = fake.stages.clone().into_iter().collect();
            DescribeSecretOutput::builder()
                .arn(ARN)
                .name("db")
                .rotation_enabled(fake.rotation)
                .set_rotation_lambda_arn(fake.rotation.then(|| "arn:aws:lambda:us-west-2:1:function:rot".into()))
                .set_version_ids_to_stages(Some(stages))
                .build()
        });
        let f = fake.clone();
        let rotate = mock!(Client::rotate_secret).then_compute_response(move |request| {
            let mut fake = f.lock().unwrap();
            if std::mem::take(&mut fake.throttle_next_rotate) {
                return MockResponse::Http(throttled());
            }
            let token = request.client_request_token().unwrap_or_default().to_string();
            fake.rotate_tokens.push(token.clone());
            fake.stages.insert(token.clone(), vec![AWSPENDING.into()]);
            MockResponse::Output(RotateSecretOutput::builder().arn(ARN).name("db").version_id(token).build())
        });
        (describe, rotate)
    }

    fn step(client: Client) -> RotateStep {
        RotateStep {
            secrets: Secrets::with_client(client, "us-west-2"),
            secret_id: "db".into(),
            interval: Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn rotates_waits_and_a_second_run_is_already_done() {
        let fake = Fake::new(true);
        let (describe, rotate) = rules(&fake);
        let step = step(client(&[&describe, &rotate]));
        let ctx = ctx();
        assert_eq!(step.describe(), "rotate secret `db` in us-west-2 and wait for the new version to be AWSCURRENT");

        let (outputs, found) = attempt(&step, &ctx).await.unwrap();
        assert!(!found);
        let token = rotation_token(&ctx);
        assert_eq!(
            fake.lock().unwrap().rotate_tokens,
            std::slice::from_ref(&token),
            "one RotateSecret with the step's token"
        );
        assert_eq!(outputs["version_id"], token);
        assert_eq!(outputs["previous_version_id"], "v1");
        assert_eq!(outputs["arn"], ARN);
        assert_eq!(outputs["secret_ref"], format!("secretsmanager://us-west-2/db?version={token}"));
        assert!(describe.num_calls() >= 4, "the wait polled until the rotation finished");

        // A resumed run of the same step finds its rotation finished and does not rotate again.
        let (again, found) = attempt(&step, &ctx).await.unwrap();
        assert!(found);
        assert_eq!(again, outputs);
        assert_eq!(rotate.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_secret_without_rotation_fails_fast_and_says_so() {
        let fake = Fake::new(false);
        let (describe, rotate) = rules(&fake);
        let step = step(client(&[&describe, &rotate]));
        let e = attempt(&step, &ctx()).await.unwrap_err();
        assert!(!e.is_retryable(), "{e:?}");
        assert!(e.message.contains("secret `db` in us-west-2 has no rotation configured"), "{e}");
        assert_eq!(rotate.num_calls(), 0, "RotateSecret was not called");
    }

    #[tokio::test]
    async fn throttling_is_retryable_and_the_retry_succeeds() {
        let fake = Fake::new(true);
        fake.lock().unwrap().throttle_next_rotate = true;
        let (describe, rotate) = rules(&fake);
        let step = step(client(&[&describe, &rotate]));
        let mut ctx = ctx();
        let e = attempt(&step, &ctx).await.unwrap_err();
        assert!(e.is_retryable(), "{e:?}");
        assert!(
            e.message.contains("start the rotation of secret `db`") && e.message.contains("ThrottlingException"),
            "{e}"
        );
        assert!(fake.lock().unwrap().rotate_tokens.is_empty());

        ctx.attempt += 1;
        let (outputs, found) = attempt(&step, &ctx).await.unwrap();
        assert!(!found);
        assert_eq!(outputs["version_id"], rotation_token(&ctx));
        assert_eq!(rotate.num_calls(), 2);
        assert_eq!(fake.lock().unwrap().rotate_tokens.len(), 1);
    }

    #[tokio::test]
    async fn a_rotation_still_pending_from_an_earlier_attempt_is_waited_for_not_restarted() {
        let fake = Fake::new(true);
        let ctx = ctx();
        fake.lock().unwrap().stages.insert(rotation_token(&ctx), vec![AWSPENDING.into()]);
        let (describe, rotate) = rules(&fake);
        let step = step(client(&[&describe, &rotate]));
        let (outputs, found) = attempt(&step, &ctx).await.unwrap();
        assert!(!found);
        assert_eq!(rotate.num_calls(), 0, "no second RotateSecret");
        assert_eq!(outputs["version_id"], rotation_token(&ctx));
        assert_eq!(outputs["previous_version_id"], "v1");
    }

    #[tokio::test]
    async fn another_rotation_in_progress_is_retryable_and_not_disturbed() {
        let fake = Fake::new(true);
        fake.lock().unwrap().stages.insert("someone-elses".into(), vec![AWSPENDING.into()]);
        fake.lock().unwrap().polls = usize::MAX;
        let (describe, rotate) = rules(&fake);
        let step = step(client(&[&describe, &rotate]));
        let e = attempt(&step, &ctx()).await.unwrap_err();
        assert!(e.is_retryable(), "{e:?}");
        assert!(e.message.contains("another rotation of secret `db`") && e.message.contains("someone-elses"), "{e}");
        assert_eq!(rotate.num_calls(), 0);
    }
}
