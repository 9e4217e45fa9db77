//! A real AWS emulator for integration tests: moto's server mode (installed into `.venv` by
//! `localstack/setup.sh`) on a free 127.0.0.1 port, one per test, stopped by its PID on drop. It is
//! started through `localstack/env/moto-server`, the same launcher (and Secrets Manager fix) the
//! drill environment uses, so tests and drills see one emulator.
// Real processes and servers run in real time here: wall and monotonic clocks are the point.
#![allow(clippy::disallowed_methods)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
pub struct Moto {
    child: Child,
    port: u16,
}

/// The Python that has moto: `DRCTL_PYTHON`, else `.venv/bin/python` at the repository root.
fn python() -> PathBuf {
    let path = std::env::var_os("DRCTL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(path.exists(), "{} is missing: run localstack/setup.sh to install moto", path.display());
    path
}

impl Moto {
    /// Starts moto and waits until it answers.
    pub fn start() -> Moto {
        let python = python();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let child = Command::new(&python)
                .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("localstack/env/moto-server"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_ALLOW_NONEXISTENT_REGION", "true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("moto starts");
            let mut moto = Moto { child, port };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = moto.child.try_wait() {
                    break; // lost the port to someone else: try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() && moto.call("GET", "/moto-api/").0 == 200 {
                    return moto;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("moto did not start");
    }

    /// The endpoint URL to give drctl (`--endpoint-url`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Forgets every resource.
    pub fn reset(&self) {
        assert_eq!(self.call("POST", "/moto-api/reset").0, 200);
    }

    /// One plain HTTP/1.0 request to moto; returns the status and body.
    pub fn call(&self, method: &str, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return (0, String::new()) };
        let _ = write!(stream, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }

    /// SDK configuration for the test's own clients (seeding and checking moto's state): this
    /// endpoint, `region`, fake credentials. Runs on `runtime`.
    pub fn sdk_config(&self, runtime: &tokio::runtime::Runtime, region: &str) -> aws_config::SdkConfig {
        let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(self.url())
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(aws_sdk_rds::config::Credentials::new("testing", "testing", None, None, "test"));
        runtime.block_on(loader.load())
    }

    /// A small runtime for a test's own SDK calls.
    pub fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime")
    }

    /// Environment for drctl and SDK clients talking to this moto: fake credentials, no proxy.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_SESSION_TOKEN", "testing".into()),
            ("AWS_ENDPOINT_URL", self.url()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
