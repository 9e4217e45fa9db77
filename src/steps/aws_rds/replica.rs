//! `aws.rds.create_replica`: failback re-protection. After a failover the DR instance is the
//! primary; this replicates it back into the primary region so the failback has a replica to promote.
//!
//! The Rust SDK's CreateDBInstanceReadReplica has no `SourceRegion` (which the CLI uses to sign a
//! cross-region request): a cross-region source must be named by its ARN, so the step looks the
//! source up in `source_region` when given an identifier.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Clients, Source, field_for, find_instance, instance_outputs, other_region, parse_arn, wait_available};
use crate::aws::step_error;
use crate::step::{BuildContext, Observation, Outputs, Step, StepContext, StepError, TypedStep};
use crate::steps::{HumanDuration, Services};

/// The `aws.rds.create_replica` step type.
pub struct CreateReplica {
    source: Source,
}

impl CreateReplica {
    pub fn new(services: &Services) -> Self {
        CreateReplica { source: Source::Aws(services.aws.clone()) }
    }
}

/// `with:` of an `aws.rds.create_replica` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReplicaParams {
    /// The instance to replicate: its identifier (looked up in `source_region`) or its ARN.
    pub source: String,
    /// The source's region (default: the plan's other region relative to `region`, or the ARN's).
    #[serde(default)]
    pub source_region: Option<String>,
    /// The new replica's DB instance identifier.
    pub replica: String,
    /// Where to create the replica (default: the region the run moves to).
    #[serde(default)]
    pub region: Option<String>,
    /// The replica's instance class (default: the source's).
    #[serde(default)]
    pub instance_class: Option<String>,
    /// How often to look while the replica is created (default 5s).
    #[serde(default = "super::default_poll")]
    pub poll_interval: HumanDuration,
}

impl TypedStep for CreateReplica {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Failback re-protection: after a failover the DR instance is the primary, and this creates a read \
            replica of it in another region (from the source's ARN, or its identifier looked up in `source_region`) \
            so that the failback has a replica to promote. A replica that already exists is waited for, not created \
            again.",
        example: r#"
source: arn:aws:rds:us-west-2:123456789012:db:app-db
replica: app-db-east
region: us-east-1
"#,
        outputs: &[
            ("endpoint", "The replica's endpoint address (host name)."),
            ("port", "The port it listens on."),
            ("arn", "The replica's ARN."),
        ],
        failure: crate::aws::STEP_FAILURES,
    };
    type Params = CreateReplicaParams;
    const NAME: &'static str = "aws.rds.create_replica";
    const SUMMARY: &'static str =
        "Creates a cross-region RDS read replica (failback re-protection) and waits until it is available.";
    const OUTPUTS: &'static [&'static str] = &["endpoint", "port", "arn"];

    fn build(&self, p: CreateReplicaParams, context: &BuildContext) -> Box<dyn Step> {
        let region = p.region.unwrap_or_else(|| context.target_region().to_string());
        let source_region = match (parse_arn(&p.source, "db"), p.source_region) {
            (Some((arn_region, _)), Some(given)) if given != arn_region => Err(StepError::fatal(format!(
                "`with.source_region` ({given}) disagrees with the region of the ARN in `with.source` ({arn_region})"
            ))),
            (Some((arn_region, _)), _) => Ok(arn_region.to_string()),
            (None, Some(given)) => Ok(given),
            (None, None) => other_region(context.plan, &region, "with.source_region"),
        };
        Box::new(CreateReplicaStep {
            clients: Clients::new(&self.source, context),
            source: p.source,
            source_region,
            replica: p.replica,
            region,
            instance_class: p.instance_class,
            poll: p.poll_interval.0,
        })
    }
}

struct CreateReplicaStep {
    clients: Clients,
    source: String,
    source_region: Result<String, StepError>,
    replica: String,
    region: String,
    instance_class: Option<String>,
    poll: Duration,
}

/// `(region, lower-case identifier)` of an instance named by ARN, or by identifier in `region`.
fn instance_key(name: &str, region: &str) -> (String, String) {
    match parse_arn(name, "db") {
        Some((r, id)) => (r.to_string(), id.to_ascii_lowercase()),
        None => (region.to_string(), name.to_ascii_lowercase()),
    }
}

impl CreateReplicaStep {
    fn source_region(&self) -> Result<&str, StepError> {
        self.source_region.as_deref().map_err(Clone::clone)
    }

    /// Whether a replica's `ReadReplicaSourceDBInstanceIdentifier` names our source. RDS gives a
    /// same-region source by identifier and a cross-region one by ARN.
    fn is_our_source(&self, named: &str) -> Result<bool, StepError> {
        Ok(instance_key(named, &self.region) == instance_key(&self.source, self.source_region()?))
    }

    /// The source's ARN: as given, or looked up in the source region.
    async fn source_arn(&self) -> Result<String, StepError> {
        if parse_arn(&self.source, "db").is_some() {
            return Ok(self.source.clone());
        }
        let region = self.source_region()?;
        let rds = self.clients.rds(region).await;
        let instance = find_instance(&rds, &self.source, region, "with.source").await?.ok_or_else(|| {
            StepError::fatal(format!(
                "the source DB instance `{}` does not exist in {region}: check `with.source` and `with.source_region`",
                self.source
            ))
        })?;
        instance
            .db_instance_arn()
            .map(str::to_string)
            .ok_or_else(|| StepError::retryable(format!("RDS described `{}` in {region} without its ARN", self.source)))
    }
}

#[async_trait]
impl Step for CreateReplicaStep {
    fn describe(&self) -> String {
        let from = match &self.source_region {
            Ok(region) if parse_arn(&self.source, "db").is_none() => format!("{} in {region}", self.source),
            _ => self.source.clone(),
        };
        format!("create read replica {} of {from} in {}", self.replica, self.region)
    }

    /// Done when the replica exists as a replica of the source (once available); an instance of
    /// that name that replicates something else, or nothing, is an error, never overwritten.
    async fn observe(&self, ctx: &StepContext) -> Result<Observation, StepError> {
        let rds = self.clients.rds(&self.region).await;
        let Some(existing) = find_instance(&rds, &self.replica, &self.region, "with.replica").await? else {
            return Ok(Observation::NotDone);
        };
        match existing.read_replica_source_db_instance_identifier() {
            Some(named) if self.is_our_source(named)? => {
                let instance =
                    wait_available(ctx, &rds, &self.replica, &self.region, self.poll, "with.replica").await?;
                Ok(Observation::Done(instance_outputs(&instance)))
            }
            other => {
                let what = match other {
                    Some(named) => format!("it replicates `{named}`"),
                    None => "it is not a read replica".to_string(),
                };
                Err(StepError::fatal(format!(
                    "DB instance `{}` already exists in {} but is not a read replica of `{}` ({what}): choose another \
                     `with.replica`, or check `with.source`",
                    self.replica, self.region, self.source
                )))
            }
        }
    }

    async fn act(&self, _ctx: &StepContext) -> Result<(), StepError> {
        let source_arn = self.source_arn().await?;
        let rds = self.clients.rds(&self.region).await;
        let result = rds
            .create_db_instance_read_replica()
            .db_instance_identifier(&self.replica)
            .source_db_instance_identifier(&source_arn)
            .set_db_instance_class(self.instance_class.clone())
            .send()
            .await;
        let action = format!("create read replica `{}` of {source_arn} in {}", self.replica, self.region);
        match result {
            Ok(_) => Ok(()),
            // Created meanwhile (by an earlier attempt whose answer was lost): the next attempt observes it.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_db_instance_already_exists_fault()) => {
                Err(StepError::retryable(step_error(&e, &action, "with.replica").message))
            }
            Err(e) => {
                let field = field_for(super::code(&e), "with.source", "with.replica");
                Err(step_error(&e, &action, field))
            }
        }
    }

    async fn wait(&self, ctx: &StepContext) -> Result<(), StepError> {
        let rds = self.clients.rds(&self.region).await;
        wait_available(ctx, &rds, &self.replica, &self.region, self.poll, "with.replica").await.map(drop)
    }

    async fn verify(&self, ctx: &StepContext) -> Result<Outputs, StepError> {
        let rds = self.clients.rds(&self.region).await;
        let instance = wait_available(ctx, &rds, &self.replica, &self.region, self.poll, "with.replica").await?;
        Ok(instance_outputs(&instance))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::Client;
    use aws_sdk_rds::operation::create_db_instance_read_replica::CreateDbInstanceReadReplicaOutput;
    use aws_sdk_rds::operation::describe_db_instances::{DescribeDBInstancesError, DescribeDbInstancesOutput};
    use aws_sdk_rds::types::error::DbInstanceNotFoundFault;
    use aws_sdk_rds::types::{DbInstance, Endpoint};
    use aws_smithy_mocks::{RuleMode, mock};

    use super::*;
    use crate::steps::aws_rds::mocks;
    use crate::steps::test_server::{build, ctx};

    fn kind(rds: Client) -> CreateReplica {
        let cloudwatch = mocks::cloudwatch(RuleMode::MatchAny, &[]);
        CreateReplica { source: Source::Fixed(rds, cloudwatch) }
    }

    fn instance(id: &str, region: &str, source: Option<&str>) -> DbInstance {
        DbInstance::builder()
            .db_instance_identifier(id)
            .db_instance_status("available")
            .db_instance_arn(format!("arn:aws:rds:{region}:123456789012:db:{id}"))
            .set_read_replica_source_db_instance_identifier(source.map(str::to_string))
            .endpoint(Endpoint::builder().address(format!("{id}.x.{region}.rds.amazonaws.com")).port(5432).build())
            .build()
    }

    fn described(instance: DbInstance) -> DescribeDbInstancesOutput {
        DescribeDbInstancesOutput::builder().db_instances(instance).build()
    }

    const YAML: &str = "source: portfolio-dr-replica\nreplica: portfolio-prod-reprotected\nregion: us-east-1\n\
                        poll_interval: 1ms\n";

    #[tokio::test(start_paused = true)]
    async fn an_identifier_is_looked_up_in_the_other_region_and_passed_as_an_arn() {
        let missing = mock!(Client::describe_db_instances)
            .match_requests(|r| r.db_instance_identifier() == Some("portfolio-prod-reprotected"))
            .sequence()
            .error(|| DescribeDBInstancesError::DbInstanceNotFoundFault(DbInstanceNotFoundFault::builder().build()))
            .output(|| {
                described(instance(
                    "portfolio-prod-reprotected",
                    "us-east-1",
                    Some("arn:aws:rds:us-west-2:123456789012:db:portfolio-dr-replica"),
                ))
            })
            .repeatedly()
            .build();
        let source = mock!(Client::describe_db_instances)
            .match_requests(|r| r.db_instance_identifier() == Some("portfolio-dr-replica"))
            .then_output(|| described(instance("portfolio-dr-replica", "us-west-2", None)));
        let create = mock!(Client::create_db_instance_read_replica)
            .match_requests(|r| {
                r.source_db_instance_identifier() == Some("arn:aws:rds:us-west-2:123456789012:db:portfolio-dr-replica")
            })
            .then_output(|| CreateDbInstanceReadReplicaOutput::builder().build());
        let step = build(&kind(mocks::rds(RuleMode::MatchAny, &[&missing, &source, &create])), YAML);
        assert_eq!(
            step.describe(),
            "create read replica portfolio-prod-reprotected of portfolio-dr-replica in us-west-2 in us-east-1"
        );
        let ctx = ctx();
        assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
        step.act(&ctx).await.unwrap();
        step.wait(&ctx).await.unwrap();
        let outputs = step.verify(&ctx).await.unwrap();
        assert_eq!(outputs["endpoint"], "portfolio-prod-reprotected.x.us-east-1.rds.amazonaws.com");
        assert_eq!(outputs["port"], "5432");
        assert_eq!(create.num_calls(), 1);
        // A second run finds it and does not create it again.
        assert!(matches!(step.observe(&ctx).await.unwrap(), Observation::Done(_)));
        assert_eq!(create.num_calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_instance_that_replicates_something_else_is_not_taken() {
        let other = mock!(Client::describe_db_instances)
            .then_output(|| described(instance("portfolio-prod-reprotected", "us-east-1", Some("some-other-db"))));
        let step = build(&kind(mocks::rds(RuleMode::MatchAny, &[&other])), YAML);
        let e = step.observe(&ctx()).await.unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.message.contains("replicates `some-other-db`") && e.message.contains("`with.replica`"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_source_names_the_field() {
        let missing = mock!(Client::describe_db_instances).then_error(|| {
            DescribeDBInstancesError::DbInstanceNotFoundFault(DbInstanceNotFoundFault::builder().build())
        });
        let step = build(&kind(mocks::rds(RuleMode::MatchAny, &[&missing])), YAML);
        let e = step.act(&ctx()).await.unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.message.contains("`with.source`") && e.message.contains("us-west-2"), "{e}");
    }

    #[test]
    fn sources_compare_by_region_and_identifier() {
        assert_eq!(
            instance_key("arn:aws:rds:us-west-2:1:db:Portfolio", "us-east-1"),
            ("us-west-2".into(), "portfolio".into())
        );
        assert_eq!(instance_key("portfolio", "us-east-1"), ("us-east-1".into(), "portfolio".into()));
    }
}
