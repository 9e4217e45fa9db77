"""The validation the emulator enforces on writes (a small part of the real server's)."""

import json
import re

from . import selectors
from .errors import ApiError, invalid

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
WORKLOADS = ("Deployment", "StatefulSet", "ReplicaSet")


def _go_map(labels):
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted((labels or {}).items())) + "}"


def validate_replicas(kind, group, name, replicas):
    """Replicas must be a non-negative integer."""
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise ApiError(400, f"json: cannot unmarshal {json.dumps(replicas)} into Go struct field "
                            f"{kind}Spec.spec.replicas of type int32")
    if replicas < 0:
        raise invalid(kind, group, name, "spec.replicas", replicas, "must be greater than or equal to 0")


def validate(rtype, obj, old=None):
    """Raises the 422 the real server gives for a bad name, negative replicas or a selector that does
    not match the pod template's labels (or changed on update)."""
    name = obj["metadata"].get("name", "")
    if not _NAME.match(name) or len(name) > 253:
        raise invalid(rtype.kind, rtype.group, name, "metadata.name", f'"{name}"',
                      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                      "'-' or '.', and must start and end with an alphanumeric character")
    if rtype.kind not in WORKLOADS:
        return
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise invalid(rtype.kind, rtype.group, name, "spec", "null", "spec is required")
    validate_replicas(rtype.kind, rtype.group, name, spec.get("replicas", 1))
    selector = spec.get("selector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        raise invalid(rtype.kind, rtype.group, name, "spec.selector", "v1.LabelSelector{}",
                      "empty selector is invalid for deployment")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if not selectors.labels_match(selectors.from_label_selector(selector), labels):
        raise invalid(rtype.kind, rtype.group, name, "spec.template.metadata.labels", _go_map(labels),
                      "`selector` does not match template `labels`")
    if old is not None and old.get("spec", {}).get("selector") != selector:
        raise invalid(rtype.kind, rtype.group, name, "spec.selector", json.dumps(selector), "field is immutable")


def apply_defaults(rtype, obj):
    """Fills the spec defaults the real server sets on workloads, on every write."""
    spec = obj.get("spec")
    if rtype.kind not in WORKLOADS or not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    if rtype.kind == "Deployment":
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("strategy", {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    elif rtype.kind == "StatefulSet":
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
