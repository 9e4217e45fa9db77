//! `aws.rds.fence`: the old RDS primary stops accepting new connections before the DR replica is
//! promoted, so clients that still reach it cannot write data the new primary never gets.
//!
//! The mechanism is the instance's network boundary: ModifyDBInstance replaces its VPC security
//! groups with `security_group`, a group with no inbound rules prepared for this purpose, with
//! `ApplyImmediately`. It needs no connection to the database (which may be unreachable from the
//! operator yet reachable from clients in its region), no restart, and only RDS's regional API.
//! AWS documents that a `VpcSecurityGroupIds` change "is asynchronously applied as soon as
//! possible" (ModifyDBInstance, RDS API Reference), so the step waits until the instance lists the
//! fence group as `active` and no other group.
//!
//! Its limit: security groups are stateful, and AWS documents that changing a rule does not
//! immediately interrupt connections it already tracks; they continue until they time out (Amazon
//! EC2 User Guide, "Security group connection tracking"). Pooled connections of the app therefore
//! live on until they close, which is why a plan scales the primary app down too where its cluster
//! answers (`kube.scale` to 0).
//!
//! Observation reads the instance: only the fence group, active, means fenced already. With
//! `required: false`, a region whose RDS API cannot be reached (a timeout, a 5xx) ends the step
//! with `unreachable: true`, journaled as evidence; a missing instance or a refused call always
//! fails. Outputs: `fenced`, `unreachable`, and `previous_security_groups` (comma-separated, to
//! restore on failback).
//!
//! Before the change, `act` tags the instance with the groups it replaces ([`MARKER`], naming the
//! run and step): a run killed after ModifyDBInstance but before its receipt reached the journal
//! finds the instance fenced on resume, and reads the groups back from the tag rather than losing
//! what failback needs.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_rds::types::{DbInstance, Tag};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Clients, Source, describe_instance, tag_safe};
use crate::aws::step_error;
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, Progress, Receipt, Step, StepContext, StepError, TypedStep,
};
use crate::steps::Services;

/// The `aws.rds.fence` step type.
pub struct Fence {
    source: Source,
}

impl Fence {
    pub fn new(services: &Services) -> Self {
        Fence { source: Source::Aws(services.aws.clone()) }
    }
}

/// `with:` of an `aws.rds.fence` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FenceParams {
    /// The old primary DB instance.
    pub instance: String,
    /// Its region (default: the plan's primary region).
    #[serde(default)]
    pub region: Option<String>,
    /// The VPC security group with no inbound rules that replaces the instance's groups.
    pub security_group: String,
    /// Whether the step fails when the region's RDS API cannot be reached (default true).
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

impl TypedStep for Fence {
    type Params = FenceParams;
    const NAME: &'static str = "aws.rds.fence";
    const SUMMARY: &'static str = "Fences the old RDS primary: its VPC security groups replaced by one with no inbound \
                                   rules (ModifyDBInstance, ApplyImmediately), waiting until it is active. \
                                   `required: false` goes on when the region's RDS API cannot be reached.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::boolean("fenced", "`true` when only the fence group is active on the instance."),
        OutputSpec::boolean("unreachable", "`true` when the region's RDS API could not be reached and `required: false` let the run go on."),
        OutputSpec::string("previous_security_groups", "The groups the fence replaced, comma-separated, for whoever brings the instance back; absent when the API could not be reached.").optional(),
    ];
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Fences the old RDS primary at the network before its replica is promoted: the instance's VPC \
            security groups are replaced by `security_group`, a group with no inbound rules created ahead of time in \
            the instance's VPC (ModifyDBInstance with ApplyImmediately), and the step waits until that group alone is \
            `active`. It needs only the region's RDS API, not a connection to the database. Security groups are \
            stateful: connections already open live on until they time out, so a plan also scales the primary app \
            to 0 where its cluster answers.",
        example: r#"
instance: portfolio-primary
security_group: sg-0fence0000000000
required: false
"#,
        failure: "A missing instance or a refused call (access denied, an unknown group) fails at once. Throttling \
            and 5xx answers are retried. An unreachable RDS API fails the step unless `required: false`.",
    };

    fn build(&self, p: FenceParams, context: &BuildContext) -> Box<dyn Step> {
        Box::new(FenceStep {
            clients: Clients::new(&self.source, context),
            region: p.region.unwrap_or_else(|| context.plan.regions.primary.clone()),
            instance: p.instance,
            group: p.security_group,
            required: p.required,
        })
    }
}

struct FenceStep {
    clients: Clients,
    region: String,
    instance: String,
    group: String,
    required: bool,
}

/// The tag that keeps the groups a fence replaced on the instance itself (see the module docs).
pub(crate) const MARKER: &str = "drctl:fenced-from";

/// The marker's value: `run=RUN step=STEP groups=sg-a/sg-b` (tag values allow no commas).
fn marker_value(ctx: &StepContext, previous: &[String]) -> String {
    let groups = if previous.is_empty() { "-".to_string() } else { tag_safe(&previous.join("/")) };
    format!("run={} step={} groups={groups}", tag_safe(&ctx.run_id), tag_safe(&ctx.step_id))
}

/// The groups the marker on `instance` names, if this run's step wrote it.
fn marked_groups(instance: &DbInstance, ctx: &StepContext) -> Option<Vec<String>> {
    let tag = instance.tag_list().iter().find(|t| t.key() == Some(MARKER))?;
    let value = tag.value().unwrap_or_default();
    let field = |name: &str| value.split_whitespace().find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='));
    let ours = field("run") == Some(&tag_safe(&ctx.run_id)) && field("step") == Some(&tag_safe(&ctx.step_id));
    let groups = field("groups").filter(|g| *g != "-").map(|g| g.split('/').map(str::to_string).collect());
    ours.then(|| groups.unwrap_or_default())
}

/// The instance's VPC security groups and their status (`active`, `adding`, `removing`).
fn groups(instance: &DbInstance) -> Vec<(String, String)> {
    instance
        .vpc_security_groups()
        .iter()
        .map(|g| {
            (g.vpc_security_group_id().unwrap_or_default().to_string(), g.status().unwrap_or("active").to_string())
        })
        .collect()
}

/// Fenced: the fence group alone, active.
fn fenced(groups: &[(String, String)], fence: &str) -> bool {
    matches!(groups, [(id, status)] if id == fence && status == "active")
}

impl FenceStep {
    /// `previous`: the groups this step replaced (none, and no output, when it did not act).
    fn outputs(&self, fenced: bool, unreachable: bool, previous: &[String]) -> Outputs {
        let mut outputs =
            Outputs::from([("fenced".into(), fenced.to_string()), ("unreachable".into(), unreachable.to_string())]);
        if !previous.is_empty() {
            outputs.insert("previous_security_groups".into(), previous.join(","));
        }
        outputs
    }

    async fn describe(&self) -> Result<DbInstance, StepError> {
        let rds = self.clients.rds(&self.region).await;
        describe_instance(&rds, &self.instance, &self.region, "with.instance").await
    }
}

#[async_trait]
impl Step for FenceStep {
    fn describe(&self) -> String {
        let best_effort = if self.required { "" } else { " (best effort: skipped when unreachable)" };
        format!(
            "fence RDS instance {} in {}: its security groups replaced by {}{best_effort}",
            self.instance, self.region, self.group
        )
    }

    /// Fenced already: by this very step if its marker says so (a run killed before its receipt
    /// was journaled), whose groups it reports; else by someone else, with no groups to report.
    async fn observe(&self, ctx: &StepContext) -> Result<Observation, StepError> {
        match self.describe().await {
            Ok(instance) if fenced(&groups(&instance), &self.group) => {
                let previous = marked_groups(&instance, ctx).unwrap_or_default();
                Ok(Observation::Done(self.outputs(true, false, &previous)))
            }
            Ok(_) => Ok(Observation::NotDone),
            Err(e) if e.is_retryable() && !self.required => {
                tracing::warn!(
                    "the old primary's region cannot be reached, so it is not fenced (required: false): {e}"
                );
                Ok(Observation::Done(self.outputs(false, true, &[])))
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the groups it replaces (the receipt, for `previous_security_groups`), tags the
    /// instance with them, then fences.
    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError> {
        let instance = self.describe().await?;
        let previous: Vec<String> =
            groups(&instance).into_iter().map(|(id, _)| id).filter(|id| *id != self.group).collect();
        let rds = self.clients.rds(&self.region).await;
        if let Some(arn) = instance.db_instance_arn() {
            let tag = Tag::builder().key(MARKER).value(marker_value(ctx, &previous)).build();
            if let Err(e) = rds.add_tags_to_resource().resource_name(arn).tags(tag).send().await {
                let error = step_error(&e, &format!("tag `{}` with the groups it had", self.instance), "with.instance");
                // Fencing matters more than the output: a crash before the receipt would lose the groups.
                tracing::warn!("{error} (fencing it anyway)");
            }
        }
        rds.modify_db_instance()
            .db_instance_identifier(&self.instance)
            .vpc_security_group_ids(&self.group)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| {
                step_error(&e, &format!("fence DB instance `{}` in {}", self.instance, self.region), "with")
            })?;
        Ok(Receipt::of(&previous))
    }

    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> Progress {
        let groups = match self.describe().await {
            Ok(instance) => groups(&instance),
            Err(e) => return Progress::Failed(e),
        };
        if fenced(&groups, &self.group) {
            return Progress::Done;
        }
        let listed: Vec<String> = groups.iter().map(|(id, status)| format!("{id} ({status})")).collect();
        Progress::Waiting(format!("{} to have only {} active (now {})", self.instance, self.group, listed.join(", ")))
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_secs(2)
    }

    async fn verify(&self, _ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError> {
        match fenced(&groups(&self.describe().await?), &self.group) {
            true => Ok(self.outputs(true, false, &receipt.read::<Vec<String>>()?)),
            false => Err(StepError::retryable(format!(
                "{} still has other security groups than {}",
                self.instance, self.group
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(run: &str) -> StepContext {
        StepContext {
            run_id: run.to_string(),
            step_id: "fence".to_string(),
            attempt: 1,
            first_started_at: std::time::SystemTime::UNIX_EPOCH,
            clock: std::sync::Arc::new(crate::clock::SystemClock),
        }
    }

    #[test]
    fn the_marker_gives_back_the_groups_only_to_the_step_that_wrote_it() {
        let tagged =
            |value: String| DbInstance::builder().tag_list(Tag::builder().key(MARKER).value(value).build()).build();
        let (ours, theirs) = (ctx("plan-failover-20261130T000000Z-1a2b"), ctx("plan-failover-20261129T000000Z-9f9f"));
        let previous = vec!["sg-app".to_string(), "sg-admin".to_string()];
        let value = marker_value(&ours, &previous);
        assert_eq!(value, "run=plan-failover-20261130T000000Z-1a2b step=fence groups=sg-app/sg-admin");
        assert_eq!(marked_groups(&tagged(value.clone()), &ours), Some(previous));
        assert_eq!(marked_groups(&tagged(value), &theirs), None, "another run's marker is not ours");
        assert_eq!(marked_groups(&tagged(marker_value(&ours, &[])), &ours), Some(vec![]));
        assert_eq!(marked_groups(&DbInstance::builder().build(), &ours), None);
    }

    #[test]
    fn only_the_fence_group_active_is_fenced() {
        let g = |list: &[(&str, &str)]| list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        assert!(fenced(&g(&[("sg-fence", "active")]), "sg-fence"));
        assert!(!fenced(&g(&[("sg-fence", "adding")]), "sg-fence"));
        assert!(!fenced(&g(&[("sg-fence", "active"), ("sg-app", "removing")]), "sg-fence"));
        assert!(!fenced(&g(&[("sg-app", "active")]), "sg-fence"));
        assert!(!fenced(&[], "sg-fence"));
    }
}
