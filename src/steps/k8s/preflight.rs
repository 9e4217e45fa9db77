//! What every Kubernetes step's `preflight` checks, read-only: the context answers, the objects the
//! step works on exist, the manifest kinds are served, and RBAC allows the verbs the step will use
//! (asked with a SelfSubjectAccessReview, which changes nothing).

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::PostParams;
use kube::{Api, Client};

use super::WorkloadRef;
use super::manifests::ManifestFile;
use super::workload::with_workload_type;
use crate::k8s::{Kube, Target, step_error};
use crate::step::Finding;

/// A verb on a resource, as RBAC names them.
pub(super) struct Verb<'a> {
    pub verb: &'a str,
    /// `""` for the core group.
    pub group: &'a str,
    /// The plural resource (`deployments`).
    pub resource: &'a str,
    pub subresource: &'a str,
}

/// `context` or `current`, for messages.
fn label(context: Option<&str>) -> &str {
    context.unwrap_or("current")
}

/// The context's client, once its API server answered; else a `context` problem.
pub(super) async fn reach(kube: &Kube, context: Option<&str>) -> Result<Client, Finding> {
    let fix = "check the kubeconfig (KUBECONFIG), the context's server address and credentials, and that the \
               cluster is up";
    let client = kube.client(context).await.map_err(|e| Finding::problem("context", e.message, fix))?;
    match client.apiserver_version().await {
        Ok(_) => Ok(client),
        Err(e) => {
            let target = Target::new(context, "API server", "", "");
            Err(Finding::problem("context", step_error(&e, "reach", &target).message, fix))
        }
    }
}

/// Whether RBAC lets this context's user do `verb` in `namespace` (on `name`, when given).
pub(super) async fn allowed(
    client: &Client,
    context: Option<&str>,
    verb: &Verb<'_>,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Finding {
    let attributes = ResourceAttributes {
        verb: Some(verb.verb.into()),
        group: Some(verb.group.into()),
        resource: Some(verb.resource.into()),
        subresource: (!verb.subresource.is_empty()).then(|| verb.subresource.into()),
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        ..Default::default()
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec { resource_attributes: Some(attributes), ..Default::default() },
        ..Default::default()
    };
    let resource = match verb.subresource {
        "" => verb.resource.to_string(),
        sub => format!("{}/{sub}", verb.resource),
    };
    let group = if verb.group.is_empty() { String::new() } else { format!(".{}", verb.group) };
    let what = format!(
        "`{} {resource}{group}` in namespace {} (context {})",
        verb.verb,
        namespace.unwrap_or("(all)"),
        label(context)
    );
    let check = "rbac";
    match Api::<SelfSubjectAccessReview>::all(client.clone()).create(&PostParams::default(), &review).await {
        Ok(answer) => match answer.status {
            Some(status) if status.allowed => Finding::ok(check, format!("RBAC allows {what}")),
            status => {
                let reason = status.and_then(|s| s.reason).filter(|r| !r.is_empty());
                Finding::problem(
                    check,
                    format!("RBAC denies {what}{}", reason.map(|r| format!(": {r}")).unwrap_or_default()),
                    format!(
                        "grant the context's user `{}` on `{resource}` (a Role and RoleBinding), or point the plan's \
                         `kubernetes:` at a context that has it",
                        verb.verb
                    ),
                )
            }
        },
        Err(e) => Finding::problem(
            check,
            format!("cannot ask whether RBAC allows {what}: {e}"),
            "allow the context to create selfsubjectaccessreviews (every authenticated user may by default)",
        ),
    }
}

/// The namespace exists.
pub(super) async fn namespace_exists(client: &Client, context: Option<&str>, namespace: &str) -> Finding {
    let target = Target::new(context, "namespace", "", namespace);
    match Api::<Namespace>::all(client.clone()).get_opt(namespace).await {
        Ok(Some(_)) => Finding::ok("namespace_exists", format!("{target} exists")),
        Ok(None) => Finding::problem(
            "namespace_exists",
            format!("{target} does not exist"),
            "create the namespace in the DR cluster, or fix `with.namespace`",
        ),
        Err(e) => Finding::problem("namespace_exists", step_error(&e, "read", &target).message, "see the message"),
    }
}

/// The context answers, the workload exists, and RBAC allows `verbs` on it.
pub(super) async fn workload(kube: &Kube, workload: &WorkloadRef, verbs: &[Verb<'_>]) -> Vec<Finding> {
    let context = workload.context.as_deref();
    let client = match reach(kube, context).await {
        Ok(client) => client,
        Err(problem) => return vec![problem],
    };
    let mut findings = vec![Finding::ok("context", format!("context {} answers", label(context)))];
    let connected = match workload.connect(kube).await {
        Ok(c) => c,
        Err(e) => return vec![Finding::problem("context", e.message, "fix the kubeconfig")],
    };
    let check = format!("{}_exists", workload.kind.as_str());
    let got = with_workload_type!(workload.kind, K => connected.api::<K>().get_opt(&workload.name).await.map(|w| w.is_some()));
    findings.push(match got {
        Ok(true) => Finding::ok(&check, format!("{} exists", connected.target)),
        Ok(false) => Finding::problem(
            &check,
            format!("{} does not exist", connected.target),
            format!(
                "create the {} in the DR cluster (or restore it from its manifests), or fix `with.name`/`with.namespace`",
                workload.kind.as_str()
            ),
        ),
        Err(e) => Finding::problem(&check, step_error(&e, "read", &connected.target).message, "see the message"),
    });
    for verb in verbs {
        findings.push(allowed(&client, context, verb, Some(&connected.namespace), Some(&workload.name)).await);
    }
    findings
}

/// The context answers, every manifest's kind is served, and RBAC allows `verb` on each object.
pub(super) async fn manifests(file: &ManifestFile, verb: &str) -> Vec<Finding> {
    let context = file.context.as_deref();
    let client = match reach(&file.kube, context).await {
        Ok(client) => client,
        Err(problem) => return vec![problem],
    };
    let mut findings = vec![Finding::ok("context", format!("context {} answers", label(context)))];
    let loaded = match file.load().await {
        Ok(loaded) => loaded,
        Err(e) => {
            findings.push(Finding::problem(
                "kinds_served",
                e.message,
                "install the CRD in the cluster, or fix the manifest file",
            ));
            return findings;
        }
    };
    findings.push(Finding::ok("kinds_served", format!("every kind in {} is served", file.path.display())));
    for manifest in &loaded {
        // `/apis/GROUP/VERSION/namespaces/NS/PLURAL` or `/api/v1/PLURAL`: the group and plural RBAC names.
        let url = manifest.api.resource_url().to_string();
        let parts: Vec<&str> = url.split('/').filter(|p| !p.is_empty()).collect();
        let group = if parts.first() == Some(&"apis") { parts.get(1).copied().unwrap_or("") } else { "" };
        let resource = parts.last().copied().unwrap_or("");
        let namespace = manifest.target.namespace.as_str();
        let namespace = (!namespace.is_empty()).then_some(namespace);
        let verb = Verb { verb, group, resource, subresource: "" };
        findings.push(allowed(&client, context, &verb, namespace, Some(&manifest.name)).await);
    }
    findings
}

/// `get` on a workload of `kind`.
pub(super) fn read(kind: super::workload::WorkloadKind) -> Verb<'static> {
    Verb { verb: "get", group: "apps", resource: plural(kind), subresource: "" }
}

/// `patch` on a workload of `kind` (its `scale` subresource with `subresource`).
pub(super) fn patch(kind: super::workload::WorkloadKind, subresource: &'static str) -> Verb<'static> {
    Verb { verb: "patch", group: "apps", resource: plural(kind), subresource }
}

fn plural(kind: super::workload::WorkloadKind) -> &'static str {
    match kind {
        super::workload::WorkloadKind::Deployment => "deployments",
        super::workload::WorkloadKind::StatefulSet => "statefulsets",
    }
}

/// `kube.write_secret`: the context answers, the namespace exists, RBAC allows reading, creating
/// and patching the Secret.
pub(super) async fn secret(kube: &Kube, context: Option<&str>, namespace: Option<&str>, name: &str) -> Vec<Finding> {
    let client = match reach(kube, context).await {
        Ok(client) => client,
        Err(problem) => return vec![problem],
    };
    let namespace = namespace.map(str::to_string).unwrap_or_else(|| client.default_namespace().to_string());
    let mut findings = vec![
        Finding::ok("context", format!("context {} answers", label(context))),
        namespace_exists(&client, context, &namespace).await,
    ];
    for verb in ["get", "create", "patch"] {
        let verb = Verb { verb, group: "", resource: "secrets", subresource: "" };
        let name = (verb.verb != "create").then_some(name);
        findings.push(allowed(&client, context, &verb, Some(&namespace), name).await);
    }
    findings
}

/// `kube.check_cluster`: the context answers and RBAC allows listing nodes and reading the workloads.
pub(super) async fn cluster(kube: &Kube, context: Option<&str>, workloads: &[WorkloadRef]) -> Vec<Finding> {
    let client = match reach(kube, context).await {
        Ok(client) => client,
        Err(problem) => return vec![problem],
    };
    let mut findings = vec![Finding::ok("context", format!("context {} answers", label(context)))];
    let nodes = Verb { verb: "list", group: "", resource: "nodes", subresource: "" };
    findings.push(allowed(&client, context, &nodes, None, None).await);
    for workload in workloads {
        let namespace = workload.namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
        findings.push(allowed(&client, context, &read(workload.kind), Some(&namespace), Some(&workload.name)).await);
    }
    findings
}
