"""resourceVersion, lists and watches."""

import json
import threading
import time

from helpers import CONFIGMAPS, ClusterTest


def configmap(name, labels=None):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
            "data": {"k": name}}


class ResourceVersionTest(ClusterTest):
    def test_every_write_bumps_one_monotonic_resource_version(self):
        a = self.ok("POST", CONFIGMAPS, configmap("a"))
        b = self.ok("POST", CONFIGMAPS, configmap("b"))
        a2 = self.ok("PATCH", f"{CONFIGMAPS}/a", {"data": {"k": "changed"}}, "application/merge-patch+json")
        versions = [int(o["metadata"]["resourceVersion"]) for o in (a, b, a2)]
        self.assertEqual(versions, sorted(versions))
        self.assertEqual(len(set(versions)), 3)
        listed = self.ok("GET", CONFIGMAPS)
        self.assertEqual(listed["kind"], "ConfigMapList")
        self.assertGreaterEqual(int(listed["metadata"]["resourceVersion"]), versions[-1])
        for item in listed["items"]:
            self.assertTrue(item["metadata"]["resourceVersion"].isdigit())
            self.assertTrue(item["metadata"]["uid"])
            self.assertEqual(item["metadata"]["namespace"], "default")

    def test_a_write_that_changes_nothing_keeps_the_resource_version(self):
        a = self.ok("POST", CONFIGMAPS, configmap("a"))
        again = self.ok("PATCH", f"{CONFIGMAPS}/a", {"data": {"k": "a"}}, "application/merge-patch+json")
        self.assertEqual(a["metadata"]["resourceVersion"], again["metadata"]["resourceVersion"])

    def test_label_and_field_selectors_filter_lists(self):
        for name, labels in (("a", {"tier": "web"}), ("b", {"tier": "db"}), ("c", {})):
            self.ok("POST", CONFIGMAPS, configmap(name, labels))
        names = lambda q: [o["metadata"]["name"] for o in self.ok("GET", f"{CONFIGMAPS}?{q}")["items"]]
        self.assertEqual(names("labelSelector=tier%3Dweb"), ["a"])
        self.assertEqual(names("labelSelector=tier%21%3Dweb"), ["b", "c"])
        self.assertEqual(names("labelSelector=tier%20in%20(web,db)"), ["a", "b"])
        self.assertEqual(names("labelSelector=tier"), ["a", "b"])
        self.assertEqual(names("labelSelector=%21tier"), ["c"])
        self.assertEqual(names("fieldSelector=metadata.name%3Db"), ["b"])
        status, error = self.request("GET", f"{CONFIGMAPS}?fieldSelector=spec.x%3D1")
        self.assertEqual((status, error["message"]), (400, "field label not supported: spec.x"))


class WatchTest(ClusterTest):
    log_limit = 20

    def test_a_watch_replays_from_its_resource_version_then_streams_live_events(self):
        start = self.ok("POST", CONFIGMAPS, configmap("a"))["metadata"]["resourceVersion"]
        self.ok("POST", CONFIGMAPS, configmap("b"))
        self.ok("PATCH", f"{CONFIGMAPS}/a", {"data": {"k": "2"}}, "application/merge-patch+json")
        response, conn = self.watch(f"{CONFIGMAPS}?watch=true&resourceVersion={start}&timeoutSeconds=1"
                                    "&fieldSelector=metadata.name%3Da")
        first = json.loads(response.readline())
        self.assertEqual((first["type"], first["object"]["data"]["k"]), ("MODIFIED", "2"))
        threading.Timer(0.1, lambda: self.request("DELETE", f"{CONFIGMAPS}/a")).start()
        threading.Timer(0.1, lambda: self.request("POST", CONFIGMAPS, configmap("c"))).start()
        live = json.loads(response.readline())
        self.assertEqual((live["type"], live["object"]["metadata"]["name"]), ("DELETED", "a"))
        started = time.monotonic()
        self.assertEqual(response.read(), b"", "nothing else matches, and the watch ends at its timeout")
        self.assertLess(time.monotonic() - started, 3)
        conn.close()

    def test_a_watch_from_zero_lists_then_bookmarks(self):
        self.ok("POST", CONFIGMAPS, configmap("a"))
        response, conn = self.watch(f"{CONFIGMAPS}?watch=1&resourceVersion=0&timeoutSeconds=2&allowWatchBookmarks=true")
        added = json.loads(response.readline())
        self.assertEqual((added["type"], added["object"]["metadata"]["name"]), ("ADDED", "a"))
        bookmark = json.loads(response.readline())
        self.assertEqual(bookmark["type"], "BOOKMARK")
        self.assertEqual(set(bookmark["object"]), {"kind", "apiVersion", "metadata"})
        conn.close()

    def test_an_object_that_stops_matching_is_sent_as_deleted(self):
        self.ok("POST", CONFIGMAPS, configmap("a", {"tier": "web"}))
        response, conn = self.watch(f"{CONFIGMAPS}?watch=true&labelSelector=tier%3Dweb&timeoutSeconds=2")
        self.assertEqual(json.loads(response.readline())["type"], "ADDED")
        self.ok("PATCH", f"{CONFIGMAPS}/a", {"metadata": {"labels": {"tier": "db"}}}, "application/merge-patch+json")
        self.assertEqual(json.loads(response.readline())["type"], "DELETED")
        conn.close()

    def test_a_resource_version_older_than_the_log_is_gone(self):
        for n in range(30):
            self.ok("POST", CONFIGMAPS, configmap(f"c{n}"))
        response, conn = self.watch(f"{CONFIGMAPS}?watch=true&resourceVersion=3&timeoutSeconds=2")
        event = json.loads(response.readline())
        self.assertEqual(event["type"], "ERROR")
        self.assertEqual((event["object"]["code"], event["object"]["reason"]), (410, "Expired"))
        self.assertEqual(response.read(), b"")
        conn.close()

    def test_stopping_the_server_ends_open_watches(self):
        response, conn = self.watch(f"{CONFIGMAPS}?watch=true&timeoutSeconds=60")
        started = time.monotonic()
        threading.Timer(0.1, self.cluster.stop).start()
        try:
            response.read()
        except Exception:
            pass
        self.assertLess(time.monotonic() - started, 2)
        conn.close()
