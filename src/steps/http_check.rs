//! `http.check`: waits until an HTTP endpoint answers as expected. Read-only, so it is always safe
//! to repeat: observe probes once, wait probes until healthy or out of attempts.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use schemars::JsonSchema;
use serde::Deserialize;

use super::http::{Probe, ProbeResult, header_map, parse_url};
use super::{HumanDuration, StatusList};
use crate::step::{BuildContext, Observation, OutputSpec, Outputs, Receipt, Step, StepContext, StepError, TypedStep};

/// The `http.check` step type.
pub struct HttpCheck {
    pub http: reqwest::Client,
}

/// A read-only HTTP method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProbeMethod {
    #[default]
    Get,
    Head,
}

impl From<ProbeMethod> for Method {
    fn from(method: ProbeMethod) -> Method {
        match method {
            ProbeMethod::Get => Method::GET,
            ProbeMethod::Head => Method::HEAD,
        }
    }
}

/// `with:` of an `http.check` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheckParams {
    /// The URL to probe, such as https://api.example.com/health.
    pub url: String,
    /// GET (default) or HEAD.
    #[serde(default)]
    pub method: ProbeMethod,
    /// The status a healthy endpoint answers, or a list of them (default 200).
    #[serde(default = "ok")]
    pub expect_status: StatusList,
    /// Text a healthy answer's body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// How many probes to make before giving up (default 30, at least 1).
    #[serde(default = "thirty")]
    #[schemars(range(min = 1))]
    pub attempts: u32,
    /// The time between probes (default 2s).
    #[serde(default = "two_seconds")]
    pub interval: HumanDuration,
    /// How long one probe may take (default 5s).
    #[serde(default = "five_seconds")]
    pub request_timeout: HumanDuration,
    /// Request headers. Their values are never shown.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn ok() -> StatusList {
    StatusList(vec![200])
}
fn thirty() -> u32 {
    30
}
fn two_seconds() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}
fn five_seconds() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

impl TypedStep for HttpCheck {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Probes a URL until it answers `expect_status` (and, with `body_contains`, a body that contains \
            that text): up to `attempts` probes, `interval` apart. Read-only, so it is always safe to repeat.",
        example: r#"
url: https://api.us-west-2.example.com/health
body_contains: ok
attempts: 30
interval: 2s
"#,
        failure: "Still unhealthy after `attempts` probes: the step fails with the last answer or connection error, \
            and is tried again within its `retries`. A malformed `url` or header fails at once.",
    };
    type Params = HttpCheckParams;
    const NAME: &'static str = "http.check";
    const SUMMARY: &'static str = "Probes an HTTP endpoint until it answers with the expected status (and body).";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::integer("status", "The status of the healthy answer."),
        OutputSpec::duration("latency_ms", "How long that answer took, in milliseconds."),
    ];
    const POLICY: crate::step::TypePolicy = crate::step::TypePolicy::CHECK;

    fn build(&self, p: HttpCheckParams, _context: &BuildContext) -> Box<dyn Step> {
        let probe = Probe {
            method: p.method.into(),
            url: parse_url("url", &p.url),
            headers: header_map(&p.headers),
            expect: p.expect_status,
            body_contains: p.body_contains,
            timeout: p.request_timeout.0,
        };
        let (attempts, interval) = (p.attempts.max(1), p.interval.0);
        Box::new(HttpCheckStep { http: self.http.clone(), probe, attempts, interval })
    }
}

struct HttpCheckStep {
    http: reqwest::Client,
    probe: Probe,
    attempts: u32,
    interval: Duration,
}

#[async_trait]
impl Step for HttpCheckStep {
    fn describe(&self) -> String {
        let mut text = format!("check {} answers {}", self.probe.describe(), self.probe.expect);
        if let Some(needle) = &self.probe.body_contains {
            text.push_str(&format!(" with `{needle}`"));
        }
        text
    }

    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        Ok(match self.probe.run(&self.http).await?.outputs() {
            Some(outputs) => Observation::Done(outputs),
            None => Observation::NotDone,
        })
    }

    /// Probes up to `attempts` times, `interval` apart: the check's own count, which the plan sets.
    /// The healthy answer's outputs are the receipt.
    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError> {
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            if attempt > 1 {
                ctx.sleep(self.interval).await;
            }
            match self.probe.run(&self.http).await? {
                healthy @ ProbeResult::Healthy { .. } => return Ok(Receipt::of(&healthy.outputs())),
                ProbeResult::Unhealthy(reason) => {
                    tracing::debug!(step = %ctx.step_id, attempt, "{} {reason}", self.probe.describe());
                    last = reason;
                }
            }
        }
        let all = if self.attempts == 1 {
            "on its only attempt".to_string()
        } else {
            format!("on all {} attempts", self.attempts)
        };
        Err(StepError::retryable(format!("{} {last} {all}", self.probe.describe())))
    }

    async fn verify(&self, _ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError> {
        if let Some(outputs) = receipt.read::<Option<Outputs>>()? {
            return Ok(outputs);
        }
        match self.probe.run(&self.http).await? {
            healthy @ ProbeResult::Healthy { .. } => Ok(healthy.outputs().unwrap_or_default()),
            ProbeResult::Unhealthy(reason) => Err(StepError::retryable(format!("{} {reason}", self.probe.describe()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::test_support::http::{HttpServer, Reply, statuses, unreachable_url};
    use crate::steps::test_support::{build, build_error, client, ctx};

    fn kind() -> HttpCheck {
        HttpCheck { http: client() }
    }

    #[tokio::test(start_paused = true)]
    async fn passes_after_failures() {
        let server = HttpServer::spawn(statuses(&[503, 503, 503, 200]));
        let yaml = format!(
            "url: {}\nattempts: 5\ninterval: 2s\nheaders: {{Authorization: Bearer s3cret}}",
            server.url("/health")
        );
        let step = build(&kind(), &yaml);
        let ctx = ctx();
        assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
        let receipt = step.act(&ctx).await.unwrap();
        crate::steps::test_support::settle(&*step, &ctx, &receipt).await.unwrap();
        let outputs = step.verify(&ctx, &receipt).await.unwrap();
        assert_eq!(outputs["status"], "200");
        assert!(outputs.contains_key("latency_ms"));
        let requests = server.requests();
        assert_eq!(requests.len(), 4);
        assert_eq!((requests[0].method.as_str(), requests[0].path.as_str()), ("GET", "/health"));
        assert_eq!(requests[0].header("authorization"), Some("Bearer s3cret"));
        assert!(requests[0].header("user-agent").unwrap().starts_with("drctl/"));
        assert!(!step.describe().contains("s3cret"));
    }

    #[tokio::test(start_paused = true)]
    async fn fails_retryably_when_attempts_run_out() {
        let server = HttpServer::spawn(statuses(&[503]));
        let url = server.url("/health");
        let step = build(&kind(), &format!("url: {url}\nattempts: 3\ninterval: 1s"));
        let e = step.act(&ctx()).await.unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(e.message, format!("GET {url} answered 503 (expected 200) on all 3 attempts"));
        assert_eq!(server.requests().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn observe_passes_a_healthy_endpoint_and_checks_the_body() {
        let server = HttpServer::spawn(|_| Reply::text(202, "status: ready"));
        let url = server.url("/");
        let step = build(&kind(), &format!("url: {url}\nexpect_status: [200, 202]\nbody_contains: ready"));
        let Observation::Done(outputs) = step.observe(&ctx()).await.unwrap() else { panic!("not healthy") };
        assert_eq!(outputs["status"], "202");

        let step = build(&kind(), &format!("url: {url}\nexpect_status: 202\nbody_contains: green\nattempts: 1"));
        let e = step.act(&ctx()).await.unwrap_err();
        assert_eq!(e.message, format!("GET {url} answered 202 without `green` in the body on its only attempt"));
    }

    #[tokio::test]
    async fn connection_errors_are_retryable() {
        let url = unreachable_url("/health");
        let step = build(&kind(), &format!("url: {url}\nmethod: HEAD\nattempts: 2\ninterval: 1ms"));
        assert_eq!(step.describe(), format!("check HEAD {url} answers 200"));
        let e = step.act(&ctx()).await.unwrap_err();
        assert!(e.is_retryable());
        assert!(e.message.starts_with(&format!("HEAD {url} could not be reached (")), "{e}");
        assert!(e.message.ends_with(") on all 2 attempts"), "{e}");
    }

    #[tokio::test]
    async fn a_bad_url_is_fatal() {
        let e = build(&kind(), "url: not a url").observe(&ctx()).await.unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.message.contains("`url` is not a valid URL"), "{e}");
    }

    #[test]
    fn bad_params_are_rejected() {
        assert!(build_error(&kind(), "url: x\nmethod: POST").contains("unknown variant `POST`"));
        assert!(build_error(&kind(), "url: x\nexpect_status: 999").contains("not an HTTP status"));
        assert!(build_error(&kind(), "url: x\ninterval: 2").contains("a duration"));
    }
}
