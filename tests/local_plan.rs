//! The sample plan (plans/local.yaml) against the demo app the README's first command uses
//! (localstack/demo_app.py, a real HTTP server on 127.0.0.1): after the failover the app serves
//! from the secondary with 3 ready replicas; after the failback, from the primary with the
//! secondary kept as a 2-replica warm standby; the team got the runbook's three messages.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{TestDir, drctl, run, wait_until};

/// The demo app as a child process, stopped by its PID when dropped.
struct DemoApp {
    child: Child,
    port: u16,
}

impl DemoApp {
    fn start(dir: &TestDir) -> DemoApp {
        let port_file = dir.path().join("demo-port");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("localstack/demo_app.py");
        let child = Command::new("python3")
            .arg(script)
            .arg("--port-file")
            .arg(&port_file)
            .args(["--ready-delay", "0.3"])
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 runs the demo app");
        let started =
            wait_until(Duration::from_secs(20), || std::fs::read_to_string(&port_file).is_ok_and(|p| !p.is_empty()));
        assert!(started, "the demo app did not write its port");
        let port = std::fs::read_to_string(&port_file).unwrap().trim().parse().unwrap();
        DemoApp { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One HTTP/1.0 request; returns the status and the body.
    fn call(&self, method: &str, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(stream, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }

    fn state(&self) -> Value {
        serde_json::from_str(&self.call("GET", "/state").1).unwrap()
    }
}

impl Drop for DemoApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn direction(dir: &TestDir, app: &DemoApp, command: &str) -> support::Out {
    let mut cmd = drctl(dir);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).env("DEMO_URL", app.url()).args([command, "--plan", "local", "--yes"]);
    run(cmd)
}

#[test]
fn the_sample_plan_fails_over_and_back() {
    let dir = TestDir::new("local-plan");
    let app = DemoApp::start(&dir);
    assert_eq!(app.call("POST", "/fault/primary").0, 200);

    let out = direction(&dir, &app, "failover");
    out.expect_code(0, "failover");
    let state = app.state();
    assert_eq!(state["traffic"], "secondary", "{state}");
    assert_eq!(state["ready"]["secondary"], 3, "{state}");
    assert!(out.stdout.contains("RTO") && out.stdout.contains("met"), "{}", out.stdout);

    assert_eq!(app.call("POST", "/repair/primary").0, 200);
    direction(&dir, &app, "failback").expect_code(0, "failback");
    let state = app.state();
    assert_eq!(state["traffic"], "primary", "{state}");
    assert_eq!(state["desired"]["secondary"], 2, "the DR side stays a warm standby: {state}");

    let messages: Vec<&str> =
        state["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert!(messages[0].starts_with("🚨 INCIDENT DETECTED - P0"), "{}", messages[0]);
    assert!(messages[1].starts_with("📊 INCIDENT UPDATE"), "{}", messages[1]);
    assert!(
        messages[1].contains("primary was serving primary traffic"),
        "step outputs reach templates: {}",
        messages[1]
    );
    assert!(messages[2].starts_with("✅ INCIDENT RESOLVED"), "{}", messages[2]);
    let keys: Vec<&str> =
        state["messages"].as_array().unwrap().iter().map(|m| m["idempotency_key"].as_str().unwrap()).collect();
    assert!(keys[0].ends_with("/announce") && keys[2].ends_with("/resolved"), "{keys:?}");
}

#[test]
fn a_second_failover_finds_everything_in_place() {
    let dir = TestDir::new("local-plan-again");
    let app = DemoApp::start(&dir);
    direction(&dir, &app, "failover").expect_code(0, "first failover");
    let refused = direction(&dir, &app, "failover");
    refused.expect_code(4, "a failover that already succeeded is not run again");
    assert!(refused.stderr.contains("--new-run"), "{refused}");
    let mut again = drctl(&dir);
    again.current_dir(env!("CARGO_MANIFEST_DIR")).env("DEMO_URL", app.url());
    again.args(["failover", "--plan", "local", "--yes", "--new-run"]);
    let out = run(again);
    out.expect_code(0, "second failover");
    for step in ["scale-dr", "switch-traffic"] {
        let line = out.stdout.lines().find(|l| l.trim_start().starts_with(step)).unwrap();
        assert!(line.contains("already done"), "{step} must not act again: {line}");
    }
}
