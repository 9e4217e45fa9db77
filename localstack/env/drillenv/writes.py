"""The application's write path, one per region: what the drill's synthetic client commits through the
public name. `POST /regions/<region>/write` with `{"seq": N}` inserts row N into the drill's client table
in the database the region's DATABASE_URL names (resolved from the Deployment and its Secret in that
region's cluster), connecting as the app does: its role and password, over one pooled connection that is
dropped on any error and opened again on the next write (so a fence that terminates the app's sessions
is felt, as by a real connection pool).

A region's app keeps serving with the DATABASE_URL and pods it last saw when its cluster's API stops
answering (the `api_fail` fault), as running pods do. The health fault (`health_fail`, `partition`)
fails health checks only: the app and its database stay up and writable, which is what makes split
brain possible. Errors never contain the URL."""

import threading
import time
import urllib.parse

import pg8000.native

#: The table the drill creates (and grants the app role INSERT on) before its client starts.
TABLE = "drctl_drill_heartbeat"

#: How long a looked-up DATABASE_URL is reused before the cluster is asked again.
REFRESH_S = 0.5


class RegionApp:
    """One region's app: its view of the Deployment (ready pods, DATABASE_URL), cached."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.lock = threading.Lock()
        self.seen = None  # (ready, url)
        self.seen_at = 0.0
        self.pool = None  # (url, connection)

    def view(self):
        """(ready pods?, DATABASE_URL) from the cluster, or the last view when its API does not answer."""
        with self.lock:
            if self.seen is not None and time.monotonic() - self.seen_at < REFRESH_S:
                return self.seen
        try:
            deployment = self.cluster.deployment()
            ready = bool(deployment and (deployment.get("status") or {}).get("readyReplicas"))
            seen = (ready, self.cluster.database_url() if ready else None)
        except Exception:
            with self.lock:
                if self.seen is None:
                    raise
                return self.seen
        with self.lock:
            self.seen, self.seen_at = seen, time.monotonic()
        return seen

    def write(self, seq):
        """Commits row `seq`; returns (True, commit time in microseconds since the epoch) or (False, reason)."""
        try:
            ready, url = self.view()
        except Exception as e:
            return False, f"the app cannot see its deployment ({type(e).__name__})"
        if not ready:
            return False, "no ready pods"
        if not url:
            return False, "the app has no DATABASE_URL"
        with self.lock:
            return self.commit(url, seq)

    def commit(self, url, seq):
        """INSERTs row `seq` over the pooled connection to `url` (opened when missing or for another URL)."""
        parts = urllib.parse.urlsplit(url)
        where = f"database {parts.hostname}:{parts.port}"
        if self.pool is None or self.pool[0] != url:
            self.drop()
            try:
                self.pool = (url, pg8000.native.Connection(
                    user=urllib.parse.unquote(parts.username or ""),
                    password=urllib.parse.unquote(parts.password or ""),
                    host=parts.hostname, port=parts.port or 5432, database=parts.path.lstrip("/"), timeout=2))
            except Exception as e:
                return False, f"{where} unreachable ({type(e).__name__})"
        try:
            row = self.pool[1].run(
                f"INSERT INTO {TABLE} (seq, at) VALUES (:seq, clock_timestamp()) "
                "RETURNING (extract(epoch FROM at) * 1000000)::bigint", seq=seq)
            return True, int(row[0][0])
        except pg8000.native.DatabaseError as e:
            self.drop()
            fields = e.args[0] if e.args and isinstance(e.args[0], dict) else {}
            return False, f"{where} refused the write: {fields.get('M', type(e).__name__)}"
        except Exception as e:
            self.drop()
            return False, f"{where} failed the write ({type(e).__name__})"

    def drop(self):
        if self.pool is not None:
            try:
                self.pool[1].close()
            except Exception:
                pass
            self.pool = None
