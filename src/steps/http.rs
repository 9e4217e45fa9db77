//! Helpers shared by the HTTP step types: checked URLs and headers, error text without secrets, and
//! the one-request probe that `http.check` repeats and `http.request` uses to observe.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use super::StatusList;
use crate::step::{Outputs, StepError};

/// Parses an http(s) URL from a rendered parameter.
pub(crate) fn parse_url(param: &str, text: &str) -> Result<Url, StepError> {
    let url =
        Url::parse(text.trim()).map_err(|e| StepError::fatal(format!("`{param}` is not a valid URL ({e}): {text}")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(StepError::fatal(format!("`{param}` must be an http or https URL, not {other}:"))),
    }
}

/// A URL as drctl shows it: without a password in its user info.
pub(crate) fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// Headers from parameters, marked sensitive. Errors name the header, never its value.
pub(crate) fn header_map(headers: &BTreeMap<String, String>) -> Result<HeaderMap, StepError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let key = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| StepError::fatal(format!("`{name}` is not a valid HTTP header name")))?;
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            StepError::fatal(format!("the value of header `{name}` is not valid in HTTP (line breaks?)"))
        })?;
        value.set_sensitive(true);
        map.insert(key, value);
    }
    Ok(map)
}

/// What went wrong with a request, without the URL: `timed out`, `Connection refused (os error 111)`.
pub(crate) fn error_text(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut innermost: &dyn std::error::Error = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    if std::ptr::addr_eq(innermost, error as &dyn std::error::Error) {
        return "request failed".into();
    }
    innermost.to_string()
}

/// The start of a response body, on one line, for error messages.
pub(crate) fn snippet(body: &str) -> String {
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// Whether a later attempt may get a different answer: throttled or a server error.
pub(crate) fn retryable_status(status: u16) -> bool {
    status == 429 || status >= 500
}

/// One request whose answer says whether something is healthy (or already in effect).
pub(crate) struct Probe {
    pub method: Method,
    pub url: Result<Url, StepError>,
    pub headers: Result<HeaderMap, StepError>,
    pub expect: StatusList,
    pub body_contains: Option<String>,
    pub timeout: Duration,
}

/// A probe's answer.
pub(crate) enum ProbeResult {
    /// Answered as expected.
    Healthy { status: u16, latency: Duration },
    /// Anything else, as a phrase that follows `GET <url>`: `answered 503 (expected 200)`.
    Unhealthy(String),
}

impl ProbeResult {
    /// `status` and `latency_ms`, for a healthy answer.
    pub fn outputs(&self) -> Option<Outputs> {
        match self {
            ProbeResult::Healthy { status, latency } => Some(Outputs::from([
                ("status".to_string(), status.to_string()),
                ("latency_ms".to_string(), latency.as_millis().to_string()),
            ])),
            ProbeResult::Unhealthy(_) => None,
        }
    }
}

impl Probe {
    /// `GET https://example.com/health`.
    pub fn describe(&self) -> String {
        match &self.url {
            Ok(url) => format!("{} {}", self.method, shown_url(url)),
            Err(_) => format!("{} <invalid URL>", self.method),
        }
    }

    /// Sends the request once. Errors only for what no retry fixes (a bad URL or header).
    pub async fn run(&self, http: &reqwest::Client) -> Result<ProbeResult, StepError> {
        let url = self.url.clone()?;
        let headers = self.headers.clone()?;
        // `latency_ms` is how long the server really took to answer: monotonic wall time.
        #[allow(clippy::disallowed_methods)]
        let started = Instant::now();
        let request = http.request(self.method.clone(), url).headers(headers).timeout(self.timeout);
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                let after = crate::clock::human_duration(self.timeout);
                return Ok(ProbeResult::Unhealthy(format!("did not answer within {after}")));
            }
            Err(e) => return Ok(ProbeResult::Unhealthy(format!("could not be reached ({})", error_text(&e)))),
        };
        let status = response.status().as_u16();
        if !self.expect.contains(status) {
            return Ok(ProbeResult::Unhealthy(format!("answered {status} (expected {})", self.expect)));
        }
        if let Some(needle) = &self.body_contains {
            let body = match response.text().await {
                Ok(body) => body,
                Err(e) => {
                    return Ok(ProbeResult::Unhealthy(format!(
                        "answered {status} but the body could not be read ({})",
                        error_text(&e)
                    )));
                }
            };
            if !body.contains(needle.as_str()) {
                return Ok(ProbeResult::Unhealthy(format!("answered {status} without `{needle}` in the body")));
            }
        }
        Ok(ProbeResult::Healthy { status, latency: started.elapsed() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_hide_passwords_and_headers_hide_values() {
        let url = parse_url("url", "https://ops:hunter2@lb.example.com/admin?x=1").unwrap();
        assert_eq!(shown_url(&url), "https://ops:***@lb.example.com/admin?x=1");
        assert!(parse_url("url", "ftp://x").unwrap_err().message.contains("http or https"));
        let bad = BTreeMap::from([("Authorization".to_string(), "Bearer s3cret\n".to_string())]);
        let e = header_map(&bad).unwrap_err();
        assert!(e.message.contains("Authorization") && !e.message.contains("s3cret"), "{e}");
        assert!(!e.is_retryable());
    }

    #[test]
    fn snippets_are_short_single_lines() {
        assert_eq!(snippet("  {\"error\":\n \"busy\"}\n"), "{\"error\": \"busy\"}");
        assert_eq!(snippet(&"x".repeat(500)).chars().count(), 201);
    }
}
