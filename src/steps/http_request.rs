//! `http.request`: one HTTP call to an ops API (maintenance mode, feature flags, load-balancer
//! admin). With `observe`, a resumed or repeated run first asks whether the change is already in
//! effect; without it, the request is sent again on resume, so it should be idempotent.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use schemars::JsonSchema;
use serde::Deserialize;

use super::http::{Probe, ProbeResult, error_text, header_map, parse_url, retryable_status, shown_url, snippet};
use super::http_check::ProbeMethod;
use super::{HumanDuration, StatusList};
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, Progress, Receipt, Step, StepContext, StepError, TypedStep,
};

/// The `http.request` step type.
pub struct HttpRequest {
    pub http: reqwest::Client,
}

/// The method of an ops API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum RequestMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// `with:` of an `http.request` step (`body` and `json` exclude each other).
#[derive(Deserialize, JsonSchema)]
#[serde(try_from = "HttpRequestFields")]
pub struct HttpRequestParams(HttpRequestFields);

/// The fields of [`HttpRequestParams`], before checks across fields.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRequestFields {
    /// GET, POST, PUT, PATCH or DELETE.
    pub method: RequestMethod,
    /// The URL to call.
    pub url: String,
    /// Request headers, also sent with `observe`. Their values are never shown.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A request body, sent as is.
    #[serde(default)]
    pub body: Option<String>,
    /// A JSON request body, sent with `Content-Type: application/json`.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// Statuses that mean success (default 200, 201, 202 or 204).
    #[serde(default = "success")]
    pub expect_status: StatusList,
    /// How long the request may take (default 30s).
    #[serde(default = "thirty_seconds")]
    pub request_timeout: HumanDuration,
    /// A read-only request whose expected answer means the change is in effect: checked before
    /// acting (so a resumed run does not repeat the call) and after, to verify it.
    #[serde(default)]
    pub observe: Option<ObserveRequest>,
}

/// How to tell that an `http.request` is in effect.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObserveRequest {
    /// The URL to ask.
    pub url: String,
    /// GET (default) or HEAD.
    #[serde(default)]
    pub method: ProbeMethod,
    /// The status that means "in effect", or a list of them (default 200).
    #[serde(default = "ok")]
    pub expect_status: StatusList,
    /// Text the answer's body must contain when in effect.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// After the request, how often to ask until the change is in effect (within the step's timeout).
    #[serde(default = "one_second")]
    pub interval: HumanDuration,
}

fn success() -> StatusList {
    StatusList(vec![200, 201, 202, 204])
}
fn ok() -> StatusList {
    StatusList(vec![200])
}
fn one_second() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}
fn thirty_seconds() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

impl TryFrom<HttpRequestFields> for HttpRequestParams {
    type Error = &'static str;
    fn try_from(fields: HttpRequestFields) -> Result<Self, Self::Error> {
        match (&fields.body, &fields.json) {
            (Some(_), Some(_)) => Err("set `body` or `json`, not both"),
            _ => Ok(HttpRequestParams(fields)),
        }
    }
}

impl TypedStep for HttpRequest {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Sends one HTTP request to an ops API (maintenance mode, feature flags, load-balancer admin). \
            With `observe`, a read-only request whose expected answer means the change is already in effect: it is \
            asked before acting, so a resumed run does not repeat the call, and after, until the change shows. \
            Without `observe` the request is sent again on resume, so it should be idempotent.",
        example: r#"
method: PUT
url: "{{ env.ADMIN_API }}/regions/us-west-2/replicas"
body: "10"
observe: {url: "{{ env.ADMIN_API }}/regions/us-west-2/replicas/10"}
"#,
        failure: "Connection failures and 429 or 5xx answers are retried; any other status outside `expect_status` (a \
            4xx) fails at once.",
    };
    type Params = HttpRequestParams;
    const NAME: &'static str = "http.request";
    const SUMMARY: &'static str =
        "Sends one HTTP request to an ops API; an optional observe request makes it safe to repeat.";
    const OUTPUTS: &'static [OutputSpec] = &[OutputSpec::integer(
        "status",
        "The status of the answer; `observe`'s when the change was found already in effect.",
    )];

    fn build(&self, HttpRequestParams(p): HttpRequestParams, _context: &BuildContext) -> Box<dyn Step> {
        let mut headers = header_map(&p.headers);
        let body = match (p.body, p.json) {
            (_, Some(json)) => {
                if let Ok(map) = &mut headers {
                    map.entry(CONTENT_TYPE).or_insert(HeaderValue::from_static("application/json"));
                }
                Some(json.to_string())
            }
            (body, None) => body,
        };
        let settle_interval = p.observe.as_ref().map_or(Duration::from_secs(1), |o| o.interval.0);
        let observe = p.observe.map(|o| Probe {
            method: o.method.into(),
            url: parse_url("observe.url", &o.url),
            headers: headers.clone(),
            expect: o.expect_status,
            body_contains: o.body_contains,
            timeout: p.request_timeout.0,
        });
        let method = match p.method {
            RequestMethod::Get => Method::GET,
            RequestMethod::Post => Method::POST,
            RequestMethod::Put => Method::PUT,
            RequestMethod::Patch => Method::PATCH,
            RequestMethod::Delete => Method::DELETE,
        };
        Box::new(HttpRequestStep {
            http: self.http.clone(),
            method,
            url: parse_url("url", &p.url),
            headers,
            body,
            expect: p.expect_status,
            timeout: p.request_timeout.0,
            observe,
            settle_interval,
        })
    }
}

struct HttpRequestStep {
    http: reqwest::Client,
    method: Method,
    url: Result<Url, StepError>,
    headers: Result<HeaderMap, StepError>,
    body: Option<String>,
    expect: StatusList,
    timeout: Duration,
    observe: Option<Probe>,
    /// How often `wait` asks `observe` until the change is in effect.
    settle_interval: Duration,
}

impl HttpRequestStep {
    fn target(&self) -> String {
        match &self.url {
            Ok(url) => format!("{} {}", self.method, shown_url(url)),
            Err(_) => format!("{} <invalid URL>", self.method),
        }
    }
}

#[async_trait]
impl Step for HttpRequestStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        vec![super::preflight::url(&self.url, "the request URL")]
    }

    fn describe(&self) -> String {
        match &self.observe {
            Some(probe) => format!("{} (unless {} answers {})", self.target(), probe.describe(), probe.expect),
            None => self.target(),
        }
    }

    /// Without `observe` the effect cannot be seen: NotDone, and a resumed run sends the request again.
    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        let Some(probe) = &self.observe else { return Ok(Observation::NotDone) };
        Ok(match probe.run(&self.http).await? {
            ProbeResult::Healthy { status, .. } => {
                Observation::Done(Outputs::from([("status".into(), status.to_string())]))
            }
            ProbeResult::Unhealthy(_) => Observation::NotDone,
        })
    }

    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
        let mut request = self.http.request(self.method.clone(), self.url.clone()?).headers(self.headers.clone()?);
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        let target = self.target();
        let response = request.timeout(self.timeout).send().await.map_err(|e| {
            let what = if e.is_timeout() {
                format!("did not answer within {}", HumanDuration(self.timeout))
            } else {
                format!("failed ({})", error_text(&e))
            };
            StepError::retryable(format!("{target} {what}"))
        })?;
        let status = response.status().as_u16();
        if self.expect.contains(status) {
            return Ok(Receipt::of(&status));
        }
        let body = snippet(&response.text().await.unwrap_or_default());
        let mut message = format!("{target} answered {status} (expected {})", self.expect);
        if !body.is_empty() {
            message.push_str(&format!(": {body}"));
        }
        Err(if retryable_status(status) { StepError::retryable(message) } else { StepError::fatal(message) })
    }

    /// With `observe`, asks until the change is in effect; the step's timeout bounds the wait. An
    /// API that applies changes asynchronously is waited for instead of being sent the request again.
    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> Progress {
        let Some(probe) = &self.observe else { return Progress::Done };
        match probe.run(&self.http).await {
            Ok(ProbeResult::Healthy { .. }) => Progress::Done,
            Ok(ProbeResult::Unhealthy(reason)) => Progress::Waiting(format!("{} {reason}", probe.describe())),
            Err(e) => Progress::Failed(e),
        }
    }

    fn poll_interval(&self) -> Duration {
        self.settle_interval
    }

    async fn verify(&self, _ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError> {
        if let Some(probe) = &self.observe
            && let ProbeResult::Unhealthy(reason) = probe.run(&self.http).await?
        {
            let message = format!("the change is not in effect yet: {} {reason}", probe.describe());
            return Err(StepError::retryable(message));
        }
        let status = receipt.read::<Option<u16>>()?.map(|s| s.to_string()).unwrap_or_default();
        Ok(Outputs::from([("status".to_string(), status)]))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::steps::test_support::http::{HttpServer, Reply, statuses, unreachable_url};
    use crate::steps::test_support::{build, build_error, client, ctx};

    fn kind() -> HttpRequest {
        HttpRequest { http: client() }
    }

    /// A load balancer admin API: POST /drain drains; GET /state says 200 once drained.
    fn lb() -> HttpServer {
        let drained = Arc::new(AtomicBool::new(false));
        HttpServer::spawn(move |r| match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/drain") => {
                drained.store(true, Ordering::SeqCst);
                Reply::text(202, "")
            }
            ("GET", "/state") if drained.load(Ordering::SeqCst) => Reply::text(200, "drained"),
            ("GET", "/state") => Reply::text(200, "serving"),
            _ => Reply::text(404, "no such route"),
        })
    }

    #[tokio::test]
    async fn observe_prevents_a_second_act() {
        let server = lb();
        let yaml = format!(
            "method: POST\nurl: {}\nheaders: {{X-Token: s3cret}}\njson: {{pool: blue}}\nobserve:\n  url: {}\n  body_contains: drained\n",
            server.url("/drain"),
            server.url("/state")
        );
        let ctx = ctx();
        let step = build(&kind(), &yaml);
        assert!(!step.describe().contains("s3cret"));
        assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
        let receipt = step.act(&ctx).await.unwrap();
        assert_eq!(step.verify(&ctx, &receipt).await.unwrap()["status"], "202");

        let resumed = build(&kind(), &yaml);
        assert!(matches!(resumed.observe(&ctx).await.unwrap(), Observation::Done(_)));
        let posts: Vec<_> = server.requests().into_iter().filter(|r| r.method == "POST").collect();
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].body, r#"{"pool":"blue"}"#);
        assert_eq!(posts[0].header("content-type"), Some("application/json"));
        assert_eq!(posts[0].header("x-token"), Some("s3cret"));
    }

    #[tokio::test]
    async fn without_observe_the_request_is_not_done() {
        let server = lb();
        let step = build(&kind(), &format!("method: POST\nurl: {}\nbody: go", server.url("/drain")));
        assert_eq!(step.observe(&ctx()).await.unwrap(), Observation::NotDone);
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn statuses_decide_between_retryable_and_fatal() {
        let server = HttpServer::spawn(statuses(&[503, 429, 404]));
        let url = server.url("/flags/failover?env=prod");
        let step = build(&kind(), &format!("method: PUT\nurl: {url}\nheaders: {{Authorization: Bearer s3cret}}"));
        let ctx = ctx();
        let e = step.act(&ctx).await.unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(e.message, format!("PUT {url} answered 503 (expected 200, 201, 202 or 204): ok"));
        assert!(step.act(&ctx).await.unwrap_err().is_retryable());
        let e = step.act(&ctx).await.unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.message.contains("answered 404") && !e.message.contains("s3cret"), "{e}");
    }

    #[tokio::test]
    async fn verify_fails_retryably_until_the_change_shows() {
        let server = HttpServer::spawn(statuses(&[200, 503]));
        let yaml = format!("method: DELETE\nurl: {}\nobserve: {{url: {}}}", server.url("/x"), server.url("/y"));
        let step = build(&kind(), &yaml);
        let receipt = step.act(&ctx()).await.unwrap();
        let e = step.verify(&ctx(), &receipt).await.unwrap_err();
        assert!(e.is_retryable());
        assert!(e.message.starts_with("the change is not in effect yet: GET "), "{e}");
    }

    #[tokio::test]
    async fn connection_errors_are_retryable() {
        let url = unreachable_url("/x");
        let e = build(&kind(), &format!("method: POST\nurl: {url}")).act(&ctx()).await.unwrap_err();
        assert!(e.is_retryable());
        assert!(e.message.starts_with(&format!("POST {url} failed (")), "{e}");
    }

    #[test]
    fn bad_params_are_rejected() {
        assert!(build_error(&kind(), "method: POST\nurl: x\nbody: a\njson: {a: 1}").contains("not both"));
        assert!(build_error(&kind(), "method: TRACE\nurl: x").contains("unknown variant `TRACE`"));
        assert!(
            build_error(&kind(), "method: GET\nurl: x\nobserve: {url: y, expect: 200}")
                .contains("unknown field `expect`")
        );
    }
}
