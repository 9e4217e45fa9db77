//! `drctl check` against the drill environment (`localstack/env/up`: moto, the Kubernetes API
//! emulator, a PostgreSQL primary and streaming standby): ready after `up`, not ready (naming the
//! step and the fix) after each way the world can rot, ready again once it is restored; `/metrics`
//! parsed with prometheus_client's parser; and no write made by the check.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{Background, Out, TestDir, drctl, run, wait_until};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The drill environment brought up under a test's directory, taken down when dropped.
struct Env(PathBuf);

impl Env {
    fn up(dir: &TestDir) -> Env {
        let path = dir.path().join("env");
        let mut command = Command::new(Path::new(ROOT).join("localstack/env/up"));
        command.arg("--dir").arg(&path).current_dir(ROOT);
        run(command).expect_code(0, "the environment comes up");
        Env(path)
    }

    fn variables(&self) -> Vec<(String, String)> {
        let env: Value = serde_json::from_str(&std::fs::read_to_string(self.0.join("env.json")).unwrap()).unwrap();
        env["variables"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect()
    }

    /// Runs tests/support/readiness_world.py (break, restore, read) and returns its output.
    fn world(&self, args: &[&str]) -> String {
        let mut command = Command::new(Path::new(ROOT).join(".venv/bin/python"));
        command.arg(Path::new(ROOT).join("tests/support/readiness_world.py")).arg(&self.0).args(args);
        let out = run(command);
        out.expect_code(0, &format!("readiness_world.py {}", args.join(" ")));
        out.stdout
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let mut command = Command::new(Path::new(ROOT).join("localstack/env/down"));
        command.arg("--dir").arg(&self.0).current_dir(ROOT);
        let _ = command.output();
    }
}

/// The plan the drill environment runs (relative to the repository).
const PLAN: &str = "plans/us-west-2.yaml";

/// `drctl ARGS --plan PLAN` driving the environment: THE one place that says which plan the drill
/// environment runs and how its values reach drctl: [`PLAN`] with the environment's `vars.yaml`
/// (`--vars`) and env.json's variables in the process environment.
fn drctl_on(dir: &TestDir, env: &Env, args: &[&str]) -> Command {
    drctl_on_plan(dir, env, &Path::new(ROOT).join(PLAN), args)
}

fn drctl_on_plan(dir: &TestDir, env: &Env, plan: &Path, args: &[&str]) -> Command {
    let mut command = drctl(dir);
    command.current_dir(ROOT).args(args).arg("--plan").arg(plan);
    command.arg("--vars").arg(env.0.join("vars.yaml"));
    for (name, value) in env.variables() {
        command.env(name, value);
    }
    command
}

/// `drctl check` of both directions without the drill-age check (the environment never drilled).
fn check(dir: &TestDir, env: &Env, extra: &[&str]) -> Command {
    let mut command = drctl_on(dir, env, &["check"]);
    command.args(["--max-drill-age", "off"]).args(extra);
    command
}

fn ready(out: &Out, context: &str) {
    out.expect_code(0, context);
    assert!(out.stdout.contains("READY: plan us-west-2"), "{context}\n{out}");
}

/// Not ready, with a problem line naming `step` and `check`, and a fix under it.
fn not_ready(out: &Out, step: &str, check: &str, context: &str) {
    out.expect_code(1, context);
    println!("--- {context}\n{}", out.stdout);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("PROBLEM") && l.split_whitespace().nth(2) == Some(step) && l.contains(check))
        .unwrap_or_else(|| panic!("{context}: no problem for step {step} ({check})\n{out}"));
    assert!(lines[at + 1].trim_start().starts_with("fix: "), "{context}: no fix\n{out}");
    assert!(out.stdout.contains("NOT READY"), "{out}");
}

#[test]
fn ready_after_up_and_not_ready_naming_the_step_and_fix_after_each_break() {
    let dir = TestDir::new("readiness-cases");
    let env = Env::up(&dir);
    for direction in ["failover", "failback"] {
        let out = run(check(&dir, &env, &["--direction", direction]));
        ready(&out, &format!("{direction} right after up"));
        // The failback restores no previous secret version, so none is missing before a failover.
        assert!(!out.stdout.contains("AWSPREVIOUS"), "{direction}: {out}");
    }

    // Replication cut, after the standby replayed a commit (so its lag can be measured), and the
    // primary moving on: the replica's lag (CloudWatch ReplicaLag, as the promotion reads it) grows
    // past the promotion's limit (1s here, rather than waiting out the 5m RPO). RDS reports no
    // replication state of its own in the environment, so a cut within the limit is not seen.
    env.world(&["write-primary"]);
    std::thread::sleep(Duration::from_millis(1000));
    env.world(&["cut-replication"]);
    env.world(&["write-primary"]);
    std::thread::sleep(Duration::from_millis(2500));
    let out = run(check(&dir, &env, &["--direction", "failover", "--var", "max_replica_lag=1s"]));
    not_ready(&out, "promote-db", "replica_lag", "replication cut beyond the promotion's limit");
    assert!(out.stdout.contains("a promotion now would be refused"), "{out}");
    env.world(&["restore-replication"]);
    assert!(
        wait_until(Duration::from_secs(20), || run(check(&dir, &env, &["--direction", "failover"])).code() == Some(0)),
        "ready again once replication is restored"
    );

    // The DR deployment deleted.
    let saved = dir.path().join("app.json");
    env.world(&["delete-deployment", "dr", "production", "app", saved.to_str().unwrap()]);
    let out = run(check(&dir, &env, &[]));
    not_ready(&out, "scale-dr", "deployment_exists", "DR deployment deleted");
    assert!(out.stdout.contains("deployment production/app in context dr does not exist"), "{out}");
    env.world(&["create-from", saved.to_str().unwrap(), "dr"]);
    ready(&run(check(&dir, &env, &[])), "deployment restored");

    // The secret deleted.
    env.world(&["delete-secret", "us-west-2", "dr-database-url"]);
    let out = run(check(&dir, &env, &[]));
    not_ready(&out, "point-secret", "secret_exists", "secret deleted");
    // The failback points DATABASE_URL at the database it promoted, as the failover does (it no
    // longer restores the previous version, which names the old, fenced instance).
    let failback_point_secret = |l: &&str| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words.len() > 3 && words[0] == "PROBLEM" && words[1] == "failback" && words[2] == "point-secret"
    };
    assert!(out.stdout.lines().any(|l| failback_point_secret(&l)), "no problem for the failback's point-secret\n{out}");
    assert!(!out.stdout.lines().any(|l| l.split_whitespace().nth(2) == Some("restore-secret")), "{out}");
    env.world(&["restore-secret", "us-west-2", "dr-database-url"]);
    ready(&run(check(&dir, &env, &[])), "secret restored");

    // The DR context swapped for a read-only one.
    let readonly = dir.path().join("readonly-kubeconfig");
    env.world(&["readonly-kubeconfig", "dr", readonly.to_str().unwrap()]);
    let mut command = check(&dir, &env, &["--direction", "failover"]);
    command.env("KUBECONFIG", &readonly);
    let out = run(command);
    not_ready(&out, "scale-dr", "rbac", "read-only DR context");
    assert!(
        out.stdout.contains("RBAC denies `patch deployments/scale.apps` in namespace production (context dr)"),
        "{out}"
    );
    ready(&run(check(&dir, &env, &["--direction", "failover"])), "the read-write context again");

    // An env var unset.
    let mut command = check(&dir, &env, &[]);
    command.env_remove("SLACK_WEBHOOK_URL");
    let out = run(command);
    not_ready(&out, "announce", "env_set", "SLACK_WEBHOOK_URL unset");
    assert!(out.stdout.contains("export SLACK_WEBHOOK_URL"), "{out}");
    ready(&run(check(&dir, &env, &[])), "SLACK_WEBHOOK_URL set again");
}

#[test]
fn check_makes_no_write_and_reports_json_junit_and_the_drill_age() {
    let dir = TestDir::new("readiness-no-write");
    let env = Env::up(&dir);
    let aws_before = env.world(&["aws-state"]);
    env.world(&["kube-requests-reset"]);
    let junit = dir.path().join("check.xml");
    let mut command = drctl_on(&dir, &env, &["--output", "json", "check"]);
    command.arg("--junit").arg(&junit);
    let out = run(command);
    // No drill report of this plan under the state directory: the drill age is the one problem.
    out.expect_code(1, "no passing drill");
    let report: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(report["ready"], false);
    let problems: Vec<&Value> =
        report["items"].as_array().unwrap().iter().filter(|i| i["severity"] == "problem").collect();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!((problems[0]["step"].as_str(), problems[0]["check"].as_str()), (Some("plan"), Some("drill_age")));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testcase classname=\"us-west-2.any.plan\" name=\"drill_age\">\n      <failure"), "{xml}");

    let requests: Value = serde_json::from_str(&env.world(&["kube-requests"])).unwrap();
    for (cluster, counts) in requests.as_object().unwrap() {
        assert!(!counts.as_object().unwrap().is_empty(), "the check talked to cluster {cluster}");
        for (request, _) in counts.as_object().unwrap() {
            let read = request.starts_with("GET ");
            let review = request == "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
            assert!(read || review, "cluster {cluster} saw a write: {request}\n{requests:#}");
        }
    }
    assert_eq!(env.world(&["aws-state"]), aws_before, "moto's state changed");
}

/// The body of a 200 answer to `GET url` (plain HTTP/1.1 on 127.0.0.1).
fn http_get(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (addr, path) = rest.split_once('/')?;
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Scrapes `/metrics` until `condition` holds on the parsed samples (prometheus_client's parser).
fn scrape_until(env: &Env, url: &str, what: &str, condition: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut last = Vec::new();
    let ok = wait_until(Duration::from_secs(30), || {
        let Some(text) = http_get(url) else { return false };
        let mut command = Command::new(Path::new(ROOT).join(".venv/bin/python"));
        command.arg(Path::new(ROOT).join("tests/support/readiness_world.py")).arg(&env.0).arg("parse-metrics");
        command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        let Ok(samples) = serde_json::from_slice::<Vec<Value>>(&output.stdout) else { return false };
        last = samples;
        condition(&last)
    });
    assert!(ok, "{what}: never seen on {url}\n{last:#?}");
    last
}

fn gauge(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .and_then(|s| s["value"].as_f64())
}

#[test]
fn metrics_move_when_the_world_breaks_and_comes_back() {
    let dir = TestDir::new("readiness-metrics");
    let env = Env::up(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let textfile = dir.path().join("drctl.prom");
    let mut command = check(&dir, &env, &["--serve", &format!("127.0.0.1:{port}"), "--every", "200ms"]);
    command.arg("--metrics-file").arg(&textfile);
    let server = Background::spawn(command);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deployment =
        [("plan", "us-west-2"), ("direction", "failover"), ("step", "scale-dr"), ("check", "deployment_exists")];
    let ready = [("plan", "us-west-2"), ("direction", "failover")];

    let samples = scrape_until(&env, &url, "ready", |s| gauge(s, "drctl_check_ready", &ready) == Some(1.0));
    assert_eq!(gauge(&samples, "drctl_check_ok", &deployment), Some(1.0));
    assert_eq!(gauge(&samples, "drctl_replica_lag_seconds", &[("step", "promote-db")]), Some(0.0));
    assert!(gauge(&samples, "drctl_check_duration_seconds", &[("plan", "us-west-2")]).is_some());

    let saved = dir.path().join("app.json");
    env.world(&["delete-deployment", "dr", "production", "app", saved.to_str().unwrap()]);
    scrape_until(&env, &url, "deployment gone", |s| {
        gauge(s, "drctl_check_ok", &deployment) == Some(0.0) && gauge(s, "drctl_check_ready", &ready) == Some(0.0)
    });
    env.world(&["create-from", saved.to_str().unwrap(), "dr"]);
    scrape_until(&env, &url, "deployment back", |s| {
        gauge(s, "drctl_check_ok", &deployment) == Some(1.0) && gauge(s, "drctl_check_ready", &ready) == Some(1.0)
    });
    let text = std::fs::read_to_string(&textfile).unwrap();
    assert!(text.contains("# TYPE drctl_check_ok gauge"), "{text}");
    server.signal("TERM");
    let _ = server.finish();
}

#[test]
fn dry_run_runs_the_preflight_and_shows_unset_templates_as_errors() {
    let dir = TestDir::new("readiness-dry-run");
    let env = Env::up(&dir);
    let out = run(drctl_on(&dir, &env, &["failover", "--dry-run"]));
    out.expect_code(0, "a dry run of a ready plan");
    assert!(out.stdout.contains("preflight: ready"), "{out}");

    // The one plan takes no `{{ env.* }}` template (its values are vars): a small plan shows how an
    // unset one reads.
    let plan = dir.path().join("env-template.yaml");
    std::fs::write(
        &plan,
        "name: env-template\nregions: {primary: us-east-1, secondary: us-west-2}\nobjectives: {rto: 15m, rpo: 5m}\n\
         failover:\n  - id: verify-dr\n    type: http.check\n    with: {url: \"{{ env.DR_HEALTH_URL }}\"}\n\
         failback:\n  - id: verify-primary\n    type: http.check\n    with: {url: \"{{ env.DR_HEALTH_URL }}\"}\n",
    )
    .unwrap();
    let mut command = drctl(&dir);
    command.args(["failover", "--dry-run", "--plan"]).arg(&plan).env_remove("DR_HEALTH_URL");
    let out = run(command);
    out.expect_code(1, "a dry run with an unset variable");
    assert!(!out.stdout.contains("<invalid URL>"), "{out}");
    assert!(
        out.all().contains("the environment variable DR_HEALTH_URL (`{{ env.DR_HEALTH_URL }}`) is not set"),
        "{out}"
    );
    assert!(out.stdout.contains("verify-dr"), "{out}");
}
