//! `kube.delete`: deletes the objects a manifest file declares (`kubectl delete -f --wait`), such
//! as the DR alerts a failover applied and its failback switches off.
//!
//! The file is read like `kube.apply` reads it. Objects already gone are left alone, so a resumed
//! or repeated step sends nothing; each object deleted is watched until it is gone (finalizers
//! done), not polled. Outputs: `objects` and `count`, as `kube.apply` has them.

use async_trait::async_trait;
use futures::future::try_join_all;
use kube::api::{DeleteParams as ApiDeleteParams, Preconditions};
use kube::runtime::wait::{await_condition, conditions};

use super::SharedKube;
use super::manifests::{Manifest, ManifestFile, ManifestParams, outputs};
use crate::k8s::step_error;
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, ParamProblem, PlanContext, Receipt, Step, StepContext, StepError,
    TypedStep,
};

/// The `kube.delete` step type.
pub struct Delete {
    pub kube: SharedKube,
}

impl TypedStep for Delete {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Deletes the objects a manifest file names (read as `kube.apply` reads it) and watches until they \
            are gone. Objects already gone are left alone.",
        example: r#"
file: manifests/primary-only.yaml
namespace: production
"#,
        failure: crate::k8s::STEP_FAILURES,
    };
    type Params = ManifestParams;
    const NAME: &'static str = "kube.delete";
    const SUMMARY: &'static str = "Delete the objects a manifest file names and wait until they are gone.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::string("objects", "The objects the file names, as `Kind namespace/name`, separated by `, `."),
        OutputSpec::integer("count", "How many objects the file names."),
    ];

    fn check_in_plan(params: &ManifestParams, plan: &PlanContext) -> Result<(), ParamProblem> {
        params.check_file(plan)
    }

    fn build(&self, params: ManifestParams, context: &BuildContext) -> Box<dyn Step> {
        Box::new(DeleteStep { file: ManifestFile::new(&self.kube, params, context) })
    }
}

struct DeleteStep {
    file: ManifestFile,
}

/// The uid of each object still there, by its index in `manifests`.
async fn present(manifests: &[Manifest]) -> Result<Vec<(usize, String)>, StepError> {
    let mut found = Vec::new();
    for (index, manifest) in manifests.iter().enumerate() {
        let live = manifest.api.get_opt(&manifest.name).await.map_err(|e| step_error(&e, "read", &manifest.target))?;
        if let Some(live) = live {
            found.push((index, live.metadata.uid.unwrap_or_default()));
        }
    }
    Ok(found)
}

/// Deletes the object (this very one: its uid is a precondition) and waits until it is gone.
async fn delete_and_wait(manifest: &Manifest, uid: &str) -> Result<(), StepError> {
    let params = ApiDeleteParams {
        preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
        ..ApiDeleteParams::background()
    };
    match manifest.api.delete(&manifest.name, &params).await {
        Ok(_) => {}
        // Gone already, or replaced by a new object someone else made: not ours to delete.
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => return Ok(()),
        Err(e) => return Err(step_error(&e, "delete", &manifest.target)),
    }
    await_condition(manifest.api.clone(), &manifest.name, conditions::is_deleted(uid))
        .await
        .map(drop)
        .map_err(|e| StepError::retryable(format!("{}: watching it go away failed: {e}", manifest.target)))
}

#[async_trait]
impl Step for DeleteStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        super::preflight::manifests(&self.file, "delete").await
    }

    fn describe(&self) -> String {
        let context = self.file.context.as_ref().map(|c| format!(" in context {c}")).unwrap_or_default();
        format!("delete the objects of {}{context}", self.file.path.display())
    }

    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        let manifests = self.file.load().await?;
        Ok(match present(&manifests).await?.is_empty() {
            true => Observation::Done(outputs(&manifests)),
            false => Observation::NotDone,
        })
    }

    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
        let manifests = self.file.load().await?;
        let present = present(&manifests).await?;
        try_join_all(present.iter().map(|(i, uid)| delete_and_wait(&manifests[*i], uid))).await?;
        Ok(Receipt::NONE)
    }

    async fn verify(&self, _ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        let manifests = self.file.load().await?;
        let left = present(&manifests).await?;
        match left.is_empty() {
            true => Ok(outputs(&manifests)),
            false => Err(StepError::retryable(format!(
                "{} still there",
                left.iter().map(|(i, _)| manifests[*i].target.to_string()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}
