//! The tests' HTTP/1.1 server: [`HttpServer`] listens on a free port of 127.0.0.1, answers each
//! request with what a handler closure returns ([`Reply`]: status, headers, body, delay) and
//! records it ([`Request`]: method, target, path, query, headers, body, when it arrived and was
//! answered, the status). It is stopped when dropped.
//!
//! One copy serves every test: the integration tests reach it as `support::http` (the recording
//! `support::Server` and the fault proxy are built on it) and the library's unit tests include this
//! file from `src/steps/test_support.rs` with `#[path]`, so it uses nothing but std and tokio.
//!
//! Every response carries `Content-Length` and `Connection: close`, and the connection is closed
//! after it, so client connection pools never reuse a connection the server is about to close.
//! Request bodies are read by `Content-Length` only (no chunked uploads).

// Real time is the point here: requests are timed on real sockets, not on a run's clock.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)]

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

// ---------------------------------------------------------------------------------------------
// The wire: reading a request, writing a reply
// ---------------------------------------------------------------------------------------------

/// A request as read off the wire: header names as sent, in order; the body as bytes.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: String,
    /// The request target as sent: path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// The first of `headers` called `name` (any case).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Where the body starts: just after the head's `\r\n\r\n`, if `buf` holds it.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The start line and the headers of a request's or a response's head.
pub fn parse_head(head: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default().to_string();
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
    (start, headers)
}

/// Reads one request, its body by `Content-Length` (a chunked body is left unread: callers that
/// cannot take one check `Transfer-Encoding`); `None` if the client left before it was whole.
pub async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<RawRequest>> {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(end) = head_end(&buf) {
            break end;
        }
        if !read_more(stream, &mut buf).await? {
            return Ok(None);
        }
    };
    let (start, headers) = parse_head(&buf[..end]);
    let length: usize = match header(&headers, "transfer-encoding") {
        Some(_) => 0,
        None => header(&headers, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0),
    };
    while buf.len() < end + length {
        if !read_more(stream, &mut buf).await? {
            return Ok(None);
        }
    }
    let mut parts = start.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    Ok(Some(RawRequest { method, target, headers, body: buf[end..end + length].to_vec() }))
}

/// Appends what `stream` has next to `buf`; false once the peer has closed.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

/// A response to give: a status, headers, a body, and how long to wait before giving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Besides `Content-Length` and `Connection`, which are always set.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    /// A reply with `status`, a `Content-Type` and a body, at once.
    pub fn new(status: u16, content_type: &str, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    /// A `text/plain` reply.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply::new(status, "text/plain", body)
    }

    /// The same reply, given `delay` after the request was read.
    pub fn after(self, delay: Duration) -> Reply {
        Reply { delay, ..self }
    }

    /// The response's bytes; the body left out (its length kept) when `with_body` is false, as
    /// for a `HEAD` request.
    pub fn encode(&self, with_body: bool) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            400 => "Bad Request",
            404 => "Not Found",
            429 => "Too Many Requests",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Status",
        };
        let mut out = format!("HTTP/1.1 {} {reason}\r\n", self.status);
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", self.body.len()));
        let mut bytes = out.into_bytes();
        if with_body {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }

    /// Waits the reply's delay, then writes it to `stream`.
    pub async fn send(&self, stream: &mut TcpStream, with_body: bool) -> std::io::Result<()> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        stream.write_all(&self.encode(with_body)).await?;
        stream.flush().await
    }
}

/// A handler that answers `statuses` in turn, then repeats the last one, each with body `ok`.
pub fn statuses(statuses: &[u16]) -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
    assert!(!statuses.is_empty(), "statuses needs at least one status");
    let (statuses, count) = (statuses.to_vec(), AtomicUsize::new(0));
    move |_| Reply::text(statuses[count.fetch_add(1, Ordering::SeqCst).min(statuses.len() - 1)], "ok")
}

/// `http://127.0.0.1:PORT{path}` on a port where nothing listens (it was free a moment ago), for
/// tests of connection errors.
pub fn unreachable_url(path: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    format!("http://{}{path}", listener.local_addr().expect("a local address"))
}

// ---------------------------------------------------------------------------------------------
// Accepting connections
// ---------------------------------------------------------------------------------------------

/// Where a server accepts connections.
#[derive(Debug, Clone, Copy)]
pub enum Place {
    /// On a thread of its own so named, with its own tokio runtime, so tests may block (while
    /// drctl runs, say) and still be answered.
    Thread(&'static str),
    /// On the calling tokio runtime: for `#[tokio::test]`s, above all those on a paused clock,
    /// which auto-advances to the next timer (a request's timeout, say) whenever the runtime is
    /// idle, even while a server on another thread has not answered yet.
    Runtime,
}

/// A TCP accept loop on a free port of 127.0.0.1 handing each connection to a handler; stopped
/// when dropped.
pub struct Listener {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Binds a free port of 127.0.0.1 with a backlog for many connections at once (the default 128
/// drops the SYNs beyond it, and clients retry only a second later). Needs a tokio runtime.
fn bind() -> TcpListener {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind 127.0.0.1:0");
    socket.listen(1024).expect("listen on 127.0.0.1")
}

impl Listener {
    /// Starts accepting in `place`, each connection on a task of its own.
    pub fn start<F, Fut>(place: Place, handle: F) -> Listener
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let run = |listener: TcpListener| async move {
            let accept = async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else { continue };
                    tokio::spawn(handle(stream));
                }
            };
            tokio::select! {
                () = accept => {}
                _ = stopped => {}
            }
        };
        let (addr, thread) = match place {
            Place::Runtime => {
                let listener = bind();
                let addr = listener.local_addr().expect("a local address");
                tokio::spawn(run(listener));
                (addr, None)
            }
            Place::Thread(name) => {
                let (addr_tx, addr_rx) = std::sync::mpsc::channel();
                let thread = std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || {
                        let runtime =
                            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
                        runtime.block_on(async move {
                            let listener = bind();
                            addr_tx.send(listener.local_addr().expect("a local address")).expect("the test waits");
                            run(listener).await;
                        });
                        runtime.shutdown_timeout(Duration::from_millis(100));
                    })
                    .expect("spawn the listener thread");
                (addr_rx.recv_timeout(Duration::from_secs(10)).expect("the listener starts"), Some(thread))
            }
        };
        Listener { addr, shutdown: Some(shutdown), thread }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The recording server
// ---------------------------------------------------------------------------------------------

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent, query included.
    pub target: String,
    /// The path without the query.
    pub path: String,
    /// The query without its `?` ("" when there is none).
    pub query: String,
    /// In order, names as sent; see [`Request::header`].
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When the request (head and body) had been read.
    pub arrived: Instant,
    /// When the response was written (or writing it failed); `None` while it is being handled.
    pub completed: Option<Instant>,
    /// The status answered (or about to be).
    pub status: u16,
}

impl Request {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A recording HTTP/1.1 server on 127.0.0.1 that answers from a handler; stopped when dropped.
pub struct HttpServer {
    listener: Listener,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl HttpServer {
    /// Starts on a thread and runtime of its own (see [`Place::Thread`]). The handler is called
    /// with each request the moment it has been read, one request at a time in arrival order
    /// (the record is locked meanwhile: a handler must not read it).
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> HttpServer {
        HttpServer::on(Place::Thread("test-http-server"), handler)
    }

    /// Starts on the calling tokio runtime (see [`Place::Runtime`]); otherwise as [`HttpServer::start`].
    pub fn spawn(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> HttpServer {
        HttpServer::on(Place::Runtime, handler)
    }

    fn on(place: Place, handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> HttpServer {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (record, handler): (_, Arc<Handler>) = (requests.clone(), Arc::new(handler));
        let listener = Listener::start(place, move |stream| {
            let (record, handler) = (record.clone(), handler.clone());
            async move {
                let _ = serve(stream, &record, &*handler).await;
            }
        });
        HttpServer { listener, requests }
    }

    /// `http://127.0.0.1:PORT` followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listener.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests whose path is exactly `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.path == path).collect()
    }

    /// The requests, one a line, for failure messages.
    pub fn log(&self) -> String {
        let requests = self.requests();
        let Some(first) = requests.first().map(|r| r.arrived) else { return "  (no requests)\n".into() };
        let mut out = String::new();
        for r in &requests {
            let at = r.arrived.duration_since(first).as_millis();
            let took = r
                .completed
                .map_or("unfinished".to_string(), |c| format!("{}ms", c.duration_since(r.arrived).as_millis()));
            out.push_str(&format!("  +{at}ms {} {} -> {} ({took})\n", r.method, r.target, r.status));
        }
        out
    }
}

/// Reads one request from `stream`, records it, answers it with `handler`'s reply.
async fn serve(mut stream: TcpStream, requests: &Mutex<Vec<Request>>, handler: &Handler) -> std::io::Result<()> {
    let Some(raw) = read_request(&mut stream).await? else { return Ok(()) };
    let (path, query) = match raw.target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (raw.target.clone(), String::new()),
    };
    let with_body = raw.method != "HEAD";
    let (index, reply) = {
        // Held while the handler decides, so the record's order is the order of decisions.
        let mut requests = requests.lock().unwrap();
        let mut request = Request {
            body: raw.body_text().into_owned(),
            method: raw.method,
            target: raw.target,
            path,
            query,
            headers: raw.headers,
            arrived: Instant::now(),
            completed: None,
            status: 0,
        };
        let reply = handler(&request);
        request.status = reply.status;
        requests.push(request);
        (requests.len() - 1, reply)
    };
    let sent = reply.send(&mut stream, with_body).await;
    requests.lock().unwrap()[index].completed = Some(Instant::now());
    sent?;
    stream.shutdown().await
}
