//! Deployments and StatefulSets seen the same way: where their rollout stands (the rules of
//! `kubectl rollout status`), their pod template, their selector, and why their pods are not ready.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::Selector;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The kinds of workload the step types scale, configure and restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    #[default]
    Deployment,
    StatefulSet,
}

impl WorkloadKind {
    /// The kind as kubectl spells it in `deployment/app`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
        }
    }
}

/// Runs `$body` with `$k` bound to the k8s-openapi type of a [`WorkloadKind`].
macro_rules! with_workload_type {
    ($kind:expr, $k:ident => $body:expr) => {
        match $kind {
            $crate::steps::k8s::workload::WorkloadKind::Deployment => {
                type $k = k8s_openapi::api::apps::v1::Deployment;
                $body
            }
            $crate::steps::k8s::workload::WorkloadKind::StatefulSet => {
                type $k = k8s_openapi::api::apps::v1::StatefulSet;
                $body
            }
        }
    };
}
pub(crate) use with_workload_type;

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Every replica runs the current template and is available.
    Complete,
    /// Still moving; the text says what is missing ("2 of 3 updated replicas available").
    Waiting(String),
    /// It will not converge on its own (the progress deadline passed).
    Failed(String),
}

/// A Deployment or StatefulSet, as the step types need it.
pub trait Workload:
    kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// Where the rollout stands.
    fn progress(&self) -> Progress;
    /// `spec.replicas` (1 when unset, as the API server defaults it).
    fn desired_replicas(&self) -> i32;
    /// The pods' label selector.
    fn selector(&self) -> Option<&LabelSelector>;
    /// The pod template.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// The pod template, for changing it.
    fn template_mut(&mut self) -> Option<&mut PodTemplateSpec>;
}

/// Whether the controller has caught up with the latest spec.
fn observed(generation: Option<i64>, observed: Option<i64>) -> Option<Progress> {
    match (generation, observed) {
        (Some(generation), Some(observed)) if observed >= generation => None,
        _ => Some(Progress::Waiting("the controller to see the new spec".into())),
    }
}

impl Workload for Deployment {
    fn progress(&self) -> Progress {
        let desired = self.desired_replicas();
        let Some(status) = &self.status else { return Progress::Waiting("a status".into()) };
        if let Some(waiting) = observed(self.metadata.generation, status.observed_generation) {
            return waiting;
        }
        let deadline = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"));
        if let Some(condition) = deadline {
            let message = condition.message.clone().unwrap_or_default();
            return Progress::Failed(format!("the rollout exceeded its progress deadline ({message})"));
        }
        let updated = status.updated_replicas.unwrap_or(0);
        let replicas = status.replicas.unwrap_or(0);
        let available = status.available_replicas.unwrap_or(0);
        let ready = status.ready_replicas.unwrap_or(0);
        if updated < desired {
            Progress::Waiting(format!("{updated} of {desired} replicas updated"))
        } else if replicas > updated {
            Progress::Waiting(format!("{} old replicas to terminate", replicas - updated))
        } else if available < updated || ready < desired {
            Progress::Waiting(format!("{} of {desired} replicas ready", ready.min(available)))
        } else {
            Progress::Complete
        }
    }

    fn desired_replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn selector(&self) -> Option<&LabelSelector> {
        self.spec.as_ref().map(|s| &s.selector)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }

    fn template_mut(&mut self) -> Option<&mut PodTemplateSpec> {
        self.spec.as_mut().map(|s| &mut s.template)
    }
}

impl Workload for StatefulSet {
    fn progress(&self) -> Progress {
        let desired = self.desired_replicas();
        let Some(status) = &self.status else { return Progress::Waiting("a status".into()) };
        if let Some(waiting) = observed(self.metadata.generation, status.observed_generation) {
            return waiting;
        }
        let ready = status.ready_replicas.unwrap_or(0);
        let updated = status.updated_replicas.unwrap_or(0);
        let partitioned = self
            .spec
            .as_ref()
            .and_then(|s| s.update_strategy.as_ref())
            .and_then(|u| u.rolling_update.as_ref())
            .and_then(|r| r.partition)
            .is_some_and(|p| p > 0);
        if ready < desired {
            Progress::Waiting(format!("{ready} of {desired} pods ready"))
        } else if !partitioned && (updated < desired || status.update_revision != status.current_revision) {
            Progress::Waiting(format!("{updated} of {desired} pods updated"))
        } else if status.replicas > desired {
            Progress::Waiting(format!("{} extra pods to terminate", status.replicas - desired))
        } else {
            Progress::Complete
        }
    }

    fn desired_replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn selector(&self) -> Option<&LabelSelector> {
        self.spec.as_ref().map(|s| &s.selector)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }

    fn template_mut(&mut self) -> Option<&mut PodTemplateSpec> {
        self.spec.as_mut().map(|s| &mut s.template)
    }
}

/// The label selector of a workload's pods, as the API takes it.
pub fn pod_selector(workload: &impl Workload) -> Option<Selector> {
    workload.selector().cloned().and_then(|s| Selector::try_from(s).ok())
}

/// Why a pod is not ready, or `None` if it is: a container's waiting reason and message
/// (`ImagePullBackOff: Back-off pulling image "..."`), a termination, an unschedulable pod, or
/// the pod's phase.
pub fn pod_problem(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let conditions = status.conditions.iter().flatten();
    if conditions.clone().any(|c| c.type_ == "Ready" && c.status == "True") {
        return None;
    }
    let containers = status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
    for container in containers.filter(|c| !c.ready) {
        let state = container.state.as_ref();
        if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.as_deref().unwrap_or("Waiting");
            return Some(with_message(reason, waiting.message.as_deref()));
        }
        if let Some(terminated) = state.and_then(|s| s.terminated.as_ref()) {
            let reason = terminated.reason.as_deref().unwrap_or("Terminated");
            return Some(format!("{reason} (exit code {})", terminated.exit_code));
        }
    }
    let unscheduled = conditions.clone().find(|c| c.type_ == "PodScheduled" && c.status == "False");
    if let Some(condition) = unscheduled {
        let reason = condition.reason.as_deref().unwrap_or("Unschedulable");
        return Some(with_message(reason, condition.message.as_deref()));
    }
    Some(format!("{} and not ready", status.phase.as_deref().unwrap_or("Pending")))
}

fn with_message(reason: &str, message: Option<&str>) -> String {
    match message.filter(|m| !m.is_empty()) {
        Some(message) => format!("{reason}: {message}"),
        None => reason.to_string(),
    }
}

/// How many pods of a workload to name in a message before "and N more".
const PODS_NAMED: usize = 3;

/// The unready pods among `pods` and why, for a message: `app-7d9f-x2k (ImagePullBackOff: ...)`.
/// Empty when every pod is ready.
pub fn explain_pods<'a>(pods: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let problems: Vec<_> = pods.into_iter().collect();
    let mut text: Vec<String> =
        problems.iter().take(PODS_NAMED).map(|(name, problem)| format!("{name} ({problem})")).collect();
    if problems.len() > PODS_NAMED {
        text.push(format!("and {} more", problems.len() - PODS_NAMED));
    }
    match text.is_empty() {
        true => String::new(),
        false => format!("pods not ready: {}", text.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(spec_replicas: i32, generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": { "name": "app", "namespace": "production", "generation": generation },
            "spec": { "replicas": spec_replicas, "selector": { "matchLabels": { "app": "web" } },
                      "template": { "metadata": { "labels": { "app": "web" } }, "spec": { "containers": [] } } },
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn a_deployment_rollout_follows_kubectl_rollout_status() {
        let stale = deployment(3, 2, json!({ "observedGeneration": 1, "replicas": 3, "updatedReplicas": 3 }));
        assert_eq!(stale.progress(), Progress::Waiting("the controller to see the new spec".into()));
        let updating = deployment(3, 2, json!({ "observedGeneration": 2, "replicas": 3, "updatedReplicas": 1 }));
        assert_eq!(updating.progress(), Progress::Waiting("1 of 3 replicas updated".into()));
        let old_pods = deployment(3, 2, json!({ "observedGeneration": 2, "replicas": 5, "updatedReplicas": 3 }));
        assert_eq!(old_pods.progress(), Progress::Waiting("2 old replicas to terminate".into()));
        let not_ready = deployment(
            3,
            2,
            json!({ "observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2 }),
        );
        assert_eq!(not_ready.progress(), Progress::Waiting("2 of 3 replicas ready".into()));
        let done = deployment(
            3,
            2,
            json!({ "observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3 }),
        );
        assert_eq!(done.progress(), Progress::Complete);
        let scaled_to_zero = deployment(0, 3, json!({ "observedGeneration": 3 }));
        assert_eq!(scaled_to_zero.progress(), Progress::Complete);
        let stuck = deployment(
            3,
            2,
            json!({ "observedGeneration": 2, "updatedReplicas": 1, "conditions": [{ "type": "Progressing", "status": "False",
                "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"app-2\" has timed out progressing." }] }),
        );
        assert!(matches!(stuck.progress(), Progress::Failed(m) if m.contains("timed out progressing")));
    }

    #[test]
    fn pod_problems_name_the_waiting_reason() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": "app-1" },
            "status": { "phase": "Pending", "conditions": [{ "type": "Ready", "status": "False" }],
                        "containerStatuses": [{ "name": "app", "image": "registry.invalid/app:2", "imageID": "", "ready": false, "restartCount": 0,
                            "state": { "waiting": { "reason": "ImagePullBackOff", "message": "Back-off pulling image" } } }] }
        }))
        .unwrap();
        assert_eq!(pod_problem(&pod).as_deref(), Some("ImagePullBackOff: Back-off pulling image"));
        let ready: Pod =
            serde_json::from_value(json!({ "status": { "conditions": [{ "type": "Ready", "status": "True" }] } }))
                .unwrap();
        assert_eq!(pod_problem(&ready), None);
        let names = ["a", "b", "c", "d"].map(|n| (n, "CrashLoopBackOff"));
        assert_eq!(
            explain_pods(names),
            "pods not ready: a (CrashLoopBackOff), b (CrashLoopBackOff), c (CrashLoopBackOff), and 1 more"
        );
    }
}
