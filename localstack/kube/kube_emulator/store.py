"""One cluster's objects, its resourceVersion counter and the event log watches replay."""

import copy
import threading
from collections import deque
from dataclasses import dataclass

from .errors import expired


@dataclass
class Event:
    """One write: its resourceVersion, resource key, type and the object after (and before) it."""

    rv: int
    key: str
    type: str
    obj: dict
    old: dict = None

    @property
    def namespace(self):
        """The namespace of the object written."""
        return self.obj["metadata"].get("namespace")


class Store:
    """Objects by resource key and (namespace, name); every write bumps one resourceVersion.

    All methods hold `lock` (re-entrant), so callers can hold it too for read-modify-write
    sequences. Objects handed out are copies.
    """

    def __init__(self, log_limit=10_000):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.rv = 0
        self.closed = False
        self._objects = {}
        self._log = deque()
        self._log_limit = log_limit
        self._compacted = 0

    def get(self, key, namespace, name):
        """A copy of the object, or None."""
        with self.lock:
            obj = self._objects.get(key, {}).get((namespace or "", name))
            return copy.deepcopy(obj)

    def list(self, key, namespace=None):
        """Copies of the objects of `key` (in `namespace` if given), sorted by namespace and name."""
        with self.lock:
            items = sorted(self._objects.get(key, {}).items())
            return [copy.deepcopy(o) for (ns, _), o in items if namespace is None or ns == namespace]

    def put(self, key, obj):
        """Stores `obj` (ADDED or MODIFIED), giving it the next resourceVersion; returns a copy."""
        with self.lock:
            meta = obj["metadata"]
            ident = (meta.get("namespace") or "", meta["name"])
            old = self._objects.get(key, {}).get(ident)
            self.rv += 1
            stored = copy.deepcopy(obj)
            stored["metadata"]["resourceVersion"] = str(self.rv)
            self._objects.setdefault(key, {})[ident] = stored
            self._record(Event(self.rv, key, "MODIFIED" if old else "ADDED", stored, old))
            return copy.deepcopy(stored)

    def remove(self, key, namespace, name):
        """Deletes the object (DELETED, at a new resourceVersion); returns it, or None if absent."""
        with self.lock:
            old = self._objects.get(key, {}).pop((namespace or "", name), None)
            if old is None:
                return None
            self.rv += 1
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(self.rv)
            self._record(Event(self.rv, key, "DELETED", gone, old))
            return copy.deepcopy(gone)

    def owned_by(self, uid):
        """(key, object) pairs whose ownerReferences name `uid`."""
        with self.lock:
            return [(key, copy.deepcopy(o)) for key, objs in self._objects.items() for o in objs.values()
                    if any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences") or [])]

    def _record(self, event):
        self._log.append(event)
        while len(self._log) > self._log_limit:
            self._compacted = self._log.popleft().rv
        self.changed.notify_all()

    def events_after(self, rv, key):
        """Events of `key` newer than `rv`, and the current resourceVersion; raises the 410 Expired
        error if the log no longer holds them all."""
        with self.lock:
            if rv < self._compacted:
                raise expired(rv, self._compacted + 1)
            found = []
            for event in reversed(self._log):
                if event.rv <= rv:
                    break
                if event.key == key:
                    found.append(event)
            return found[::-1], self.rv

    def wait_past(self, rv, timeout):
        """Blocks until the resourceVersion passes `rv`, the store closes, or `timeout` seconds pass."""
        with self.lock:
            if self.rv <= rv and not self.closed:
                self.changed.wait(timeout)
            return self.rv

    def close(self):
        """Wakes every waiting watch so it can end."""
        with self.lock:
            self.closed = True
            self.changed.notify_all()
