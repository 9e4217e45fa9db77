//! Drill mode end to end: the README's drill command (`localstack/drill.sh`) brings up the local
//! emulated environment (moto, the Kubernetes API emulator, a PostgreSQL primary and standby,
//! health endpoints) and runs a whole drill; the tests read the evidence it wrote.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{DrillEnv, TestDir, drctl, drill_report, run};

/// `localstack/drill.sh DRILL` with this build of drctl and state and environment in `dir`.
fn drill(dir: &TestDir, name: &str) -> support::Out {
    run(support::drill_script(dir, name))
}

#[test]
fn the_monthly_drill_passes_measures_the_lost_writes_and_leaves_the_primary_as_it_was() {
    let dir = TestDir::new("drill-monthly");
    let out = drill(&dir, "us-west-2-monthly");
    out.expect_code(0, "the monthly drill passes");
    assert!(out.stdout.contains("drill us-west-2-monthly (plan us-west-2, fault database_stop): PASSED"), "{out}");
    let (reports, report) = drill_report(&dir.state(), "us-west-2-monthly");
    for file in ["report.json", "report.md", "junit.xml", "report.html", "postmortem.md"] {
        assert!(reports.join(file).is_file(), "{file} was written\n{out}");
    }
    assert_eq!(report["outcome"]["passed"], true, "{report:#}");
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("drills/drill-report.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let errors: Vec<String> = jsonschema::validator_for(&schema)
        .unwrap()
        .iter_errors(&report)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "report.json does not match its published schema: {errors:?}");
    let states: Vec<&Value> = report["runs"].as_array().unwrap().iter().map(|r| &r["state"]).collect();
    assert_eq!(states, ["succeeded", "succeeded"], "failover and failback");

    let rto = &report["objectives"]["rto"];
    assert_eq!(rto["met"], true, "{rto}");
    // The headline RTO is what clients saw through api.example.com: they cannot have been served by
    // us-west-2 before the failover's DNS step pointed the name there.
    let fault = time(&report["fault"]["injected_at"]);
    let failover = &report["runs"][0];
    let dns = failover["steps"].as_array().unwrap().iter().find(|s| s["id"] == "swap-dns").expect("swap-dns");
    assert_eq!(dns["state"], "succeeded");
    let dns_moved = time(&dns["finished_at"]).duration_since(fault).unwrap().as_secs_f64();
    let measured = rto["measured_s"].as_f64().unwrap();
    assert!(measured >= dns_moved, "RTO {measured} s before DNS moved at {dns_moved} s\n{report:#}");
    let ready = report["objectives"]["dr_ready_s"].as_f64().expect("DR ready after X s");
    assert!(ready <= dns_moved, "the DR region was healthy before DNS moved");

    // The DR database was cut off 1 s before the primary died: about 1 s of acknowledged client
    // writes is lost, and the RPO is the window they span, within one client interval.
    let client = &report["client"];
    let rpo = report["objectives"]["rpo"]["measured_s"].as_f64().unwrap();
    let lost = client["lost_writes"].as_u64().unwrap();
    let interval = client["interval_ms"].as_f64().unwrap() / 1000.0;
    assert!((0.9..=3.0).contains(&rpo), "rpo {rpo} s\n{report:#}");
    assert_eq!(client["split_brain_writes"], 0);
    let writes = client["writes"].as_array().unwrap();
    // The RPO is the span from the last surviving write before the lost ones to the last lost one.
    // The client writes every `interval` at the most (a loaded machine spaces them further), so
    // the lost writes fit in that span.
    let first_lost = writes.iter().position(|w| w["fate"] == "lost").expect("lost writes");
    let last_lost = writes.iter().rposition(|w| w["fate"] == "lost").unwrap();
    let at = |i: usize| time(&writes[i]["at"]);
    let span = at(last_lost).duration_since(at(first_lost.saturating_sub(1))).unwrap().as_secs_f64();
    assert!((rpo - span).abs() <= 2.0 * interval + 1e-6, "rpo {rpo} s vs the lost writes' span {span} s");
    assert!(lost as f64 * interval <= rpo + 2.0 * interval, "rpo {rpo} s vs {lost} writes lost");
    assert_eq!(writes.len() as u64, client["attempts"].as_u64().unwrap());
    assert_eq!(writes.iter().filter(|w| w["fate"] == "lost").count() as u64, lost);
    assert!(writes.last().unwrap()["region"] == "us-west-2" && writes.last().unwrap()["fate"] == "survived");
    // Provenance an auditor can check: who, how approved, which drctl, which files (by SHA-256).
    let provenance = &report["provenance"];
    let sha256 = |path: &str| -> String {
        use sha2::Digest;
        let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
        sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
    };
    assert_eq!(provenance["plan_sha256"], sha256("plans/us-west-2.yaml"));
    assert_eq!(provenance["drill_sha256"], sha256("drills/us-west-2-monthly.yaml"));
    assert_eq!(provenance["drctl_version"], env!("CARGO_PKG_VERSION"));
    assert!(provenance["approval"].as_str().unwrap().contains("--yes, by "), "{provenance}");
    assert!(provenance["inventory"]["route53"].as_array().is_some_and(|r| !r.is_empty()), "{provenance}");
    let postmortem = std::fs::read_to_string(reports.join("postmortem.md")).unwrap();
    let fault_clock = &report["fault"]["injected_at"].as_str().unwrap()[11..23];
    assert!(postmortem.contains(&format!("- {fault_clock} - Fault injected")), "millisecond times\n{postmortem}");
    assert!(postmortem.contains("## Sign-off"));
    let page = std::fs::read_to_string(reports.join("report.html")).unwrap();
    assert!(page.find("id=\"client-strip\"").unwrap() < page.find("id=\"timeline\"").unwrap());

    let checks: Vec<(&str, bool)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["passed"].as_bool().unwrap()))
        .collect();
    for wanted in [
        "heartbeat-table-dropped",
        "dns-on-primary",
        "database-on-primary",
        "app-database",
        "deployments",
        "no-leftovers",
    ] {
        assert!(checks.contains(&(wanted, true)), "check {wanted} passed: {checks:?}");
    }

    let mut history = drctl(&dir);
    history.args(["drill", "history"]);
    let history = run(history);
    history.expect_code(0, "history");
    assert!(history.stdout.contains("us-west-2-monthly"), "{history}");

    // The app's DATABASE_URL carries a password the environment made up; the plan only ever names it
    // as `${secret:password}`. No output, journal, report or environment log may hold it.
    let leaks =
        |text: &str| text.match_indices("postgres://portfolio:").any(|(i, m)| !text[i + m.len()..].starts_with("${"));
    assert!(!leaks(&out.stdout) && !leaks(&out.stderr), "a password in the drill's output\n{out}");
    for file in files_under(dir.path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        assert!(!leaks(&text), "a password in {}", file.display());
    }
}

/// An RFC 3339 time of the report.
fn time(value: &Value) -> std::time::SystemTime {
    humantime::parse_rfc3339(value.as_str().unwrap_or_else(|| panic!("not a time: {value}"))).unwrap()
}

#[test]
fn the_partition_drill_fences_the_old_primary_and_has_no_split_brain() {
    let dir = TestDir::new("drill-partition");
    let out = drill(&dir, "us-west-2-partition");
    out.expect_code(0, "the partition drill passes");
    let (_, report) = drill_report(&dir.state(), "us-west-2-partition");
    assert_eq!(report["fault"]["kind"], "partition");
    let client = &report["client"];
    assert_eq!(client["split_brain_writes"], 0, "{report:#}");
    assert!(client["recovered_at"].is_string());
    assert!(client["writes"].as_array().unwrap().iter().any(|w| w["region"] == "us-west-2" && w["fate"] == "survived"));
    assert!(report["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true), "{report:#}");
}

#[test]
fn without_a_fence_the_partition_drill_fails_counting_what_the_old_primary_took_after_the_promotion() {
    let dir = TestDir::new("drill-unfenced");
    let env = DrillEnv::up(&dir);
    let mut command = drctl(&dir);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["drill", "run", "us-west-2-partition-unfenced", "--environment"])
        .arg(env.0.join("env.json"))
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("KUBECONFIG")
        .env_remove("AWS_ENDPOINT_URL");
    let out = run(command);
    out.expect_code(1, "split brain fails the drill");
    let (_, report) = drill_report(&dir.state(), "us-west-2-partition-unfenced");
    let split = report["client"]["split_brain_writes"].as_u64().unwrap();
    assert!(split > 0, "clients with a cached us-east-1 kept writing there after the promotion\n{report:#}");
    assert!(out.stdout.contains(&format!("split brain: {split} writes acknowledged by the old primary")), "{out}");
    // What the old primary's table holds from after the promotion the journal recorded.
    let promoted = report["client"]["promoted_at"].as_str().unwrap();
    let mut psql = Command::new("psql");
    psql.args(["-X", "-qAt", "-d", &env.variable("PRIMARY_DATABASE_DSN"), "-c"])
        .arg(format!("SELECT count(*) FROM drctl_drill_heartbeat WHERE at > '{promoted}'::timestamptz"));
    let counted = run(psql);
    counted.expect_code(0, "the old primary answers");
    assert_eq!(counted.stdout.trim(), split.to_string(), "{report:#}");
    assert_eq!(report["outcome"]["passed"], false);
}

/// Every file under `root`.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() { pending.push(path) } else { files.push(path) }
        }
    }
    assert!(!files.is_empty(), "nothing under {}", root.display());
    files
}

#[test]
fn a_drill_held_to_an_rpo_of_zero_is_refused_by_the_lag_guard_on_the_real_lag() {
    let dir = TestDir::new("drill-zero-rpo");
    let out = drill(&dir, "us-west-2-zero-rpo");
    out.expect_code(1, "an RPO of zero cannot be met with a lagging replica");
    let (_, report) = drill_report(&dir.state(), "us-west-2-zero-rpo");
    // The drill's `max_replica_lag: 0s` reaches the plan's promotion: its lag guard reads the
    // replica's real lag (CloudWatch ReplicaLag from the standby) and refuses to promote.
    assert_eq!(report["runs"][0]["state"], "failed", "{report:#}");
    let failures: Vec<&str> =
        report["outcome"]["failures"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    let refusal =
        failures.iter().find(|f| f.contains("`promote-db`: read replica `portfolio-dr` lags")).expect("the lag guard");
    assert!(refusal.contains("more than `with.max_lag` of 0s"), "{refusal}");
    assert!(out.stdout.contains(refusal), "{out}");
    assert_eq!(report["outcome"]["passed"], false);
}

#[test]
fn when_only_the_primary_health_checks_fail_the_fenced_failover_loses_no_client_write() {
    let dir = TestDir::new("drill-health-fail");
    let out = drill(&dir, "us-west-2-health-fail");
    out.expect_code(0, "the health-fail drill passes with an RPO objective of zero");
    let (_, report) = drill_report(&dir.state(), "us-west-2-health-fail");
    assert_eq!(report["fault"]["kind"], "health_fail");
    let client = &report["client"];
    assert_eq!(client["lost_writes"], 0, "the standby streamed every write until the fence\n{report:#}");
    assert_eq!(client["split_brain_writes"], 0);
    assert!(client["acknowledged"].as_u64().unwrap() > 0);
    assert_eq!(report["objectives"]["rpo"]["measured_s"].as_f64(), Some(0.0));
    let fence = report["runs"][0]["steps"].as_array().unwrap().iter().find(|s| s["id"] == "fence-primary-db").unwrap();
    assert_eq!(fence["state"], "succeeded", "the old primary answered, so it was fenced");
    assert!(report["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true), "{report:#}");
}

#[test]
fn the_safety_fence_refuses_whatever_the_plan_would_reach_that_is_not_local() {
    let dir = TestDir::new("drill-fence");
    // Everything env.json declares is local but AWS; the kubeconfig's `dr` context, the chat
    // webhook and the plan's AWS calls (no endpoint set: real AWS) are not.
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\n\
         clusters:\n- {name: primary, cluster: {server: 'https://127.0.0.1:6443'}}\n\
         - {name: dr, cluster: {server: 'https://10.0.0.1:6443'}}\n\
         contexts:\n- {name: primary, context: {cluster: primary, user: u}}\n- {name: dr, context: {cluster: dr, user: u}}\n\
         users:\n- {name: u, user: {token: t}}\n",
    )
    .unwrap();
    let env = serde_json::json!({
        "name": "staging",
        "variables": { "PRIMARY_DATABASE_DSN": "postgres://drctl@127.0.0.1:1/x", "DR_DATABASE_DSN": "postgres://drctl@127.0.0.1:2/x",
                       "DR_HEALTH_URL": "http://127.0.0.1:3/health", "KUBECONFIG": kubeconfig,
                       "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x" },
        "endpoints": { "aws": "https://rds.us-west-2.amazonaws.com", "kubernetes": { "dr": "https://127.0.0.1:6444" },
                       "postgres": { "primary": "127.0.0.1:1" }, "health": "http://127.0.0.1:3" },
        "actions": { "inject": { "database_stop": ["false"] }, "repair": ["false"], "restore": ["false"], "checks": {} },
        // The plan's vars here; `api_url` is left at production's value, which the fence must catch.
        "vars": { "kube_primary_context": "primary", "kube_secondary_context": "dr", "dr_health_url": "http://127.0.0.1:3/health" }
    });
    let env_path = dir.path().join("env.json");
    std::fs::write(&env_path, env.to_string()).unwrap();
    let plans = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let drill = Path::new(env!("CARGO_MANIFEST_DIR")).join("drills/us-west-2-monthly.yaml");
    let drill_run = |allow: &[&str]| {
        let mut command = drctl(&dir);
        command.arg("--plans-dir").arg(&plans).args(["drill", "run"]).arg(&drill).arg("--environment").arg(&env_path);
        for name in allow {
            command.args(["--allow-live", name]);
        }
        run(command)
    };
    let out = drill_run(&[]);
    out.expect_code(4, "the fence refuses");
    for refused in [
        "aws is https://rds.us-west-2.amazonaws.com, not an emulator on this machine (pass `--allow-live aws`",
        "aws.plan is https://amazonaws.com (no aws.endpoint_url in the plan, no AWS_ENDPOINT_URL), not an emulator",
        "kubernetes.context.dr is https://10.0.0.1:6443, not an emulator",
        "variables.SLACK_WEBHOOK_URL is https://hooks.slack.com/…, not an emulator",
        "vars.api_url is https://api.example.com, not an emulator",
    ] {
        assert!(out.stderr.contains(refused), "refused: {refused}\n{out}");
    }
    assert!(!out.stderr.contains("kubernetes.context.primary"), "the local context passes\n{out}");
    assert!(!out.stderr.contains("T0/B0"), "a webhook's path is its secret: never printed\n{out}");
    assert!(!dir.state().join("drills").exists(), "nothing ran, no report");

    let out = drill_run(&["aws", "aws.plan", "kubernetes.context.dr", "vars.api_url"]);
    out.expect_code(4, "one endpoint is still not allowed");
    assert!(out.stderr.contains("--allow-live variables.SLACK_WEBHOOK_URL"), "{out}");
    assert!(!out.stderr.contains("--allow-live aws`"), "{out}");

    let out = drill_run(&["aws", "aws.plan", "kubernetes.context.dr", "vars.api_url", "variables.SLACK_WEBHOOK_URL"]);
    assert_ne!(out.code(), Some(4), "allowed endpoints pass the fence (the drill then fails on its own)\n{out}");
}
