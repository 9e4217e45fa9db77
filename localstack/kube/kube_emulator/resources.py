"""The resource types the emulator serves, and the discovery documents that describe them."""

from dataclasses import dataclass

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUBRESOURCE_VERBS = ["get", "patch", "update"]


@dataclass(frozen=True)
class ResourceType:
    """One served resource, e.g. apps/v1 deployments."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    subresources: tuple = ()
    short_names: tuple = ()

    @property
    def api_version(self):
        """`v1` or `apps/v1`."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self):
        """`deployments.apps` (or `pods` in the core group), as error messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key(self):
        """The store's key for objects of this type."""
        return f"{self.group}/{self.plural}"

    @property
    def has_status_subresource(self):
        """Whether `.status` is written only through `/status` (so main writes keep it)."""
        return "status" in self.subresources


def _core(plural, kind, namespaced=True, subresources=(), short=()):
    return ResourceType("", "v1", plural, kind.lower(), kind, namespaced, subresources, short)


RESOURCES = [
    _core("namespaces", "Namespace", False, ("status",), ("ns",)),
    _core("nodes", "Node", False, ("status",), ("no",)),
    _core("pods", "Pod", True, ("status",), ("po",)),
    _core("secrets", "Secret"),
    _core("configmaps", "ConfigMap", short=("cm",)),
    _core("services", "Service", True, ("status",), ("svc",)),
    _core("serviceaccounts", "ServiceAccount", short=("sa",)),
    _core("events", "Event", short=("ev",)),
    ResourceType("apps", "v1", "deployments", "deployment", "Deployment", True, ("scale", "status"), ("deploy",)),
    ResourceType("apps", "v1", "statefulsets", "statefulset", "StatefulSet", True, ("scale", "status"), ("sts",)),
    ResourceType("apps", "v1", "replicasets", "replicaset", "ReplicaSet", True, ("status",), ("rs",)),
    ResourceType("monitoring.coreos.com", "v1", "prometheusrules", "prometheusrule", "PrometheusRule", True),
]

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}


def lookup(group, version, plural):
    """The resource served at `/apis/{group}/{version}/{plural}`, or None."""
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version, kind):
    """The resource whose objects have this apiVersion and kind, or None."""
    return _BY_KIND.get((api_version, kind))


def named(group, plural):
    """The resource `plural` in `group` (any version), or None."""
    return next((r for r in RESOURCES if r.group == group and r.plural == plural), None)


def groups():
    """The non-core groups, each with its versions, in table order."""
    found = {}
    for r in RESOURCES:
        if r.group and r.version not in found.setdefault(r.group, []):
            found[r.group].append(r.version)
    return found


def _subresource_kind(r, sub):
    return ("autoscaling", "v1", "Scale") if sub == "scale" else (r.group, r.version, r.kind)


def api_versions(server_address):
    """`/api`: the core group's versions."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group(name, versions):
    """One entry of `/apis`, also served at `/apis/{group}`."""
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list():
    """`/apis`: every non-core group."""
    items = []
    for name, versions in groups().items():
        group = api_group(name, versions)
        del group["kind"], group["apiVersion"]
        items.append(group)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": items}


def api_resource_list(group, version):
    """`/api/v1` or `/apis/{group}/{version}`: its resources and subresources, or None."""
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    resources = []
    for r in served:
        resources.append({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                          "kind": r.kind, "verbs": VERBS, "shortNames": list(r.short_names) or None})
        for sub in r.subresources:
            g, v, kind = _subresource_kind(r, sub)
            entry = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                     "kind": kind, "verbs": SUBRESOURCE_VERBS}
            if sub == "scale":
                entry.update(group=g, version=v)
            resources.append(entry)
    for entry in resources:
        if entry.get("shortNames") is None:
            entry.pop("shortNames", None)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": served[0].api_version,
            "resources": resources}


def aggregated_discovery(core):
    """The aggregated discovery document (apidiscovery.k8s.io/v2) of `/api` (core) or `/apis`."""
    names = [""] if core else list(groups())
    items = []
    for name in names:
        versions = []
        for version in ([ "v1"] if core else groups()[name]):
            resources = []
            for r in (x for x in RESOURCES if x.group == name and x.version == version):
                subs = [{"subresource": s, "verbs": SUBRESOURCE_VERBS,
                         "responseKind": dict(zip(("group", "version", "kind"), _subresource_kind(r, s)))}
                        for s in r.subresources]
                entry = {"resource": r.plural, "singularResource": r.singular, "verbs": VERBS,
                         "scope": "Namespaced" if r.namespaced else "Cluster",
                         "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                         "shortNames": list(r.short_names), "subresources": subs}
                resources.append(entry)
            versions.append({"version": version, "resources": resources, "freshness": "Current"})
        items.append({"metadata": {"name": name}, "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": items}
