"""The Kubernetes verbs on one cluster's store: get, list, create, update, patch, delete, scale."""

import copy
import datetime
import uuid

from . import patch as patches
from . import selectors
from .errors import ApiError, already_exists, bad_request, conflict, namespace_not_found, not_found
from .resources import RESOURCES, named
from .validation import apply_defaults, validate, validate_replicas

NAMESPACES = named("", "namespaces")


def now_iso():
    """The current time as the API server writes it (RFC 3339, seconds)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _content(obj):
    """What `generation` tracks: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class Api:
    """The verbs, with the API server's rules for metadata, resourceVersion and status."""

    def __init__(self, store):
        self.store = store

    def require_namespace(self, rtype, namespace):
        """404s a namespaced write into a namespace that does not exist."""
        if rtype.namespaced and self.store.get(NAMESPACES.key, "", namespace) is None:
            raise namespace_not_found(namespace)

    def get(self, rtype, namespace, name):
        """The object, or the 404."""
        obj = self.store.get(rtype.key, namespace, name)
        if obj is None:
            raise not_found(rtype, name)
        return obj

    def list(self, rtype, namespace, selector):
        """The `<Kind>List` of the matching objects."""
        with self.store.lock:
            items = [o for o in self.store.list(rtype.key, namespace) if selector.matches(o)]
            rv = self.store.rv
        return {"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version,
                "metadata": {"resourceVersion": str(rv)}, "items": items}

    def _check_identity(self, rtype, namespace, name, body):
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        for field, expected in (("apiVersion", rtype.api_version), ("kind", rtype.kind)):
            if body.get(field) not in (None, "", expected):
                raise bad_request(f"the {field} of the object ({body[field]}) does not match the expected "
                                  f"{field} ({expected})")
            body[field] = expected
        if name is not None and meta.get("name") not in (None, name):
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        if rtype.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if name is not None:
            meta["name"] = name
        if rtype.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)

    def create(self, rtype, namespace, body, dry_run=False, manager=None):
        """POST: a new object (201), or 409 AlreadyExists."""
        self._check_identity(rtype, namespace, None, body)
        meta = body["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        with self.store.lock:
            self.require_namespace(rtype, namespace)
            if self.store.get(rtype.key, namespace, meta.get("name", "")) is not None:
                raise already_exists(rtype, meta["name"])
            apply_defaults(rtype, body)
            validate(rtype, body)
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_iso(), generation=1)
            meta.pop("resourceVersion", None)
            if manager:
                meta["managedFields"] = [_managed_entry(manager, rtype, body.get("apiVersion"))]
            _initial_status(rtype, body)
            return body if dry_run else self.store.put(rtype.key, body)

    def commit(self, rtype, old, new, status_only=False, dry_run=False):
        """Writes `new` over `old` with the server's rules: immutable metadata kept, the status kept on
        main writes (or only the status taken on status writes), generation bumped when the content
        changes, and no write at all when nothing changes."""
        if status_only:
            result = copy.deepcopy(old)
            result["status"] = new.get("status", {})
        else:
            result = copy.deepcopy(new)
            if rtype.has_status_subresource:
                result.pop("status", None)
                if "status" in old:
                    result["status"] = copy.deepcopy(old["status"])
            apply_defaults(rtype, result)
            validate(rtype, result, old)
        meta, old_meta = result.setdefault("metadata", {}), old["metadata"]
        for field in ("uid", "creationTimestamp", "name", "namespace", "generation", "resourceVersion"):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        if "managedFields" not in meta and "managedFields" in old_meta:
            meta["managedFields"] = old_meta["managedFields"]
        if _content(result) != _content(old):
            meta["generation"] = old_meta.get("generation", 1) + 1
        if result == old or dry_run:
            return result
        return self.store.put(rtype.key, result)

    def update(self, rtype, namespace, name, body, status_only=False, dry_run=False):
        """PUT: replaces the object (or its status); 409 on a stale resourceVersion."""
        self._check_identity(rtype, namespace, name, body)
        with self.store.lock:
            self.require_namespace(rtype, namespace)
            old = self.get(rtype, namespace, name)
            rv = body["metadata"].get("resourceVersion")
            if rv not in (None, "") and rv != old["metadata"]["resourceVersion"]:
                raise conflict(rtype, name)
            return self.commit(rtype, old, body, status_only, dry_run)

    def patch(self, rtype, namespace, name, content_type, doc, status_only=False, dry_run=False,
              manager=None, force=False):
        """PATCH in any of the four formats; returns (code, object). Apply creates (201) when absent."""
        with self.store.lock:
            self.require_namespace(rtype, namespace)
            old = self.store.get(rtype.key, namespace, name)
            if content_type == patches.APPLY:
                if not manager:
                    raise bad_request("PATCH " + rtype.plural + ": fieldManager is required for apply requests")
                self._check_identity(rtype, namespace, name, doc)
                if old is None and not status_only:
                    return 201, self.create(rtype, namespace, doc, dry_run, manager)
            if old is None:
                raise not_found(rtype, name)
            new = patches.apply_patch(content_type, old, doc)
            if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
                raise ApiError(422, "the patch removed the object's metadata")
            if new["metadata"].get("resourceVersion") != old["metadata"]["resourceVersion"]:
                raise conflict(rtype, name)
            if new["metadata"].get("name") != name:
                raise bad_request(f"the name of the object ({new['metadata'].get('name')}) does not match "
                                  f"the name on the URL ({name})")
            if manager and content_type == patches.APPLY:
                new["metadata"]["managedFields"] = _with_manager(old, manager, rtype)
            return 200, self.commit(rtype, old, new, status_only, dry_run)

    def delete(self, rtype, namespace, name, options, dry_run=False):
        """DELETE: removes the object and (unless orphaning) what it owns; returns a success Status."""
        with self.store.lock:
            old = self.get(rtype, namespace, name)
            pre = (options or {}).get("preconditions") or {}
            for field, label in (("resourceVersion", "ResourceVersion"), ("uid", "UID")):
                if pre.get(field) and pre[field] != old["metadata"].get(field):
                    raise ApiError(409, f'Operation cannot be fulfilled on {rtype.group_resource} "{name}": '
                                        f"Precondition failed: {label} in precondition: {pre[field]}, {label} "
                                        f"in object meta: {old['metadata'].get(field)}", "Conflict")
            if not dry_run:
                self.store.remove(rtype.key, namespace, name)
                if (options or {}).get("propagationPolicy") != "Orphan":
                    self._cascade(old)
                if rtype is NAMESPACES:
                    self._empty_namespace(name)
        details = {"name": name, "kind": rtype.plural, "uid": old["metadata"]["uid"]}
        if rtype.group:
            details["group"] = rtype.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def delete_collection(self, rtype, namespace, selector, options):
        """DELETE on a collection: every matching object; returns the deleted objects' list."""
        listed = self.list(rtype, namespace, selector)
        for obj in listed["items"]:
            self.delete(rtype, obj["metadata"].get("namespace"), obj["metadata"]["name"], options)
        return listed

    def _cascade(self, owner):
        for key, obj in self.store.owned_by(owner["metadata"]["uid"]):
            meta = obj["metadata"]
            if self.store.remove(key, meta.get("namespace"), meta["name"]) is not None:
                self._cascade(obj)

    def _empty_namespace(self, namespace):
        for rtype in (r for r in RESOURCES if r.namespaced):
            for obj in self.store.list(rtype.key, namespace):
                self.store.remove(rtype.key, namespace, obj["metadata"]["name"])

    # --- the scale subresource

    def scale(self, rtype, namespace, name):
        """GET .../scale: the autoscaling/v1 Scale of a Deployment or StatefulSet."""
        return scale_of(self.get(rtype, namespace, name))

    def set_scale(self, rtype, namespace, name, content_type, doc, dry_run=False):
        """PUT (content_type None: `doc` is the Scale) or PATCH of the scale; returns the new Scale."""
        with self.store.lock:
            obj = self.get(rtype, namespace, name)
            current = scale_of(obj)
            new = doc if content_type is None else patches.apply_patch(content_type, current, doc)
            if not isinstance(new, dict):
                raise bad_request("the body of the request must be a Scale object")
            rv = (new.get("metadata") or {}).get("resourceVersion")
            if rv not in (None, "") and rv != obj["metadata"]["resourceVersion"]:
                raise conflict(rtype, name)
            replicas = (new.get("spec") or {}).get("replicas", 0)
            validate_replicas("Scale", "autoscaling", name, replicas)
            obj.setdefault("spec", {})["replicas"] = replicas
            return scale_of(self.commit(rtype, self.get(rtype, namespace, name), obj, dry_run=dry_run))


def scale_of(obj):
    """The Scale object of a Deployment or StatefulSet."""
    meta, spec = obj["metadata"], obj.get("spec") or {}
    requirements = selectors.from_label_selector(spec.get("selector"))
    return {"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": spec.get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": selectors.format_labels(requirements)}}


def _initial_status(rtype, obj):
    if rtype.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        obj["status"] = {}
    elif rtype.kind == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif rtype.kind == "Namespace":
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}


def _managed_entry(manager, rtype, api_version):
    return {"manager": manager, "operation": "Apply", "apiVersion": api_version or rtype.api_version,
            "time": now_iso(), "fieldsType": "FieldsV1", "fieldsV1": {}}


def _with_manager(old, manager, rtype):
    entries = copy.deepcopy(old["metadata"].get("managedFields") or [])
    if not any(e.get("manager") == manager and e.get("operation") == "Apply" for e in entries):
        entries.append(_managed_entry(manager, rtype, None))
    return entries
