//! Waiting until a workload's rollout is complete, by watching it (no polling loop), while a second
//! watch on its pods keeps the reason it is not done yet up to date for the timeout message.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

use super::workload::{Progress, Workload, explain_pods, pod_problem, pod_selector};
use crate::k8s::{Target, step_error};
use crate::step::{StepContext, StepError};

/// What the wait knows so far: the rollout's state and each unready pod's problem.
#[derive(Default)]
struct Seen {
    rollout: String,
    pods: BTreeMap<String, String>,
}

impl Seen {
    fn describe(&self, target: &Target) -> String {
        let pods = explain_pods(self.pods.iter().map(|(n, p)| (n.as_str(), p.as_str())));
        match pods.is_empty() {
            true => format!("{target}: {}", self.rollout),
            false => format!("{target}: {}; {pods}", self.rollout),
        }
    }
}

/// Watches `name` until its rollout is complete and returns it. Fails at once when the rollout
/// cannot converge (progress deadline exceeded), when the workload is deleted, or on an error no
/// retry fixes (access, absence). Meanwhile `ctx.waiting_for` says what is missing and which pods
/// are not ready and why, so the engine's timeout quotes it.
pub async fn wait_for_rollout<K: Workload>(
    api: &Api<K>,
    pods: &Api<Pod>,
    name: &str,
    target: &Target,
    ctx: &StepContext,
) -> Result<K, StepError> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut pod_watch = PodWatch(None);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = std::pin::pin!(watcher(api.clone(), config).default_backoff());
    loop {
        let event = match events.next().await {
            Some(event) => event,
            None => return Err(StepError::retryable(format!("the watch on {target} ended"))),
        };
        let workload = match event {
            Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => object,
            Ok(watcher::Event::Delete(_)) => {
                return Err(StepError::fatal(format!("{target} was deleted while drctl waited for its rollout")));
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => continue,
            Err(error) => {
                let error = watch_error(error, target);
                if !error.is_retryable() {
                    return Err(error);
                }
                ctx.waiting_for(format!("{target}: {error}"));
                continue;
            }
        };
        match workload.progress() {
            Progress::Complete => return Ok(workload),
            Progress::Failed(reason) => {
                let pods_now = unready_pods(pods, &workload).await;
                return Err(StepError::fatal(format!("the rollout of {target} failed: {reason}; {pods_now}")));
            }
            Progress::Waiting(what) => {
                let mut state = seen.lock().unwrap_or_else(|e| e.into_inner());
                state.rollout = format!("waiting for {what}");
                ctx.waiting_for(state.describe(target));
            }
        }
        if let (None, Some(selector)) = (&pod_watch.0, pod_selector(&workload)) {
            let config = watcher::Config::default().labels_from(&selector);
            let stream = watcher(pods.clone(), config).default_backoff();
            pod_watch.0 = Some(tokio::spawn(follow_pods(stream, seen.clone(), target.clone(), ctx.clone())));
        }
    }
}

/// Keeps `seen.pods` current from a watch on the workload's pods.
async fn follow_pods(
    stream: impl futures::Stream<Item = Result<watcher::Event<Pod>, watcher::Error>>,
    seen: Arc<Mutex<Seen>>,
    target: Target,
    ctx: StepContext,
) {
    let mut stream = std::pin::pin!(stream);
    while let Ok(Some(event)) = stream.try_next().await.or_else(|_| Ok::<_, ()>(None)) {
        let mut state = seen.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                let name = pod.metadata.name.clone().unwrap_or_default();
                match pod_problem(&pod) {
                    Some(problem) => state.pods.insert(name, problem),
                    None => state.pods.remove(&name),
                };
            }
            watcher::Event::Delete(pod) => {
                state.pods.remove(pod.metadata.name.as_deref().unwrap_or_default());
            }
            watcher::Event::Init => state.pods.clear(),
            watcher::Event::InitDone => {}
        }
        ctx.waiting_for(state.describe(&target));
    }
}

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

/// A watch failure as a step error: what the API server said, classified like any call.
fn watch_error(error: watcher::Error, target: &Target) -> StepError {
    match error {
        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            step_error(&e, "watch", target)
        }
        watcher::Error::WatchError(status) => step_error(&kube::Error::Api(status), "watch", target),
        watcher::Error::NoResourceVersion => StepError::fatal(format!(
            "cannot watch {target}: the API server sent no resourceVersion (it does not support watches)"
        )),
    }
}

/// The task that follows the pods, stopped when the wait ends, however it ends.
struct PodWatch(Option<tokio::task::JoinHandle<()>>);

impl Drop for PodWatch {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}
