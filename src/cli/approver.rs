//! Approval on a terminal: the operator types the word the step asks for (the plan's name unless
//! the step sets `confirm`). A wrong answer is asked again, up to [`TRIES`] answers in all.
//!
//! The prompt reads standard input on a blocking thread that polls, so it can be closed: when the
//! step ends without an answer (its timeout, Ctrl-C), the engine drops the approval, the thread
//! stops reading, drops what was typed on the unfinished line, and says that the prompt is closed
//! before the engine reports why.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use indicatif::MultiProgress;

use crate::step::StepError;
use crate::steps::approval::{Given, Via};
use crate::steps::{ApprovalRequest, Approver};

/// How many answers an operator may give before the approval fails.
pub const TRIES: u32 = 3;

/// How often the reading thread looks whether the prompt was closed.
const POLL: Duration = Duration::from_millis(50);

/// Asks on the terminal, pausing the progress display while it does.
pub struct TerminalApprover {
    bars: Option<MultiProgress>,
}

impl TerminalApprover {
    /// An approver that asks on standard input and error, suspending `bars` while it asks.
    pub fn new(bars: Option<MultiProgress>) -> Self {
        TerminalApprover { bars }
    }
}

#[async_trait]
impl Approver for TerminalApprover {
    async fn approve(&self, request: &ApprovalRequest) -> Result<Given, StepError> {
        let closed = Arc::new(AtomicBool::new(false));
        let (finished, finished_rx) = std::sync::mpsc::channel::<()>();
        let mut guard = CloseOnDrop { closed: closed.clone(), finished: finished_rx, armed: true };
        let bars = self.bars.clone();
        let request_for_thread = request.clone();
        let dialogue = tokio::task::spawn_blocking(move || {
            let run = || dialogue(&request_for_thread, &mut StdinLines::new(&closed), &mut std::io::stderr());
            let outcome = match bars {
                Some(bars) => bars.suspend(run),
                None => run(),
            };
            let _ = finished.send(());
            outcome
        });
        let outcome = dialogue.await.map_err(|e| StepError::fatal(format!("the prompt failed: {e}")))?;
        guard.armed = false;
        let word = &request.word;
        match outcome {
            Outcome::Approved => Ok(Given::here(Via::Typed)),
            Outcome::Refused { last } => Err(StepError::fatal(format!(
                "not approved: {TRIES} answers were not `{word}` (the last was `{}`)",
                shorten(&last)
            ))),
            Outcome::EndOfInput => {
                Err(StepError::fatal(format!("not approved: the terminal's input ended before `{word}` was typed")))
            }
            Outcome::Closed => Err(StepError::fatal("not approved: the prompt was closed")),
            Outcome::Failed(e) => Err(StepError::fatal(format!("cannot read the answer from the terminal: {e}"))),
        }
    }
}

/// Closes the prompt when the approval is dropped unanswered (the step timed out, the run was
/// interrupted), and waits until the reading thread has said so, so that its line comes before
/// the engine's report of the failure.
struct CloseOnDrop {
    closed: Arc<AtomicBool>,
    finished: std::sync::mpsc::Receiver<()>,
    armed: bool,
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.closed.store(true, Ordering::SeqCst);
            let _ = self.finished.recv_timeout(Duration::from_secs(2));
        }
    }
}

/// How a dialogue ended.
#[derive(Debug)]
enum Outcome {
    Approved,
    Refused { last: String },
    EndOfInput,
    Closed,
    Failed(std::io::Error),
}

/// One line of input, or why there is none.
#[derive(Debug)]
enum Line {
    Text(String),
    EndOfInput,
    Closed,
}

/// Where answers come from.
trait Lines {
    fn next_line(&mut self) -> std::io::Result<Line>;
    /// Drops input typed but not yet read (an unfinished line), so it does not reach the shell.
    fn discard_pending(&mut self) {}
}

/// Asks up to [`TRIES`] times for `request.word`, writing the prompts to `out`.
fn dialogue(request: &ApprovalRequest, input: &mut dyn Lines, out: &mut dyn Write) -> Outcome {
    let word = &request.word;
    let _ = writeln!(out, "\n{}", request.message);
    for attempt in 1..=TRIES {
        let _ = write!(out, "Type `{word}` to approve (anything else is asked again, {TRIES} tries in all): ");
        let _ = out.flush();
        match input.next_line() {
            Ok(Line::Text(answer)) => {
                let answer = answer.trim();
                if answer == word {
                    let _ = writeln!(out, "approved.");
                    return Outcome::Approved;
                }
                let left = TRIES - attempt;
                if left == 0 {
                    let _ = writeln!(out, "`{}` is not `{word}`; no tries left: the step fails.", shorten(answer));
                    return Outcome::Refused { last: answer.to_string() };
                }
                let tries = if left == 1 { "1 try" } else { "2 tries" };
                let _ = writeln!(out, "`{}` is not `{word}`; {tries} left.", shorten(answer));
            }
            Ok(Line::EndOfInput) => {
                let _ = writeln!(out, "\nno answer: the input ended.");
                return Outcome::EndOfInput;
            }
            Ok(Line::Closed) => {
                input.discard_pending();
                let _ = writeln!(
                    out,
                    "\n■ prompt closed: the step ended without an answer (its timeout passed or the run was \
                     stopped); nothing typed now is read."
                );
                let _ = out.flush();
                return Outcome::Closed;
            }
            Err(e) => return Outcome::Failed(e),
        }
    }
    unreachable!("the loop returns on its last try")
}

/// An answer as quoted back: at most 40 characters.
fn shorten(answer: &str) -> String {
    match answer.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &answer[..i]),
        None => answer.to_string(),
    }
}

/// Lines of standard input, read with `poll` so that reading stops when `closed` is set.
struct StdinLines<'a> {
    closed: &'a AtomicBool,
    pending: Vec<u8>,
}

impl<'a> StdinLines<'a> {
    fn new(closed: &'a AtomicBool) -> Self {
        StdinLines { closed, pending: Vec::new() }
    }
}

impl Lines for StdinLines<'_> {
    fn next_line(&mut self) -> std::io::Result<Line> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return Ok(Line::Text(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.closed.load(Ordering::SeqCst) {
                return Ok(Line::Closed);
            }
            let mut fd = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut fd, 1, POLL.as_millis() as libc::c_int) };
            if ready < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue; // a signal (Ctrl-C); the engine decides what it means
                }
                return Err(e);
            }
            if ready == 0 {
                continue;
            }
            let mut buf = [0u8; 1024];
            // SAFETY: `buf` is valid for its length. A terminal in canonical mode signals POLLIN only
            // with a whole line (or end of input) to read, so this does not block.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            match n {
                n if n < 0 => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
                0 if self.pending.is_empty() => return Ok(Line::EndOfInput),
                0 => return Ok(Line::Text(String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned())),
                n => self.pending.extend_from_slice(&buf[..n as usize]),
            }
        }
    }

    fn discard_pending(&mut self) {
        // SAFETY: tcflush on standard input; it fails harmlessly when that is not a terminal.
        unsafe { libc::tcflush(0, libc::TCIFLUSH) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scripted answers; `None` stands for the prompt being closed.
    struct Script(Vec<Option<&'static str>>);

    impl Lines for Script {
        fn next_line(&mut self) -> std::io::Result<Line> {
            Ok(match self.0.remove(0) {
                Some(text) => Line::Text(format!("{text}\n")),
                None => Line::Closed,
            })
        }
    }

    fn run(answers: Vec<Option<&'static str>>) -> (Outcome, String) {
        let request = ApprovalRequest {
            run_id: "r".into(),
            step_id: "approve".into(),
            message: "Fail over?".into(),
            word: "local".into(),
        };
        let mut out = Vec::new();
        let outcome = dialogue(&request, &mut Script(answers), &mut out);
        (outcome, String::from_utf8(out).unwrap())
    }

    #[test]
    fn a_wrong_answer_is_asked_again_and_the_word_approves() {
        let (outcome, out) = run(vec![Some("YES"), Some(" local ")]);
        assert!(matches!(outcome, Outcome::Approved), "{outcome:?}");
        assert_eq!(out.matches("Type `local` to approve").count(), 2, "{out}");
        assert!(out.contains("`YES` is not `local`; 2 tries left."), "{out}");
        assert!(out.ends_with("approved.\n"), "{out}");
    }

    #[test]
    fn three_wrong_answers_refuse() {
        let (outcome, out) = run(vec![Some("yes"), Some("confirm"), Some("plans/local.yaml")]);
        let Outcome::Refused { last } = outcome else { panic!("{outcome:?}") };
        assert_eq!(last, "plans/local.yaml");
        assert!(out.contains("1 try left"), "{out}");
        assert!(out.contains("no tries left: the step fails."), "{out}");
    }

    #[test]
    fn a_closed_prompt_says_so() {
        let (outcome, out) = run(vec![Some("no"), None]);
        assert!(matches!(outcome, Outcome::Closed), "{outcome:?}");
        assert!(out.contains("■ prompt closed"), "{out}");
    }

    #[test]
    fn long_answers_are_shortened() {
        assert_eq!(shorten(&"x".repeat(50)), format!("{}…", "x".repeat(40)));
        assert_eq!(shorten("short"), "short");
    }
}
