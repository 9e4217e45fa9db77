//! One plan for production and drills (issue 12): the drills run plans/us-west-2.yaml itself, its
//! RDS steps act on the real PostgreSQL servers behind the emulated RDS, and a drill under a
//! latency profile reports an RTO rescaled to real time that agrees with the plan's forecast.

mod support;

use std::path::Path;
use std::process::Command;

use drctl::plan::Direction;
use drctl::steps::{Services, builtin};
use serde_json::Value;
use support::{DrillEnv, TestDir, drctl, drill_report, run};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn load(path: &str) -> drctl::plan::Plan {
    drctl::plan::load(&root().join(path), &builtin(&Services::for_checking())).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_drill_runs_the_one_plan_and_the_copy_is_gone() {
    assert!(!root().join("plans/us-west-2-local.yaml").exists(), "the drill-only copy of the plan is removed");
    // Fixtures, each for what the one plan cannot show: split brain without a fence, drctl's own
    // database connections over TLS.
    let fixtures = ["us-west-2-partition-unfenced", "us-west-2-tls"];
    for entry in std::fs::read_dir(root().join("drills")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let drill = drctl::drill::definition::load(&path).unwrap();
        if !fixtures.contains(&drill.name.as_str()) {
            assert_eq!(drill.plan, "us-west-2", "{}", path.display());
        }
    }
}

#[test]
fn the_unfenced_fixture_is_the_one_plan_without_its_fence() {
    let plan = load("plans/us-west-2.yaml");
    let unfenced = load("drills/fixtures/us-west-2-unfenced.yaml");
    assert_eq!(plan.vars, unfenced.vars);
    for direction in [Direction::Failover, Direction::Failback] {
        let expected: Vec<_> = plan.steps(direction).iter().filter(|s| s.id != "fence-primary-db").collect();
        let got = unfenced.steps(direction);
        assert_eq!(got.len(), expected.len(), "{direction}");
        for (a, b) in got.iter().zip(expected) {
            assert_eq!((&a.id, &a.step_type, a.timeout), (&b.id, &b.step_type, b.timeout), "{direction}");
            // Manifest paths are relative to each plan's folder: compare the files they name.
            let (mut with_a, mut with_b) = (a.with.to_json(), b.with.to_json());
            if let (Some(fa), Some(fb)) = (with_a.get("file").cloned(), with_b.get("file").cloned()) {
                let fa = root().join("drills/fixtures").join(fa.as_str().unwrap()).canonicalize().unwrap();
                let fb = root().join("plans").join(fb.as_str().unwrap()).canonicalize().unwrap();
                assert_eq!(fa, fb, "{direction} {}", a.id);
                with_a["file"] = Value::Null;
                with_b["file"] = Value::Null;
            }
            assert_eq!(with_a, with_b, "{direction} {}", a.id);
            let after: Vec<&String> = b.after.iter().filter(|s| *s != "fence-primary-db").collect();
            let after = if after.is_empty() && !b.after.is_empty() { vec![&plan.failover[0].id] } else { after };
            assert_eq!(a.after.iter().collect::<Vec<_>>(), after, "{direction} {}", a.id);
        }
    }
}

#[test]
fn dry_run_and_plan_show_print_the_values_and_where_each_came_from() {
    let dir = TestDir::new("plan-vars-shown");
    let vars = dir.path().join("vars.yaml");
    std::fs::write(&vars, "dr_replica_id: portfolio-dr\nfailover_replicas: 3\n").unwrap();
    let mut command = drctl(&dir);
    command.current_dir(root()).args(["failover", "--plan", "us-west-2", "--dry-run", "--vars"]).arg(&vars);
    command.args(["--var", "failover_replicas=4"]);
    let out = run(command);
    // The dry run's preflight cannot reach production's AWS and clusters from here: not ready (exit 1),
    // and the values are shown all the same.
    out.expect_code(1, "a dry run whose preflight finds production out of reach");
    assert!(out.stdout.contains(&format!("dr_replica_id          = portfolio-dr  (file {})", vars.display())), "{out}");
    assert!(out.stdout.contains("failover_replicas      = 4  (command line)"), "{out}");
    assert!(out.stdout.contains("api_zone_id            = Z1234567890ABC  (plan)"), "{out}");
    let mut command = drctl(&dir);
    command.current_dir(root()).args(["plan", "show", "us-west-2", "--var", "dr_replica_idd=x"]);
    let out = run(command);
    out.expect_code(3, "an unknown var is a plan error");
    assert!(
        out.stderr.contains("--var dr_replica_idd overrides `dr_replica_idd`, which the plan does not declare"),
        "{out}"
    );
    assert!(out.stderr.contains("did you mean `dr_replica_id`?"), "{out}");
}

fn psql(dsn: &str, sql: &str) -> String {
    let mut command = Command::new("psql");
    command.args(["-X", "-qAt", "-d", dsn, "-c", sql]);
    let out = run(command);
    out.expect_code(0, sql);
    out.stdout.trim().to_string()
}

#[test]
fn the_rds_promotion_promoted_the_real_standby_and_writes_after_it_landed_there() {
    let dir = TestDir::new("drill-plan-promotion");
    let env = DrillEnv::up(&dir);
    let definition = dir.path().join("promotion.yaml");
    std::fs::write(
        &definition,
        "name: promotion\nplan: us-west-2\nfault: database_stop\nobjectives: {rto: 60s, rpo: 5s}\nclient_dns_ttl: 5s\n\
         failback: false\nchecks: []\n",
    )
    .unwrap();
    let dr = env.variable("DR_DATABASE_DSN");
    assert_eq!(psql(&dr, "SELECT pg_is_in_recovery()"), "t", "the DR server starts as a standby");
    let mut command = drctl(&dir);
    command
        .current_dir(root())
        .args(["drill", "run"])
        .arg(&definition)
        .arg("--environment")
        .arg(env.0.join("env.json"));
    command.env("NO_PROXY", "127.0.0.1,localhost").env_remove("KUBECONFIG").env_remove("AWS_ENDPOINT_URL");
    let out = run(command);
    out.expect_code(0, "the failover passes");
    let (_, report) = drill_report(&dir.state(), "promotion");
    assert_eq!(report["provenance"]["plan_sha256"], sha256(&root().join("plans/us-west-2.yaml")));
    let promote = report["runs"][0]["steps"].as_array().unwrap().iter().find(|s| s["id"] == "promote-db").unwrap();
    assert_eq!(
        (promote["step_type"].as_str(), promote["state"].as_str()),
        (Some("aws.rds.promote_replica"), Some("succeeded"))
    );
    // The RDS API call promoted the real server: out of recovery, on a new timeline.
    assert_eq!(psql(&dr, "SELECT pg_is_in_recovery()"), "f", "{report:#}");
    assert!(psql(&dr, "SELECT timeline_id FROM pg_control_checkpoint()").parse::<u32>().unwrap() > 1);
    // The client's writes acknowledged by us-west-2 after the promotion are in the promoted server.
    let time = |v: &Value| humantime::parse_rfc3339(v.as_str().unwrap()).unwrap();
    let promoted = time(&report["client"]["promoted_at"]);
    let after: Vec<&Value> = report["client"]["writes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["region"] == "us-west-2" && w["fate"] != "failed" && time(&w["at"]) > promoted)
        .collect();
    assert!(!after.is_empty(), "writes reached the promoted server\n{report:#}");
    assert!(after.iter().all(|w| w["fate"] == "survived"), "{report:#}");
    // And the server takes writes now.
    psql(&dr, "CREATE TABLE drill_plan_probe (x int); INSERT INTO drill_plan_probe VALUES (1)");
    assert_eq!(psql(&dr, "SELECT count(*) FROM drill_plan_probe"), "1");
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn under_aws_typical_the_rescaled_rto_is_within_20_percent_of_the_forecast_p50() {
    let dir = TestDir::new("drill-aws-typical");
    let mut show = drctl(&dir);
    show.current_dir(root()).args([
        "plan",
        "show",
        "us-west-2",
        "--direction",
        "failover",
        "--forecast",
        "aws-typical",
    ]);
    let shown = run(show);
    shown.expect_code(0, "the forecast");
    let line = shown.stdout.lines().find(|l| l.trim_start().starts_with("forecast p50 ")).expect("a p50 line");
    let figure = line.trim_start().trim_start_matches("forecast p50 ").split(':').next().unwrap();
    let forecast = humantime::parse_duration(figure).unwrap_or_else(|e| panic!("{figure}: {e}")).as_secs_f64();

    let out = run(support::drill_script(&dir, "us-west-2-monthly-aws-typical"));
    out.expect_code(0, "the drill passes");
    let (reports, report) = drill_report(&dir.state(), "us-west-2-monthly-aws-typical");
    let timing = &report["timing"];
    assert_eq!(timing["time_scale"], 0.02);
    let measured = timing["measured_rto_s"].as_f64().unwrap();
    let emulated = timing["emulated_s"].as_f64().unwrap();
    let rescaled = timing["rescaled_rto_s"].as_f64().unwrap();
    assert_eq!(Some(measured), report["objectives"]["rto"]["measured_s"].as_f64());
    assert!((rescaled - (measured - emulated + emulated / 0.02)).abs() < 0.01, "{timing:#}");
    let operations: Vec<&str> =
        timing["delays"].as_array().unwrap().iter().map(|d| d["operation"].as_str().unwrap()).collect();
    for op in ["rds.promote_read_replica", "route53.change", "secretsmanager.put_secret_value", "kube.pod_ready"] {
        assert!(operations.contains(&op), "{op} was emulated: {operations:?}");
    }
    let off = (rescaled - forecast).abs() / forecast;
    assert!(
        off <= 0.2,
        "rescaled RTO {rescaled:.1} s vs forecast p50 {forecast:.1} s: {:.0}% off\n{timing:#}",
        off * 100.0
    );
    assert!(out.stdout.contains("RTO rescaled to real time:"), "{out}");
    let html = std::fs::read_to_string(reports.join("report.html")).unwrap();
    assert!(
        html.contains("RTO rescaled to real time")
            && html.contains("RTO measured (emulated delays at time scale 0.02)")
    );
}
