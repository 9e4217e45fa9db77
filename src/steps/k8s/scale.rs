//! `kube.scale`: sets a Deployment's or StatefulSet's replicas through the scale subresource, then
//! watches until that many replicas are ready.
//!
//! Observation reads the workload: at the target count and fully rolled out, the step is done. A
//! resumed run whose scale request already landed finds the count in place and only waits, so the
//! workload is never patched twice. Outputs: `replicas`, `previous_replicas` (the count when the
//! step first looked) and `ready_replicas`.

use async_trait::async_trait;
use kube::Api;
use kube::api::{Patch, PatchParams};
use schemars::JsonSchema;
use serde::Deserialize;

use super::rollout::{ROLLOUT_POLL, poll_rollout};
use super::workload::{Progress, Workload, WorkloadKind, with_workload_type};
use super::{Connected, SharedKube, WorkloadRef, context_for};
use crate::k8s::step_error;
use crate::step::Progress as StepProgress;
use crate::step::{BuildContext, Observation, OutputSpec, Outputs, Receipt, Step, StepContext, StepError, TypedStep};

/// The `kube.scale` step type.
pub struct Scale {
    pub kube: SharedKube,
}

/// `with:` of a `kube.scale` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleParams {
    /// The kubeconfig context (default: the plan's context of the region the run moves to).
    #[serde(default)]
    pub context: Option<String>,
    /// The workload's namespace (default: the context's namespace).
    #[serde(default)]
    pub namespace: Option<String>,
    /// `deployment` (default) or `statefulset`.
    #[serde(default)]
    pub kind: WorkloadKind,
    /// The workload's name.
    pub name: String,
    /// The replica count to reach; the step waits until that many are ready.
    #[schemars(range(max = 100000))]
    pub replicas: u32,
}

impl TypedStep for Scale {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Sets a Deployment's or StatefulSet's replica count through the scale subresource, then watches \
            until that many replicas are ready. A workload already at the count is left alone.",
        example: r#"
name: api
namespace: production
replicas: 10
"#,
        failure: crate::k8s::STEP_FAILURES,
    };
    type Params = ScaleParams;
    const NAME: &'static str = "kube.scale";
    const SUMMARY: &'static str =
        "Scale a Deployment or StatefulSet through its scale subresource and wait until the replicas are ready.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::integer("replicas", "The replica count set."),
        OutputSpec::integer("previous_replicas", "The replica count before the step."),
        OutputSpec::integer("ready_replicas", "How many replicas were ready when the step finished."),
    ];

    fn build(&self, params: ScaleParams, context: &BuildContext) -> Box<dyn Step> {
        let workload = WorkloadRef {
            context: context_for(params.context, context),
            namespace: params.namespace,
            kind: params.kind,
            name: params.name,
        };
        let replicas = i32::try_from(params.replicas).unwrap_or(i32::MAX);
        Box::new(ScaleStep { kube: self.kube.clone(), workload, replicas })
    }
}

struct ScaleStep {
    kube: SharedKube,
    workload: WorkloadRef,
    replicas: i32,
}

impl ScaleStep {
    fn outputs(&self, ready: i32, previous: i32) -> Outputs {
        Outputs::from([
            ("replicas".into(), self.replicas.to_string()),
            ("previous_replicas".into(), previous.to_string()),
            ("ready_replicas".into(), ready.to_string()),
        ])
    }

    /// The workload's desired count, ready count and rollout progress.
    async fn look<K: Workload>(&self, c: &Connected) -> Result<(i32, i32, Progress), StepError> {
        let api: Api<K> = c.api();
        let workload = api.get(&self.workload.name).await.map_err(|e| step_error(&e, "read", &c.target))?;
        Ok((workload.desired_replicas(), ready_replicas(&workload), workload.progress()))
    }

    /// Scales the workload; returns the replica count it had (the receipt).
    async fn scale<K: Workload>(&self, c: &Connected) -> Result<i32, StepError> {
        let api: Api<K> = c.api();
        let scale =
            api.get_scale(&self.workload.name).await.map_err(|e| step_error(&e, "read the scale of", &c.target))?;
        let previous = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
        if previous == self.replicas {
            return Ok(previous);
        }
        let patch = Patch::Merge(serde_json::json!({ "spec": { "replicas": self.replicas } }));
        api.patch_scale(&self.workload.name, &PatchParams::default(), &patch)
            .await
            .map_err(|e| step_error(&e, "scale", &c.target))?;
        Ok(previous)
    }
}

/// `status.readyReplicas` of either kind of workload.
fn ready_replicas<K: Workload>(workload: &K) -> i32 {
    let status = serde_json::to_value(workload).ok().and_then(|v| v.pointer("/status/readyReplicas")?.as_i64());
    status.and_then(|n| i32::try_from(n).ok()).unwrap_or(0)
}

#[async_trait]
impl Step for ScaleStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        super::preflight::workload(&self.kube, &self.workload, &[super::preflight::patch(self.workload.kind, "scale")])
            .await
    }

    fn describe(&self) -> String {
        format!("scale {} to {} replicas", self.workload, self.replicas)
    }

    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        let c = self.workload.connect(&self.kube).await?;
        let (desired, ready, progress) = with_workload_type!(self.workload.kind, K => self.look::<K>(&c).await?);
        Ok(match desired == self.replicas && progress == Progress::Complete {
            true => Observation::Done(self.outputs(ready, desired)),
            false => Observation::NotDone,
        })
    }

    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
        let c = self.workload.connect(&self.kube).await?;
        let previous = with_workload_type!(self.workload.kind, K => self.scale::<K>(&c).await)?;
        Ok(Receipt::of(&previous))
    }

    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> StepProgress {
        poll_rollout(&self.kube, &self.workload).await
    }

    fn poll_interval(&self) -> std::time::Duration {
        ROLLOUT_POLL
    }

    async fn verify(&self, _ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError> {
        let previous: i32 = receipt.read()?;
        let c = self.workload.connect(&self.kube).await?;
        let (desired, ready, progress) = with_workload_type!(self.workload.kind, K => self.look::<K>(&c).await?);
        if desired != self.replicas {
            return Err(StepError::retryable(format!(
                "{} has {desired} replicas, not {}: something else scaled it (an autoscaler?)",
                c.target, self.replicas
            )));
        }
        match progress {
            Progress::Complete => Ok(self.outputs(ready, previous)),
            Progress::Waiting(what) => Err(StepError::retryable(format!("{} is still waiting for {what}", c.target))),
            Progress::Failed(why) => Err(StepError::fatal(format!("the rollout of {} failed: {why}", c.target))),
        }
    }
}
