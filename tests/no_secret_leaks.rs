//! No secret value escapes drctl: secrets with distinctive values are read, put (with
//! `${secret:KEY}`), restored, and touched by failing steps, with `--output json`, `-vv`, `-vvv`
//! and `RUST_LOG=trace` (with the SDK's `LOG_SENSITIVE_BODIES` and `LOG_SIGNABLE_BODY` on); then
//! everything drctl wrote (stdout, stderr, every file under the state directory: journals, locks)
//! is searched for each value, as is and in its JSON-escaped, URL-encoded and Rust-escaped forms.

mod support;

use std::path::Path;

use aws_sdk_secretsmanager::Client;
use serde_json::Value;
use support::moto::Moto;
use support::{Out, TestDir, drctl, run};

const PASSWORD: &str = "s3cr3t-PASSWORD-7f1c";
/// Quotes, a backslash, a slash, `&`, `=`, `+` and a non-ASCII letter: its escaped forms differ.
const TOKEN: &str = "tok/3n+\"QUOTED\"\\&=\u{e4}-SECRETTOKEN-91bd";
const PLAIN: &str = "plain-S3CRET-blob-44e0";
const ENDPOINT: &str = "leak-test-dr.cluster-abc.us-west-2.rds.amazonaws.com";

/// Every secret value, including the URLs that embed the password.
fn secrets() -> Vec<String> {
    vec![
        PASSWORD.to_string(),
        TOKEN.to_string(),
        PLAIN.to_string(),
        format!("postgres://app:{PASSWORD}@old-primary:5432/app"),
        format!("postgres://app:{PASSWORD}@{ENDPOINT}:5432/app"),
        format!("Bearer {TOKEN}"),
        // Distinctive fragments, in case only part of a value is printed.
        "s3cr3t-PASSWORD".to_string(),
        "PASSWORD-7f1c".to_string(),
        "SECRETTOKEN".to_string(),
        "S3CRET-blob".to_string(),
    ]
}

/// The forms a value may take in output: as is, JSON-escaped, percent-encoded, Rust-escaped (Debug
/// of a `str` and of bytes).
fn forms(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value).unwrap();
    let debug = format!("{value:?}");
    let bytes: String = value.bytes().flat_map(std::ascii::escape_default).map(char::from).collect();
    let mut upper = String::new();
    let mut lower = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            upper.push(b as char);
            lower.push(b as char);
        } else {
            upper.push_str(&format!("%{b:02X}"));
            lower.push_str(&format!("%{b:02x}"));
        }
    }
    let mut all = vec![
        value.to_string(),
        json[1..json.len() - 1].to_string(),
        debug[1..debug.len() - 1].to_string(),
        bytes,
        upper,
        lower,
    ];
    all.sort();
    all.dedup();
    all
}

/// Which secret forms `text` contains, as `value form` pairs.
fn leaks(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for value in secrets() {
        for form in forms(&value) {
            if text.contains(&form) {
                found.push(format!("{value:?} as {form:?}"));
            }
        }
    }
    found
}

/// Every file under `dir`, with its contents (lossy UTF-8).
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap_or_default();
            out.push((path.display().to_string(), String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    out
}

struct Fixture {
    moto: Moto,
    runtime: tokio::runtime::Runtime,
    client: Client,
    dir: TestDir,
    /// Every drctl invocation's output, for the scan.
    outputs: Vec<Out>,
}

impl Fixture {
    fn new() -> Fixture {
        let moto = Moto::start();
        let runtime = Moto::runtime();
        let client = Client::new(&moto.sdk_config(&runtime, "us-west-2"));
        Fixture { moto, runtime, client, dir: TestDir::new("no-leaks"), outputs: Vec::new() }
    }

    fn create(&self, name: &str, value: &str) {
        self.runtime.block_on(self.client.create_secret().name(name).secret_string(value).send()).expect("create");
    }

    fn current(&self, name: &str) -> String {
        let got = self
            .runtime
            .block_on(self.client.get_secret_value().secret_id(name).version_stage("AWSCURRENT").send())
            .expect("read");
        got.secret_string().unwrap().to_string()
    }

    /// Runs drctl with `args` (after the state directory), moto's environment and `env`.
    fn drctl(&mut self, args: &[String], env: &[(&str, &str)]) -> &Out {
        let mut command = drctl(&self.dir);
        command.args(args).envs(self.moto.env()).envs(env.iter().copied());
        self.outputs.push(run(command));
        self.outputs.last().unwrap()
    }
}

/// Trace logging, with the SDK's own switches for printing request and response bodies on.
const TRACE: &[(&str, &str)] =
    &[("RUST_LOG", "trace"), ("LOG_SENSITIVE_BODIES", "true"), ("LOG_SIGNABLE_BODY", "true")];

#[test]
fn the_scan_finds_every_form_of_a_value() {
    let json_doc = serde_json::json!({ "error": format!("x {TOKEN} y") }).to_string();
    assert!(!leaks(&json_doc).is_empty(), "JSON-escaped");
    assert!(!leaks(&format!("{:?}", format!("Bearer {TOKEN}"))).is_empty(), "Debug-escaped");
    let bytes_debug: String = TOKEN.bytes().flat_map(std::ascii::escape_default).map(char::from).collect();
    assert!(!leaks(&format!("body: b\"{bytes_debug}\"")).is_empty(), "byte-escaped");
    assert!(!leaks("q=tok%2F3n%2B%22QUOTED%22%5C%26%3D%C3%A4-SECRETTOKEN-91bd").is_empty(), "URL-encoded");
    assert!(!leaks("...PASSWORD-7f1c...").is_empty(), "a fragment");
    assert!(leaks("s3cr3t-PASSW0RD and a version id 7f1c0000-91bd-44e0").is_empty(), "no false alarm");
}

#[test]
fn no_secret_value_reaches_output_logs_or_the_state_directory() {
    let mut f = Fixture::new();
    let db = serde_json::json!({
        "username": "app",
        "password": PASSWORD,
        "DATABASE_URL": format!("postgres://app:{PASSWORD}@old-primary:5432/app"),
    });
    f.create("leak-db", &db.to_string());
    f.create("leak-token", &serde_json::json!({ "token": TOKEN }).to_string());
    f.create("leak-plain", PLAIN);

    let plan = format!(
        "name: leaks\n\
         regions: {{primary: us-east-1, secondary: us-west-2}}\n\
         objectives: {{rto: 15m, rpo: 5m}}\n\
         defaults: {{timeout: 60s, retries: 1}}\n\
         failover:\n\
         \x20 - id: promote\n    type: command\n    with:\n      run: [printf, '%s', {ENDPOINT}]\n\
         \x20 - id: read-url\n    type: aws.secrets.read\n    with: {{secret_id: leak-db, key: DATABASE_URL}}\n\
         \x20 - id: read-plain\n    type: aws.secrets.read\n    with: {{secret_id: leak-plain}}\n\
         \x20 - id: put-url\n    type: aws.secrets.put\n    after: [promote, read-url]\n    with:\n      \
         secret_id: leak-db\n      json:\n        \
         DATABASE_URL: 'postgres://app:${{secret:password}}@{{{{ steps.promote.outputs.stdout }}}}:5432/app'\n\
         \x20 - id: put-token\n    type: aws.secrets.put\n    with:\n      secret_id: leak-token\n      \
         value: 'Bearer ${{secret:token}}'\n\
         \x20 - id: bad-key\n    type: aws.secrets.read\n    after: [put-url, put-token]\n    with: {{secret_id: leak-db, key: NO_SUCH_KEY}}\n\
         \x20 - id: bad-placeholder\n    type: aws.secrets.put\n    after: [put-url, put-token]\n    with: {{secret_id: leak-token, value: 'x ${{secret:tokn}}'}}\n\
         \x20 - id: not-json\n    type: aws.secrets.put\n    after: [put-url, put-token]\n    with:\n      secret_id: leak-plain\n      json: {{A: '${{secret:A}}'}}\n\
         \x20 - id: plain-key\n    type: aws.secrets.read\n    after: [put-url, put-token]\n    with: {{secret_id: leak-plain, key: password}}\n\
         failback:\n\
         \x20 - id: restore-url\n    type: aws.secrets.restore_previous\n    with: {{secret_id: leak-db, region: us-west-2}}\n\
         \x20 - id: restore-token\n    type: aws.secrets.restore_previous\n    with: {{secret_id: leak-token, region: us-west-2}}\n"
    );
    let plan_path = f.dir.write_plan("leaks.yaml", &plan);
    let endpoint = f.moto.url();
    let common = ["--plan", plan_path.to_str().unwrap(), "--yes", "--endpoint-url", endpoint.as_str()];
    let with = |direction: &'static str, extra: &[&'static str]| -> Vec<String> {
        [direction].iter().chain(&common).chain(extra).map(|s| s.to_string()).collect()
    };

    // A dry run, then the failover at -vv with JSON output: the failing steps fail the run. They run
    // after the puts, since a failure stops the run from starting any further step.
    f.drctl(&with("failover", &["--dry-run", "--output", "json"]), &[]).expect_code(0, "dry run");
    f.drctl(&with("failover", &["--output", "json", "-vv"]), &[]).expect_code(1, "the failover has failing steps");
    let run_id = f.dir.only_run_id();

    // The steps that should work did work (the scan is not vacuous).
    let current: Value = serde_json::from_str(&f.current("leak-db")).unwrap();
    assert_eq!(current["DATABASE_URL"], format!("postgres://app:{PASSWORD}@{ENDPOINT}:5432/app").as_str());
    assert_eq!(f.current("leak-token"), format!("Bearer {TOKEN}"));

    // Resume the failed run at trace level (the failing steps fail again), show its status, give it up.
    let resume = ["resume", &run_id, "--yes", "--endpoint-url", &endpoint, "--output", "json", "-vv"];
    f.drctl(&resume.map(String::from), TRACE).expect_code(1, "resume");
    f.drctl(&["status", &run_id, "--output", "json"].map(String::from), TRACE).expect_code(0, "status");
    f.drctl(&["status", &run_id].map(String::from), &[]).expect_code(0, "status");
    f.drctl(&["abandon", &run_id].map(String::from), &[]).expect_code(0, "abandon");

    // Failback at trace level restores both secrets; a second failback changes nothing.
    for _ in 0..2 {
        f.drctl(&with("failback", &["--output", "json", "-vv", "--new-run"]), TRACE).expect_code(0, "failback");
    }
    assert_eq!(f.current("leak-token"), serde_json::json!({ "token": TOKEN }).to_string());
    f.drctl(&with("failback", &["-vvv", "--new-run"]), &[]).expect_code(0, "failback, human output at -vvv");

    // Trace logging was really on: the SDK's request dumps are in the log (of calls without secrets).
    let stderr: String = f.outputs.iter().map(|o| o.stderr.as_str()).collect();
    assert!(stderr.contains("transmitting request"), "the SDK's trace lines are missing: the scan proves little");
    assert!(f.outputs.iter().any(|o| o.stdout.contains("has no key `NO_SUCH_KEY`")), "the failing steps ran");

    let mut found = Vec::new();
    for (i, out) in f.outputs.iter().enumerate() {
        for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            for leak in leaks(text) {
                found.push(format!("{stream} of `{}` (#{i}): {leak}", out.command));
            }
        }
    }
    let state = files(&f.dir.state());
    assert!(state.iter().any(|(path, _)| path.ends_with("journal.jsonl")), "journals were scanned: {state:?}");
    for (path, text) in &state {
        for leak in leaks(text) {
            found.push(format!("{path}: {leak}"));
        }
    }
    assert!(found.is_empty(), "secret values leaked:\n{}", found.join("\n"));
}
