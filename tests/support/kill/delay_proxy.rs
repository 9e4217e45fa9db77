//! A protocol-blind TCP proxy that holds chosen requests, or their answers, so that a kill lands
//! where a trial wants it (see [`super`]).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a [`Hold`] delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The request itself, before it is forwarded: a kill meanwhile lands before the effect.
    Request,
    /// The answer to it: the server has acted, the client does not know yet.
    Answer,
}

/// A rule of a [`DelayProxy`]: the client bytes that contain `needle`, from its `from`-th match on
/// (counting from 1), are held for `delay`.
#[derive(Debug, Clone)]
pub struct Hold {
    pub needle: String,
    pub held: Held,
    pub from: usize,
    /// The last match held (counting from 1).
    pub until: usize,
    /// For [`Held::Answer`]: which client chunk's answer is held, counted from the matching one (0)
    /// on the same connection. A prepared statement's parse carries the SQL, its execution
    /// (the next chunk, 1) does not.
    pub chunks_later: usize,
    pub delay: Duration,
}

impl Hold {
    /// Holds the request containing `needle` (every match) for `delay`.
    pub fn request(needle: &str, delay: Duration) -> Hold {
        Hold { needle: needle.into(), held: Held::Request, from: 1, until: usize::MAX, chunks_later: 0, delay }
    }

    /// Holds the answer to the request containing `needle` (every match) for `delay`.
    pub fn answer(needle: &str, delay: Duration) -> Hold {
        Hold { needle: needle.into(), held: Held::Answer, from: 1, until: usize::MAX, chunks_later: 0, delay }
    }

    /// Only from the `n`-th match on.
    pub fn since_match(mut self, n: usize) -> Hold {
        self.from = n;
        self
    }

    /// Holds the answer to the `n`-th client chunk after the match on its connection instead.
    pub fn chunks_later(mut self, n: usize) -> Hold {
        self.chunks_later = n;
        self
    }

    /// Only the `n`-th match.
    pub fn only_match(mut self, n: usize) -> Hold {
        (self.from, self.until) = (n, n);
        self
    }
}

struct Rules {
    holds: Vec<Hold>,
    matches: Vec<AtomicUsize>,
}

impl Rules {
    /// The delays the client bytes `chunk` trigger: (before forwarding, before the next answer);
    /// `armed` holds the answer holds waiting for a later chunk of the connection (chunks to go, delay).
    fn delays(&self, chunk: &[u8], armed: &mut Vec<(usize, Duration)>) -> (Duration, Duration) {
        let (mut request, mut answer) = (Duration::ZERO, Duration::ZERO);
        for (later, delay) in armed.iter_mut() {
            *later -= 1;
            if *later == 0 {
                answer = answer.max(*delay);
            }
        }
        armed.retain(|(later, _)| *later > 0);
        for (hold, count) in self.holds.iter().zip(&self.matches) {
            let needle = hold.needle.as_bytes();
            if !chunk.windows(needle.len()).any(|w| w == needle) {
                continue;
            }
            let nth = count.fetch_add(1, Ordering::SeqCst) + 1;
            if (hold.from..=hold.until).contains(&nth) {
                match hold.held {
                    Held::Request => request = request.max(hold.delay),
                    Held::Answer if hold.chunks_later > 0 => armed.push((hold.chunks_later, hold.delay)),
                    Held::Answer => answer = answer.max(hold.delay),
                }
            }
        }
        (request, answer)
    }
}

/// A protocol-blind TCP proxy on 127.0.0.1 in front of `upstream` (PostgreSQL, moto, the kube
/// emulator) that delays the requests its [`Hold`]s match, or their answers. One thread pair per
/// connection; it stops accepting when dropped.
pub struct DelayProxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    /// How many times each hold matched so far.
    rules: Arc<Rules>,
    log: Arc<Mutex<Vec<String>>>,
}

impl DelayProxy {
    /// Starts a proxy to `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str, holds: Vec<Hold>) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let matches = holds.iter().map(|_| AtomicUsize::new(0)).collect();
        let rules = Arc::new(Rules { holds, matches });
        let log = Arc::new(Mutex::new(Vec::new()));
        let (upstream, stopped, shared, logged) = (upstream.to_string(), stop.clone(), rules.clone(), log.clone());
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(&upstream) else { continue };
                        pump(client, server, shared.clone(), logged.clone());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        DelayProxy { port, stop, rules, log }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// How many client chunks matched hold `index` so far.
    pub fn matched(&self, index: usize) -> usize {
        self.rules.matches[index].load(Ordering::SeqCst)
    }

    /// The holds applied, one a line, for failure messages.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().iter().map(|l| format!("  {l}\n")).collect()
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Copies bytes both ways between `client` and `server`, applying the rules to the client's bytes.
fn pump(mut client: TcpStream, mut server: TcpStream, rules: Arc<Rules>, log: Arc<Mutex<Vec<String>>>) {
    let answer_delay = Arc::new(Mutex::new(Duration::ZERO));
    let (mut client_read, mut server_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let pending = answer_delay.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        let mut armed = Vec::new();
        while let Ok(n @ 1..) = client_read.read(&mut buf) {
            let (request, answer) = rules.delays(&buf[..n], &mut armed);
            if !request.is_zero() || !answer.is_zero() {
                let head = String::from_utf8_lossy(&buf[..n.min(80)]).replace(['\r', '\n', '\0'], " ");
                log.lock().unwrap().push(format!("request held {request:?}, answer held {answer:?}: {head}"));
            }
            std::thread::sleep(request);
            if !answer.is_zero() {
                *pending.lock().unwrap() = answer; // an HTTP body may follow its head in another chunk
            }
            if server_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server_write.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = server.read(&mut buf) {
            let delay = std::mem::take(&mut *answer_delay.lock().unwrap());
            std::thread::sleep(delay);
            if client.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = client.shutdown(Shutdown::Write);
    });
}
