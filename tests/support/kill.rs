//! SIGKILL trials at chosen points of a chosen step, and what to check after the resume.
//!
//! [`kill_and_resume`] starts a `drctl failover`, watches its journal from the test (every
//! millisecond; no hook in the product) and kills the process with SIGKILL the moment the record of
//! the [`KillPoint`] is on disk:
//! - [`KillPoint::AfterActing`]: `step_acting` is synced, so the kill lands inside `act`, before
//!   the receipt; the world must be slow there (a [`DelayProxy`] holding a request or its answer,
//!   a command that sleeps) for the kill to land before `act` returns;
//! - [`KillPoint::AfterActed`]: `step_acted` (the receipt) is synced and the step is waiting or
//!   verifying; the world must keep it there (a rollout that takes a while, a slow poll).
//!
//! A kill that came too late (the step had gone past the point: a receipt after `AfterActing`, a
//! success or failure of the step) fails the trial loudly with the journal: a trial never passes
//! without killing where it meant to. Then the trial's resume command (`drctl resume RUN
//! --break-lock --yes`, straight to the backend) runs until it exits 0 (at most [`RESUMES`] times).
//!
//! [`crash_image`] is for windows too narrow for a kill (a step whose `verify` only reads its
//! receipt): it cuts a finished run's journal back to a record, which is the state a crash right
//! after that record leaves (records are synced in order), so a resume starts from there.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::{Background, Out, TestDir, records, run, show};

mod delay_proxy;
// Test crates that do not kill anything include this module too.
#[allow(unused_imports)]
pub use delay_proxy::{DelayProxy, Held, Hold};

/// How many `drctl resume` a trial allows before it fails.
pub const RESUMES: usize = 3;

/// Where a trial kills the run.
#[derive(Debug, Clone, Copy)]
pub enum KillPoint {
    /// `step_acting` of the step is on disk: inside `act`, before the receipt.
    AfterActing(&'static str),
    /// `step_acted` of the step (its receipt) is on disk: the step is waiting or verifying.
    AfterActed(&'static str),
}

impl KillPoint {
    pub fn step(self) -> &'static str {
        match self {
            KillPoint::AfterActing(step) | KillPoint::AfterActed(step) => step,
        }
    }

    fn event(self) -> &'static str {
        match self {
            KillPoint::AfterActing(_) => "step_acting",
            KillPoint::AfterActed(_) => "step_acted",
        }
    }
}

/// What a trial left: the journal as the kill left it, the resumes, and the journal after them.
pub struct Trial {
    pub run_id: String,
    pub point: KillPoint,
    /// The complete records on disk after the kill.
    pub killed: Vec<Value>,
    /// Every `drctl resume`, the last one exited 0.
    pub resumes: Vec<Out>,
    /// The journal after the last resume.
    pub journal: Vec<Value>,
}

/// Runs `failover` (a `drctl failover` command), kills it with SIGKILL at `point`, then runs
/// `resume(run_id)` until it exits 0. Panics, with the journal, when the kill came too late or
/// never came, or no resume succeeded.
pub fn kill_and_resume(dir: &TestDir, failover: Command, point: KillPoint, resume: impl Fn(&str) -> Command) -> Trial {
    kill_when_and_resume(dir, failover, point, || true, resume)
}

/// [`kill_and_resume`], killing only once `world` holds too (the held request reached the proxy,
/// the command's side effect is there): where `act` does several things, this says which one the
/// kill comes after.
pub fn kill_when_and_resume(
    dir: &TestDir,
    failover: Command,
    point: KillPoint,
    world: impl Fn() -> bool,
    resume: impl Fn(&str) -> Command,
) -> Trial {
    let mut first = Background::spawn(failover);
    let deadline = Instant::now() + Duration::from_secs(30);
    let run_id = loop {
        if let Some(id) = dir.run_ids().first()
            && has_record(&dir.journal_text(id), point.event(), point.step())
            && world()
        {
            first.child.kill().expect("SIGKILL drctl");
            break id.clone();
        }
        if first.child.try_wait().expect("poll drctl").is_some() {
            let out = first.finish();
            panic!(
                "drctl ended before {point:?} was journaled with the world as the trial wants it; nothing was \
                 killed\n{out}{}",
                dir.journals_text()
            );
        }
        if Instant::now() > deadline {
            first.child.kill().expect("SIGKILL drctl");
            let out = first.finish();
            panic!(
                "{point:?} (with the world as the trial wants it) did not come within 30 s\n{out}{}",
                dir.journals_text()
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let out = first.finish();
    assert_eq!(out.code(), None, "drctl was killed by SIGKILL, not ended by itself\n{out}");
    let killed = dir.journal(&run_id);
    let step = point.step();
    let past = |event: &str| !records(&killed, event, Some(step)).is_empty();
    let too_late = past("step_succeeded")
        || past("step_failed")
        || (matches!(point, KillPoint::AfterActing(_)) && past("step_acted"));
    assert!(
        !too_late,
        "the kill came too late for {point:?}: the step had gone past it; slow the world down there\n{}",
        show(&killed)
    );
    assert!(records(&killed, "run_finished", None).is_empty(), "killed after the run finished\n{}", show(&killed));

    let mut resumes = Vec::new();
    while resumes.len() < RESUMES {
        let out = run(resume(&run_id));
        let done = out.code() == Some(0);
        resumes.push(out);
        if done {
            let journal = dir.journal(&run_id);
            return Trial { run_id, point, killed, resumes, journal };
        }
    }
    let outs: String = resumes.iter().map(ToString::to_string).collect();
    panic!("no resume of {run_id} succeeded in {RESUMES} tries\n{outs}{}", dir.journals_text());
}

/// Whether the journal text holds a complete record of `event` about `step`.
fn has_record(text: &str, event: &str, step: &str) -> bool {
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete.lines().any(|line| {
        line.contains(event)
            && serde_json::from_str::<Value>(line).is_ok_and(|r| r["event"] == event && r["step"] == step)
    })
}

impl Trial {
    /// The outputs of the step's one success after the resume.
    pub fn outputs(&self, step: &str) -> Map<String, Value> {
        outputs(&self.journal, step)
    }

    /// The journal after the resume, for failure messages.
    pub fn show(&self) -> String {
        let outs: String = self.resumes.iter().map(ToString::to_string).collect();
        format!(
            "{outs}--- journal when killed:\n{}--- journal after the resume:\n{}",
            show(&self.killed),
            show(&self.journal)
        )
    }

    /// What every trial checks in the journal: the run was resumed and succeeded; a step killed
    /// after its receipt kept that receipt (the same one) and did not act again; a step killed
    /// while acting acted at most once more.
    pub fn check_journal(&self) {
        let step = self.point.step();
        let ctx = self.show();
        assert!(!records(&self.journal, "run_resumed", None).is_empty(), "no run_resumed\n{ctx}");
        let finished = records(&self.journal, "run_finished", None);
        assert_eq!(finished.last().map(|r| r["succeeded"].clone()), Some(Value::from(true)), "{ctx}");
        assert_eq!(records(&self.journal, "step_succeeded", Some(step)).len(), 1, "one success of {step}\n{ctx}");
        let acting_after_kill = self.after_kill("step_acting");
        match self.point {
            KillPoint::AfterActed(_) => {
                let before = records(&self.killed, "step_acted", Some(step));
                let after = records(&self.journal, "step_acted", Some(step));
                assert_eq!(before.len(), 1, "{ctx}");
                assert_eq!(after, before, "the receipt from before the kill is the step's only one\n{ctx}");
                assert_eq!(acting_after_kill, 0, "a step killed after its receipt is not acted again\n{ctx}");
                // With its receipt the resumed step polls and verifies what this run did; it must not
                // report the effect as found in place (that would be observing afresh).
                let succeeded = records(&self.journal, "step_succeeded", Some(step));
                assert_eq!(succeeded[0]["already_done"], false, "resumed from its receipt, not observed\n{ctx}");
            }
            KillPoint::AfterActing(_) => {
                assert!(acting_after_kill <= 1, "{ctx}");
            }
        }
    }

    /// How many records of `event` about the step came after the kill.
    fn after_kill(&self, event: &str) -> usize {
        let step = Some(self.point.step());
        records(&self.journal, event, step).len() - records(&self.killed, event, step).len()
    }

    /// Whether the resumed run acted on the step again (journaled `step_acting` after the kill).
    pub fn acted_again(&self) -> bool {
        self.after_kill("step_acting") > 0
    }
}

/// The outputs journaled with `step`'s one success.
pub fn outputs(journal: &[Value], step: &str) -> Map<String, Value> {
    let succeeded = records(journal, "step_succeeded", Some(step));
    assert_eq!(succeeded.len(), 1, "one success of {step}\n{}", show(journal));
    succeeded[0]["outputs"].as_object().cloned().unwrap_or_default()
}

/// Asserts that two runs' outputs of a step are equal, except the named ones (which measure time).
#[track_caller]
pub fn assert_same_outputs(resumed: &Map<String, Value>, fresh: &Map<String, Value>, skip: &[&str], context: &str) {
    let keep = |outputs: &Map<String, Value>| -> Map<String, Value> {
        outputs.iter().filter(|(k, _)| !skip.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    assert_eq!(keep(resumed), keep(fresh), "the resumed step's outputs differ from an uninterrupted run's\n{context}");
    for name in skip {
        assert_eq!(
            resumed.contains_key(*name),
            fresh.contains_key(*name),
            "output {name} present in one only\n{context}"
        );
    }
}

/// Cuts a journal back to its record of `event` about `step` (included): the state a crash right
/// after that record leaves. Returns the records kept.
pub fn crash_image(dir: &TestDir, run_id: &str, event: &str, step: &str) -> Vec<Value> {
    let text = dir.journal_text(run_id);
    let mut kept = String::new();
    for line in text.lines() {
        kept.push_str(line);
        kept.push('\n');
        let record: Value = serde_json::from_str(line).expect("a journal line is JSON");
        if record["event"] == event && record["step"] == step {
            std::fs::write(dir.journal_path(run_id), &kept).expect("cut the journal");
            return dir.journal(run_id);
        }
    }
    panic!("no {event} record of {step} to cut the journal at:\n{text}");
}
