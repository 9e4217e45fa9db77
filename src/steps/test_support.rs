//! Support for the step types' unit tests: contexts on a test clock, a proxy-free HTTP client,
//! building steps from YAML, settling them as the engine does, and the tests' HTTP server.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::{Clock, TokioClock};
use crate::plan::yaml::parse;
use crate::step::{Receipt, Step, StepContext, StepError, StepKind};

/// The HTTP server the integration tests use too: one copy, in `tests/support/http.rs`.
#[path = "../../tests/support/http.rs"]
pub mod http;

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

/// The tests' HTTP server's own tests: here, so they run once, not in every integration test binary.
mod http_tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use super::http::{HttpServer, Reply, statuses};

    /// Writes `pieces` to `server` one at a time, a little apart, and reads the whole answer.
    fn exchange(server: &HttpServer, pieces: &[&str]) -> String {
        let mut stream = std::net::TcpStream::connect(server.url("").trim_start_matches("http://")).unwrap();
        for piece in pieces {
            stream.write_all(piece.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn a_request_in_pieces_is_read_whole_recorded_and_answered_after_the_delay() {
        let server = HttpServer::start(|r| {
            let status = if r.query == "x=1" && r.body == "hello" { 201 } else { 400 };
            Reply::new(status, "application/json", "{}").after(Duration::from_millis(50))
        });
        let answer = exchange(
            &server,
            &["POST /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-Token: t\r\nContent-Length: 5\r\n", "\r\nhel", "lo"],
        );
        assert_eq!(
            answer,
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
        let requests = server.requests();
        let r = &requests[0];
        assert_eq!(
            (r.method.as_str(), r.target.as_str(), r.path.as_str(), r.query.as_str(), r.body.as_str(), r.status),
            ("POST", "/a/b?x=1", "/a/b", "x=1", "hello", 201)
        );
        assert_eq!((r.header("x-token"), r.header("HOST")), (Some("t"), Some("h")));
        assert!(r.completed.unwrap() - r.arrived >= Duration::from_millis(50), "{}", server.log());
        assert_eq!(server.requests_to("/a/b").len(), 1);
    }

    #[test]
    fn statuses_take_turns_and_head_gets_the_length_without_the_body() {
        let server = HttpServer::start(statuses(&[503, 200]));
        assert_eq!(
            exchange(&server, &["HEAD /h HTTP/1.1\r\n\r\n"]),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        );
        for _ in 0..2 {
            let answer = exchange(&server, &["GET /g HTTP/1.1\r\n\r\n"]);
            assert!(answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("\r\n\r\nok"), "{answer}");
        }
        let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [503, 200, 200]);
    }

    #[test]
    fn a_dropped_server_stops_listening() {
        let server = HttpServer::start(statuses(&[200]));
        let addr = server.url("").trim_start_matches("http://").to_string();
        drop(server);
        assert!(std::net::TcpStream::connect(&addr).is_err(), "{addr} still accepts connections");
    }
}
