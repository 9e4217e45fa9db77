//! SDK calls that carry a secret value, with the SDK's trace-level dumps silenced.
//!
//! At `RUST_LOG=trace` (or `-vvv`) the SDK logs each request and response. Secret bodies are
//! redacted by default, but the SDK's own switches `LOG_SENSITIVE_BODIES=true` and
//! `LOG_SIGNABLE_BODY=true` print GetSecretValue's answer and PutSecretValue's signed body, and the
//! orchestrator's request dump shows any body still in memory when it is sent. [`call`] polls an
//! SDK call under a subscriber that forwards everything to the current one except TRACE events and
//! spans of the SDK's crates, so the rest of the log (drctl's lines, the SDK's debug lines about
//! retries) stays as configured, and no switch makes drctl print a secret.

use std::future::Future;

use tracing::instrument::WithSubscriber;
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};

/// Crates whose TRACE output may quote request or response bodies.
const HIDDEN_TARGETS: &[&str] = &["aws_smithy_", "aws_sigv4", "aws_runtime", "aws_sdk_"];

/// Runs `future` (an SDK call) with the SDK's trace-level dumps dropped.
pub(super) async fn call<F: Future>(future: F) -> F::Output {
    let inner = tracing::dispatcher::get_default(Dispatch::clone);
    if inner.is::<tracing::subscriber::NoSubscriber>() {
        return future.await;
    }
    future.with_subscriber(Quiet { inner, max_level: LevelFilter::current() }).await
}

fn hidden(metadata: &Metadata<'_>) -> bool {
    *metadata.level() == Level::TRACE && HIDDEN_TARGETS.iter().any(|t| metadata.target().starts_with(t))
}

/// Forwards to `inner`, except what [`hidden`] drops. (`current_span` keeps its default: the
/// `tracing_core` type it returns is not re-exported by `tracing`, and the subscriber's registry
/// tracks the current span itself through `enter` and `exit`.)
struct Quiet {
    inner: Dispatch,
    max_level: LevelFilter,
}

impl Subscriber for Quiet {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if hidden(metadata) { Interest::never() } else { self.inner.register_callsite(metadata) }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        !hidden(metadata) && self.inner.enabled(metadata)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max_level)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.inner.new_span(span)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.inner.record(span, values)
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.inner.record_follows_from(span, follows)
    }

    fn event(&self, event: &Event<'_>) {
        if !hidden(event.metadata()) {
            self.inner.event(event)
        }
    }

    fn enter(&self, span: &Id) {
        self.inner.enter(span)
    }

    fn exit(&self, span: &Id) {
        self.inner.exit(span)
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.inner.clone_span(id)
    }

    fn try_close(&self, id: Id) -> bool {
        self.inner.try_close(id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Records the level and target of each event.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<String>>>);

    impl Subscriber for Seen {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let m = event.metadata();
            self.0.lock().unwrap().push(format!("{} {}", m.level(), m.target()));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[tokio::test]
    async fn drops_sdk_trace_events_only() {
        let seen = Seen::default();
        let _guard = tracing::dispatcher::set_default(&Dispatch::new(seen.clone()));
        call(async {
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "transmitting request");
            tracing::trace!(target: "aws_sigv4::http_request::sign", "signing request");
            tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "beginning attempt #1");
            tracing::trace!(target: "drctl::steps", "a drctl line");
        })
        .await;
        tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "outside a quiet call");
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                "DEBUG aws_smithy_runtime::client::orchestrator",
                "TRACE drctl::steps",
                "TRACE aws_smithy_runtime::client::orchestrator"
            ]
        );
    }
}
