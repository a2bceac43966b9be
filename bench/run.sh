#!/usr/bin/env bash
# flo2's benchmark: release builds of flo2 and the fake upstream, then `flo2-bench`, which
# writes docs/benchmarks.md and docs/benchmarks.json. Set FLO2_BENCH_DATABASE_URL to a
# PostgreSQL database to measure that store too; FLO2_BENCH_SECS (default 10) and
# FLO2_BENCH_RATES (default 500,1000,2000) tune the run. FLO2_BENCH_ONLY=overload runs only the
# overload row and prints it, leaving docs/ untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release -p flo2 --bin flo2 -p flo2-testkit --bin flo2-fake-upstream
cargo build --locked --release -p flo2-bench
TARGET="${CARGO_TARGET_DIR:-target}"
export FLO2_BENCH_FLO2="${FLO2_BENCH_FLO2:-$TARGET/release/flo2}"
export FLO2_BENCH_FAKE="${FLO2_BENCH_FAKE:-$TARGET/release/flo2-fake-upstream}"
exec "$TARGET/release/flo2-bench"
