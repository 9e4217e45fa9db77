//! The Kubernetes step types: `kube.scale`, `kube.set_env`, `kube.write_secret`,
//! `kube.rollout_restart`, `kube.rollout_undo`, `kube.apply` and `kube.check_cluster`.
//!
//! Each step names a kubeconfig context (`with.context`); by default the plan's `kubernetes:`
//! context of the region the run moves to (the secondary for a failover, the primary for a
//! failback), else the kubeconfig's current context or the in-cluster service account. Every step
//! observes before it acts and, where the change takes time (a rollout), watches until it is real.

mod apply;
mod check;
mod delete;
mod env;
mod manifests;
mod preflight;
mod restart;
mod rollout;
mod scale;
mod secret;
#[cfg(test)]
mod tests;
mod undo;
pub mod workload;

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};

pub use apply::Apply;
pub use check::CheckCluster;
pub use delete::Delete;
pub use env::SetEnv;
pub use restart::RolloutRestart;
pub use scale::Scale;
pub use secret::WriteSecret;
pub use undo::RolloutUndo;
use workload::WorkloadKind;

use crate::k8s::{Kube, Target};
use crate::step::{BuildContext, StepContext, StepError};

/// Annotation that records which run and step restarted or rolled back a workload, so that a
/// resumed or repeated step finds its own change instead of making it again.
pub const MARKER_PREFIX: &str = "drctl.dev/";

/// The context a step talks to: `with.context`, else the plan's context for the region the run
/// moves to, else `None` (the kubeconfig's current context).
pub fn context_for(explicit: Option<String>, build: &BuildContext) -> Option<String> {
    explicit.or_else(|| build.target_context().map(str::to_string))
}

/// The run and step that made a change: the value of drctl's marker annotations.
pub fn marker(ctx: &StepContext) -> String {
    format!("{}/{}", ctx.run_id, ctx.step_id)
}

/// One workload a step works on.
#[derive(Debug, Clone)]
pub struct WorkloadRef {
    pub context: Option<String>,
    /// `None`: the context's default namespace.
    pub namespace: Option<String>,
    pub kind: WorkloadKind,
    pub name: String,
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.kind.as_str())?;
        if let Some(namespace) = &self.namespace {
            write!(f, "{namespace}/")?;
        }
        write!(f, "{}", self.name)?;
        if let Some(context) = &self.context {
            write!(f, " in context {context}")?;
        }
        Ok(())
    }
}

/// A client and namespace for one workload, with the [`Target`] its errors name.
pub struct Connected {
    pub client: Client,
    pub namespace: String,
    pub target: Target,
}

impl WorkloadRef {
    /// Connects to the workload's cluster.
    pub async fn connect(&self, kube: &Kube) -> Result<Connected, StepError> {
        connect(kube, self.context.as_deref(), self.namespace.as_deref(), self.kind.as_str(), &self.name).await
    }
}

/// Connects to `context` for an object of `kind` called `name` in `namespace` (the context's
/// default namespace when `None`).
pub async fn connect(
    kube: &Kube,
    context: Option<&str>,
    namespace: Option<&str>,
    kind: &str,
    name: &str,
) -> Result<Connected, StepError> {
    let client = kube.client(context).await?;
    let namespace = namespace.map(str::to_string).unwrap_or_else(|| client.default_namespace().to_string());
    let target = Target::new(context, kind, &namespace, name);
    Ok(Connected { client, namespace, target })
}

impl Connected {
    /// The API of namespaced objects of type `K` in the workload's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The pods of the workload's namespace.
    pub fn pods(&self) -> Api<Pod> {
        self.api()
    }
}

/// Registers the Kubernetes step types.
pub fn register(registry: &mut crate::step::Registry, services: &crate::steps::Services) {
    let kube = &services.kube;
    registry
        .register(Scale { kube: kube.clone() })
        .register(SetEnv { kube: kube.clone() })
        .register(WriteSecret { kube: kube.clone(), aws: services.aws.clone() })
        .register(RolloutRestart { kube: kube.clone() })
        .register(RolloutUndo { kube: kube.clone() })
        .register(Apply { kube: kube.clone() })
        .register(Delete { kube: kube.clone() })
        .register(CheckCluster { kube: kube.clone() });
}

/// Shared by the step types.
type SharedKube = Arc<Kube>;
