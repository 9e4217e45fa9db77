//! `aws.rds.create_replica`: failback re-protection. After a failover the DR instance is the
//! primary; this replicates it back into the primary region so the failback has a replica to promote.
//!
//! The Rust SDK's CreateDBInstanceReadReplica has no `SourceRegion` (which the CLI uses to sign a
//! cross-region request): a cross-region source must be named by its ARN, so the step looks the
//! source up in `source_region` when given an identifier.
//!
//! # Encrypted sources
//! KMS keys are regional, so an encrypted replica in another region needs `kms_key_id` (a key of
//! the replica's region) and a `PreSignedUrl`: a CreateDBInstanceReadReplica request for the
//! *source* region, presigned with SigV4, carrying the same parameters plus `DestinationRegion`
//! (what the CLI and boto3 build from `--source-region`). The Rust SDK has no presigning for this
//! operation, so the step makes the URL with aws-sigv4 (the SDK's own signer), for the source
//! region's RDS endpoint (or the endpoint override), valid one hour as botocore's, with the same
//! credentials as every other call ([`presigned_url`]). Before acting, the step reads the source:
//! encrypted and in another region without `kms_key_id` is refused with what to set; a
//! `kms_key_id` for an unencrypted source is refused too (RDS rejects it). A key given as an ARN
//! must be in the replica's region. (A `preflight` that checks the key exists in that region,
//! with KMS DescribeKey, waits for the step contract's preflight.)

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_rds::types::DbInstance;
use schemars::JsonSchema;
use serde::Deserialize;

use super::presign::{PresignRequest, presigned_url};
use super::{
    Clients, Source, available_outputs, existing, field_for, find_instance, other_region, parse_arn, poll_available,
};
use crate::aws::step_error;
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, Progress, Receipt, Step, StepContext, StepError, TypedStep,
};
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
    /// The KMS key that encrypts the replica, in the replica's region (key ARN, key id, alias ARN or
    /// `alias/NAME`). Required when the source is encrypted and in another region: KMS keys are
    /// regional, and drctl then sends the presigned source-region request RDS requires.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// How often to look while the replica is created (default 5s).
    #[serde(default = "super::default_poll")]
    pub poll_interval: HumanDuration,
}

/// The region of a KMS key or alias ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`), if it is one.
fn kms_region(key: &str) -> Option<&str> {
    let parts: Vec<&str> = key.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "kms", region, _, _] if !region.is_empty() => Some(region),
        _ => None,
    }
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
        failure: crate::aws::STEP_FAILURES,
    };
    type Params = CreateReplicaParams;
    const NAME: &'static str = "aws.rds.create_replica";
    const SUMMARY: &'static str =
        "Creates a cross-region RDS read replica (failback re-protection) and waits until it is available.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::string("endpoint", "The replica's endpoint address (host name)."),
        OutputSpec::integer("port", "The port it listens on."),
        OutputSpec::reference("arn", "The replica's ARN."),
    ];

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
        let kms_key_id = match p.kms_key_id.as_deref().map(|key| (key, kms_region(key))) {
            Some((key, Some(key_region))) if key_region != region => Err(StepError::fatal(format!(
                "`with.kms_key_id` ({key}) is a key in {key_region}, but the replica is created in {region}: KMS keys \
                 are regional, so give a key of {region}"
            ))),
            _ => Ok(p.kms_key_id),
        };
        Box::new(CreateReplicaStep {
            kms_key_id,
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
    /// `with.kms_key_id`, or why it cannot be used.
    kms_key_id: Result<Option<String>, StepError>,
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

    /// The source instance, described in its region (by the identifier in its ARN, if given one).
    async fn source_instance(&self) -> Result<DbInstance, StepError> {
        let region = self.source_region()?;
        let id = parse_arn(&self.source, "db").map_or(self.source.as_str(), |(_, id)| id);
        let rds = self.clients.rds(region).await;
        find_instance(&rds, id, region, "with.source").await?.ok_or_else(|| {
            StepError::fatal(format!(
                "the source DB instance `{id}` does not exist in {region}: check `with.source` and `with.source_region`"
            ))
        })
    }

    /// The KMS key and presigned URL the request needs for `source` (see the module docs), or why
    /// the replica cannot be made as the plan says.
    async fn encryption(
        &self,
        source: &DbInstance,
        source_arn: &str,
        now: SystemTime,
    ) -> Result<Encryption, StepError> {
        let kms_key_id = self.kms_key_id.clone()?;
        let source_region = self.source_region()?;
        let cross_region = source_region != self.region;
        let encrypted = source.storage_encrypted().unwrap_or(false);
        match kms_key_id {
            None if encrypted && cross_region => Err(StepError::fatal(format!(
                "the source `{}` in {source_region} is encrypted (KMS key {}), and a replica in another region cannot \
                 use that key: set `with.kms_key_id` to a KMS key of {} (its ARN, id or alias) to encrypt the replica",
                self.source,
                source.kms_key_id().unwrap_or("unknown"),
                self.region
            ))),
            None => Ok(Encryption::default()),
            Some(_) if !encrypted => Err(StepError::fatal(format!(
                "`with.kms_key_id` is set but the source `{}` in {source_region} is not encrypted, and RDS refuses a \
                 KMS key for a replica of an unencrypted instance: remove `with.kms_key_id`",
                self.source
            ))),
            Some(key) if !cross_region => Ok(Encryption { kms_key_id: Some(key), pre_signed_url: None }),
            Some(key) => {
                let request = PresignRequest {
                    replica: &self.replica,
                    source_arn,
                    kms_key_id: &key,
                    instance_class: self.instance_class.as_deref(),
                    destination_region: &self.region,
                };
                let credentials = self.signing_credentials(source_region).await?;
                let url = presigned_url(&credentials, self.clients.endpoint(), source_region, &request, now).await?;
                Ok(Encryption { kms_key_id: Some(key), pre_signed_url: Some(url) })
            }
        }
    }
}

impl CreateReplicaStep {
    /// The credentials every call in `region` is signed with (fixed ones for scripted clients).
    async fn signing_credentials(&self, region: &str) -> Result<aws_sdk_rds::config::Credentials, StepError> {
        #[cfg(test)]
        if let Source::Fixed(..) = &self.clients.source {
            return Ok(aws_sdk_rds::config::Credentials::new("AKID", "SECRET", None, None, "test"));
        }
        self.clients.credentials(region).await
    }
}

/// What an encrypted replica's request carries.
#[derive(Default)]
struct Encryption {
    kms_key_id: Option<String>,
    pre_signed_url: Option<String>,
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
    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        let rds = self.clients.rds(&self.region).await;
        let Some(found) = find_instance(&rds, &self.replica, &self.region, "with.replica").await? else {
            return Ok(Observation::NotDone);
        };
        match found.read_replica_source_db_instance_identifier() {
            Some(named) if self.is_our_source(named)? => existing(&found, &self.replica, &self.region, "with.replica"),
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

    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError> {
        let source = self.source_instance().await?;
        let source_arn = match parse_arn(&self.source, "db") {
            Some(_) => self.source.clone(),
            None => source
                .db_instance_arn()
                .map(str::to_string)
                .ok_or_else(|| StepError::retryable(format!("RDS described `{}` without its ARN", self.source)))?,
        };
        let encryption = self.encryption(&source, &source_arn, ctx.clock.now()).await?;
        let rds = self.clients.rds(&self.region).await;
        let result = rds
            .create_db_instance_read_replica()
            .db_instance_identifier(&self.replica)
            .source_db_instance_identifier(&source_arn)
            .set_db_instance_class(self.instance_class.clone())
            .set_kms_key_id(encryption.kms_key_id)
            .set_pre_signed_url(encryption.pre_signed_url)
            .send()
            .await;
        let action = format!("create read replica `{}` of {source_arn} in {}", self.replica, self.region);
        match result {
            Ok(_) => Ok(Receipt::NONE),
            // Created meanwhile (by an earlier attempt whose answer was lost): the next attempt observes it.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_db_instance_already_exists_fault()) => {
                Err(StepError::retryable(step_error(&e, &action, "with.replica").message))
            }
            Err(e) => {
                let code = super::code(&e);
                let field = match code {
                    Some(c) if c.contains("KMS") || c.contains("Kms") => "with.kms_key_id",
                    _ => field_for(code, "with.source", "with.replica"),
                };
                Err(step_error(&e, &action, field))
            }
        }
    }

    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> Progress {
        let rds = self.clients.rds(&self.region).await;
        poll_available(&rds, &self.replica, &self.region, "with.replica").await
    }

    fn poll_interval(&self) -> std::time::Duration {
        self.poll
    }

    async fn verify(&self, _ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        let rds = self.clients.rds(&self.region).await;
        available_outputs(&rds, &self.replica, &self.region, "with.replica").await
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
    use crate::steps::test_support::{build, ctx};

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
        let receipt = step.act(&ctx).await.unwrap();
        crate::steps::test_support::settle(&*step, &ctx, &receipt).await.unwrap();
        let outputs = step.verify(&ctx, &receipt).await.unwrap();
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

    fn encrypted(mut instance: DbInstance) -> DbInstance {
        instance.storage_encrypted = Some(true);
        instance.kms_key_id = Some("arn:aws:kms:us-west-2:123456789012:key/source-key".into());
        instance
    }

    const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    /// The query parameters of a URL, decoded.
    fn query(url: &str) -> std::collections::HashMap<String, String> {
        let url = reqwest::Url::parse(url).expect("a URL");
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    /// An encrypted source in us-west-2, a replica in us-east-1 with `kms_key_id`: the request
    /// carries the key and a URL presigned for the *source* region's RDS endpoint, for the same
    /// action, with DestinationRegion the replica's region.
    #[tokio::test(start_paused = true)]
    async fn an_encrypted_cross_region_replica_carries_the_key_and_a_url_presigned_for_the_source_region() {
        let source = mock!(Client::describe_db_instances)
            .match_requests(|r| r.db_instance_identifier() == Some("portfolio-dr-replica"))
            .then_output(|| described(encrypted(instance("portfolio-dr-replica", "us-west-2", None))));
        let create = mock!(Client::create_db_instance_read_replica)
            .match_requests(|r| {
                let Some(url) = r.pre_signed_url() else { return false };
                let q = query(url);
                let at = |k: &str| q.get(k).map(String::as_str);
                url.starts_with("https://rds.us-west-2.amazonaws.com/?")
                    && r.kms_key_id() == Some(KEY)
                    && at("Action") == Some("CreateDBInstanceReadReplica")
                    && at("Version") == Some("2014-10-31")
                    && at("DestinationRegion") == Some("us-east-1")
                    && at("KmsKeyId") == Some(KEY)
                    && at("DBInstanceIdentifier") == Some("portfolio-prod-reprotected")
                    && at("SourceDBInstanceIdentifier") == r.source_db_instance_identifier()
                    && at("X-Amz-Algorithm") == Some("AWS4-HMAC-SHA256")
                    && at("X-Amz-Credential")
                        .is_some_and(|c| c.starts_with("AKID/") && c.ends_with("/us-west-2/rds/aws4_request"))
                    && at("X-Amz-Expires") == Some("3600")
                    && at("X-Amz-Signature").is_some_and(|s| s.len() == 64)
            })
            .then_output(|| CreateDbInstanceReadReplicaOutput::builder().build());
        let yaml = format!("{YAML}kms_key_id: {KEY}\n");
        let step = build(&kind(mocks::rds(RuleMode::MatchAny, &[&source, &create])), &yaml);
        step.act(&ctx()).await.unwrap();
        assert_eq!(create.num_calls(), 1, "the create request matched: key and presigned URL as expected");
    }

    #[tokio::test(start_paused = true)]
    async fn an_encrypted_source_without_a_key_and_a_key_without_encryption_are_refused() {
        let source = mock!(Client::describe_db_instances)
            .then_output(|| described(encrypted(instance("portfolio-dr-replica", "us-west-2", None))));
        let create = mock!(Client::create_db_instance_read_replica)
            .then_output(|| CreateDbInstanceReadReplicaOutput::builder().build());
        let step = build(&kind(mocks::rds(RuleMode::MatchAny, &[&source, &create])), YAML);
        let e = step.act(&ctx()).await.unwrap_err();
        assert!(!e.is_retryable(), "{e}");
        for part in ["is encrypted", "source-key", "set `with.kms_key_id`", "us-east-1"] {
            assert!(e.message.contains(part), "{part}: {e}");
        }

        let plain = mock!(Client::describe_db_instances)
            .then_output(|| described(instance("portfolio-dr-replica", "us-west-2", None)));
        let step =
            build(&kind(mocks::rds(RuleMode::MatchAny, &[&plain, &create])), &format!("{YAML}kms_key_id: {KEY}\n"));
        let e = step.act(&ctx()).await.unwrap_err();
        assert!(e.message.contains("is not encrypted") && e.message.contains("remove `with.kms_key_id`"), "{e}");

        let wrong_region = format!("{YAML}kms_key_id: arn:aws:kms:us-west-2:123456789012:key/abc\n");
        let step = build(&kind(mocks::rds(RuleMode::MatchAny, &[&source, &create])), &wrong_region);
        let e = step.act(&ctx()).await.unwrap_err();
        assert!(e.message.contains("a key in us-west-2") && e.message.contains("give a key of us-east-1"), "{e}");
        assert_eq!(create.num_calls(), 0);
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
