//! Plan validation's cost, printed (not asserted): generated plans of 200, 2,000 and 20,000 steps
//! (several step types, `after` edges that chain and fan in, templates naming a dependency and an
//! ancestor further back), each validated in full as `drctl plan validate` does.
//!
//! Run: `cargo bench --bench validate`. Each figure is compared with a baseline measured in the same
//! run: parsing the same text into the positioned YAML tree only, which validation starts with.
//! Validation is linear when the time per step stays flat from 200 to 20,000 steps.

// Real time is the point here: benchmarks time real work, not a run's clock.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::time::{Duration, Instant};

use drctl::plan::{parse, yaml};
use drctl::steps::{Services, builtin};

const SIZES: [usize; 3] = [200, 2_000, 20_000];

/// A plan with `n` failover steps.
fn plan(n: usize) -> String {
    let mut text = String::from(
        "name: bench\nregions: {primary: us-east-1, secondary: us-west-2}\nobjectives: {rto: 15m, rpo: 5m}\nfailover:\n",
    );
    for i in 0..n {
        text.push_str(&format!("  - id: step-{i}\n"));
        let mut after = Vec::new();
        if i > 0 {
            after.push(format!("step-{}", i - 1));
        }
        if i > 10 {
            after.push(format!("step-{}", i / 2));
        }
        if !after.is_empty() {
            text.push_str(&format!("    after: [{}]\n", after.join(", ")));
        }
        if i == n / 2 {
            text.push_str("    marks_recovery: true\n");
        }
        match i % 4 {
            0 => text.push_str("    type: wait\n    with: {duration: 1s, reason: \"settle {{ plan.name }}\"}\n"),
            1 => text.push_str(
                "    type: http.check\n    timeout: 2m\n    with: {url: \"http://127.0.0.1:9/health\", expect_status: [200, 204], interval: 500ms}\n",
            ),
            2 => text.push_str(&format!(
                "    type: http.request\n    with:\n      method: PUT\n      url: \"http://127.0.0.1:9/x/{{{{ steps.step-{}.outputs.status }}}}\"\n      body: \"{{{{ run.id }}}}\"\n",
                i - 1
            )),
            _ => {
                // An ancestor three steps back, through the chain.
                text.push_str(&format!(
                    "    type: command\n    with:\n      run: [echo, \"{{{{ steps.step-{}.outputs.status }}}}\"]\n",
                    i - 2
                ))
            }
        }
    }
    text.push_str("failback:\n  - id: back\n    type: wait\n    with: {duration: 1s}\n");
    text
}

/// The fastest of `rounds` runs of `f`.
fn fastest(rounds: usize, mut f: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .expect("at least one round")
}

fn main() {
    let registry = builtin(&Services::for_checking());
    println!("plan validation (fastest of 3 rounds; baseline: the YAML parse alone)");
    println!(
        "{:>8} {:>10} {:>12} {:>12} {:>14} {:>10}",
        "steps", "bytes", "validate", "yaml parse", "per step", "ratio"
    );
    for n in SIZES {
        let text = plan(n);
        let path = Path::new("bench.yaml");
        let plan = parse(path, &text, &registry).unwrap_or_else(|e| panic!("the generated plan is valid:\n{e}"));
        assert_eq!(plan.failover.len(), n);
        let validate = fastest(3, || {
            std::hint::black_box(parse(path, &text, &registry).is_ok());
        });
        let baseline = fastest(3, || {
            std::hint::black_box(yaml::parse(&text).is_ok());
        });
        println!(
            "{n:>8} {:>10} {:>9.1} ms {:>9.1} ms {:>11.1} µs {:>9.1}×",
            text.len(),
            validate.as_secs_f64() * 1e3,
            baseline.as_secs_f64() * 1e3,
            validate.as_secs_f64() * 1e6 / n as f64,
            validate.as_secs_f64() / baseline.as_secs_f64()
        );
    }
}
