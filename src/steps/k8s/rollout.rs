//! A workload's rollout, looked at once per poll (with the reason it is not done yet, pods
//! included, for the timeout message), and conflict-safe updates.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, PostParams};

use super::workload::{Progress, Workload, explain_pods, pod_problem, pod_selector, with_workload_type};
use super::{SharedKube, WorkloadRef};
use crate::k8s::{Target, step_error};
use crate::step::{Progress as StepProgress, StepError};

/// One look at `name`'s rollout, as a poll of the engine's wait: done when complete, waiting with
/// what is missing and which pods are not ready and why (so a timeout quotes it), failed at once
/// when it cannot converge (progress deadline exceeded) or on an error no retry fixes.
pub async fn rollout_progress<K: Workload>(api: &Api<K>, pods: &Api<Pod>, name: &str, target: &Target) -> StepProgress {
    let workload = match api.get(name).await {
        Ok(workload) => workload,
        Err(e) => return StepProgress::Failed(step_error(&e, "read", target)),
    };
    match workload.progress() {
        Progress::Complete => StepProgress::Done,
        Progress::Failed(reason) => {
            let pods_now = unready_pods(pods, &workload).await;
            StepProgress::Failed(StepError::fatal(format!("the rollout of {target} failed: {reason}; {pods_now}")))
        }
        Progress::Waiting(what) => {
            let pods_now = unready_pods(pods, &workload).await;
            StepProgress::Waiting(format!("{target}: waiting for {what}; {pods_now}"))
        }
    }
}

/// One look at the rollout of `workload`, whatever its kind: the poll of every step that changes a
/// workload and waits for its pods.
pub async fn poll_rollout(kube: &SharedKube, workload: &WorkloadRef) -> StepProgress {
    let c = match workload.connect(kube).await {
        Ok(c) => c,
        Err(e) => return StepProgress::Failed(e),
    };
    let name = &workload.name;
    with_workload_type!(workload.kind, K => rollout_progress::<K>(&c.api(), &c.pods(), name, &c.target).await)
}

/// How often, at most, a rollout is looked at.
pub const ROLLOUT_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// The workload's unready pods and why, listed now (for a failure message).
pub async fn unready_pods<K: Workload>(pods: &Api<Pod>, workload: &K) -> String {
    let Some(selector) = pod_selector(workload) else { return String::new() };
    let Ok(list) = pods.list(&ListParams::default().labels_from(&selector)).await else {
        return "the pods could not be listed".into();
    };
    let problems: Vec<(String, String)> = list
        .items
        .iter()
        .filter_map(|pod| Some((pod.metadata.name.clone().unwrap_or_default(), pod_problem(pod)?)))
        .collect();
    match explain_pods(problems.iter().map(|(n, p)| (n.as_str(), p.as_str()))) {
        text if text.is_empty() => "every pod is ready".into(),
        text => text,
    }
}

/// Reads `name`, lets `change` edit it, and writes it back carrying the resourceVersion it read, so
/// a concurrent writer is never overwritten: on a 409 conflict it reads again and retries, up to
/// [`CONFLICT_RETRIES`] times, then reports a retryable error. `change` returns `Ok(false)` when the
/// object is already as wanted; then nothing is written. Returns whether a write was made.
pub async fn update<K: Workload>(
    api: &Api<K>,
    name: &str,
    target: &Target,
    mut change: impl FnMut(&mut K) -> Result<bool, StepError>,
) -> Result<bool, StepError> {
    for _ in 0..CONFLICT_RETRIES {
        let mut object = api.get(name).await.map_err(|e| step_error(&e, "read", target))?;
        if !change(&mut object)? {
            return Ok(false);
        }
        match api.replace(name, &PostParams::default(), &object).await {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(e) => return Err(step_error(&e, "update", target)),
        }
    }
    Err(StepError::retryable(format!(
        "cannot update {target}: it kept changing underneath ({CONFLICT_RETRIES} conflicts in a row)"
    )))
}

/// Read-modify-write rounds tried before a conflict is reported.
pub const CONFLICT_RETRIES: usize = 5;
