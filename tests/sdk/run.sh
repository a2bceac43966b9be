#!/usr/bin/env bash
# The SDK suite: the official openai and anthropic Python packages against the real flo2 binary
# and the fake upstream. Makes its own venv; needs python3 with venv and pip (PyPI reachable).
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --locked -p flo2 --bin flo2
cargo build --locked -p flo2-testkit --bin flo2-fake-upstream
VENV="${FLO2_SDK_VENV:-$TARGET/sdk-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
export FLO2_BIN="$PWD/$TARGET/debug/flo2"
export FAKE_UPSTREAM_BIN="$PWD/$TARGET/debug/flo2-fake-upstream"
case "$TARGET" in /*) FLO2_BIN="$TARGET/debug/flo2"; FAKE_UPSTREAM_BIN="$TARGET/debug/flo2-fake-upstream";; esac
exec "$VENV/bin/python" -m pytest -q tests/sdk "$@"
