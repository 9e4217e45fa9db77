//! SIGKILL trials for the AWS step types with a receipt that moto can drive (`aws.secrets.put`,
//! `aws.secrets.restore_previous`, `aws.rds.fence`): the killed run reaches moto through a
//! [`DelayProxy`] that holds the call the kill should land in (or its answer); the resume goes to
//! moto directly. Each trial is compared with an uninterrupted run of the same plan on a freshly
//! reset moto, the ids moto makes up (version ids, ARNs) replaced by what they name.
//!
//! `aws.rds.global_failover` has its own file (`kill_aws_global.rs`): moto does not implement
//! FailoverGlobalCluster, so a fake global database sits in front of it there.

// Real time is the point here: tests wait on real servers and processes, not a run's clock.
#![allow(clippy::disallowed_methods)]

mod support;

use std::process::Command;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use serde_json::{Map, Value};
use support::kill::{DelayProxy, Hold, KillPoint, Trial, assert_same_outputs, kill_when_and_resume, outputs};
use support::moto::Moto;
use support::{TestDir, drctl, run};

const SECRET: &str = "dr-database-url";
/// Long enough for the kill to land under load; the resumes do not go through the held proxy.
const HOLD: Duration = Duration::from_secs(5);

/// A plan with the runbook's regions whose failover is `steps`.
fn aws_plan(steps: &str) -> String {
    format!(
        "name: aws\n\
         regions: {{primary: us-east-1, secondary: us-west-2}}\n\
         objectives: {{rto: 15m, rpo: 5m}}\n\
         defaults: {{timeout: 60s, retries: 0}}\n\
         failover:\n{steps}\
         failback:\n  - id: back\n    type: wait\n    with: {{duration: 1ms}}\n"
    )
}

fn command(dir: &TestDir, moto: &Moto, endpoint: &str, args: &[&str]) -> Command {
    let mut command = drctl(dir);
    command.args(args).arg("--yes").arg("--endpoint-url").arg(endpoint).envs(moto.env());
    command
}

/// The step's outputs of an uninterrupted run of `yaml`.
fn uninterrupted(moto: &Moto, yaml: &str, step: &str) -> Map<String, Value> {
    let dir = TestDir::new("kill-aws-fresh");
    let file = dir.write_plan("plan.yaml", yaml);
    run(command(&dir, moto, &moto.url(), &["failover", "--plan", file.to_str().unwrap()]))
        .expect_code(0, &dir.journals_text());
    outputs(&dir.only_journal(), step)
}

/// Runs `yaml` through a proxy to moto with `holds`, killed at `point` once `world` holds, and
/// resumed against moto directly.
fn proxied_trial(
    moto: &Moto,
    yaml: &str,
    holds: Vec<Hold>,
    point: KillPoint,
    world: impl Fn(&DelayProxy) -> bool,
) -> (Trial, DelayProxy) {
    let dir = TestDir::new("kill-aws");
    let file = dir.write_plan("plan.yaml", yaml);
    let proxy = DelayProxy::start(&moto.url().replace("http://", ""), holds);
    let failover = command(&dir, moto, &proxy.url(), &["failover", "--plan", file.to_str().unwrap()]);
    let resume = |run_id: &str| command(&dir, moto, &moto.url(), &["resume", run_id, "--break-lock"]);
    let trial = kill_when_and_resume(&dir, failover, point, || world(&proxy), resume);
    trial.check_journal();
    (trial, proxy)
}

/// `outputs` with each id in `names` replaced by what it names.
fn named(outputs: &Map<String, Value>, names: &[(&str, &str)]) -> Map<String, Value> {
    let rename = |v: &Value| {
        let mut text = v.as_str().unwrap_or_default().to_string();
        for (id, name) in names.iter().filter(|(id, _)| !id.is_empty()) {
            text = text.replace(id, name);
        }
        Value::from(text)
    };
    outputs.iter().map(|(k, v)| (k.clone(), rename(v))).collect()
}

struct Secrets {
    runtime: tokio::runtime::Runtime,
    client: Client,
}

impl Secrets {
    fn on(moto: &Moto) -> Secrets {
        let runtime = Moto::runtime();
        let client = Client::new(&moto.sdk_config(&runtime, "us-west-2"));
        Secrets { runtime, client }
    }

    /// Creates the secret with `value`; its version id.
    fn create(&self, value: &str) -> String {
        let created = self.runtime.block_on(self.client.create_secret().name(SECRET).secret_string(value).send());
        created.expect("create the secret").version_id().unwrap().to_string()
    }

    /// A second version, made current; its id.
    fn put(&self, value: &str) -> String {
        let put = self.runtime.block_on(self.client.put_secret_value().secret_id(SECRET).secret_string(value).send());
        put.expect("put a version").version_id().unwrap().to_string()
    }

    /// (version id → staging labels, ARN).
    fn described(&self) -> (Vec<(String, Vec<String>)>, String) {
        let described = self.runtime.block_on(self.client.describe_secret().secret_id(SECRET).send()).unwrap();
        let mut stages: Vec<(String, Vec<String>)> =
            described.version_ids_to_stages().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        stages.sort();
        (stages, described.arn().unwrap().to_string())
    }

    /// The version AWSCURRENT is on.
    fn current(&self) -> String {
        let (stages, _) = self.described();
        stages.into_iter().find(|(_, labels)| labels.iter().any(|l| l == "AWSCURRENT")).unwrap().0
    }
}

const PUT: &str = "  - id: put\n    type: aws.secrets.put\n    with: {secret_id: dr-database-url, value: 'url=dr'}\n";

/// A put's outputs with this world's ids named: the seed version, the written one, the ARN.
fn put_outputs(secrets: &Secrets, seed: &str, outputs: &Map<String, Value>) -> Map<String, Value> {
    let (_, arn) = secrets.described();
    named(outputs, &[(&arn, "ARN"), (&secrets.current(), "WRITTEN"), (seed, "SEED")])
}

#[test]
fn a_secret_put_killed_inside_or_after_act_writes_one_version() {
    let moto = Moto::start();
    let secrets = Secrets::on(&moto);
    let seed = secrets.create("url=primary");
    let fresh = put_outputs(&secrets, &seed, &uninterrupted(&moto, &aws_plan(PUT), "put"));
    assert_eq!(fresh["previous_version_id"], "SEED", "{fresh:?}");

    // After the receipt: verify's DescribeSecret is held, the kill lands meanwhile.
    moto.reset();
    let seed = secrets.create("url=primary");
    let holds = vec![Hold::request("secretsmanager.DescribeSecret", HOLD)];
    let point = KillPoint::AfterActed("put");
    let (trial, _) = proxied_trial(&moto, &aws_plan(PUT), holds, point, |p| p.matched(0) == 1);
    assert_eq!(secrets.described().0.len(), 2, "one version written: {:?}\n{}", secrets.described(), trial.show());
    let resumed = put_outputs(&secrets, &seed, &trial.outputs("put"));
    assert_same_outputs(&resumed, &fresh, &[], &trial.show());

    // Inside act: moto has written the version, its answer is held.
    moto.reset();
    let seed = secrets.create("url=primary");
    let holds = vec![Hold::answer("secretsmanager.PutSecretValue", HOLD)];
    let point = KillPoint::AfterActing("put");
    let (trial, _) = proxied_trial(&moto, &aws_plan(PUT), holds, point, |p| p.matched(0) == 1);
    assert_eq!(secrets.described().0.len(), 2, "one version written: {:?}\n{}", secrets.described(), trial.show());
    assert!(!trial.acted_again(), "observe found the content in place\n{}", trial.show());
    let resumed = put_outputs(&secrets, &seed, &trial.outputs("put"));
    assert_same_outputs(&resumed, &fresh, &[], &trial.show());
}

const RESTORE: &str = "  - id: restore\n    type: aws.secrets.restore_previous\n    with: {secret_id: dr-database-url, region: us-west-2}\n";

/// The seed and the failover's version of the secret, the latter current; their ids.
fn seed_two_versions(secrets: &Secrets) -> (String, String) {
    let seed = secrets.create("url=primary");
    let second = secrets.put("url=dr");
    (seed, second)
}

#[test]
fn a_secret_restore_killed_inside_or_after_act_moves_the_label_once() {
    let moto = Moto::start();
    let secrets = Secrets::on(&moto);
    let (seed, second) = seed_two_versions(&secrets);
    let fresh = uninterrupted(&moto, &aws_plan(RESTORE), "restore");
    let arn = secrets.described().1;
    let fresh = named(&fresh, &[(&arn, "ARN"), (&seed, "SEED"), (&second, "SECOND")]);
    assert_eq!(fresh["version_id"], "SEED", "{fresh:?}");

    // After the receipt: verify's DescribeSecret (observe and act describe first) is held.
    moto.reset();
    let (seed, second) = seed_two_versions(&secrets);
    let holds = vec![Hold::request("secretsmanager.DescribeSecret", HOLD).only_match(3)];
    let point = KillPoint::AfterActed("restore");
    let (trial, proxy) = proxied_trial(&moto, &aws_plan(RESTORE), holds, point, |p| p.matched(0) == 3);
    let ctx = format!("{}{}", trial.show(), proxy.log());
    assert_eq!(secrets.current(), seed, "{ctx}");
    let arn = secrets.described().1;
    let resumed = named(&trial.outputs("restore"), &[(&arn, "ARN"), (&seed, "SEED"), (&second, "SECOND")]);
    assert_same_outputs(&resumed, &fresh, &[], &ctx);

    // Inside act: AWSCURRENT has moved (the second label move), its answer is held.
    moto.reset();
    let (seed, second) = seed_two_versions(&secrets);
    let holds = vec![Hold::answer("secretsmanager.UpdateSecretVersionStage", HOLD).only_match(2)];
    let point = KillPoint::AfterActing("restore");
    let (trial, proxy) = proxied_trial(&moto, &aws_plan(RESTORE), holds, point, |p| p.matched(0) == 2);
    let ctx = format!("{}{}", trial.show(), proxy.log());
    assert_eq!(secrets.current(), seed, "{ctx}");
    assert!(!trial.acted_again(), "observe found the version restored\n{ctx}");
    let arn = secrets.described().1;
    let resumed = named(&trial.outputs("restore"), &[(&arn, "ARN"), (&seed, "SEED"), (&second, "SECOND")]);
    assert_same_outputs(&resumed, &fresh, &[], &ctx);
}

const INSTANCE: &str = "portfolio-prod";
const FENCE: &str = "  - id: fence\n    type: aws.rds.fence\n    with: {instance: portfolio-prod, region: us-east-1, \
                     security_group: sg-fence}\n";

struct Rds {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_rds::Client,
}

impl Rds {
    fn on(moto: &Moto) -> Rds {
        let runtime = Moto::runtime();
        let client = aws_sdk_rds::Client::new(&moto.sdk_config(&runtime, "us-east-1"));
        Rds { runtime, client }
    }

    /// The old primary, in security groups sg-app and sg-admin.
    fn seed(&self) {
        let created = self
            .client
            .create_db_instance()
            .db_instance_identifier(INSTANCE)
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .master_username("portfolio")
            .master_user_password("not-a-secret-1")
            .allocated_storage(20)
            .vpc_security_group_ids("sg-app")
            .vpc_security_group_ids("sg-admin")
            .send();
        self.runtime.block_on(created).expect("create the instance");
    }

    /// The instance's security groups and their status.
    fn groups(&self) -> Vec<(String, String)> {
        let described = self.client.describe_db_instances().db_instance_identifier(INSTANCE).send();
        let described = self.runtime.block_on(described).expect("describe the instance");
        let instance = &described.db_instances()[0];
        let group = |g: &aws_sdk_rds::types::VpcSecurityGroupMembership| {
            (g.vpc_security_group_id().unwrap_or_default().to_string(), g.status().unwrap_or_default().to_string())
        };
        instance.vpc_security_groups().iter().map(group).collect()
    }
}

#[test]
fn an_rds_fence_killed_inside_or_after_act_keeps_the_groups_it_replaced() {
    let moto = Moto::start();
    let rds = Rds::on(&moto);
    rds.seed();
    let fresh = uninterrupted(&moto, &aws_plan(FENCE), "fence");
    assert_eq!(fresh["previous_security_groups"], "sg-app,sg-admin", "{fresh:?}");
    let fenced = vec![("sg-fence".to_string(), "active".to_string())];
    assert_eq!(rds.groups(), fenced);

    // After the receipt: the first poll's DescribeDBInstances (observe and act describe first) is held.
    moto.reset();
    rds.seed();
    let holds = vec![Hold::request("Action=DescribeDBInstances", HOLD).only_match(3)];
    let point = KillPoint::AfterActed("fence");
    let (trial, proxy) = proxied_trial(&moto, &aws_plan(FENCE), holds, point, |p| p.matched(0) == 3);
    let ctx = format!("{}{}", trial.show(), proxy.log());
    assert_eq!(rds.groups(), fenced, "{ctx}");
    assert_same_outputs(&trial.outputs("fence"), &fresh, &[], &ctx);

    // Inside act: moto has replaced the groups, its answer is held.
    moto.reset();
    rds.seed();
    let holds = vec![Hold::answer("Action=ModifyDBInstance", HOLD)];
    let point = KillPoint::AfterActing("fence");
    let (trial, proxy) = proxied_trial(&moto, &aws_plan(FENCE), holds, point, |p| p.matched(0) == 1);
    let ctx = format!("{}{}", trial.show(), proxy.log());
    assert_eq!(rds.groups(), fenced, "{ctx}");
    assert!(!trial.acted_again(), "observe found the instance fenced\n{ctx}");
    assert_same_outputs(&trial.outputs("fence"), &fresh, &[], &ctx);
}
