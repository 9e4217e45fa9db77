//! `on_failure`, check labels and the approval step's policy, with the scripted steps of the engine
//! tests under a paused clock.

use super::*;
use crate::journal::{Entry, Record};
use crate::plan::OnFailure;
use crate::step::TypePolicy;

/// The scripted step as a pure check: its success reads "passed".
struct ScriptCheck(Arc<Mutex<World>>);

impl TypedStep for ScriptCheck {
    type Params = ScriptParams;
    const NAME: &'static str = "script.check";
    const SUMMARY: &'static str = "A scripted check for engine tests.";
    const OUTPUTS: &'static [crate::step::OutputSpec] = &[crate::step::OutputSpec::string("value", "The value.")];
    const POLICY: TypePolicy = TypePolicy::CHECK;

    fn build(&self, params: ScriptParams, _: &BuildContext) -> Box<dyn Step> {
        Box::new(ScriptStep { params, world: self.0.clone() })
    }
}

fn fixture_with_checks() -> Fixture {
    let mut f = fixture();
    f.engine.registry.register(ScriptCheck(f.world.clone()));
    f.engine.registry.register(crate::steps::approval::Approval { approver: Arc::new(crate::steps::AutoApprove) });
    f
}

fn journal_of(f: &Fixture, view: &super::state::RunView) -> Vec<Entry> {
    crate::journal::read(&f.state.journal_path(&view.run_id)).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_continued_failure_lets_its_dependants_run_and_the_run_succeeds_with_a_warning() {
    let f = fixture();
    let p = plan(
        &f,
        "  - {id: notify, type: script, on_failure: continue, with: {fatal: true}}\n  - {id: dns, type: script, after: [notify]}\n  - {id: health, type: script, after: [dns]}\n",
    );
    let (state, view) = run(&f, &p).await;
    assert_eq!(state, RunState::Succeeded);
    assert_eq!(
        view.step("notify").unwrap().state,
        StepState::Failed { error: "scripted fatal error".into(), continued: true }
    );
    assert_eq!(view.step("dns").unwrap().state.label(), "succeeded");
    assert_eq!(view.step("health").unwrap().state.label(), "succeeded");
    let journal = journal_of(&f, &view);
    let finished = journal.iter().find_map(|e| match &e.record {
        Record::RunFinished { succeeded, message } => Some((*succeeded, message.clone())),
        _ => None,
    });
    assert_eq!(
        finished,
        Some((
            true,
            "failover completed with warnings: `notify` failed and the run went on (on_failure: continue)".into()
        ))
    );
    let summary = crate::report::summary::RunSummary::new(&view, Some(&p));
    assert_eq!(summary.warnings.len(), 1, "{summary:?}");
    let text = summary.render();
    assert!(
        text.contains(
            "⚠ warning: step `notify` failed and the run went on (on_failure: continue): scripted fatal error"
        ),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn stop_is_the_default_and_a_stop_failure_still_fails_the_run_next_to_a_continued_one() {
    let f = fixture();
    let p = plan(
        &f,
        "  - {id: soft, type: script, on_failure: continue, with: {fatal: true}}\n  - {id: hard, type: script, with: {fatal: true, takes_ms: 10}}\n  - {id: after-hard, type: script, after: [hard]}\n",
    );
    assert_eq!(p.failover[1].on_failure, OnFailure::Stop);
    let (state, view) = run(&f, &p).await;
    assert_eq!(state, RunState::Failed { message: "step `hard` failed: scripted fatal error".into() });
    assert_eq!(
        view.step("hard").unwrap().state,
        StepState::Failed { error: "scripted fatal error".into(), continued: false }
    );
    assert_eq!(view.step("after-hard").unwrap().state.label(), "skipped");
}

#[tokio::test(start_paused = true)]
async fn a_continued_step_is_still_retried_before_it_is_given_up() {
    let f = fixture();
    let p = plan(&f, "  - {id: flaky, type: script, retries: 1, on_failure: continue, with: {fail_times: 5}}\n");
    let (state, view) = run(&f, &p).await;
    assert_eq!(state, RunState::Succeeded);
    assert_eq!(f.world.lock().unwrap().acts["flaky"], 2);
    assert!(matches!(view.step("flaky").unwrap().state, StepState::Failed { continued: true, .. }));
}

#[tokio::test(start_paused = true)]
async fn a_passing_check_is_passed_and_an_effect_found_in_place_is_already_done() {
    let f = fixture_with_checks();
    let p = plan(&f, "  - {id: probe, type: script.check}\n  - {id: change, type: script}\n");
    let (state, view) = run(&f, &p).await;
    assert_eq!(state, RunState::Succeeded);
    assert_eq!(view.step("probe").unwrap().state.label(), "passed");
    assert_eq!(view.step("change").unwrap().state.label(), "succeeded");
    // A second run: the change is found in place ("already done"), the check passes again.
    let (_, again) = run(&f, &p).await;
    assert_eq!(again.step("probe").unwrap().state.label(), "passed");
    assert_eq!(again.step("change").unwrap().state.label(), "already done");
    let journal = journal_of(&f, &again);
    let probe = journal
        .iter()
        .find_map(|e| match &e.record {
            Record::StepSucceeded { step, already_done, passed, .. } if step == "probe" => {
                Some((*already_done, *passed))
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(probe, (false, true), "a check never reads as already done");
}

#[test]
fn journals_written_before_checks_and_warnings_were_recorded_still_read() {
    let old =
        r#"{"seq":3,"at":"2026-01-01T00:00:00Z","event":"step_succeeded","step":"a","outputs":{},"already_done":true}"#;
    let entry: Entry = serde_json::from_str(old).unwrap();
    assert_eq!(
        entry.record,
        Record::StepSucceeded { step: "a".into(), outputs: Default::default(), already_done: true, passed: false }
    );
    let old = r#"{"seq":4,"at":"2026-01-01T00:00:00Z","event":"step_failed","step":"a","error":"boom"}"#;
    let entry: Entry = serde_json::from_str(old).unwrap();
    assert_eq!(entry.record, Record::StepFailed { step: "a".into(), error: "boom".into(), continued: false });
    // And new records stay as small as before when nothing new is to be said.
    let line =
        serde_json::to_string(&Record::StepFailed { step: "a".into(), error: "e".into(), continued: false }).unwrap();
    assert!(!line.contains("continued"), "{line}");
}

#[test]
fn approval_steps_wait_30_minutes_and_are_never_retried_and_webhooks_continue() {
    let f = fixture_with_checks();
    let text = "name: p\nregions: {primary: a, secondary: b}\nobjectives: {rto: 15m, rpo: 5m}\n\
         defaults: {timeout: 2m, retries: 3}\n\
         failover:\n  - {id: approve, type: approval}\n  - {id: short, type: approval, timeout: 10s}\n  - {id: work, type: script}\n\
         failback:\n  - {id: back, type: script}\n";
    let p = parse(Path::new("p.yaml"), text, &f.engine.registry).unwrap_or_else(|e| panic!("{e}"));
    let approve = &p.failover[0];
    assert_eq!((approve.timeout, approve.retries), (Duration::from_secs(30 * 60), 0));
    assert_eq!((p.failover[1].timeout, p.failover[1].retries), (Duration::from_secs(10), 0));
    assert_eq!((p.failover[2].timeout, p.failover[2].retries), (Duration::from_secs(120), 3));

    let registry = crate::steps::builtin(&crate::steps::Services::for_checking());
    let webhook = |extra: &str| {
        format!(
            "name: p\nregions: {{primary: a, secondary: b}}\nobjectives: {{rto: 15m, rpo: 5m}}\n\
             failover:\n  - {{id: tell, type: notify.webhook, {extra}with: {{url: 'http://127.0.0.1:1/hook', template: custom, text: hi}}}}\n\
             failback:\n  - {{id: w, type: wait, with: {{duration: 1s}}}}\n"
        )
    };
    let p = parse(Path::new("p.yaml"), &webhook(""), &registry).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.failover[0].on_failure, OnFailure::Continue);
    let p = parse(Path::new("p.yaml"), &webhook("on_failure: stop, "), &registry).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.failover[0].on_failure, OnFailure::Stop);
}
