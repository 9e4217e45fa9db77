"""Deployments, ReplicaSets, StatefulSets and pods converging (or failing) like on a real cluster."""

from helpers import DEPLOYMENTS, PODS, STATEFULSETS, ClusterTest, deployment

MERGE = "application/merge-patch+json"
REPLICASETS = "/apis/apps/v1/namespaces/default/replicasets"
REVISION = "deployment.kubernetes.io/revision"


class DeploymentTest(ClusterTest):
    def rollout_done(self, name="web", replicas=None):
        d = self.ok("GET", f"{DEPLOYMENTS}/{name}")
        want = d["spec"]["replicas"] if replicas is None else replicas
        s = d["status"]
        done = (s.get("observedGeneration") == d["metadata"]["generation"] and s.get("readyReplicas", 0) == want
                and s.get("updatedReplicas", 0) == want and s.get("replicas", 0) == want)
        return d if done else None

    def replicasets(self):
        items = self.ok("GET", f"{REPLICASETS}?labelSelector=app%3Dweb")["items"]
        return {rs["metadata"]["annotations"][REVISION]: rs for rs in items}

    def test_a_deployment_converges_after_the_rollout_delay(self):
        self.ok("POST", DEPLOYMENTS, deployment(replicas=3))
        early = self.ok("GET", f"{DEPLOYMENTS}/web")
        self.assertNotIn("readyReplicas", early["status"])
        d = self.wait_for(self.rollout_done, what="the rollout")
        conditions = {c["type"]: (c["status"], c["reason"]) for c in d["status"]["conditions"]}
        self.assertEqual(conditions, {"Available": ("True", "MinimumReplicasAvailable"),
                                      "Progressing": ("True", "NewReplicaSetAvailable")})
        self.assertEqual(d["metadata"]["annotations"][REVISION], "1")
        pods = self.ok("GET", f"{PODS}?labelSelector=app%3Dweb")["items"]
        self.assertEqual(len(pods), 3)
        pod = pods[0]
        self.assertEqual(pod["status"]["phase"], "Running")
        self.assertTrue(pod["status"]["containerStatuses"][0]["ready"])
        self.assertEqual(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet")
        self.assertIn("pod-template-hash", pod["metadata"]["labels"])
        self.ok("PATCH", f"{DEPLOYMENTS}/web/scale", {"spec": {"replicas": 0}}, MERGE)
        d = self.wait_for(lambda: self.rollout_done(replicas=0), what="the scale to zero")
        self.assertNotIn("replicas", d["status"])
        self.assertEqual(self.ok("GET", f"{PODS}?labelSelector=app%3Dweb")["items"], [])

    def test_template_changes_roll_revisions_and_undo_reuses_the_old_replicaset(self):
        self.ok("POST", DEPLOYMENTS, deployment(replicas=2))
        self.wait_for(self.rollout_done, what="revision 1")
        first = self.replicasets()["1"]["metadata"]["name"]
        change = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}}}}
        self.ok("PATCH", f"{DEPLOYMENTS}/web", change, "application/strategic-merge-patch+json")
        d = self.wait_for(self.rollout_done, what="revision 2")
        self.assertEqual(d["metadata"]["annotations"][REVISION], "2")
        sets = self.replicasets()
        self.assertEqual(sets["1"]["spec"]["replicas"], 0, "the old ReplicaSet is kept, scaled to zero")
        self.assertEqual(sets["2"]["spec"]["replicas"], 2)
        undo = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}}}
        self.ok("PATCH", f"{DEPLOYMENTS}/web", undo, "application/strategic-merge-patch+json")
        d = self.wait_for(lambda: (d := self.rollout_done()) and d["metadata"]["annotations"][REVISION] == "3" and d,
                          what="revision 3")
        sets = self.replicasets()
        self.assertEqual(sets["3"]["metadata"]["name"], first, "revision 1's ReplicaSet became revision 3")
        self.assertEqual(sorted(sets), ["2", "3"])

    def test_an_unpullable_image_stalls_the_rollout_past_its_deadline(self):
        self.ok("POST", DEPLOYMENTS, deployment(replicas=1, image="registry.invalid/app:v2", progressDeadlineSeconds=1))
        pod = self.wait_for(lambda: [p for p in self.ok("GET", PODS)["items"]
                                     if "waiting" in p["status"].get("containerStatuses", [{}])[0].get("state", {})
                                     and p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                                     == "ImagePullBackOff"], what="ImagePullBackOff")[0]
        self.assertEqual(pod["status"]["phase"], "Pending")
        self.assertEqual(pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
                         'Back-off pulling image "registry.invalid/app:v2"')
        ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
        self.assertEqual(ready["status"], "False")

        def stalled():
            d = self.ok("GET", f"{DEPLOYMENTS}/web")
            progressing = [c for c in d["status"].get("conditions", []) if c["type"] == "Progressing"]
            return progressing and progressing[0]["reason"] == "ProgressDeadlineExceeded" and progressing[0]
        condition = self.wait_for(stalled, timeout=4, what="ProgressDeadlineExceeded")
        self.assertEqual(condition["status"], "False")

    def test_the_fail_annotation_crash_loops_the_containers(self):
        annotations = {"emulator.drctl.dev/fail": "CrashLoopBackOff"}
        self.ok("POST", DEPLOYMENTS, deployment(replicas=1, annotations=annotations))

        def crashing():
            for p in self.ok("GET", PODS)["items"]:
                state = p["status"].get("containerStatuses", [{}])[0].get("state", {})
                if state.get("waiting", {}).get("reason") == "CrashLoopBackOff":
                    return p
        pod = self.wait_for(crashing, what="CrashLoopBackOff")
        self.assertEqual(pod["status"]["phase"], "Running")
        self.assertGreaterEqual(pod["status"]["containerStatuses"][0]["restartCount"], 1)

    def test_deleting_a_deployment_deletes_its_replicasets_and_pods(self):
        self.ok("POST", DEPLOYMENTS, deployment(replicas=2))
        self.wait_for(self.rollout_done, what="the rollout")
        self.ok("DELETE", f"{DEPLOYMENTS}/web")
        self.assertEqual(self.ok("GET", REPLICASETS)["items"], [])
        self.assertEqual(self.ok("GET", PODS)["items"], [])


class StatefulSetTest(ClusterTest):
    def test_a_statefulset_runs_ordinal_pods_and_rolls_them(self):
        sts = deployment("db", replicas=3)
        sts["kind"] = "StatefulSet"
        sts["spec"]["serviceName"] = "db"
        self.ok("POST", STATEFULSETS, sts)

        def converged():
            s = self.ok("GET", f"{STATEFULSETS}/db")
            st = s["status"]
            return (st.get("readyReplicas") == 3 and st.get("updatedReplicas") == 3
                    and st.get("currentRevision") == st.get("updateRevision") and s)
        first = self.wait_for(converged, what="the statefulset")["status"]
        self.assertEqual(first["observedGeneration"], 1)
        names = sorted(p["metadata"]["name"] for p in self.ok("GET", f"{PODS}?labelSelector=app%3Ddb")["items"])
        self.assertEqual(names, ["db-0", "db-1", "db-2"])
        change = {"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}}
        self.ok("PATCH", f"{STATEFULSETS}/db", change, MERGE)
        second = self.wait_for(lambda: (s := converged()) and s["status"]["updateRevision"] != first["updateRevision"]
                               and s["status"]["currentRevision"] == s["status"]["updateRevision"] and s,
                               what="the rolling update")["status"]
        self.assertEqual(second["observedGeneration"], 2)
        self.assertTrue(second["updateRevision"].startswith("db-"))
