#!/usr/bin/env bash
# The project's test command (`npm test`, run by .ci/run): type-check, make
# sure the real peers the tests use are installed and running, then run every
# test under test/ with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== tsc --noEmit"
npx --no-install tsc --noEmit

echo "== test peers"
bash scripts/ensure-peers.sh

mapfile -t files < <(find test -name '*.test.ts' | sort)
echo "== node --test (${#files[@]} files)"
exec node --import tsx --test --test-reporter=spec --test-concurrency=1 "${files[@]}"
