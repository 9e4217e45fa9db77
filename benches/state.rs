//! S3 state against local state, printed (not asserted):
//! - journal append latency (one record, durable), S3 through a proxy that adds 20 ms to every
//!   request, against the local directory's `fsync`ed append;
//! - a 200-step wide plan whose HTTP steps each take 200 ms: wall time with local state and with S3
//!   state (20 ms per request), and the PUTs the S3 run made per step (the target: about one per
//!   wave of group-committed records, and at most 1.5× the local wall time).
//!
//! Run: `cargo bench --bench state` (needs moto in `.venv`, as `localstack/setup.sh` installs it).
// Real processes and servers run in real time here: wall and monotonic clocks are the point.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/support/moto.rs"]
#[allow(dead_code)]
mod moto;

#[path = "../tests/support/http.rs"]
mod http;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use drctl::clock::SystemClock;
use drctl::engine::Engine;
use drctl::engine::events::Silent;
use drctl::engine::lifecycle::{RunOptions, begin};
use drctl::engine::retry::RetryPolicy;
use drctl::engine::state::RunState;
use drctl::journal::{Record, StateStore};
use drctl::plan::{Direction, parse};
use drctl::state_s3::{S3Location, S3Store};
use http::{HttpServer, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const DELAY: Duration = Duration::from_millis(20);
const APPENDS: usize = 200;
const STEPS: usize = 200;
const STEP_MS: u64 = 200;
const ROUNDS: usize = 5;

/// A TCP proxy that holds every request for [`DELAY`] before passing it on, and counts PUTs.
struct DelayProxy {
    addr: std::net::SocketAddr,
    puts: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl DelayProxy {
    async fn start(upstream: std::net::SocketAddr) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (puts, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (p, r) = (puts.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (p, r) = (p.clone(), r.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        pipe(client, server, p, r).await;
                    }
                });
            }
        });
        DelayProxy { addr, puts, requests }
    }
}

/// Copies both ways; the first bytes of each request (after a response, or at the start) wait DELAY.
async fn pipe(client: TcpStream, server: TcpStream, puts: Arc<AtomicUsize>, requests: Arc<AtomicUsize>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let new_request = Arc::new(AtomicBool::new(true));
    let flag = new_request.clone();
    let upstream = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if flag.swap(false, Ordering::SeqCst) {
                requests.fetch_add(1, Ordering::SeqCst);
                if buffer[..n].starts_with(b"PUT ") {
                    puts.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(DELAY).await;
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    };
    let downstream = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            new_request.store(true, Ordering::SeqCst);
            if client_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(upstream, downstream);
}

/// An HTTP server that answers every request after STEP_MS, on the bench's runtime.
fn slow_server(runtime: &tokio::runtime::Runtime) -> HttpServer {
    let _runtime = runtime.enter();
    HttpServer::spawn(|_| Reply::text(200, "ok").after(Duration::from_millis(STEP_MS)))
}

fn s3_store(runtime: &tokio::runtime::Runtime, endpoint: &str, prefix: &str) -> StateStore {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-west-2"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "bench"));
    let shared = runtime.block_on(loader.load());
    let client =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&shared).force_path_style(true).build());
    let location = S3Location::parse(&format!("s3://bench/{prefix}")).unwrap();
    S3Store::with_client(client, Some("us-west-2".into()), location).into()
}

fn appends(store: &StateStore) -> Vec<Duration> {
    let run = format!("bench-failover-20270101T000000Z-{:04x}", fastrand::u16(..));
    let first = Record::StepStarted { step: "first".into(), attempt: 1 };
    let (mut journal, _) = store.create_journal(&run, SystemTime::now(), first).unwrap();
    let mut samples: Vec<Duration> = (0..APPENDS)
        .map(|i| {
            let record = Record::StepStarted { step: format!("step-{i}"), attempt: 1 };
            let start = Instant::now();
            journal.append(SystemTime::now(), vec![record]).unwrap();
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn plan_text(server: &str) -> String {
    let mut text =
        String::from("name: bench\nregions: {primary: a, secondary: b}\nobjectives: {rto: 15m, rpo: 5m}\nfailover:\n");
    for i in 0..STEPS {
        text.push_str(&format!("  - {{id: s{i}, type: http.request, with: {{method: GET, url: '{server}/s{i}'}}}}\n"));
    }
    text.push_str("failback:\n  - {id: back, type: wait, with: {duration: 1ms}}\n");
    text
}

fn run_plan(runtime: &tokio::runtime::Runtime, store: &StateStore, text: &str) -> Duration {
    let registry = drctl::steps::builtin(&drctl::steps::Services::for_checking());
    let plan = parse(Path::new("bench.yaml"), text, &registry).expect("the bench plan is valid");
    let engine = Engine {
        registry,
        clock: Arc::new(SystemClock),
        reporter: Arc::new(Silent),
        retry: RetryPolicy::default(),
        wait: Default::default(),
    };
    runtime.block_on(async {
        let start = Instant::now();
        let mut active = begin(store, &plan, Direction::Failover, &SystemClock, &RunOptions::default()).unwrap();
        let mut never = std::pin::pin!(std::future::pending::<String>());
        let outcome = engine.execute(&plan, &mut active.journal, &mut active.view, never.as_mut()).await.unwrap();
        assert_eq!(outcome, RunState::Succeeded);
        drop(active); // the lock's release belongs to the run
        start.elapsed()
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let moto = moto::Moto::start();
    let upstream: std::net::SocketAddr = moto.url().trim_start_matches("http://").parse().unwrap();
    let proxy = runtime.block_on(DelayProxy::start(upstream));
    let server = slow_server(&runtime);
    assert_eq!(moto.call("PUT", "/bench").0, 200, "create the bucket");
    let base = std::env::temp_dir().join(format!("drctl-state-bench-{}", fastrand::u64(..)));
    println!("drctl state benchmark: S3 on moto behind a proxy adding {} per request", ms(DELAY));

    let local = appends(&StateStore::local(base.join("appends")));
    let s3 = appends(&s3_store(&runtime, &format!("http://{}", proxy.addr), "appends"));
    let (l50, s50) = (percentile(&local, 0.5), percentile(&s3, 0.5));
    println!("\njournal append, {APPENDS} single-record commits:");
    println!("  local (fsync)    p50 {:>9}  p99 {:>9}", ms(l50), ms(percentile(&local, 0.99)));
    println!(
        "  S3 (+{} / req)  p50 {:>9}  p99 {:>9}  ({:.1}x local; {:.1}x the injected delay)",
        ms(DELAY),
        ms(s50),
        ms(percentile(&s3, 0.99)),
        s50.as_secs_f64() / l50.as_secs_f64(),
        s50.as_secs_f64() / DELAY.as_secs_f64()
    );

    let text = plan_text(&server.url(""));
    println!("\n{STEPS}-step wide plan, each step an HTTP GET answered after {STEP_MS} ms; {ROUNDS} rounds:");
    let mut local_times = Vec::new();
    let mut s3_times = Vec::new();
    let mut puts = Vec::new();
    for round in 0..ROUNDS {
        local_times.push(run_plan(&runtime, &StateStore::local(base.join(format!("run-{round}"))), &text));
        let store = s3_store(&runtime, &format!("http://{}", proxy.addr), &format!("run-{round}"));
        let before = (proxy.puts.load(Ordering::SeqCst), proxy.requests.load(Ordering::SeqCst));
        s3_times.push(run_plan(&runtime, &store, &text));
        let after = (proxy.puts.load(Ordering::SeqCst), proxy.requests.load(Ordering::SeqCst));
        puts.push((after.0 - before.0, after.1 - before.1));
    }
    local_times.sort();
    s3_times.sort();
    let (local, s3) = (local_times[ROUNDS / 2], s3_times[ROUNDS / 2]);
    let (put_count, requests) = puts[ROUNDS / 2];
    if std::env::var_os("DRCTL_BENCH_VERBOSE").is_some() {
        println!("  rounds: local {local_times:?}, S3 {s3_times:?}, S3 PUTs and requests {puts:?}");
    }
    let (local_best, s3_best) = (local_times[0], s3_times[0]);
    println!("  local state      median {:>9}  best {:>9}", ms(local), ms(local_best));
    println!(
        "  S3 state         median {:>9}  best {:>9}  ({:.2}x local at the median, {:.2}x at the best; target at most 1.5x)",
        ms(s3),
        ms(s3_best),
        s3.as_secs_f64() / local.as_secs_f64(),
        s3_best.as_secs_f64() / local_best.as_secs_f64()
    );
    println!(
        "  S3 requests      {requests} in all, {put_count} PUTs = {:.3} PUTs per step (lock and journal commits)",
        put_count as f64 / STEPS as f64
    );
    let _ = std::fs::remove_dir_all(&base);
}
