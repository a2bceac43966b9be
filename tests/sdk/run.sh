#!/usr/bin/env bash
# The SDK suite: the official openai and anthropic Python packages against the real flo2 binary
# and the fake upstream. Makes its own venv; needs python3 with venv and pip (PyPI reachable).
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUIREMENTS=tests/sdk/requirements.txt VENV_NAME="${FLO2_SDK_VENV_NAME:-sdk-venv}"
# shellcheck source=../harness/prepare.sh
. tests/harness/prepare.sh
exec "$PYTHON" -m pytest -q tests/sdk "$@"
