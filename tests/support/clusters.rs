//! Two Kubernetes clusters for integration tests, `primary` and `dr`: the repository's Kubernetes
//! API emulator (`localstack/kube/emulator`) on free 127.0.0.1 ports, one per test, stopped by
//! its PID on drop; or, when `DRCTL_TEST_KUBECONFIG` is set, real clusters (kind) named by
//! `DRCTL_TEST_KUBE_CONTEXTS=primary=kind-drctl-primary,dr=kind-drctl-dr`.
//!
//! Tests seed and check cluster state through the kube crate, so the same assertions hold on both.
//! What only the emulator offers (injected faults, request counts, a read-only user) is behind
//! [`Clusters::emulator`], and tests that need it skip themselves on real clusters.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use super::TestDir;

/// The image test workloads run: tiny, and preloaded on kind nodes.
pub const IMAGE: &str = "registry.k8s.io/pause:3.10";
/// An image that can never be pulled (`.invalid` is reserved): its pods stay in ImagePullBackOff
/// on the emulator and on kind alike.
pub const BROKEN_IMAGE: &str = "registry.invalid/pause:broken";

/// The clusters of one test.
pub struct Clusters {
    kubeconfig: PathBuf,
    contexts: HashMap<String, String>,
    emulator: Option<Emulator>,
}

/// The emulator process and its clusters' URLs (for the control API).
pub struct Emulator {
    child: Child,
    urls: HashMap<String, String>,
}

impl Clusters {
    /// Starts the emulator with clusters `primary` and `dr` (pods become ready after
    /// `rollout_delay`), or connects to the real clusters the environment names.
    pub fn start(dir: &TestDir, rollout_delay: Duration) -> Clusters {
        if let Some(kubeconfig) = std::env::var_os("DRCTL_TEST_KUBECONFIG") {
            let names = std::env::var("DRCTL_TEST_KUBE_CONTEXTS")
                .expect("DRCTL_TEST_KUBE_CONTEXTS=primary=CONTEXT,dr=CONTEXT goes with DRCTL_TEST_KUBECONFIG");
            let contexts = names
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(role, context)| (role.trim().to_string(), context.trim().to_string()))
                .collect();
            return Clusters { kubeconfig: kubeconfig.into(), contexts, emulator: None };
        }
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("localstack/kube/emulator");
        let mut child = Command::new(python())
            .arg(&script)
            .args(["--cluster", "primary", "--cluster", "dr", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(["--rollout-delay", &format!("{}", rollout_delay.as_secs_f64())])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the Kubernetes API emulator starts");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut ready).expect("the emulator's ready line");
        let ready: Value = serde_json::from_str(&ready).unwrap_or_else(|e| panic!("ready line {ready:?}: {e}"));
        let urls = ready["clusters"]
            .as_object()
            .expect("clusters in the ready line")
            .iter()
            .map(|(name, url)| (name.clone(), url.as_str().unwrap_or_default().to_string()))
            .collect();
        let contexts = ["primary", "dr"].map(|c| (c.to_string(), c.to_string())).into();
        Clusters { kubeconfig, contexts, emulator: Some(Emulator { child, urls }) }
    }

    /// The kubeconfig file (for `KUBECONFIG`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The context of cluster `role` (`primary` or `dr`).
    pub fn context(&self, role: &str) -> &str {
        self.contexts.get(role).unwrap_or_else(|| panic!("no context for cluster {role}"))
    }

    /// The emulator, or `None` on real clusters: then the test prints why it skips and returns.
    pub fn emulator(&self, test: &str) -> Option<&Emulator> {
        if self.emulator.is_none() {
            eprintln!("{test}: skipped on real clusters (it needs the emulator's control API)");
        }
        self.emulator.as_ref()
    }

    /// A kube client for cluster `role`, on `runtime`.
    pub fn client(&self, runtime: &tokio::runtime::Runtime, role: &str) -> kube::Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("the kubeconfig reads");
        let options = KubeConfigOptions { context: Some(self.context(role).to_string()), ..Default::default() };
        runtime.block_on(async {
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.expect("the context loads");
            kube::Client::try_from(config).expect("a client")
        })
    }
}

impl Emulator {
    /// One request to cluster `cluster`'s control API (`/_emulator/...`); returns status and body.
    pub fn control(&self, cluster: &str, method: &str, path: &str, body: &str) -> (u16, String) {
        let url = &self.urls[cluster];
        let address = url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("the emulator answers");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).expect("request sent");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response read");
        let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }

    /// How many `method` requests cluster `cluster` answered with a 2xx on paths ending with
    /// `suffix` (a write refused with a 409 conflict changed nothing, so it does not count).
    pub fn succeeded(&self, cluster: &str, method: &str, suffix: &str) -> u64 {
        let (status, body) = self.control(cluster, "GET", "/_emulator/requests", "");
        assert_eq!(status, 200, "request counts: {body}");
        let counts: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("request counts {body:?}: {e}"));
        let Some(Value::Object(succeeded)) = counts.get("succeeded") else { panic!("no `succeeded` in {body}") };
        succeeded
            .iter()
            .filter(|(key, _)| key.split_once(' ').is_some_and(|(m, path)| m == method && path.ends_with(suffix)))
            .map(|(_, n)| n.as_u64().unwrap_or(0))
            .sum()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python to run the emulator with: `DRCTL_PYTHON`, else the repository's `.venv`, else
/// `python3` (the emulator needs only the standard library).
fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("DRCTL_PYTHON") {
        return path.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if venv.exists() { venv } else { PathBuf::from("python3") }
}
