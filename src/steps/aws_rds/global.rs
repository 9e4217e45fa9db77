//! `aws.rds.global_failover`: makes an Aurora global database's secondary cluster the writer, by
//! FailoverGlobalCluster (the primary region is down; `allow_data_loss` for an unplanned failover)
//! or SwitchoverGlobalCluster (both regions are up: no data loss).
//!
//! A failover with `allow_data_loss: true` goes through the RPO gate (`crate::steps::lag_gate`),
//! as every promotion does: the target cluster's `AuroraGlobalDBRPOLag` (CloudWatch, milliseconds,
//! dimension `DBClusterIdentifier`) must be within `max_lag` (default: the plan's RPO), or
//! `--accept-data-loss` must cover it; an unknown lag needs `--accept-data-loss`. A switchover, and
//! a failover without `allow_data_loss` (AWS then waits for the secondary to catch up), lose
//! nothing and are not gated.
//!
//! moto does not implement these calls; the unit tests (`global_tests.rs`) script the SDK's answers.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_rds::types::{FailoverStatus, GlobalCluster};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::lag_metric::LagMetric;
use super::{Clients, Source, parse_arn};
use crate::aws::step_error;
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, Progress, Receipt, Step, StepContext, StepError, TypedStep,
};
use crate::steps::lag_gate::{Assessment, Limit, Subject, decide};
use crate::steps::{HumanDuration, Services};

/// The `aws.rds.global_failover` step type.
pub struct GlobalFailover {
    source: Source,
    accept_data_loss: Option<Duration>,
    /// For CloudWatch's Query protocol with emulators.
    http: reqwest::Client,
}

impl GlobalFailover {
    pub fn new(services: &Services) -> Self {
        GlobalFailover {
            source: Source::Aws(services.aws.clone()),
            accept_data_loss: services.accept_data_loss,
            http: services.http.clone(),
        }
    }
}

/// How the writer moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// FailoverGlobalCluster: for when the primary region is impaired.
    Failover,
    /// SwitchoverGlobalCluster: planned, both regions healthy, no data loss.
    Switchover,
}

/// `with:` of an `aws.rds.global_failover` step.
#[derive(Deserialize, JsonSchema)]
#[serde(try_from = "GlobalFailoverFields")]
pub struct GlobalFailoverParams(GlobalFailoverFields);

/// The fields of [`GlobalFailoverParams`], before checks across fields.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobalFailoverFields {
    /// The global database's identifier.
    pub global_cluster: String,
    /// The ARN of the secondary cluster to make the writer.
    pub target_cluster: String,
    /// `failover` or `switchover`.
    pub mode: Mode,
    /// With `mode: failover`, allow losing the writes not yet replicated (an unplanned failover).
    #[serde(default)]
    pub allow_data_loss: bool,
    /// With `allow_data_loss: true`, the most RPO lag (`AuroraGlobalDBRPOLag`, data loss as time) to
    /// fail over with (default: the plan's RPO); more needs `--accept-data-loss`.
    #[serde(default)]
    pub max_lag: Option<HumanDuration>,
    /// The region to call (default: the target cluster's).
    #[serde(default)]
    pub region: Option<String>,
    /// How often to look while the writer moves (default 5s).
    #[serde(default = "super::default_poll")]
    pub poll_interval: HumanDuration,
}

impl TryFrom<GlobalFailoverFields> for GlobalFailoverParams {
    type Error = &'static str;
    fn try_from(fields: GlobalFailoverFields) -> Result<Self, Self::Error> {
        if fields.allow_data_loss && fields.mode == Mode::Switchover {
            return Err("`allow_data_loss` applies to `mode: failover` only; a switchover never loses data");
        }
        if fields.max_lag.is_some() && !fields.allow_data_loss {
            return Err("`max_lag` applies with `allow_data_loss: true` only; without it nothing is lost");
        }
        if parse_arn(&fields.target_cluster, "cluster").is_none() {
            return Err("`target_cluster` must be a DB cluster ARN (arn:aws:rds:REGION:ACCOUNT:cluster:NAME)");
        }
        Ok(GlobalFailoverParams(fields))
    }
}

impl TypedStep for GlobalFailover {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Moves the writer of an Aurora global database to one of its secondary clusters: `mode: failover` \
            (FailoverGlobalCluster) when the primary region is impaired, with `allow_data_loss: true` for an \
            unplanned failover, or `mode: switchover` (SwitchoverGlobalCluster) when both regions are healthy and \
            nothing may be lost. With `allow_data_loss: true` it first reads the target cluster's RPO lag \
            (CloudWatch `AuroraGlobalDBRPOLag`) and refuses when it exceeds `max_lag` (the plan's RPO by default), \
            or cannot be measured, unless `--accept-data-loss` covers it. A global database whose writer is already the target is left alone; the step waits \
            until the global database is available.",
        example: r#"
global_cluster: app-global
target_cluster: arn:aws:rds:us-west-2:123456789012:cluster:app-west
mode: failover
allow_data_loss: true
"#,
        failure: "With `allow_data_loss: true`, an RPO lag beyond `max_lag`, or one that cannot be measured, fails \
            the step at once unless `--accept-data-loss` covers it; the message says how much would be lost and the \
            flag that accepts it. Throttling, 5xx answers, timeouts and connection failures are retried; invalid \
            input, a missing resource and access denied fail at once with AWS's error code and the parameter to fix.",
    };
    type Params = GlobalFailoverParams;
    const NAME: &'static str = "aws.rds.global_failover";
    const SUMMARY: &'static str = "Makes a secondary cluster of an Aurora global database the writer (failover or \
                                   switchover) and waits until the global database is available.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::reference("writer", "The ARN of the cluster that is now the writer (`target_cluster`)."),
        OutputSpec::string("endpoint", "The new writer cluster's endpoint."),
        OutputSpec::duration(
            "rpo_lag_s",
            "The target cluster's RPO lag in seconds (CloudWatch `AuroraGlobalDBRPOLag`) when this step failed \
                over with `allow_data_loss: true`; absent otherwise, or when it could not be measured (and \
                `--accept-data-loss` was given).",
        )
        .optional(),
        OutputSpec::duration(
            "accepted_data_loss_s",
            "The data loss in seconds accepted with `--accept-data-loss`; absent when the lag was within \
                `max_lag`, could not be measured, or nothing could be lost.",
        )
        .optional(),
    ];

    fn build(&self, GlobalFailoverParams(p): GlobalFailoverParams, context: &BuildContext) -> Box<dyn Step> {
        let arn_region = parse_arn(&p.target_cluster, "cluster").map(|(r, _)| r.to_string());
        let region = p.region.or(arn_region).unwrap_or_else(|| context.target_region().to_string());
        // Only an unplanned failover can lose data; the others need no gate.
        let gate = (p.mode == Mode::Failover && p.allow_data_loss).then(|| Gate {
            limit: Limit::of(p.max_lag.map(|m| m.0), context.plan.objectives.rpo),
            accept: self.accept_data_loss,
            http: self.http.clone(),
        });
        Box::new(GlobalFailoverStep {
            clients: Clients::new(&self.source, context),
            global_cluster: p.global_cluster,
            target: p.target_cluster,
            mode: p.mode,
            allow_data_loss: p.allow_data_loss,
            region,
            poll: p.poll_interval.0,
            gate,
        })
    }
}

/// The RPO gate of an unplanned failover.
struct Gate {
    limit: Limit,
    accept: Option<Duration>,
    http: reqwest::Client,
}

/// What an accepted failover learned: the lag the gate let it through with (none when ungated).
/// Journaled as the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
struct FailedOver {
    assessment: Assessment,
}

struct GlobalFailoverStep {
    clients: Clients,
    global_cluster: String,
    target: String,
    mode: Mode,
    allow_data_loss: bool,
    region: String,
    poll: Duration,
    gate: Option<Gate>,
}

/// Where the global database stands relative to the target.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    /// The target is the writer and the global database is available.
    Done,
    /// A failover or switchover to the target is under way, or the target is the writer but the
    /// global database is not available yet.
    Moving,
    /// The target is a secondary: act.
    Secondary,
}

fn in_progress(cluster: &GlobalCluster) -> Option<(&str, &str)> {
    let state = cluster.failover_state()?;
    let status = state.status()?;
    let moving = matches!(status, FailoverStatus::Pending | FailoverStatus::FailingOver | FailoverStatus::Cancelling);
    moving.then(|| (state.to_db_cluster_arn().unwrap_or("?"), status.as_str()))
}

impl GlobalFailoverStep {
    async fn describe_global(&self, rds: &aws_sdk_rds::Client) -> Result<GlobalCluster, StepError> {
        let action = format!("describe global cluster `{}` in {}", self.global_cluster, self.region);
        let answer = rds
            .describe_global_clusters()
            .global_cluster_identifier(&self.global_cluster)
            .send()
            .await
            .map_err(|e| step_error(&e, &action, "with.global_cluster"))?;
        answer.global_clusters().first().cloned().ok_or_else(|| {
            StepError::fatal(format!(
                "global cluster `{}` does not exist: check `with.global_cluster` and the step's `region`",
                self.global_cluster
            ))
        })
    }

    fn standing(&self, cluster: &GlobalCluster) -> Result<Standing, StepError> {
        let members = cluster.global_cluster_members();
        let Some(target) = members.iter().find(|m| m.db_cluster_arn() == Some(self.target.as_str())) else {
            let arns: Vec<&str> = members.iter().filter_map(|m| m.db_cluster_arn()).collect();
            return Err(StepError::fatal(format!(
                "`{}` is not a member of global cluster `{}` (its members: {}): check `with.target_cluster`",
                self.target,
                self.global_cluster,
                if arns.is_empty() { "none".to_string() } else { arns.join(", ") }
            )));
        };
        if let Some((to, status)) = in_progress(cluster) {
            if to == self.target {
                return Ok(Standing::Moving);
            }
            return Err(StepError::fatal(format!(
                "global cluster `{}` is already moving its writer to `{to}` ({status}): let it finish or cancel it, \
                 then check `with.target_cluster`",
                self.global_cluster
            )));
        }
        Ok(match (target.is_writer() == Some(true), cluster.status() == Some("available")) {
            (true, true) => Standing::Done,
            (true, false) => Standing::Moving,
            (false, _) => Standing::Secondary,
        })
    }

    fn verb(&self) -> &'static str {
        match self.mode {
            Mode::Failover => "fail over global database",
            Mode::Switchover => "switch over global database",
        }
    }

    fn outputs(&self, cluster: &GlobalCluster, assessment: Assessment) -> Outputs {
        let mut outputs = Outputs::from([
            ("writer".to_string(), self.target.clone()),
            ("endpoint".to_string(), cluster.endpoint().unwrap_or_default().to_string()),
        ]);
        // Unknown is absent: the assessment's "" and "unknown" are not values.
        let measured = |v: &String| !matches!(v.as_str(), "" | "unknown");
        outputs.extend(Some(("rpo_lag_s".into(), assessment.lag_s)).filter(|(_, v)| measured(v)));
        outputs.extend(Some(("accepted_data_loss_s".into(), assessment.accepted_s)).filter(|(_, v)| measured(v)));
        outputs
    }

    /// For an unplanned failover: reads the target's RPO lag and asks the RPO gate. Nothing to
    /// ask otherwise (an empty assessment).
    async fn gate(&self, ctx: &StepContext) -> Result<Assessment, StepError> {
        let Some(gate) = &self.gate else { return Ok(Assessment::default()) };
        let cluster = parse_arn(&self.target, "cluster").map_or(self.target.as_str(), |(_, name)| name);
        let metric = LagMetric {
            metric: "AuroraGlobalDBRPOLag",
            dimension: ("DBClusterIdentifier", cluster),
            seconds_per_unit: 0.001,
            field: "with.target_cluster",
        };
        let lag = metric.read(&self.clients, &gate.http, &self.region, ctx).await?;
        let what = format!("secondary cluster `{cluster}` of global database `{}`", self.global_cluster);
        let subject = Subject { what: &what, behind: "its writer", basis: None };
        let assessment = decide(&subject, &lag, &gate.limit, gate.accept)?;
        if !assessment.accepted_s.is_empty() {
            tracing::warn!(
                "failing over `{}` to `{cluster}` with an RPO lag of {}s: data loss accepted with --accept-data-loss",
                self.global_cluster,
                assessment.lag_s
            );
        }
        Ok(assessment)
    }
}

#[async_trait]
impl Step for GlobalFailoverStep {
    fn describe(&self) -> String {
        let loss = match &self.gate {
            Some(gate) => format!(" (allowing data loss up to {})", HumanDuration(gate.limit.max)),
            None => String::new(),
        };
        format!("{} {} to {}{loss}", self.verb(), self.global_cluster, self.target)
    }

    /// Done when the target is already the writer; a move to the target already under way is
    /// polled instead of being started again.
    /// An unplanned failover is refused here, before anything is journaled as acting, when the
    /// RPO gate says no.
    async fn observe(&self, ctx: &StepContext) -> Result<Observation, StepError> {
        let rds = self.clients.rds(&self.region).await;
        let cluster = self.describe_global(&rds).await?;
        Ok(match self.standing(&cluster)? {
            Standing::Done => Observation::Done(self.outputs(&cluster, Assessment::default())),
            Standing::Secondary => self.gate(ctx).await.map(|_| Observation::NotDone)?,
            Standing::Moving => Observation::InProgress(Receipt::NONE),
        })
    }

    /// Asks the RPO gate again (the lag measured now is the one the failover goes ahead with),
    /// then starts the move.
    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError> {
        let assessment = self.gate(ctx).await?;
        let receipt = if self.gate.is_some() { Receipt::of(&FailedOver { assessment }) } else { Receipt::NONE };
        let rds = self.clients.rds(&self.region).await;
        let action = format!("{} `{}` to `{}`", self.verb(), self.global_cluster, self.target);
        // GlobalClusterNotFound... names the global cluster; the rest (DBClusterNotFound, invalid
        // cluster state, a target in another engine version) the target.
        let field = |code: Option<&str>| match code {
            Some(c) if c.starts_with("GlobalCluster") || c.starts_with("InvalidGlobalCluster") => "with.global_cluster",
            _ => "with.target_cluster",
        };
        match self.mode {
            Mode::Failover => rds
                .failover_global_cluster()
                .global_cluster_identifier(&self.global_cluster)
                .target_db_cluster_identifier(&self.target)
                .allow_data_loss(self.allow_data_loss)
                .send()
                .await
                .map(|_| receipt)
                .map_err(|e| step_error(&e, &action, field(super::code(&e)))),
            Mode::Switchover => rds
                .switchover_global_cluster()
                .global_cluster_identifier(&self.global_cluster)
                .target_db_cluster_identifier(&self.target)
                .send()
                .await
                .map(|_| receipt)
                .map_err(|e| step_error(&e, &action, field(super::code(&e)))),
        }
    }

    /// One look: done once the target is the available writer.
    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> Progress {
        let rds = self.clients.rds(&self.region).await;
        let standing = match self.describe_global(&rds).await {
            Ok(cluster) => self.standing(&cluster),
            Err(e) => return Progress::Failed(e),
        };
        match standing {
            Ok(Standing::Done) => Progress::Done,
            Ok(other) => Progress::Waiting(format!(
                "`{}` to become the available writer of `{}` ({other:?})",
                self.target, self.global_cluster
            )),
            Err(e) => Progress::Failed(e),
        }
    }

    fn poll_interval(&self) -> Duration {
        self.poll
    }

    async fn verify(&self, _ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError> {
        // No receipt: ungated, or a move found under way (its lag was not this step's to measure).
        let FailedOver { assessment } = if receipt.is_none() { FailedOver::default() } else { receipt.read()? };
        let rds = self.clients.rds(&self.region).await;
        let cluster = self.describe_global(&rds).await?;
        match self.standing(&cluster)? {
            Standing::Done => Ok(self.outputs(&cluster, assessment)),
            other => Err(StepError::retryable(format!(
                "`{}` is not the available writer of `{}` yet ({other:?})",
                self.target, self.global_cluster
            ))),
        }
    }
}

#[cfg(test)]
#[path = "global_tests.rs"]
mod tests;
