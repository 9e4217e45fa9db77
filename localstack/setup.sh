#!/usr/bin/env bash
# Installs what the AWS emulator needs into .venv at the repository root: moto's server mode,
# pinned, from PyPI. Idempotent: a second run with the same version does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION=5.2.5
venv=.venv
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" "pyyaml==6.0.3"
echo "moto $MOTO_VERSION installed in $venv"
