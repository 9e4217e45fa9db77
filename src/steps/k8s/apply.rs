//! `kube.apply`: server-side apply of the manifests in a file (`kubectl apply --server-side -f`),
//! such as the runbook's `monitoring/dr-alerts.yaml`.
//!
//! The file is read when the step runs, relative to the plan's directory; its documents may be of
//! any kind the cluster serves (custom resources included), found through API discovery. Each
//! object is compared with the live one: when every field the manifest sets already has that
//! value, nothing is sent. Errors name the manifest's file, line and column. Outputs: `objects`
//! (`PrometheusRule monitoring/dr-alerts, ...`) and `count`.

use async_trait::async_trait;
use kube::api::{Patch, PatchParams};
use serde_json::Value;

use super::SharedKube;
use super::manifests::{Manifest, ManifestFile, ManifestParams, outputs};
use super::secret::FIELD_MANAGER;
use crate::k8s::step_error;
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, ParamProblem, PlanContext, Receipt, Step, StepContext, StepError,
    TypedStep,
};

/// The `kube.apply` step type.
pub struct Apply {
    pub kube: SharedKube,
}

impl TypedStep for Apply {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Server-side apply of the objects in a manifest file (YAML, `---` between objects, relative to \
            the plan's directory), any kind the cluster serves. Objects already as written are left alone, so a \
            resumed run changes nothing twice.",
        example: r#"
file: manifests/dr-overrides.yaml
namespace: production
"#,
        failure: crate::k8s::STEP_FAILURES,
    };
    type Params = ManifestParams;
    const NAME: &'static str = "kube.apply";
    const SUMMARY: &'static str = "Server-side apply the manifests of a file (any kind the cluster serves).";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::string("objects", "The objects in the file, as `Kind namespace/name`, separated by `, `."),
        OutputSpec::integer("count", "How many objects the file holds."),
    ];

    fn check_in_plan(params: &ManifestParams, plan: &PlanContext) -> Result<(), ParamProblem> {
        params.check_file(plan)
    }

    fn build(&self, params: ManifestParams, context: &BuildContext) -> Box<dyn Step> {
        Box::new(ApplyStep { file: ManifestFile::new(&self.kube, params, context) })
    }
}

struct ApplyStep {
    file: ManifestFile,
}

/// Whether `live` has every field `wanted` sets, with the same value.
fn contains(live: &Value, wanted: &Value) -> bool {
    match (live, wanted) {
        (Value::Object(live), Value::Object(wanted)) => {
            wanted.iter().all(|(key, value)| value.is_null() || live.get(key).is_some_and(|l| contains(l, value)))
        }
        (Value::Array(live), Value::Array(wanted)) => {
            live.len() == wanted.len() && live.iter().zip(wanted).all(|(l, w)| contains(l, w))
        }
        (Value::Number(live), Value::Number(wanted)) => live.as_f64() == wanted.as_f64(),
        _ => live == wanted,
    }
}

/// Whether every object is live as the manifest says.
async fn all_in_place(manifests: &[Manifest]) -> Result<bool, StepError> {
    for manifest in manifests {
        let live = manifest.api.get_opt(&manifest.name).await.map_err(|e| step_error(&e, "read", &manifest.target))?;
        let live = live.map(|l| serde_json::to_value(l).unwrap_or_default());
        if !live.is_some_and(|live| contains(&live, &manifest.body)) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[async_trait]
impl Step for ApplyStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        super::preflight::manifests(&self.file, "patch").await
    }

    fn describe(&self) -> String {
        let context = self.file.context.as_ref().map(|c| format!(" in context {c}")).unwrap_or_default();
        format!("apply {} (server-side){context}", self.file.path.display())
    }

    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        let manifests = self.file.load().await?;
        Ok(match all_in_place(&manifests).await? {
            true => Observation::Done(outputs(&manifests)),
            false => Observation::NotDone,
        })
    }

    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for manifest in self.file.load().await? {
            manifest
                .api
                .patch(&manifest.name, &params, &Patch::Apply(&manifest.body))
                .await
                .map_err(|e| step_error(&e, "apply", &manifest.target))?;
        }
        Ok(Receipt::NONE)
    }

    async fn verify(&self, _ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        let manifests = self.file.load().await?;
        match all_in_place(&manifests).await? {
            true => Ok(outputs(&manifests)),
            false => Err(StepError::retryable(format!(
                "the objects of {} are not all in place yet",
                self.file.path.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn live_objects_contain_what_the_manifest_sets() {
        let live = json!({ "metadata": { "name": "a", "uid": "1" }, "spec": { "replicas": 2.0, "rules": [{ "x": 1, "y": 2 }] } });
        assert!(contains(
            &live,
            &json!({ "metadata": { "name": "a" }, "spec": { "replicas": 2, "rules": [{ "x": 1 }] } })
        ));
        assert!(!contains(&live, &json!({ "spec": { "replicas": 3 } })));
        assert!(!contains(&live, &json!({ "spec": { "rules": [{ "x": 1 }, { "x": 2 }] } })));
        assert!(!contains(&live, &json!({ "spec": { "paused": true } })));
    }
}
