//! The monthly drill with LocalStack as the AWS back end (`DRCTL_ENV_AWS=localstack`): Route53,
//! Secrets Manager and CloudWatch from LocalStack (host mode without a Docker engine), RDS from moto
//! backed by the real PostgreSQL servers. `localstack/env/up` installs LocalStack on first use
//! (`localstack/setup.sh --localstack`, about two minutes), so this test needs nothing set up by hand.

mod support;

use serde_json::Value;
use support::{TestDir, run};

#[test]
fn the_monthly_drill_passes_against_localstack() {
    let dir = TestDir::new("drill-localstack");
    let mut command = support::drill_script(&dir, "us-west-2-monthly");
    command.env("DRCTL_ENV_AWS", "localstack");
    let out = run(command);
    out.expect_code(0, "the monthly drill passes against LocalStack");
    assert!(out.stderr.contains("LocalStack"), "LocalStack served the drill's AWS calls\n{out}");
    assert!(out.stdout.contains("drill us-west-2-monthly (plan us-west-2, fault database_stop): PASSED"), "{out}");

    let (_, report) = support::drill_report(&dir.state(), "us-west-2-monthly");
    let states: Vec<&Value> = report["runs"].as_array().unwrap().iter().map(|r| &r["state"]).collect();
    assert_eq!(states, ["succeeded", "succeeded"], "failover and failback");
    assert_eq!(report["objectives"]["rto"]["met"], true, "{report:#}");
    assert_eq!(report["objectives"]["rpo"]["met"], true, "{report:#}");
}
