//! What drctl adds to a Kubernetes scale-up, printed (not asserted): a `kube.scale` step run by the
//! engine (kubeconfig loading, observation, the journal's fsyncs, the scale PATCH, the watch until
//! ready, verification) against the least any tool must do in the same run: a bare kube client
//! that PATCHes the scale subresource and watches the Deployment until it is ready.
//!
//! Both run against the repository's Kubernetes API emulator, whose pods become ready 100 ms after
//! they are created, alternating 2 and 3 replicas, interleaved so that both see the same machine.
//! Run: `cargo bench --bench kube` (needs python3; `localstack/setup.sh` is not required).

// Real time is the point here: benchmarks time real work, not a run's clock.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drctl::clock::SystemClock;
use drctl::engine::Engine;
use drctl::engine::events::Silent;
use drctl::engine::lifecycle::{RunOptions, begin};
use drctl::engine::retry::RetryPolicy;
use drctl::engine::state::RunState;
use drctl::journal::StateDir;
use drctl::plan::{Direction, parse};
use drctl::steps::{Services, builtin};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use serde_json::json;

const ROUNDS: usize = 15;

/// The emulator with one cluster, stopped on drop.
struct Emulator(Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_emulator(dir: &Path) -> (Emulator, PathBuf) {
    let kubeconfig = dir.join("kubeconfig.yaml");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("localstack/kube/emulator");
    let mut child = Command::new("python3")
        .arg(script)
        .args(["--cluster", "bench", "--rollout-delay", "0.1", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the emulator starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the ready line");
    (Emulator(child), kubeconfig)
}

fn plan_text(replicas: u32) -> String {
    format!(
        "name: bench\nregions: {{primary: a, secondary: b}}\nkubernetes: {{primary: other, secondary: bench}}\n\
         objectives: {{rto: 15m, rpo: 5m}}\nfailover:\n\
         \x20 - {{id: scale, type: kube.scale, with: {{namespace: default, name: app, replicas: {replicas}}}}}\n\
         failback:\n  - {{id: back, type: wait, with: {{duration: 1ms}}}}\n"
    )
}

/// One `kube.scale` step through the engine, in a fresh state directory. With fresh `services`
/// the step also builds its API client from the kubeconfig, as the first step of a run does.
async fn drctl_scale(dir: &Path, replicas: u32, services: &Services) -> Duration {
    let start = Instant::now();
    let registry = builtin(services);
    let plan = parse(Path::new("bench.yaml"), &plan_text(replicas), &registry).expect("the bench plan is valid");
    let engine = Engine {
        registry,
        clock: Arc::new(SystemClock),
        reporter: Arc::new(Silent),
        retry: RetryPolicy::default(),
        wait: Default::default(),
    };
    let state = StateDir::new(dir);
    let mut active = begin(&state, &plan, Direction::Failover, &SystemClock, &RunOptions::default()).unwrap();
    let mut never = std::pin::pin!(std::future::pending::<String>());
    let outcome = engine.execute(&plan, &mut active.journal, &mut active.view, never.as_mut()).await.unwrap();
    assert_eq!(outcome, RunState::Succeeded);
    start.elapsed()
}

/// The floor: PATCH the scale subresource, watch until the Deployment is ready.
async fn bare_scale(api: &Api<Deployment>, replicas: i32) -> Duration {
    let start = Instant::now();
    let patch = Patch::Merge(json!({ "spec": { "replicas": replicas } }));
    api.patch_scale("app", &PatchParams::default(), &patch).await.expect("scale");
    let ready = move |d: Option<&Deployment>| {
        let Some(d) = d else { return false };
        let status = d.status.as_ref();
        status.and_then(|s| s.observed_generation) >= d.metadata.generation
            && status.and_then(|s| s.ready_replicas) == Some(replicas)
            && status.and_then(|s| s.updated_replicas) == Some(replicas)
            && status.and_then(|s| s.replicas) == Some(replicas)
    };
    await_condition(api.clone(), "app", ready).await.expect("watch");
    start.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let base = std::env::temp_dir().join(format!("drctl-kube-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).unwrap();
    let (_emulator, kubeconfig) = start_emulator(&base);
    // SAFETY: set before the runtime starts any thread; the benchmark is single-threaded until then.
    unsafe { std::env::set_var("KUBECONFIG", &kubeconfig) };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let api: Api<Deployment> = runtime.block_on(async {
        let client = Client::try_default().await.expect("a client");
        let api = Api::namespaced(client, "default");
        let app = json!({ "metadata": { "name": "app" }, "spec": { "replicas": 1,
            "selector": { "matchLabels": { "app": "bench" } },
            "template": { "metadata": { "labels": { "app": "bench" } },
                          "spec": { "containers": [{ "name": "app", "image": "registry.k8s.io/pause:3.10" }] } } } });
        api.create(&PostParams::default(), &serde_json::from_value(app).unwrap()).await.expect("create app");
        api
    });

    let (mut cold, mut warm, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    let shared = Services::for_checking();
    for round in 0..ROUNDS {
        let replicas = 2 + (round % 2) as u32;
        bare.push(runtime.block_on(bare_scale(&api, replicas as i32 + 2)));
        let fresh = Services::for_checking();
        cold.push(runtime.block_on(drctl_scale(&base.join(format!("cold-{round}")), replicas, &fresh)));
        bare.push(runtime.block_on(bare_scale(&api, replicas as i32 + 2 + 2)));
        warm.push(runtime.block_on(drctl_scale(&base.join(format!("warm-{round}")), replicas + 2, &shared)));
    }
    let (bare, cold, warm) = (median(bare), median(cold), median(warm));
    println!("kube.scale against the emulator (pods ready 100 ms after creation), median of {ROUNDS} rounds:");
    println!("  baseline, bare kube client: PATCH scale + watch until ready   {}", ms(bare));
    for (name, time, what) in [
        ("drctl step, client already built", warm, "observe, journal fsyncs, verify"),
        ("drctl step, client built from kubeconfig", cold, "also kubeconfig, TLS and HTTP client setup"),
    ] {
        println!(
            "  {name:42} {}  adds {} ({:.2}x the baseline): {what}",
            ms(time),
            ms(time.saturating_sub(bare)),
            time.as_secs_f64() / bare.as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}
