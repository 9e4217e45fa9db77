#!/usr/bin/env bash
# `drctl check` of the drill environment's plan: is its wall time bounded by the slowest single
# check (they run concurrently) or by their sum? Brings the environment up in a temporary
# directory, runs ROUNDS checks (default 7) of both directions, prints per round the wall time, the
# slowest step's checks, the sum over steps, and the medians with the ratio wall/sum.
#   benches/check.sh [ROUNDS]          # DRCTL=path/to/drctl to pick the binary (default target/release, else debug)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-7}"
drctl="${DRCTL:-$root/target/release/drctl}"
[ -x "$drctl" ] || drctl="$root/target/debug/drctl"
work="$(mktemp -d)"
trap '"$root/localstack/env/down" --dir "$work/env" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
"$root/localstack/env/up" --dir "$work/env" >/dev/null 2>"$work/up.log" || { cat "$work/up.log" >&2; exit 1; }
# shellcheck disable=SC1091
source "$work/env/env.sh"
cd "$root"
echo "drctl: $drctl"
for _ in $(seq "$rounds"); do
  "$drctl" --state-dir "$work/state" --output json check --plan plans/us-west-2.yaml --vars "$work/env/vars.yaml" --max-drill-age off || true
done | "$root/.venv/bin/python" -c '
import json, statistics, sys
rows = []
for line in sys.stdin:
    report = json.loads(line)
    steps = {}
    for item in report["items"]:
        steps[(item["direction"], item["step"])] = item["duration_s"]
    rows.append((report["duration_s"], max(steps.values()), sum(steps.values()), len(steps)))
print("%5s %8s %10s %8s %8s" % ("round", "wall s", "slowest s", "sum s", "checked"))
for i, (wall, slowest, total, n) in enumerate(rows, 1):
    print(f"{i:>5} {wall:>8.3f} {slowest:>10.3f} {total:>8.3f} {n:>8}")
wall, slowest, total = (statistics.median(r[k] for r in rows) for k in range(3))
print(f"median: wall {wall:.3f} s, slowest single step {slowest:.3f} s, sum over steps {total:.3f} s")
print(f"wall / sum = {wall / total:.2f}; wall / slowest = {wall / slowest:.2f}")
'
