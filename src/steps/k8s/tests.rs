//! The Kubernetes step types against a scripted API server (tower-test's mock service behind a
//! real `kube::Client`): which requests they make, in which order, with which bodies, and how they
//! read the answers, errors included.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use kube::{Api, Client};
use serde_json::{Value, json};
use tower_test::mock::{self, Handle, SendResponse};

use super::rollout::{CONFLICT_RETRIES, rollout_progress, update};
use super::{RolloutRestart, RolloutUndo, Scale, SetEnv};
use crate::k8s::{Kube, Target};
use crate::plan::de::from_node;
use crate::plan::yaml::parse;
use crate::plan::{Direction, Pair, Plan};
use crate::step::{BuildContext, ErrorKind, Observation, Step, StepError, TypedStep};
use crate::steps::test_support::ctx;

type ApiHandle = Handle<Request<Body>, Response<Body>>;

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/production/deployments/app";
const SCALE: &str = "/apis/apps/v1/namespaces/production/deployments/app/scale";
const REPLICA_SETS: &str = "/apis/apps/v1/namespaces/production/replicasets";
const PODS: &str = "/api/v1/namespaces/production/pods";
const MERGE_PATCH: &str = "application/merge-patch+json";

/// A request as the scripted API server received it.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    query: String,
    content_type: String,
    /// `Null` when the request had no body.
    body: Value,
}

impl Call {
    fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }
}

/// A client whose requests reach `handle` instead of a cluster.
fn mock_client() -> (Client, ApiHandle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

async fn record(request: Request<Body>) -> Call {
    let (parts, body) = request.into_parts();
    let bytes = body.collect_bytes().await.expect("a readable request body");
    let content_type = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    Call {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        content_type: content_type.to_string(),
        body: if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("a JSON body") },
    }
}

fn reply(send: SendResponse<Response<Body>>, status: u16, body: &Value) {
    let body = Body::from(serde_json::to_vec(body).unwrap());
    send.send_response(Response::builder().status(status).body(body).unwrap());
}

/// Answers requests in order with `replies`, records every request (any beyond the script is
/// answered 500), and returns the record once every client is gone.
fn scripted(mut handle: ApiHandle, replies: Vec<(u16, Value)>) -> tokio::task::JoinHandle<Vec<Call>> {
    tokio::spawn(async move {
        let mut replies = replies.into_iter();
        let mut calls = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            calls.push(record(request).await);
            match replies.next() {
                Some((status, body)) => reply(send, status, &body),
                None => reply(send, 500, &status(500, "InternalError", "unexpected request")),
            }
        }
        calls
    })
}

/// The requests `server` received, once the clients talking to it are dropped.
async fn calls(server: tokio::task::JoinHandle<Vec<Call>>) -> Vec<Call> {
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("the clients were not dropped").unwrap()
}

fn shape(calls: &[Call]) -> Vec<String> {
    calls.iter().map(|c| format!("{} {}", c.method, c.path)).collect()
}

/// A step of type `kind` built from YAML `with:` for a failover of a plan whose secondary
/// Kubernetes context is `dr`.
fn build<T: TypedStep>(kind: T, yaml: &str) -> Box<dyn Step> {
    let params = from_node::<T::Params>(&parse(yaml).unwrap()).unwrap_or_else(|e| panic!("{}: {}", e.path, e.message));
    let mut plan = Plan::minimal("test", "us-east-1", "us-west-2");
    plan.kubernetes = Some(Pair { primary: "prod".into(), secondary: "dr".into() });
    TypedStep::build(&kind, params, &BuildContext { plan: &plan, direction: Direction::Failover })
}

/// The `Kube` of the `dr` context, answering through `client`.
fn kube(client: Client) -> Arc<Kube> {
    Arc::new(Kube::with_client(Some("dr"), client))
}

fn target() -> Target {
    Target::new(Some("dr"), "deployment", "production", "app")
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({ "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code })
}

/// `base` with `patch` merged in (JSON merge patch: objects merge, anything else replaces).
fn merged(mut base: Value, patch: Value) -> Value {
    fn merge(base: &mut Value, patch: Value) {
        match (base, patch) {
            (Value::Object(base), Value::Object(patch)) => {
                for (key, value) in patch {
                    merge(base.entry(key).or_insert(Value::Null), value);
                }
            }
            (base, patch) => *base = patch,
        }
    }
    merge(&mut base, patch);
    base
}

fn ready(replicas: i32) -> Value {
    json!({ "observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas })
}

/// Deployment production/app (uid u1, revision 3, resourceVersion 1) at 2 ready replicas.
fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "app", "namespace": "production", "uid": "u1", "resourceVersion": "1", "generation": 1,
                      "annotations": { "deployment.kubernetes.io/revision": "3" } },
        "spec": { "replicas": 2, "selector": { "matchLabels": { "app": "web" } },
                  "template": { "metadata": { "labels": { "app": "web" } },
                                "spec": { "containers": [{ "name": "app", "image": "registry.example/app:3" }] } } },
        "status": ready(2),
    })
}

fn scale(replicas: i32) -> Value {
    json!({ "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": { "name": "app", "namespace": "production", "resourceVersion": "1" },
            "spec": { "replicas": replicas }, "status": { "replicas": replicas } })
}

fn retryable(result: Result<impl std::fmt::Debug, StepError>) -> StepError {
    let error = result.expect_err("an error");
    assert_eq!(error.kind, ErrorKind::Retryable, "{error}");
    error
}

fn fatal(result: Result<impl std::fmt::Debug, StepError>) -> StepError {
    let error = result.expect_err("an error");
    assert_eq!(error.kind, ErrorKind::Fatal, "{error}");
    error
}

// ---- rollout::update -------------------------------------------------------------------------

fn set_replicas(deployment: &mut Deployment) -> Result<bool, StepError> {
    deployment.spec.as_mut().unwrap().replicas = Some(4);
    Ok(true)
}

#[tokio::test]
async fn update_rereads_after_a_conflict_and_writes_with_the_new_resource_version() {
    let (client, handle) = mock_client();
    let v2 = merged(deployment(), json!({ "metadata": { "resourceVersion": "2" } }));
    let server = scripted(
        handle,
        vec![
            (200, deployment()),
            (409, status(409, "Conflict", "the object has been modified")),
            (200, v2.clone()),
            (200, v2),
        ],
    );
    let api: Api<Deployment> = Api::namespaced(client, "production");
    let wrote = update(&api, "app", &target(), set_replicas).await;
    drop(api);
    assert_eq!(wrote, Ok(true));
    let calls = calls(server).await;
    let put = format!("PUT {DEPLOYMENT}");
    let get = format!("GET {DEPLOYMENT}");
    assert_eq!(shape(&calls), [get.as_str(), &put, &get, &put]);
    assert_eq!(calls[1].body["metadata"]["resourceVersion"], "1");
    assert_eq!(calls[3].body["metadata"]["resourceVersion"], "2");
    assert_eq!(calls[3].body["spec"]["replicas"], 4);
}

#[tokio::test]
async fn update_gives_up_after_repeated_conflicts() {
    let (client, handle) = mock_client();
    let conflict = (409, status(409, "Conflict", "the object has been modified"));
    let replies = (0..CONFLICT_RETRIES).flat_map(|_| [(200, deployment()), conflict.clone()]).collect();
    let server = scripted(handle, replies);
    let api: Api<Deployment> = Api::namespaced(client, "production");
    let error = retryable(update(&api, "app", &target(), set_replicas).await);
    drop(api);
    assert!(error.message.contains("kept changing"), "{error}");
    assert!(error.message.contains("deployment production/app in context dr"), "{error}");
    let calls = calls(server).await;
    assert_eq!(calls.len(), 2 * CONFLICT_RETRIES, "{:?}", shape(&calls));
    assert!(calls.iter().step_by(2).all(|c| c.is("GET", DEPLOYMENT)), "{:?}", shape(&calls));
    assert!(calls.iter().skip(1).step_by(2).all(|c| c.is("PUT", DEPLOYMENT)), "{:?}", shape(&calls));
}

// ---- kube.scale ------------------------------------------------------------------------------

const SCALE_APP: &str = "name: app\nnamespace: production\nreplicas: 5\n";

#[tokio::test]
async fn scale_patches_the_scale_subresource_once() {
    let (client, handle) = mock_client();
    let server = scripted(handle, vec![(200, deployment()), (200, scale(2)), (200, scale(5)), (200, scale(5))]);
    let step = build(Scale { kube: kube(client) }, SCALE_APP);
    assert_eq!(step.observe(&ctx()).await, Ok(Observation::NotDone));
    step.act(&ctx()).await.unwrap();
    step.act(&ctx()).await.unwrap();
    drop(step);
    let calls = calls(server).await;
    let get_scale = format!("GET {SCALE}");
    assert_eq!(shape(&calls), [format!("GET {DEPLOYMENT}"), get_scale.clone(), format!("PATCH {SCALE}"), get_scale]);
    assert_eq!(calls[2].body, json!({ "spec": { "replicas": 5 } }));
    assert_eq!(calls[2].content_type, MERGE_PATCH);
}

#[tokio::test]
async fn scale_reports_a_server_error_as_retryable_and_succeeds_next_time() {
    let (client, handle) = mock_client();
    let unavailable = status(503, "ServiceUnavailable", "the server is currently unable to handle the request");
    let server = scripted(handle, vec![(503, unavailable), (200, scale(2)), (200, scale(5))]);
    let step = build(Scale { kube: kube(client) }, SCALE_APP);
    let error = retryable(step.act(&ctx()).await);
    assert!(error.message.contains("503"), "{error}");
    step.act(&ctx()).await.unwrap();
    drop(step);
    let calls = calls(server).await;
    assert_eq!(shape(&calls), [format!("GET {SCALE}"), format!("GET {SCALE}"), format!("PATCH {SCALE}")]);
}

#[tokio::test]
async fn scale_reports_access_and_absence_as_fatal() {
    let (client, handle) = mock_client();
    let forbidden = status(403, "Forbidden", "user cannot patch resource deployments/scale");
    let server = scripted(
        handle,
        vec![(200, scale(2)), (403, forbidden), (404, status(404, "NotFound", "deployments.apps \"app\" not found"))],
    );
    let step = build(Scale { kube: kube(client) }, SCALE_APP);
    let denied = fatal(step.act(&ctx()).await);
    assert!(denied.message.contains("deployment production/app in context dr"), "{denied}");
    assert!(denied.message.contains("RBAC"), "{denied}");
    let absent = fatal(step.observe(&ctx()).await);
    assert!(absent.message.contains("does not exist"), "{absent}");
    drop(step);
    let calls = calls(server).await;
    assert_eq!(shape(&calls), [format!("GET {SCALE}"), format!("PATCH {SCALE}"), format!("GET {DEPLOYMENT}")]);
}

// ---- kube.set_env ----------------------------------------------------------------------------

const SET_ENV: &str =
    "name: app\nnamespace: production\nenv:\n  DATABASE_URL: {secret: app-db, key: DATABASE_URL}\n  LOG_LEVEL: info\n";

/// The deployment with `env` on its one container and the given rollout revision.
fn with_env(env: Value, revision: &str) -> Value {
    let mut deployment = merged(
        deployment(),
        json!({ "metadata": { "annotations": { "deployment.kubernetes.io/revision": revision } } }),
    );
    deployment["spec"]["template"]["spec"]["containers"][0]["env"] = env;
    deployment
}

fn env_in_place() -> Value {
    json!([
        { "name": "LOG_LEVEL", "value": "info" },
        { "name": "DATABASE_URL", "valueFrom": { "secretKeyRef": { "name": "app-db", "key": "DATABASE_URL" } } },
    ])
}

#[tokio::test]
async fn set_env_is_done_when_every_variable_is_in_place() {
    let (client, handle) = mock_client();
    let server = scripted(handle, vec![(200, with_env(env_in_place(), "7"))]);
    let step = build(SetEnv { kube: kube(client) }, SET_ENV);
    let Ok(Observation::Done(outputs)) = step.observe(&ctx()).await else { panic!("expected Done") };
    assert_eq!(outputs["revision"], "7");
    assert_eq!(outputs["variables"], "DATABASE_URL,LOG_LEVEL");
    drop(step);
    assert_eq!(shape(&calls(server).await), [format!("GET {DEPLOYMENT}")]);
}

#[tokio::test]
async fn set_env_writes_secret_references_and_nothing_when_in_place() {
    let (client, handle) = mock_client();
    let stale = with_env(json!([{ "name": "LOG_LEVEL", "value": "debug" }]), "7");
    let server = scripted(
        handle,
        vec![
            (200, stale.clone()),
            (200, stale),
            (200, with_env(env_in_place(), "7")),
            (200, with_env(env_in_place(), "8")),
        ],
    );
    let step = build(SetEnv { kube: kube(client) }, SET_ENV);
    step.act(&ctx()).await.unwrap();
    step.act(&ctx()).await.unwrap();
    drop(step);
    let calls = calls(server).await;
    assert_eq!(shape(&calls), [format!("GET {DEPLOYMENT}"), format!("PUT {DEPLOYMENT}"), format!("GET {DEPLOYMENT}")]);
    let put = &calls[1].body;
    assert_eq!(put["metadata"]["resourceVersion"], "1");
    let env = put["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap();
    let var = |name: &str| env.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no {name} in {env:?}"));
    assert_eq!(var("LOG_LEVEL")["value"], "info");
    assert_eq!(var("DATABASE_URL")["valueFrom"]["secretKeyRef"], json!({ "name": "app-db", "key": "DATABASE_URL" }));
    assert!(var("DATABASE_URL").get("value").is_none(), "{env:?}");
    assert_eq!(env.len(), 2, "{env:?}");
}

#[tokio::test]
async fn set_env_refuses_a_secrets_manager_reference_without_a_request() {
    let (client, handle) = mock_client();
    let server = scripted(handle, vec![]);
    let yaml = "name: app\nnamespace: production\nenv:\n  DATABASE_URL: secretsmanager://us-west-2/db?version=v1\n";
    let step = build(SetEnv { kube: kube(client) }, yaml);
    let error = fatal(step.observe(&ctx()).await);
    assert!(error.message.contains("with.env.DATABASE_URL"), "{error}");
    assert!(error.message.contains("kube.write_secret"), "{error}");
    drop(step);
    assert_eq!(shape(&calls(server).await), Vec::<String>::new());
}

// ---- kube.rollout_restart --------------------------------------------------------------------

#[tokio::test]
async fn restart_patches_the_template_once_per_step() {
    let (client, handle) = mock_client();
    let restarted = merged(
        deployment(),
        json!({ "spec": { "template": { "metadata": { "annotations": {
            "drctl.dev/restarted-by": "run-1/step", "kubectl.kubernetes.io/restartedAt": "2025-01-01T12:00:00Z" } } } } }),
    );
    let server = scripted(handle, vec![(200, deployment()), (200, restarted.clone()), (200, restarted)]);
    let step = build(RolloutRestart { kube: kube(client) }, "name: app\nnamespace: production\n");
    step.act(&ctx()).await.unwrap();
    step.act(&ctx()).await.unwrap();
    drop(step);
    let calls = calls(server).await;
    assert_eq!(
        shape(&calls),
        [format!("GET {DEPLOYMENT}"), format!("PATCH {DEPLOYMENT}"), format!("GET {DEPLOYMENT}")]
    );
    assert_eq!(calls[1].content_type, MERGE_PATCH);
    let annotations = &calls[1].body["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["drctl.dev/restarted-by"], "run-1/step");
    let at = annotations["kubectl.kubernetes.io/restartedAt"].as_str().expect("restartedAt");
    assert!(at.starts_with("2025-01-01T12:00:"), "{at}");
    assert!(humantime::parse_rfc3339(at).is_ok(), "{at}");
}

// ---- kube.rollout_undo -----------------------------------------------------------------------

fn template(image: &str, hash: &str) -> Value {
    json!({ "metadata": { "labels": { "app": "web", "pod-template-hash": hash } },
            "spec": { "containers": [{ "name": "app", "image": image }] } })
}

fn replica_set(revision: u64, owner: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": { "name": format!("app-{owner}-{revision}"), "namespace": "production",
                      "annotations": { "deployment.kubernetes.io/revision": revision.to_string() },
                      "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "Deployment", "name": "app",
                                            "uid": owner, "controller": true }] },
        "spec": { "selector": { "matchLabels": { "app": "web" } },
                  "template": template(image, &format!("h{revision}")) },
    })
}

fn replica_sets(items: Vec<Value>) -> Value {
    json!({ "apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": { "resourceVersion": "30" }, "items": items })
}

#[tokio::test]
async fn undo_restores_the_previous_revisions_template() {
    let (client, handle) = mock_client();
    let history = replica_sets(vec![
        replica_set(1, "u1", "registry.example/app:1"),
        replica_set(2, "u1", "registry.example/app:2"),
        replica_set(3, "u1", "registry.example/app:3"),
        replica_set(2, "other", "registry.example/impostor:2"),
    ]);
    let server = scripted(handle, vec![(200, deployment()), (200, history), (200, deployment()), (200, deployment())]);
    let step = build(RolloutUndo { kube: kube(client) }, "name: app\nnamespace: production\n");
    step.act(&ctx()).await.unwrap();
    drop(step);
    let calls = calls(server).await;
    let get = format!("GET {DEPLOYMENT}");
    assert_eq!(shape(&calls), [get.clone(), format!("GET {REPLICA_SETS}"), get, format!("PUT {DEPLOYMENT}")]);
    assert!(calls[1].query.contains("labelSelector=app%3Dweb"), "{}", calls[1].query);
    let put = &calls[3].body;
    let mut restored = template("registry.example/app:2", "h2");
    restored["metadata"]["labels"].as_object_mut().unwrap().remove("pod-template-hash");
    assert_eq!(put["spec"]["template"], restored);
    let annotations = &put["metadata"]["annotations"];
    assert_eq!(annotations["drctl.dev/undone-from-revision"], "3");
    assert_eq!(annotations["drctl.dev/undone-to-revision"], "2");
    assert_eq!(annotations["drctl.dev/undone-by"], "run-1/step");
    assert_eq!(put["metadata"]["resourceVersion"], "1");
}

#[tokio::test]
async fn undo_without_an_earlier_revision_is_fatal() {
    let (client, handle) = mock_client();
    let first =
        merged(deployment(), json!({ "metadata": { "annotations": { "deployment.kubernetes.io/revision": "1" } } }));
    let history = replica_sets(vec![replica_set(1, "u1", "registry.example/app:1")]);
    let server = scripted(handle, vec![(200, first), (200, history)]);
    let step = build(RolloutUndo { kube: kube(client) }, "name: app\nnamespace: production\n");
    let error = fatal(step.act(&ctx()).await);
    assert!(error.message.contains("no earlier revision"), "{error}");
    drop(step);
    assert_eq!(shape(&calls(server).await), [format!("GET {DEPLOYMENT}"), format!("GET {REPLICA_SETS}")]);
}

// ---- rollout::rollout_progress -------------------------------------------------------------

/// Answers the deployment's GETs with `gets` in turn (the last one again once they run out) and
/// the pods' LIST with `pods`, recording the requests in `calls`.
fn cluster(
    mut handle: ApiHandle,
    gets: Vec<Value>,
    pods: Vec<Value>,
    calls: Arc<Mutex<Vec<Call>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut gets = std::collections::VecDeque::from(gets);
        while let Some((request, send)) = handle.next_request().await {
            let call = record(request).await;
            calls.lock().unwrap().push(call.clone());
            match (call.method.as_str(), call.path.as_str()) {
                ("GET", DEPLOYMENT) => {
                    let next = if gets.len() > 1 { gets.pop_front() } else { gets.front().cloned() };
                    reply(send, 200, &next.unwrap());
                }
                ("GET", PODS) => reply(
                    send,
                    200,
                    &json!({ "apiVersion": "v1", "kind": "PodList", "metadata": { "resourceVersion": "20" },
                             "items": pods }),
                ),
                _ => reply(send, 500, &status(500, "InternalError", "unexpected request")),
            }
        }
    })
}

/// The deployment at generation 2 with `status`, at `resource_version`.
fn rolling(resource_version: &str, status: Value) -> Value {
    let mut deployment =
        merged(deployment(), json!({ "metadata": { "generation": 2, "resourceVersion": resource_version } }));
    deployment["status"] = status;
    deployment
}

fn image_pull_backoff() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "app-7d9f-x2k", "namespace": "production", "labels": { "app": "web" } },
        "status": { "phase": "Pending", "conditions": [{ "type": "Ready", "status": "False" }],
                    "containerStatuses": [{ "name": "app", "image": "registry.example/app:4", "imageID": "",
                        "ready": false, "restartCount": 0,
                        "state": { "waiting": { "reason": "ImagePullBackOff",
                                                "message": "Back-off pulling image \"registry.example/app:4\"" } } }] },
    })
}

/// Polls the rollout of `app` until it is done or failed, with the engine's wait; the polls' answers.
async fn poll_until_settled(gets: Vec<Value>, pods: Vec<Value>) -> (Vec<crate::step::Progress>, Vec<Call>) {
    let (client, handle) = mock_client();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let server = cluster(handle, gets, pods, calls.clone());
    let api: Api<Deployment> = Api::namespaced(client.clone(), "production");
    let pods: Api<Pod> = Api::namespaced(client, "production");
    let target = target();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let progress = rollout_progress(&api, &pods, "app", &target).await;
        let settled = !matches!(progress, crate::step::Progress::Waiting(_));
        seen.push(progress);
        if settled {
            break;
        }
    }
    server.abort();
    let calls = calls.lock().unwrap().clone();
    (seen, calls)
}

#[tokio::test]
async fn a_rollout_poll_says_what_is_missing_and_which_pods_are_not_ready_until_complete() {
    let not_ready = json!({ "observedGeneration": 2, "replicas": 2, "updatedReplicas": 1,
                            "readyReplicas": 1, "availableReplicas": 1 });
    let done = json!({ "observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
                       "readyReplicas": 2, "availableReplicas": 2 });
    let (seen, calls) =
        poll_until_settled(vec![rolling("11", not_ready), rolling("12", done)], vec![image_pull_backoff()]).await;
    let crate::step::Progress::Waiting(why) = &seen[0] else { panic!("{seen:?}") };
    assert!(why.contains("1 of 2 replicas updated") && why.contains("app-7d9f-x2k (ImagePullBackOff"), "{why}");
    assert_eq!(seen[1], crate::step::Progress::Done);
    let pod_calls: Vec<&Call> = calls.iter().filter(|c| c.path == PODS).collect();
    assert!(pod_calls.iter().all(|c| c.query.contains("labelSelector=app%3Dweb")), "{pod_calls:?}");
}

#[tokio::test]
async fn a_rollout_poll_fails_at_once_past_the_progress_deadline_naming_the_pods() {
    let stuck = json!({ "observedGeneration": 2, "replicas": 2, "updatedReplicas": 1,
        "conditions": [{ "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                         "message": "ReplicaSet \"app-4\" has timed out progressing." }] });
    let (seen, calls) = poll_until_settled(vec![rolling("10", stuck)], vec![image_pull_backoff()]).await;
    let [crate::step::Progress::Failed(error)] = seen.as_slice() else { panic!("{seen:?}") };
    assert!(!error.is_retryable());
    assert!(error.message.contains("deployment production/app in context dr"), "{error}");
    assert!(error.message.contains("progress deadline"), "{error}");
    assert!(error.message.contains("app-7d9f-x2k (ImagePullBackOff"), "{error}");
    let listed_pods = calls.iter().find(|c| c.path == PODS).expect("the pods were listed");
    assert!(listed_pods.query.contains("labelSelector=app%3Dweb"), "{listed_pods:?}");
}
