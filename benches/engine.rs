//! The engine's own cost, printed (not asserted): wall time per step for 200 instant steps as a wide
//! graph and as a long chain, and the journal's append latency with the sync to disk.
//!
//! Run: `cargo bench --bench engine` (set `DRCTL_BENCH_DIR` to measure another filesystem).
//! Each figure is compared with a baseline measured in the same run: the bare `fsync` of a small
//! append to a file in the same directory, which is the floor any durable journal pays.

// Real time is the point here: benchmarks time real work, not a run's clock.
#![allow(clippy::disallowed_methods)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use drctl::clock::SystemClock;
use drctl::engine::Engine;
use drctl::engine::events::Silent;
use drctl::engine::lifecycle::{RunOptions, begin};
use drctl::engine::retry::RetryPolicy;
use drctl::engine::state::RunState;
use drctl::journal::{Journal, Record, StateDir};
use drctl::plan::{Direction, parse};
use drctl::step::{BuildContext, Observation, Outputs, Receipt, Registry, Step, StepContext, StepError, TypedStep};

const STEPS: usize = 200;
const ROUNDS: usize = 5;
const APPENDS: usize = 1000;

/// A step that does nothing: what remains is the engine's cost.
struct Noop;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoParams {}

impl TypedStep for Noop {
    type Params = NoParams;
    const NAME: &'static str = "noop";
    const SUMMARY: &'static str = "Does nothing.";
    const OUTPUTS: &'static [drctl::step::OutputSpec] = &[];

    fn build(&self, _: NoParams, _: &BuildContext) -> Box<dyn Step> {
        Box::new(NoopStep)
    }
}

struct NoopStep;

#[async_trait]
impl Step for NoopStep {
    fn describe(&self) -> String {
        "nothing".into()
    }
    async fn observe(&self, _: &StepContext) -> Result<Observation, StepError> {
        Ok(Observation::NotDone)
    }
    async fn act(&self, _: &StepContext) -> Result<Receipt, StepError> {
        Ok(Receipt::NONE)
    }
    async fn verify(&self, _: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        Ok(Outputs::new())
    }
}

fn plan_text(chain: bool) -> String {
    let mut text =
        String::from("name: bench\nregions: {primary: a, secondary: b}\nobjectives: {rto: 15m, rpo: 5m}\nfailover:\n");
    for i in 0..STEPS {
        let after = if chain && i > 0 { format!(", after: [s{}]", i - 1) } else { String::new() };
        text.push_str(&format!("  - {{id: s{i}, type: noop{after}}}\n"));
    }
    text.push_str("failback:\n  - {id: back, type: noop}\n");
    text
}

fn run_plan(runtime: &tokio::runtime::Runtime, dir: &Path, chain: bool) -> Duration {
    let mut registry = Registry::default();
    registry.register(Noop);
    let plan = parse(Path::new("bench.yaml"), &plan_text(chain), &registry).expect("the bench plan is valid");
    let engine = Engine {
        registry,
        clock: Arc::new(SystemClock),
        reporter: Arc::new(Silent),
        retry: RetryPolicy::default(),
        wait: Default::default(),
    };
    let state = StateDir::new(dir);
    runtime.block_on(async {
        let start = Instant::now();
        let mut active = begin(&state, &plan, Direction::Failover, &SystemClock, &RunOptions::default()).unwrap();
        let mut never = std::pin::pin!(std::future::pending::<String>());
        let outcome = engine.execute(&plan, &mut active.journal, &mut active.view, never.as_mut()).await.unwrap();
        assert_eq!(outcome, RunState::Succeeded);
        start.elapsed()
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn fresh_dir(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(format!("{name}-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The floor: append a journal-sized line to a file and fsync it.
fn bare_fsync(dir: &Path) -> Vec<Duration> {
    let mut file = OpenOptions::new().create(true).append(true).open(dir.join("baseline")).unwrap();
    let line = [b'x'; 120];
    let mut samples: Vec<Duration> = (0..APPENDS)
        .map(|_| {
            let start = Instant::now();
            file.write_all(&line).unwrap();
            file.sync_data().unwrap();
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples
}

fn journal_appends(dir: &Path) -> Vec<Duration> {
    let first = Record::StepStarted { step: "first".into(), attempt: 1 };
    let (mut journal, _) = Journal::create(&dir.join("journal.jsonl"), std::time::SystemTime::now(), first).unwrap();
    let mut samples: Vec<Duration> = (0..APPENDS)
        .map(|i| {
            let record = Record::StepStarted { step: format!("step-{i}"), attempt: 1 };
            let start = Instant::now();
            journal.append(std::time::SystemTime::now(), vec![record]).unwrap();
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let base = std::env::var_os("DRCTL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("drctl-bench"));
    std::fs::create_dir_all(&base).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!(
        "drctl engine benchmark: {STEPS} instant steps, best and median of {ROUNDS} rounds; journal in {}",
        base.display()
    );

    let baseline = bare_fsync(&fresh_dir(&base, "fsync"));
    let floor = percentile(&baseline, 0.5);
    println!("\nbaseline: bare append + fsync   p50 {}  p99 {}", us(floor), us(percentile(&baseline, 0.99)));

    let journal = journal_appends(&fresh_dir(&base, "journal"));
    let (p50, p99) = (percentile(&journal, 0.5), percentile(&journal, 0.99));
    println!(
        "journal append (1 record, synced) p50 {}  p99 {}  ({:.2}x the bare fsync at p50)",
        us(p50),
        us(p99),
        p50.as_secs_f64() / floor.as_secs_f64()
    );

    println!();
    for (name, chain) in [("wide graph (200 independent steps)", false), ("long chain (200 steps in a row)", true)] {
        let mut times: Vec<Duration> =
            (0..ROUNDS).map(|_| run_plan(&runtime, &fresh_dir(&base, "run"), chain)).collect();
        times.sort();
        let (best, median) = (times[0], times[ROUNDS / 2]);
        let per_step = median / STEPS as u32;
        println!(
            "{name:38} total {:>8.1} ms (best {:.1} ms)  per step {:>9}  = {:.1} bare fsyncs per step",
            median.as_secs_f64() * 1e3,
            best.as_secs_f64() * 1e3,
            us(per_step),
            per_step.as_secs_f64() / floor.as_secs_f64()
        );
    }
    println!(
        "\n(a chain syncs start, act and success of each step in turn; a wide graph group-commits concurrent steps' records)"
    );
    let _ = std::fs::remove_dir_all(&base);
}
