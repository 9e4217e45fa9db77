//! Exhaustive tests of the transition functions: every state meets every record.

use std::time::{Duration, SystemTime};

use super::*;
use crate::journal::{Entry, Record};

fn states() -> Vec<(&'static str, StepState)> {
    vec![
        ("pending", StepState::Pending),
        ("observing", StepState::Running { attempt: 1, acting: false }),
        ("acting", StepState::Running { attempt: 1, acting: true }),
        ("retrying", StepState::Backoff { attempt: 1, error: "e".into() }),
        ("succeeded", StepState::Succeeded { outputs: Outputs::new(), already_done: false, passed: false }),
        ("failed", StepState::Failed { error: "e".into(), continued: false }),
        ("skipped", StepState::Skipped { reason: "r".into() }),
    ]
}

fn records() -> Vec<(&'static str, Record)> {
    let step = || "s".to_string();
    vec![
        ("start", Record::StepStarted { step: step(), attempt: 1 }),
        ("start2", Record::StepStarted { step: step(), attempt: 2 }),
        ("act", Record::StepActing { step: step(), attempt: 1 }),
        ("retry", Record::StepRetrying { step: step(), attempt: 1, error: "e".into(), delay_ms: 10 }),
        ("ok", Record::StepSucceeded { step: step(), outputs: Outputs::new(), already_done: false, passed: false }),
        ("fail", Record::StepFailed { step: step(), error: "e".into(), continued: false }),
        ("skip", Record::StepSkipped { step: step(), reason: "r".into() }),
        (
            "resume",
            Record::RunResumed {
                host: "h".into(),
                pid: 1,
                plan_digest: "d".into(),
                plan_changed: false,
                steps: vec![],
            },
        ),
        ("interrupt", Record::RunInterrupted { reason: "r".into() }),
    ]
}

/// The whole step transition table; `-` means the record cannot happen in that state.
const STEP_TABLE: &[(&str, [&str; 9])] = &[
    //             start        start2       act        retry       ok           fail      skip       resume       interrupt
    ("pending", ["observing", "observing", "-", "-", "-", "-", "skipped", "pending", "-"]),
    ("observing", ["-", "-", "acting", "retrying", "succeeded", "failed", "-", "pending", "-"]),
    ("acting", ["-", "-", "-", "retrying", "succeeded", "failed", "-", "pending", "-"]),
    ("retrying", ["observing", "observing", "-", "-", "-", "failed", "-", "pending", "-"]),
    ("succeeded", ["-", "-", "-", "-", "-", "-", "-", "succeeded", "-"]),
    ("failed", ["-", "-", "-", "-", "-", "-", "-", "pending", "-"]),
    ("skipped", ["-", "-", "-", "-", "-", "-", "-", "pending", "-"]),
];

#[test]
fn step_transitions_follow_the_table() {
    let records = records();
    for (name, state) in states() {
        let row = STEP_TABLE.iter().find(|(n, _)| *n == name).expect("a row per state").1;
        for ((record_name, record), expected) in records.iter().zip(row) {
            let got = transition(&state, record).map(|s| s.label());
            let got = got.map(|l| if l == "already done" { "succeeded" } else { l }).unwrap_or("-");
            assert_eq!(got, expected as &str, "{name} + {record_name}");
        }
    }
}

#[test]
fn acting_and_retrying_must_name_the_current_attempt() {
    let running = StepState::Running { attempt: 2, acting: false };
    assert_eq!(transition(&running, &Record::StepActing { step: "s".into(), attempt: 1 }), None);
    let retry = Record::StepRetrying { step: "s".into(), attempt: 1, error: "e".into(), delay_ms: 1 };
    assert_eq!(transition(&running, &retry), None);
}

fn run_states() -> Vec<RunState> {
    vec![
        RunState::Running,
        RunState::Succeeded,
        RunState::Failed { message: "m".into() },
        RunState::Interrupted { reason: "r".into() },
        RunState::Abandoned,
    ]
}

#[test]
fn run_transitions_follow_the_rules() {
    let finish_ok = Record::RunFinished { succeeded: true, message: String::new() };
    let finish_failed = Record::RunFinished { succeeded: false, message: "m".into() };
    let abandon = Record::RunAbandoned { by: "me".into(), damaged_lines: vec![] };
    for state in run_states() {
        let running = state == RunState::Running;
        for (_, record) in records() {
            let next = run_transition(&state, &record);
            match record {
                Record::RunResumed { .. } => assert_eq!(next.is_some(), state.is_resumable(), "{state:?}"),
                Record::RunInterrupted { .. } => assert_eq!(next.is_some(), running, "{state:?}"),
                _ => assert_eq!(next, running.then_some(RunState::Running), "{state:?} + step record"),
            }
        }
        assert_eq!(run_transition(&state, &finish_ok).is_some(), running);
        assert_eq!(run_transition(&state, &finish_failed).is_some(), running);
        assert_eq!(run_transition(&state, &abandon).is_some(), state.is_resumable());
    }
}

fn entry(seq: u64, secs: u64, record: Record) -> Entry {
    Entry { seq, at: SystemTime::UNIX_EPOCH + Duration::from_secs(secs), record }
}

fn started(steps: &[&str]) -> Record {
    Record::RunStarted {
        run_id: "r".into(),
        plan: "p".into(),
        plan_path: "plans/p.yaml".into(),
        plan_digest: "d1".into(),
        direction: Direction::Failover,
        incident_start: None,
        host: "h".into(),
        pid: 1,
        drctl_version: "0".into(),
        steps: steps.iter().map(|s| s.to_string()).collect(),
        vars: vec![],
    }
}

#[test]
fn replay_rebuilds_a_crashed_run_and_measures_rto_across_resumes() {
    let ok = |step: &str| Record::StepSucceeded {
        step: step.into(),
        outputs: Outputs::new(),
        already_done: false,
        passed: false,
    };
    let entries = vec![
        entry(1, 100, started(&["a", "b"])),
        entry(2, 100, Record::StepStarted { step: "a".into(), attempt: 1 }),
        entry(3, 101, ok("a")),
        entry(4, 101, Record::StepStarted { step: "b".into(), attempt: 1 }),
        entry(5, 102, Record::StepActing { step: "b".into(), attempt: 1 }),
        // crash: the process died with b acting
    ];
    let view = RunView::replay(&entries).unwrap();
    assert_eq!(view.state, RunState::Running);
    assert_eq!(view.step("b").unwrap().state, StepState::Running { attempt: 1, acting: true });
    assert_eq!(view.rto(None), None);

    let mut entries = entries;
    entries.push(entry(
        6,
        200,
        Record::RunResumed { host: "h2".into(), pid: 2, plan_digest: "d1".into(), plan_changed: false, steps: vec![] },
    ));
    entries.push(entry(7, 200, Record::StepStarted { step: "b".into(), attempt: 1 }));
    entries.push(entry(
        8,
        201,
        Record::StepSucceeded { step: "b".into(), outputs: Outputs::new(), already_done: true, passed: false },
    ));
    entries.push(entry(9, 201, Record::RunFinished { succeeded: true, message: String::new() }));
    let view = RunView::replay(&entries).unwrap();
    assert_eq!(view.state, RunState::Succeeded);
    assert_eq!(view.resumes, 1);
    assert_eq!(view.step("a").unwrap().state.label(), "succeeded");
    assert_eq!(view.step("b").unwrap().state.label(), "already done");
    assert_eq!(view.step("b").unwrap().started_at, Some(SystemTime::UNIX_EPOCH + Duration::from_secs(101)));
    assert_eq!(view.rto(None), Some(Duration::from_secs(101)), "the whole incident counts, crash included");
    assert_eq!(view.rto(Some("a")), Some(Duration::from_secs(1)));
}

#[test]
fn replay_rejects_records_that_cannot_happen() {
    let entries = vec![
        entry(1, 0, started(&["a"])),
        entry(
            2,
            0,
            Record::StepSucceeded { step: "a".into(), outputs: Outputs::new(), already_done: false, passed: false },
        ),
    ];
    let err = RunView::replay(&entries).unwrap_err();
    assert_eq!(err.seq, 2);
    let unknown_step =
        vec![entry(1, 0, started(&["a"])), entry(2, 0, Record::StepStarted { step: "zz".into(), attempt: 1 })];
    assert!(RunView::replay(&unknown_step).is_err());
    assert!(RunView::replay(&[entry(1, 0, Record::RunInterrupted { reason: "x".into() })]).is_err());
}

#[test]
fn a_best_effort_step_that_could_not_reach_its_target_reads_went_on_not_already_done() {
    let outputs = |unreachable: &str| {
        [("fenced".to_string(), "false".to_string()), ("unreachable".to_string(), unreachable.to_string())]
            .into_iter()
            .collect::<crate::step::Outputs>()
    };
    let state = |outputs| StepState::Succeeded { outputs, already_done: true, passed: false };
    assert_eq!(state(outputs("true")).label(), "went on (unreachable)");
    assert_eq!(state(outputs("false")).label(), "already done");
}

#[test]
fn a_journaled_receipt_survives_a_crash_and_resume_and_old_journals_still_read() {
    let receipt = crate::step::Receipt::of(&serde_json::json!({"change_id": "C1", "previous_target": "old-lb"}));
    let acted = Record::StepActed { step: "dns".into(), attempt: 1, receipt: receipt.clone() };
    let wait_error =
        Record::StepWaitError { step: "dns".into(), attempt: 1, error: "Throttling".into(), consecutive: 1 };
    let resumed =
        Record::RunResumed { host: "h".into(), pid: 2, plan_digest: "d1".into(), plan_changed: false, steps: vec![] };
    let entries = [
        entry(1, 0, started(&["dns"])),
        entry(2, 1, Record::StepStarted { step: "dns".into(), attempt: 1 }),
        entry(3, 2, Record::StepActing { step: "dns".into(), attempt: 1 }),
        entry(4, 3, acted),
        entry(5, 4, wait_error),
        // The process died here.
        entry(6, 60, resumed),
    ];
    let view = RunView::replay(&entries).unwrap();
    let step = view.step("dns").unwrap();
    assert_eq!(step.state, StepState::Pending);
    assert_eq!(step.receipt.as_ref(), Some(&receipt), "the resumed step gets its receipt back");

    // The journal line as written, and a journal from before receipts (no step_acted) reads as before.
    let line = serde_json::to_string(&entries[3]).unwrap();
    assert!(line.contains(r#""event":"step_acted""#) && line.contains(r#""previous_target":"old-lb""#), "{line}");
    let old = RunView::replay(&[entries[0].clone(), entries[1].clone(), entries[2].clone()]).unwrap();
    assert_eq!(old.step("dns").unwrap().receipt, None);
}
