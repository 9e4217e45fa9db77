//! SIGKILL trials for `kube.scale` against the Kubernetes API emulator: killed while it waits for
//! the rollout (after its receipt) and while its scale request is answered (inside `act`), resumed,
//! and compared with an uninterrupted run of the same plan on a freshly seeded Deployment.

// Real time is the point here: tests wait on real servers and processes, not a run's clock.
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use serde_json::{Map, Value, json};
use support::clusters::{Clusters, Emulator, IMAGE};
use support::kill::{DelayProxy, Hold, KillPoint, assert_same_outputs, kill_and_resume, kill_when_and_resume, outputs};
use support::moto::Moto;
use support::{TestDir, drctl, run, wait_until};

const NAMESPACE: &str = "production";
const SCALE: &str = "/deployments/app/scale";

struct World {
    clusters: Clusters,
    runtime: tokio::runtime::Runtime,
    dir: TestDir,
}

impl World {
    fn start(label: &str) -> World {
        let dir = TestDir::new(label);
        let clusters = Clusters::start(&dir, Duration::from_millis(100));
        World { clusters, runtime: Moto::runtime(), dir }
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.clusters.client(&self.runtime, "dr"), NAMESPACE)
    }

    /// (Re)creates Deployment `app` with one ready replica whose pods take `rollout` to become ready.
    fn seed(&self, rollout: &str) {
        let namespaces: Api<Namespace> = Api::all(self.clusters.client(&self.runtime, "dr"));
        let namespace = serde_json::from_value(json!({ "metadata": { "name": NAMESPACE } })).unwrap();
        let _ = self.runtime.block_on(namespaces.create(&PostParams::default(), &namespace));
        let deployments = self.deployments();
        let _ = self.runtime.block_on(deployments.delete("app", &Default::default()));
        assert!(wait_until(Duration::from_secs(10), || self
            .runtime
            .block_on(deployments.get_opt("app"))
            .unwrap()
            .is_none()));
        let app = json!({
            "metadata": { "name": "app", "namespace": NAMESPACE },
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": { "app": "portfolio" } },
                "template": {
                    "metadata": { "labels": { "app": "portfolio" } },
                    "spec": { "containers": [{ "name": "app", "image": IMAGE }] }
                }
            }
        });
        let app = serde_json::from_value(app).unwrap();
        self.runtime.block_on(deployments.create(&PostParams::default(), &app)).expect("create app");
        assert!(wait_until(Duration::from_secs(30), || self.ready() == 1), "app never became ready");
        let slow = json!({ "metadata": { "annotations": { "emulator.drctl.dev/rollout-delay": rollout } } });
        self.runtime.block_on(deployments.patch("app", &PatchParams::default(), &Patch::Merge(&slow))).unwrap();
    }

    fn ready(&self) -> i32 {
        let app = self.runtime.block_on(self.deployments().get("app")).expect("read app");
        app.status.and_then(|s| s.ready_replicas).unwrap_or(0)
    }

    fn emulator(&self) -> &Emulator {
        self.clusters.emulator("kill_kube").expect("the trials need the emulator's request counts")
    }

    /// `127.0.0.1:PORT` of cluster `role`'s API server, from the kubeconfig.
    fn server(&self, role: &str) -> String {
        let config = Kubeconfig::read_from(self.clusters.kubeconfig()).expect("the kubeconfig reads");
        let context = config.contexts.iter().find(|c| c.name == self.clusters.context(role)).expect("the context");
        let cluster_name = &context.context.as_ref().expect("a context").cluster;
        let cluster = config.clusters.iter().find(|c| &c.name == cluster_name).expect("the cluster");
        let server = cluster.cluster.as_ref().and_then(|c| c.server.clone()).expect("a server");
        server.trim_start_matches("http://").trim_end_matches('/').to_string()
    }

    /// A kubeconfig like the emulator's whose `dr` cluster is reached through `proxy`.
    fn kubeconfig_through(&self, proxy: &DelayProxy) -> PathBuf {
        let mut config = Kubeconfig::read_from(self.clusters.kubeconfig()).expect("the kubeconfig reads");
        let dr = format!("http://{}", self.server("dr"));
        for named in &mut config.clusters {
            let cluster = named.cluster.as_ref().and_then(|c| c.server.as_deref()).unwrap_or_default();
            if cluster.trim_end_matches('/') == dr {
                named.cluster.as_mut().expect("a cluster").server = Some(proxy.url());
            }
        }
        let path = self.dir.path().join("kubeconfig-proxied.json");
        std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
        path
    }

    /// The trial's plan in `dir`: scale `app` in the DR cluster to 3.
    fn plan(&self, dir: &TestDir) -> PathBuf {
        let text = format!(
            "name: kube\n\
             regions: {{primary: us-east-1, secondary: us-west-2}}\n\
             kubernetes: {{primary: {}, secondary: {}}}\n\
             objectives: {{rto: 15m, rpo: 5m}}\n\
             defaults: {{timeout: 60s, retries: 0}}\n\
             failover:\n  - id: scale\n    type: kube.scale\n    with: {{namespace: {NAMESPACE}, name: app, replicas: 3}}\n\
             failback:\n  - id: back\n    type: wait\n    with: {{duration: 1ms}}\n",
            self.clusters.context("primary"),
            self.clusters.context("dr"),
        );
        dir.write_plan("kube.yaml", &text)
    }

    /// The step's outputs of an uninterrupted run on a freshly seeded `app`.
    fn uninterrupted(&self) -> Map<String, Value> {
        self.seed("0.3s");
        let dir = TestDir::new("kill-kube-fresh");
        let plan = self.plan(&dir);
        let mut command = drctl(&dir);
        command.env("KUBECONFIG", self.clusters.kubeconfig()).args(["failover", "--yes", "--plan"]).arg(plan);
        run(command).expect_code(0, &dir.journals_text());
        outputs(&dir.only_journal(), "scale")
    }
}

fn command(dir: &TestDir, kubeconfig: &Path, args: &[&str]) -> Command {
    let mut command = drctl(dir);
    command.env("KUBECONFIG", kubeconfig).args(args).arg("--yes");
    command
}

#[test]
fn a_scale_killed_while_it_waits_for_the_rollout_keeps_its_previous_replicas() {
    let world = World::start("kill-kube-acted");
    let fresh = world.uninterrupted();
    // Pods take 1.5 s to become ready: the kill lands while the step polls the rollout.
    world.seed("1.5s");
    let before = world.emulator().succeeded("dr", "PATCH", SCALE);
    let plan = world.plan(&world.dir);
    let kubeconfig = world.clusters.kubeconfig().to_path_buf();
    let failover = command(&world.dir, &kubeconfig, &["failover", "--plan", plan.to_str().unwrap()]);
    let resume = |run_id: &str| command(&world.dir, &kubeconfig, &["resume", run_id, "--break-lock"]);
    let trial = kill_and_resume(&world.dir, failover, KillPoint::AfterActed("scale"), resume);
    trial.check_journal();
    assert_eq!(world.emulator().succeeded("dr", "PATCH", SCALE) - before, 1, "scaled once\n{}", trial.show());
    assert_eq!(world.ready(), 3);
    assert_eq!(trial.outputs("scale")["previous_replicas"], "1", "{}", trial.show());
    assert_same_outputs(&trial.outputs("scale"), &fresh, &[], &trial.show());
}

#[test]
fn a_scale_killed_before_its_answer_scales_once_and_reports_the_count_it_then_found() {
    let world = World::start("kill-kube-acting");
    let fresh = world.uninterrupted();
    world.seed("1.5s");
    let before = world.emulator().succeeded("dr", "PATCH", SCALE);
    // The scale PATCH reaches the cluster; its answer is held, and the kill lands meanwhile.
    let proxy = DelayProxy::start(
        &world.server("dr"),
        vec![Hold::answer("PATCH /apis/apps/v1/namespaces/production/deployments/app/scale", Duration::from_secs(5))],
    );
    let kubeconfig = world.kubeconfig_through(&proxy);
    let plan = world.plan(&world.dir);
    let failover = command(&world.dir, &kubeconfig, &["failover", "--plan", plan.to_str().unwrap()]);
    let resume = |run_id: &str| command(&world.dir, &kubeconfig, &["resume", run_id, "--break-lock"]);
    let patched = || world.emulator().succeeded("dr", "PATCH", SCALE) > before;
    let trial = kill_when_and_resume(&world.dir, failover, KillPoint::AfterActing("scale"), patched, resume);
    trial.check_journal();
    assert_eq!(world.emulator().succeeded("dr", "PATCH", SCALE) - before, 1, "scaled once\n{}", trial.show());
    assert_eq!(world.ready(), 3);
    // The receipt (the count before the scale) died with the process before it was journaled, and
    // no marker keeps it (src/step.rs: a scale is idempotent): the resumed step reports the count
    // it found, 3. Every other output is an uninterrupted run's.
    assert_eq!(trial.outputs("scale")["previous_replicas"], "3", "{}", trial.show());
    assert_same_outputs(&trial.outputs("scale"), &fresh, &["previous_replicas"], &trial.show());
}
