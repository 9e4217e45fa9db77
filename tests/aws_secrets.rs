//! `aws.secrets.read`, `aws.secrets.put` and `aws.secrets.restore_previous` end to end: the drctl
//! binary against moto. Secrets are seeded with the AWS SDK; the assertions read moto's versions
//! and staging labels back, and the journal's outputs. (`aws.secrets.rotate` is tested with
//! scripted SDK responses in the library: moto "rotates" without a Lambda, where AWS refuses.)

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_secretsmanager::Client;
use drctl::steps::aws_secrets::{SecretRef, resolve_with};
use serde_json::Value;
use support::moto::Moto;
use support::{Out, TestDir, drctl, records, run, show};

const SECRET: &str = "dr-database-url";
const PASSWORD: &str = "pw-0riginal-9q";
const OLD_URL: &str = "postgres://app:pw-0riginal-9q@old-primary.us-east-1.rds.amazonaws.com:5432/app";
const ENDPOINT: &str = "portfolio-dr.cluster-xyz.us-west-2.rds.amazonaws.com";

/// moto, an SDK client in us-west-2 for seeding and checks, a state directory.
struct Fixture {
    moto: Moto,
    runtime: tokio::runtime::Runtime,
    client: Client,
    dir: TestDir,
}

impl Fixture {
    fn new(label: &str) -> Fixture {
        let moto = Moto::start();
        let runtime = Moto::runtime();
        let client = Client::new(&moto.sdk_config(&runtime, "us-west-2"));
        Fixture { moto, runtime, client, dir: TestDir::new(label) }
    }

    /// Creates secret `name` holding `value`; returns its first version id.
    fn create(&self, name: &str, value: &str) -> String {
        let created = self
            .runtime
            .block_on(self.client.create_secret().name(name).secret_string(value).send())
            .expect("create the secret");
        created.version_id().expect("a version id").to_string()
    }

    /// The version id and string of the version of `name` labelled `stage`.
    fn get(&self, name: &str, stage: &str) -> (String, String) {
        let got = self
            .runtime
            .block_on(self.client.get_secret_value().secret_id(name).version_stage(stage).send())
            .unwrap_or_else(|e| panic!("read {stage} of {name}: {e:?}"));
        (got.version_id().unwrap().to_string(), got.secret_string().unwrap().to_string())
    }

    /// Version id → staging labels of `name`.
    fn stages(&self, name: &str) -> BTreeMap<String, Vec<String>> {
        let described =
            self.runtime.block_on(self.client.describe_secret().secret_id(name).send()).expect("describe the secret");
        described.version_ids_to_stages().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// `drctl <direction> --plan <plan> --yes --endpoint-url <moto>` with moto's environment.
    fn drctl(&self, direction: &str, plan: &Path, env: &[(&str, &str)]) -> Out {
        let mut command = drctl(&self.dir);
        command.arg(direction).arg("--plan").arg(plan).arg("--yes").arg("--endpoint-url").arg(self.moto.url());
        command.arg("--new-run"); // the tests run a direction again on purpose, to see it change nothing
        command.envs(self.moto.env()).envs(env.iter().copied());
        run(command)
    }

    /// Runs drctl and returns its output and the journal of the run it started.
    fn run(&self, direction: &str, plan: &Path, env: &[(&str, &str)]) -> (Out, Vec<Value>) {
        let before = self.dir.run_ids();
        let out = self.drctl(direction, plan, env);
        let id = self.dir.run_ids().into_iter().find(|id| !before.contains(id)).expect("a new run");
        (out, self.dir.journal(&id))
    }

    fn context(&self, out: &Out) -> String {
        format!("{out}{}", self.dir.journals_text())
    }
}

/// A plan with `failover` and `failback` step lists (YAML list items indented by two spaces).
fn plan(failover: &str, failback: &str) -> String {
    format!(
        "name: secrets\n\
         regions: {{primary: us-east-1, secondary: us-west-2}}\n\
         objectives: {{rto: 15m, rpo: 5m}}\n\
         defaults: {{timeout: 60s, retries: 3}}\n\
         failover:\n{failover}failback:\n{failback}"
    )
}

/// The outputs and `already_done` of `step`'s `step_succeeded` record.
fn succeeded<'a>(journal: &'a [Value], step: &str) -> (&'a Value, bool) {
    let found = records(journal, "step_succeeded", Some(step));
    assert_eq!(found.len(), 1, "{step} succeeded once\n{}", show(journal));
    (&found[0]["outputs"], found[0]["already_done"].as_bool().expect("already_done"))
}

/// The error of `step`'s `step_failed` record, after checking it was attempted once (no retries).
fn failed_once(journal: &[Value], step: &str) -> String {
    let found = records(journal, "step_failed", Some(step));
    assert_eq!(found.len(), 1, "{step} failed once\n{}", show(journal));
    assert_eq!(records(journal, "step_started", Some(step)).len(), 1, "{step} was not retried\n{}", show(journal));
    assert!(records(journal, "step_retrying", Some(step)).is_empty(), "{step} was not retried\n{}", show(journal));
    found[0]["error"].as_str().unwrap().to_string()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

#[test]
fn failover_points_the_url_at_the_new_endpoint_and_failback_restores_the_old_version() {
    let f = Fixture::new("secrets-flow");
    let seed = serde_json::json!({ "username": "app", "password": PASSWORD, "DATABASE_URL": OLD_URL }).to_string();
    let v1 = f.create(SECRET, &seed);
    let failover = format!(
        "  - id: promote\n    type: command\n    with:\n      run: [printf, '%s', {ENDPOINT}]\n\
         \x20 - id: point-secret\n    type: aws.secrets.put\n    after: [promote]\n    with:\n      \
         secret_id: {SECRET}\n      json:\n        \
         DATABASE_URL: 'postgres://app:${{secret:password}}@{{{{ steps.promote.outputs.stdout }}}}:5432/app'\n\
         \x20 - id: read-url\n    type: aws.secrets.read\n    after: [point-secret]\n    with:\n      \
         secret_id: {SECRET}\n      key: DATABASE_URL\n\
         \x20 - id: read-previous\n    type: aws.secrets.read\n    after: [point-secret]\n    with:\n      \
         secret_id: {SECRET}\n      version_stage: AWSPREVIOUS\n"
    );
    // A failback runs toward us-east-1: the secret's region is given.
    let failback = format!(
        "  - id: restore-secret\n    type: aws.secrets.restore_previous\n    with:\n      secret_id: {SECRET}\n      \
         region: us-west-2\n"
    );
    let plan_path = f.dir.write_plan("secrets.yaml", &plan(&failover, &failback));

    // Failover: a new AWSCURRENT with the endpoint and the password filled in; AWSPREVIOUS is the seed.
    let (out, journal) = f.run("failover", &plan_path, &[]);
    out.expect_code(0, &f.context(&out));
    let (v2, current) = f.get(SECRET, "AWSCURRENT");
    let current: Value = serde_json::from_str(&current).unwrap();
    let new_url = format!("postgres://app:{PASSWORD}@{ENDPOINT}:5432/app");
    assert_eq!(current["DATABASE_URL"], new_url.as_str());
    assert_eq!((&current["username"], &current["password"]), (&Value::from("app"), &Value::from(PASSWORD)));
    assert_eq!(f.get(SECRET, "AWSPREVIOUS"), (v1.clone(), seed.clone()), "AWSPREVIOUS holds the old version");
    assert_ne!(v2, v1);

    let (put, already) = succeeded(&journal, "point-secret");
    assert!(!already);
    assert_eq!(text(&put["version_id"]), v2);
    assert_eq!(text(&put["previous_version_id"]), v1);
    assert_eq!(text(&put["secret_ref"]), format!("secretsmanager://us-west-2/{SECRET}?version={v2}"));
    assert!(text(&put["arn"]).starts_with("arn:aws:secretsmanager:us-west-2:"), "{put}");

    // The read hands on a reference pinned to the version it read; resolving it gives the value.
    let (read, _) = succeeded(&journal, "read-url");
    let reference = text(&read["secret_ref"]);
    assert_eq!(reference, format!("secretsmanager://us-west-2/{SECRET}?version={v2}&key=DATABASE_URL"));
    assert_eq!(text(&read["version_id"]), v2);
    let (previous, _) = succeeded(&journal, "read-previous");
    assert_eq!(text(&previous["secret_ref"]), format!("secretsmanager://us-west-2/{SECRET}?version={v1}"));
    let reference = SecretRef::parse(reference).unwrap();
    let value = f.runtime.block_on(resolve_with(&f.client, &reference)).unwrap();
    assert_eq!(value.expose(), new_url);
    let missing = SecretRef { key: Some("PASSWORD".into()), ..reference.clone() };
    let e = f.runtime.block_on(resolve_with(&f.client, &missing)).unwrap_err();
    assert!(e.message.contains("no key `PASSWORD`") && e.message.contains("username, password, DATABASE_URL"), "{e}");
    assert!(!e.message.contains(PASSWORD), "{e}");
    assert!(!journal.iter().any(|r| r.to_string().contains(PASSWORD)), "{}", show(&journal));

    // A second failover run finds the content in place: no new version.
    let (out, journal) = f.run("failover", &plan_path, &[]);
    out.expect_code(0, &f.context(&out));
    let (put, already) = succeeded(&journal, "point-secret");
    assert!(already, "the second run changed nothing\n{}", show(&journal));
    assert_eq!(text(&put["version_id"]), v2);
    assert!(records(&journal, "step_acting", Some("point-secret")).is_empty());
    assert_eq!(f.stages(SECRET).len(), 2, "still two versions: {:?}", f.stages(SECRET));

    // Failback: the seed is current again, the failover's version is AWSPREVIOUS.
    let (out, journal) = f.run("failback", &plan_path, &[]);
    out.expect_code(0, &f.context(&out));
    assert_eq!(f.get(SECRET, "AWSCURRENT"), (v1.clone(), seed.clone()));
    assert_eq!(f.get(SECRET, "AWSPREVIOUS").0, v2);
    let (restored, already) = succeeded(&journal, "restore-secret");
    assert!(!already);
    assert_eq!((text(&restored["version_id"]), text(&restored["previous_version_id"])), (v1.as_str(), v2.as_str()));

    // A second failback does not flip back to the failover's version.
    let (out, journal) = f.run("failback", &plan_path, &[]);
    out.expect_code(0, &f.context(&out));
    assert!(succeeded(&journal, "restore-secret").1, "already done\n{}", show(&journal));
    assert_eq!(f.get(SECRET, "AWSCURRENT").0, v1);
}

#[test]
fn missing_secrets_fail_fast_naming_the_secret_id() {
    let f = Fixture::new("secrets-missing");
    f.create("one-version", "only");
    let failover = "  - id: read-missing\n    type: aws.secrets.read\n    with:\n      secret_id: no-such-secret\n\
         \x20 - id: put-missing\n    type: aws.secrets.put\n    with:\n      secret_id: no-such-secret\n      value: x\n\
         \x20 - id: nothing-to-restore\n    type: aws.secrets.restore_previous\n    with:\n      secret_id: one-version\n";
    let plan_path =
        f.dir.write_plan("missing.yaml", &plan(failover, "  - id: noop\n    type: wait\n    with: {duration: 1ms}\n"));
    let (out, journal) = f.run("failover", &plan_path, &[]);
    let ctx = f.context(&out);
    out.expect_code(1, &ctx);
    for step in ["read-missing", "put-missing"] {
        let error = failed_once(&journal, step);
        assert!(error.contains("secret `no-such-secret`") && error.contains("in us-west-2"), "{step}: {error}");
        assert!(error.contains("ResourceNotFoundException"), "{step}: {error}");
        assert!(error.contains("check `with.secret_id`"), "{step}: {error}");
        assert!(out.all().contains(step), "the output names {step}\n{ctx}");
    }
    let error = failed_once(&journal, "nothing-to-restore");
    assert!(error.contains("secret `one-version` in us-west-2 has no AWSPREVIOUS version"), "{error}");
    assert_eq!(f.stages("one-version").len(), 1, "nothing was written");
}

#[test]
fn a_missing_key_is_named_with_the_keys_there_are_but_no_values() {
    let f = Fixture::new("secrets-key");
    let seed = r#"{"username":"app","password":"Very-S3cret-Value!","port":5432}"#;
    let v1 = f.create("app-db", seed);
    let failover = "  - id: read-key\n    type: aws.secrets.read\n    with:\n      secret_id: app-db\n      \
         key: DATABASE_URL\n\
         \x20 - id: put-typo\n    type: aws.secrets.put\n    with:\n      secret_id: app-db\n      json:\n        \
         DATABASE_URL: 'postgres://app:${secret:pasword}@db:5432/app'\n";
    let plan_path =
        f.dir.write_plan("key.yaml", &plan(failover, "  - id: noop\n    type: wait\n    with: {duration: 1ms}\n"));
    let (out, journal) = f.run("failover", &plan_path, &[]);
    let ctx = f.context(&out);
    out.expect_code(1, &ctx);

    let error = failed_once(&journal, "read-key");
    assert!(
        error.contains(&format!("secret `app-db` (version {v1}) in us-west-2 has no key `DATABASE_URL`")),
        "{error}"
    );
    assert!(error.contains("its keys are: username, password, port"), "{error}");
    let error = failed_once(&journal, "put-typo");
    assert!(error.contains("`with.json.DATABASE_URL` uses `${secret:pasword}`"), "{error}");
    assert!(error.contains("has no key `pasword`; its keys are: username, password, port"), "{error}");
    assert!(!ctx.contains("Very-S3cret-Value!"), "no value is shown\n{ctx}");
    assert_eq!(f.get("app-db", "AWSCURRENT"), (v1, seed.to_string()), "nothing was written");
}

#[test]
fn create_if_missing_then_an_explicit_version_is_restored() {
    let f = Fixture::new("secrets-create");
    let failover = "  - id: create\n    type: aws.secrets.put\n    with:\n      secret_id: feature-config\n      \
         value: 'mode=primary'\n      create_if_missing: true\n\
         \x20 - id: update\n    type: aws.secrets.put\n    after: [create]\n    with:\n      \
         secret_id: feature-config\n      value: 'mode=dr'\n";
    let failback = "  - id: restore\n    type: aws.secrets.restore_previous\n    with:\n      \
         secret_id: feature-config\n      region: us-west-2\n      version_id: '{{ env.RESTORE_VERSION }}'\n";
    let plan_path = f.dir.write_plan("create.yaml", &plan(failover, failback));
    let (out, journal) = f.run("failover", &plan_path, &[]);
    out.expect_code(0, &f.context(&out));
    let created = text(&succeeded(&journal, "create").0["version_id"]).to_string();
    let (updated, previous) = {
        let (outputs, _) = succeeded(&journal, "update");
        (text(&outputs["version_id"]).to_string(), text(&outputs["previous_version_id"]).to_string())
    };
    assert_eq!(previous, created);
    assert_eq!(f.get("feature-config", "AWSCURRENT"), (updated.clone(), "mode=dr".to_string()));

    let (out, journal) = f.run("failback", &plan_path, &[("RESTORE_VERSION", created.as_str())]);
    out.expect_code(0, &f.context(&out));
    assert_eq!(f.get("feature-config", "AWSCURRENT"), (created.clone(), "mode=primary".to_string()));
    assert_eq!(text(&succeeded(&journal, "restore").0["version_id"]), created);
}
