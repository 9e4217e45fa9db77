"""The controllers of one cluster: Deployments roll ReplicaSets, ReplicaSets and StatefulSets run
pods, pods become ready after the rollout delay (or never, for `.invalid` images and the fail
annotation). Every change goes through the API's write path, so watches see it."""

import copy
import threading
import time
import traceback

from . import pods as podlib
from . import statefulset
from .api import now_iso
from .resources import named

DEPLOYMENTS, REPLICASETS = named("apps", "deployments"), named("apps", "replicasets")
STATEFULSETS, PODS, NODES = named("apps", "statefulsets"), named("", "pods"), named("", "nodes")
REVISION = "deployment.kubernetes.io/revision"
TICK = 0.05


def _owner_ref(obj):
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _controlled_by(obj, uid):
    return any(r.get("uid") == uid and r.get("controller") for r in obj["metadata"].get("ownerReferences") or [])


def _revision(rs):
    return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)


def _set_condition(old_conditions, kind, ok, reason, message, now):
    """A condition, keeping its timestamps when nothing about it changed (so status writes stay rare)."""
    status = "True" if ok else "False"
    old = next((c for c in old_conditions or [] if c.get("type") == kind), None)
    if old and (old.get("status"), old.get("reason"), old.get("message")) == (status, reason, message):
        return old
    since = old["lastTransitionTime"] if old and old.get("status") == status else now
    return {"type": kind, "status": status, "lastUpdateTime": now, "lastTransitionTime": since,
            "reason": reason, "message": message}


class Controller:
    """Reconciles every workload of one cluster every TICK seconds on a background thread."""

    def __init__(self, api, rollout_delay, pod_delay=None):
        self.api, self.store, self.rollout_delay = api, api.store, rollout_delay
        #: pod name → seconds until it is ready, when a latency profile applies (see `--latency`); a
        #: workload's rollout-delay annotation still wins.
        self.pod_delay = pod_delay
        self.times = {}      # pod uid -> (created, ready_at), wall-clock seconds
        self.progress = {}   # deployment uid -> (progress marker, wall time of the last progress)
        self.addresses = {}  # pod uid -> pod IP
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="controller", daemon=True)

    def start(self):
        """Starts the reconcile loop."""
        self._thread.start()

    def stop(self):
        """Stops the reconcile loop and waits for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _run(self):
        while not self._stop.is_set():
            try:
                with self.store.lock:
                    self.tick()
            except Exception:
                traceback.print_exc()
            self._stop.wait(TICK)

    def tick(self):
        """One pass over deployments, replicasets, statefulsets and pods."""
        for d in self.store.list(DEPLOYMENTS.key):
            self._roll_deployment(d)
        for rs in self.store.list(REPLICASETS.key):
            self._run_replicaset(rs)
        for sts in self.store.list(STATEFULSETS.key):
            self._run_statefulset(sts)
        live = set()
        for pod in self.store.list(PODS.key):
            live.add(pod["metadata"]["uid"])
            self._run_pod(pod)
        for uid in set(self.times) - live:
            self.times.pop(uid, None)
            self.addresses.pop(uid, None)
        for d in self.store.list(DEPLOYMENTS.key):
            self._deployment_status(d)

    # --- deployments

    def _owned(self, rtype, owner):
        meta = owner["metadata"]
        return [o for o in self.store.list(rtype.key, meta["namespace"]) if _controlled_by(o, meta["uid"])]

    def _current_replicaset(self, d, owned):
        template = d["spec"].get("template") or {}
        wanted = podlib.template_hash(template)
        return next((rs for rs in owned if podlib.template_hash(rs["spec"].get("template")) == wanted), None)

    def _roll_deployment(self, d):
        meta, spec = d["metadata"], d["spec"]
        owned = self._owned(REPLICASETS, d)
        current = self._current_replicaset(d, owned)
        top = max((_revision(rs) for rs in owned), default=0)
        if spec.get("paused"):
            return
        desired = spec.get("replicas", 1)
        if current is None:
            current = self._create_replicaset(d, top + 1)
            owned.append(current)
        elif _revision(current) < top:
            updated = copy.deepcopy(current)
            updated["metadata"]["annotations"][REVISION] = str(top + 1)
            current = self.api.commit(REPLICASETS, current, updated)
        cur_ready = sum(podlib.is_ready(p) for p in self._owned(PODS, current))
        for rs in owned:
            is_current = rs["metadata"]["uid"] == current["metadata"]["uid"]
            old_target = 0 if desired == 0 or cur_ready >= desired else min(rs["spec"].get("replicas", 0), desired)
            self._scale_replicaset(rs, desired if is_current else old_target)
        annotations = meta.get("annotations") or {}
        if annotations.get(REVISION) != current["metadata"]["annotations"][REVISION]:
            updated = copy.deepcopy(d)
            updated["metadata"].setdefault("annotations", {})[REVISION] = current["metadata"]["annotations"][REVISION]
            self.api.commit(DEPLOYMENTS, d, updated)
        self._prune_history(d, current)

    def _create_replicaset(self, d, revision):
        template = copy.deepcopy(d["spec"].get("template") or {})
        pod_hash = podlib.template_hash(template)
        labels = dict((template.get("metadata") or {}).get("labels") or {}, **{"pod-template-hash": pod_hash})
        template.setdefault("metadata", {})["labels"] = labels
        selector = copy.deepcopy(d["spec"].get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
        annotations = {REVISION: str(revision), "deployment.kubernetes.io/desired-replicas":
                       str(d["spec"].get("replicas", 1))}
        body = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": f"{d['metadata']['name']}-{pod_hash}", "labels": labels,
                             "annotations": annotations, "ownerReferences": [_owner_ref(d)]},
                "spec": {"replicas": 0, "selector": selector, "template": template}}
        return self.api.create(REPLICASETS, d["metadata"]["namespace"], body)

    def _scale_replicaset(self, rs, replicas):
        if rs["spec"].get("replicas") != replicas:
            updated = copy.deepcopy(rs)
            updated["spec"]["replicas"] = replicas
            self.api.commit(REPLICASETS, rs, updated)

    def _prune_history(self, d, current):
        limit = d["spec"].get("revisionHistoryLimit", 10)
        old = [rs for rs in self._owned(REPLICASETS, d)
               if rs["metadata"]["uid"] != current["metadata"]["uid"] and rs["spec"].get("replicas") == 0
               and not self._owned(PODS, rs)]
        for rs in sorted(old, key=_revision)[:max(0, len(old) - limit)]:
            self.api.delete(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"], {})

    def _deployment_status(self, d):
        spec, meta, now = d["spec"], d["metadata"], now_iso()
        owned = self._owned(REPLICASETS, d)
        current = self._current_replicaset(d, owned)
        desired = spec.get("replicas", 1)
        pods = [p for rs in owned for p in self._owned(PODS, rs)]
        new_pods = self._owned(PODS, current) if current else []
        ready = sum(podlib.is_ready(p) for p in pods)
        new_ready = sum(podlib.is_ready(p) for p in new_pods)
        total_wanted = sum(rs["spec"].get("replicas", 0) for rs in owned)
        counts = {"replicas": len(pods), "updatedReplicas": len(new_pods), "readyReplicas": ready,
                  "availableReplicas": ready, "unavailableReplicas": max(0, total_wanted - ready)}
        status = {"observedGeneration": meta.get("generation", 1)}
        status.update({k: v for k, v in counts.items() if v})
        rs_name = current["metadata"]["name"] if current else meta["name"]
        complete = len(new_pods) == desired == len(pods) == new_ready
        marker = (rs_name, desired, len(pods), new_ready)
        if self.progress.get(meta["uid"], (None,))[0] != marker:
            self.progress[meta["uid"]] = (marker, time.time())
        stalled = time.time() - self.progress[meta["uid"]][1] > spec.get("progressDeadlineSeconds", 600)
        old_conditions = (d.get("status") or {}).get("conditions")
        available = ready >= desired
        conditions = [_set_condition(old_conditions, "Available", available,
                                     "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                                     "Deployment has minimum availability." if available
                                     else "Deployment does not have minimum availability.", now)]
        if complete:
            progressing = (True, "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.')
        elif stalled:
            progressing = (False, "ProgressDeadlineExceeded", f'ReplicaSet "{rs_name}" has timed out progressing.')
        else:
            progressing = (True, "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        conditions.append(_set_condition(old_conditions, "Progressing", *progressing, now))
        status["conditions"] = conditions
        if d.get("status") != status:
            self.api.commit(DEPLOYMENTS, d, dict(d, status=status), status_only=True)

    # --- replicasets, statefulsets and pods

    def _run_replicaset(self, rs):
        pods = self._owned(PODS, rs)
        want = rs["spec"].get("replicas", 1)
        for _ in range(want - len(pods)):
            pods.append(self._create_pod(rs, f"{rs['metadata']['name']}-{podlib.random_suffix()}", {}))
        if len(pods) > want:
            doomed = sorted(pods, key=lambda p: (podlib.is_ready(p), p["metadata"]["creationTimestamp"]))
            for pod in doomed[:len(pods) - want]:
                self.api.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], {})
                pods.remove(pod)
        ready = sum(podlib.is_ready(p) for p in pods)
        status = {"replicas": len(pods), "observedGeneration": rs["metadata"].get("generation", 1)}
        status.update({k: v for k, v in (("fullyLabeledReplicas", len(pods)), ("readyReplicas", ready),
                                         ("availableReplicas", ready)) if v})
        if rs.get("status") != status:
            self.api.commit(REPLICASETS, rs, dict(rs, status=status), status_only=True)

    def _run_statefulset(self, sts):
        statefulset.reconcile(self, sts)

    def _create_pod(self, owner, name, extra_labels):
        """Creates a pod from `owner`'s template, ready after the owner's rollout delay."""
        template = owner["spec"].get("template") or {}
        tmeta = template.get("metadata") or {}
        nodes = [n["metadata"]["name"] for n in self.store.list(NODES.key)]
        spec = copy.deepcopy(template.get("spec") or {})
        if nodes:
            spec.setdefault("nodeName", nodes[sum(map(ord, name)) % len(nodes)])
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "labels": dict(tmeta.get("labels") or {}, **extra_labels),
                             "ownerReferences": [_owner_ref(owner)]}, "spec": spec}
        if tmeta.get("annotations"):
            body["metadata"]["annotations"] = copy.deepcopy(tmeta["annotations"])
        pod = self.api.create(PODS, owner["metadata"]["namespace"], body)
        delay = podlib.parse_delay(self._delay_annotation(owner), None)
        if delay is None:
            delay = self.pod_delay(f"{owner['metadata']['namespace']}/{pod['metadata']['name']}") \
                if self.pod_delay else self.rollout_delay
        self.times[pod["metadata"]["uid"]] = (time.time(), time.time() + delay)
        return pod

    def _delay_annotation(self, owner):
        """The rollout-delay annotation of the workload: the owner's, or its Deployment's."""
        for ref in owner["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "Deployment":
                parent = self.store.get(DEPLOYMENTS.key, owner["metadata"]["namespace"], ref["name"])
                if parent and podlib.DELAY_ANNOTATION in (parent["metadata"].get("annotations") or {}):
                    return parent["metadata"]["annotations"][podlib.DELAY_ANNOTATION]
        return (owner["metadata"].get("annotations") or {}).get(podlib.DELAY_ANNOTATION)

    def _run_pod(self, pod):
        uid = pod["metadata"]["uid"]
        if uid not in self.times:
            self.times[uid] = (time.time(), time.time() + self.rollout_delay)
        created, ready_at = self.times[uid]
        n = self.addresses.setdefault(uid, max(self.addresses.values(), default=0) + 1)
        ip = f"10.244.{n // 250 % 250}.{n % 250 + 2}"
        status = podlib.pod_status(pod, created, ready_at, time.time(), ip, "172.18.0.2")
        if pod.get("status") != status:
            self.api.commit(PODS, pod, dict(pod, status=status), status_only=True)
