//! Tests of `aws.rds.global_failover`, on scripted SDK answers.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_cloudwatch::operation::get_metric_statistics::GetMetricStatisticsOutput;
use aws_sdk_cloudwatch::types::Datapoint;
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
use crate::steps::test_support::{build, build_error, ctx, t0};

const EAST: &str = "arn:aws:rds:us-east-1:123456789012:cluster:portfolio-east";
const WEST: &str = "arn:aws:rds:us-west-2:123456789012:cluster:portfolio-west";
const YAML: &str = "global_cluster: portfolio\ntarget_cluster: arn:aws:rds:us-west-2:123456789012:cluster:portfolio-west\n\
                    mode: failover\nallow_data_loss: true\npoll_interval: 1s\n";

/// The step type with RDS answered by `rules` and the target's RPO lag at 400 ms.
fn kind(rules: &[&Rule]) -> GlobalFailover {
    kind_with(rules, &[&rpo_lag(Some(400.0))], None)
}

fn kind_with(rds: &[&Rule], cloudwatch: &[&Rule], accept: Option<Duration>) -> GlobalFailover {
    let source = Source::Fixed(mocks::rds(RuleMode::MatchAny, rds), mocks::cloudwatch(RuleMode::MatchAny, cloudwatch));
    GlobalFailover { source, accept_data_loss: accept, http: crate::steps::test_support::client() }
}

/// CloudWatch's `AuroraGlobalDBRPOLag` of the target cluster: an older datapoint of 1 ms, then
/// `latest_ms` a minute ago (none at all when `None`).
fn rpo_lag(latest_ms: Option<f64>) -> Rule {
    mock!(aws_sdk_cloudwatch::Client::get_metric_statistics)
        .match_requests(|r| {
            let dimension = r.dimensions().first();
            r.namespace() == Some("AWS/RDS")
                && r.metric_name() == Some("AuroraGlobalDBRPOLag")
                && dimension.and_then(|d| d.name()) == Some("DBClusterIdentifier")
                && dimension.and_then(|d| d.value()) == Some("portfolio-west")
        })
        .then_output(move || {
            let at = |ago: u64| aws_smithy_types::DateTime::from(t0() - Duration::from_secs(ago));
            let mut answer = GetMetricStatisticsOutput::builder();
            if let Some(ms) = latest_ms {
                answer = answer
                    .datapoints(Datapoint::builder().timestamp(at(180)).maximum(1.0).build())
                    .datapoints(Datapoint::builder().timestamp(at(60)).maximum(ms).build());
            }
            answer.build()
        })
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
    assert!(build_error(&kind, &YAML.replace("mode: failover", "mode: switchover")).contains("`mode: failover` only"));
    assert!(build_error(&kind, &YAML.replace(WEST, "portfolio-west")).contains("DB cluster ARN"));
    assert!(build_error(&kind, &YAML.replace("mode: failover", "mode: promote")).contains("unknown variant"));
    let step = build(&kind, YAML);
    assert_eq!(step.describe(), format!("fail over global database portfolio to {WEST} (allowing data loss up to 5m)"));
    let no_loss = YAML.replace("allow_data_loss: true", "max_lag: 30s");
    assert!(build_error(&kind, &no_loss).contains("`max_lag` applies with `allow_data_loss: true` only"));
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
    crate::steps::test_support::settle(&*step, &ctx, &receipt).await.unwrap();
    assert_eq!(describe.num_calls(), 4);
    let outputs = step.verify(&ctx, &receipt).await.unwrap();
    assert_eq!(outputs["writer"], WEST);
    assert_eq!(outputs["endpoint"], "portfolio.global-abc.global.rds.amazonaws.com");
    assert_eq!(outputs["rpo_lag_s"], "0.4", "the lag it failed over with, from the receipt");
    assert!(!outputs.contains_key("accepted_data_loss_s"), "{outputs:?}");
    assert_eq!(failover.num_calls(), 1);
}

/// The RPO gate, through the step: (case, with:, RPO lag in ms or none, --accept-data-loss,
/// Ok(outputs rpo_lag_s, accepted_data_loss_s) or a part of the refusal). A refused failover never
/// calls FailoverGlobalCluster; an ungated one never reads CloudWatch.
#[tokio::test(start_paused = true)]
async fn an_unplanned_failover_goes_through_the_rpo_gate_and_nothing_else_does() {
    let secs = |s: u64| Some(Duration::from_secs(s));
    let switchover = YAML.replace("mode: failover\nallow_data_loss: true", "mode: switchover");
    let managed = YAML.replace("allow_data_loss: true\n", "");
    let tight = YAML.replace("allow_data_loss: true\n", "allow_data_loss: true\nmax_lag: 2s\n");
    type Case<'a> =
        (&'a str, String, Option<f64>, Option<Duration>, Result<(Option<&'a str>, Option<&'a str>), &'a str>);
    let cases: Vec<Case> = vec![
        ("within the plan's RPO", YAML.into(), Some(1_500.0), None, Ok((Some("1.5"), None))),
        (
            "beyond max_lag",
            tight.clone(),
            Some(7_000.0),
            None,
            Err("lags 7s behind its writer, more than `with.max_lag` of 2s"),
        ),
        (
            "beyond max_lag, too little consent",
            tight.clone(),
            Some(7_000.0),
            secs(5),
            Err("`--accept-data-loss 5s` does not cover it"),
        ),
        ("beyond max_lag, covered", tight, Some(7_000.0), secs(10), Ok((Some("7"), Some("7")))),
        ("beyond the plan's RPO", YAML.into(), Some(420_000.0), None, Err("the plan's RPO of 5m")),
        ("unknown", YAML.into(), None, None, Err("AuroraGlobalDBRPOLag datapoint")),
        ("unknown, accepted", YAML.into(), None, secs(60), Ok((None, None))),
        ("a switchover loses nothing", switchover, None, None, Ok((None, None))),
        ("a managed failover loses nothing", managed, None, None, Ok((None, None))),
    ];
    for (case, yaml, lag_ms, accept, expected) in cases {
        let describe = mock!(Client::describe_global_clusters)
            .sequence()
            .output(|| global(EAST, "available", None))
            .output(|| global(WEST, "available", None))
            .repeatedly()
            .build();
        let fail_over =
            mock!(Client::failover_global_cluster).then_output(|| FailoverGlobalClusterOutput::builder().build());
        let switch_over =
            mock!(Client::switchover_global_cluster).then_output(|| SwitchoverGlobalClusterOutput::builder().build());
        let lag = rpo_lag(lag_ms);
        let ungated = case.contains("loses nothing");
        let cloudwatch: Vec<&Rule> = if ungated { vec![] } else { vec![&lag] };
        let step = build(&kind_with(&[&describe, &fail_over, &switch_over], &cloudwatch, accept), &yaml);
        let ctx = ctx();
        let observed = step.observe(&ctx).await;
        match expected {
            Err(part) => {
                let e = observed.expect_err(case);
                // Final, except an unknown lag: its datapoint may not be published yet (see lag_gate).
                assert_eq!(e.is_retryable(), case.starts_with("unknown"), "{case}: {e}");
                assert!(e.message.contains(part), "{case}: {part} not in {e}");
                let e = step.act(&ctx).await.expect_err(case);
                assert!(e.message.contains(part), "{case}: act asks the gate too: {e}");
                assert_eq!(fail_over.num_calls(), 0, "{case}");
            }
            Ok((lag_s, accepted_s)) => {
                assert_eq!(observed.unwrap_or_else(|e| panic!("{case}: {e}")), Observation::NotDone, "{case}");
                let receipt = step.act(&ctx).await.unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_eq!(receipt.is_none(), ungated, "{case}: only a gated failover has a receipt");
                let outputs = step.verify(&ctx, &receipt).await.unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_eq!(outputs.get("rpo_lag_s").map(String::as_str), lag_s, "{case}");
                assert_eq!(outputs.get("accepted_data_loss_s").map(String::as_str), accepted_s, "{case}");
                assert_eq!(fail_over.num_calls() + switch_over.num_calls(), 1, "{case}");
                assert_eq!(lag.num_calls(), if ungated { 0 } else { 2 }, "{case}: observe and act each read it");
            }
        }
    }
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
    crate::steps::test_support::settle(&*step, &ctx(), &receipt).await.unwrap();
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
    crate::steps::test_support::settle(&*step, &ctx, &receipt).await.unwrap();
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
    let engine = Engine { registry, clock: clock.clone(), reporter: Arc::new(Silent), retry, wait: Default::default() };
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
    let records: Vec<Record> =
        crate::journal::read(&state.journal_path(&active.view.run_id)).unwrap().into_iter().map(|e| e.record).collect();
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
