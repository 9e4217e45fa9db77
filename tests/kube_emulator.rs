//! The Kubernetes API emulator's own tests (`localstack/kube/tests`, Python's unittest), run here so
//! that the one test command covers the server the Kubernetes integration tests rely on.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_kubernetes_api_emulator_passes_its_own_tests() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("localstack/kube");
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let python = std::env::var_os("DRCTL_PYTHON").map(PathBuf::from).unwrap_or(if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    });
    let output = Command::new(&python)
        .args(["-m", "unittest", "discover", "-s", "tests"])
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the emulator's tests failed:\n{text}");
    assert!(text.contains("OK"), "{text}");
}
