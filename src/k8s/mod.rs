//! What the Kubernetes step types share: one API client per kubeconfig context, loaded the way
//! kubectl loads it (`KUBECONFIG`, else `~/.kube/config`, else the in-cluster service account), and
//! API errors turned into step errors that name the context, namespace and object and say whether
//! the problem is access (RBAC), absence, or something a retry can fix.

use std::collections::HashMap;
use std::fmt;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::sync::Mutex;

use crate::step::StepError;

/// API clients, one per context, shared by every Kubernetes step of a run.
#[derive(Default)]
pub struct Kube {
    clients: Mutex<HashMap<Option<String>, Client>>,
}

impl Kube {
    /// The client for `context`; `None` means the kubeconfig's current context, or the in-cluster
    /// service account when there is no kubeconfig (as kubectl does).
    pub async fn client(&self, context: Option<&str>) -> Result<Client, StepError> {
        let key = context.map(str::to_string);
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let mut config = match context {
            Some(name) => {
                let options = KubeConfigOptions { context: Some(name.to_string()), ..Default::default() };
                Config::from_kubeconfig(&options).await.map_err(|e| config_error(context, &e))?
            }
            None => Config::infer().await.map_err(|e| config_error(context, &e))?,
        };
        // The engine retries 429/5xx itself, journaled and within the step's timeout; kube's own
        // retry (up to 15 tries, waits growing to 1000 s) would hide them and outlast the timeout.
        config.default_retry = false;
        let client = Client::try_from(config).map_err(|e| config_error(context, &e))?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

#[cfg(test)]
impl Kube {
    /// A `Kube` whose `client(context)` is `client` (a scripted API in unit tests).
    pub fn with_client(context: Option<&str>, client: Client) -> Kube {
        let clients = HashMap::from([(context.map(str::to_string), client)]);
        Kube { clients: Mutex::new(clients) }
    }
}

/// The contexts a kubeconfig defines (`KUBECONFIG` or `~/.kube/config`), for error messages.
pub fn known_contexts() -> Vec<String> {
    Kubeconfig::read().map(|k| k.contexts.into_iter().map(|c| c.name).collect()).unwrap_or_default()
}

fn config_error(context: Option<&str>, error: &dyn std::error::Error) -> StepError {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    let which = match context {
        Some(name) => format!("the kubeconfig context `{name}`"),
        None => "the current kubeconfig context (or the in-cluster service account)".to_string(),
    };
    let known = known_contexts();
    let help = if known.is_empty() {
        "set KUBECONFIG to a kubeconfig file, or run drctl inside the cluster".to_string()
    } else {
        format!("the kubeconfig has {}; fix `with.context` or the plan's `kubernetes:`", known.join(", "))
    };
    StepError::fatal(format!("cannot load {which}: {text}; {help}"))
}

/// The object a Kubernetes call was about, for error messages: `deployment production/app in
/// context dr-cluster`.
#[derive(Debug, Clone)]
pub struct Target {
    /// The context's name, or `current` for the kubeconfig's current context.
    pub context: String,
    /// `deployment`, `secret`, `prometheusrule`...
    pub kind: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    /// Empty for a list of objects.
    pub name: String,
}

impl Target {
    /// A namespaced object.
    pub fn new(context: Option<&str>, kind: &str, namespace: &str, name: &str) -> Target {
        Target {
            context: context.unwrap_or("current").to_string(),
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.namespace.is_empty(), self.name.is_empty()) {
            (true, true) => write!(f, "{}s", self.kind)?,
            (true, false) => write!(f, "{} {}", self.kind, self.name)?,
            (false, true) => write!(f, "{}s in namespace {}", self.kind, self.namespace)?,
            (false, false) => write!(f, "{} {}/{}", self.kind, self.namespace, self.name)?,
        }
        write!(f, " in context {}", self.context)
    }
}

/// How Kubernetes step types fail, as `drctl explain` says it: what [`step_error`] retries, and
/// what a rollout that never completes reports.
pub const STEP_FAILURES: &str = "Conflicts (409), throttling (429), server errors and connection failures are \
                                 retried; access denied (401, 403: fix the context's credentials or RBAC) and a \
                                 missing object (404) fail at once. A rollout past its progress deadline fails at \
                                 once; one still not ready at the step's timeout fails with what it was waiting \
                                 for and its pods' reasons (ImagePullBackOff, ...).";

/// Turns a kube error into a step error. `action` says what was attempted ("scale", "read").
/// Access (401, 403) and absence (404) are fatal, with what to fix; conflicts (409), throttling,
/// server errors and connection failures are retryable.
pub fn step_error(error: &kube::Error, action: &str, target: &Target) -> StepError {
    match error {
        kube::Error::Api(status) => {
            let code = status.code;
            let message = &status.message;
            let text = format!("cannot {action} {target}: the API server answered {code} {}: {message}", status.reason);
            match code {
                401 => StepError::fatal(format!(
                    "{text}; the credentials of context {} were rejected: refresh them (kubectl --context {} get ns tells)",
                    target.context, target.context
                )),
                403 => StepError::fatal(format!(
                    "{text}; access denied by RBAC: grant the user of context {} this verb on this resource (kubectl auth can-i tells)",
                    target.context
                )),
                404 => StepError::fatal(format!(
                    "{text}; it does not exist: check `with.name`, `with.namespace` and `with.context`"
                )),
                409 | 429 | 500.. => StepError::retryable(text),
                _ => StepError::fatal(text),
            }
        }
        kube::Error::Auth(e) => StepError::fatal(format!(
            "cannot {action} {target}: authentication failed: {e}; refresh the credentials of context {}",
            target.context
        )),
        kube::Error::HyperError(_) | kube::Error::Service(_) => StepError::retryable(format!(
            "cannot {action} {target}: the API server could not be reached: {}",
            error_chain(error)
        )),
        other => StepError::retryable(format!("cannot {action} {target}: {}", error_chain(other))),
    }
}

/// An error and its causes on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::ErrorKind;

    fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status::failure(message, reason).with_code(code)))
    }

    #[test]
    fn errors_name_the_object_and_say_what_kind_of_problem() {
        let target = Target::new(Some("dr-cluster"), "deployment", "production", "app");
        let forbidden = step_error(&api_error(403, "Forbidden", "nope"), "scale", &target);
        assert_eq!(forbidden.kind, ErrorKind::Fatal);
        assert!(forbidden.message.contains("deployment production/app in context dr-cluster"), "{forbidden}");
        assert!(forbidden.message.contains("RBAC"), "{forbidden}");
        let absent = step_error(&api_error(404, "NotFound", "not found"), "scale", &target);
        assert!(absent.message.contains("does not exist"), "{absent}");
        assert_eq!(step_error(&api_error(409, "Conflict", "modified"), "patch", &target).kind, ErrorKind::Retryable);
        assert_eq!(step_error(&api_error(503, "ServiceUnavailable", "x"), "patch", &target).kind, ErrorKind::Retryable);
        assert_eq!(step_error(&api_error(422, "Invalid", "bad"), "patch", &target).kind, ErrorKind::Fatal);
    }

    #[test]
    fn targets_read_naturally() {
        assert_eq!(Target::new(None, "node", "", "").to_string(), "nodes in context current");
        assert_eq!(Target::new(Some("c"), "pod", "ns", "").to_string(), "pods in namespace ns in context c");
    }
}
