"""Pods as the controller runs them: names, template hashes, rollout delays and the status a pod
has at a given moment (creating, running and ready, or stuck pulling or crash-looping)."""

import datetime
import hashlib
import json
import random
import re

ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
FAIL_ANNOTATION = "emulator.drctl.dev/fail"
DELAY_ANNOTATION = "emulator.drctl.dev/rollout-delay"
CRASH_RESTART_INTERVAL = 2.0


def template_hash(template):
    """A stable 10-character hash of a pod template (like pod-template-hash), ignoring that label."""
    template = json.loads(json.dumps(template or {}))
    (template.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:10])


def random_suffix(length=5):
    """The random suffix of a ReplicaSet's pod names."""
    return "".join(random.choice(ALPHABET) for _ in range(length))


def parse_delay(text, default):
    """Seconds from `3s`, `500ms`, `2m` or `1.5`; `default` when absent or unreadable."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", str(text or ""))
    if not m:
        return default
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]


def image_host(image):
    """The registry host of an image reference (`docker.io` when it names none)."""
    first = image.split("/")[0] if "/" in image else ""
    if first and ("." in first or ":" in first or first == "localhost"):
        return first.split(":")[0]
    return "docker.io"


def _iso(wall):
    return datetime.datetime.fromtimestamp(wall, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(kind, ok, since, reason=None, message=None):
    cond = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None,
            "lastTransitionTime": _iso(since)}
    if reason:
        cond.update(reason=reason, message=message)
    return cond


def is_ready(pod):
    """Whether the pod's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def pod_status(pod, created, ready_at, now, pod_ip, host_ip):
    """The status of `pod` at wall time `now`, given when it was created and when it may be ready."""
    spec, meta = pod.get("spec") or {}, pod["metadata"]
    containers = spec.get("containers") or []
    names = [c.get("name", "") for c in containers]
    started = now >= ready_at
    bad_images = [c for c in containers if image_host(c.get("image", "")).endswith(".invalid")]
    crash = (meta.get("annotations") or {}).get(FAIL_ANNOTATION)
    statuses = []
    for c in containers:
        status = {"name": c.get("name", ""), "image": c.get("image", ""), "imageID": "", "ready": False,
                  "restartCount": 0, "started": False}
        if not started:
            status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif c in bad_images:
            status["state"] = {"waiting": {"reason": "ImagePullBackOff",
                                           "message": f'Back-off pulling image "{c.get("image", "")}"'}}
        elif crash:
            restarts = 1 + int((now - ready_at) / CRASH_RESTART_INTERVAL)
            status.update(restartCount=restarts, imageID=f"{c.get('image', '')}@sha256:{'0' * 64}")
            status["state"] = {"waiting": {"reason": crash, "message": f"back-off 10s restarting failed "
                                           f"container={c.get('name', '')} pod={meta['name']}_"
                                           f"{meta.get('namespace', '')}({meta.get('uid', '')})"}}
            status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": _iso(ready_at),
                                                  "finishedAt": _iso(ready_at)}}
        else:
            status.update(ready=True, started=True, imageID=f"{c.get('image', '')}@sha256:{'0' * 64}")
            status["state"] = {"running": {"startedAt": _iso(ready_at)}}
        statuses.append(status)
    ready = started and containers and all(s["ready"] for s in statuses)
    unready = f"containers with unready status: [{' '.join(n for n, s in zip(names, statuses) if not s['ready'])}]"
    phase = "Running" if started and not bad_images else "Pending"
    reason, message = (None, None) if ready else ("ContainersNotReady", unready)
    since = ready_at if started else created
    status = {"phase": phase, "conditions": [
        _condition("PodReadyToStartContainers", started, since),
        _condition("Initialized", True, created),
        _condition("Ready", ready, since, reason, message),
        _condition("ContainersReady", ready, since, reason, message),
        _condition("PodScheduled", True, created)],
        "hostIP": host_ip, "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": _iso(created),
        "containerStatuses": statuses, "qosClass": "BestEffort"}
    return status
