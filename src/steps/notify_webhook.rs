//! `notify.webhook`: posts a Slack-compatible message (`{"text": ...}`) built from the runbooks'
//! communication templates. A webhook receiver cannot be asked whether it got a message, so
//! delivery is at-least-once: a run resumed after this step acted but before it was journaled posts
//! again. The `Idempotency-Key` header (`<run id>/<step id>`) lets receivers that honour it drop the
//! repeat.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use reqwest::Url;
use schemars::JsonSchema;
use serde::Deserialize;

use super::http::{error_text, retryable_status, snippet};
use crate::clock::human_duration;
use crate::step::{BuildContext, Observation, OutputSpec, Outputs, Receipt, Step, StepContext, StepError, TypedStep};

/// The `notify.webhook` step type.
pub struct NotifyWebhook {
    pub http: reqwest::Client,
}

/// Which runbook message to send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// 🚨 INCIDENT DETECTED: severity, service, impact, start time, status.
    IncidentDetected,
    /// 📊 INCIDENT UPDATE: status, impact, actions taken, next steps, ETA.
    StatusUpdate,
    /// ✅ INCIDENT RESOLVED: duration, root cause, resolution.
    Resolved,
    /// Only `text`.
    #[default]
    Custom,
}

/// `with:` of a `notify.webhook` step (exactly one of `url` and `url_env`; `custom` needs `text`).
#[derive(Deserialize, JsonSchema)]
#[serde(try_from = "NotifyFields")]
pub struct NotifyParams(NotifyFields);

/// The fields of [`NotifyParams`], before checks across fields.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyFields {
    /// The webhook URL. Prefer `url_env`: a webhook URL is a secret.
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding the webhook URL; the URL is then never shown.
    #[serde(default)]
    pub url_env: Option<String>,
    /// The runbook message to send.
    pub template: Template,
    /// The message for `custom`; details appended to the other templates.
    #[serde(default)]
    pub text: Option<String>,
    /// Severity, P0 to P3 (incident_detected).
    #[serde(default)]
    pub severity: Option<String>,
    /// The affected service.
    #[serde(default)]
    pub service: Option<String>,
    /// What users notice (incident_detected, status_update).
    #[serde(default)]
    pub impact: Option<String>,
    /// Investigating, Mitigating or Resolved (default Investigating for incident_detected).
    #[serde(default)]
    pub status: Option<String>,
    /// Actions taken so far (status_update).
    #[serde(default)]
    pub actions: Vec<String>,
    /// Next steps (status_update).
    #[serde(default)]
    pub next_steps: Vec<String>,
    /// Estimated time of resolution (status_update).
    #[serde(default)]
    pub eta: Option<String>,
    /// A brief root cause (resolved).
    #[serde(default)]
    pub root_cause: Option<String>,
    /// What fixed it (resolved).
    #[serde(default)]
    pub resolution: Option<String>,
    /// When the incident started, RFC 3339: the start time shown, and `resolved`'s duration.
    #[serde(default)]
    pub started_at: Option<String>,
}

impl TryFrom<NotifyFields> for NotifyParams {
    type Error = &'static str;
    fn try_from(f: NotifyFields) -> Result<Self, Self::Error> {
        if f.url.is_some() == f.url_env.is_some() {
            return Err("set exactly one of `url` and `url_env`");
        }
        if f.template == Template::Custom && f.text.is_none() {
            return Err("the `custom` template needs `text`");
        }
        Ok(NotifyParams(f))
    }
}

impl TypedStep for NotifyWebhook {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Posts a Slack-compatible message (`{\"text\": ...}`) built from the runbook's communication \
            templates: `incident_detected`, `status_update`, `resolved`, or `custom` text. `url_env` names the \
            environment variable that holds the webhook URL, which keeps it out of plans, logs and journals. Delivery \
            is at least once: a run resumed after the post but before it was journaled posts again, with the same \
            `Idempotency-Key` header (`RUN_ID/STEP_ID`) for receivers that deduplicate.",
        example: r#"
url_env: SLACK_WEBHOOK_URL
template: incident_detected
severity: P0
service: api
impact: "API unavailable in {{ plan.regions.primary }}"
"#,
        failure: "Connection failures and 429 or 5xx answers are retried; another status (a wrong or revoked webhook) \
            and an unset `url_env` variable fail at once.",
    };
    type Params = NotifyParams;
    const NAME: &'static str = "notify.webhook";
    const SUMMARY: &'static str =
        "Posts an incident message (detected, update, resolved or custom) to a Slack-compatible webhook.";
    const OUTPUTS: &'static [OutputSpec] = &[];
    /// A notification must never block a failover: in a regional outage the chat service is often down too.
    const POLICY: crate::step::TypePolicy =
        crate::step::TypePolicy { on_failure: crate::plan::OnFailure::Continue, ..crate::step::TypePolicy::ACTION };

    fn build(&self, params: NotifyParams, _context: &BuildContext) -> Box<dyn Step> {
        Box::new(self.step(params, Arc::new(|name| std::env::var(name).ok())))
    }
}

/// Reads an environment variable (replaceable in tests).
type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl NotifyWebhook {
    fn step(&self, NotifyParams(f): NotifyParams, env: EnvLookup) -> NotifyStep {
        let target = match (f.url, f.url_env) {
            (Some(url), _) => Target::Url(url),
            (None, name) => Target::Env(name.unwrap_or_default()),
        };
        let message = Message {
            template: f.template,
            text: f.text,
            severity: f.severity,
            service: f.service,
            impact: f.impact,
            status: f.status,
            actions: f.actions,
            next_steps: f.next_steps,
            eta: f.eta,
            root_cause: f.root_cause,
            resolution: f.resolution,
            started_at: f.started_at,
        };
        NotifyStep { http: self.http.clone(), target, message, env }
    }
}

/// Where the message goes.
enum Target {
    Url(String),
    /// The name of the variable holding the URL.
    Env(String),
}

/// A message's content, before rendering.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub template: Template,
    pub text: Option<String>,
    pub severity: Option<String>,
    pub service: Option<String>,
    pub impact: Option<String>,
    pub status: Option<String>,
    pub actions: Vec<String>,
    pub next_steps: Vec<String>,
    pub eta: Option<String>,
    pub root_cause: Option<String>,
    pub resolution: Option<String>,
    pub started_at: Option<String>,
}

/// Renders `message` at time `now`, leaving out every line whose value is absent.
pub fn render(message: &Message, now: SystemTime) -> String {
    let mut lines: Vec<String> = Vec::new();
    let field = |lines: &mut Vec<String>, label: &str, value: Option<&str>| {
        if let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) {
            lines.push(format!("{label}: {value}"));
        }
    };
    let list = |lines: &mut Vec<String>, label: &str, items: &[String]| {
        if !items.is_empty() {
            lines.push(format!("{label}:"));
            lines.extend(items.iter().map(|item| format!("- {item}")));
        }
    };
    match message.template {
        Template::IncidentDetected => {
            lines.push(match message.severity.as_deref().map(severity) {
                Some(sev) => format!("🚨 INCIDENT DETECTED - {sev}"),
                None => "🚨 INCIDENT DETECTED".into(),
            });
            field(&mut lines, "Service", message.service.as_deref());
            field(&mut lines, "Impact", message.impact.as_deref());
            let start =
                message.started_at.clone().unwrap_or_else(|| humantime::format_rfc3339_seconds(now).to_string());
            field(&mut lines, "Start Time", Some(&start));
            field(&mut lines, "Status", Some(message.status.as_deref().unwrap_or("Investigating")));
        }
        Template::StatusUpdate => {
            let secs = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
            lines.push(format!("📊 INCIDENT UPDATE - {:02}:{:02}", secs / 3600 % 24, secs / 60 % 60));
            field(&mut lines, "Service", message.service.as_deref());
            field(&mut lines, "Current Status", message.status.as_deref());
            field(&mut lines, "Impact", message.impact.as_deref());
            list(&mut lines, "Actions Taken", &message.actions);
            list(&mut lines, "Next Steps", &message.next_steps);
            field(&mut lines, "ETA", message.eta.as_deref());
        }
        Template::Resolved => {
            lines.push("✅ INCIDENT RESOLVED".into());
            field(&mut lines, "Service", message.service.as_deref());
            field(&mut lines, "Duration", incident_duration(message.started_at.as_deref(), now).as_deref());
            field(&mut lines, "Root Cause", message.root_cause.as_deref());
            field(&mut lines, "Resolution", message.resolution.as_deref());
        }
        Template::Custom => return message.text.clone().unwrap_or_default(),
    }
    if let Some(text) = message.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        lines.push(String::new());
        lines.push(text.to_string());
    }
    lines.join("\n")
}

/// `P0` from `P0`, `p0` or `0`.
fn severity(text: &str) -> String {
    let text = text.trim();
    if text.chars().all(|c| c.is_ascii_digit()) { format!("P{text}") } else { text.to_ascii_uppercase() }
}

/// From `started_at` to `now`, for people; `None` when unknown.
fn incident_duration(started_at: Option<&str>, now: SystemTime) -> Option<String> {
    let text = started_at?;
    let Ok(start) = humantime::parse_rfc3339_weak(text.trim()) else {
        tracing::warn!("started_at `{text}` is not an RFC 3339 time; the message leaves out the duration");
        return None;
    };
    now.duration_since(start).ok().map(human_duration)
}

struct NotifyStep {
    http: reqwest::Client,
    target: Target,
    message: Message,
    env: EnvLookup,
}

impl NotifyStep {
    /// The webhook as shown: its host, or the variable that holds it.
    fn shown_target(&self) -> String {
        match &self.target {
            Target::Url(url) => match Url::parse(url) {
                Ok(url) => format!("webhook at {}", url.host_str().unwrap_or("?")),
                Err(_) => "webhook".into(),
            },
            Target::Env(name) => format!("webhook in ${name}"),
        }
    }

    fn url(&self) -> Result<Url, StepError> {
        let (text, param) = match &self.target {
            Target::Url(url) => (url.clone(), "`url`".to_string()),
            Target::Env(name) => {
                let value = (self.env)(name).filter(|v| !v.trim().is_empty());
                let value = value.ok_or_else(|| {
                    StepError::fatal(format!("environment variable {name} is not set; it should hold the webhook URL"))
                })?;
                (value, format!("the value of {name}"))
            }
        };
        match Url::parse(text.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
            _ => Err(StepError::fatal(format!("{param} is not an http(s) URL"))),
        }
    }
}

#[async_trait]
impl Step for NotifyStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        vec![super::preflight::url(&self.url(), "the webhook URL")]
    }

    fn describe(&self) -> String {
        let name = match self.message.template {
            Template::IncidentDetected => "incident detected",
            Template::StatusUpdate => "status update",
            Template::Resolved => "incident resolved",
            Template::Custom => "custom",
        };
        format!("post {name} message to {}", self.shown_target())
    }

    /// Always NotDone: a webhook cannot be asked whether it got a message (at-least-once delivery).
    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        Ok(Observation::NotDone)
    }

    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError> {
        let text = render(&self.message, ctx.clock.now());
        let response = self
            .http
            .post(self.url()?)
            .header("Idempotency-Key", format!("{}/{}", ctx.run_id, ctx.step_id))
            .json(&serde_json::json!({ "text": text }))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| {
                StepError::retryable(format!("posting to the {} failed ({})", self.shown_target(), error_text(&e)))
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(Receipt::NONE);
        }
        let body = snippet(&response.text().await.unwrap_or_default());
        let message = format!(
            "the {} answered {}{}",
            self.shown_target(),
            status.as_u16(),
            if body.is_empty() { String::new() } else { format!(": {body}") }
        );
        Err(if retryable_status(status.as_u16()) { StepError::retryable(message) } else { StepError::fatal(message) })
    }

    async fn verify(&self, _ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        Ok(Outputs::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::test_support::http::{HttpServer, Reply, statuses};
    use crate::steps::test_support::{build, build_error, client, ctx, t0};

    fn at(secs_after_t0: u64) -> SystemTime {
        t0() + Duration::from_secs(secs_after_t0)
    }

    #[test]
    fn incident_detected_fills_what_is_given() {
        let message = Message {
            template: Template::IncidentDetected,
            severity: Some("0".into()),
            service: Some("checkout-api".into()),
            impact: Some("EU users cannot pay".into()),
            ..Message::default()
        };
        assert_eq!(
            render(&message, at(0)),
            "🚨 INCIDENT DETECTED - P0\nService: checkout-api\nImpact: EU users cannot pay\nStart Time: 2025-01-01T12:00:00Z\nStatus: Investigating"
        );
        let bare = Message {
            template: Template::IncidentDetected,
            started_at: Some("2025-01-01T11:58:00Z".into()),
            status: Some("Mitigating".into()),
            ..Message::default()
        };
        assert_eq!(render(&bare, at(0)), "🚨 INCIDENT DETECTED\nStart Time: 2025-01-01T11:58:00Z\nStatus: Mitigating");
    }

    #[test]
    fn status_update_lists_actions_and_next_steps() {
        let message = Message {
            template: Template::StatusUpdate,
            status: Some("Mitigating".into()),
            impact: Some("degraded".into()),
            actions: vec!["DNS moved to us-west-2".into(), "replica promoted".into()],
            next_steps: vec!["verify payments".into()],
            eta: Some("15 minutes".into()),
            text: Some("Bridge: #inc-42".into()),
            ..Message::default()
        };
        let expected = "📊 INCIDENT UPDATE - 12:07\nCurrent Status: Mitigating\nImpact: degraded\nActions Taken:\n- DNS moved to us-west-2\n- replica promoted\nNext Steps:\n- verify payments\nETA: 15 minutes\n\nBridge: #inc-42";
        assert_eq!(render(&message, at(7 * 60 + 30)), expected);
        assert_eq!(
            render(&Message { template: Template::StatusUpdate, ..Message::default() }, at(0)),
            "📊 INCIDENT UPDATE - 12:00"
        );
    }

    #[test]
    fn resolved_measures_the_duration_from_started_at() {
        let message = Message {
            template: Template::Resolved,
            started_at: Some("2025-01-01T11:00:00Z".into()),
            root_cause: Some("AZ power loss".into()),
            resolution: Some("failed over to us-west-2".into()),
            ..Message::default()
        };
        assert_eq!(
            render(&message, at(62)),
            "✅ INCIDENT RESOLVED\nDuration: 1h 01m 02s\nRoot Cause: AZ power loss\nResolution: failed over to us-west-2"
        );
        let unknown =
            Message { template: Template::Resolved, started_at: Some("yesterday".into()), ..Message::default() };
        assert_eq!(render(&unknown, at(0)), "✅ INCIDENT RESOLVED");
    }

    #[test]
    fn custom_is_the_text_alone() {
        let message = Message {
            template: Template::Custom,
            text: Some("Failover drill starts".into()),
            service: Some("x".into()),
            ..Message::default()
        };
        assert_eq!(render(&message, at(0)), "Failover drill starts");
    }

    #[tokio::test]
    async fn posts_json_with_an_idempotency_key() {
        let server = HttpServer::spawn(statuses(&[200]));
        let kind = NotifyWebhook { http: client() };
        let step = build(&kind, &format!("url: {}\ntemplate: custom\ntext: hello", server.url("/hook")));
        assert_eq!(step.describe(), "post custom message to webhook at 127.0.0.1");
        let ctx = ctx();
        assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
        step.act(&ctx).await.unwrap();
        let request = &server.requests()[0];
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/hook"));
        assert_eq!(request.header("idempotency-key"), Some("run-1/step"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(body, serde_json::json!({ "text": "hello" }));
    }

    #[tokio::test]
    async fn a_url_from_the_environment_is_never_shown() {
        let server =
            HttpServer::spawn(
                |r| if r.path == "/gone" { Reply::text(404, "no_service") } else { Reply::text(503, "") },
            );
        let kind = NotifyWebhook { http: client() };
        let params = |env: &str| {
            let node = crate::plan::yaml::parse(&format!("url_env: {env}\ntemplate: resolved")).unwrap();
            crate::plan::de::from_node::<NotifyParams>(&node).ok().unwrap()
        };
        let (busy, gone) = (server.url("/busy"), server.url("/gone"));
        let lookup: EnvLookup = Arc::new(move |name| match name {
            "BUSY_HOOK" => Some(busy.clone()),
            "GONE_HOOK" => Some(gone.clone()),
            _ => None,
        });
        let step = kind.step(params("BUSY_HOOK"), lookup.clone());
        assert_eq!(step.describe(), "post incident resolved message to webhook in $BUSY_HOOK");
        let e = step.act(&ctx()).await.unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(e.message, "the webhook in $BUSY_HOOK answered 503");

        let e = kind.step(params("GONE_HOOK"), lookup.clone()).act(&ctx()).await.unwrap_err();
        assert!(!e.is_retryable());
        assert_eq!(e.message, "the webhook in $GONE_HOOK answered 404: no_service");

        let e = kind.step(params("UNSET_HOOK"), lookup).act(&ctx()).await.unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.message.contains("UNSET_HOOK is not set"), "{e}");
        assert!(!step.describe().contains("127.0.0.1"));
    }

    #[test]
    fn bad_params_are_rejected() {
        let kind = NotifyWebhook { http: client() };
        assert!(build_error(&kind, "template: resolved").contains("exactly one of `url` and `url_env`"));
        assert!(build_error(&kind, "url: x\nurl_env: Y\ntemplate: resolved").contains("exactly one"));
        assert!(build_error(&kind, "url: x\ntemplate: custom").contains("needs `text`"));
        assert!(build_error(&kind, "url: x\ntemplate: update").contains("unknown variant `update`"));
    }
}
