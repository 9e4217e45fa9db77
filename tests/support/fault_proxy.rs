//! A fault-injecting HTTP proxy for the AWS integration tests: it sits between drctl
//! (`--endpoint-url <proxy>`) and moto, answers the requests a decision function picks with a
//! fault of its own (throttling, 503) and forwards every other request unchanged.
//!
//! It knows no AWS protocol: the decision function sees each request (method, target, headers,
//! body) and returns the reply to fake, or `None` to forward. [`Reply`] has ready-made faults for
//! the REST-XML and query protocols (Route53, RDS) and the JSON protocols (Secrets Manager), and
//! [`random_faults`] picks a share of requests with a seeded RNG, so a run is repeatable.
//!
//! Forwarding keeps the method, the request target, every header (`Host` and `Authorization`
//! included, so signatures stay valid) and the body; the answer is moto's status, headers and body.
//! Requests must carry a `Content-Length` body (chunked uploads are answered with 501). It reads
//! requests and writes replies with the tests' HTTP module ([`super::http`]), and like its server
//! closes each connection after its response.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use super::http::Reply;
use super::http::{Listener, Place, RawRequest, head_end, header, parse_head, read_request};

/// A request as the proxy received it.
pub type ProxiedRequest = RawRequest;

impl RawRequest {
    /// The AWS operation, whatever the protocol: `X-Amz-Target`'s operation for JSON protocols
    /// (`GetSecretValue`), the `Action` parameter for the query protocol (`PromoteReadReplica`),
    /// else the method and path for REST protocols (`POST /2013-04-01/hostedzone/Z1/rrset/`).
    pub fn operation(&self) -> String {
        if let Some(target) = self.header("x-amz-target") {
            return target.rsplit('.').next().unwrap_or(target).to_string();
        }
        let query = self.target.split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default();
        let form = if self.header("content-type").is_some_and(|c| c.contains("x-www-form-urlencoded")) {
            self.body_text().into_owned()
        } else {
            String::new()
        };
        let action = [query.as_str(), form.as_str()]
            .into_iter()
            .flat_map(|params| params.split('&'))
            .find_map(|kv| kv.strip_prefix("Action="));
        match action {
            Some(action) => action.to_string(),
            None => format!("{} {}", self.method, self.target.split('?').next().unwrap_or_default()),
        }
    }
}

/// Ready-made faults: responses the proxy gives instead of forwarding.
impl Reply {
    /// AWS throttling for the REST-XML (Route53) and query (RDS) protocols: 400 with error code
    /// `Throttling`, which the SDKs read from `<ErrorResponse><Error><Code>`.
    pub fn xml_throttling() -> Reply {
        let body = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
                    <Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>";
        let mut reply = Reply::new(400, "text/xml", body);
        reply.headers.push(("x-amzn-RequestId".into(), "x".into()));
        reply
    }

    /// AWS throttling for the JSON protocols (Secrets Manager): 400 with `ThrottlingException` in
    /// `x-amzn-ErrorType` and `__type`.
    pub fn json_throttling() -> Reply {
        let mut reply = Reply::new(
            400,
            "application/x-amz-json-1.1",
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
        );
        reply.headers.push(("x-amzn-ErrorType".into(), "ThrottlingException".into()));
        reply.headers.push(("x-amzn-RequestId".into(), "x".into()));
        reply
    }

    /// S3's throttling: 503 `SlowDown` in S3's own error document.
    pub fn s3_slow_down() -> Reply {
        let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        Reply::new(503, "application/xml", body)
    }

    /// 503 with a body no AWS protocol parses, as a load balancer in front of an API might send.
    pub fn service_unavailable() -> Reply {
        Reply::new(503, "text/plain", "Service Unavailable")
    }
}

/// Decides, request by request in arrival order, which to fault and with what.
pub type Decide = dyn FnMut(&ProxiedRequest) -> Option<Reply> + Send;

/// Faults `share` (0 to 1) of the requests, chosen by a RNG seeded with `seed`, each with one of
/// `replies` picked by the same RNG. The same requests in the same order get the same faults.
pub fn random_faults(
    seed: u64,
    share: f64,
    replies: Vec<Reply>,
) -> impl FnMut(&ProxiedRequest) -> Option<Reply> + Send {
    assert!(!replies.is_empty(), "random_faults needs at least one reply");
    let mut rng = fastrand::Rng::with_seed(seed);
    move |_| {
        let fault = rng.f64() < share;
        let reply = replies[rng.usize(..replies.len())].clone();
        fault.then_some(reply)
    }
}

/// Forwards everything: the proxy then only counts and logs.
pub fn no_faults() -> impl FnMut(&ProxiedRequest) -> Option<Reply> + Send {
    |_| None
}

/// One request and how it was answered.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub target: String,
    /// See [`ProxiedRequest::operation`].
    pub operation: String,
    /// The status returned to the client: the fault's, or upstream's (502 when upstream failed).
    pub status: u16,
    /// Whether the proxy answered itself.
    pub faulted: bool,
}

/// A running proxy on 127.0.0.1; stopped when dropped.
pub struct FaultProxy {
    listener: Listener,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
}

struct Shared {
    upstream: String,
    decide: Mutex<Box<Decide>>,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`, as [`super::moto::Moto::url`] gives)
    /// on a free port, on its own thread and runtime, so tests may block while drctl runs.
    pub fn start(upstream: &str, decide: impl FnMut(&ProxiedRequest) -> Option<Reply> + Send + 'static) -> FaultProxy {
        let authority = upstream.trim_start_matches("http://").split('/').next().unwrap_or_default().to_string();
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            upstream: authority,
            decide: Mutex::new(Box::new(decide)),
            exchanges: exchanges.clone(),
        });
        let listener = Listener::start(Place::Thread("fault-proxy"), move |stream| {
            let shared = shared.clone();
            async move {
                let _ = serve(stream, &shared).await;
            }
        });
        FaultProxy { listener, exchanges }
    }

    /// The endpoint URL to give drctl (`--endpoint-url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.listener.addr)
    }

    /// Every request so far, in the order decided.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }

    /// How many requests the proxy received.
    pub fn total(&self) -> usize {
        self.exchanges.lock().unwrap().len()
    }

    /// How many requests the proxy answered with a fault.
    pub fn faulted(&self) -> usize {
        self.exchanges.lock().unwrap().iter().filter(|e| e.faulted).count()
    }

    /// The requests, one a line, for failure messages.
    pub fn log(&self) -> String {
        let exchanges = self.exchanges();
        if exchanges.is_empty() {
            return "  (no requests)\n".into();
        }
        exchanges
            .iter()
            .map(|e| {
                let how = if e.faulted { "faulted" } else { "forwarded" };
                format!("  {} {} [{}] -> {} ({how})\n", e.method, e.target, e.operation, e.status)
            })
            .collect()
    }
}

/// Hop-by-hop headers: the proxy sets its own.
fn hop_by_hop(name: &str) -> bool {
    ["connection", "keep-alive", "proxy-connection", "content-length"].iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// The request as bytes for upstream: as received, with `Connection: close` and the body's length.
fn encode_request(request: &ProxiedRequest) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
    for (name, value) in request.headers.iter().filter(|(n, _)| !hop_by_hop(n)) {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", request.body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&request.body);
    bytes
}

/// Sends `request` upstream and reads the whole answer (upstream closes after it).
async fn forward(upstream: &str, request: &ProxiedRequest) -> std::io::Result<Vec<u8>> {
    let exchange = async {
        let mut stream = TcpStream::connect(upstream).await?;
        stream.write_all(&encode_request(request)).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok(response)
    };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "upstream did not answer in 60 s")))
}

/// The client's response: upstream's status line, headers and body, with `Connection: close` and,
/// unless the body is chunked, its length.
fn relay(response: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = head_end(response)?;
    let (start, headers) = parse_head(&response[..end - 2]);
    let status = start.split(' ').nth(1)?.parse().ok()?;
    let body = &response[end..];
    let chunked = header(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mut out = format!("{start}\r\n");
    for (name, value) in headers.iter().filter(|(n, _)| !hop_by_hop(n)) {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !chunked {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    Some((status, bytes))
}

async fn serve(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let Some(request) = read_request(&mut stream).await? else { return Ok(()) };
    if request.header("transfer-encoding").is_some() {
        Reply::text(501, "the fault proxy forwards Content-Length bodies only").send(&mut stream, true).await?;
        return stream.shutdown().await;
    }
    // Decisions are taken one at a time, in arrival order, so a seeded decision is repeatable.
    let (fault, index) = {
        let fault = (shared.decide.lock().unwrap())(&request);
        let mut exchanges = shared.exchanges.lock().unwrap();
        exchanges.push(Exchange {
            method: request.method.clone(),
            target: request.target.clone(),
            operation: request.operation(),
            status: fault.as_ref().map_or(0, |r| r.status),
            faulted: fault.is_some(),
        });
        (fault, exchanges.len() - 1)
    };
    let (status, bytes) = match fault {
        Some(reply) => {
            tokio::time::sleep(reply.delay).await;
            (reply.status, reply.encode(true))
        }
        None => match forward(&shared.upstream, &request).await.ok().as_deref().and_then(relay) {
            Some(relayed) => relayed,
            None => (502, Reply::text(502, "the fault proxy could not reach upstream").encode(true)),
        },
    };
    shared.exchanges.lock().unwrap()[index].status = status;
    stream.write_all(&bytes).await?;
    stream.flush().await?;
    stream.shutdown().await
}
