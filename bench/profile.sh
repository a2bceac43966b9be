#!/usr/bin/env bash
# Instructions per request, path by path: flo2 (release) under callgrind, driven one request at a
# time by `flo2-bench profile` (see crates/flo2-bench/src/profile.rs). Counts do not move with
# the host's load the way timings on a shared VM do, so they show whether a change made flo2 do
# less. Usage: bash bench/profile.sh [requests per path, default 2000] [output dir]
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS="${1:-2000}"
OUT="$(realpath -m "${2:-target/profile}")"
command -v valgrind >/dev/null || {
  echo "bench/profile.sh needs valgrind (apt-get install valgrind)" >&2
  exit 1
}
cargo build --locked --release -p flo2 --bin flo2 -p flo2-testkit --bin flo2-fake-upstream
cargo build --locked --release -p flo2-bench
TARGET="$(realpath "${CARGO_TARGET_DIR:-target}")/release"
rm -rf "$OUT" && mkdir -p "$OUT"
cat >"$OUT/flo2-under-callgrind" <<WRAP
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.%p" --separate-threads=no "$TARGET/flo2" "\$@"
WRAP
chmod +x "$OUT/flo2-under-callgrind"
FLO2_BENCH_FLO2="$OUT/flo2-under-callgrind" FLO2_BENCH_FAKE="$TARGET/flo2-fake-upstream" \
  FLO2_BENCH_PROFILE_HOOK='callgrind_control --dump="$FLO2_PHASE" "$FLO2_PID" >/dev/null' \
  "$TARGET/flo2-bench" profile "$REQUESTS" | tee "$OUT/phases.tsv"
echo
echo "instructions per request (each phase's dump; usage writing included):"
for dump in "$OUT"/callgrind.*.*; do
  phase="$(sed -n 's/^desc: Trigger: dump //p' "$dump")"
  case "$phase" in "" | warm-*) continue ;; esac
  total="$(sed -n 's/^summary: //p;s/^totals: //p' "$dump" | head -1)"
  echo "$phase: $((total / REQUESTS)) ($dump)"
done
echo "per function: callgrind_annotate --inclusive=yes <dump> | head -60"
