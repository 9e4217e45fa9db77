//! The few S3 calls the store makes, with the answers that matter told apart: 412 (a condition
//! failed), 409 (a concurrent conditional write: try again), 404, and everything else. Requests run
//! on the store's own runtime; [`block`] waits for them from synchronous code, inside or outside
//! another runtime.

use std::future::Future;
use std::sync::OnceLock;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::journal::location::S3Location;

/// How a request failed, as far as the store cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 412 Precondition Failed: `If-None-Match: *` met an object, or `If-Match` another ETag.
    PreconditionFailed,
    /// 409 ConditionalRequestConflict: a concurrent conditional write; re-read and retry.
    Conflict,
    /// Anything else (unreachable, denied, throttled beyond the retries...), said for people.
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::PreconditionFailed => f.write_str("412 Precondition Failed"),
            Failure::Conflict => f.write_str("409 ConditionalRequestConflict"),
            Failure::Other(message) => f.write_str(message),
        }
    }
}

/// What a write requires of the object already there.
#[derive(Debug, Clone)]
pub enum Condition {
    /// No object (`If-None-Match: *`).
    Absent,
    /// The object with this ETag (`If-Match`).
    Matches(String),
}

/// Attempts per request, retries of throttling, 5xx and lost connections included: state writes
/// must ride out a bad spell of S3 (the fault tests put 30% failures in front of it: eight
/// attempts all failing is a chance in 15,000), and an unreachable S3 must still be reported
/// within about half a minute, hence short backoffs.
const MAX_ATTEMPTS: u32 = 8;
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);

/// The runtime the store's requests run on.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("drctl-state")
            .enable_all()
            .build()
            .expect("a runtime for the state store starts (threads and timers only)")
    })
}

/// Runs `future` on the store's runtime and waits for it, from any thread (engine tasks included:
/// like a local `fsync`, the wait blocks the caller, never the store's runtime).
pub fn block<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    runtime().spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv().expect("the state store's runtime lives as long as the process")
}

/// Spawns `future` on the store's runtime (the lease's renewals).
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(future)
}

/// An S3 client for `location` through the standard chain (environment, profiles, SSO, instance
/// roles), with its region; path-style addressing when an endpoint is given (moto, MinIO).
pub fn connect(location: &S3Location) -> (aws_sdk_s3::Client, Option<String>) {
    let location = location.clone();
    block(async move {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &location.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(profile) = &location.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &location.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let region = shared.region().map(|r| r.to_string());
        let path_style = shared.endpoint_url().is_some();
        let retry = aws_smithy_types::retry::RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(std::time::Duration::from_millis(100))
            .with_max_backoff(MAX_BACKOFF);
        let config = aws_sdk_s3::config::Builder::from(&shared).force_path_style(path_style).retry_config(retry);
        (aws_sdk_s3::Client::from_conf(config.build()), region)
    })
}

type Response = aws_smithy_runtime_api::http::Response;

fn classify<E>(error: SdkError<E, Response>) -> Failure
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    match status(&error) {
        Some(412) => Failure::PreconditionFailed,
        Some(409) => Failure::Conflict,
        _ => Failure::Other(describe(&error)),
    }
}

/// An SDK error in a line: S3's code and message with the HTTP status, else the whole chain.
fn describe<E>(error: &SdkError<E, Response>) -> String
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    match (error.code(), status(error)) {
        (Some(code), Some(status)) => format!("{code} (HTTP {status}): {}", error.message().unwrap_or("no message")),
        _ => DisplayErrorContext(error).to_string(),
    }
}

/// The HTTP status of a failed request, when a response came back.
fn status<E>(error: &SdkError<E, Response>) -> Option<u16> {
    error.raw_response().map(|r| r.status().as_u16())
}

/// Creates or replaces `key` under `condition`; returns the new ETag. The CRC32 checksum header
/// is sent, as buckets with Object Lock require.
pub async fn put(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    condition: Condition,
) -> Result<String, Failure> {
    let request = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(ByteStream::from(body));
    let replacing = matches!(condition, Condition::Matches(_));
    let request = match condition {
        Condition::Absent => request.if_none_match("*"),
        Condition::Matches(etag) => request.if_match(etag),
    };
    let output = match request.send().await {
        Ok(output) => output,
        // Replacing an object that is gone: it is not the one we hold any more.
        Err(e) if replacing && status(&e) == Some(404) => return Err(Failure::PreconditionFailed),
        Err(e) => return Err(classify(e)),
    };
    Ok(output.e_tag().unwrap_or_default().to_string())
}

/// Reads `key`: its bytes and ETag, or `None` if there is no such object.
pub async fn get(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Option<(Vec<u8>, String)>, Failure> {
    match client.get_object().bucket(bucket).key(key).send().await {
        Ok(output) => {
            let etag = output.e_tag().unwrap_or_default().to_string();
            let bytes = output.body.collect().await.map_err(|e| Failure::Other(e.to_string()))?;
            Ok(Some((bytes.into_bytes().to_vec(), etag)))
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) || status(&e) == Some(404) => Ok(None),
        Err(e) => Err(classify(e)),
    }
}

/// Deletes `key` if its ETag is still `etag` (`If-Match`).
pub async fn delete(client: &aws_sdk_s3::Client, bucket: &str, key: &str, etag: &str) -> Result<(), Failure> {
    match client.delete_object().bucket(bucket).key(key).if_match(etag).send().await {
        Ok(_) => Ok(()),
        Err(e) if status(&e) == Some(404) => Ok(()),
        Err(e) => Err(classify(e)),
    }
}

/// Every key under `prefix` (at most `max` when given), in S3's order (sorted).
pub async fn list(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    max: Option<i32>,
) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let mut request = client.list_objects_v2().bucket(bucket).prefix(prefix);
        if let Some(max) = max {
            request = request.max_keys(max);
        }
        if let Some(token) = token.take() {
            request = request.continuation_token(token);
        }
        let page = request.send().await.map_err(|e| describe(&e))?;
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        match page.next_continuation_token() {
            Some(next) if max.is_none() && page.is_truncated().unwrap_or(false) => token = Some(next.to_string()),
            _ => break,
        }
    }
    keys.sort();
    Ok(keys)
}
