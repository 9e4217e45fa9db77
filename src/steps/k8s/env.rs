//! `kube.set_env`: sets environment variables on a workload's containers, then waits for the
//! rollout that the changed pod template starts.
//!
//! A value is a literal (often a template of another step's output) or a reference to a key of a
//! Kubernetes Secret or ConfigMap (`{secret: app-db, key: DATABASE_URL}`), which puts a
//! `valueFrom` in the pod spec: the value itself never enters the Deployment, a log or the journal.
//! A `secretsmanager://` reference is refused as a literal, since resolving it would write the
//! secret into the pod spec; write it to a Secret with `kube.write_secret` instead.
//!
//! Observation compares every variable of every chosen container; when all match and the rollout
//! is complete, nothing is written. Writes carry the resourceVersion they read (a conflict re-reads).
//! Outputs: `revision` (the Deployment's rollout revision, or the StatefulSet's update revision)
//! and `variables` (the names set, comma-separated).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMapKeySelector, EnvVar, EnvVarSource, SecretKeySelector};
use kube::Api;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::rollout::{ROLLOUT_POLL, poll_rollout, update};
use super::workload::{Progress, Workload, WorkloadKind, with_workload_type};
use super::{Connected, SharedKube, WorkloadRef, context_for};
use crate::k8s::step_error;
use crate::step::Progress as StepProgress;
use crate::step::{BuildContext, Observation, OutputSpec, Outputs, Receipt, Step, StepContext, StepError, TypedStep};
use crate::steps::aws_secrets::SecretRef;

/// The `kube.set_env` step type.
pub struct SetEnv {
    pub kube: SharedKube,
}

/// `with:` of a `kube.set_env` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetEnvParams {
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
    /// The container to change (default: every container of the pod template).
    #[serde(default)]
    pub container: Option<String>,
    /// Variables by name: a literal, or `{secret: NAME, key: KEY}` / `{config_map: NAME, key: KEY}`.
    pub env: BTreeMap<String, EnvValue>,
}

/// One variable's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A literal (numbers and booleans are written as text).
    Literal(String),
    /// A key of a Kubernetes Secret.
    Secret { name: String, key: String },
    /// A key of a ConfigMap.
    ConfigMap { name: String, key: String },
}

/// The mapping form of [`EnvValue`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvSourceFields {
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    config_map: Option<String>,
    key: String,
}

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvVisitor;
        impl<'de> Visitor<'de> for EnvVisitor {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value, or {secret: NAME, key: KEY} or {config_map: NAME, key: KEY}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EnvValue, A::Error> {
                let fields = EnvSourceFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                match (fields.secret, fields.config_map) {
                    (Some(name), None) => Ok(EnvValue::Secret { name, key: fields.key }),
                    (None, Some(name)) => Ok(EnvValue::ConfigMap { name, key: fields.key }),
                    _ => Err(de::Error::custom("name exactly one of `secret` or `config_map`, with `key`")),
                }
            }
        }
        deserializer.deserialize_any(EnvVisitor)
    }
}

impl JsonSchema for EnvValue {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "EnvValue".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let from = |source: &str| {
            serde_json::json!({ "type": "object", "additionalProperties": false, "required": [source, "key"],
                "properties": { source: { "type": "string" }, "key": { "type": "string" } } })
        };
        json_schema!({ "oneOf": [{ "type": ["string", "number", "boolean"] }, from("secret"), from("config_map")] })
    }
}

impl EnvValue {
    /// The variable as the pod spec holds it.
    fn to_env_var(&self, name: &str) -> EnvVar {
        let mut var = EnvVar { name: name.to_string(), ..EnvVar::default() };
        match self {
            EnvValue::Literal(value) => var.value = Some(value.clone()),
            EnvValue::Secret { name, key } => {
                let selector = SecretKeySelector { name: name.clone(), key: key.clone(), optional: None };
                var.value_from = Some(EnvVarSource { secret_key_ref: Some(selector), ..Default::default() });
            }
            EnvValue::ConfigMap { name, key } => {
                let selector = ConfigMapKeySelector { name: name.clone(), key: key.clone(), optional: None };
                var.value_from = Some(EnvVarSource { config_map_key_ref: Some(selector), ..Default::default() });
            }
        }
        var
    }
}

impl TypedStep for SetEnv {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "Sets environment variables on a workload's containers (or one `container`) and watches the \
            rollout. A value is a literal, a step output, or a reference to a Secret or ConfigMap key, so a secret \
            value never enters the workload's spec. Variables already set as asked are left alone.",
        example: r#"
name: api
namespace: production
env:
  DATABASE_HOST: "{{ steps.promote.outputs.endpoint }}"
  DATABASE_PASSWORD: {secret: app-db, key: password}
  ACTIVE_REGION: us-west-2
"#,
        failure: crate::k8s::STEP_FAILURES,
    };
    type Params = SetEnvParams;
    const NAME: &'static str = "kube.set_env";
    const SUMMARY: &'static str = "Set environment variables on a workload's containers (literals or Secret/ConfigMap keys) and wait for the rollout.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::string(
            "revision",
            "The workload's revision after the rollout; absent when the workload reports none.",
        )
        .optional(),
        OutputSpec::string("variables", "The names of the variables set, separated by `,`."),
    ];

    fn build(&self, params: SetEnvParams, context: &BuildContext) -> Box<dyn Step> {
        let workload = WorkloadRef {
            context: context_for(params.context, context),
            namespace: params.namespace,
            kind: params.kind,
            name: params.name,
        };
        let env = params.env.iter().map(|(name, value)| value.to_env_var(name)).collect();
        Box::new(SetEnvStep { kube: self.kube.clone(), workload, container: params.container, env })
    }
}

struct SetEnvStep {
    kube: SharedKube,
    workload: WorkloadRef,
    container: Option<String>,
    env: Vec<EnvVar>,
}

impl SetEnvStep {
    fn names(&self) -> String {
        self.env.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// Refuses a literal that is a Secrets Manager reference (it would put the secret in the spec).
    fn check_values(&self) -> Result<(), StepError> {
        let reference = self.env.iter().find(|v| v.value.as_deref().is_some_and(|t| SecretRef::parse(t).is_ok()));
        match reference {
            Some(var) => Err(StepError::fatal(format!(
                "`with.env.{}` is a Secrets Manager reference; resolving it would write the secret into the pod spec. \
                 Write it to a Kubernetes Secret with a `kube.write_secret` step and use `{{secret: NAME, key: KEY}}`",
                var.name
            ))),
            None => Ok(()),
        }
    }

    /// Sets the variables on the chosen containers of `workload`; false when all were in place.
    fn apply_to<K: Workload>(&self, workload: &mut K, target: &str) -> Result<bool, StepError> {
        let Some(template) = workload.template_mut() else { return Ok(false) };
        let containers = &mut template.spec.get_or_insert_with(Default::default).containers;
        let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
        let mut chosen =
            containers.iter_mut().filter(|c| self.container.as_ref().is_none_or(|n| *n == c.name)).peekable();
        if chosen.peek().is_none() {
            let wanted = self.container.as_deref().unwrap_or_default();
            return Err(StepError::fatal(format!(
                "{target} has no container `{wanted}` (it has {}); fix `with.container`",
                names.join(", ")
            )));
        }
        let mut changed = false;
        for container in chosen {
            let vars = container.env.get_or_insert_with(Vec::new);
            for wanted in &self.env {
                match vars.iter_mut().find(|v| v.name == wanted.name) {
                    Some(var) if var == wanted => continue,
                    Some(var) => *var = wanted.clone(),
                    None => vars.push(wanted.clone()),
                }
                changed = true;
            }
        }
        Ok(changed)
    }

    async fn look<K: Workload>(&self, c: &Connected) -> Result<(bool, Progress, String), StepError> {
        let api: Api<K> = c.api();
        let mut workload = api.get(&self.workload.name).await.map_err(|e| step_error(&e, "read", &c.target))?;
        let changed = self.apply_to(&mut workload, &c.target.to_string())?;
        Ok((!changed, workload.progress(), revision(&workload)))
    }

    fn outputs(&self, revision: String) -> Outputs {
        let mut outputs = Outputs::from([("variables".into(), self.names().replace(' ', ""))]);
        // A workload that reports no revision has none to hand on: absent, not "".
        outputs.extend(Some(("revision".into(), revision)).filter(|(_, r)| !r.is_empty()));
        outputs
    }
}

/// The rollout revision: a Deployment's `deployment.kubernetes.io/revision` annotation, or a
/// StatefulSet's `status.updateRevision`.
pub fn revision<K: Workload>(workload: &K) -> String {
    let annotation = workload.meta().annotations.as_ref().and_then(|a| a.get("deployment.kubernetes.io/revision"));
    if let Some(revision) = annotation {
        return revision.clone();
    }
    let value = serde_json::to_value(workload).unwrap_or_default();
    value.pointer("/status/updateRevision").and_then(|v| v.as_str()).unwrap_or_default().to_string()
}

#[async_trait]
impl Step for SetEnvStep {
    async fn preflight(&self, _ctx: &StepContext) -> Vec<crate::step::Finding> {
        super::preflight::workload(&self.kube, &self.workload, &[super::preflight::patch(self.workload.kind, "")]).await
    }

    fn describe(&self) -> String {
        let container = self.container.as_ref().map(|c| format!(" (container {c})")).unwrap_or_default();
        format!("set {} on {}{container}", self.names(), self.workload)
    }

    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        self.check_values()?;
        let c = self.workload.connect(&self.kube).await?;
        let (in_place, progress, revision) = with_workload_type!(self.workload.kind, K => self.look::<K>(&c).await?);
        Ok(match in_place && progress == Progress::Complete {
            true => Observation::Done(self.outputs(revision)),
            false => Observation::NotDone,
        })
    }

    async fn act(&self, _ctx: &StepContext) -> Result<Receipt, StepError> {
        let c = self.workload.connect(&self.kube).await?;
        let target = c.target.to_string();
        with_workload_type!(self.workload.kind, K => {
            update::<K>(&c.api(), &self.workload.name, &c.target, |w| self.apply_to(w, &target)).await.map(|_| Receipt::NONE)
        })
    }

    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> StepProgress {
        poll_rollout(&self.kube, &self.workload).await
    }

    fn poll_interval(&self) -> std::time::Duration {
        ROLLOUT_POLL
    }

    async fn verify(&self, _ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        let c = self.workload.connect(&self.kube).await?;
        let (in_place, _, revision) = with_workload_type!(self.workload.kind, K => self.look::<K>(&c).await?);
        match in_place {
            true => Ok(self.outputs(revision)),
            false => Err(StepError::retryable(format!("{} changed again: {} are not as set", c.target, self.names()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::de::from_node;
    use crate::plan::yaml::parse;

    fn params(yaml: &str) -> Result<SetEnvParams, String> {
        from_node::<SetEnvParams>(&parse(yaml).unwrap()).map_err(|e| format!("{} at {}: {}", e.path, e.pos, e.message))
    }

    #[test]
    fn values_are_literals_or_key_references() {
        let p = params("name: app\nenv:\n  PORT: 8080\n  URL: x\n  DB: {secret: app-db, key: DATABASE_URL}\n").unwrap();
        assert_eq!(p.env["PORT"], EnvValue::Literal("8080".into()));
        assert_eq!(p.env["DB"], EnvValue::Secret { name: "app-db".into(), key: "DATABASE_URL".into() });
        let var = p.env["DB"].to_env_var("DB");
        assert_eq!(var.value_from.unwrap().secret_key_ref.unwrap().key, "DATABASE_URL");
        let both = params("name: app\nenv:\n  DB: {secret: a, config_map: b, key: k}\n").unwrap_err();
        assert!(both.contains("exactly one of `secret` or `config_map`"), "{both}");
        let unknown = params("name: app\nenv:\n  DB: {secrett: a, key: k}\n").unwrap_err();
        assert!(unknown.contains("secrett"), "{unknown}");
    }
}
