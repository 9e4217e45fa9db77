//! `kube.check_cluster`: a cluster is healthy when enough of its nodes are Ready and the named
//! workloads are fully rolled out with every pod ready (failback's first step: is the primary
//! cluster back?).
//!
//! It changes nothing. If the cluster is not healthy yet, it watches nodes and workloads until it
//! is, within the step's timeout, which then says which nodes and pods are not ready and why.
//! Outputs: `ready_nodes` and `workloads` (`deployment/app 3/3`, ...).

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::ListParams;
use schemars::JsonSchema;
use serde::Deserialize;

use super::rollout::{ROLLOUT_POLL, unready_pods};
use super::workload::{Progress, Workload, WorkloadKind, with_workload_type};
use super::{SharedKube, WorkloadRef, context_for};
use crate::k8s::{Target, step_error};
use crate::step::Progress as StepProgress;
use crate::step::{BuildContext, Observation, OutputSpec, Outputs, Receipt, Step, StepContext, StepError, TypedStep};

/// The `kube.check_cluster` step type.
pub struct CheckCluster {
    pub kube: SharedKube,
}

/// `with:` of a `kube.check_cluster` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckClusterParams {
    /// The kubeconfig context (default: the plan's context of the region the run moves to).
    #[serde(default)]
    pub context: Option<String>,
    /// The workloads' namespace (default: the context's namespace).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Nodes that must be Ready (default 1).
    #[serde(default = "one")]
    pub min_ready_nodes: u32,
    /// Workloads that must be fully rolled out with every pod ready.
    #[serde(default)]
    pub workloads: Vec<WorkloadName>,
}

fn one() -> u32 {
    1
}

/// A workload to check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadName {
    /// `deployment` (default) or `statefulset`.
    #[serde(default)]
    pub kind: WorkloadKind,
    /// The workload's name.
    pub name: String,
}

impl TypedStep for CheckCluster {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Checks that a cluster has `min_ready_nodes` Ready nodes and that the named `workloads` are \
            rolled out with every pod ready, waiting (by watch) until they are. Read-only.",
        example: r#"
min_ready_nodes: 3
namespace: production
workloads:
  - name: api
  - {kind: statefulset, name: worker}
"#,
        failure: crate::k8s::STEP_FAILURES,
    };
    type Params = CheckClusterParams;
    const NAME: &'static str = "kube.check_cluster";
    const SUMMARY: &'static str =
        "Check that a cluster's nodes are Ready and the named workloads' pods are ready, waiting until they are.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::integer("ready_nodes", "How many nodes were Ready."),
        OutputSpec::string(
            "workloads",
            "Each workload checked with its ready and desired replicas (`deployment/api 10/10`), \
                separated by `, `.",
        ),
    ];
    const POLICY: crate::step::TypePolicy = crate::step::TypePolicy::CHECK;

    fn build(&self, params: CheckClusterParams, context: &BuildContext) -> Box<dyn Step> {
        let context = context_for(params.context, context);
        let workloads = params
            .workloads
            .into_iter()
            .map(|w| WorkloadRef {
                context: context.clone(),
                namespace: params.namespace.clone(),
                kind: w.kind,
                name: w.name,
            })
            .collect();
        Box::new(CheckStep { kube: self.kube.clone(), context, min_ready_nodes: params.min_ready_nodes, workloads })
    }
}

struct CheckStep {
    kube: SharedKube,
    context: Option<String>,
    min_ready_nodes: u32,
    workloads: Vec<WorkloadRef>,
}

/// Why a node is not Ready, or `None` if it is.
fn node_problem(node: &Node) -> Option<String> {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    let ready = conditions.and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    match ready {
        Some(c) if c.status == "True" => None,
        Some(c) => Some(format!("Ready={} {}", c.status, c.reason.clone().unwrap_or_default()).trim().to_string()),
        None => Some("no Ready condition".into()),
    }
}

/// What the step found: ready nodes, each workload's state, and every problem.
#[derive(Default)]
struct Health {
    ready_nodes: u32,
    workloads: Vec<String>,
    problems: Vec<String>,
}

impl CheckStep {
    fn nodes_target(&self) -> Target {
        Target::new(self.context.as_deref(), "node", "", "")
    }

    async fn health(&self) -> Result<Health, StepError> {
        let mut health = Health::default();
        let client = self.kube.client(self.context.as_deref()).await?;
        let nodes: Api<Node> = Api::all(client);
        let target = self.nodes_target();
        let list = nodes.list(&ListParams::default()).await.map_err(|e| step_error(&e, "list", &target))?;
        let mut unready = Vec::new();
        for node in &list.items {
            match node_problem(node) {
                None => health.ready_nodes += 1,
                Some(problem) => {
                    unready.push(format!("{} ({problem})", node.metadata.name.clone().unwrap_or_default()))
                }
            }
        }
        if health.ready_nodes < self.min_ready_nodes {
            health.problems.push(format!(
                "{} of {} ready nodes in context {} (not ready: {})",
                health.ready_nodes,
                self.min_ready_nodes,
                target.context,
                if unready.is_empty() { "none listed".into() } else { unready.join(", ") }
            ));
        }
        for workload in &self.workloads {
            with_workload_type!(workload.kind, K => self.workload_health::<K>(workload, &mut health).await?);
        }
        Ok(health)
    }

    async fn workload_health<K: Workload>(&self, workload: &WorkloadRef, health: &mut Health) -> Result<(), StepError> {
        let c = workload.connect(&self.kube).await?;
        let api: Api<K> = c.api();
        let object = api.get(&workload.name).await.map_err(|e| step_error(&e, "read", &c.target))?;
        let ready = serde_json::to_value(&object).ok().and_then(|v| v.pointer("/status/readyReplicas")?.as_i64());
        let desired = object.desired_replicas();
        health.workloads.push(format!("{}/{} {}/{desired}", workload.kind.as_str(), workload.name, ready.unwrap_or(0)));
        match object.progress() {
            Progress::Complete => {}
            Progress::Waiting(what) | Progress::Failed(what) => {
                let pods = unready_pods(&c.pods(), &object).await;
                health.problems.push(format!("{}: {what}; {pods}", c.target));
            }
        }
        Ok(())
    }

    fn outputs(&self, health: &Health) -> Outputs {
        Outputs::from([
            ("ready_nodes".into(), health.ready_nodes.to_string()),
            ("workloads".into(), health.workloads.join(", ")),
        ])
    }
}

#[async_trait]
impl Step for CheckStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        super::preflight::cluster(&self.kube, self.context.as_deref(), &self.workloads).await
    }

    fn describe(&self) -> String {
        let context = self.context.as_deref().unwrap_or("the current context");
        let workloads: Vec<String> = self.workloads.iter().map(|w| format!("{}/{}", w.kind.as_str(), w.name)).collect();
        match workloads.is_empty() {
            true => format!("check that {context} has {} ready nodes", self.min_ready_nodes),
            false => format!(
                "check that {context} has {} ready nodes and {} ready",
                self.min_ready_nodes,
                workloads.join(", ")
            ),
        }
    }

    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        let health = self.health().await?;
        if health.problems.is_empty() {
            return Ok(Observation::Done(self.outputs(&health)));
        }
        Ok(Observation::NotDone)
    }

    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
        Ok(Receipt::NONE)
    }

    /// One look at the nodes and workloads: done when nothing is missing.
    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> StepProgress {
        match self.health().await {
            Ok(health) if health.problems.is_empty() => StepProgress::Done,
            Ok(health) => StepProgress::Waiting(health.problems.join("; ")),
            Err(e) => StepProgress::Failed(e),
        }
    }

    fn poll_interval(&self) -> std::time::Duration {
        ROLLOUT_POLL
    }

    async fn verify(&self, _ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        let health = self.health().await?;
        match health.problems.is_empty() {
            true => Ok(self.outputs(&health)),
            false => Err(StepError::retryable(health.problems.join("; "))),
        }
    }
}
