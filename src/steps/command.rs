//! `command`: runs a local program, without a shell. An optional `observe` command (exit 0 = the
//! effect is already there) makes it safe to repeat; an optional `verify` command must pass after.
//! The child is killed when the step is dropped (timeout, Ctrl-C).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{ExitStatus, Stdio};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::step::{BuildContext, Observation, OutputSpec, Outputs, Receipt, Step, StepContext, StepError, TypedStep};

/// Most stdout kept in the `stdout` output.
const STDOUT_LIMIT: usize = 4096;
/// Lines of stderr quoted when a command fails.
const TAIL_LINES: usize = 10;

/// The `command` step type.
pub struct Command;

/// `with:` of a `command` step.
#[derive(Deserialize, JsonSchema)]
#[serde(try_from = "CommandFields")]
pub struct CommandParams(CommandFields);

/// The fields of [`CommandParams`], before checks across fields.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandFields {
    /// The program and its arguments, run without a shell: [kubectl, rollout, restart, deploy/web].
    /// For pipes or `&&`, run [sh, -c, "..."]. Arguments are shown; pass secrets through `env`.
    #[schemars(length(min = 1))]
    pub run: Vec<String>,
    /// A command whose exit status 0 means the effect is already there, so `run` is skipped.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub observe: Option<Vec<String>>,
    /// A command that must exit 0 after `run` for the step to succeed.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub verify: Option<Vec<String>>,
    /// Environment variables added for the commands. Their values are never shown.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The working directory (default: drctl's).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Keep `run`'s stdout (up to 4 KiB) as the `stdout` output (default true); false discards it.
    #[serde(default = "yes")]
    pub capture_output: bool,
}

fn yes() -> bool {
    true
}

impl TryFrom<CommandFields> for CommandParams {
    type Error = String;
    fn try_from(f: CommandFields) -> Result<Self, String> {
        for (name, argv) in [("run", Some(&f.run)), ("observe", f.observe.as_ref()), ("verify", f.verify.as_ref())] {
            match argv.map(|a| a.first()) {
                Some(None) => return Err(format!("`{name}` needs at least the program to run")),
                Some(Some(program)) if program.trim().is_empty() => {
                    return Err(format!("`{name}` names an empty program"));
                }
                _ => {}
            }
        }
        Ok(CommandParams(f))
    }
}

impl TypedStep for Command {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Runs a local program with its arguments, without a shell, within the step's timeout. An \
            `observe` command that exits 0 means the effect is already there, so `run` is skipped (which makes a \
            resumed run safe); a `verify` command must exit 0 after `run`. At the timeout or on Ctrl-C the program \
            and everything it started are killed.",
        example: r#"
run: [./scripts/warm-cache.sh, "{{ plan.regions.secondary }}"]
observe: [./scripts/cache-is-warm.sh]
env: {CACHE_TOKEN: "{{ env.CACHE_TOKEN }}"}
"#,
        failure: "A program that cannot start (not found, not executable, a missing `cwd`) fails at once. A non-zero \
            exit, or a `verify` that fails, is retried within the step's `retries`; the error quotes the last lines \
            of the program's standard error.",
    };
    type Params = CommandParams;
    const NAME: &'static str = "command";
    const SUMMARY: &'static str = "Runs a local program (no shell), skipped when its observe command exits 0.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::integer(
            "exit_code",
            "The exit code of `run` (0), or of `observe` when it found the effect in place.",
        ),
        OutputSpec::string(
            "stdout",
            "`run`'s standard output, trimmed, up to 4 KiB; not set with `capture_output: false`.",
        )
        .unless_param("capture_output", "false"),
    ];

    fn build(&self, CommandParams(f): CommandParams, _context: &BuildContext) -> Box<dyn Step> {
        Box::new(CommandStep {
            run: f.run,
            observe: f.observe,
            verify: f.verify,
            env: f.env,
            cwd: f.cwd,
            capture_output: f.capture_output,
        })
    }
}

struct CommandStep {
    run: Vec<String>,
    observe: Option<Vec<String>>,
    verify: Option<Vec<String>>,
    env: BTreeMap<String, String>,
    cwd: Option<String>,
    capture_output: bool,
}

/// How a command ended.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Kills a command's whole process group when dropped before the command finished (the step timed
/// out or the run was interrupted), so children it started do not outlive it.
struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.and_then(|pid| libc::pid_t::try_from(pid).ok()) {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

impl CommandStep {
    /// Runs `argv` to completion; errors (fatal) only when it cannot start.
    async fn exec(&self, argv: &[String], keep_stdout: bool) -> Result<Finished, StepError> {
        let program = &argv[0];
        if let Some(dir) = &self.cwd
            && !Path::new(dir).is_dir()
        {
            return Err(StepError::fatal(format!(
                "cannot run `{program}`: the working directory {dir} does not exist"
            )));
        }
        let mut command = tokio::process::Command::new(program);
        command
            .args(&argv[1..])
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(if keep_stdout { Stdio::piped() } else { Stdio::null() })
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so a timeout or Ctrl-C also stops what the program started.
            .process_group(0);
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        let child = command.spawn().map_err(|e| {
            StepError::fatal(match e.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "cannot run `{program}`: program not found; check that it is installed and on PATH \
                     (commands run without a shell: for pipes or `&&` write [sh, -c, \"...\"])"
                ),
                std::io::ErrorKind::PermissionDenied => {
                    format!("cannot run `{program}`: permission denied; is it executable?")
                }
                _ => format!("cannot run `{program}`: {e}"),
            })
        })?;
        let group = GroupKiller(child.id());
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| StepError::retryable(format!("lost track of `{program}`: {e}")))?;
        std::mem::forget(group); // finished on its own: whatever it left running stays
        Ok(Finished {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// The retryable error for a command that did not exit 0.
    fn failed(argv: &[String], finished: &Finished) -> StepError {
        let how = match (finished.status.code(), signal(&finished.status)) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            (None, None) => "failed".to_string(),
        };
        let output = if finished.stderr.trim().is_empty() { &finished.stdout } else { &finished.stderr };
        let lines: Vec<&str> = output.trim_end().lines().collect();
        let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
        let mut message = format!("`{}` {how}", shown(argv));
        if !tail.trim().is_empty() {
            message.push_str(&format!(":\n{tail}"));
        }
        StepError::retryable(message)
    }

    fn outputs(&self, finished: &Finished) -> Outputs {
        let mut outputs = Outputs::from([("exit_code".to_string(), finished.status.code().unwrap_or(0).to_string())]);
        if self.capture_output {
            outputs.insert("stdout".into(), truncate(finished.stdout.trim(), STDOUT_LIMIT).to_string());
        }
        outputs
    }
}

#[cfg(unix)]
fn signal(status: &ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn signal(_status: &ExitStatus) -> Option<i32> {
    None
}

/// The first `limit` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, limit: usize) -> &str {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A command line for people: arguments with spaces or quotes are single-quoted.
fn shown(argv: &[String]) -> String {
    let quote = |arg: &String| {
        if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
            arg.clone()
        } else {
            format!("'{}'", arg.replace('\'', r"'\''"))
        }
    };
    argv.iter().map(quote).collect::<Vec<_>>().join(" ")
}

#[async_trait]
impl Step for CommandStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        vec![super::preflight::program(self.run.first().map_or("", String::as_str), self.cwd.as_deref())]
    }

    fn describe(&self) -> String {
        match &self.observe {
            Some(observe) => format!("run `{}` unless `{}` succeeds", shown(&self.run), shown(observe)),
            None => format!("run `{}`", shown(&self.run)),
        }
    }

    /// Without an `observe` command: NotDone, so a resumed run runs the command again. When the
    /// observe command exits 0, the outputs are its exit code and stdout.
    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        let Some(observe) = &self.observe else { return Ok(Observation::NotDone) };
        let finished = self.exec(observe, self.capture_output).await?;
        Ok(if finished.status.success() { Observation::Done(self.outputs(&finished)) } else { Observation::NotDone })
    }

    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
        let finished = self.exec(&self.run, self.capture_output).await?;
        if !finished.status.success() {
            return Err(Self::failed(&self.run, &finished));
        }
        // The outputs (exit code, captured stdout) are the receipt: they are journaled with the
        // step's success anyway, and a resumed run must not run the command again to learn them.
        Ok(Receipt::of(&self.outputs(&finished)))
    }

    async fn verify(&self, _ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError> {
        if let Some(verify) = &self.verify {
            let finished = self.exec(verify, false).await?;
            if !finished.status.success() {
                let e = Self::failed(verify, &finished);
                return Err(StepError::retryable(format!("verification failed: {}", e.message)));
            }
        }
        receipt.read()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::steps::test_support::{build, build_error, ctx};

    #[tokio::test]
    async fn observe_exit_zero_means_done() {
        let step = build(&Command, "run: [\"false\"]\nobserve: [sh, -c, 'echo present']");
        assert_eq!(step.describe(), "run `false` unless `sh -c 'echo present'` succeeds");
        let Observation::Done(outputs) = step.observe(&ctx()).await.unwrap() else { panic!("not done") };
        assert_eq!(outputs["stdout"], "present");
        let step = build(&Command, "run: [\"true\"]\nobserve: [\"false\"]");
        assert_eq!(step.observe(&ctx()).await.unwrap(), Observation::NotDone);
        let step = build(&Command, "run: [\"true\"]");
        assert_eq!(step.observe(&ctx()).await.unwrap(), Observation::NotDone);
    }

    #[tokio::test]
    async fn run_captures_stdout_with_env_and_cwd() {
        let step = build(&Command, "run: [sh, -c, 'echo \"$GREETING\"; pwd']\nenv: {GREETING: hi there}\ncwd: /\n");
        let ctx = ctx();
        let receipt = step.act(&ctx).await.unwrap();
        let outputs = step.verify(&ctx, &receipt).await.unwrap();
        assert_eq!(outputs["exit_code"], "0");
        assert_eq!(outputs["stdout"], "hi there\n/");

        let quiet = build(&Command, "run: [echo, secret]\ncapture_output: false");
        let receipt = quiet.act(&ctx).await.unwrap();
        assert_eq!(quiet.verify(&ctx, &receipt).await.unwrap(), Outputs::from([("exit_code".into(), "0".into())]));

        let long = build(&Command, "run: [sh, -c, 'head -c 10000 /dev/zero | tr \"\\\\0\" x']");
        let receipt = long.act(&ctx).await.unwrap();
        assert_eq!(long.verify(&ctx, &receipt).await.unwrap()["stdout"].len(), STDOUT_LIMIT);
    }

    #[tokio::test]
    async fn a_nonzero_exit_is_retryable_with_the_code_and_stderr_tail() {
        let step = build(&Command, "run: [sh, -c, 'for i in $(seq 1 15); do echo line$i >&2; done; exit 3']");
        let e = step.act(&ctx()).await.unwrap_err();
        assert!(e.is_retryable());
        let expected: Vec<String> = (6..=15).map(|i| format!("line{i}")).collect();
        assert_eq!(
            e.message,
            format!(
                "`sh -c 'for i in $(seq 1 15); do echo line$i >&2; done; exit 3'` exited with code 3:\n{}",
                expected.join("\n")
            )
        );
    }

    #[tokio::test]
    async fn verify_must_exit_zero() {
        let step = build(&Command, "run: [\"true\"]\nverify: [sh, -c, 'echo not yet >&2; exit 1']");
        let receipt = step.act(&ctx()).await.unwrap();
        let e = step.verify(&ctx(), &receipt).await.unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(e.message, "verification failed: `sh -c 'echo not yet >&2; exit 1'` exited with code 1:\nnot yet");
    }

    #[tokio::test]
    async fn a_missing_program_or_directory_is_fatal() {
        let e = build(&Command, "run: [drctl-no-such-program, x]").act(&ctx()).await.unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.message.starts_with("cannot run `drctl-no-such-program`: program not found"), "{e}");
        let e = build(&Command, "run: [\"true\"]\ncwd: /no/such/dir").act(&ctx()).await.unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.message.contains("/no/such/dir does not exist"), "{e}");
    }

    /// Runs a `sh -c` script that writes a pid to a file and keeps running, drops the step once the
    /// pid is there, and waits until that process is gone.
    // A real child process dies in real time: the deadline is wall time.
    #[allow(clippy::disallowed_methods)]
    async fn dropping_the_step_kills(script: &str, label: &str) {
        let pidfile = std::env::temp_dir().join(format!("drctl-command-test-{}-{label}.pid", std::process::id()));
        let _ = std::fs::remove_file(&pidfile);
        let yaml = format!("run: [sh, -c, '{}']", script.replace("PIDFILE", &pidfile.display().to_string()));
        let step = build(&Command, &yaml);
        let ctx = ctx();
        let pid_written = async {
            loop {
                if let Ok(pid) = std::fs::read_to_string(&pidfile)
                    && let Ok(pid) = pid.trim().parse::<u32>()
                {
                    return pid;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let pid = tokio::select! {
            _ = step.act(&ctx) => panic!("the script finished early"),
            pid = pid_written => pid,
        };
        let _ = std::fs::remove_file(&pidfile);
        let started = std::time::Instant::now();
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next().unwrap_or('?'));
            if matches!(state, None | Some('Z') | Some('X')) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "process {pid} still running: {stat}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn dropping_the_step_kills_the_child() {
        dropping_the_step_kills("echo $$ > PIDFILE; exec sleep 30", "child").await;
    }

    #[tokio::test]
    async fn dropping_the_step_kills_what_the_child_started() {
        dropping_the_step_kills("sleep 30 & echo $! > PIDFILE; wait", "grandchild").await;
    }

    #[test]
    fn bad_params_are_rejected() {
        assert!(build_error(&Command, "run: []").contains("at least the program"));
        assert!(build_error(&Command, "run: [x]\nverify: []").contains("`verify` needs at least the program"));
        assert!(build_error(&Command, "run: ['']").contains("empty program"));
        assert!(build_error(&Command, "run: kubectl get pods").contains("invalid type"));
    }
}
