//! `kube.rollout_restart`: restarts a workload's pods the way `kubectl rollout restart` does (a
//! `kubectl.kubernetes.io/restartedAt` annotation on the pod template), then waits for the rollout.
//!
//! The template also gets `drctl.dev/restarted-by: RUN/STEP`. Observation looks for that marker:
//! a resumed or repeated step finds its own restart and only waits, so pods restart once per step.
//! Outputs: `revision` and `restarted_at`.

use async_trait::async_trait;
use kube::Api;
use kube::api::{Patch, PatchParams};
use schemars::JsonSchema;
use serde::Deserialize;

use super::env::revision;
use super::rollout::{ROLLOUT_POLL, poll_rollout};
use super::workload::{Progress, Workload, WorkloadKind, with_workload_type};
use super::{Connected, SharedKube, WorkloadRef, context_for, marker};
use crate::k8s::step_error;
use crate::step::Progress as StepProgress;
use crate::step::{BuildContext, Observation, OutputSpec, Outputs, Receipt, Step, StepContext, StepError, TypedStep};

/// The template annotation kubectl sets to restart pods.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The template annotation naming the run and step that restarted the pods.
const RESTARTED_BY: &str = "drctl.dev/restarted-by";

/// The `kube.rollout_restart` step type.
pub struct RolloutRestart {
    pub kube: SharedKube,
}

/// `with:` of a `kube.rollout_restart` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartParams {
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
}

impl TypedStep for RolloutRestart {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Restarts a workload's pods like `kubectl rollout restart`, then watches the rollout. The restart \
            is made once per step (a `drctl.dev/restarted-by` annotation names the run and step), so a resumed run \
            does not restart again.",
        example: r#"
name: api
namespace: production
"#,
        failure: crate::k8s::STEP_FAILURES,
    };
    type Params = RestartParams;
    const NAME: &'static str = "kube.rollout_restart";
    const SUMMARY: &'static str =
        "Restart a workload's pods (like kubectl rollout restart), once per step, and wait for the rollout.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::string(
            "revision",
            "The workload's revision after the restart; absent when the workload reports none.",
        )
        .optional(),
        OutputSpec::string("restarted_at", "When the step restarted it, RFC 3339 in UTC."),
    ];

    fn build(&self, params: RestartParams, context: &BuildContext) -> Box<dyn Step> {
        let workload = WorkloadRef {
            context: context_for(params.context, context),
            namespace: params.namespace,
            kind: params.kind,
            name: params.name,
        };
        Box::new(RestartStep { kube: self.kube.clone(), workload })
    }
}

struct RestartStep {
    kube: SharedKube,
    workload: WorkloadRef,
}

/// What observation found: whether this step's restart is in the template, its time, the
/// rollout's progress and revision.
struct Seen {
    restarted: bool,
    restarted_at: String,
    progress: Progress,
    revision: String,
}

impl RestartStep {
    async fn look<K: Workload>(&self, c: &Connected, marker: &str) -> Result<Seen, StepError> {
        let api: Api<K> = c.api();
        let workload = api.get(&self.workload.name).await.map_err(|e| step_error(&e, "read", &c.target))?;
        let annotations = workload.template().and_then(|t| t.metadata.as_ref()).and_then(|m| m.annotations.as_ref());
        let get = |key: &str| annotations.and_then(|a| a.get(key)).cloned();
        Ok(Seen {
            restarted: get(RESTARTED_BY).as_deref() == Some(marker),
            restarted_at: get(RESTARTED_AT).unwrap_or_default(),
            progress: workload.progress(),
            revision: revision(&workload),
        })
    }

    async fn restart<K: Workload>(&self, c: &Connected, ctx: &StepContext) -> Result<(), StepError> {
        let marker = marker(ctx);
        if self.look::<K>(c, &marker).await?.restarted {
            return Ok(());
        }
        let now = humantime::format_rfc3339_seconds(ctx.clock.now()).to_string();
        let annotations = serde_json::json!({ RESTARTED_AT: now, RESTARTED_BY: marker });
        let patch =
            Patch::Merge(serde_json::json!({ "spec": { "template": { "metadata": { "annotations": annotations } } } }));
        let api: Api<K> = c.api();
        api.patch(&self.workload.name, &PatchParams::default(), &patch)
            .await
            .map_err(|e| step_error(&e, "restart", &c.target))?;
        Ok(())
    }
}

fn outputs(seen: Seen) -> Outputs {
    let mut outputs = Outputs::from([("restarted_at".into(), seen.restarted_at)]);
    // A workload that reports no revision has none to hand on: absent, not "".
    outputs.extend(Some(("revision".into(), seen.revision)).filter(|(_, r)| !r.is_empty()));
    outputs
}

#[async_trait]
impl Step for RestartStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        super::preflight::workload(&self.kube, &self.workload, &[super::preflight::patch(self.workload.kind, "")]).await
    }

    fn describe(&self) -> String {
        format!("restart the pods of {}", self.workload)
    }

    async fn observe(&self, ctx: &StepContext) -> Result<Observation, StepError> {
        let c = self.workload.connect(&self.kube).await?;
        let seen = with_workload_type!(self.workload.kind, K => self.look::<K>(&c, &marker(ctx)).await?);
        Ok(match seen.restarted && seen.progress == Progress::Complete {
            true => Observation::Done(outputs(seen)),
            false => Observation::NotDone,
        })
    }

    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError> {
        let c = self.workload.connect(&self.kube).await?;
        with_workload_type!(self.workload.kind, K => self.restart::<K>(&c, ctx).await).map(|()| Receipt::NONE)
    }

    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> StepProgress {
        poll_rollout(&self.kube, &self.workload).await
    }

    fn poll_interval(&self) -> std::time::Duration {
        ROLLOUT_POLL
    }

    async fn verify(&self, ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        let c = self.workload.connect(&self.kube).await?;
        let seen = with_workload_type!(self.workload.kind, K => self.look::<K>(&c, &marker(ctx)).await?);
        match seen.restarted {
            true => Ok(outputs(seen)),
            false => {
                Err(StepError::retryable(format!("{} lost the restart annotation: it was changed again", c.target)))
            }
        }
    }
}
