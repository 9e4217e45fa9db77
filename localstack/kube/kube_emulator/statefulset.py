"""The StatefulSet controller: ordinal pods `NAME-0..N-1`, created in order (unless Parallel), rolled
from the highest ordinal down, with revisions `NAME-HASH`."""

from . import pods as podlib
from .resources import named

PODS, STATEFULSETS = named("", "pods"), named("apps", "statefulsets")

REVISION_LABEL = "controller-revision-hash"


def _ordinal(sts, pod):
    suffix = pod["metadata"]["name"][len(sts["metadata"]["name"]) + 1:]
    return int(suffix) if suffix.isdigit() else -1


def reconcile(controller, sts):
    """Moves the StatefulSet's pods toward its spec and writes its status."""
    api, meta, spec = controller.api, sts["metadata"], sts["spec"]
    name, namespace = meta["name"], meta["namespace"]
    update_revision = f"{name}-{podlib.template_hash(spec.get('template'))}"
    want = spec.get("replicas", 1)
    pods = {_ordinal(sts, p): p for p in controller._owned(PODS, sts)}
    for ordinal in sorted(o for o in pods if o >= want or o < 0):
        api.delete(PODS, namespace, pods.pop(ordinal)["metadata"]["name"], {})
    ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
    for ordinal in range(want):
        if ordinal in pods:
            continue
        if ordered and not all(podlib.is_ready(pods[o]) for o in range(ordinal) if o in pods):
            break
        labels = {REVISION_LABEL: update_revision, "statefulset.kubernetes.io/pod-name": f"{name}-{ordinal}",
                  "apps.kubernetes.io/pod-index": str(ordinal)}
        pods[ordinal] = controller._create_pod(sts, f"{name}-{ordinal}", labels)
    rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
    all_ready = len(pods) == want and all(podlib.is_ready(p) for p in pods.values())
    outdated = [o for o, p in pods.items() if p["metadata"]["labels"].get(REVISION_LABEL) != update_revision]
    if rolling and all_ready and outdated:
        api.delete(PODS, namespace, pods.pop(max(outdated))["metadata"]["name"], {})
    status_was = sts.get("status") or {}
    updated = sum(p["metadata"]["labels"].get(REVISION_LABEL) == update_revision for p in pods.values())
    ready = sum(podlib.is_ready(p) for p in pods.values())
    current_revision = status_was.get("currentRevision") or update_revision
    if updated == want and ready == want:
        current_revision = update_revision
    current = sum(p["metadata"]["labels"].get(REVISION_LABEL) == current_revision for p in pods.values())
    status = {"observedGeneration": meta.get("generation", 1), "replicas": len(pods),
              "currentRevision": current_revision, "updateRevision": update_revision, "collisionCount": 0}
    status.update({k: v for k, v in (("readyReplicas", ready), ("currentReplicas", current),
                                     ("updatedReplicas", updated), ("availableReplicas", ready)) if v})
    if sts.get("status") != status:
        api.commit(STATEFULSETS, sts, dict(sts, status=status), status_only=True)
