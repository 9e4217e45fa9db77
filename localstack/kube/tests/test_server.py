"""Auth, faults, request counts, discovery and the command line."""

import json
import os
import signal
import subprocess
import sys
import re
import tempfile
import unittest
import urllib.request

from helpers import DEPLOYMENTS, ClusterTest, deployment

MERGE = "application/merge-patch+json"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AuthTest(ClusterTest):
    def test_unknown_tokens_are_unauthorized_and_the_readonly_user_may_only_read(self):
        status, error = self.request("GET", DEPLOYMENTS, token="wrong")
        self.assertEqual((status, error["reason"], error["message"]), (401, "Unauthorized", "Unauthorized"))
        self.ok("POST", DEPLOYMENTS, deployment())
        ro = self.cluster.readonly_token
        self.assertEqual(self.request("GET", f"{DEPLOYMENTS}/web", token=ro)[0], 200)
        status, error = self.request("PATCH", f"{DEPLOYMENTS}/web/scale", {"spec": {"replicas": 1}}, MERGE, token=ro)
        self.assertEqual((status, error["reason"]), (403, "Forbidden"))
        self.assertEqual(error["message"], 'deployments.apps "web" is forbidden: User "readonly" cannot patch resource '
                                           '"deployments/scale" in API group "apps" in the namespace "default"')
        status, error = self.request("POST", "/api/v1/namespaces", {"metadata": {"name": "x"}}, token=ro)
        self.assertEqual(error["message"], 'namespaces is forbidden: User "readonly" cannot create resource '
                                           '"namespaces" in API group "" at the cluster scope')


    def test_access_reviews_answer_for_the_tokens_user_and_change_nothing(self):
        review = lambda verb: {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                               "spec": {"resourceAttributes": {"verb": verb, "group": "apps",
                                                               "resource": "deployments", "namespace": "default"}}}
        path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        ro = self.cluster.readonly_token
        for token, verb, allowed in ((None, "patch", True), (ro, "get", True), (ro, "patch", False)):
            status, out = self.request("POST", path, review(verb), token=token)
            self.assertEqual((status, out["kind"], out["status"]["allowed"]), (201, "SelfSubjectAccessReview", allowed))
        self.assertIn("may only get, list and watch", out["status"]["reason"])
        self.assertEqual(self.request("POST", path, review("get"), token="wrong")[0], 401)
        self.assertEqual(self.ok("GET", DEPLOYMENTS)["items"], [])


class FaultTest(ClusterTest):
    def control(self, method, path, body=None):
        return self.request(method, path, body)

    def test_faults_answer_matching_requests_until_their_count_is_used(self):
        self.ok("POST", DEPLOYMENTS, deployment())
        fault = {"status": 503, "count": 2, "method": "PATCH", "path_contains": "/scale"}
        self.assertEqual(self.control("POST", "/_emulator/faults", fault)[0], 200)
        self.assertEqual(self.ok("GET", f"{DEPLOYMENTS}/web/scale")["spec"]["replicas"], 2, "GETs are not faulted")
        for _ in range(2):
            status, error = self.request("PATCH", f"{DEPLOYMENTS}/web/scale", {"spec": {"replicas": 1}}, MERGE)
            self.assertEqual((status, error["reason"]), (503, "ServiceUnavailable"))
        self.ok("PATCH", f"{DEPLOYMENTS}/web/scale", {"spec": {"replicas": 1}}, MERGE)
        self.assertEqual(self.control("GET", "/_emulator/faults")[1], {"faults": []})
        counts = self.control("GET", "/_emulator/requests")[1]
        self.assertEqual(counts["requests"][f"PATCH {DEPLOYMENTS}/web/scale"], 3)
        self.assertEqual(counts["succeeded"][f"PATCH {DEPLOYMENTS}/web/scale"], 1, "faulted requests did not succeed")
        self.control("POST", "/_emulator/faults", {"status": 429, "count": -1})
        status, error = self.request("GET", DEPLOYMENTS)
        self.assertEqual((status, error["reason"]), (429, "TooManyRequests"))
        self.control("DELETE", "/_emulator/faults")
        self.assertEqual(self.request("GET", DEPLOYMENTS)[0], 200)
        self.control("DELETE", "/_emulator/requests")
        self.assertEqual(self.control("GET", "/_emulator/requests")[1], {"requests": {}, "succeeded": {}})

    def test_a_node_set_not_ready_stays_not_ready(self):
        patch = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]}}
        self.ok("PATCH", "/api/v1/nodes/test-node-1/status", patch, "application/strategic-merge-patch+json")
        self.ok("POST", DEPLOYMENTS, deployment())
        node = self.ok("GET", "/api/v1/nodes/test-node-1")
        self.assertEqual(node["status"]["conditions"][0]["status"], "False")
        self.assertEqual(node["status"]["capacity"]["pods"], "110", "strategic merge keeps the rest")


class DiscoveryTest(ClusterTest):
    def test_discovery_documents(self):
        self.assertEqual(self.ok("GET", "/version")["gitVersion"], "v1.33.0-drctl-emulator")
        self.assertEqual(self.ok("GET", "/api")["versions"], ["v1"])
        groups = {g["name"]: g["preferredVersion"]["groupVersion"] for g in self.ok("GET", "/apis")["groups"]}
        self.assertEqual(groups, {"apps": "apps/v1", "monitoring.coreos.com": "monitoring.coreos.com/v1"})
        apps = {r["name"]: r for r in self.ok("GET", "/apis/apps/v1")["resources"]}
        self.assertEqual(set(apps), {"deployments", "deployments/scale", "deployments/status", "statefulsets",
                                     "statefulsets/scale", "statefulsets/status", "replicasets", "replicasets/status"})
        self.assertEqual((apps["deployments"]["kind"], apps["deployments"]["namespaced"]), ("Deployment", True))
        self.assertEqual(apps["deployments/scale"]["kind"], "Scale")
        core = {r["name"]: r for r in self.ok("GET", "/api/v1")["resources"]}
        self.assertFalse(core["nodes"]["namespaced"])
        self.assertIn("watch", core["pods"]["verbs"])
        status, error = self.request("GET", "/apis/apps/v1/namespaces/default/widgets")
        self.assertEqual((status, error["message"]), (404, "the server could not find the requested resource"))
        rules = "/apis/monitoring.coreos.com/v1/namespaces/default/prometheusrules"
        rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "r"},
                "spec": {"groups": []}}
        self.assertEqual(self.ok("POST", rules, rule)["kind"], "PrometheusRule")


class CommandLineTest(unittest.TestCase):
    def test_the_launcher_serves_clusters_writes_a_kubeconfig_and_stops_on_sigterm(self):
        with tempfile.TemporaryDirectory() as tmp:
            seed = os.path.join(tmp, "seed.json")
            with open(seed, "w") as f:
                json.dump({"kind": "List", "items": [
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "production"}},
                    dict(deployment("app"), metadata={"name": "app", "namespace": "production"})]}, f)
            kubeconfig = os.path.join(tmp, "kubeconfig.yaml")
            process = subprocess.Popen([sys.executable, os.path.join(HERE, "emulator"), "--cluster", "primary",
                                        "--cluster", "dr", "--kubeconfig", kubeconfig, "--seed-cluster",
                                        f"dr={seed}", "--rollout-delay", "0.1"], stdout=subprocess.PIPE, text=True)
            try:
                ready = json.loads(process.stdout.readline())
                self.assertTrue(ready["ready"])
                self.assertEqual(sorted(ready["clusters"]), ["dr", "primary"])
                with open(kubeconfig) as f:
                    text = f.read()
                self.assertIn('current-context: "primary"', text)
                for name in ("primary", "dr", "primary-readonly", "dr-readonly"):
                    self.assertIn(f'- name: "{name}"\n  context:', text)
                self.assertIn(f'server: "{ready["clusters"]["dr"]}"', text)
                token = re.search(r'- name: "dr"\n  user:\n    token: "(\w+)"', text).group(1)
                request = urllib.request.Request(f'{ready["clusters"]["dr"]}/apis/apps/v1/namespaces/production/'
                                                 "deployments/app", headers={"Authorization": f"Bearer {token}"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    self.assertEqual(json.load(response)["metadata"]["namespace"], "production", "seeded")
            finally:
                process.send_signal(signal.SIGTERM)
                self.assertEqual(process.wait(timeout=5), 0)
                process.stdout.close()
