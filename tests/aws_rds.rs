//! The `aws.rds.*` step types end to end: the real binary against moto (`--endpoint-url`), seeded
//! with the AWS SDK from the test (a source instance in us-east-1, a cross-region read replica in
//! us-west-2 created by ARN, ReplicaLag datapoints in CloudWatch). Assertions look at moto's state
//! after the run, not only at exit codes.
//!
//! What moto 5.2.5 changes when a replica is promoted: only an internal flag. DescribeDBInstances
//! shows the same status, the same `ReadReplicaSourceDBInstanceIdentifier`, and the source keeps
//! listing the replica. The one API that tells a promoted replica apart is StopDBInstance, which
//! moto refuses for a replica: [`is_still_a_replica`] uses it (a mutation, so only where the test
//! no longer cares about the instance's status, or restarts it).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_rds::config::Credentials;
use aws_sdk_rds::types::DbInstance;
use serde_json::Value;
use support::fault_proxy::{FaultProxy, Reply};
use support::moto::Moto;
use support::{Background, Out, TestDir, drctl, records, run, show, wait_until};

const SOURCE: &str = "portfolio-prod";
const REPLICA: &str = "portfolio-dr-replica";
const MARKER: &str = "drctl:promoted";

/// SDK clients on moto, and a runtime to drive them from synchronous tests.
struct Emulator {
    moto: Moto,
    runtime: tokio::runtime::Runtime,
}

impl Emulator {
    fn start() -> Emulator {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        Emulator { moto: Moto::start(), runtime }
    }

    fn rds(&self, region: &str) -> aws_sdk_rds::Client {
        let config = aws_sdk_rds::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(self.moto.url())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build();
        aws_sdk_rds::Client::from_conf(config)
    }

    fn block<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// A PostgreSQL instance `id` in `region`.
    fn create_instance(&self, region: &str, id: &str) -> DbInstance {
        let rds = self.rds(region);
        let created = self.block(
            rds.create_db_instance()
                .db_instance_identifier(id)
                .db_instance_class("db.t3.micro")
                .engine("postgres")
                .master_username("portfolio")
                .master_user_password("not-a-secret-1")
                .allocated_storage(20)
                .send(),
        );
        created.expect("create the instance").db_instance().cloned().expect("an instance")
    }

    /// The runbook's setup: `portfolio-prod` in us-east-1 and its read replica in us-west-2,
    /// created by ARN (a cross-region source must be named by its ARN).
    fn seed_replica(&self) {
        let source = self.create_instance("us-east-1", SOURCE);
        let arn = source.db_instance_arn().expect("an ARN");
        let created = self.block(
            self.rds("us-west-2")
                .create_db_instance_read_replica()
                .db_instance_identifier(REPLICA)
                .source_db_instance_identifier(arn)
                .send(),
        );
        created.expect("create the read replica");
        assert!(self.is_still_a_replica(), "moto refuses to stop a fresh replica");
    }

    /// ReplicaLag datapoints for the replica: an old small one and, 30 s ago, `latest` seconds.
    ///
    /// Put with boto3 (moto's own Python): the Rust SDK's CloudWatch client speaks only the RPC v2
    /// CBOR protocol, which moto 5.2.5 does not implement (getmoto/moto#9195).
    fn put_lag(&self, latest: f64) {
        let script = format!(
            "import boto3, datetime\n\
             cw = boto3.client('cloudwatch', region_name='us-west-2', endpoint_url='{url}', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             now = datetime.datetime.now(datetime.timezone.utc)\n\
             point = lambda ago, value: {{'MetricName': 'ReplicaLag', 'Value': value, 'Unit': 'Seconds', \
             'Dimensions': [{{'Name': 'DBInstanceIdentifier', 'Value': '{REPLICA}'}}], \
             'Timestamp': now - datetime.timedelta(seconds=ago)}}\n\
             cw.put_metric_data(Namespace='AWS/RDS', MetricData=[point(200, 2.0), point(30, {latest})])\n",
            url = self.moto.url()
        );
        let python = std::env::var_os("DRCTL_PYTHON")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
        let output = std::process::Command::new(python).args(["-c", &script]).output().expect("run python");
        assert!(output.status.success(), "put ReplicaLag: {}", String::from_utf8_lossy(&output.stderr));
    }

    fn describe(&self, region: &str, id: &str) -> Option<DbInstance> {
        let answer = self.block(self.rds(region).describe_db_instances().db_instance_identifier(id).send());
        answer.ok().and_then(|a| a.db_instances().first().cloned())
    }

    fn marker(&self) -> Option<String> {
        let replica = self.describe("us-west-2", REPLICA)?;
        replica.tag_list().iter().find(|t| t.key() == Some(MARKER)).and_then(|t| t.value()).map(str::to_string)
    }

    /// Whether moto still takes the replica for a replica: it refuses to stop one. A promoted
    /// instance is stopped and started again, back to `available`.
    fn is_still_a_replica(&self) -> bool {
        let rds = self.rds("us-west-2");
        match self.block(rds.stop_db_instance().db_instance_identifier(REPLICA).send()) {
            Err(_) => true,
            Ok(_) => {
                self.block(rds.start_db_instance().db_instance_identifier(REPLICA).send()).expect("start it again");
                false
            }
        }
    }
}

/// A plan with the runbook's regions and RPO, and these step lists.
fn rds_plan(failover: &str, failback: &str) -> String {
    format!(
        "name: rds\nregions: {{primary: us-east-1, secondary: us-west-2}}\nobjectives: {{rto: 15m, rpo: 5m}}\n\
         defaults: {{timeout: 2m, retries: 0}}\nfailover:\n{failover}failback:\n{failback}"
    )
}

const NOTHING: &str = "  - id: back\n    type: wait\n    with: {duration: 1ms}\n";

/// The promotion, looking every `poll`, with `retries`.
fn promote_step(poll: &str, retries: u32) -> String {
    format!(
        "  - id: promote-db\n    type: aws.rds.promote_replica\n    retries: {retries}\n    with:\n      \
         replica: {REPLICA}\n      poll_interval: {poll}\n"
    )
}

/// `drctl <args...> --endpoint-url <moto> --yes` with moto's credentials.
fn command(dir: &TestDir, emulator: &Emulator, args: &[&str]) -> std::process::Command {
    let mut command = drctl(dir);
    command.args(args).args(["--yes", "--endpoint-url", &emulator.moto.url()]);
    for (key, value) in emulator.moto.env() {
        command.env(key, value);
    }
    command
}

fn drctl_run(dir: &TestDir, emulator: &Emulator, args: &[&str]) -> Out {
    run(command(dir, emulator, args))
}

fn context(out: &Out, dir: &TestDir) -> String {
    format!("{out}{}", dir.journals_text())
}

/// The outputs journaled with `step`'s success, and whether it was already done.
fn succeeded(journal: &[Value], step: &str) -> (serde_json::Map<String, Value>, bool) {
    let records = records(journal, "step_succeeded", Some(step));
    assert_eq!(records.len(), 1, "one success of {step}\n{}", show(journal));
    let outputs = records[0]["outputs"].as_object().cloned().unwrap_or_default();
    (outputs, records[0]["already_done"] == true)
}

#[test]
fn promotes_the_replica_and_a_second_run_finds_it_done() {
    let emulator = Emulator::start();
    emulator.seed_replica();
    emulator.put_lag(12.0);
    let dir = TestDir::new("rds-promote");
    let plan = dir.write_plan("rds.yaml", &rds_plan(&promote_step("100ms", 0), NOTHING));
    let plan = plan.to_str().unwrap();

    let out = drctl_run(&dir, &emulator, &["failover", "--plan", plan]);
    let ctx = context(&out, &dir);
    out.expect_code(0, &ctx);
    let first = dir.only_run_id();
    let journal = dir.journal(&first);
    let (outputs, already_done) = succeeded(&journal, "promote-db");
    assert!(!already_done, "{ctx}");
    let replica = emulator.describe("us-west-2", REPLICA).expect("the replica is still there");
    let endpoint = replica.endpoint().expect("an endpoint");
    assert_eq!(outputs["endpoint"], endpoint.address().unwrap(), "{ctx}");
    assert_eq!(outputs["port"], endpoint.port().unwrap().to_string().as_str(), "{ctx}");
    assert_eq!(outputs["arn"], replica.db_instance_arn().unwrap(), "{ctx}");
    assert_eq!(outputs["replica_lag_s"], "12", "{ctx}");
    assert_eq!(outputs.get("accepted_data_loss_s"), None, "no loss accepted: absent\n{ctx}");
    let marker = emulator.marker().expect("the promotion is recorded on the instance");
    assert!(marker.contains(&format!("run={first}")) && marker.contains("step=promote-db"), "{marker}");

    // A second failover finds the replica promoted: "already done", and no act (no step_acting,
    // and `act` is the only caller of PromoteReadReplica). --new-run: it already succeeded.
    let out = drctl_run(&dir, &emulator, &["failover", "--plan", plan, "--new-run"]);
    let ctx = context(&out, &dir);
    out.expect_code(0, &ctx);
    let second = dir.run_ids().into_iter().find(|id| *id != first).expect("a second run");
    let journal = dir.journal(&second);
    let (outputs, already_done) = succeeded(&journal, "promote-db");
    assert!(already_done, "{ctx}");
    assert!(records(&journal, "step_acting", Some("promote-db")).is_empty(), "{ctx}");
    assert_eq!(outputs["endpoint"], endpoint.address().unwrap(), "{ctx}");
    assert_eq!(outputs.get("accepted_data_loss_s"), None, "the first run's lag is not reported as this run's\n{ctx}");

    // What moto truly changed: it no longer takes the instance for a replica.
    assert!(!emulator.is_still_a_replica(), "moto still refuses to stop the promoted replica");
}

#[test]
fn lag_beyond_the_rpo_is_refused_until_the_loss_is_accepted() {
    let emulator = Emulator::start();
    emulator.seed_replica();
    emulator.put_lag(420.0);
    let dir = TestDir::new("rds-lag");
    let plan = dir.write_plan("rds.yaml", &rds_plan(&promote_step("100ms", 2), NOTHING));

    let out = drctl_run(&dir, &emulator, &["failover", "--plan", plan.to_str().unwrap()]);
    let ctx = context(&out, &dir);
    out.expect_code(1, &ctx);
    for part in ["420s", "RPO of 5m", "--accept-data-loss 7m"] {
        assert!(out.all().contains(part), "the refusal does not say {part:?}\n{ctx}");
    }
    let run_id = dir.only_run_id();
    let journal = dir.journal(&run_id);
    assert!(records(&journal, "step_acting", Some("promote-db")).is_empty(), "refused before acting\n{ctx}");
    assert!(records(&journal, "step_retrying", Some("promote-db")).is_empty(), "a refusal is not retried\n{ctx}");
    assert_eq!(emulator.marker(), None, "{ctx}");
    assert!(emulator.is_still_a_replica(), "the refused replica was promoted anyway");

    let out = drctl_run(&dir, &emulator, &["resume", &run_id, "--accept-data-loss", "10m"]);
    let ctx = context(&out, &dir);
    out.expect_code(0, &ctx);
    let journal = dir.journal(&run_id);
    let (outputs, already_done) = succeeded(&journal, "promote-db");
    assert!(!already_done, "{ctx}");
    assert_eq!(outputs["replica_lag_s"], "420", "{ctx}");
    assert_eq!(outputs["accepted_data_loss_s"], "420", "the accepted loss is journaled\n{ctx}");
    assert!(!emulator.is_still_a_replica(), "moto still takes it for a replica");
}

#[test]
fn a_missing_replica_fails_fast() {
    let emulator = Emulator::start();
    let dir = TestDir::new("rds-missing");
    let plan = dir.write_plan("rds.yaml", &rds_plan(&promote_step("100ms", 3), NOTHING));

    let out = drctl_run(&dir, &emulator, &["failover", "--plan", plan.to_str().unwrap()]);
    let ctx = context(&out, &dir);
    out.expect_code(1, &ctx);
    assert!(out.all().contains("`with.replica`"), "the error names the field\n{ctx}");
    let journal = dir.only_journal();
    assert!(records(&journal, "step_retrying", None).is_empty(), "a missing replica is not retried\n{ctx}");
    assert_eq!(records(&journal, "step_started", Some("promote-db")).len(), 1, "{ctx}");
    let failed = records(&journal, "step_failed", Some("promote-db"));
    assert!(failed[0]["error"].as_str().unwrap().contains(REPLICA), "{ctx}");
}

#[test]
fn failback_creates_a_replica_and_restores_make_instances() {
    let emulator = Emulator::start();
    // After a failover: the promoted DR instance is the primary; us-east-1 has last night's snapshot.
    let dr = emulator.create_instance("us-west-2", REPLICA);
    emulator.create_instance("us-east-1", SOURCE);
    let snapshot = emulator
        .rds("us-east-1")
        .create_db_snapshot()
        .db_snapshot_identifier("nightly")
        .db_instance_identifier(SOURCE)
        .send();
    emulator.block(snapshot).expect("a snapshot");
    let failback = format!(
        "  - id: reprotect\n    type: aws.rds.create_replica\n    with:\n      source: {REPLICA}\n      \
         replica: portfolio-prod-reprotected\n      poll_interval: 100ms\n\
         \x20 - id: restore\n    type: aws.rds.restore_snapshot\n    with:\n      snapshot: nightly\n      \
         target: portfolio-restored\n      poll_interval: 100ms\n\
         \x20 - id: pitr\n    type: aws.rds.restore_point_in_time\n    with:\n      source: {SOURCE}\n      \
         target: portfolio-pitr\n      latest: true\n      poll_interval: 100ms\n"
    );
    let dir = TestDir::new("rds-failback");
    let plan = dir.write_plan("rds.yaml", &rds_plan(NOTHING, &failback));
    let plan = plan.to_str().unwrap();

    let out = drctl_run(&dir, &emulator, &["failback", "--plan", plan]);
    let ctx = context(&out, &dir);
    out.expect_code(0, &ctx);
    let first = dir.only_run_id();
    let journal = dir.journal(&first);

    // The replica: in us-east-1 (the failback's target region), replicating the DR instance, whose
    // identifier was looked up in us-west-2 (the plan's other region) and passed as its ARN.
    let reprotected = emulator.describe("us-east-1", "portfolio-prod-reprotected").expect("the replica exists");
    assert_eq!(reprotected.read_replica_source_db_instance_identifier(), dr.db_instance_arn(), "{ctx}");
    let dr_now = emulator.describe("us-west-2", REPLICA).unwrap();
    assert_eq!(dr_now.read_replica_db_instance_identifiers(), [reprotected.db_instance_arn().unwrap()], "{ctx}");
    let (outputs, _) = succeeded(&journal, "reprotect");
    assert_eq!(outputs["endpoint"], reprotected.endpoint().unwrap().address().unwrap(), "{ctx}");
    assert_eq!(outputs["arn"], reprotected.db_instance_arn().unwrap(), "{ctx}");

    for (step, target) in [("restore", "portfolio-restored"), ("pitr", "portfolio-pitr")] {
        let restored = emulator.describe("us-east-1", target).unwrap_or_else(|| panic!("{target} exists\n{ctx}"));
        assert_eq!(restored.db_instance_status(), Some("available"));
        let (outputs, already_done) = succeeded(&journal, step);
        assert!(!already_done, "{ctx}");
        assert_eq!(outputs["endpoint"], restored.endpoint().unwrap().address().unwrap(), "{ctx}");
        assert_eq!(outputs["port"], "5432", "{ctx}");
    }

    // Again (--new-run: it already succeeded): everything is found in place.
    let out = drctl_run(&dir, &emulator, &["failback", "--plan", plan, "--new-run"]);
    let ctx = context(&out, &dir);
    out.expect_code(0, &ctx);
    let second = dir.run_ids().into_iter().find(|id| *id != first).expect("a second run");
    let journal = dir.journal(&second);
    for step in ["reprotect", "restore", "pitr"] {
        assert!(succeeded(&journal, step).1, "{step} is already done\n{ctx}");
        assert!(records(&journal, "step_acting", Some(step)).is_empty(), "{ctx}");
    }
}

/// SIGKILL in the middle of the promotion's wait, then `drctl resume --break-lock`.
///
/// A proxy in front of moto throttles the DescribeDBInstances calls that follow the promotion, so
/// the step sits in the engine's poll (a tolerated `step_wait_error`) when the kill lands.
/// PromoteReadReplica is called exactly once:
/// - at most once: the step calls it only from `act`, and the resumed process gets the journaled
///   receipt back (`step_acted`), so it polls and verifies instead of observing and acting; the
///   journal holds one `step_acting` for the step across both processes;
/// - at least once: moto holds the `drctl:promoted` tag, which the step writes only after moto
///   accepted PromoteReadReplica, and moto no longer takes the instance for a replica.
#[test]
fn a_promotion_killed_mid_wait_resumes_without_promoting_again() {
    let emulator = Emulator::start();
    emulator.seed_replica();
    emulator.put_lag(12.0);
    let promoted = Arc::new(AtomicBool::new(false));
    let throttled = Arc::new(AtomicUsize::new(0));
    let (seen, count) = (promoted.clone(), throttled.clone());
    let proxy = FaultProxy::start(&emulator.moto.url(), move |request| match request.operation().as_str() {
        "PromoteReadReplica" => {
            seen.store(true, Ordering::SeqCst);
            None
        }
        // Three in a row: tolerated by the engine's wait, and the kill lands among them.
        "DescribeDBInstances" if seen.load(Ordering::SeqCst) && count.fetch_add(1, Ordering::SeqCst) < 3 => {
            Some(Reply::xml_throttling())
        }
        _ => None,
    });
    let dir = TestDir::new("rds-kill");
    let failover = format!(
        "{}  - id: after-promotion\n    type: wait\n    after: [promote-db]\n    with: {{duration: 1ms}}\n",
        promote_step("30s", 0)
    );
    let plan = dir.write_plan("rds.yaml", &rds_plan(&failover, NOTHING));
    let through_proxy = |args: &[&str]| {
        let mut command = drctl(&dir);
        command.args(args).args(["--yes", "--endpoint-url", &proxy.url()]);
        command.envs(emulator.moto.env());
        command
    };
    let running = Background::spawn(through_proxy(&["failover", "--plan", plan.to_str().unwrap()]));
    let waiting = wait_until(Duration::from_secs(30), || {
        dir.run_ids()
            .first()
            .is_some_and(|id| !records(&dir.journal(id), "step_wait_error", Some("promote-db")).is_empty())
    });
    assert!(waiting, "the promotion never waited through a throttled poll\n{}", dir.journals_text());
    running.signal("KILL");
    let killed = running.finish();
    assert_eq!(killed.code(), None, "killed by the signal, not finished\n{killed}");
    let run_id = dir.only_run_id();
    assert!(records(&dir.journal(&run_id), "step_succeeded", Some("promote-db")).is_empty(), "killed too late");
    assert!(emulator.marker().is_some(), "moto never accepted the promotion");

    let out = run(through_proxy(&["resume", &run_id, "--break-lock"]));
    let ctx = format!("{}{}", context(&out, &dir), proxy.log());
    out.expect_code(0, &ctx);
    let journal = dir.journal(&run_id);
    assert_eq!(records(&journal, "run_resumed", None).len(), 1, "{ctx}");
    assert_eq!(records(&journal, "step_acting", Some("promote-db")).len(), 1, "promoted again on resume\n{ctx}");
    assert_eq!(records(&journal, "step_acted", Some("promote-db")).len(), 1, "{ctx}");
    let promotions = proxy.exchanges().iter().filter(|e| e.operation == "PromoteReadReplica").count();
    assert_eq!(promotions, 1, "{ctx}");
    let (outputs, already_done) = succeeded(&journal, "promote-db");
    assert!(!already_done, "this run promoted it: its receipt says so\n{ctx}");
    // The outputs come from the receipt the killed process journaled.
    assert_eq!(outputs["replica_lag_s"], "12", "{ctx}");
    assert!(!outputs["endpoint"].as_str().unwrap_or_default().is_empty(), "{ctx}");
    assert!(!succeeded(&journal, "after-promotion").1, "{ctx}");
    assert!(!emulator.is_still_a_replica(), "moto still takes it for a replica");
}
