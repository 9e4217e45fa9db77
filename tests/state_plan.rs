//! A plan's `state:`: validated with the field named, used for the run's state without a flag,
//! and warned about when the bucket is in the region the plan fails over from.

mod support;

use support::s3::S3;
use support::{TestDir, drctl, run};

fn plan_with_state(state: &str, primary: &str) -> String {
    format!(
        "name: shared\n\
         regions: {{primary: {primary}, secondary: us-west-2}}\n\
         {state}\n\
         objectives: {{rto: 15m, rpo: 5m}}\n\
         failover:\n  - id: a\n    type: wait\n    with: {{duration: 1ms}}\n\
         failback:\n  - id: b\n    type: wait\n    with: {{duration: 1ms}}\n"
    )
}

#[test]
fn a_bad_state_section_is_refused_naming_the_field_and_its_line() {
    let dir = TestDir::new("state-plan-bad");
    for (state, field) in [
        ("state: {bucket: Not_A_Bucket}", "state.bucket"),
        ("state: {bucket: ok-bucket, prefix: a/../b}", "state.prefix"),
        ("state: {bucket: ok-bucket, lease: 0s}", "state.lease"),
        ("state: {bucket: ok-bucket, endpoint_url: localhost:9000}", "state.endpoint_url"),
        ("state: {bucket: ok-bucket, colour: blue}", "colour"),
        ("state: {prefix: x}", "bucket"),
    ] {
        let path = dir.write_plan("bad.yaml", &plan_with_state(state, "us-east-1"));
        let out = run({
            let mut c = drctl(&dir);
            c.arg("plan").arg("validate").arg(&path);
            c
        });
        assert_eq!(out.code(), Some(3), "{state}\n{out}");
        assert!(out.stderr.contains(field) && out.stderr.contains("bad.yaml:3:"), "{state}: names {field}\n{out}");
    }
}

#[test]
fn a_plans_state_is_used_without_a_flag_and_a_bucket_in_the_primary_region_is_warned_about() {
    let s3 = S3::start();
    s3.bucket("team-state", false, false);
    let dir = TestDir::new("state-plan-s3");
    let state =
        format!("state: {{bucket: team-state, prefix: prod, region: us-east-1, endpoint_url: '{}'}}", s3.moto.url());
    let path = dir.write_plan("shared.yaml", &plan_with_state(&state, "us-east-1"));
    let with_env = |args: &[&str]| {
        let mut command = drctl(&dir);
        for (name, value) in s3.env() {
            command.env(name, value);
        }
        command.args(args).arg(&path);
        run(command)
    };
    let show = with_env(&["plan", "show"]);
    assert!(show.stdout.contains("state: s3://team-state/prod/ (region us-east-1)"), "{show}");
    assert!(show.stdout.contains("is in us-east-1, the plan's primary region"), "{show}");
    let failover = with_env(&["failover", "--yes", "--plan"]);
    failover.expect_code(0, "the run uses the plan's S3 state");
    assert!(failover.stderr.contains("warning: the state bucket s3://team-state/prod/ is in us-east-1"), "{failover}");
    assert!(!dir.state().exists(), "nothing in the local state directory");
    assert_eq!(s3.store("team-state", "prod").runs().len(), 1);

    // In the secondary region: no warning.
    let state = state.replace("us-east-1", "us-west-2");
    std::fs::write(&path, plan_with_state(&state, "us-east-1")).unwrap();
    let show = with_env(&["plan", "show"]);
    assert!(show.stdout.contains("(region us-west-2)") && !show.stdout.contains("warning"), "{show}");
}
