# Sourced by tests/sdk/run.sh and tests/browser/run.sh: builds the flo2 and fake-upstream binaries,
# makes (once) and fills a venv from $REQUIREMENTS, and exports where everything is.
# Needs: REQUIREMENTS, VENV_NAME. Sets: PYTHON, FLO2_BIN, FAKE_UPSTREAM_BIN, PYTHONPATH.
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --locked -p flo2 --bin flo2
cargo build --locked -p flo2-testkit --bin flo2-fake-upstream
VENV="$TARGET/$VENV_NAME"
case "$TARGET" in /*) ;; *) VENV="$PWD/$VENV";; esac
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
PYTHON="$VENV/bin/python"
case "$TARGET" in
  /*) FLO2_BIN="$TARGET/debug/flo2"; FAKE_UPSTREAM_BIN="$TARGET/debug/flo2-fake-upstream";;
  *) FLO2_BIN="$PWD/$TARGET/debug/flo2"; FAKE_UPSTREAM_BIN="$PWD/$TARGET/debug/flo2-fake-upstream";;
esac
export FLO2_BIN FAKE_UPSTREAM_BIN
export PYTHONPATH="$PWD/tests/harness${PYTHONPATH:+:$PYTHONPATH}"
