#!/usr/bin/env bash
# The README's first command: sets up the local emulated DR environment (moto, the Kubernetes API
# emulator, a PostgreSQL primary and standby, health endpoints; installed on first use) and runs a
# full drill of the us-west-2 runbook against it: the primary database dies, drctl fails over,
# measures RTO and RPO, fails back, checks that everything is back and nothing was left behind,
# and writes the evidence. The environment is torn down at the end.
#
#   localstack/drill.sh [DRILL [--profile P --time-scale X --seed N]]
#                                    # default us-west-2-monthly (drills/us-west-2-monthly.yaml)
#
# A drill's latency profile (its `profile:`/`time_scale:`/`seed:`, or the flags above) is applied
# by the environment: the script starts it with the matching `up --profile ... --time-scale ...`.
#
# DRCTL (a drctl binary; default: build target/debug/drctl), DRCTL_STATE_DIR (default .drctl) and
# DRCTL_ENV_DIR (default $DRCTL_STATE_DIR/env) can be set. Exit code: drctl drill's (0 passed,
# 1 an objective missed or a check failed).
#
# Each phase says what it is doing on standard error, one line each, before it starts: the first
# run builds drctl and installs the environment, and is quiet for minutes otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
drill="${1:-us-west-2-monthly}"
shift || true
say() { echo "drill.sh: $*" >&2; }
if [ -z "${DRCTL:-}" ]; then
  say "building drctl (cargo build --bin drctl: a few minutes the first time, seconds after)"
  cargo build --quiet --bin drctl
  DRCTL=target/debug/drctl
fi
export DRCTL_STATE_DIR="${DRCTL_STATE_DIR:-.drctl}"
env_dir="${DRCTL_ENV_DIR:-$DRCTL_STATE_DIR/env}"

say "installing what the environment lacks (PostgreSQL from Debian's packages, moto in .venv: about a minute the first time), then starting it in $env_dir"
# A drill drctl cannot read gets no flags here; `drill run` below says what is wrong with it.
flags="$("$DRCTL" drill up-flags "$drill" "$@" 2>/dev/null)" || flags=""
read -r -a up_flags <<< "$flags"
localstack/env/up --dir "$env_dir" "${up_flags[@]}"
trap 'say "stopping the environment in $env_dir"; localstack/env/down --dir "$env_dir"' EXIT
say "running the drill $drill with $DRCTL (state in $DRCTL_STATE_DIR)"
"$DRCTL" drill run "$drill" --environment "$env_dir/env.json" "$@"
