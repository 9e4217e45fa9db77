"""Injected faults and request counts: the emulator's control API state for one cluster."""

import threading
from collections import Counter

from .errors import ApiError, REASONS

MESSAGES = {
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected fault",
    503: "the server is currently unable to handle the request",
}


class Faults:
    """Faults that answer the next matching requests with an error status, consumed by count."""

    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []

    def add(self, spec):
        """Adds `{"status": 503, "count": 2, "method": "PATCH", "path_contains": "/scale"}`; returns the list."""
        if not isinstance(spec, dict):
            raise ApiError(400, "a fault is a JSON object")
        status = spec.get("status")
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ApiError(400, "fault status must be an HTTP error code (400-599)")
        count = spec.get("count", 1)
        if not isinstance(count, int) or count == 0 or count < -1:
            raise ApiError(400, "fault count must be a positive number or -1 (until cleared)")
        fault = {"status": status, "count": count, "method": (spec.get("method") or "").upper() or None,
                 "path_contains": spec.get("path_contains") or None, "message": spec.get("message")}
        with self._lock:
            self._faults.append(fault)
            return self.list()

    def list(self):
        """The active faults."""
        return {"faults": [dict(f) for f in self._faults]}

    def clear(self):
        """Removes every fault."""
        with self._lock:
            self._faults.clear()

    def take(self, method, path, target=None):
        """The error to answer this request with, consuming one count of the first matching fault;
        `target` (`deployments.apps "web"`) words a 409."""
        with self._lock:
            for fault in self._faults:
                if fault["method"] not in (None, method) or (fault["path_contains"] or "") not in path:
                    continue
                if fault["count"] > 0:
                    fault["count"] -= 1
                    if fault["count"] == 0:
                        self._faults.remove(fault)
                return _error(fault, target)
        return None


def _error(fault, target):
    code = fault["status"]
    message = fault["message"] or MESSAGES.get(code)
    if message is None and code == 409:
        message = (f"Operation cannot be fulfilled on {target or 'the object'}: the object has been modified; "
                   "please apply your changes to the latest version and try again")
    headers = {"Retry-After": "1"} if code == 429 else {}
    details = {"retryAfterSeconds": 1} if code == 429 else None
    return ApiError(code, message or f"injected fault {code}", REASONS.get(code), details, headers)


class RequestLog:
    """How many requests each (method, path) got since start or the last reset, and how many of
    them succeeded (a 2xx answer: a write that took effect, not one refused with a 409)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = Counter()
        self._succeeded = Counter()

    def record(self, method, path):
        """Counts one request (path without its query)."""
        with self._lock:
            self._counts[f"{method} {path.split('?')[0]}"] += 1

    def record_success(self, method, path):
        """Counts one request that was answered with a 2xx."""
        with self._lock:
            self._succeeded[f"{method} {path.split('?')[0]}"] += 1

    def snapshot(self):
        """`{"requests": {"PATCH /apis/...": n, ...}, "succeeded": {...}}`."""
        with self._lock:
            return {"requests": dict(sorted(self._counts.items())),
                    "succeeded": dict(sorted(self._succeeded.items()))}

    def reset(self):
        """Forgets every count."""
        with self._lock:
            self._counts.clear()
            self._succeeded.clear()
