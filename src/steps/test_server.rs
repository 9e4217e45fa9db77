//! Test support: a tiny HTTP/1.1 server on 127.0.0.1 that records requests and answers from a
//! script, and a [`StepContext`] on a test clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::clock::{Clock, TokioClock};
use crate::plan::yaml::parse;
use crate::step::{Receipt, Step, StepContext, StepError, StepKind};

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    /// The first header called `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

type Handler = dyn Fn(&Recorded) -> (u16, String) + Send + Sync;

/// A server that lives as long as this value.
pub struct TestServer {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Answers each request with what `handler` returns (status, body).
    pub async fn start(handler: impl Fn(&Recorded) -> (u16, String) + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (recorded, handler) = (recorded.clone(), handler.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &recorded, &*handler).await;
                });
            }
        });
        TestServer { addr, requests, task }
    }

    /// Answers with `statuses` in turn, then repeats the last one; bodies are `ok`.
    pub async fn statuses(statuses: &[u16]) -> TestServer {
        let statuses = statuses.to_vec();
        let count = std::sync::atomic::AtomicUsize::new(0);
        TestServer::start(move |_| {
            let i = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (statuses[i.min(statuses.len() - 1)], "ok".to_string())
        })
        .await
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(mut stream: TcpStream, recorded: &Mutex<Vec<Recorded>>, handler: &Handler) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, path) = (first.next().unwrap_or_default().to_string(), first.next().unwrap_or_default().to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
    let request = Recorded { method, path, headers, body };
    let (status, body) = handler(&request);
    let is_head = request.method == "HEAD";
    recorded.lock().unwrap().push(request);
    let mut reply = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    if !is_head {
        reply.push_str(&body);
    }
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

/// The wall-clock time test clocks start at: 2025-01-01T12:00:00Z.
pub fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_732_800)
}

/// A context for step `step` of run `run-1`, first started `ago` before `t0()`, on a [`TokioClock`].
pub fn ctx_started(ago: Duration) -> StepContext {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(t0()));
    StepContext { run_id: "run-1".into(), step_id: "step".into(), attempt: 1, first_started_at: t0() - ago, clock }
}

/// A context for a step that starts now.
pub fn ctx() -> StepContext {
    ctx_started(Duration::ZERO)
}

/// An HTTP client that ignores proxy settings, so tests reach 127.0.0.1 directly.
pub fn client() -> reqwest::Client {
    super::client_builder().no_proxy().build().unwrap()
}

/// Builds a step of `kind` from YAML `with:` parameters.
pub fn build(kind: &dyn StepKind, yaml: &str) -> Box<dyn Step> {
    let node = parse(yaml).unwrap();
    let plan = crate::plan::Plan::minimal("test", "us-east-1", "us-west-2");
    let context = crate::step::BuildContext { plan: &plan, direction: crate::plan::Direction::Failover };
    match kind.build(&node, &context) {
        Ok(step) => step,
        Err(e) => panic!("{} at {}: {}", e.path, e.pos, e.message),
    }
}

/// The message with which building a step of `kind` from `yaml` fails.
pub fn build_error(kind: &dyn StepKind, yaml: &str) -> String {
    let node = parse(yaml).unwrap();
    match kind.check(&node) {
        Ok(()) => panic!("expected {yaml:?} to be rejected"),
        Err(e) => e.message,
    }
}

/// Polls `step` as the engine does (at once, then backing off; a few retryable errors tolerated)
/// until done, on the context's clock.
pub async fn settle(step: &dyn Step, ctx: &StepContext, receipt: &Receipt) -> Result<(), StepError> {
    struct Unjournaled;
    #[async_trait::async_trait]
    impl crate::engine::wait::WaitJournal for Unjournaled {
        async fn wait_error(&self, _: &StepError, _: u32) -> Result<(), StepError> {
            Ok(())
        }
    }
    let policy = crate::engine::wait::WaitPolicy::default();
    crate::engine::wait::wait(step, ctx, receipt, policy, &Unjournaled, &Default::default()).await
}
