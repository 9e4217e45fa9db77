//! `aws.rds.promote_replica`: the runbook's `aws rds promote-read-replica` and
//! `aws rds wait db-instance-available`, refusing to lose more data than the RPO.
//!
//! Before promoting, the step reads the replica's lag (CloudWatch `AWS/RDS` `ReplicaLag`, the
//! Maximum of the latest minute in the last five) and refuses when it exceeds `max_lag` (the plan's
//! RPO by default), unless `--accept-data-loss` covers it; the accepted loss goes into the outputs,
//! which the journal keeps. See the module above for how a promotion is recognised.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_rds::types::{DbInstance, Tag};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::lag_metric::LagMetric;
use super::{Clients, Health, Source, broken, default_poll, describe_instance, health, instance_outputs, tag_safe};
use crate::aws::step_error;
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, Progress, Receipt, Step, StepContext, StepError, TypedStep,
};
use crate::steps::lag_gate::{Assessment, Lag, Limit, Subject, decide};
use crate::steps::{HumanDuration, Services};

mod preflight;

/// The tag that records an accepted PromoteReadReplica on the instance itself.
pub(crate) const MARKER: &str = "drctl:promoted";

/// The `aws.rds.promote_replica` step type.
pub struct PromoteReplica {
    source: Source,
    accept_data_loss: Option<Duration>,
    /// For CloudWatch's Query protocol with emulators (see the `query` module).
    http: reqwest::Client,
}

impl PromoteReplica {
    pub fn new(services: &Services) -> Self {
        PromoteReplica {
            source: Source::Aws(services.aws.clone()),
            accept_data_loss: services.accept_data_loss,
            http: services.http.clone(),
        }
    }
}

/// `with:` of an `aws.rds.promote_replica` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteReplicaParams {
    /// The read replica to promote: its DB instance identifier.
    pub replica: String,
    /// The replica's region (default: the region the run moves to).
    #[serde(default)]
    pub region: Option<String>,
    /// The most replica lag (data loss, as time) to promote with (default: the plan's RPO); more
    /// needs `--accept-data-loss`.
    #[serde(default)]
    pub max_lag: Option<HumanDuration>,
    /// How often to look while the promotion completes (default 5s).
    #[serde(default = "default_poll")]
    pub poll_interval: HumanDuration,
}

impl TypedStep for PromoteReplica {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Promotes an RDS read replica to a standalone, writable instance (`aws rds promote-read-replica`) \
            and waits until it is available and writable. Before promoting it reads the replica's lag (CloudWatch \
            `ReplicaLag`) and refuses when it exceeds `max_lag` (the plan's RPO by default) unless \
            `--accept-data-loss` covers it. A replica already promoted is left alone, so a resumed run never promotes \
            twice.",
        example: r#"
replica: app-db-west
max_lag: 30s
"#,
        failure: "A lag beyond `max_lag`, or one that cannot be measured, fails the step at once unless \
            `--accept-data-loss` covers it; the message says how much would be lost and the flag that accepts it. \
            Throttling, 5xx answers, timeouts and connection failures are retried; invalid input, a missing resource \
            and access denied fail at once with AWS's error code and the parameter to fix.",
    };
    type Params = PromoteReplicaParams;
    const NAME: &'static str = "aws.rds.promote_replica";
    const SUMMARY: &'static str = "Promotes an RDS read replica to a standalone, writable instance, refusing if it lags \
                                   more than the RPO unless --accept-data-loss covers it.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::string("endpoint", "The promoted instance's endpoint address (host name)."),
        OutputSpec::integer("port", "The port it listens on."),
        OutputSpec::reference("arn", "The instance's ARN."),
        OutputSpec::duration(
            "replica_lag_s",
            "The replica's lag in seconds (CloudWatch `ReplicaLag`) when it was promoted; absent when it could not \
                be measured (and `--accept-data-loss` was given) or the instance was found already promoted.",
        )
        .optional(),
        OutputSpec::duration(
            "accepted_data_loss_s",
            "The data loss in seconds accepted with `--accept-data-loss`; absent when the lag was within \
                `max_lag` or could not be measured.",
        )
        .optional(),
    ];

    fn build(&self, p: PromoteReplicaParams, context: &BuildContext) -> Box<dyn Step> {
        let limit = Limit::of(p.max_lag.map(|m| m.0), context.plan.objectives.rpo);
        Box::new(PromoteStep {
            clients: Clients::new(&self.source, context),
            region: p.region.unwrap_or_else(|| context.target_region().to_string()),
            replica: p.replica,
            limit,
            accept: self.accept_data_loss,
            http: self.http.clone(),
            poll: p.poll_interval.0,
        })
    }
}

/// What an accepted promotion learned: the lag it was let through with. Journaled as the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
struct Promoted {
    assessment: Assessment,
}

/// The replica's standing, given whether a promotion of it was accepted.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    Writable,
    Replica,
    Busy(String),
    Broken(String),
}

impl std::fmt::Display for Standing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Standing::Writable => f.write_str("writable"),
            Standing::Replica => f.write_str("still a read replica"),
            Standing::Busy(status) | Standing::Broken(status) => write!(f, "status `{status}`"),
        }
    }
}

fn standing(instance: &DbInstance, promotion_accepted: bool) -> Standing {
    let replicating = instance
        .status_infos()
        .iter()
        .any(|i| i.status_type().is_some_and(|t| t.eq_ignore_ascii_case("read replication")));
    let has_source = instance.read_replica_source_db_instance_identifier().is_some();
    match health(instance) {
        Health::Broken(status) => Standing::Broken(status),
        Health::Busy(status) => Standing::Busy(status),
        Health::Available if replicating || (has_source && !promotion_accepted) => Standing::Replica,
        Health::Available => Standing::Writable,
    }
}

/// The `drctl:promoted` tag's content: which instance, which run and step, what was measured.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marker {
    resource: String,
    run: String,
    step: String,
    assessment: Assessment,
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

impl Marker {
    fn value(&self) -> String {
        format!(
            "resource={} run={} step={} lag_s={} accepted_s={}",
            tag_safe(&self.resource),
            tag_safe(&self.run),
            tag_safe(&self.step),
            or_dash(&self.assessment.lag_s),
            or_dash(&self.assessment.accepted_s)
        )
    }

    fn parse(value: &str) -> Marker {
        let field = |name: &str| {
            let v = value.split_whitespace().find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')).unwrap_or("");
            if v == "-" { String::new() } else { v.to_string() }
        };
        Marker {
            resource: field("resource"),
            run: field("run"),
            step: field("step"),
            assessment: Assessment { lag_s: field("lag_s"), accepted_s: field("accepted_s") },
        }
    }

    /// The marker on `instance`, if it was written for this very instance (same `DbiResourceId`).
    fn on(instance: &DbInstance) -> Option<Marker> {
        let tag = instance.tag_list().iter().find(|t| t.key() == Some(MARKER))?;
        let marker = Marker::parse(tag.value().unwrap_or_default());
        let resource = tag_safe(instance.dbi_resource_id().unwrap_or_default());
        (marker.resource.is_empty() || marker.resource == resource).then_some(marker)
    }

    /// Whether this marker was written by step `ctx.step_id` of run `ctx.run_id`.
    fn is_from(&self, ctx: &StepContext) -> bool {
        self.run == tag_safe(&ctx.run_id) && self.step == tag_safe(&ctx.step_id)
    }
}

struct PromoteStep {
    clients: Clients,
    replica: String,
    region: String,
    limit: Limit,
    accept: Option<Duration>,
    http: reqwest::Client,
    poll: Duration,
}

impl PromoteStep {
    async fn describe_replica(&self, rds: &aws_sdk_rds::Client) -> Result<DbInstance, StepError> {
        describe_instance(rds, &self.replica, &self.region, "with.replica").await
    }

    /// The outputs of a writable instance, with the lag its promotion was let through with.
    fn outputs(instance: &DbInstance, assessment: Assessment) -> Outputs {
        let mut outputs = instance_outputs(instance);
        // Unknown is absent: the assessment's "" and "unknown" are not values.
        let measured = |v: &String| !matches!(v.as_str(), "" | "unknown");
        outputs.extend(Some(("replica_lag_s".into(), assessment.lag_s)).filter(|(_, v)| measured(v)));
        outputs.extend(Some(("accepted_data_loss_s".into(), assessment.accepted_s)).filter(|(_, v)| measured(v)));
        outputs
    }

    /// Measures the lag and asks the RPO gate.
    async fn gate(&self, ctx: &StepContext) -> Result<Assessment, StepError> {
        let lag = self.measure_lag(ctx).await?;
        let what = format!("read replica `{}`", self.replica);
        let subject = Subject { what: &what, behind: "its source", basis: None };
        let assessment = decide(&subject, &lag, &self.limit, self.accept)?;
        if !assessment.accepted_s.is_empty() {
            tracing::warn!(
                "promoting `{}` with a replica lag of {}s: data loss accepted with --accept-data-loss",
                self.replica,
                assessment.lag_s
            );
        }
        Ok(assessment)
    }

    /// ReplicaLag: the Maximum of the latest datapoint within the last five minutes.
    async fn measure_lag(&self, ctx: &StepContext) -> Result<Lag, StepError> {
        let metric = LagMetric {
            metric: "ReplicaLag",
            dimension: ("DBInstanceIdentifier", &self.replica),
            seconds_per_unit: 1.0,
            field: "with.replica",
        };
        metric.read(&self.clients, &self.http, &self.region, ctx).await
    }

    /// Records the accepted promotion on the instance. Best effort: the promotion happened either
    /// way; without the tag, a resumed run on a backend that keeps the source field (moto) promotes
    /// again, which is harmless there.
    async fn mark(
        &self,
        ctx: &StepContext,
        rds: &aws_sdk_rds::Client,
        promoted: Option<&DbInstance>,
        assessment: &Assessment,
    ) {
        let Some(instance) = promoted else { return };
        let Some(arn) = instance.db_instance_arn() else { return };
        let marker = Marker {
            resource: instance.dbi_resource_id().unwrap_or_default().to_string(),
            run: ctx.run_id.clone(),
            step: ctx.step_id.clone(),
            assessment: assessment.clone(),
        };
        let tag = Tag::builder().key(MARKER).value(marker.value()).build();
        if let Err(e) = rds.add_tags_to_resource().resource_name(arn).tags(tag).send().await {
            let error = step_error(&e, &format!("tag `{}` as promoted", self.replica), "with.replica");
            tracing::warn!("{error} (the promotion itself was accepted)");
        }
    }
}

#[async_trait]
impl Step for PromoteStep {
    async fn preflight(&self, ctx: &StepContext) -> Vec<crate::step::Finding> {
        self.preflight_findings(ctx).await
    }

    fn describe(&self) -> String {
        let accept = match self.accept {
            Some(a) => format!("; --accept-data-loss allows up to {}", HumanDuration(a)),
            None => String::new(),
        };
        format!(
            "promote read replica {} in {} (refuses if it lags more than {}{accept})",
            self.replica,
            self.region,
            HumanDuration(self.limit.max)
        )
    }

    /// Done when the instance is writable (see the module docs), with the lag its marker recorded if
    /// this step of this run promoted it; under way when it is busy with a promotion this step's
    /// marker records (the receipt was lost with its process).
    async fn observe(&self, ctx: &StepContext) -> Result<Observation, StepError> {
        let rds = self.clients.rds(&self.region).await;
        let instance = self.describe_replica(&rds).await?;
        let marker = Marker::on(&instance);
        let ours = marker.as_ref().filter(|m| m.is_from(ctx)).map(|m| m.assessment.clone());
        match standing(&instance, marker.is_some()) {
            Standing::Writable => Ok(Observation::Done(Self::outputs(&instance, ours.unwrap_or_default()))),
            // Refused here, before anything is journaled as acting; `act` asks again (the lag it
            // measures then is the one the promotion goes ahead with).
            Standing::Replica => self.gate(ctx).await.map(|_| Observation::NotDone),
            Standing::Busy(status) => match ours {
                Some(assessment) => Ok(Observation::InProgress(Receipt::of(&Promoted { assessment }))),
                None => Err(StepError::retryable(format!(
                    "read replica `{}` in {} is busy (status `{status}`); drctl looks again before promoting",
                    self.replica, self.region
                ))),
            },
            Standing::Broken(status) => Err(broken(&self.replica, &self.region, &status, "with.replica")),
        }
    }

    /// Measures the lag again and refuses beyond the RPO (nothing changed yet), else promotes and
    /// tags the instance as promoted before the receipt is journaled.
    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError> {
        let assessment = self.gate(ctx).await?;
        let rds = self.clients.rds(&self.region).await;
        let action = format!("promote read replica `{}` in {}", self.replica, self.region);
        let answer = match rds.promote_read_replica().db_instance_identifier(&self.replica).send().await {
            Ok(answer) => answer,
            // Not a replica (any more), or busy: the next attempt observes what it has become.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_invalid_db_instance_state_fault()) => {
                let error = step_error(&e, &action, "with.replica");
                return Err(StepError::retryable(format!("{error}; drctl looks at the instance again")));
            }
            Err(e) => return Err(step_error(&e, &action, "with.replica")),
        };
        self.mark(ctx, &rds, answer.db_instance(), &assessment).await;
        Ok(Receipt::of(&Promoted { assessment }))
    }

    /// One look: done once the instance is writable.
    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> Progress {
        let rds = self.clients.rds(&self.region).await;
        let instance = match self.describe_replica(&rds).await {
            Ok(instance) => instance,
            Err(e) => return Progress::Failed(e),
        };
        match standing(&instance, true) {
            Standing::Writable => Progress::Done,
            Standing::Broken(status) => Progress::Failed(broken(&self.replica, &self.region, &status, "with.replica")),
            other => Progress::Waiting(format!("`{}` in {} to become writable: {other}", self.replica, self.region)),
        }
    }

    fn poll_interval(&self) -> Duration {
        self.poll
    }

    async fn verify(&self, _ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError> {
        let Promoted { assessment } = receipt.read()?;
        let rds = self.clients.rds(&self.region).await;
        let instance = self.describe_replica(&rds).await?;
        match standing(&instance, true) {
            Standing::Writable => Ok(Self::outputs(&instance, assessment)),
            other => {
                Err(StepError::retryable(format!("`{}` in {} is not writable yet: {other}", self.replica, self.region)))
            }
        }
    }
}

#[cfg(test)]
#[path = "promote_tests.rs"]
mod tests;
