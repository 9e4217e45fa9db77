//! `kube.rollout_undo`: rolls a Deployment back to an earlier revision, as `kubectl rollout undo`
//! does (the runbooks' first mitigation for a bad deploy), then waits for the rollout.
//!
//! The earlier revisions are the Deployment's ReplicaSets; the chosen one's pod template becomes
//! the Deployment's again. The Deployment is annotated `drctl.dev/undone-by: RUN/STEP` together
//! with the revisions it went from and to, in the same write, so a resumed or repeated step finds
//! its own rollback and never rolls back twice. Outputs: `from_revision`, `to_revision` and
//! `revision` (the revision number the restored template runs under now).

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::ListParams;
use kube::{Api, Resource};
use schemars::JsonSchema;
use serde::Deserialize;

use super::env::revision;
use super::rollout::{ROLLOUT_POLL, rollout_progress, update};
use super::workload::{Progress, Workload, WorkloadKind, pod_selector};
use super::{Connected, SharedKube, WorkloadRef, context_for, marker};
use crate::k8s::step_error;
use crate::step::Progress as StepProgress;
use crate::step::{BuildContext, Observation, OutputSpec, Outputs, Receipt, Step, StepContext, StepError, TypedStep};

const REVISION: &str = "deployment.kubernetes.io/revision";
const UNDONE_BY: &str = "drctl.dev/undone-by";
const UNDONE_FROM: &str = "drctl.dev/undone-from-revision";
const UNDONE_TO: &str = "drctl.dev/undone-to-revision";

/// The `kube.rollout_undo` step type.
pub struct RolloutUndo {
    pub kube: SharedKube,
}

/// `with:` of a `kube.rollout_undo` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UndoParams {
    /// The kubeconfig context (default: the plan's context of the region the run moves to).
    #[serde(default)]
    pub context: Option<String>,
    /// The Deployment's namespace (default: the context's namespace).
    #[serde(default)]
    pub namespace: Option<String>,
    /// The Deployment's name.
    pub name: String,
    /// The revision to go back to (default: the one before the current).
    #[serde(default)]
    pub to_revision: Option<u64>,
}

impl TypedStep for RolloutUndo {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Rolls a Deployment back to the previous revision (or `to_revision`) from its ReplicaSets, like \
            `kubectl rollout undo`, once per step, and watches the rollout.",
        example: r#"
name: api
namespace: production
"#,
        failure: crate::k8s::STEP_FAILURES,
    };
    type Params = UndoParams;
    const NAME: &'static str = "kube.rollout_undo";
    const SUMMARY: &'static str =
        "Roll a Deployment back to its previous (or a given) revision, like kubectl rollout undo, and wait for it.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::integer("from_revision", "The revision the Deployment was rolled back from."),
        OutputSpec::integer("to_revision", "The revision whose pod template it was rolled back to."),
        OutputSpec::integer("revision", "The Deployment's revision after the rollback."),
    ];

    fn build(&self, params: UndoParams, context: &BuildContext) -> Box<dyn Step> {
        let workload = WorkloadRef {
            context: context_for(params.context, context),
            namespace: params.namespace,
            kind: WorkloadKind::Deployment,
            name: params.name,
        };
        Box::new(UndoStep { kube: self.kube.clone(), workload, to_revision: params.to_revision })
    }
}

struct UndoStep {
    kube: SharedKube,
    workload: WorkloadRef,
    to_revision: Option<u64>,
}

fn annotation(deployment: &Deployment, key: &str) -> Option<String> {
    deployment.metadata.annotations.as_ref()?.get(key).cloned()
}

fn outputs(deployment: &Deployment) -> Outputs {
    let get = |key| annotation(deployment, key).unwrap_or_default();
    Outputs::from([
        ("from_revision".into(), get(UNDONE_FROM)),
        ("to_revision".into(), get(UNDONE_TO)),
        ("revision".into(), revision(deployment)),
    ])
}

impl UndoStep {
    async fn get(&self, c: &Connected) -> Result<Deployment, StepError> {
        let api: Api<Deployment> = c.api();
        api.get(&self.workload.name).await.map_err(|e| step_error(&e, "read", &c.target))
    }

    /// The Deployment's ReplicaSets by revision.
    async fn history(&self, c: &Connected, deployment: &Deployment) -> Result<BTreeMap<u64, ReplicaSet>, StepError> {
        let api: Api<ReplicaSet> = c.api();
        let mut params = ListParams::default();
        if let Some(selector) = pod_selector(deployment) {
            params = params.labels_from(&selector);
        }
        let list = api.list(&params).await.map_err(|e| step_error(&e, "list the replica sets of", &c.target))?;
        let uid = deployment.meta().uid.clone();
        let owned = list.items.into_iter().filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| Some(&o.uid) == uid.as_ref() && o.controller == Some(true))
        });
        Ok(owned.filter_map(|rs| Some((rs.metadata.annotations.as_ref()?.get(REVISION)?.parse().ok()?, rs))).collect())
    }
}

#[async_trait]
impl Step for UndoStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        super::preflight::workload(&self.kube, &self.workload, &[super::preflight::patch(self.workload.kind, "")]).await
    }

    fn describe(&self) -> String {
        match self.to_revision {
            Some(revision) => format!("roll {} back to revision {revision}", self.workload),
            None => format!("roll {} back to its previous revision", self.workload),
        }
    }

    async fn observe(&self, ctx: &StepContext) -> Result<Observation, StepError> {
        let c = self.workload.connect(&self.kube).await?;
        let deployment = self.get(&c).await?;
        let ours = annotation(&deployment, UNDONE_BY).as_deref() == Some(marker(ctx).as_str());
        Ok(match ours && deployment.progress() == Progress::Complete {
            true => Observation::Done(outputs(&deployment)),
            false => Observation::NotDone,
        })
    }

    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError> {
        let c = self.workload.connect(&self.kube).await?;
        let deployment = self.get(&c).await?;
        let marker = marker(ctx);
        if annotation(&deployment, UNDONE_BY).as_deref() == Some(marker.as_str()) {
            return Ok(Receipt::NONE);
        }
        let history = self.history(&c, &deployment).await?;
        let current: u64 = annotation(&deployment, REVISION).and_then(|r| r.parse().ok()).unwrap_or(0);
        let wanted = self.to_revision.or_else(|| history.range(..current).next_back().map(|(r, _)| *r));
        let known = history.keys().map(u64::to_string).collect::<Vec<_>>().join(", ");
        let Some(to) = wanted.filter(|r| *r != current) else {
            return Err(StepError::fatal(format!(
                "{} has no earlier revision to roll back to (current {current}; revisions kept: {known})",
                c.target
            )));
        };
        let Some(template) = history.get(&to).and_then(|rs| rs.spec.as_ref()?.template.clone()) else {
            return Err(StepError::fatal(format!(
                "{} has no revision {to} (revisions kept: {known}); fix `with.to_revision`",
                c.target
            )));
        };
        let mut template = template;
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove("pod-template-hash");
        }
        let api: Api<Deployment> = c.api();
        update(&api, &self.workload.name, &c.target, |d| {
            let annotations = d.metadata.annotations.get_or_insert_with(Default::default);
            annotations.insert(UNDONE_BY.into(), marker.clone());
            annotations.insert(UNDONE_FROM.into(), current.to_string());
            annotations.insert(UNDONE_TO.into(), to.to_string());
            if let Some(spec) = d.spec.as_mut() {
                spec.template = template.clone();
            }
            Ok(true)
        })
        .await
        .map(|_| Receipt::NONE)
    }

    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> StepProgress {
        let c = match self.workload.connect(&self.kube).await {
            Ok(c) => c,
            Err(e) => return StepProgress::Failed(e),
        };
        rollout_progress::<Deployment>(&c.api(), &c.pods(), &self.workload.name, &c.target).await
    }

    fn poll_interval(&self) -> std::time::Duration {
        ROLLOUT_POLL
    }

    async fn verify(&self, _ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        let c = self.workload.connect(&self.kube).await?;
        Ok(outputs(&self.get(&c).await?))
    }
}
