"""Watch streams: replaying the event log from a resourceVersion, then live events, as chunked JSON lines."""

import select
import socket
import time

from .errors import ApiError, bad_request

MAX_TIMEOUT = 1800
BOOKMARK_INTERVAL = 1.0
POLL = 0.25


def _translate(event, namespace, selector):
    """The (type, object) a watcher sees for `event`: an object that stops matching is DELETED."""
    if namespace and event.namespace != namespace:
        return None
    was = event.type != "ADDED" and selector.matches(event.old)
    now = event.type != "DELETED" and selector.matches(event.obj)
    if was and now:
        return "MODIFIED", event.obj
    if now:
        return "ADDED", event.obj
    if was:
        return "DELETED", event.obj
    return None


class WatchStream:
    """One watch request on a handler: sends events until the timeout, a disconnect or shutdown."""

    def __init__(self, handler, store, rtype, namespace, selector, query):
        self.handler, self.store, self.rtype = handler, store, rtype
        self.namespace, self.selector = namespace, selector
        rv = query.get("resourceVersion", "")
        if rv not in ("", "0") and not rv.isdigit():
            raise bad_request(f'resourceVersion: Invalid value: "{rv}": must be a non-negative integer')
        self.initial = rv in ("", "0") or query.get("sendInitialEvents") == "true"
        self.rv = 0 if rv == "" else int(rv)
        timeout = query.get("timeoutSeconds", "")
        self.timeout = min(int(timeout), MAX_TIMEOUT) if timeout.isdigit() else 300
        self.bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        self.initial_end = query.get("sendInitialEvents") == "true"

    def run(self):
        """Streams the watch; the response headers are sent here."""
        self.handler.start_chunked(200)
        try:
            self._stream()
        except ApiError as e:
            self._send("ERROR", e.status())
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.handler.close_connection = True
            return
        try:
            self.handler.end_chunked()
        except OSError:
            self.handler.close_connection = True
        if self.store.closed:
            self.handler.close_connection = True

    def _stream(self):
        if self.initial:
            with self.store.lock:
                objects = self.store.list(self.rtype.key, self.namespace)
                last = self.store.rv
            for obj in objects:
                if self.selector.matches(obj):
                    self._send("ADDED", obj)
            if self.initial_end:
                self._bookmark(last, {"k8s.io/initial-events-end": "true"})
        else:
            last = self.rv
        deadline = time.monotonic() + self.timeout
        next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
        while not self.store.closed and time.monotonic() < deadline:
            events, seen = self.store.events_after(last, self.rtype.key)
            for event in events:
                translated = _translate(event, self.namespace, self.selector)
                if translated:
                    self._send(*translated)
            last = seen
            if self.bookmarks and time.monotonic() >= next_bookmark:
                self._bookmark(last)
                next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
            if self._client_gone():
                raise BrokenPipeError()
            self.store.wait_past(last, min(POLL, max(0.0, deadline - time.monotonic())))

    def _send(self, kind, obj):
        self.handler.write_chunk({"type": kind, "object": obj})

    def _bookmark(self, rv, annotations=None):
        meta = {"resourceVersion": str(rv)}
        if annotations:
            meta["annotations"] = annotations
        self._send("BOOKMARK", {"kind": self.rtype.kind, "apiVersion": self.rtype.api_version, "metadata": meta})

    def _client_gone(self):
        sock = self.handler.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
