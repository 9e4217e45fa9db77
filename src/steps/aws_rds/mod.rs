//! The RDS step types of the runbook's database recovery:
//!
//! - `aws.rds.promote_replica`: promote the DR read replica, refusing to lose more than the RPO;
//! - `aws.rds.create_replica`: failback re-protection, a cross-region read replica of the DR primary;
//! - `aws.rds.restore_point_in_time` and `aws.rds.restore_snapshot`: the runbook's restores;
//! - `aws.rds.global_failover`: Aurora global database failover or switchover;
//! - `aws.rds.fence`: the old primary's network boundary closed before the replica is promoted.
//!
//! Every step observes before it acts: a resumed or repeated run finds an instance that already
//! exists (or a replica already promoted) and only waits for it. No step calls the region the run
//! moves away from unless a parameter says so (`create_replica`'s source): during a failover that
//! region may be down.
//!
//! # When is a promoted replica writable?
//!
//! On AWS, a read replica carries `ReadReplicaSourceDBInstanceIdentifier` and a `StatusInfos` entry of
//! type `read replication`; PromoteReadReplica moves it through `modifying`/`backing-up`/`rebooting`
//! and back to `available`, and only then are both gone. moto 5.2.5 does none of that: its
//! PromoteReadReplica flips an internal `is_replica` flag that no read API shows. The status stays
//! `available`, `ReadReplicaSourceDBInstanceIdentifier` keeps the source, the source keeps listing
//! the replica in `ReadReplicaDBInstanceIdentifiers`, `StatusInfos` is never returned (not even for a
//! replica) and `BackupRetentionPeriod` is unchanged. (Only StopDBInstance tells the difference: moto
//! refuses to stop a replica.)
//!
//! So the step calls an instance writable when its status is `available`, it has no
//! `read replication` status info, and either its source is cleared (AWS) or PromoteReadReplica was
//! accepted for this very instance: by this process, or, across processes, as recorded by the
//! `drctl:promoted` tag the step adds right after AWS accepts the call (the tag names the instance's
//! `DbiResourceId`, so a new instance of the same name does not inherit it). On AWS the tag never
//! overrides a `read replication` status, so the moment right after the call, when RDS still
//! reports the replica as it was, is not taken for success. The wait also never starts with a look
//! right after the call: its first look comes one `poll_interval` later.
//!
//! # ReplicaLag and emulators
//!
//! The Rust SDK's CloudWatch client speaks only the RPC v2 CBOR protocol; moto answers it 404 (and
//! does not plan to implement it, getmoto/moto#9195). With an endpoint override and such an answer,
//! the lag is read with CloudWatch's Query protocol instead (module `query`, SigV4-signed, checked
//! against AWS's documented example). Against AWS the SDK's call is the only one made.

mod fence;
mod global;
mod lag_metric;
mod presign;
mod promote;
mod replica;
mod restore;

pub use fence::Fence;
pub use global::GlobalFailover;
pub use promote::PromoteReplica;
pub use replica::CreateReplica;
pub use restore::{RestorePointInTime, RestoreSnapshot};

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_rds::types::DbInstance;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::HumanDuration;
use crate::aws::{Aws, step_error};
use crate::plan::{AwsSettings, Plan};
use crate::step::{BuildContext, Observation, Outputs, Progress, Receipt, StepError};

/// How long to wait between looks at an instance or global cluster, unless `poll_interval` says.
const DEFAULT_POLL: Duration = Duration::from_secs(5);

pub(crate) fn default_poll() -> HumanDuration {
    HumanDuration(DEFAULT_POLL)
}

/// Where a step type's SDK clients come from.
#[derive(Clone)]
pub(crate) enum Source {
    /// The run's SDK configuration per region, honoring the endpoint override.
    Aws(Arc<Aws>),
    /// The same scripted clients for every region (unit tests).
    #[cfg(test)]
    Fixed(aws_sdk_rds::Client, aws_sdk_cloudwatch::Client),
}

/// A built step's clients: the source and the plan's AWS settings.
#[derive(Clone)]
pub(crate) struct Clients {
    source: Source,
    settings: AwsSettings,
}

impl Clients {
    fn new(source: &Source, context: &BuildContext) -> Clients {
        Clients { source: source.clone(), settings: context.plan.aws.clone() }
    }

    async fn rds(&self, region: &str) -> aws_sdk_rds::Client {
        match &self.source {
            Source::Aws(aws) => aws_sdk_rds::Client::new(&aws.config(region, &self.settings).await),
            #[cfg(test)]
            Source::Fixed(rds, _) => rds.clone(),
        }
    }

    /// The endpoint every call goes to instead of AWS (an emulator), if any.
    fn endpoint(&self) -> Option<String> {
        match &self.source {
            Source::Aws(aws) => aws.endpoint(&self.settings),
            #[cfg(test)]
            Source::Fixed(..) => None,
        }
    }

    /// The credentials calls in `region` are signed with.
    async fn credentials(&self, region: &str) -> Result<aws_sdk_cloudwatch::config::Credentials, StepError> {
        use aws_sdk_cloudwatch::config::ProvideCredentials;
        let config = match &self.source {
            Source::Aws(aws) => aws.config(region, &self.settings).await,
            #[cfg(test)]
            Source::Fixed(..) => return Err(StepError::fatal("fixed clients have no credentials")),
        };
        let provider = config.credentials_provider().ok_or_else(|| {
            StepError::fatal("no AWS credentials are configured: set a profile, `aws sso login`, or the environment")
        })?;
        provider.provide_credentials().await.map_err(|e| {
            StepError::fatal(format!(
                "the AWS credentials could not be loaded ({e}): check the profile or the environment"
            ))
        })
    }

    async fn cloudwatch(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        match &self.source {
            Source::Aws(aws) => aws_sdk_cloudwatch::Client::new(&aws.config(region, &self.settings).await),
            #[cfg(test)]
            Source::Fixed(_, cloudwatch) => cloudwatch.clone(),
        }
    }
}

/// What an instance's `DBInstanceStatus` means to a step waiting on it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Health {
    Available,
    /// On its way somewhere (creating, modifying, rebooting, backing-up...): look again later.
    Busy(String),
    /// Will not become available without someone's help.
    Broken(String),
}

/// Text made fit for an RDS tag value, for the markers the promotion and the fence write: tag
/// values allow letters, digits, spaces and `_ . : / = + - @`.
fn tag_safe(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || "_.:/+-@".contains(c) { c } else { '_' }).collect()
}

fn health(instance: &DbInstance) -> Health {
    let status = instance.db_instance_status().unwrap_or("unknown");
    match status {
        "available" => Health::Available,
        "failed"
        | "inaccessible-encryption-credentials"
        | "inaccessible-encryption-credentials-recoverable"
        | "incompatible-network"
        | "incompatible-option-group"
        | "incompatible-parameters"
        | "incompatible-restore"
        | "insufficient-capacity"
        | "restore-error"
        | "storage-full"
        | "stopping"
        | "stopped"
        | "deleting" => Health::Broken(status.to_string()),
        _ => Health::Busy(status.to_string()),
    }
}

fn broken(id: &str, region: &str, status: &str, field: &str) -> StepError {
    StepError::fatal(format!(
        "DB instance `{id}` in {region} is `{status}` and will not become available on its own: fix it (RDS console, \
         `aws rds describe-db-instances --db-instance-identifier {id} --region {region}`) or check `{field}`"
    ))
}

/// The AWS error code of an SDK error, if AWS answered.
fn code<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> Option<&str> {
    error.as_service_error().and_then(ProvideErrorMetadata::code)
}

/// DescribeDBInstances for one instance; `None` when RDS says there is no such instance.
async fn find_instance(
    rds: &aws_sdk_rds::Client,
    id: &str,
    region: &str,
    field: &str,
) -> Result<Option<DbInstance>, StepError> {
    match rds.describe_db_instances().db_instance_identifier(id).send().await {
        Ok(output) => Ok(output.db_instances().first().cloned()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_db_instance_not_found_fault()) => Ok(None),
        Err(e) => Err(step_error(&e, &format!("describe DB instance `{id}` in {region}"), field)),
    }
}

/// DescribeDBInstances for an instance that must exist.
async fn describe_instance(
    rds: &aws_sdk_rds::Client,
    id: &str,
    region: &str,
    field: &str,
) -> Result<DbInstance, StepError> {
    match rds.describe_db_instances().db_instance_identifier(id).send().await {
        Ok(output) => output.db_instances().first().cloned().ok_or_else(|| not_found(id, region, field)),
        Err(e) => Err(step_error(&e, &format!("describe DB instance `{id}` in {region}"), field)),
    }
}

fn not_found(id: &str, region: &str, field: &str) -> StepError {
    StepError::fatal(format!("DB instance `{id}` does not exist in {region}: check `{field}` and the step's `region`"))
}

/// Where a step that waits for an instance to be `available` stands: done, waiting (with its
/// status), or failed when it is broken.
fn availability(instance: &DbInstance, id: &str, region: &str, field: &str) -> Result<Progress, StepError> {
    match health(instance) {
        Health::Available => Ok(Progress::Done),
        Health::Broken(status) => Err(broken(id, region, &status, field)),
        Health::Busy(status) => Ok(Progress::Waiting(format!("`{id}` in {region} to be available: status `{status}`"))),
    }
}

/// One look at whether instance `id` is `available` (a poll of the engine's wait).
async fn poll_available(rds: &aws_sdk_rds::Client, id: &str, region: &str, field: &str) -> Progress {
    let instance = match describe_instance(rds, id, region, field).await {
        Ok(instance) => instance,
        Err(e) => return Progress::Failed(e),
    };
    Progress::of(availability(&instance, id, region, field))
}

/// What an existing instance means to a step that creates it: done when available, under way
/// while it is being created (the engine polls), an error when broken.
fn existing(instance: &DbInstance, id: &str, region: &str, field: &str) -> Result<Observation, StepError> {
    Ok(match availability(instance, id, region, field)? {
        Progress::Done => Observation::Done(instance_outputs(instance)),
        _ => Observation::InProgress(Receipt::NONE),
    })
}

/// The outputs of instance `id` once it is `available`; a retryable error before.
async fn available_outputs(
    rds: &aws_sdk_rds::Client,
    id: &str,
    region: &str,
    field: &str,
) -> Result<Outputs, StepError> {
    let instance = describe_instance(rds, id, region, field).await?;
    match availability(&instance, id, region, field)? {
        Progress::Done => Ok(instance_outputs(&instance)),
        _ => Err(StepError::retryable(format!("`{id}` in {region} is not available yet"))),
    }
}

/// `endpoint`, `port` and `arn` of an instance.
fn instance_outputs(instance: &DbInstance) -> Outputs {
    let endpoint = instance.endpoint();
    Outputs::from([
        ("endpoint".to_string(), endpoint.and_then(|e| e.address()).unwrap_or_default().to_string()),
        ("port".to_string(), endpoint.and_then(|e| e.port()).map(|p| p.to_string()).unwrap_or_default()),
        ("arn".to_string(), instance.db_instance_arn().unwrap_or_default().to_string()),
    ])
}

/// The region and lower-cased identifier in an RDS ARN (`arn:aws:rds:REGION:ACCOUNT:db:ID`), for
/// `kind` `db` or `cluster`.
fn parse_arn<'a>(text: &'a str, kind: &str) -> Option<(&'a str, &'a str)> {
    let parts: Vec<&str> = text.splitn(7, ':').collect();
    match parts.as_slice() {
        ["arn", _, "rds", region, _, k, id] if *k == kind && !region.is_empty() && !id.is_empty() => {
            Some((*region, *id))
        }
        _ => None,
    }
}

/// The plan's other region relative to `region`.
fn other_region(plan: &Plan, region: &str, field: &str) -> Result<String, StepError> {
    if region == plan.regions.primary {
        Ok(plan.regions.secondary.clone())
    } else if region == plan.regions.secondary {
        Ok(plan.regions.primary.clone())
    } else {
        Err(StepError::fatal(format!(
            "cannot tell the source region: {region} is neither of the plan's regions ({} and {}); set `{field}`",
            plan.regions.primary, plan.regions.secondary
        )))
    }
}

/// Picks the plan field to name for an AWS error code: `not_found` for "not found" codes,
/// `other` for the rest.
fn field_for<'a>(code: Option<&str>, not_found: &'a str, other: &'a str) -> &'a str {
    match code {
        Some(c) if c.to_ascii_lowercase().contains("notfound") => not_found,
        _ => other,
    }
}

/// CloudWatch's Query protocol, for emulators that lack the RPC v2 CBOR protocol the Rust SDK's
/// CloudWatch client speaks: moto 5.2.5 answers those calls 404 and has no plan to support them
/// (getmoto/moto#9195), while it and AWS both take the Query protocol. Used only with an endpoint
/// override, after the SDK's call was answered 404 without an AWS error code.
mod query {
    use std::time::{Duration, SystemTime};

    use crate::step::StepError;

    /// One GetMetricStatistics (Maximum): `(seconds since the epoch, maximum)` per datapoint.
    pub(super) struct MetricQuery<'a> {
        pub endpoint: &'a str,
        pub region: &'a str,
        pub namespace: &'a str,
        pub metric: &'a str,
        pub dimension: (&'a str, &'a str),
        pub start: SystemTime,
        pub end: SystemTime,
        pub period_s: u32,
    }

    impl MetricQuery<'_> {
        pub(super) async fn send(
            &self,
            http: &reqwest::Client,
            credentials: &aws_sdk_cloudwatch::config::Credentials,
            now: SystemTime,
        ) -> Result<Vec<(f64, f64)>, StepError> {
            let time = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
            let period = self.period_s.to_string();
            let body = form(&[
                ("Action", "GetMetricStatistics"),
                ("Version", "2010-08-01"),
                ("Namespace", self.namespace),
                ("MetricName", self.metric),
                ("Dimensions.member.1.Name", self.dimension.0),
                ("Dimensions.member.1.Value", self.dimension.1),
                ("StartTime", &time(self.start)),
                ("EndTime", &time(self.end)),
                ("Period", &period),
                ("Statistics.member.1", "Maximum"),
            ]);
            let what = format!("read {} from CloudWatch at {} (Query protocol)", self.metric, self.endpoint);
            let url = reqwest::Url::parse(self.endpoint)
                .map_err(|e| StepError::fatal(format!("cannot {what}: the endpoint is not a URL ({e})")))?;
            let signed = sign(self.region, credentials, url.as_str(), &body, now)
                .map_err(|e| StepError::fatal(format!("cannot {what}: the request cannot be signed ({e})")))?;
            let mut request = http.post(url).body(body).timeout(Duration::from_secs(30)).header("content-type", FORM);
            for (name, value) in signed {
                request = request.header(name, value);
            }
            let response = request.send().await.map_err(|e| StepError::retryable(format!("cannot {what}: {e}")))?;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            if !(200..300).contains(&status) {
                let code = between(&text, "<Code>", "</Code>").unwrap_or("no error code");
                let message = format!("cannot {what}: answered {status} ({code})");
                let retry = status >= 500 || status == 429 || code.contains("Throttl");
                return Err(if retry { StepError::retryable(message) } else { StepError::fatal(message) });
            }
            Ok(datapoints(&text))
        }
    }

    const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

    /// `(seconds since the epoch, Maximum)` of each `<member>` in `<Datapoints>`.
    pub(super) fn datapoints(xml: &str) -> Vec<(f64, f64)> {
        let Some(points) = between(xml, "<Datapoints>", "</Datapoints>") else { return Vec::new() };
        points
            .split("<member>")
            .filter_map(|member| {
                let at = between(member, "<Timestamp>", "</Timestamp>")?;
                let at = humantime::parse_rfc3339_weak(at.trim().trim_end_matches('Z')).ok()?;
                let at = at.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs_f64();
                Some((at, between(member, "<Maximum>", "</Maximum>")?.trim().parse().ok()?))
            })
            .collect()
    }

    fn between<'t>(text: &'t str, open: &str, close: &str) -> Option<&'t str> {
        let start = text.find(open)? + open.len();
        let end = text[start..].find(close)? + start;
        Some(&text[start..end])
    }

    /// SigV4's URI encoding: everything but `A-Za-z0-9-_.~` as `%XX`.
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    fn form(pairs: &[(&str, &str)]) -> String {
        pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
    }

    /// The headers that sign a Query-protocol POST with AWS Signature Version 4 (aws-sigv4, the
    /// SDK's own signer).
    fn sign(
        region: &str,
        credentials: &aws_sdk_cloudwatch::config::Credentials,
        url: &str,
        body: &str,
        at: SystemTime,
    ) -> Result<Vec<(String, String)>, aws_sigv4::http_request::SigningError> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let identity = credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("monitoring")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .expect("every signing parameter is set")
            .into();
        let headers = [("content-type", FORM)];
        let request = SignableRequest::new("POST", url, headers.into_iter(), SignableBody::Bytes(body.as_bytes()))?;
        let (instructions, _signature) = sign(request, &params)?.into_parts();
        Ok(instructions.headers().map(|(name, value)| (name.to_string(), value.to_string())).collect())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn query_requests_are_signed_for_cloudwatch_in_the_region() {
            let credentials = aws_sdk_cloudwatch::config::Credentials::new("AKIDEXAMPLE", "secret", None, None, "t");
            let at = humantime::parse_rfc3339("2015-08-30T12:36:00Z").unwrap();
            let headers = sign("us-west-2", &credentials, "http://127.0.0.1:5000/", "Action=X", at).unwrap();
            let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap();
            assert_eq!(get("x-amz-date"), "20150830T123600Z");
            let authorization = get("authorization");
            assert!(
                authorization
                    .starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-west-2/monitoring/aws4_request"),
                "{authorization}"
            );
        }

        #[test]
        fn datapoints_are_read_from_the_answer() {
            let xml = "<GetMetricStatisticsResponse><GetMetricStatisticsResult><Label>ReplicaLag</Label><Datapoints>\
                       <member><Timestamp>2026-11-22T08:23:29.556058Z</Timestamp><Maximum>420.0</Maximum></member>\
                       <member><Timestamp>2026-11-22T08:21:29Z</Timestamp><Maximum>12</Maximum></member>\
                       </Datapoints></GetMetricStatisticsResult></GetMetricStatisticsResponse>";
            let points = datapoints(xml);
            assert_eq!(points.len(), 2);
            assert_eq!((points[0].1, points[1].1), (420.0, 12.0));
            assert!(points[0].0 - points[1].0 > 119.0 && points[0].0 - points[1].0 < 121.0);
            assert!(datapoints("<Datapoints/>").is_empty());
            assert_eq!(form(&[("Namespace", "AWS/RDS"), ("a b", "x~y")]), "Namespace=AWS%2FRDS&a%20b=x~y");
        }
    }
}

#[cfg(test)]
pub(crate) mod mocks {
    //! SDK clients answering from aws-smithy-mocks rules, with the SDK's own retries off so every
    //! scripted error reaches the step.

    use aws_smithy_mocks::{Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;

    pub fn rds(mode: RuleMode, rules: &[&Rule]) -> aws_sdk_rds::Client {
        crate::steps::aws_mocks::mock_client!(aws_sdk_rds, mode, rules)
    }

    pub fn cloudwatch(mode: RuleMode, rules: &[&Rule]) -> aws_sdk_cloudwatch::Client {
        crate::steps::aws_mocks::mock_client!(aws_sdk_cloudwatch, mode, rules)
    }

    /// An unmodeled AWS error with `code` (`Throttling`, `AccessDenied`...).
    pub fn aws_error(code: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(format!("scripted {code}")).build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_are_parsed() {
        let arn = "arn:aws:rds:us-west-2:123456789012:db:portfolio-dr-replica";
        assert_eq!(parse_arn(arn, "db"), Some(("us-west-2", "portfolio-dr-replica")));
        assert_eq!(parse_arn(arn, "cluster"), None);
        assert_eq!(parse_arn("portfolio", "db"), None);
        assert_eq!(parse_arn("arn:aws:rds::1:db:x", "db"), None);
    }

    #[test]
    fn the_other_region_is_relative_to_the_step_region() {
        let plan = Plan::minimal("p", "us-east-1", "us-west-2");
        assert_eq!(other_region(&plan, "us-east-1", "f").unwrap(), "us-west-2");
        assert_eq!(other_region(&plan, "us-west-2", "f").unwrap(), "us-east-1");
        assert!(
            other_region(&plan, "eu-west-1", "with.source_region")
                .unwrap_err()
                .message
                .contains("`with.source_region`")
        );
    }

    #[test]
    fn statuses_are_classified() {
        let with = |s: &str| DbInstance::builder().db_instance_status(s).build();
        assert_eq!(health(&with("available")), Health::Available);
        assert_eq!(health(&with("modifying")), Health::Busy("modifying".into()));
        assert_eq!(health(&with("storage-full")), Health::Broken("storage-full".into()));
    }
}
