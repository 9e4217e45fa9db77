#!/usr/bin/env bash
# Installs what the tests and the local emulators need: PostgreSQL's server (Debian's packages) for
# the pg.* step types and drills, Chromium (Debian's) to render drill reports in a test, tmux (the
# approval prompt is tested in a real terminal), and, in
# .venv at the repository root, pinned from PyPI: moto's server mode (the AWS emulator), PyYAML
# (seed files of the Kubernetes API emulator) and pg8000 (the drill environment's health app
# connects to PostgreSQL as the application would), and, without --drill, the AWS CLI
# (benches/runbook.sh runs the runbook's bash script with it; 1.46.3 is the release built on moto's
# botocore, 1.44.8, so installing it changes nothing moto uses).
# `setup.sh --drill` leaves Chromium and tmux out: the drill environment (localstack/env/up) does not need them.
# Idempotent: what is already installed is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION=5.2.5
PYYAML_VERSION=6.0.3
PG8000_VERSION=1.31.6
AWSCLI_VERSION=1.46.3

packages=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
[ "${1:-}" = "--drill" ] || [ -x /usr/bin/chromium ] || packages+=(chromium)
python3 -c "import ensurepip" 2>/dev/null || packages+=(python3-venv)
[ "${1:-}" = "--drill" ] || command -v tmux >/dev/null || packages+=(tmux)  # the approval prompt tests
if [ ${#packages[@]} -gt 0 ]; then
  echo "installing ${packages[*]} (Debian's packages)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

venv=.venv
# The AWS CLI, for benches/runbook.sh only: added to an existing .venv, left out with --drill.
if [ "${1:-}" != "--drill" ] && [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c "import awscli" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "awscli==$AWSCLI_VERSION"
fi
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import moto, yaml, pg8000, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" "pyyaml==$PYYAML_VERSION" "pg8000==$PG8000_VERSION" "awscli==$AWSCLI_VERSION"
echo "moto $MOTO_VERSION installed in $venv"
