//! Shared by the CLI integration tests: a recording HTTP server with a tiny "effects" API, a temp
//! directory per test, a `drctl` command builder and journal readers.
//!
//! The server is an [`http::HttpServer`] on its own thread and tokio runtime inside the test
//! process, so its timestamps (`Instant`s) are comparable with each other and with the test's own.
//!
//! Routes:
//! - `POST /effects/<name>[?delay_ms=N]`: applies effect `<name>` (its count goes up by one the
//!   moment the request is read), then waits N ms (default 0), then answers 201.
//! - `GET /effects/<name>`: 200 if the effect was applied at least once, else 404.
//! - `GET /slow/<ms>[/<tag>]`: sleeps `ms`, then 200.
//! - `GET /flaky/<name>/<n>`: 503 for the first `n` requests to `<name>`, then 200.
//! - `GET /switch/<name>`: 503 until the test turns the switch on with [`Server::set_switch`], then 200.
//! - `GET /hang`: answers only after 60 s.
//! - anything else: 404.

// Real time is the point here: tests wait on real servers and processes, not a run's clock.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)]

pub mod clusters;
pub mod fault_proxy;
pub mod kill;
pub mod moto;
pub mod postgres;
pub mod s3;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// The recording HTTP server
// ---------------------------------------------------------------------------------------------

pub mod http;

#[allow(unused_imports)] // `support::Request` still names what `Server::requests` returns.
pub use http::Request;
use http::{HttpServer, Reply};

#[derive(Default)]
struct State {
    effects: HashMap<String, u32>,
    flaky: HashMap<String, u32>,
    switches: HashSet<String>,
}

/// A recording HTTP/1.1 server on 127.0.0.1 with the routes above; stopped when dropped. What
/// every [`HttpServer`] has (`url`, `requests`, `requests_to`, `log`) it has through `Deref`.
pub struct Server {
    http: HttpServer,
    state: Arc<Mutex<State>>,
}

impl std::ops::Deref for Server {
    type Target = HttpServer;

    fn deref(&self) -> &HttpServer {
        &self.http
    }
}

impl Server {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start() -> Server {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let http = HttpServer::start(move |r| route(&mut shared.lock().unwrap(), &r.method, &r.path, &r.query));
        Server { http, state }
    }

    /// How many times effect `name` was applied (POSTs to `/effects/<name>`).
    pub fn effect_count(&self, name: &str) -> u32 {
        self.state.lock().unwrap().effects.get(name).copied().unwrap_or(0)
    }

    /// Every effect applied so far with its count.
    pub fn effects(&self) -> HashMap<String, u32> {
        self.state.lock().unwrap().effects.clone()
    }

    /// Turns `/switch/<name>` on (200) or off (503).
    pub fn set_switch(&self, name: &str, on: bool) {
        let mut state = self.state.lock().unwrap();
        if on {
            state.switches.insert(name.to_string());
        } else {
            state.switches.remove(name);
        }
    }
}

fn route(state: &mut State, method: &str, path: &str, query: &str) -> Reply {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["effects", name]) => {
            *state.effects.entry(name.to_string()).or_default() += 1;
            let delay_ms = query.split('&').find_map(|kv| kv.strip_prefix("delay_ms=")).and_then(|v| v.parse().ok());
            Reply::text(201, "applied").after(Duration::from_millis(delay_ms.unwrap_or(0)))
        }
        ("GET" | "HEAD", ["effects", name]) => match state.effects.get(*name) {
            Some(n) if *n > 0 => Reply::text(200, "applied"),
            _ => Reply::text(404, "not applied"),
        },
        ("GET" | "HEAD", ["slow", ms, ..]) => match ms.parse() {
            Ok(ms) => Reply::text(200, "slow").after(Duration::from_millis(ms)),
            Err(_) => Reply::text(400, "bad ms"),
        },
        ("GET" | "HEAD", ["flaky", name, n]) => {
            let Ok(n) = n.parse::<u32>() else { return Reply::text(400, "bad n") };
            let seen = state.flaky.entry(name.to_string()).or_default();
            *seen += 1;
            if *seen <= n { Reply::text(503, "flaky") } else { Reply::text(200, "ok") }
        }
        ("GET" | "HEAD", ["switch", name]) => {
            if state.switches.contains(*name) {
                Reply::text(200, "on")
            } else {
                Reply::text(503, "switched off")
            }
        }
        ("GET" | "HEAD", ["hang"]) => Reply::text(200, "late").after(Duration::from_secs(60)),
        _ => Reply::text(404, "no such route"),
    }
}

// ---------------------------------------------------------------------------------------------
// Temp directories and plans
// ---------------------------------------------------------------------------------------------

/// A fresh directory per test, under the system temp dir; removed when dropped unless the test
/// is failing (then it is kept, and its path printed, for a look at the journals).
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    pub fn new(label: &str) -> TestDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("drctl-it-{label}-{}-{nanos}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create the test directory");
        TestDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state directory drctl is pointed at.
    pub fn state(&self) -> PathBuf {
        self.path.join("state")
    }

    /// Writes `yaml` to `<dir>/<file>` and returns the path.
    pub fn write_plan(&self, file: &str, yaml: &str) -> PathBuf {
        let path = self.path.join(file);
        std::fs::write(&path, yaml).expect("write the plan");
        path
    }

    /// The ids of the runs in the state directory, sorted.
    pub fn run_ids(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.state().join("runs")) else { return Vec::new() };
        let mut ids: Vec<String> =
            dir.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        ids.sort();
        ids
    }

    /// The id of the only run; panics unless there is exactly one.
    pub fn only_run_id(&self) -> String {
        let ids = self.run_ids();
        assert_eq!(ids.len(), 1, "expected exactly one run in {}, found {ids:?}", self.state().display());
        ids.into_iter().next().unwrap()
    }

    pub fn journal_path(&self, run_id: &str) -> PathBuf {
        self.state().join("runs").join(run_id).join("journal.jsonl")
    }

    /// The raw journal text of `run_id` ("" when missing).
    pub fn journal_text(&self, run_id: &str) -> String {
        std::fs::read_to_string(self.journal_path(run_id)).unwrap_or_default()
    }

    /// The complete (newline-terminated) records of `run_id`'s journal.
    pub fn journal(&self, run_id: &str) -> Vec<Value> {
        let text = self.journal_text(run_id);
        let complete = match text.rfind('\n') {
            Some(end) => &text[..=end],
            None => "",
        };
        complete
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("journal line is not JSON ({e}): {l}\n{text}")))
            .collect()
    }

    /// The journal of the only run.
    pub fn only_journal(&self) -> Vec<Value> {
        self.journal(&self.only_run_id())
    }

    /// Every journal in the state directory, for failure messages.
    pub fn journals_text(&self) -> String {
        let mut out = String::new();
        for id in self.run_ids() {
            out.push_str(&format!("--- journal of {id}:\n{}", self.journal_text(&id)));
        }
        if out.is_empty() {
            out.push_str("--- (no journals)\n");
        }
        out
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept the test directory {} for inspection", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A plan called `name` whose failover is `failover_steps` (YAML list items, indented by two
/// spaces) and whose failback is a trivial wait. Defaults: timeout 30s, no retries.
pub fn plan(name: &str, failover_steps: &str) -> String {
    format!(
        "name: {name}\n\
         regions: {{primary: east, secondary: west}}\n\
         objectives: {{rto: 15m, rpo: 5m}}\n\
         defaults: {{timeout: 30s, retries: 0}}\n\
         failover:\n{failover_steps}\n\
         failback:\n  - id: back\n    type: wait\n    with: {{duration: 1ms}}\n"
    )
}

// ---------------------------------------------------------------------------------------------
// Running drctl
// ---------------------------------------------------------------------------------------------

/// `drctl --state-dir <dir>/state` with no terminal, `CI=1`, no proxies and no inherited drctl
/// settings, in `dir` as the working directory.
pub fn drctl(dir: &TestDir) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_drctl"));
    command.current_dir(dir.path()).arg("--state-dir").arg(dir.state()).stdin(Stdio::null());
    command.env("CI", "1").env("NO_PROXY", "127.0.0.1,localhost").env("no_proxy", "127.0.0.1,localhost");
    for var in [
        "DRCTL_STATE_DIR",
        "DRCTL_PLANS_DIR",
        "RUST_LOG",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env_remove(var);
    }
    command
}

/// How a drctl process ended, with what it printed.
pub struct Out {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The exit code; `None` when killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Stdout and stderr together, for searching.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panics with the output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32, context: &str) -> &Self {
        assert_eq!(self.code(), Some(code), "{context}: unexpected exit\n{self}");
        self
    }

    /// The stdout lines parsed as JSON; panics with the output if one is not a JSON object.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| match serde_json::from_str::<Value>(l) {
                Ok(v) if v.is_object() => v,
                Ok(v) => panic!("stdout line is JSON but not an object: {v}\n{self}"),
                Err(e) => panic!("stdout line is not JSON ({e}): {l}\n{self}"),
            })
            .collect()
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.command)?;
        writeln!(f, "exit: {:?} ({})", self.status.code(), self.status)?;
        writeln!(f, "--- stdout:\n{}", self.stdout)?;
        writeln!(f, "--- stderr:\n{}", self.stderr)
    }
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().rsplit('/').next().unwrap_or_default().to_string();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// `localstack/drill.sh DRILL` (the README's drill command) with this build of drctl, its state and
/// environment in `dir`, and nothing from the caller's environment that could point it elsewhere.
pub fn drill_script(dir: &TestDir, drill: &str) -> Command {
    let mut command = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("localstack/drill.sh"));
    command
        .arg(drill)
        .env("DRCTL", env!("CARGO_BIN_EXE_drctl"))
        .env("DRCTL_STATE_DIR", dir.state())
        .env("DRCTL_ENV_DIR", dir.path().join("env"))
        .env("CI", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .env_remove("AWS_ENDPOINT_URL");
    command
}

/// The report of the one drill run of `name` under the state directory `state`: its directory and
/// its report.json.
pub fn drill_report(state: &Path, name: &str) -> (PathBuf, Value) {
    let dir = state.join("drills").join(name);
    let runs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no reports in {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let text = std::fs::read_to_string(runs[0].join("report.json")).expect("report.json");
    (runs[0].clone(), serde_json::from_str(&text).expect("report.json is JSON"))
}

/// A drill environment (`localstack/env/up`) under a test's directory, taken down when dropped.
pub struct DrillEnv(pub PathBuf);

impl DrillEnv {
    /// Brings the environment up in `dir`/env.
    pub fn up(dir: &TestDir) -> DrillEnv {
        let path = dir.path().join("env");
        let mut command = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("localstack/env/up"));
        command.arg("--dir").arg(&path).current_dir(env!("CARGO_MANIFEST_DIR"));
        run(command).expect_code(0, "the environment comes up");
        DrillEnv(path)
    }

    /// One of env.json's `variables` (what env.sh exports).
    pub fn variable(&self, name: &str) -> String {
        let env: Value = serde_json::from_str(&std::fs::read_to_string(self.0.join("env.json")).unwrap()).unwrap();
        env["variables"][name].as_str().unwrap().to_string()
    }
}

impl Drop for DrillEnv {
    fn drop(&mut self) {
        let mut command = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("localstack/env/down"));
        command.arg("--dir").arg(&self.0).current_dir(env!("CARGO_MANIFEST_DIR"));
        let _ = command.output();
    }
}

/// Runs a command to completion.
pub fn run(mut command: Command) -> Out {
    let text = describe(&command);
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {text}: {e}"));
    Out {
        command: text,
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A drctl process running in the background.
pub struct Background {
    pub command: String,
    pub child: Child,
}

impl Background {
    /// Starts `command` with its output captured.
    pub fn spawn(mut command: Command) -> Background {
        let text = describe(&command);
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {text}: {e}"));
        Background { command: text, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`INT`, `TERM`, `KILL`) to the process.
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// Waits for the process to end.
    pub fn finish(self) -> Out {
        let output = self.child.wait_with_output().expect("wait for drctl");
        Out {
            command: self.command,
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// `kill -<signal> <pid>` (no libc in the tests' dependencies). A process that has already exited
/// is not an error.
pub fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run kill");
}

/// Polls `condition` every 10 ms until it holds; false if `timeout` passes first.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// Journal records
// ---------------------------------------------------------------------------------------------

/// The `event` of each record.
pub fn events(journal: &[Value]) -> Vec<String> {
    journal.iter().map(|r| r["event"].as_str().unwrap_or_default().to_string()).collect()
}

/// Records with `event` (about `step`, if given).
pub fn records<'a>(journal: &'a [Value], event: &str, step: Option<&str>) -> Vec<&'a Value> {
    journal.iter().filter(|r| r["event"] == event && step.is_none_or(|s| r["step"] == s)).collect()
}

/// The journal as text, one record a line, for failure messages.
pub fn show(journal: &[Value]) -> String {
    journal.iter().map(|r| format!("  {r}\n")).collect()
}
