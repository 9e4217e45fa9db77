"""A cluster served in-process on a free port, and a small HTTP client for the tests."""

import http.client
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kube_emulator.cluster import Cluster  # noqa: E402

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
STATEFULSETS = "/apis/apps/v1/namespaces/default/statefulsets"
PODS = "/api/v1/namespaces/default/pods"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def deployment(name="web", replicas=2, image="registry.k8s.io/pause:3.10", annotations=None, **spec):
    """A Deployment manifest with one container `app`."""
    template = {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image, "env": [{"name": "A", "value": "1"}]}]}}
    if annotations:
        template["metadata"]["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": dict({"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template},
                         **spec)}


class ClusterTest(unittest.TestCase):
    """Starts a fresh cluster per test (pods ready after 0.1 s)."""

    rollout_delay = 0.1
    log_limit = 10_000

    def setUp(self):
        self.cluster = Cluster("test", rollout_delay=self.rollout_delay, nodes=2, log_limit=self.log_limit).start()
        self.addCleanup(self.cluster.stop)
        self.host, self.port = self.cluster.server.server_address[:2]

    def request(self, method, path, body=None, content_type="application/json", token=None, headers=None):
        """(status, parsed JSON body) of one request, as the admin unless `token` is given."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        all_headers = {"Authorization": f"Bearer {token or self.cluster.admin_token}"}
        if data is not None:
            all_headers["Content-Type"] = content_type
        all_headers.update(headers or {})
        conn.request(method, path, body=data, headers=all_headers)
        response = conn.getresponse()
        raw = response.read()
        conn.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode()

    def ok(self, method, path, body=None, content_type="application/json", expect=(200, 201)):
        """The body of a request that must succeed."""
        status, out = self.request(method, path, body, content_type)
        self.assertIn(status, expect, out)
        return out

    def wait_for(self, check, timeout=5.0, what="condition"):
        """Polls `check()` until it returns something truthy; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.02)
        self.fail(f"timed out waiting for {what}")

    def watch(self, path):
        """The (type, object) events of a finite watch (its timeoutSeconds must be set in `path`)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        conn.request("GET", path, headers={"Authorization": f"Bearer {self.cluster.admin_token}"})
        response = conn.getresponse()
        self.assertEqual(response.status, 200)
        self.assertEqual(response.getheader("Transfer-Encoding"), "chunked")
        return response, conn
