//! The SIGKILL trial of `aws.rds.global_failover` (an unplanned failover through the RPO gate, so
//! it has a receipt). moto does not implement FailoverGlobalCluster, so a [`FaultProxy`] in front
//! of moto plays the Aurora global database (DescribeGlobalClusters, FailoverGlobalCluster, with a
//! writer that moves after a while) and forwards the rest, CloudWatch's `AuroraGlobalDBRPOLag`
//! included, to moto. The trial counts the FailoverGlobalCluster calls the fake received.

// Real time is the point here: tests wait on real servers and processes, not a run's clock.
#![allow(clippy::disallowed_methods)]

mod support;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use support::fault_proxy::{FaultProxy, Reply};
use support::kill::{KillPoint, assert_same_outputs, kill_when_and_resume, outputs};
use support::moto::Moto;
use support::{TestDir, drctl, run};

const PRIMARY: &str = "arn:aws:rds:us-east-1:123456789012:cluster:portfolio-prod";
const TARGET: &str = "arn:aws:rds:us-west-2:123456789012:cluster:portfolio-dr";
const ENDPOINT: &str = "portfolio-global.global-abc123.global.rds.amazonaws.com";
const HOLD: Duration = Duration::from_millis(1500);

/// The fake global database's state and how slow it is.
#[derive(Default)]
struct Global {
    failovers: usize,
    failed_over_at: Option<Instant>,
}

/// How the fake behaves: how long FailoverGlobalCluster's answer takes, how long the writer moves.
#[derive(Clone, Copy)]
struct Pace {
    answer: Duration,
    moving: Duration,
}

fn describe_xml(state: &Global, pace: Pace) -> String {
    let moving = state.failed_over_at.map(|at| at.elapsed() < pace.moving);
    let (target_writes, status, failover) = match moving {
        None => (false, "available", String::new()),
        Some(true) => (
            false,
            "failing-over",
            format!(
                "<FailoverState><Status>failing-over</Status><FromDbClusterArn>{PRIMARY}</FromDbClusterArn>\
                 <ToDbClusterArn>{TARGET}</ToDbClusterArn><IsDataLossAllowed>true</IsDataLossAllowed></FailoverState>"
            ),
        ),
        Some(false) => (true, "available", String::new()),
    };
    let member = |arn: &str, writer: bool| {
        format!(
            "<GlobalClusterMember><DBClusterArn>{arn}</DBClusterArn><IsWriter>{writer}</IsWriter></GlobalClusterMember>"
        )
    };
    format!(
        "<DescribeGlobalClustersResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><DescribeGlobalClustersResult>\
         <GlobalClusters><GlobalClusterMember><GlobalClusterIdentifier>portfolio-global</GlobalClusterIdentifier>\
         <Status>{status}</Status><Endpoint>{ENDPOINT}</Endpoint><GlobalClusterMembers>{}{}</GlobalClusterMembers>{failover}\
         </GlobalClusterMember></GlobalClusters></DescribeGlobalClustersResult>\
         <ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></DescribeGlobalClustersResponse>",
        member(PRIMARY, !target_writes),
        member(TARGET, target_writes),
    )
}

const FAILOVER_XML: &str = "<FailoverGlobalClusterResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">\
    <FailoverGlobalClusterResult><GlobalCluster><GlobalClusterIdentifier>portfolio-global</GlobalClusterIdentifier>\
    <Status>failing-over</Status></GlobalCluster></FailoverGlobalClusterResult>\
    <ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></FailoverGlobalClusterResponse>";

/// moto behind a fake Aurora global database.
fn fake_global(moto: &Moto, pace: Pace) -> (FaultProxy, Arc<Mutex<Global>>) {
    let state = Arc::new(Mutex::new(Global::default()));
    let shared = state.clone();
    let proxy = FaultProxy::start(&moto.url(), move |request| match request.operation().as_str() {
        "DescribeGlobalClusters" => {
            let xml = describe_xml(&shared.lock().unwrap(), pace);
            Some(Reply::new(200, "text/xml", &xml))
        }
        "FailoverGlobalCluster" => {
            {
                let mut global = shared.lock().unwrap();
                global.failovers += 1;
                global.failed_over_at = Some(Instant::now());
            }
            std::thread::sleep(pace.answer); // AWS has accepted it; the answer is on its way
            Some(Reply::new(200, "text/xml", FAILOVER_XML))
        }
        _ => None,
    });
    (proxy, state)
}

/// An `AuroraGlobalDBRPOLag` datapoint of 1500 ms for the target, 30 s ago, in moto (with boto3:
/// the Rust SDK's CloudWatch client speaks only the RPC v2 CBOR protocol, which moto lacks).
fn put_rpo_lag(moto: &Moto) {
    let script = format!(
        "import boto3, datetime\n\
         cw = boto3.client('cloudwatch', region_name='us-west-2', endpoint_url='{url}', \
         aws_access_key_id='testing', aws_secret_access_key='testing')\n\
         now = datetime.datetime.now(datetime.timezone.utc)\n\
         cw.put_metric_data(Namespace='AWS/RDS', MetricData=[{{'MetricName': 'AuroraGlobalDBRPOLag', 'Value': 1500.0, \
         'Unit': 'Milliseconds', 'Dimensions': [{{'Name': 'DBClusterIdentifier', 'Value': 'portfolio-dr'}}], \
         'Timestamp': now - datetime.timedelta(seconds=30)}}])\n",
        url = moto.url()
    );
    let python = std::env::var_os("DRCTL_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let output = Command::new(python).args(["-c", &script]).output().expect("run python");
    assert!(output.status.success(), "put AuroraGlobalDBRPOLag: {}", String::from_utf8_lossy(&output.stderr));
}

fn plan() -> String {
    format!(
        "name: global\n\
         regions: {{primary: us-east-1, secondary: us-west-2}}\n\
         objectives: {{rto: 15m, rpo: 5m}}\n\
         defaults: {{timeout: 60s, retries: 0}}\n\
         failover:\n  - id: global\n    type: aws.rds.global_failover\n    with:\n      \
         global_cluster: portfolio-global\n      target_cluster: {TARGET}\n      mode: failover\n      \
         allow_data_loss: true\n      poll_interval: 200ms\n\
         failback:\n  - id: back\n    type: wait\n    with: {{duration: 1ms}}\n"
    )
}

fn command(dir: &TestDir, moto: &Moto, endpoint: &str, args: &[&str]) -> Command {
    let mut command = drctl(dir);
    command.args(args).arg("--yes").arg("--endpoint-url").arg(endpoint).envs(moto.env());
    command
}

fn uninterrupted(moto: &Moto) -> Map<String, Value> {
    let (proxy, state) = fake_global(moto, Pace { answer: Duration::ZERO, moving: Duration::from_millis(300) });
    let dir = TestDir::new("kill-global-fresh");
    let file = dir.write_plan("plan.yaml", &plan());
    let out = run(command(&dir, moto, &proxy.url(), &["failover", "--plan", file.to_str().unwrap()]));
    out.expect_code(0, &format!("{out}{}{}", dir.journals_text(), proxy.log()));
    assert_eq!(state.lock().unwrap().failovers, 1);
    outputs(&dir.only_journal(), "global")
}

#[test]
fn a_global_failover_killed_inside_or_after_act_fails_over_once() {
    let moto = Moto::start();
    put_rpo_lag(&moto);
    let fresh = uninterrupted(&moto);
    assert_eq!(fresh["rpo_lag_s"], "1.5", "{fresh:?}");
    assert_eq!(fresh["writer"], TARGET);

    // After the receipt: the writer moves for 1.5 s, the kill lands while the step polls.
    let (proxy, state) = fake_global(&moto, Pace { answer: Duration::ZERO, moving: HOLD });
    let dir = TestDir::new("kill-global-acted");
    let file = dir.write_plan("plan.yaml", &plan());
    let failover = command(&dir, &moto, &proxy.url(), &["failover", "--plan", file.to_str().unwrap()]);
    let resume = |run_id: &str| command(&dir, &moto, &proxy.url(), &["resume", run_id, "--break-lock"]);
    let trial = kill_when_and_resume(&dir, failover, KillPoint::AfterActed("global"), || true, resume);
    trial.check_journal();
    let ctx = format!("{}{}", trial.show(), proxy.log());
    assert_eq!(state.lock().unwrap().failovers, 1, "failed over once\n{ctx}");
    assert_same_outputs(&trial.outputs("global"), &fresh, &[], &ctx);

    // Inside act: AWS has accepted the failover, its answer is held.
    let pace = Pace { answer: HOLD, moving: Duration::from_millis(300) };
    let (proxy, state) = fake_global(&moto, pace);
    let dir = TestDir::new("kill-global-acting");
    let file = dir.write_plan("plan.yaml", &plan());
    let failover = command(&dir, &moto, &proxy.url(), &["failover", "--plan", file.to_str().unwrap()]);
    let resume = |run_id: &str| command(&dir, &moto, &proxy.url(), &["resume", run_id, "--break-lock"]);
    let accepted = || state.lock().unwrap().failovers == 1;
    let trial = kill_when_and_resume(&dir, failover, KillPoint::AfterActing("global"), accepted, resume);
    trial.check_journal();
    let ctx = format!("{}{}", trial.show(), proxy.log());
    assert_eq!(state.lock().unwrap().failovers, 1, "failed over once\n{ctx}");
    assert!(!trial.acted_again(), "observe found the writer moving or moved\n{ctx}");
    // The receipt (the RPO lag the gate let the failover through with) died with the process
    // before it was journaled, and no marker keeps it: the resumed step reports the failover as
    // found, without rpo_lag_s. The outputs read from AWS are an uninterrupted run's.
    let resumed = trial.outputs("global");
    assert_eq!(resumed.get("rpo_lag_s"), None, "{ctx}");
    let mut read_from_aws = fresh.clone();
    read_from_aws.remove("rpo_lag_s");
    assert_same_outputs(&resumed, &read_from_aws, &[], &ctx);
}
