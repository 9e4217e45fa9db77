//! Manifest files as `kube.apply` and `kube.delete` read them: the documents of a YAML file
//! (relative to the plan), each with the API that serves its kind (found through discovery, custom
//! resources included) and the namespace it lives in. Errors name the file, line and column.

use std::path::PathBuf;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::{Scope, pinned_kind};
use kube::{Api, Client};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::{SharedKube, context_for};
use crate::k8s::{Target, step_error};
use crate::plan::yaml::{Pos, parse_documents};
use crate::step::{BuildContext, Outputs, ParamProblem, PlanContext, StepError};

/// `with:` of `kube.apply` and `kube.delete`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestParams {
    /// The kubeconfig context (default: the plan's context of the region the run moves to).
    #[serde(default)]
    pub context: Option<String>,
    /// The manifest file (YAML, `---` between objects), relative to the plan's directory.
    pub file: String,
    /// The namespace of namespaced objects that name none (default: the context's namespace).
    #[serde(default)]
    pub namespace: Option<String>,
}

impl ManifestParams {
    /// The file must exist beside the plan when the plan is checked, not only when the step runs
    /// in the middle of a failover. A templated path is checked when the step runs.
    pub fn check_file(&self, plan: &PlanContext) -> Result<(), ParamProblem> {
        if self.file.contains("{{") {
            return Ok(());
        }
        let path = plan.dir.join(&self.file);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(()),
            Ok(_) => Err(ParamProblem::new("file", format!("`{}` is not a file", path.display()))),
            Err(e) => Err(ParamProblem::new(
                "file",
                format!(
                    "cannot read the manifest file `{}` ({}); `file` is relative to the plan's folder",
                    path.display(),
                    crate::plan::io_reason(&e)
                ),
            )),
        }
    }
}

/// A manifest file in one cluster.
pub struct ManifestFile {
    pub kube: SharedKube,
    pub context: Option<String>,
    pub path: PathBuf,
    /// The namespace of namespaced objects that name none (default: the context's namespace).
    pub namespace: Option<String>,
}

/// One object of the file, ready to send.
pub struct Manifest {
    pub api: Api<DynamicObject>,
    /// The document, its namespace filled in.
    pub body: Value,
    pub name: String,
    pub target: Target,
}

impl ManifestFile {
    /// The file `params` names, in the cluster the step talks to.
    pub fn new(kube: &SharedKube, params: ManifestParams, context: &BuildContext) -> ManifestFile {
        let base = context.plan.path.parent().map(PathBuf::from).unwrap_or_default();
        ManifestFile {
            kube: kube.clone(),
            context: context_for(params.context, context),
            path: base.join(&params.file),
            namespace: params.namespace,
        }
    }

    fn at(&self, pos: Pos) -> String {
        format!("{}:{pos}", self.path.display())
    }

    /// Reads the file and finds each object's API.
    pub async fn load(&self) -> Result<Vec<Manifest>, StepError> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| {
            StepError::fatal(format!(
                "cannot read {}: {e}; `with.file` is relative to the plan's directory",
                self.path.display()
            ))
        })?;
        let documents =
            parse_documents(&text).map_err(|e| StepError::fatal(format!("{}: {}", self.at(e.pos), e.message)))?;
        let client = self.kube.client(self.context.as_deref()).await?;
        let mut manifests = Vec::new();
        for document in documents {
            manifests.push(self.manifest(&client, document.to_json(), document.pos).await?);
        }
        Ok(manifests)
    }

    async fn manifest(&self, client: &Client, mut body: Value, pos: Pos) -> Result<Manifest, StepError> {
        let field = |name: &str| body.pointer(name).and_then(Value::as_str).map(str::to_string);
        let (Some(api_version), Some(kind), Some(name)) =
            (field("/apiVersion"), field("/kind"), field("/metadata/name"))
        else {
            return Err(StepError::fatal(format!(
                "{}: a manifest needs `apiVersion`, `kind` and `metadata.name`",
                self.at(pos)
            )));
        };
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
        let gvk = GroupVersionKind::gvk(group, version, &kind);
        let cluster = Target::new(self.context.as_deref(), &kind.to_lowercase(), "", &name);
        let (resource, capabilities) = pinned_kind(client, &gvk).await.map_err(|e| match &e {
            kube::Error::Api(status) if status.code == 404 => StepError::fatal(format!(
                "{}: the API server of context {} does not serve {api_version} {kind}; is its CRD installed?",
                self.at(pos),
                cluster.context
            )),
            _ => step_error(&e, "discover the API of", &cluster),
        })?;
        let (api, target) = match capabilities.scope {
            Scope::Cluster => (Api::all_with(client.clone(), &resource), cluster),
            Scope::Namespaced => {
                let namespace = field("/metadata/namespace")
                    .or_else(|| self.namespace.clone())
                    .unwrap_or_else(|| client.default_namespace().to_string());
                body["metadata"]["namespace"] = Value::String(namespace.clone());
                let target = Target::new(self.context.as_deref(), &kind.to_lowercase(), &namespace, &name);
                (Api::namespaced_with(client.clone(), &namespace, &resource), target)
            }
        };
        Ok(Manifest { api, body, name, target: with_kind(target, &resource) })
    }
}

/// Names the target by its kind as written (`PrometheusRule`), for messages and outputs.
fn with_kind(mut target: Target, resource: &ApiResource) -> Target {
    target.kind = resource.kind.clone();
    target
}

/// `objects` (`PrometheusRule monitoring/dr-alerts, ...`) and `count`.
pub fn outputs(manifests: &[Manifest]) -> Outputs {
    let objects: Vec<String> = manifests
        .iter()
        .map(|m| match m.target.namespace.is_empty() {
            true => format!("{} {}", m.target.kind, m.name),
            false => format!("{} {}/{}", m.target.kind, m.target.namespace, m.name),
        })
        .collect();
    Outputs::from([("objects".into(), objects.join(", ")), ("count".into(), manifests.len().to_string())])
}
