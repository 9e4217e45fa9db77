//! The Kubernetes step types end to end: the drctl binary against two clusters (the repository's
//! Kubernetes API emulator, or kind with `DRCTL_TEST_KUBECONFIG`), with moto for Secrets Manager.
//! Clusters are seeded and checked through the kube crate.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use support::clusters::{BROKEN_IMAGE, Clusters, IMAGE};
use support::moto::Moto;
use support::{Background, TestDir, drctl, events, run, wait_until};

const NAMESPACE: &str = "production";
const PASSWORD: &str = "k8s-Pa55word-7z";

/// Clusters, a runtime for the test's own kube calls, a state directory.
struct Fixture {
    clusters: Clusters,
    runtime: tokio::runtime::Runtime,
    dir: TestDir,
    /// Extra environment for drctl (moto's endpoint and credentials).
    env: Vec<(&'static str, String)>,
}

impl Fixture {
    fn new(label: &str, rollout_delay: Duration) -> Fixture {
        let dir = TestDir::new(label);
        let clusters = Clusters::start(&dir, rollout_delay);
        Fixture { clusters, runtime: Moto::runtime(), dir, env: Vec::new() }
    }

    fn deployments(&self, role: &str) -> Api<Deployment> {
        Api::namespaced(self.clusters.client(&self.runtime, role), NAMESPACE)
    }

    /// Creates the namespace and Deployment `app` (`replicas`, `image`) in cluster `role`, and
    /// waits until it is rolled out.
    fn seed_app(&self, role: &str, replicas: i32, image: &str) {
        let client = self.clusters.client(&self.runtime, role);
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let namespace = serde_json::from_value(json!({ "metadata": { "name": NAMESPACE } })).unwrap();
        let _ = self.runtime.block_on(namespaces.create(&PostParams::default(), &namespace));
        let deployments = self.deployments(role);
        let _ = self.runtime.block_on(deployments.delete("app", &Default::default()));
        let deployment = serde_json::from_value(app(replicas, image)).unwrap();
        self.runtime.block_on(deployments.create(&PostParams::default(), &deployment)).expect("create app");
        if image != BROKEN_IMAGE {
            assert!(wait_until(Duration::from_secs(60), || self.ready(role) == replicas), "app never became ready");
        }
    }

    fn deployment(&self, role: &str) -> Deployment {
        self.runtime.block_on(self.deployments(role).get("app")).expect("read app")
    }

    fn ready(&self, role: &str) -> i32 {
        self.deployment(role).status.and_then(|s| s.ready_replicas).unwrap_or(0)
    }

    /// A plan whose failover is `steps`, with this test's contexts.
    fn plan(&self, steps: &str) -> std::path::PathBuf {
        let text = format!(
            "name: kube\n\
             regions: {{primary: us-east-1, secondary: us-west-2}}\n\
             kubernetes: {{primary: {}, secondary: {}}}\n\
             objectives: {{rto: 15m, rpo: 5m}}\n\
             defaults: {{timeout: 60s, retries: 2}}\n\
             failover:\n{steps}\n\
             failback:\n  - id: back\n    type: wait\n    with: {{duration: 1ms}}\n",
            self.clusters.context("primary"),
            self.clusters.context("dr"),
        );
        self.dir.write_plan("kube.yaml", &text)
    }

    fn drctl(&self) -> std::process::Command {
        let mut command = drctl(&self.dir);
        command.env("KUBECONFIG", self.clusters.kubeconfig()).envs(self.env.iter().cloned());
        command
    }

    /// The runbook's `monitoring/dr-alerts.yaml` beside the test's plan, and the `monitoring`
    /// namespace it goes to in the DR cluster.
    fn dr_alerts_file(&self) {
        let plans = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/monitoring/dr-alerts.yaml");
        std::fs::create_dir_all(self.dir.path().join("monitoring")).unwrap();
        std::fs::copy(plans, self.dir.path().join("monitoring/dr-alerts.yaml")).unwrap();
        let namespaces: Api<Namespace> = Api::all(self.clusters.client(&self.runtime, "dr"));
        let monitoring = serde_json::from_value(json!({ "metadata": { "name": "monitoring" } })).unwrap();
        self.runtime.block_on(namespaces.create(&PostParams::default(), &monitoring)).unwrap();
    }

    fn failover(&self, extra: &[&str]) -> support::Out {
        let mut command = self.drctl();
        command.args(["failover", "--plan"]).arg(self.dir.path().join("kube.yaml")).args(["--yes"]).args(extra);
        command.arg("--new-run"); // the tests run the failover again on purpose, to see it change nothing
        run(command)
    }
}

/// Deployment `app` of `replicas` pods running `image`.
fn app(replicas: i32, image: &str) -> serde_json::Value {
    json!({
        "metadata": { "name": "app", "namespace": NAMESPACE },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": "portfolio" } },
            "template": {
                "metadata": { "labels": { "app": "portfolio" } },
                "spec": { "containers": [{ "name": "app", "image": image, "env": [{ "name": "MODE", "value": "standby" }] }] }
            }
        }
    })
}

#[test]
fn a_failover_scales_configures_and_checks_the_dr_cluster() {
    let mut f = Fixture::new("kube-failover", Duration::from_millis(300));
    let moto = Moto::start();
    f.env = moto.env();
    let aws = Moto::runtime();
    let secrets = aws_sdk_secretsmanager::Client::new(&moto.sdk_config(&aws, "us-west-2"));
    let url = format!("postgres://app:{PASSWORD}@dr-db.internal:5432/app");
    let value = json!({ "DATABASE_URL": url }).to_string();
    aws.block_on(secrets.create_secret().name("dr-database-url").secret_string(value).send()).expect("seed secret");
    f.seed_app("dr", 1, IMAGE);
    std::fs::write(
        f.dir.path().join("dr-alerts.yaml"),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dr-alerts\n  namespace: {NAMESPACE}\ndata:\n  rules: \"db_down > 0\"\n"),
    )
    .unwrap();
    f.plan(&format!(
        r#"  - id: read-url
    type: aws.secrets.read
    with: {{secret_id: dr-database-url, key: DATABASE_URL}}
  - id: db-secret
    type: kube.write_secret
    after: [read-url]
    with:
      namespace: {NAMESPACE}
      name: app-db
      data:
        DATABASE_URL: "{{{{ steps.read-url.outputs.secret_ref }}}}"
  - id: scale
    type: kube.scale
    with: {{namespace: {NAMESPACE}, name: app, replicas: 3}}
  - id: env
    type: kube.set_env
    after: [db-secret, scale]
    with:
      namespace: {NAMESPACE}
      name: app
      env:
        DATABASE_URL: {{secret: app-db, key: DATABASE_URL}}
        DATABASE_URL_VERSION: "{{{{ steps.db-secret.outputs.resource_version }}}}"
        MODE: active
  - id: alerts
    type: kube.apply
    after: [env]
    with: {{file: dr-alerts.yaml}}
  - id: check
    type: kube.check_cluster
    after: [alerts]
    with: {{namespace: {NAMESPACE}, workloads: [{{name: app}}]}}"#
    ));
    let mut command = f.drctl();
    command.env("RUST_LOG", "trace").args(["failover", "--plan"]).arg(f.dir.path().join("kube.yaml")).arg("--yes");
    let out = run(command);
    out.expect_code(0, "failover");

    let deployment = f.deployment("dr");
    assert_eq!(deployment.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(deployment.status.as_ref().unwrap().ready_replicas, Some(3), "all three replicas ready");
    let container = &deployment.spec.unwrap().template.spec.unwrap().containers[0];
    let env: BTreeMap<_, _> = container.env.iter().flatten().map(|v| (v.name.clone(), v.clone())).collect();
    let reference = env["DATABASE_URL"].value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
    assert_eq!((reference.name.as_str(), reference.key.as_str()), ("app-db", "DATABASE_URL"));
    assert_eq!(env["MODE"].value.as_deref(), Some("active"));
    assert!(env["DATABASE_URL"].value.is_none(), "the URL is referenced, not copied into the spec");

    let client = f.clusters.client(&f.runtime, "dr");
    let secret = f.runtime.block_on(Api::<Secret>::namespaced(client.clone(), NAMESPACE).get("app-db")).unwrap();
    assert_eq!(secret.data.unwrap()["DATABASE_URL"].0, url.as_bytes(), "the Secret holds the value");
    let alerts = f.runtime.block_on(Api::<ConfigMap>::namespaced(client, NAMESPACE).get("dr-alerts")).unwrap();
    assert_eq!(alerts.data.unwrap()["rules"], "db_down > 0");

    let everything = format!("{}{}", f.dir.journals_text(), out.all());
    assert!(!everything.contains(PASSWORD), "the password reaches no journal or output, even at RUST_LOG=trace");

    // A second failover finds everything in place and changes nothing.
    let second = f.failover(&[]);
    second.expect_code(0, "second failover");
    if let Some(emulator) = f.clusters.emulator("second failover writes nothing") {
        let writes = ["PATCH", "PUT", "POST"].map(|m| emulator.succeeded("dr", m, "")).iter().sum::<u64>();
        let again = f.failover(&[]);
        again.expect_code(0, "third failover");
        let writes_after = ["PATCH", "PUT", "POST"].map(|m| emulator.succeeded("dr", m, "")).iter().sum::<u64>();
        assert_eq!(writes, writes_after, "a repeated failover writes nothing to the cluster\n{again}");
    }
}

#[test]
fn a_rollout_that_never_becomes_ready_fails_at_the_timeout_with_the_pods_reasons() {
    let f = Fixture::new("kube-stuck", Duration::from_millis(100));
    f.seed_app("dr", 1, BROKEN_IMAGE);
    f.plan(&format!(
        "  - id: scale\n    type: kube.scale\n    timeout: 4s\n    retries: 0\n    with: {{namespace: {NAMESPACE}, name: app, replicas: 2}}"
    ));
    let out = f.failover(&[]);
    out.expect_code(1, "a stuck rollout fails the run");
    let all = out.all();
    assert!(all.contains("timed out after 4.0s waiting for"), "{out}");
    assert!(all.contains(&format!("deployment {NAMESPACE}/app in context {}", f.clusters.context("dr"))), "{out}");
    assert!(all.contains("ImagePullBackOff"), "the pods' reason is given\n{out}");
}

#[test]
fn a_resumed_run_does_not_scale_or_patch_twice() {
    let f = Fixture::new("kube-resume", Duration::from_millis(100));
    let Some(emulator) = f.clusters.emulator("a_resumed_run_does_not_scale_or_patch_twice") else { return };
    f.seed_app("dr", 1, IMAGE);
    // Pods of this Deployment take 3 s to become ready: the run is killed while it waits.
    let slow = json!({ "metadata": { "annotations": { "emulator.drctl.dev/rollout-delay": "3s" } } });
    let patch = PatchParams::default();
    f.runtime.block_on(f.deployments("dr").patch("app", &patch, &Patch::Merge(&slow))).unwrap();
    f.plan(&format!(
        "  - id: scale\n    type: kube.scale\n    with: {{namespace: {NAMESPACE}, name: app, replicas: 4}}\n\
         \x20 - id: env\n    type: kube.set_env\n    with: {{namespace: {NAMESPACE}, name: app, env: {{MODE: active}}}}"
    ));
    let mut command = f.drctl();
    command.args(["failover", "--plan"]).arg(f.dir.path().join("kube.yaml")).arg("--yes");
    let background = Background::spawn(command);
    let acted = wait_until(Duration::from_secs(20), || {
        f.dir.run_ids().first().is_some_and(|id| {
            let journal = f.dir.journal(id);
            ["scale", "env"]
                .iter()
                .all(|step| journal.iter().any(|r| r["event"] == "step_acting" && r["step"] == *step))
        })
    });
    assert!(acted, "both steps acted");
    std::thread::sleep(Duration::from_millis(300));
    background.signal("KILL");
    background.finish();

    f.failover(&["--break-lock"]).expect_code(0, "the resumed run finishes");
    assert_eq!(emulator.succeeded("dr", "PATCH", "/deployments/app/scale"), 1, "scaled once");
    assert_eq!(emulator.succeeded("dr", "PUT", "/deployments/app"), 1, "the env was written once");
    assert_eq!(f.ready("dr"), 4);
    let journal = f.dir.only_journal();
    assert!(events(&journal).iter().any(|e| e.starts_with("run_resumed")), "{:?}", events(&journal));
}

#[test]
fn access_denied_and_absent_objects_are_named_and_not_retried() {
    let f = Fixture::new("kube-errors", Duration::from_millis(100));
    let Some(_) = f.clusters.emulator("access_denied_and_absent_objects_are_named_and_not_retried") else { return };
    f.seed_app("dr", 1, IMAGE);
    f.plan(&format!(
        "  - id: denied\n    type: kube.scale\n    retries: 3\n    with: {{context: dr-readonly, namespace: {NAMESPACE}, name: app, replicas: 2}}\n\
         \x20 - id: absent\n    type: kube.scale\n    retries: 3\n    with: {{namespace: {NAMESPACE}, name: nope, replicas: 2}}"
    ));
    let out = f.failover(&[]);
    out.expect_code(1, "both steps fail");
    let all = out.all();
    assert!(all.contains(&format!("deployment {NAMESPACE}/app in context dr-readonly")), "{out}");
    assert!(all.contains("RBAC"), "{out}");
    assert!(
        all.contains(&format!("deployment {NAMESPACE}/nope in context dr")) && all.contains("does not exist"),
        "{out}"
    );
    let journal = f.dir.only_journal();
    assert!(!events(&journal).iter().any(|e| e.starts_with("step_retrying")), "fatal errors are not retried");
}

#[test]
fn server_errors_are_retried_until_the_scale_lands() {
    let f = Fixture::new("kube-faults", Duration::from_millis(100));
    let Some(emulator) = f.clusters.emulator("server_errors_are_retried_until_the_scale_lands") else { return };
    f.seed_app("dr", 1, IMAGE);
    let fault = json!({ "status": 503, "count": 2, "method": "PATCH", "path_contains": "/scale" }).to_string();
    assert_eq!(emulator.control("dr", "POST", "/_emulator/faults", &fault).0, 200);
    f.plan(&format!(
        "  - id: scale\n    type: kube.scale\n    retries: 4\n    with: {{namespace: {NAMESPACE}, name: app, replicas: 2}}"
    ));
    f.failover(&["--output", "json"]).expect_code(0, "the scale lands after two 503s");
    assert_eq!(f.ready("dr"), 2);
    let journal = f.dir.only_journal();
    let retries = journal.iter().filter(|r| r["event"] == "step_retrying").count();
    assert_eq!(retries, 2, "{:?}", events(&journal));
}

#[test]
fn a_bad_deploy_is_rolled_back_and_restarted_once() {
    let f = Fixture::new("kube-undo", Duration::from_millis(100));
    f.seed_app("dr", 2, IMAGE);
    let bad =
        json!({ "spec": { "template": { "spec": { "containers": [{ "name": "app", "image": BROKEN_IMAGE }] } } } });
    let patch = PatchParams::default();
    f.runtime.block_on(f.deployments("dr").patch("app", &patch, &Patch::Strategic(&bad))).unwrap();
    f.plan(&format!(
        "  - id: undo\n    type: kube.rollout_undo\n    with: {{namespace: {NAMESPACE}, name: app}}\n\
         \x20 - id: restart\n    type: kube.rollout_restart\n    after: [undo]\n    with: {{namespace: {NAMESPACE}, name: app}}"
    ));
    f.failover(&[]).expect_code(0, "undo then restart");
    let deployment = f.deployment("dr");
    let template = deployment.spec.as_ref().unwrap().template.clone();
    assert_eq!(template.spec.unwrap().containers[0].image.as_deref(), Some(IMAGE), "back on the good image");
    let annotations = template.metadata.unwrap().annotations.unwrap_or_default();
    assert!(annotations.contains_key("kubectl.kubernetes.io/restartedAt"), "{annotations:?}");
    let meta = deployment.metadata.annotations.unwrap_or_default();
    assert_eq!(meta.get("drctl.dev/undone-from-revision").map(String::as_str), Some("2"), "{meta:?}");
    assert_eq!(meta.get("drctl.dev/undone-to-revision").map(String::as_str), Some("1"), "{meta:?}");
    assert_eq!(f.ready("dr"), 2);
}

#[test]
fn a_statefulset_scales_and_restarts_like_a_deployment() {
    let f = Fixture::new("kube-sts", Duration::from_millis(100));
    f.seed_app("dr", 1, IMAGE);
    let client = f.clusters.client(&f.runtime, "dr");
    let sets: Api<StatefulSet> = Api::namespaced(client, NAMESPACE);
    let mut spec = app(1, IMAGE);
    spec["metadata"]["name"] = json!("db");
    spec["spec"]["serviceName"] = json!("db");
    spec["spec"]["selector"]["matchLabels"]["app"] = json!("db");
    spec["spec"]["template"]["metadata"]["labels"]["app"] = json!("db");
    let set: StatefulSet = serde_json::from_value(spec).unwrap();
    f.runtime.block_on(sets.create(&PostParams::default(), &set)).expect("create db");
    f.plan(&format!(
        "  - id: scale\n    type: kube.scale\n    with: {{namespace: {NAMESPACE}, kind: statefulset, name: db, replicas: 3}}\n\
         \x20 - id: restart\n    type: kube.rollout_restart\n    after: [scale]\n    with: {{namespace: {NAMESPACE}, kind: statefulset, name: db}}"
    ));
    f.failover(&[]).expect_code(0, "scale and restart a StatefulSet");
    let set = f.runtime.block_on(sets.get("db")).unwrap();
    let status = set.status.unwrap();
    assert_eq!((status.replicas, status.ready_replicas), (3, Some(3)));
    let annotations = set.spec.unwrap().template.metadata.unwrap().annotations.unwrap_or_default();
    assert!(annotations["drctl.dev/restarted-by"].ends_with("/restart"), "{annotations:?}");
}

#[test]
fn manifests_of_custom_kinds_are_applied_and_unknown_kinds_are_named() {
    let f = Fixture::new("kube-apply", Duration::from_millis(100));
    let Some(_) = f.clusters.emulator("manifests_of_custom_kinds_are_applied_and_unknown_kinds_are_named") else {
        return;
    };
    f.seed_app("dr", 1, IMAGE);
    f.dr_alerts_file();
    std::fs::write(
        f.dir.path().join("unknown.yaml"),
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
    )
    .unwrap();
    f.plan(
        "  - id: alerts\n    type: kube.apply\n    with: {file: monitoring/dr-alerts.yaml}\n\
         \x20 - id: unknown\n    type: kube.apply\n    after: [alerts]\n    with: {file: unknown.yaml}",
    );
    let out = f.failover(&[]);
    out.expect_code(1, "the unknown kind fails");
    assert!(
        out.all().contains("unknown.yaml:1:1: the API server of context dr does not serve example.com/v1 Widget"),
        "{out}"
    );
    let journal = f.dir.only_journal();
    let applied =
        journal.iter().find(|r| r["event"] == "step_succeeded" && r["step"] == "alerts").expect("alerts applied");
    assert_eq!(applied["outputs"]["objects"], "PrometheusRule monitoring/dr-alerts", "{applied}");
    let client = f.clusters.client(&f.runtime, "dr");
    let resource = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PrometheusRule"),
        "prometheusrules",
    );
    let rules: Api<kube::api::DynamicObject> = Api::namespaced_with(client, "monitoring", &resource);
    let rule = f.runtime.block_on(rules.get("dr-alerts")).expect("the rule exists");
    assert_eq!(rule.data["spec"]["groups"][0]["name"], "dr-region");
}

#[test]
fn deleting_a_manifest_removes_its_objects_once_and_a_repeat_sends_nothing() {
    let f = Fixture::new("kube-delete", Duration::from_millis(100));
    let Some(emulator) = f.clusters.emulator("deleting_a_manifest_removes_its_objects_once_and_a_repeat_sends_nothing")
    else {
        return;
    };
    f.dr_alerts_file();
    let resource = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PrometheusRule"),
        "prometheusrules",
    );
    let rules: Api<kube::api::DynamicObject> =
        Api::namespaced_with(f.clusters.client(&f.runtime, "dr"), "monitoring", &resource);
    let rule = serde_json::from_value(json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": { "name": "dr-alerts", "namespace": "monitoring" }, "spec": { "groups": [] }
    }))
    .unwrap();
    f.runtime.block_on(rules.create(&PostParams::default(), &rule)).unwrap();

    f.plan("  - id: alerts-off\n    type: kube.delete\n    with: {file: monitoring/dr-alerts.yaml}");
    f.failover(&[]).expect_code(0, "the delete succeeds");
    assert!(f.runtime.block_on(rules.get_opt("dr-alerts")).unwrap().is_none(), "the rule is gone");
    let journal = f.dir.only_journal();
    let done = journal.iter().find(|r| r["event"] == "step_succeeded").expect("the step succeeded");
    assert_eq!(done["outputs"]["objects"], "PrometheusRule monitoring/dr-alerts", "{done}");
    assert_eq!(emulator.succeeded("dr", "DELETE", "/prometheusrules/dr-alerts"), 1);

    let again = f.failover(&[]);
    again.expect_code(0, "a repeated delete finds nothing to do");
    assert!(again.all().contains("already done"), "{again}");
    assert_eq!(emulator.succeeded("dr", "DELETE", "/prometheusrules/dr-alerts"), 1, "no second DELETE");
}

#[test]
fn a_cluster_check_waits_for_nodes_and_names_the_ones_not_ready() {
    let f = Fixture::new("kube-check", Duration::from_millis(100));
    let Some(_) = f.clusters.emulator("a_cluster_check_waits_for_nodes_and_names_the_ones_not_ready") else { return };
    f.seed_app("primary", 2, IMAGE);
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(f.clusters.client(&f.runtime, "primary"));
    let not_ready =
        json!({ "status": { "conditions": [{ "type": "Ready", "status": "False", "reason": "KubeletNotReady" }] } });
    for node in ["primary-node-1", "primary-node-2", "primary-node-3"] {
        f.runtime.block_on(nodes.patch_status(node, &PatchParams::default(), &Patch::Merge(&not_ready))).unwrap();
    }
    let check = format!(
        "  - id: check\n    type: kube.check_cluster\n    timeout: 2s\n    with: {{context: {}, namespace: {NAMESPACE}, min_ready_nodes: 2, workloads: [{{name: app}}]}}",
        f.clusters.context("primary")
    );
    f.plan(&check);
    let out = f.failover(&[]);
    out.expect_code(1, "no node is ready");
    assert!(out.all().contains("0 of 2 ready nodes in context primary"), "{out}");
    assert!(out.all().contains("primary-node-1 (Ready=False KubeletNotReady)"), "{out}");

    let ready = json!({ "status": { "conditions": [{ "type": "Ready", "status": "True" }] } });
    for node in ["primary-node-1", "primary-node-2"] {
        f.runtime.block_on(nodes.patch_status(node, &PatchParams::default(), &Patch::Merge(&ready))).unwrap();
    }
    f.plan(&check.replace("kube.check_cluster", "kube.check_cluster\n    name: again"));
    let out = f.failover(&["--allow-plan-change"]);
    out.expect_code(0, "two nodes are ready again");
    let journal = f.dir.journal(&f.dir.run_ids().last().unwrap().clone());
    let passed = journal.iter().find(|r| r["event"] == "step_succeeded").expect("the check passed");
    assert_eq!(passed["outputs"]["ready_nodes"], "2");
    assert_eq!(passed["outputs"]["workloads"], "deployment/app 2/2");
}
