#!/usr/bin/env bash
# CPU instructions per line of bench/processing.ts (classify + extract +
# DuckDB append), counted under valgrind's callgrind: unlike seconds on a
# shared VM, whose speed drifts ±15 % over minutes, the count repeats within
# ~1 %, so a change of a few percent can be judged from one run of each side.
# Two runs (LINES and LINES_BASE lines, in parallel) cancel start-up: the
# figure is their difference over the lines between. V8 runs single-threaded
# with fixed seeds (GC and compilation on the main thread, counted too).
# Both runs first do processing.ts's unmeasured warm-up (WARMUP lines, the
# same in each), so since 2e30c6d the figure is a steady-state line's.
# Needs valgrind (Debian: apt-get install valgrind); ~4 minutes.
# Run: bash bench/instructions.sh   (LINES=110000 LINES_BASE=10000 BATCH=10000 to change)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
LINES=${LINES:-110000}
LINES_BASE=${LINES_BASE:-10000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

count() {
  LINES=$1 BATCH=${BATCH:-10000} valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$1" \
    node --single-threaded --predictable --hash-seed=1 --random-seed=1 --import tsx bench/processing.ts >"$tmp/log.$1" 2>&1
  grep -m1 'Collected' "$tmp/log.$1" | awk '{print $4}' >"$tmp/ir.$1"
}
count "$LINES" &
count "$LINES_BASE" &
wait
ir=$(cat "$tmp/ir.$LINES")
base=$(cat "$tmp/ir.$LINES_BASE")
echo "processing.ts under callgrind: $ir instructions for $LINES lines, $base for $LINES_BASE"
echo "per line: $(( (ir - base) / (LINES - LINES_BASE) )) instructions ($(node -p "process.versions.node"), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
if [[ -n "${ANNOTATE:-}" ]]; then
  # The functions that spend the most per line (JIT code shows as ???).
  for n in "$LINES" "$LINES_BASE"; do callgrind_annotate --inclusive=no --threshold=99 "$tmp/cg.$n" >"$tmp/ann.$n"; done
  head -40 "$tmp/ann.$LINES"
fi
