"""Command line: `emulator --cluster primary --cluster dr --kubeconfig OUT.yaml [...]`."""

import argparse
import json
import os
import signal
import sys
import threading

from . import manifests
from .cluster import Cluster, kubeconfig_text, write_atomically
from .errors import ApiError


def parse_args(argv):
    """The command line."""
    p = argparse.ArgumentParser(prog="emulator", description="A Kubernetes API emulator serving one or more clusters.")
    p.add_argument("--cluster", action="append", required=True, help="a cluster name (repeatable)")
    p.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig once ready")
    p.add_argument("--rollout-delay", type=float, default=0.5, help="seconds until a new pod is ready")
    p.add_argument("--nodes", type=int, default=3, help="Ready nodes per cluster")
    p.add_argument("--seed", action="append", default=[], help="manifests applied to every cluster")
    p.add_argument("--seed-cluster", action="append", default=[], metavar="NAME=FILE",
                   help="manifests applied to one cluster")
    p.add_argument("--latency", metavar="FILE",
                   help="the drill environment's latency settings (JSON: profile, time_scale, seed, delays_log): "
                        "new pods become ready after the profile's kube.pod_ready, each delay logged")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--pid-file", help="write the process id here")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = p.parse_args(argv)
    if len(set(args.cluster)) != len(args.cluster):
        p.error("cluster names must be unique")
    for pair in args.seed_cluster:
        name, _, path = pair.partition("=")
        if name not in args.cluster or not path:
            p.error(f"--seed-cluster {pair!r}: expected NAME=FILE with NAME one of --cluster")
    return args


def latency(path):
    """pod → seconds until ready, from the drill environment's latency settings (its delays module,
    localstack/env/drillenv/delays.py, which logs each delay)."""
    import importlib.util
    import time

    source = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "env", "drillenv", "delays.py")
    spec = importlib.util.spec_from_file_location("drill_delays", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with open(path) as f:
        delays = module.Delays(json.load(f))
    return lambda pod: max(0.0, delays.due("kube.pod_ready", pod) - time.time())


def main(argv=None):
    """Starts the clusters, seeds them, writes the kubeconfig, prints the ready line, serves until signalled."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    pod_delay = latency(args.latency) if args.latency else None
    clusters = [Cluster(name, args.rollout_delay, args.nodes, args.host, args.verbose, pod_delay=pod_delay)
                for name in args.cluster]
    by_name = {c.name: c for c in clusters}
    try:
        seeds = [(c, path) for path in args.seed for c in clusters]
        seeds += [(by_name[pair.split("=", 1)[0]], pair.split("=", 1)[1]) for pair in args.seed_cluster]
        for cluster, path in seeds:
            for obj in manifests.load(path):
                cluster.apply(obj)
    except (OSError, ValueError) as e:
        sys.exit(f"emulator: seeding failed: {e}")
    except ApiError as e:
        sys.exit(f"emulator: seeding failed: {e.message}")
    for cluster in clusters:
        cluster.start()
    if args.pid_file:
        write_atomically(args.pid_file, f"{os.getpid()}\n")
    write_atomically(args.kubeconfig, kubeconfig_text(clusters))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ready = {"ready": True, "clusters": {c.name: c.url for c in clusters},
             "kubeconfig": os.path.abspath(args.kubeconfig)}
    print(json.dumps(ready), flush=True)
    while not stop.wait(1):
        pass
    for cluster in clusters:
        cluster.stop()


if __name__ == "__main__":
    main()
