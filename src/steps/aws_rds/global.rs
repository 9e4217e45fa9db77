//! `aws.rds.global_failover`: makes an Aurora global database's secondary cluster the writer, by
//! FailoverGlobalCluster (the primary region is down; `allow_data_loss` for an unplanned failover)
//! or SwitchoverGlobalCluster (both regions are up: no data loss).
//!
//! moto does not implement these calls; the unit tests below script the SDK's answers.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_rds::types::{FailoverStatus, GlobalCluster};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Clients, Source, parse_arn};
use crate::aws::step_error;
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, Progress, Receipt, Step, StepContext, StepError, TypedStep,
};
use crate::steps::{HumanDuration, Services};

/// The `aws.rds.global_failover` step type.
pub struct GlobalFailover {
    source: Source,
}

impl GlobalFailover {
    pub fn new(services: &Services) -> Self {
        GlobalFailover { source: Source::Aws(services.aws.clone()) }
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
            nothing may be lost. A global database whose writer is already the target is left alone; the step waits \
            until the global database is available.",
        example: r#"
global_cluster: app-global
target_cluster: arn:aws:rds:us-west-2:123456789012:cluster:app-west
mode: failover
allow_data_loss: true
"#,
        failure: crate::aws::STEP_FAILURES,
    };
    type Params = GlobalFailoverParams;
    const NAME: &'static str = "aws.rds.global_failover";
    const SUMMARY: &'static str = "Makes a secondary cluster of an Aurora global database the writer (failover or \
                                   switchover) and waits until the global database is available.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::reference("writer", "The ARN of the cluster that is now the writer (`target_cluster`)."),
        OutputSpec::string("endpoint", "The new writer cluster's endpoint."),
    ];

    fn build(&self, GlobalFailoverParams(p): GlobalFailoverParams, context: &BuildContext) -> Box<dyn Step> {
        let arn_region = parse_arn(&p.target_cluster, "cluster").map(|(r, _)| r.to_string());
        let region = p.region.or(arn_region).unwrap_or_else(|| context.target_region().to_string());
        Box::new(GlobalFailoverStep {
            clients: Clients::new(&self.source, context),
            global_cluster: p.global_cluster,
            target: p.target_cluster,
            mode: p.mode,
            allow_data_loss: p.allow_data_loss,
            region,
            poll: p.poll_interval.0,
        })
    }
}

struct GlobalFailoverStep {
    clients: Clients,
    global_cluster: String,
    target: String,
    mode: Mode,
    allow_data_loss: bool,
    region: String,
    poll: Duration,
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

    fn outputs(&self, cluster: &GlobalCluster) -> Outputs {
        Outputs::from([
            ("writer".to_string(), self.target.clone()),
            ("endpoint".to_string(), cluster.endpoint().unwrap_or_default().to_string()),
        ])
    }
}

#[async_trait]
impl Step for GlobalFailoverStep {
    fn describe(&self) -> String {
        let loss = if self.allow_data_loss { " (allowing data loss)" } else { "" };
        format!("{} {} to {}{loss}", self.verb(), self.global_cluster, self.target)
    }

    /// Done when the target is already the writer; a move to the target already under way is
    /// polled instead of being started again.
    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        let rds = self.clients.rds(&self.region).await;
        let cluster = self.describe_global(&rds).await?;
        Ok(match self.standing(&cluster)? {
            Standing::Done => Observation::Done(self.outputs(&cluster)),
            Standing::Secondary => Observation::NotDone,
            Standing::Moving => Observation::InProgress(Receipt::NONE),
        })
    }

    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
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
                .map(|_| Receipt::NONE)
                .map_err(|e| step_error(&e, &action, field(super::code(&e)))),
            Mode::Switchover => rds
                .switchover_global_cluster()
                .global_cluster_identifier(&self.global_cluster)
                .target_db_cluster_identifier(&self.target)
                .send()
                .await
                .map(|_| Receipt::NONE)
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

    async fn verify(&self, _ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        let rds = self.clients.rds(&self.region).await;
        let cluster = self.describe_global(&rds).await?;
        match self.standing(&cluster)? {
            Standing::Done => Ok(self.outputs(&cluster)),
            other => Err(StepError::retryable(format!(
                "`{}` is not the available writer of `{}` yet ({other:?})",
                self.target, self.global_cluster
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::SystemTime;

    use aws_sdk_rds::Client;
    use aws_sdk_rds::operation::describe_global_clusters::{DescribeGlobalClustersError, DescribeGlobalClustersOutput};
    use aws_sdk_rds::operation::failover_global_cluster::{FailoverGlobalClusterError, FailoverGlobalClusterOutput};
    use aws_sdk_rds::operation::switchover_global_cluster::SwitchoverGlobalClusterOutput;
    use aws_sdk_rds::types::error::GlobalClusterNotFoundFault;
    use aws_sdk_rds::types::{FailoverState, GlobalClusterMember};
    use aws_smithy_mocks::{Rule, RuleMode, mock};

    use super::*;
    use crate::clock::{Clock, TokioClock};
    use crate::engine::Engine;
    use crate::engine::events::Silent;
    use crate::engine::lifecycle::{RunOptions, begin};
    use crate::engine::retry::RetryPolicy;
    use crate::engine::state::RunState;
    use crate::journal::{Record, StateDir};
    use crate::plan::{Direction, parse};
    use crate::step::Registry;
    use crate::steps::aws_rds::mocks;
    use crate::steps::test_server::{build, build_error, ctx};

    const EAST: &str = "arn:aws:rds:us-east-1:123456789012:cluster:portfolio-east";
    const WEST: &str = "arn:aws:rds:us-west-2:123456789012:cluster:portfolio-west";
    const YAML: &str = "global_cluster: portfolio\ntarget_cluster: arn:aws:rds:us-west-2:123456789012:cluster:portfolio-west\n\
                        mode: failover\nallow_data_loss: true\npoll_interval: 1s\n";

    fn kind(rules: &[&Rule]) -> GlobalFailover {
        let source = Source::Fixed(mocks::rds(RuleMode::MatchAny, rules), mocks::cloudwatch(RuleMode::MatchAny, &[]));
        GlobalFailover { source }
    }

    /// The global database with `writer` as its writer, `status`, and a move to `moving_to` under way.
    fn global(writer: &str, status: &str, moving_to: Option<&str>) -> DescribeGlobalClustersOutput {
        let member = |arn: &str| GlobalClusterMember::builder().db_cluster_arn(arn).is_writer(arn == writer).build();
        let failover = moving_to.map(|to| {
            FailoverState::builder()
                .status(FailoverStatus::FailingOver)
                .from_db_cluster_arn(EAST)
                .to_db_cluster_arn(to)
                .build()
        });
        let cluster = GlobalCluster::builder()
            .global_cluster_identifier("portfolio")
            .status(status)
            .endpoint("portfolio.global-abc.global.rds.amazonaws.com")
            .global_cluster_members(member(EAST))
            .global_cluster_members(member(WEST))
            .set_failover_state(failover)
            .build();
        DescribeGlobalClustersOutput::builder().global_clusters(cluster).build()
    }

    fn failover() -> Rule {
        mock!(Client::failover_global_cluster)
            .match_requests(|r| {
                r.global_cluster_identifier() == Some("portfolio")
                    && r.target_db_cluster_identifier() == Some(WEST)
                    && r.allow_data_loss() == Some(true)
            })
            .then_output(|| FailoverGlobalClusterOutput::builder().build())
    }

    #[test]
    fn parameters_are_checked_across_fields() {
        let kind = kind(&[]);
        assert!(
            build_error(&kind, &YAML.replace("mode: failover", "mode: switchover")).contains("`mode: failover` only")
        );
        assert!(build_error(&kind, &YAML.replace(WEST, "portfolio-west")).contains("DB cluster ARN"));
        assert!(build_error(&kind, &YAML.replace("mode: failover", "mode: promote")).contains("unknown variant"));
        let step = build(&kind, YAML);
        assert_eq!(step.describe(), format!("fail over global database portfolio to {WEST} (allowing data loss)"));
    }

    #[tokio::test(start_paused = true)]
    async fn fails_over_and_waits_for_the_target_to_be_the_available_writer() {
        let describe = mock!(Client::describe_global_clusters)
            .sequence()
            .output(|| global(EAST, "available", None))
            .output(|| global(EAST, "failing-over", Some(WEST)))
            .output(|| global(WEST, "modifying", None))
            .output(|| global(WEST, "available", None))
            .repeatedly()
            .build();
        let failover = failover();
        let step = build(&kind(&[&describe, &failover]), YAML);
        let ctx = ctx();
        assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
        let receipt = step.act(&ctx).await.unwrap();
        crate::steps::test_server::settle(&*step, &ctx, &receipt).await.unwrap();
        assert_eq!(describe.num_calls(), 4);
        let outputs = step.verify(&ctx, &receipt).await.unwrap();
        assert_eq!(outputs["writer"], WEST);
        assert_eq!(outputs["endpoint"], "portfolio.global-abc.global.rds.amazonaws.com");
        assert_eq!(failover.num_calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_already_writing_or_on_its_way_is_not_failed_over_again() {
        let describe = mock!(Client::describe_global_clusters)
            .sequence()
            .output(|| global(EAST, "failing-over", Some(WEST)))
            .output(|| global(WEST, "available", None))
            .repeatedly()
            .build();
        let failover = failover();
        let step = build(&kind(&[&describe, &failover]), YAML);
        // On its way: polled, not failed over again.
        let Observation::InProgress(receipt) = step.observe(&ctx()).await.unwrap() else { panic!("not under way") };
        crate::steps::test_server::settle(&*step, &ctx(), &receipt).await.unwrap();
        let Observation::Done(outputs) = step.observe(&ctx()).await.unwrap() else { panic!("not done") };
        assert_eq!(outputs["writer"], WEST);
        assert_eq!(failover.num_calls(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn switchover_mode_calls_switchover() {
        let describe = mock!(Client::describe_global_clusters)
            .sequence()
            .output(|| global(EAST, "available", None))
            .output(|| global(WEST, "available", None))
            .repeatedly()
            .build();
        let switchover = mock!(Client::switchover_global_cluster)
            .match_requests(|r| r.target_db_cluster_identifier() == Some(WEST))
            .then_output(|| SwitchoverGlobalClusterOutput::builder().build());
        let failover = failover();
        let yaml = YAML.replace("mode: failover\nallow_data_loss: true", "mode: switchover");
        let step = build(&kind(&[&describe, &switchover, &failover]), &yaml);
        assert_eq!(step.describe(), format!("switch over global database portfolio to {WEST}"));
        let ctx = ctx();
        assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
        let receipt = step.act(&ctx).await.unwrap();
        crate::steps::test_server::settle(&*step, &ctx, &receipt).await.unwrap();
        assert_eq!((switchover.num_calls(), failover.num_calls()), (1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn wrong_names_fail_fast_naming_the_field() {
        let missing = mock!(Client::describe_global_clusters).then_error(|| {
            DescribeGlobalClustersError::GlobalClusterNotFoundFault(GlobalClusterNotFoundFault::builder().build())
        });
        let e = build(&kind(&[&missing]), YAML).observe(&ctx()).await.unwrap_err();
        assert!(!e.is_retryable() && e.message.contains("`with.global_cluster`"), "{e}");

        let describe = mock!(Client::describe_global_clusters).then_output(|| global(EAST, "available", None));
        let yaml = YAML.replace("portfolio-west", "portfolio-north");
        let e = build(&kind(&[&describe]), &yaml).observe(&ctx()).await.unwrap_err();
        assert!(!e.is_retryable(), "{e}");
        assert!(e.message.contains("`with.target_cluster`") && e.message.contains(EAST), "{e}");

        let elsewhere = mock!(Client::describe_global_clusters)
            .then_output(|| global(EAST, "failing-over", Some("arn:aws:rds:eu-west-1:1:cluster:x")));
        let e = build(&kind(&[&elsewhere]), YAML).observe(&ctx()).await.unwrap_err();
        assert!(!e.is_retryable() && e.message.contains("already moving its writer"), "{e}");
    }

    /// Through the engine: a throttled FailoverGlobalCluster is a retryable failure, journaled as
    /// such; the next attempt observes again, acts, and succeeds.
    #[tokio::test(start_paused = true)]
    async fn throttling_is_retried_by_the_engine_until_the_failover_succeeds() {
        let describe = mock!(Client::describe_global_clusters)
            .sequence()
            .output(|| global(EAST, "available", None))
            .times(2)
            .output(|| global(WEST, "available", None))
            .repeatedly()
            .build();
        let failover = mock!(Client::failover_global_cluster)
            .sequence()
            .error(|| FailoverGlobalClusterError::generic(mocks::aws_error("Throttling")))
            .output(|| FailoverGlobalClusterOutput::builder().build())
            .build();
        let mut registry = Registry::default();
        registry.register(kind(&[&describe, &failover]));
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(SystemTime::UNIX_EPOCH));
        let retry = RetryPolicy { base: Duration::from_secs(1), max: Duration::from_secs(8) };
        let engine =
            Engine { registry, clock: clock.clone(), reporter: Arc::new(Silent), retry, wait: Default::default() };
        let text = format!(
            "name: g\nregions: {{primary: us-east-1, secondary: us-west-2}}\nobjectives: {{rto: 15m, rpo: 5m}}\n\
             failover:\n  - id: global\n    type: aws.rds.global_failover\n    retries: 2\n    with:\n      \
             global_cluster: portfolio\n      target_cluster: {WEST}\n      mode: failover\n      poll_interval: 1s\n\
             failback:\n  - id: back\n    type: aws.rds.global_failover\n    with: {{global_cluster: portfolio, \
             target_cluster: {EAST}, mode: switchover}}\n"
        );
        let plan = parse(Path::new("g.yaml"), &text, &engine.registry).unwrap_or_else(|e| panic!("{e}"));
        let state = StateDir::new(crate::journal::tests::tempdir());
        let mut active = begin(&state, &plan, Direction::Failover, clock.as_ref(), &RunOptions::default()).unwrap();
        let mut never = std::pin::pin!(std::future::pending::<String>());
        let outcome = engine.execute(&plan, &mut active.journal, &mut active.view, never.as_mut()).await.unwrap();
        assert_eq!(outcome, RunState::Succeeded);
        let records: Vec<Record> = crate::journal::read(&state.journal_path(&active.view.run_id))
            .unwrap()
            .into_iter()
            .map(|e| e.record)
            .collect();
        let retrying: Vec<&Record> = records.iter().filter(|r| matches!(r, Record::StepRetrying { .. })).collect();
        assert_eq!(retrying.len(), 1, "{records:#?}");
        let Record::StepRetrying { error, attempt: 1, .. } = retrying[0] else { panic!("{retrying:?}") };
        assert!(error.contains("Throttling"), "{error}");
        let succeeded = records.iter().find_map(|r| match r {
            Record::StepSucceeded { outputs, already_done, .. } => Some((outputs.clone(), *already_done)),
            _ => None,
        });
        let (outputs, already_done) = succeeded.expect("the step succeeded");
        assert_eq!((outputs["writer"].as_str(), already_done), (WEST, false));
        assert_eq!(failover.num_calls(), 2);
    }
}
