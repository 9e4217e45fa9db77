//! Plan text → `plan::parse`, the validator behind `plan::load`: any bytes give a plan or
//! diagnostics, never a panic, and the diagnostics render.
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

static REGISTRY: LazyLock<drctl::step::Registry> =
    LazyLock::new(|| drctl::steps::builtin(&drctl::steps::Services::for_checking()));

fuzz_target!(|data: &[u8]| {
    // `plan::load` refuses non-UTF-8 files before parsing; the parser is what is worth fuzzing.
    let Ok(text) = std::str::from_utf8(data) else { return };
    match drctl::plan::parse(Path::new("fuzz.yaml"), text, &REGISTRY) {
        Ok(plan) => {
            // What `plan show` and the engine do next with a valid plan.
            for steps in [&plan.failover, &plan.failback] {
                let graph = drctl::plan::graph::Graph::of(steps);
                if let Ok(order) = graph.order() {
                    let _ = graph.waves(&order);
                }
            }
        }
        Err(errors) => {
            let _ = errors.to_string();
        }
    }
});
