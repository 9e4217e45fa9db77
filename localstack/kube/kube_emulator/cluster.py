"""One emulated cluster: its store, API, controller, listener, tokens and control API; and the
kubeconfig that names them all."""

import json
import os
import secrets
import tempfile

from . import resources
from .api import Api
from .controller import Controller
from .errors import ApiError
from .faults import Faults, RequestLog
from .server import serve
from .store import Store


class Cluster:
    """A cluster named `name` with `nodes` Ready nodes; pods are ready `rollout_delay` s after creation."""

    def __init__(self, name, rollout_delay=0.5, nodes=3, host="127.0.0.1", verbose=False, log_limit=10_000,
                 pod_delay=None):
        self.name, self.host, self.verbose = name, host, verbose
        self.store = Store(log_limit)
        self.api = Api(self.store)
        pod = (lambda pod_name: pod_delay(f"{name}/{pod_name}")) if pod_delay else None
        self.controller = Controller(self.api, rollout_delay, pod)
        self.faults, self.requests = Faults(), RequestLog()
        self.admin_token, self.readonly_token = secrets.token_hex(16), secrets.token_hex(16)
        self.tokens = {self.admin_token: "admin", self.readonly_token: "readonly"}
        self.server = None
        for namespace in ("default", "kube-system"):
            self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        for n in range(1, nodes + 1):
            self.apply(_node(f"{name}-node-{n}"))

    @property
    def url(self):
        """`http://127.0.0.1:PORT` once started."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        """Binds a free port and starts serving and reconciling."""
        self.server = serve(self, self.host)
        self.controller.start()
        return self

    def stop(self):
        """Stops the controller, ends every watch and closes the listener."""
        self.controller.stop()
        self.store.close()
        if self.server:
            self.server.stop()

    def apply(self, obj):
        """Creates `obj`, or replaces it if it exists (seeding)."""
        rtype = resources.by_kind(obj.get("apiVersion"), obj.get("kind"))
        if rtype is None:
            raise ValueError(f"the emulator does not serve {obj.get('apiVersion')} {obj.get('kind')}")
        namespace = (obj.get("metadata") or {}).get("namespace") or "default" if rtype.namespaced else None
        name = (obj.get("metadata") or {}).get("name")
        if name and self.store.get(rtype.key, namespace, name) is not None:
            return self.api.update(rtype, namespace, name, json.loads(json.dumps(obj)))
        created = self.api.create(rtype, namespace, json.loads(json.dumps(obj)))
        if rtype.kind == "Node" and "status" in obj:
            created = self.api.commit(rtype, created, dict(created, status=obj["status"]), status_only=True)
        return created

    def control(self, method, path, raw):
        """The control API (`/_emulator/faults`, `/_emulator/requests`); returns (code, body)."""
        try:
            if path == "/_emulator/faults":
                if method == "GET":
                    return 200, self.faults.list()
                if method == "POST":
                    return 200, self.faults.add(json.loads(raw.decode() or "null"))
                if method == "DELETE":
                    self.faults.clear()
                    return 200, self.faults.list()
            elif path == "/_emulator/requests":
                if method == "GET":
                    return 200, self.requests.snapshot()
                if method == "DELETE":
                    self.requests.reset()
                    return 200, self.requests.snapshot()
            else:
                return 404, ApiError(404, f"no control endpoint {path}").status()
            return 405, ApiError(405, f"{method} is not supported on {path}").status()
        except ValueError as e:
            return 400, ApiError(400, f"the body is not valid JSON: {e}").status()
        except ApiError as e:
            return e.code, e.status()


def _node(name):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                  "kubernetes.io/arch": "amd64"}},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "message": "kubelet is posting ready status"}],
                       "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "nodeInfo": {"kubeletVersion": "v1.33.0-drctl-emulator", "operatingSystem": "linux",
                                    "architecture": "amd64"}}}


def kubeconfig_text(clusters):
    """A kubeconfig: per cluster a cluster, an admin user and a context named like the cluster, plus a
    `NAME-readonly` user and context; the current context is the first cluster's."""
    q = json.dumps
    lines = ["apiVersion: v1", "kind: Config", "preferences: {}", f"current-context: {q(clusters[0].name)}",
             "clusters:"]
    for c in clusters:
        lines += [f"- name: {q(c.name)}", "  cluster:", f"    server: {q(c.url)}"]
    lines.append("users:")
    for c in clusters:
        lines += [f"- name: {q(c.name)}", "  user:", f"    token: {q(c.admin_token)}",
                  f"- name: {q(c.name + '-readonly')}", "  user:", f"    token: {q(c.readonly_token)}"]
    lines.append("contexts:")
    for c in clusters:
        for context in (c.name, c.name + "-readonly"):
            lines += [f"- name: {q(context)}", "  context:", f"    cluster: {q(c.name)}",
                      f"    user: {q(context)}", "    namespace: default"]
    return "\n".join(lines) + "\n"


def write_atomically(path, text):
    """Writes `text` to a temporary file beside `path`, then renames it into place."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".kubeconfig-", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
