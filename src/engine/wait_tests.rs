//! The wait policy, as a table: a scripted step's polls against a paused clock.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::*;
use crate::clock::{Clock, TokioClock};
use crate::step::{Observation, Outputs};

/// A step whose polls answer from a script; `None` (past the script's end) is `Done`.
struct Scripted {
    polls: Mutex<VecDeque<Progress>>,
    interval: Duration,
    /// When each poll happened, since the start.
    seen: Mutex<Vec<Duration>>,
    clock: Arc<dyn Clock>,
    start: SystemTime,
}

#[async_trait]
impl Step for Scripted {
    fn describe(&self) -> String {
        "scripted".into()
    }
    async fn observe(&self, _: &StepContext) -> Result<Observation, StepError> {
        Ok(Observation::NotDone)
    }
    async fn act(&self, _: &StepContext) -> Result<Receipt, StepError> {
        Ok(Receipt::NONE)
    }
    async fn poll(&self, _: &StepContext, _: &Receipt) -> Progress {
        let at = self.clock.now().duration_since(self.start).unwrap();
        self.seen.lock().unwrap().push(at);
        self.polls.lock().unwrap().pop_front().unwrap_or(Progress::Done)
    }
    fn poll_interval(&self) -> Duration {
        self.interval
    }
    async fn verify(&self, _: &StepContext, _: &Receipt) -> Result<Outputs, StepError> {
        Ok(Outputs::new())
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(String, u32)>>);

#[async_trait]
impl WaitJournal for Recorder {
    async fn wait_error(&self, error: &StepError, consecutive: u32) -> Result<(), StepError> {
        self.0.lock().unwrap().push((error.message.clone(), consecutive));
        Ok(())
    }
}

struct Outcome {
    result: Result<(), StepError>,
    seen: Vec<Duration>,
    journaled: Vec<(String, u32)>,
    last_why: Option<String>,
}

async fn run(script: Vec<Progress>, interval: Duration) -> Outcome {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(start));
    let step =
        Scripted { polls: Mutex::new(script.into()), interval, seen: Mutex::default(), clock: clock.clone(), start };
    let ctx = StepContext { run_id: "r".into(), step_id: "s".into(), attempt: 1, first_started_at: start, clock };
    let journal = Recorder::default();
    let last_why = LastWhy::default();
    let result = wait(&step, &ctx, &Receipt::NONE, WaitPolicy::default(), &journal, &last_why).await;
    let last_why = last_why.lock().unwrap().clone();
    Outcome { result, seen: step.seen.into_inner().unwrap(), journaled: journal.0.into_inner().unwrap(), last_why }
}

fn waiting(why: &str) -> Progress {
    Progress::Waiting(why.into())
}

fn flaky() -> Progress {
    Progress::Failed(StepError::retryable("Throttling: Rate exceeded"))
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

#[tokio::test(start_paused = true)]
async fn polls_at_once_then_backs_off_from_100ms_to_the_poll_interval() {
    let outcome = run(vec![waiting("x"); 7], Duration::from_secs(5)).await;
    assert!(outcome.result.is_ok());
    // 0, +100, +200, +400, +800, +1600, +3200, then capped at 5 s.
    let expected = [0, 100, 300, 700, 1500, 3100, 6300, 11300].map(ms);
    assert_eq!(outcome.seen, expected);
}

#[tokio::test(start_paused = true)]
async fn an_effect_that_takes_200ms_is_seen_at_300ms_whatever_the_interval() {
    // The RDS promotion of the runbook benchmark: done between the second and third look.
    let outcome = run(vec![waiting("promoting"), waiting("promoting")], Duration::from_secs(5)).await;
    assert_eq!(outcome.seen.last(), Some(&ms(300)));
}

#[tokio::test(start_paused = true)]
async fn the_policy_table() {
    let retryable = |m: &str| Progress::Failed(StepError::retryable(m));
    let fatal = |m: &str| Progress::Failed(StepError::fatal(m));
    // (case, script, Ok or the error's text, errors journaled, its last why)
    type Case<'a> = (&'a str, Vec<Progress>, Result<(), &'a str>, usize, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("done at once", vec![], Ok(()), 0, None),
        ("three errors in a row are tolerated", vec![flaky(), flaky(), flaky()], Ok(()), 3, None),
        (
            "a fourth in a row fails the attempt, retryably",
            vec![flaky(), flaky(), flaky(), flaky()],
            Err("Throttling: Rate exceeded (4 failed looks in a row)"),
            3,
            None,
        ),
        (
            "a waiting answer resets the count",
            vec![flaky(), flaky(), flaky(), waiting("INSYNC pending"), flaky(), flaky(), flaky()],
            Ok(()),
            6,
            Some("INSYNC pending"),
        ),
        ("a fatal error fails at once", vec![waiting("a"), fatal("AccessDenied")], Err("AccessDenied"), 0, Some("a")),
        ("a retryable error keeps the last why", vec![waiting("b"), retryable("reset")], Ok(()), 1, Some("b")),
    ];
    for (case, script, expected, journaled, why) in cases {
        let outcome = run(script, Duration::from_secs(1)).await;
        match (&outcome.result, expected) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err(text)) => assert_eq!(e.message, text, "{case}"),
            (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
        }
        if let Err(e) = &outcome.result
            && e.message.contains("in a row")
        {
            assert!(e.is_retryable(), "{case}: the attempt may be retried");
        }
        assert_eq!(outcome.journaled.len(), journaled, "{case}: {:?}", outcome.journaled);
        assert_eq!(outcome.last_why.as_deref(), why, "{case}");
    }
}

#[test]
fn the_timeout_message_is_one_for_every_step_type() {
    // What a step of each family says it waits for, as their polls word it.
    let table = [
        (Some("dr.example.com. change C123 to be INSYNC (PENDING)"), None, " waiting for dr.example.com."),
        (Some("`app-db-west` in us-west-2 to become writable: status `modifying`"), None, " waiting for `app-db-west`"),
        (Some("2 of 3 pods ready; app-7d9f: ImagePullBackOff"), None, " waiting for 2 of 3 pods ready"),
        (Some("pg standby db:5432 to leave recovery"), Some("connection refused"), "; last error: connection refused"),
        (None, Some("Throttling"), "timed out after 5m 00s; last error: Throttling"),
    ];
    for (why, error, expected) in table {
        let message = timeout_message("5m 00s", why, error);
        assert!(message.starts_with("timed out after 5m 00s"), "{message}");
        assert!(message.contains(expected), "{message} lacks {expected}");
    }
    assert_eq!(timeout_message("1m 00s", None, None), "timed out after 1m 00s");
}

#[test]
fn delays_double_and_cap_without_overflow() {
    let policy = WaitPolicy::default();
    let cap = Duration::from_secs(5);
    assert_eq!(policy.delay(1, cap), ms(100));
    assert_eq!(policy.delay(2, cap), ms(200));
    assert_eq!(policy.delay(6, cap), ms(3200));
    assert_eq!(policy.delay(7, cap), cap);
    assert_eq!(policy.delay(u32::MAX, cap), cap);
    assert_eq!(policy.delay(1, ms(50)), ms(50), "an interval under 100 ms is the cap from the start");
}
