//! Tests of `aws.rds.promote_replica` against mocked RDS and CloudWatch clients.

use aws_sdk_cloudwatch::operation::get_metric_statistics::GetMetricStatisticsOutput;
use aws_sdk_cloudwatch::types::Datapoint;
use aws_sdk_rds::Client;
use aws_sdk_rds::operation::add_tags_to_resource::AddTagsToResourceOutput;
use aws_sdk_rds::operation::describe_db_instances::{DescribeDBInstancesError, DescribeDbInstancesOutput};
use aws_sdk_rds::operation::promote_read_replica::{PromoteReadReplicaError, PromoteReadReplicaOutput};
use aws_sdk_rds::types::error::DbInstanceNotFoundFault;
use aws_sdk_rds::types::{DbInstanceStatusInfo, Endpoint};
use aws_smithy_mocks::{Rule, RuleMode, mock};
use aws_smithy_types::DateTime;

use super::*;
use crate::steps::aws_rds::mocks;
use crate::steps::test_support::{build, ctx, t0};

const SOURCE: &str = "arn:aws:rds:us-east-1:123456789012:db:portfolio-prod";

fn kind(rds: &[&Rule], cloudwatch: &[&Rule], accept: Option<Duration>) -> PromoteReplica {
    let source = Source::Fixed(mocks::rds(RuleMode::MatchAny, rds), mocks::cloudwatch(RuleMode::MatchAny, cloudwatch));
    PromoteReplica { source, accept_data_loss: accept, http: crate::steps::test_support::client() }
}

/// The replica as `status`, replicating from [`SOURCE`] or not, with AWS's `read replication`
/// status info or not, with `tags`.
fn replica(status: &str, source: bool, replication_info: bool, tags: Vec<Tag>) -> DbInstance {
    let info = DbInstanceStatusInfo::builder().status_type("read replication").status("replicating").normal(true);
    DbInstance::builder()
        .db_instance_identifier("portfolio-dr-replica")
        .db_instance_status(status)
        .dbi_resource_id("db-ABC")
        .db_instance_arn("arn:aws:rds:us-west-2:123456789012:db:portfolio-dr-replica")
        .set_read_replica_source_db_instance_identifier(source.then(|| SOURCE.to_string()))
        .set_status_infos(replication_info.then(|| vec![info.build()]))
        .set_tag_list(Some(tags))
        .endpoint(Endpoint::builder().address("portfolio-dr-replica.x.us-west-2.rds.amazonaws.com").port(5432).build())
        .build()
}

fn described(instance: DbInstance) -> DescribeDbInstancesOutput {
    DescribeDbInstancesOutput::builder().db_instances(instance).build()
}

fn lag(seconds: f64) -> Rule {
    mock!(aws_sdk_cloudwatch::Client::get_metric_statistics)
        .match_requests(|r| r.namespace() == Some("AWS/RDS") && r.metric_name() == Some("ReplicaLag"))
        .then_output(move || {
            let at = |ago: u64| DateTime::from(t0() - Duration::from_secs(ago));
            GetMetricStatisticsOutput::builder()
                .datapoints(Datapoint::builder().timestamp(at(180)).maximum(1.0).build())
                .datapoints(Datapoint::builder().timestamp(at(60)).maximum(seconds).build())
                .build()
        })
}

fn no_lag() -> Rule {
    mock!(aws_sdk_cloudwatch::Client::get_metric_statistics)
        .then_output(|| GetMetricStatisticsOutput::builder().build())
}

fn promote() -> Rule {
    mock!(Client::promote_read_replica)
        .match_requests(|r| r.db_instance_identifier() == Some("portfolio-dr-replica"))
        .then_output(|| {
            PromoteReadReplicaOutput::builder().db_instance(replica("modifying", true, true, vec![])).build()
        })
}

fn tags() -> Rule {
    mock!(Client::add_tags_to_resource).then_output(|| AddTagsToResourceOutput::builder().build())
}

const YAML: &str = "replica: portfolio-dr-replica\npoll_interval: 5s\n";

#[test]
fn writability_needs_more_than_an_accepted_call_on_aws() {
    // moto after the call: nothing changes but the call was accepted.
    assert_eq!(standing(&replica("available", true, false, vec![]), false), Standing::Replica);
    assert_eq!(standing(&replica("available", true, false, vec![]), true), Standing::Writable);
    // AWS right after the call: still replicating, whatever the call's answer said.
    assert_eq!(standing(&replica("available", true, true, vec![]), true), Standing::Replica);
    assert_eq!(standing(&replica("rebooting", false, false, vec![]), true), Standing::Busy("rebooting".into()));
    // AWS after the promotion, or an instance promoted by someone else.
    assert_eq!(standing(&replica("available", false, false, vec![]), false), Standing::Writable);
    assert_eq!(standing(&replica("storage-full", true, true, vec![]), false), Standing::Broken("storage-full".into()));
}

#[test]
fn markers_round_trip_and_belong_to_one_instance() {
    let marker = Marker {
        resource: "db-ABC".into(),
        run: "us-west-2-failover-20260101T000000Z-ab12".into(),
        step: "promote db".into(),
        assessment: Assessment { lag_s: "420".into(), accepted_s: "420".into() },
    };
    let value = marker.value();
    assert_eq!(
        value,
        "resource=db-ABC run=us-west-2-failover-20260101T000000Z-ab12 step=promote_db lag_s=420 accepted_s=420"
    );
    let tag = |v: &str| vec![Tag::builder().key(MARKER).value(v).build()];
    let on = Marker::on(&replica("available", true, false, tag(&value))).unwrap();
    assert_eq!(
        (on.run.as_str(), on.step.as_str(), on.assessment.accepted_s.as_str()),
        (marker.run.as_str(), "promote_db", "420")
    );
    let other = value.replace("db-ABC", "db-OTHER");
    assert_eq!(Marker::on(&replica("available", true, false, tag(&other))), None, "another instance's marker");
    let parsed = Marker::parse("resource=db-ABC run=r step=s lag_s=- accepted_s=-");
    assert_eq!(parsed.assessment, Assessment::default());
}

#[tokio::test(start_paused = true)]
async fn promotes_and_waits_until_aws_says_it_is_standalone() {
    // AWS's sequence: a replicating replica; right after the call the same; then modifying;
    // then available without a source.
    let describe = mock!(Client::describe_db_instances)
        .sequence()
        .output(|| described(replica("available", true, true, vec![])))
        .times(2)
        .output(|| described(replica("modifying", true, false, vec![])))
        .output(|| described(replica("available", false, false, vec![])))
        .repeatedly()
        .build();
    let (promote, tags, lag) = (promote(), tags(), lag(12.0));
    let step = build(&kind(&[&describe, &promote, &tags], &[&lag], None), YAML);
    assert_eq!(
        step.describe(),
        "promote read replica portfolio-dr-replica in us-west-2 (refuses if it lags more than 5m)"
    );
    let ctx = ctx();
    assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
    let receipt = step.act(&ctx).await.unwrap();
    crate::steps::test_support::settle(&*step, &ctx, &receipt).await.unwrap();
    assert_eq!(describe.num_calls(), 4, "observe, then three looks: replicating, modifying, standalone");
    let outputs = step.verify(&ctx, &receipt).await.unwrap();
    assert_eq!(outputs["endpoint"], "portfolio-dr-replica.x.us-west-2.rds.amazonaws.com");
    assert_eq!(outputs["port"], "5432");
    assert_eq!(outputs["arn"], "arn:aws:rds:us-west-2:123456789012:db:portfolio-dr-replica");
    assert_eq!((outputs.get("replica_lag_s"), outputs.get("accepted_data_loss_s")), (Some(&"12".into()), None));
    // The lag is measured by observe (to refuse before acting) and again by act (the lag promoted with).
    assert_eq!((promote.num_calls(), tags.num_calls(), lag.num_calls()), (1, 1, 2));
}

#[tokio::test(start_paused = true)]
async fn a_missing_replica_fails_fast_naming_the_field() {
    let missing = mock!(Client::describe_db_instances)
        .then_error(|| DescribeDBInstancesError::DbInstanceNotFoundFault(DbInstanceNotFoundFault::builder().build()));
    let promote = promote();
    let step = build(&kind(&[&missing, &promote], &[], None), YAML);
    let e = step.observe(&ctx()).await.unwrap_err();
    assert!(!e.is_retryable(), "{e}");
    assert!(e.message.contains("`with.replica`") && e.message.contains("portfolio-dr-replica"), "{e}");
    assert_eq!(promote.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn too_much_lag_is_refused_before_promoting() {
    let describe =
        mock!(Client::describe_db_instances).then_output(|| described(replica("available", true, false, vec![])));
    let (promote, lag) = (promote(), lag(420.0));
    let step = build(&kind(&[&describe, &promote], &[&lag], None), YAML);
    let e = step.observe(&ctx()).await.unwrap_err();
    assert!(!e.is_retryable() && e.message.contains("420s"), "{e}");
    let e = step.act(&ctx()).await.unwrap_err();
    assert!(!e.is_retryable() && e.message.contains("420s"), "{e}");
    assert_eq!(promote.num_calls(), 0);

    let no_lag = no_lag();
    let step = build(&kind(&[&describe, &promote], &[&no_lag], None), YAML);
    let e = step.act(&ctx()).await.unwrap_err();
    assert!(e.message.contains("unknown (CloudWatch has no ReplicaLag datapoint for it in the last 5m)"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retryable_and_an_accepted_loss_reaches_the_outputs() {
    let describe =
        mock!(Client::describe_db_instances).then_output(|| described(replica("available", true, false, vec![])));
    let promote = mock!(Client::promote_read_replica)
        .sequence()
        .error(|| PromoteReadReplicaError::generic(mocks::aws_error("Throttling")))
        .output(|| PromoteReadReplicaOutput::builder().db_instance(replica("available", true, false, vec![])).build())
        .build();
    let (tags, lag) = (tags(), lag(420.0));
    let step = build(&kind(&[&describe, &promote, &tags], &[&lag], Some(Duration::from_secs(600))), YAML);
    let ctx = ctx();
    assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
    let e = step.act(&ctx).await.unwrap_err();
    assert!(e.is_retryable() && e.message.contains("Throttling"), "{e}");
    // The engine's next attempt observes again (still a replica: moto-like, nothing changed) and acts.
    assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
    let receipt = step.act(&ctx).await.unwrap();
    crate::steps::test_support::settle(&*step, &ctx, &receipt).await.unwrap();
    let outputs = step.verify(&ctx, &receipt).await.unwrap();
    assert_eq!((outputs["replica_lag_s"].as_str(), outputs["accepted_data_loss_s"].as_str()), ("420", "420"));
    assert_eq!((promote.num_calls(), tags.num_calls()), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_resumed_run_trusts_its_own_marker_and_reports_what_it_recorded() {
    let value = "resource=db-ABC run=run-1 step=step lag_s=420 accepted_s=420";
    let marked = move || replica("available", true, false, vec![Tag::builder().key(MARKER).value(value).build()]);
    let describe = mock!(Client::describe_db_instances).then_output(move || described(marked()));
    let promote = promote();
    let step = build(&kind(&[&describe, &promote], &[], None), YAML);
    let Observation::Done(outputs) = step.observe(&ctx()).await.unwrap() else { panic!("not done") };
    assert_eq!(outputs["accepted_data_loss_s"], "420");
    // Another run finds it promoted too, but reports no loss of its own.
    let mut other = ctx();
    other.run_id = "run-2".into();
    let Observation::Done(outputs) = step.observe(&other).await.unwrap() else { panic!("not done") };
    assert_eq!((outputs.get("replica_lag_s"), outputs.get("accepted_data_loss_s")), (None, None));
    assert_eq!(promote.num_calls(), 0);
}
