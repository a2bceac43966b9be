#!/usr/bin/env bash
# The browser suite: headless Debian Chromium, driven by Playwright, through the dashboard
# journey against the real flo2 binary and the fake upstream. Screenshots of every page land in
# tests/browser/artifacts (git-ignored). Needs /usr/bin/chromium (.ci/run installs it with apt).
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUIREMENTS=tests/browser/requirements.txt VENV_NAME="${FLO2_BROWSER_VENV_NAME:-browser-venv}"
# shellcheck source=../harness/prepare.sh
. tests/harness/prepare.sh
export CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
mkdir -p tests/browser/artifacts
exec "$PYTHON" -m pytest -q tests/browser "$@"
