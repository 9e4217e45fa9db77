//! Live progress for people: on a terminal, one indicatif line per running step with its elapsed
//! time and finished steps printed above; elsewhere (CI logs, pipes), plain timestamped lines.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::clock::human_duration;
use crate::engine::events::{Event, Phase, Reporter};

/// Human progress on standard error.
pub struct Progress {
    /// `Some` on a terminal.
    bars: Option<MultiProgress>,
    running: Mutex<HashMap<String, ProgressBar>>,
    titles: Mutex<HashMap<String, String>>,
}

impl Progress {
    /// Progress bars when `interactive`, plain lines otherwise.
    pub fn new(interactive: bool) -> Self {
        let bars = interactive.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        Progress { bars, running: Mutex::default(), titles: Mutex::default() }
    }

    /// The progress display, so a prompt can suspend it while it reads from the terminal.
    pub fn multi_progress(&self) -> Option<MultiProgress> {
        self.bars.clone()
    }

    fn title(&self, id: &str) -> String {
        self.titles.lock().expect("not poisoned").get(id).cloned().unwrap_or_else(|| id.to_string())
    }

    fn line(&self, at: SystemTime, text: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(text);
            }
            None => {
                let stamp = crate::clock::rfc3339_seconds(at);
                let time = stamp.get(11..19).unwrap_or(&stamp);
                crate::errln!("{time} {text}");
            }
        }
    }

    fn start_bar(&self, id: &str, message: &str) {
        let Some(bars) = &self.bars else { return };
        let style = ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {msg} {elapsed:.dim}")
            .expect("the template is valid")
            .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏✓");
        let bar = bars.add(
            ProgressBar::new_spinner().with_style(style).with_prefix(self.title(id)).with_message(message.to_string()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        self.running.lock().expect("not poisoned").insert(id.to_string(), bar);
    }

    fn set_message(&self, id: &str, message: &str) {
        if let Some(bar) = self.running.lock().expect("not poisoned").get(id) {
            bar.set_message(message.to_string());
        }
    }

    fn end_bar(&self, id: &str) {
        if let Some(bar) = self.running.lock().expect("not poisoned").remove(id) {
            bar.finish_and_clear();
            if let Some(bars) = &self.bars {
                bars.remove(&bar);
            }
        }
    }
}

impl Reporter for Progress {
    fn event(&self, at: SystemTime, event: &Event) {
        match event {
            Event::RunStarted { run_id, plan, direction, resumed, steps } => {
                let mut titles = self.titles.lock().expect("not poisoned");
                titles.extend(steps.iter().map(|s| (s.id.clone(), s.title.clone())));
                drop(titles);
                let done = steps.iter().filter(|s| s.done).count();
                let verb = if *resumed { "resuming" } else { "starting" };
                let mut text = format!("{verb} {direction} of plan {plan}: run {run_id}, {} steps", steps.len());
                if done > 0 {
                    text.push_str(&format!(" ({done} already succeeded)"));
                }
                self.line(at, &text);
            }
            Event::StepStarted { step, attempt } => {
                let message =
                    if *attempt > 1 { format!("attempt {attempt}, observing") } else { "observing".to_string() };
                if *attempt == 1 {
                    self.start_bar(step, &message);
                    if self.bars.is_none() {
                        self.line(at, &format!("▶ {} started", self.title(step)));
                    }
                } else {
                    self.set_message(step, &message);
                }
            }
            Event::StepPhase { step, phase } => {
                let label = match phase {
                    Phase::Observe => "observing",
                    Phase::Act => "acting",
                    Phase::Wait => "waiting for the effect",
                    Phase::Verify => "verifying",
                };
                self.set_message(step, label);
            }
            Event::StepRetrying { step, attempt, error, delay_ms } => {
                let delay = human_duration(Duration::from_millis(*delay_ms));
                self.line(
                    at,
                    &format!("↻ {} attempt {attempt} failed: {error}; retrying in {delay}", self.title(step)),
                );
                self.set_message(step, &format!("retrying in {delay}"));
            }
            Event::StepSucceeded { step, already_done, passed, elapsed_ms, outputs, .. } => {
                self.end_bar(step);
                let took = human_duration(Duration::from_millis(*elapsed_ms));
                let mut note = if crate::engine::state::went_on_unreachable(outputs) {
                    format!("{took} (went on: its target could not be reached, and the step has required: false)")
                } else {
                    success_note(*passed, *already_done, &took)
                };
                if let Some(latency) = outputs.get("latency_ms") {
                    note.push_str(&format!(" (answered in {latency}ms)"));
                }
                self.line(at, &format!("✓ {} {note}", self.title(step)));
            }
            Event::StepFailed { step, error, continued: true, elapsed_ms } => {
                self.end_bar(step);
                let took = human_duration(Duration::from_millis(*elapsed_ms));
                self.line(
                    at,
                    &format!(
                        "⚠ {} failed after {took}: {error}; the run goes on (on_failure: continue)",
                        self.title(step)
                    ),
                );
            }
            Event::StepFailed { step, error, elapsed_ms, .. } => {
                self.end_bar(step);
                let took = human_duration(Duration::from_millis(*elapsed_ms));
                self.line(at, &format!("✗ {} failed after {took}: {error}", self.title(step)));
            }
            Event::StepSkipped { step, reason } => self.line(at, &format!("- {} skipped: {reason}", self.title(step))),
            Event::RunInterrupted { reason } => {
                let ids: Vec<String> = self.running.lock().expect("not poisoned").keys().cloned().collect();
                ids.iter().for_each(|id| self.end_bar(id));
                self.line(at, &format!("■ interrupted ({reason}); running steps were cancelled"));
            }
            Event::RunFinished { .. } => {}
        }
    }
}

/// How a success reads after the step's title: a check "passed in 85ms", a step that found its
/// effect in place "already done", anything else its time.
pub fn success_note(passed: bool, already_done: bool, took: &str) -> String {
    match (passed, already_done) {
        (true, _) => format!("passed in {took}"),
        (false, true) => format!("{took} (already done: found in place, nothing changed)"),
        (false, false) => took.to_string(),
    }
}
