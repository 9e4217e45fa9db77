//! The drill environment's own tests (`localstack/env/tests`, Python's unittest), run here so that
//! the one test command covers what drills run against: RDS backed by the real PostgreSQL servers
//! (promotion, fence, ReplicaLag, re-protection, restore), the latency profile and its log, and the
//! LocalStack router. The environment test brings a whole environment up (about a minute).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_drill_environment_passes_its_own_tests() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join(".venv/bin/python");
    let python = std::env::var_os("DRCTL_PYTHON").map(PathBuf::from).unwrap_or(if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    });
    let output = Command::new(&python)
        .args(["-m", "unittest", "discover", "-s", "tests"])
        .current_dir(root.join("localstack/env"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the drill environment's tests failed:\n{text}");
    assert!(text.contains("OK"), "{text}");
}
