"""The Kubernetes side of the environment, on the API emulator (localstack/kube): the manifests both
clusters start with (the app's Deployment and database Secret; primary active with 3 replicas, DR a
warm standby with 1), and a small REST client for the health app and the checks."""

import base64
import json
import urllib.error
import urllib.request

import yaml

NAMESPACE, APP, DB_SECRET = "production", "app", "app-database"
#: Replicas each cluster's app runs with when the primary region serves.
STEADY_REPLICAS = {"primary": 3, "dr": 1}


def seed_manifests(cluster, database_url):
    """The YAML the emulator seeds `cluster` with. Holds a database password: written 0600."""
    mode = "active" if cluster == "primary" else "standby"
    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": DB_SECRET, "namespace": NAMESPACE},
         "data": {"DATABASE_URL": base64.b64encode(database_url.encode()).decode()}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP, "namespace": NAMESPACE},
         "spec": {"replicas": STEADY_REPLICAS[cluster], "selector": {"matchLabels": {"app": APP}},
                  "template": {"metadata": {"labels": {"app": APP}}, "spec": {"containers": [{
                      "name": APP, "image": "portfolio-api:1.0",
                      "env": [{"name": "DATABASE_URL",
                               "valueFrom": {"secretKeyRef": {"name": DB_SECRET, "key": "DATABASE_URL"}}},
                              {"name": "MODE", "value": mode}]}]}}}},
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


class Cluster:
    """One emulated cluster, by its kubeconfig entry."""

    def __init__(self, kubeconfig_path, context):
        with open(kubeconfig_path) as f:
            config = yaml.safe_load(f)
        ctx = next(c["context"] for c in config["contexts"] if c["name"] == context)
        self.name = context
        self.url = next(c["cluster"]["server"] for c in config["clusters"] if c["name"] == ctx["cluster"])
        self.token = next(u["user"]["token"] for u in config["users"] if u["name"] == ctx["user"])

    def call(self, method, path, body=None, timeout=3.0):
        """(status, JSON body) of one request."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def get(self, path):
        """The object at `path`, or None when absent."""
        status, body = self.call("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"GET {path} on cluster {self.name}: {status} {body.get('message', '')}")
        return body

    def deployment(self):
        return self.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{APP}")

    def database_url(self):
        """The DATABASE_URL the app's pods get: a literal or a Secret key reference, resolved."""
        deployment = self.deployment()
        if deployment is None:
            return None
        for env in deployment["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if env["name"] != "DATABASE_URL":
                continue
            if "value" in env:
                return env["value"]
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            secret = ref and self.get(f"/api/v1/namespaces/{NAMESPACE}/secrets/{ref['name']}")
            encoded = secret and (secret.get("data") or {}).get(ref["key"])
            return base64.b64decode(encoded).decode() if encoded else None
        return None

    def write_database_url(self, url):
        """Replaces DATABASE_URL in the app's database Secret (the environment's reset)."""
        path = f"/api/v1/namespaces/{NAMESPACE}/secrets/{DB_SECRET}"
        secret = self.get(path)
        secret["data"] = dict(secret.get("data") or {}, DATABASE_URL=base64.b64encode(url.encode()).decode())
        status, body = self.call("PUT", path, secret)
        if status != 200:
            raise RuntimeError(f"PUT {path} on cluster {self.name}: {status} {body.get('message', '')}")

    def faults(self):
        return self.call("GET", "/_emulator/faults")[1].get("faults", [])

    def fail_everything(self):
        self.call("POST", "/_emulator/faults", {"status": 503, "count": -1})

    def clear_faults(self):
        self.call("DELETE", "/_emulator/faults")

    def inventory(self):
        """Names of the objects drills could leave behind, for the leak check."""
        found = []
        for path in (f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", f"/api/v1/namespaces/{NAMESPACE}/secrets",
                     f"/api/v1/namespaces/{NAMESPACE}/configmaps", "/apis/monitoring.coreos.com/v1/prometheusrules"):
            status, body = self.call("GET", path)
            if status == 200:
                kind = path.rsplit("/", 1)[1]
                found += [f"{kind} {o['metadata'].get('namespace', '')}/{o['metadata']['name']}" for o in body["items"]]
        return sorted(found)
