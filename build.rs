//! Records the git commit drctl is built from (`DRCTL_GIT_COMMIT`) for the drill evidence; nothing
//! when not built from a git checkout. (Uncommitted changes are not detected: the script reruns only
//! when HEAD moves.)

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=DRCTL_GIT_COMMIT");
    let Some(commit) = git(&["rev-parse", "HEAD"]) else { return };
    // Rebuild when HEAD moves: its file, and the branch it points at.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
    }
    if let (Some(reference), Some(common)) =
        (git(&["symbolic-ref", "-q", "HEAD"]), git(&["rev-parse", "--git-common-dir"]))
    {
        println!("cargo:rerun-if-changed={common}/{reference}");
    }
    println!("cargo:rustc-env=DRCTL_GIT_COMMIT={commit}");
}
