//! Failback re-protection of an encrypted database across regions against moto: the source in
//! us-west-2 is encrypted, so `aws.rds.create_replica` in us-east-1 needs `kms_key_id` (a key of
//! us-east-1), and sends it with a presigned source-region URL (what that URL holds is checked
//! with aws-smithy-mocks in the step's unit tests; moto does not verify it). Without the key the
//! step refuses before calling CreateDBInstanceReadReplica, saying what to set.

mod support;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_rds::config::Credentials;
use aws_sdk_rds::types::DbInstance;
use support::moto::Moto;
use support::{Out, TestDir, drctl, run};

const SOURCE: &str = "portfolio-dr";
const REPLICA: &str = "portfolio-prod-reprotected";
const SOURCE_KEY: &str = "arn:aws:kms:us-west-2:123456789012:key/11111111-2222-3333-4444-555555555555";
const REPLICA_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/66666666-7777-8888-9999-000000000000";

fn rds(moto: &Moto, region: &str) -> aws_sdk_rds::Client {
    let config = aws_sdk_rds::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(moto.url())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    aws_sdk_rds::Client::from_conf(config)
}

fn describe(runtime: &tokio::runtime::Runtime, moto: &Moto, region: &str, id: &str) -> Option<DbInstance> {
    let answer = runtime.block_on(rds(moto, region).describe_db_instances().db_instance_identifier(id).send());
    answer.ok().and_then(|a| a.db_instances().first().cloned())
}

fn failback(dir: &TestDir, moto: &Moto, kms: &str) -> Out {
    let plan = format!(
        "name: rds-kms\nregions: {{primary: us-east-1, secondary: us-west-2}}\nobjectives: {{rto: 15m, rpo: 5m}}\n\
         defaults: {{timeout: 1m, retries: 0}}\nfailover:\n  - id: nothing\n    type: wait\n    with: {{duration: 1ms}}\n\
         failback:\n  - id: reprotect\n    type: aws.rds.create_replica\n    with:\n      source: {SOURCE}\n      \
         replica: {REPLICA}\n      poll_interval: 100ms\n{kms}"
    );
    let file = dir.write_plan("kms.yaml", &plan);
    let mut command = drctl(dir);
    command.args(["failback", "--plan", file.to_str().unwrap(), "--yes", "--endpoint-url", &moto.url()]);
    for (key, value) in moto.env() {
        command.env(key, value);
    }
    run(command)
}

#[test]
fn an_encrypted_source_is_replicated_to_another_region_with_that_regions_key() {
    let moto = Moto::start();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let created = runtime.block_on(
        rds(&moto, "us-west-2")
            .create_db_instance()
            .db_instance_identifier(SOURCE)
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .master_username("portfolio")
            .master_user_password("not-a-secret-1")
            .allocated_storage(20)
            .storage_encrypted(true)
            .kms_key_id(SOURCE_KEY)
            .send(),
    );
    let source = created.expect("the encrypted source").db_instance().cloned().unwrap();
    assert_eq!(source.storage_encrypted(), Some(true));

    // Without a key: refused before anything is created, saying what to set.
    let dir = TestDir::new("rds-kms");
    let out = failback(&dir, &moto, "");
    assert_ne!(out.code(), Some(0), "{out}");
    let all = out.all();
    assert!(
        all.contains("is encrypted") && all.contains("set `with.kms_key_id`") && all.contains("us-east-1"),
        "{out}"
    );
    assert!(describe(&runtime, &moto, "us-east-1", REPLICA).is_none(), "nothing was created");

    let dir = TestDir::new("rds-kms-key");
    let out = failback(&dir, &moto, &format!("      kms_key_id: {REPLICA_KEY}\n"));
    out.expect_code(0, &format!("{out}{}", dir.journals_text()));
    let replica = describe(&runtime, &moto, "us-east-1", REPLICA).expect("the replica exists in us-east-1");
    assert_eq!(replica.read_replica_source_db_instance_identifier(), source.db_instance_arn());
    assert_eq!(replica.kms_key_id(), Some(REPLICA_KEY), "{replica:?}");
    assert_eq!(replica.storage_encrypted(), Some(true));
}
