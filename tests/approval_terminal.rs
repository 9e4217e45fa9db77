//! The approval prompt in a real terminal: drctl runs in a tmux pane (its own tmux server on a
//! socket in the test directory), the test types with `send-keys` and reads the screen with
//! `capture-pane`. Without tmux the tests say so and skip (`localstack/setup.sh` installs it).

// Real time is the point here: tests wait on real servers and processes, not a run's clock.
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Server, TestDir, plan};

/// A tmux server of our own, with one pane running a command; killed (by its socket) when dropped.
struct Pane {
    socket: PathBuf,
}

impl Pane {
    /// Runs `script` (a shell command line) in a new 160×50 pane, or `None` without tmux.
    fn start(dir: &Path, script: &str) -> Option<Pane> {
        if Command::new("tmux").arg("-V").stdout(Stdio::null()).status().is_err() {
            eprintln!("SKIPPED: tmux is not installed (localstack/setup.sh installs it)");
            return None;
        }
        let pane = Pane { socket: dir.join("tmux.sock") };
        let status = pane
            .tmux()
            .args(["new-session", "-d", "-s", "drctl", "-x", "160", "-y", "50", script])
            // Keep the screen if the shell ends (Ctrl-C may end it with drctl).
            .args([";", "set-option", "-g", "remain-on-exit", "on"])
            .status()
            .expect("tmux starts");
        assert!(status.success(), "tmux new-session failed");
        Some(pane)
    }

    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.arg("-S").arg(&self.socket).arg("-f").arg("/dev/null");
        command
    }

    /// Types `text` and Enter.
    fn type_line(&self, text: &str) {
        let status = self.tmux().args(["send-keys", "-t", "drctl", "-l", text]).status().unwrap();
        assert!(status.success());
        let status = self.tmux().args(["send-keys", "-t", "drctl", "Enter"]).status().unwrap();
        assert!(status.success());
    }

    /// The pane's text, scrollback included.
    fn screen(&self) -> String {
        let out = self.tmux().args(["capture-pane", "-p", "-J", "-t", "drctl", "-S", "-500"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text` `times` times (or more); panics with the screen after 30 s.
    fn wait_for(&self, text: &str, times: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= times {
                return screen;
            }
            assert!(Instant::now() < deadline, "the screen never showed {text:?} ×{times}:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

/// The shell line that runs drctl on `plan` in the pane and then prints its exit code and waits.
fn script(dir: &TestDir, plan: &Path) -> String {
    format!(
        "env -u CI NO_PROXY=127.0.0.1 '{}' --state-dir '{}' failover --plan '{}'; echo \"drctl exited with $?\"; sleep 120",
        env!("CARGO_BIN_EXE_drctl"),
        dir.state().display(),
        plan.display()
    )
}

/// An approval (named `gate`, so the word to type is `gate`) before a step that records an effect.
fn gated_plan(server: &Server, approval_timeout: &str) -> String {
    plan(
        "gate",
        &format!(
            "  - id: approve\n    type: approval\n{approval_timeout}    with: {{message: \"Fail over the demo?\"}}\n\
             \x20 - id: dns\n    type: http.request\n    after: [approve]\n    with: {{method: POST, url: \"{}\"}}",
            server.url("/effects/dns")
        ),
    )
}

#[test]
fn a_wrong_word_is_asked_again_and_the_plans_name_approves() {
    let server = Server::start();
    let dir = TestDir::new("approval-tty");
    let path = dir.write_plan("gate.yaml", &gated_plan(&server, ""));
    let Some(pane) = Pane::start(dir.path(), &script(&dir, &path)) else { return };
    let prompt = "Type `gate` to approve";
    pane.wait_for(prompt, 1);
    pane.type_line("YES");
    let screen = pane.wait_for(prompt, 2);
    assert!(screen.contains("`YES` is not `gate`; 2 tries left."), "{screen}");
    assert_eq!(server.effect_count("dns"), 0, "nothing runs before the approval");
    pane.type_line("gate");
    let screen = pane.wait_for("drctl exited with", 1);
    assert!(screen.contains("drctl exited with 0"), "{screen}");
    assert!(screen.contains("approved."), "{screen}");
    assert!(screen.contains("approved: typed by "), "the summary says how it was approved\n{screen}");
    assert_eq!(server.effect_count("dns"), 1);

    let journal = dir.only_journal();
    let approved = journal
        .iter()
        .find(|r| r["event"] == "step_succeeded" && r["step"] == "approve")
        .unwrap_or_else(|| panic!("{}", dir.journals_text()));
    let outputs = &approved["outputs"];
    assert_eq!(outputs["approved_via"], "typed", "{approved}");
    assert!(outputs["approved_tty"].as_str().unwrap().starts_with("/dev/pts/"), "{approved}");
    assert!(!outputs["approved_by"].as_str().unwrap().is_empty(), "{approved}");
}

#[test]
fn three_wrong_answers_fail_the_step() {
    let server = Server::start();
    let dir = TestDir::new("approval-tty-refused");
    let path = dir.write_plan("gate.yaml", &gated_plan(&server, ""));
    let Some(pane) = Pane::start(dir.path(), &script(&dir, &path)) else { return };
    let prompt = "Type `gate` to approve";
    for (i, answer) in ["yes", "confirm", "gate.yaml"].iter().enumerate() {
        pane.wait_for(prompt, i + 1);
        pane.type_line(answer);
    }
    let screen = pane.wait_for("drctl exited with", 1);
    assert!(screen.contains("no tries left: the step fails."), "{screen}");
    assert!(screen.contains("drctl exited with 1"), "{screen}");
    assert!(screen.contains("3 answers were not `gate` (the last was `gate.yaml`)"), "{screen}");
    assert_eq!(server.effect_count("dns"), 0);
}

#[test]
fn the_timeout_closes_the_prompt_at_once() {
    let server = Server::start();
    let dir = TestDir::new("approval-tty-timeout");
    let path = dir.write_plan("gate.yaml", &gated_plan(&server, "    timeout: 2s\n"));
    let Some(pane) = Pane::start(dir.path(), &script(&dir, &path)) else { return };
    pane.wait_for("Type `gate` to approve", 1);
    let asked = Instant::now();
    // Typed but not finished when the timeout strikes: it must not reach the shell afterwards.
    pane.tmux().args(["send-keys", "-t", "drctl", "-l", "gat"]).status().unwrap();
    let screen = pane.wait_for("drctl exited with", 1);
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(10), "the prompt closed {took:?} after it opened\n{screen}");
    assert!(screen.contains("■ prompt closed"), "{screen}");
    assert!(screen.contains("timed out after 2.0s"), "{screen}");
    assert!(screen.contains("drctl exited with 1"), "{screen}");
    let closed_at = screen.find("■ prompt closed").unwrap();
    let failed_at = screen.find("timed out after 2.0s").unwrap();
    assert!(closed_at < failed_at, "the prompt closes before the failure is reported\n{screen}");
    // An answer now is not taken by drctl (it has exited) and the run stays failed.
    pane.type_line("gate");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.effect_count("dns"), 0);
    let journal = dir.only_journal();
    assert!(journal.iter().any(|r| r["event"] == "step_failed" && r["step"] == "approve"), "{}", dir.journals_text());
}

#[test]
fn ctrl_c_at_the_prompt_interrupts_the_run() {
    let server = Server::start();
    let dir = TestDir::new("approval-tty-ctrl-c");
    let path = dir.write_plan("gate.yaml", &gated_plan(&server, ""));
    let Some(pane) = Pane::start(dir.path(), &script(&dir, &path)) else { return };
    pane.wait_for("Type `gate` to approve", 1);
    pane.tmux().args(["send-keys", "-t", "drctl", "C-c"]).status().unwrap();
    let screen = pane.wait_for("running steps were cancelled", 1);
    assert!(screen.contains("■ prompt closed"), "{screen}");
    assert!(screen.contains("Continue with `drctl resume"), "{screen}");
    let journal = dir.only_journal();
    assert!(journal.iter().any(|r| r["event"] == "run_interrupted"), "{}", dir.journals_text());
}
